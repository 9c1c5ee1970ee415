"""Trusted grading for the course: sandboxed, parallel autograding on top of nbgrader.

The instructor-facing commands live in :mod:`nnlab.course` (``python -m nnlab.course grade ...``).
This subpackage holds the machinery, one module per concern:

- :mod:`~nnlab.grading.sandbox`  bubblewrap sandbox and the kernel manager that starts kernels in it
- :mod:`~nnlab.grading.cells`    rebuilding a submission around the instructor's locked cells, and
  a static scan for suspicious code
- :mod:`~nnlab.grading.execute`  running a notebook in the sandbox: per-cell timeouts, restarts
  after a crash, output caps, integrity canaries
- :mod:`~nnlab.grading.worker`   one submission, end to end, in a child process
- :mod:`~nnlab.grading.pipeline` the ``grade`` command: workers in parallel, gradebook writes serial
- :mod:`~nnlab.grading.feedback` feedback without hidden tests
- :mod:`~nnlab.grading.report`   grade analytics and incidents
- :mod:`~nnlab.grading.collect`  LMS zip downloads into ``submitted/``
- :mod:`~nnlab.grading.late`     the late-submission penalty plugin for nbgrader

Nothing here is imported by ``import nnlab``: only the course commands load nbgrader.
"""
