"""nbjudge: autograding for nbgrader courses, with verdicts no submission can forge.

The instructor's command is ``nbjudge`` (:mod:`nbjudge.cli`). One module per step of a
submission's way, and the pieces they share:

- :mod:`~nbjudge.collect`   an LMS archive into ``submitted/`` (extracted by the grader itself)
- :mod:`~nbjudge.cells`     the submission rebuilt around the instructor's cells; a static scan
- :mod:`~nbjudge.execute`   the student's cells in the sandboxed student kernel, the test cells in
  the judge, and the relay between them
- :mod:`~nbjudge.judge`     the judge process: runs the tests, where no student code ever runs
- :mod:`~nbjudge.student_kernel`  the student's kernel: limits, audit hints, the bridge
- :mod:`~nbjudge.protocol`  the plain data that may cross between them
- :mod:`~nbjudge.sandbox`   bubblewrap: what each process can see
- :mod:`~nbjudge.worker`    one submission, end to end, in a child process
- :mod:`~nbjudge.grade`     the ``grade`` command: workers in parallel, the gradebook written serially
- :mod:`~nbjudge.policy`    incident kinds, severities and what each does to a score
- :mod:`~nbjudge.feedback`, :mod:`~nbjudge.report`   what students and instructors read
- :mod:`~nbjudge.course`    nbgrader plumbing (config, gradebook URL, generating an assignment)
- :mod:`~nbjudge.release`, :mod:`~nbjudge.late`   releases, the late-penalty plugin

It never imports the course's teaching package; ``import nbjudge`` loads nothing of nbgrader.
"""
