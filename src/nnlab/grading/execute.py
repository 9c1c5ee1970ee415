"""Running a submission's notebook in the sandbox, so that whatever it does, grading finishes.

:class:`SandboxedExecute` is nbgrader's ``Execute`` preprocessor (same configuration:
``c.Execute.timeout`` is the per-cell limit) with these differences:

- the kernel starts in the bubblewrap sandbox (:class:`~nnlab.grading.sandbox.SandboxKernelManager`);
- a cell that times out or kills the kernel (``os._exit``, a memory or fork bomb) gets an error
  output; the kernel is restarted, the cells that ran before are replayed (their outputs are
  kept from the first run), and execution goes on with the next cell, at most
  ``c.Sandbox.max_restarts`` times; the whole notebook has a wall-clock budget
  (``c.Sandbox.notebook_timeout``), after which the remaining cells are marked as not run;
- each cell keeps at most ``c.Sandbox.max_output_bytes`` of output;
- the execute *reply* is trusted over the displayed outputs: a cell whose reply says it failed
  always gets an error output, even if the submission hid the traceback;
- after every autograded test cell, and at the end, a **canary** cell runs in the same kernel:
  it calls the checking functions tests use (``np.allclose``, ``np.testing.assert_allclose``,
  ``math.isclose``, builtins, ...) on inputs where they must fail, asks the launcher whether
  any watched function or IPython's error machinery was replaced, and must itself end in an
  ``AssertionError`` carrying a random nonce. Any other outcome is an ``integrity`` incident.
  Canary cells are not part of the graded notebook.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute
from traitlets import Instance

from .incidents import Incident
from .sandbox import Sandbox, SandboxKernelManager

CANARY_CHECKS = [
    # (name, expression that is falsy or raises AssertionError when the function is genuine)
    ("numpy.allclose", "np.allclose(0.0, 1.0)"),
    ("numpy.isclose", "bool(np.isclose(0.0, 1.0))"),
    ("numpy.array_equal", "np.array_equal([0, 1], [1, 0])"),
    ("numpy.array_equiv", "np.array_equiv([0, 1], [1, 0])"),
    ("numpy.all", "bool(np.all([False]))"),
    ("numpy.testing.assert_allclose", "np.testing.assert_allclose(0.0, 1.0)"),
    ("numpy.testing.assert_array_equal", "np.testing.assert_array_equal([0], [1])"),
    ("numpy.testing.assert_array_almost_equal", "np.testing.assert_array_almost_equal([0.0], [1.0])"),
    ("numpy.testing.assert_almost_equal", "np.testing.assert_almost_equal(0.0, 1.0)"),
    ("numpy.testing.assert_equal", "np.testing.assert_equal(0, 1)"),
    ("math.isclose", "math.isclose(0.0, 1.0)"),
    ("builtins.isinstance", "isinstance(0, str)"),
    ("builtins.all", "all([False])"),
    ("builtins.any", "any([False])"),
    ("builtins.abs", "abs(-1) != 1"),
    ("builtins.len", "len([0, 0]) != 2"),
    ("builtins.float", "float('1.5') != 1.5"),
    ("builtins.sum", "sum([1, 2]) != 3"),
    ("builtins.max", "max(1, 2) != 2"),
    ("builtins.round", "round(1.25, 1) != 1.2"),
]


def canary_source(nonce: str) -> str:
    """The code of one canary cell: it must end in ``AssertionError('nnlab-canary-<nonce> [...]')``."""
    checks = ",\n    ".join(f"({name!r}, lambda np, math: {expr})" for name, expr in CANARY_CHECKS)
    return f'''# grader's integrity canary (not part of the assignment)
_nnlab_canary_bad = []
for _nnlab_canary_name, _nnlab_canary_check in [
    {checks},
]:
    try:
        _nnlab_canary_result = _nnlab_canary_check(__import__("numpy"), __import__("math"))
    except AssertionError:
        continue
    except Exception:
        continue
    if _nnlab_canary_result is None or _nnlab_canary_result:
        _nnlab_canary_bad.append(_nnlab_canary_name)
try:
    _nnlab_canary_bad += __import__("_nnlab_sandbox").integrity()
except Exception as _nnlab_canary_exc:
    _nnlab_canary_bad.append("the integrity check itself: " + type(_nnlab_canary_exc).__name__)
_nnlab_canary_usage = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF)
_nnlab_canary_message = "nnlab-canary-{nonce} " + __import__("json").dumps(
    {{"bad": sorted(set(_nnlab_canary_bad)), "cpu": _nnlab_canary_usage.ru_utime + _nnlab_canary_usage.ru_stime}})
del _nnlab_canary_bad, _nnlab_canary_name, _nnlab_canary_check, _nnlab_canary_usage
raise AssertionError(_nnlab_canary_message)
'''


#: programs that libraries start on their own (matplotlib's font cache, platform, ctypes.util): not reported
BENIGN_PROGRAMS = {"fc-list", "fc-match", "uname", "ldconfig", "ldconfig.real", "lscpu", "getconf", "nproc"}


def _program(detail: str) -> str:
    """The program name in an audit detail such as ``('fc-list', ['fc-list', '--help'], None, None)``."""
    match = re.search(r"""['"]([^'"]+)['"]""", detail)
    return os.path.basename(match.group(1)) if match else ""


def _output_size(content) -> int:
    """Rough size in bytes of an output message's content (text and data)."""
    size = 0
    for key in ("text", "evalue"):
        if isinstance(content.get(key), str):
            size += len(content[key])
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    for line in content.get("traceback") or []:
        size += len(line)
    return size


class AuditReader:
    """Reads the audit FIFO of one kernel in a thread and keeps every line."""

    def __init__(self, path):
        self.path = path
        self.lines: list[dict] = []
        self._stop = threading.Event()
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import select
        buffer = b""
        while True:
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            chunk = os.read(self._fd, 65536) if ready else b""
            if chunk:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if len(self.lines) < 1000:
                        try:
                            self.lines.append(json.loads(line))
                        except ValueError:
                            self.lines.append({"event": "unreadable", "detail": line[:200].decode(errors="replace")})
            elif self._stop.is_set():
                break
            elif not ready:
                continue
            else:
                time.sleep(0.05)  # no writer yet, or the writer closed

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self._fd)


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with the kernel in the sandbox (see the module docstring).

    Set :attr:`sandbox` and :attr:`grading` (``workdir``: path of the working folder inside the
    sandbox; ``stage``: host folder with the submission's files; ``scratch``: a host folder for
    connection files; ``uid``; ``ro_paths``; ``bwrap``) before calling ``preprocess``. After it,
    :attr:`incidents` and :attr:`cell_status` hold what happened.
    """

    sandbox = Instance(Sandbox)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.grading = {}
        self.incidents: list[Incident] = []
        self.cell_status: dict[int, str] = {}
        self.audit_events: list[dict] = []
        self.interrupt_on_timeout = False
        self.raise_on_iopub_timeout = False
        self.iopub_timeout = 10
        self.record_timing = False

    # -- nbclient hooks ---------------------------------------------------------------------
    def on_cell_executed(self, **kwargs):
        cell, index, reply = kwargs["cell"], kwargs["cell_index"], kwargs["execute_reply"]
        status = reply["content"]["status"]
        shown = any(o.output_type == "error" for o in cell.outputs)
        self.cell_status[index] = status if (status != "error" or shown) else "error-hidden"
        super().on_cell_executed(**kwargs)

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most ``max_output_bytes`` per cell and 20 times that per notebook.

        Errors are always kept (they decide the score), shortened if huge; a stream is cut at
        the limit; anything else past the limit is dropped. Dropped bytes are reported.
        """
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            content["evalue"] = str(content.get("evalue", ""))[:10_000]
            content["traceback"] = [str(line)[:10_000] for line in (content.get("traceback") or [])[-60:]]
            return super().output(outs, msg, display_id, cell_index)
        size = _output_size(content)
        cap = self.sandbox.max_output_bytes
        used = self._out_bytes.get(cell_index, 0)
        room = max(0, min(cap - used, 20 * cap - self._total_out))
        if size <= room:
            self._out_bytes[cell_index] = used + size
            self._total_out += size
            return super().output(outs, msg, display_id, cell_index)
        dropped = size
        if msg["msg_type"] == "stream" and cell_index not in self._truncated:
            content["text"] = content.get("text", "")[:room] + "\n[... output truncated by the grader ...]\n"
            dropped = size - room
            self._out_bytes[cell_index] = used + room
            self._total_out += room
            self._truncated[cell_index] = dropped
            return super().output(outs, msg, display_id, cell_index)
        self._truncated[cell_index] = self._truncated.get(cell_index, 0) + dropped
        return None

    # -- kernel lifecycle --------------------------------------------------------------------
    def _conn_dir(self) -> str:
        # short path: a Unix socket's path must stay under ~100 bytes
        conn = tempfile.mkdtemp(prefix="nnlab-k")
        self._conn_dirs.append(conn)
        uid = self.grading.get("uid")
        if uid is not None:
            os.chown(conn, uid, uid)
        os.chmod(conn, 0o700)
        return conn

    async def _start(self):
        conn = self._conn_dir()
        fifo = os.path.join(conn, "audit.fifo")
        os.mkfifo(fifo, 0o600)
        if self.grading.get("uid") is not None:
            os.chown(fifo, self.grading["uid"], self.grading["uid"])
        self._audit = AuditReader(fifo)
        self.km = SandboxKernelManager(config=self.config)
        self.km.grading = {**self.grading, "sandbox": self.sandbox, "conn_dir": conn, "audit_fifo": fifo}
        env = None
        if not self.sandbox.enabled:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.grading["workdir"],
                   "LANG": "C.UTF-8", **self.sandbox.env}
        kwargs = {"env": env} if env is not None else {}
        log = open(os.path.join(self.grading["scratch"], "kernel.log"), "ab")
        try:
            await self.async_start_new_kernel(cwd=self.grading["host_cwd"], stdout=log, stderr=log, **kwargs)
        finally:
            log.close()
        await self.async_start_new_kernel_client()
        if self.grading.get("uid") is not None and os.geteuid() == 0:
            # sockets exist now: take write access away, so the kernel cannot fill the disk here
            os.chown(conn, 0, 0)
            os.chmod(conn, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)

    async def _stop(self):
        for task in asyncio.all_tasks():
            name = getattr(task.get_coro(), "__name__", "")
            if name in ("_async_poll_output_msg", "_async_poll_kernel_alive", "_async_poll_for_reply"):
                task.cancel()
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        except Exception:
            pass
        try:
            if self.km is not None and await self.km.is_alive():
                await self.km.shutdown_kernel(now=True)
        except Exception:
            try:
                self.km.provisioner and await self.km.provisioner.kill()
            except Exception:
                pass
        self.kc = None
        self.km = None
        if getattr(self, "_audit", None) is not None:
            self._audit.close()
            self.audit_events.extend(self._audit.lines)
            self._audit = None
        for conn in self._conn_dirs:
            shutil.rmtree(conn, ignore_errors=True)
        self._conn_dirs = []

    async def _run_cell(self, cell, index, timeout) -> str:
        """Execute one cell; return ``"ok"``, ``"error"``, ``"error-hidden"``, ``"timeout"`` or ``"died"``."""
        if self.kc is None:  # no live kernel (a restart failed)
            return "died"
        self.timeout = max(1, int(timeout))
        self._out_bytes[index] = 0
        try:
            # the instructor's cells (tests!) stay out of IPython's input history (In, _ih)
            history = cell.metadata.get("nnlab", {}).get("origin") != "instructor"
            await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1,
                                          store_history=history)
        except CellTimeoutError:
            return "timeout"
        except DeadKernelError:
            return "died"
        if not cell.source.strip():
            return "ok"
        return self.cell_status.get(index, "ok")

    # -- the notebook ------------------------------------------------------------------------
    def preprocess(self, nb, resources, km=None):
        self.nb, self.resources = nb, resources
        self.reset_execution_trackers()
        self._out_bytes, self._truncated = {}, {}
        self.incidents, self.cell_status, self.audit_events = [], {}, []
        self.kernel_cpu = None
        self._seen, self._total_out, self._conn_dirs = set(), 0, []
        self.km = self.kc = None
        self.timeout_per_cell = int(self.timeout or 30)
        try:
            run_sync(self._run_notebook)()
        finally:
            self.timeout = self.timeout_per_cell
        return nb, resources

    def _note(self, kind, severity, message, cell=None, key=None):
        """Record an incident; ``key`` (if given) reports the same finding only once."""
        if key is not None:
            if key in self._seen:
                return
            self._seen.add(key)
        self.incidents.append(Incident(kind, severity, message, cell=cell,
                                       notebook=self.resources.get("nbgrader", {}).get("notebook")))

    @staticmethod
    def _label(cell, index):
        return cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"

    def _fail_cell(self, cell, ename, evalue):
        cell.outputs.append(NotebookNode(output_type="error", ename=ename, evalue=evalue,
                                         traceback=[f"{ename}: {evalue}"]))

    async def _run_notebook(self):
        started = time.monotonic()
        deadline = started + self.sandbox.notebook_timeout
        cells = self.nb.cells
        code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
        tests = {i for i in code if nbutils.is_grade(cells[i]) and not nbutils.is_solution(cells[i])}
        done, restarts = [], 0
        try:
            await self._start()
        except Exception as exc:  # the kernel could not start: nothing runs
            for i in code:
                self._fail_cell(cells[i], "GraderError", "not run: the grading kernel could not start")
            self._note("kernel-start-failed", "error", f"the grading kernel could not start: {exc}")
            await self._stop()
            return
        pos = 0
        while pos < len(code):
            i = code[pos]
            cell, label = cells[i], self._label(cells[i], i)
            left = deadline - time.monotonic()
            if left <= 1:
                for j in code[pos:]:
                    self._fail_cell(cells[j], "GraderTimeout",
                                    f"not run: the notebook's time budget ({self.sandbox.notebook_timeout} s) ran out")
                self._note("notebook-timeout", "error", f"the notebook's time budget "
                           f"({self.sandbox.notebook_timeout} s) ran out before {label}; "
                           f"{len(code) - pos} code cell(s) did not run", cell=label)
                break
            outcome = await self._run_cell(cell, i, min(self.timeout_per_cell, left))
            if outcome in ("timeout", "died"):
                if outcome == "timeout":
                    self._fail_cell(cell, "CellTimeoutError",
                                    f"the cell ran longer than {self.timeout_per_cell} s and was stopped")
                    self._note("timeout", "error", f"{label} ran longer than {self.timeout_per_cell} s "
                               "(infinite loop?); it scores 0 and the kernel was restarted", cell=label)
                else:
                    self._fail_cell(cell, "DeadKernelError", "the kernel died while running this cell "
                                    "(os._exit, a crash, or a resource limit such as memory)")
                    self._note("kernel-died", "error", f"the kernel died while running {label} (os._exit, "
                               "a crash, or a resource limit); it scores 0 and the kernel was restarted",
                               cell=label)
                self.cell_status[i] = outcome
                if restarts >= self.sandbox.max_restarts or not await self._restart(done, deadline):
                    rest = code[pos + 1:]
                    for j in rest:
                        self._fail_cell(cells[j], "GraderError", "not run: the kernel had to be restarted "
                                        "too many times")
                    if rest:
                        self._note("restarts-exhausted", "error", f"after {restarts + 1} kernel restart(s) "
                                   f"the remaining {len(rest)} code cell(s) were not run", cell=label)
                    break
                restarts += 1
            else:
                done.append(i)
                self._resource_errors(cell, label)
                if outcome == "error-hidden":
                    self._note("error-hidden", "integrity", f"{label} failed but its error was not displayed "
                               "(the error display was replaced); the failure was recorded", cell=label)
            if i in tests:
                await self._canary(label, deadline)
            pos += 1
        if self.km is not None and pos >= len(code):
            await self._canary("the end of the notebook", deadline)
        await self._stop()
        self._report_audit()
        for index, dropped in self._truncated.items():
            if index < len(cells):
                label = self._label(cells[index], index)
                self._note("output-truncated", "info", f"{label} printed more than "
                           f"{self.sandbox.max_output_bytes} bytes; {dropped} bytes of output were dropped",
                           cell=label)
        self.resources.setdefault("nnlab", {}).update(elapsed=round(time.monotonic() - started, 3),
                                                      kernel_cpu=self.kernel_cpu)

    def _resource_errors(self, cell, label):
        """A cell that failed on a sandbox limit is an incident, not just a failed test."""
        for output in cell.outputs:
            if output.output_type != "error":
                continue
            text = f"{output.ename}: {output.evalue}"
            if output.ename == "MemoryError":
                self._note("memory-limit", "error", f"{label} ran out of memory (limit "
                           f"{self.sandbox.memory_mb} MiB): {text[:120]}", cell=label)
            elif "Resource temporarily unavailable" in text or output.ename == "BlockingIOError":
                self._note("process-limit", "error", f"{label} hit the process limit "
                           f"({self.sandbox.max_processes} processes and threads): {text[:120]}", cell=label)
            elif "File too large" in text:
                self._note("file-size-limit", "error", f"{label} wrote a file larger than "
                           f"{self.sandbox.max_file_mb} MiB: {text[:120]}", cell=label)

    async def _restart(self, done, deadline) -> bool:
        """Fresh kernel, then replay the cells in ``done`` (outputs discarded). False if impossible."""
        await self._stop()
        try:
            await self._start()
        except Exception as exc:
            self._note("kernel-start-failed", "error", f"the grading kernel could not be restarted: {exc}")
            return False
        for j in list(done):
            replay = NotebookNode(cell_type="code", source=self.nb.cells[j].source, metadata={}, outputs=[],
                                  execution_count=None)
            self.nb.cells.append(replay)
            try:
                outcome = await self._run_cell(replay, len(self.nb.cells) - 1,
                                               min(self.timeout_per_cell, deadline - time.monotonic()))
            finally:
                self.nb.cells.pop()
            if outcome in ("timeout", "died"):
                self._note("replay-failed", "error", f"replaying {self._label(self.nb.cells[j], j)} after a "
                           f"restart failed ({outcome}); later cells may miss its definitions")
                done.remove(j)
                await self._stop()
                try:
                    await self._start()
                except Exception:
                    return False
        return True

    async def _canary(self, where, deadline):
        if self.km is None:
            return
        nonce = secrets.token_hex(8)
        cell = new_code_cell(canary_source(nonce), metadata={"nnlab": {"origin": "instructor"}})
        self.nb.cells.append(cell)
        index = len(self.nb.cells) - 1
        try:
            outcome = await self._run_cell(cell, index, max(5, min(60, deadline - time.monotonic())))
        finally:
            self.nb.cells.pop()
            self._truncated.pop(index, None)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if outcome in ("timeout", "died"):
            self._note("canary", "integrity", f"the grader's integrity check after {where} did not complete "
                       f"({outcome}); the kernel was restarted", key="canary-incomplete")
            await self._stop()
            try:
                await self._start()
            except Exception:
                pass
            return
        if outcome == "ok":
            self._note("canary", "integrity", f"after {where}, a cell that must fail was reported as passing: "
                       "the kernel's error reporting was tampered with", key="canary-ok")
            return
        if outcome == "error-hidden":
            self._note("canary", "integrity", f"after {where}, the error of a failing cell was not displayed: "
                       "IPython's error display (showtraceback or similar) was replaced", key="canary-hidden")
        message = next((o.evalue for o in errors if f"nnlab-canary-{nonce}" in str(o.get("evalue", ""))), None)
        if message is None:
            self._note("canary", "integrity", f"after {where}, the integrity check failed with an unexpected "
                       f"error ({errors[0].ename if errors else 'none'}): the error machinery was tampered with",
                       key="canary-unexpected")
            return
        try:
            report = json.loads(message.split(" ", 1)[1])
            bad = list(report["bad"])
            self.kernel_cpu = float(report["cpu"])
        except (IndexError, ValueError, KeyError, TypeError):
            bad = ["(unreadable report)"]
        if bad:
            self._note("canary", "integrity", f"after {where}, these checking functions no longer behave as "
                       f"the originals (monkeypatched?): {', '.join(bad)}; autograded scores are withheld "
                       "for manual review", key=("canary-bad", tuple(bad)))

    def _report_audit(self):
        seen = set()
        for line in self.audit_events:
            event, detail = str(line.get("event")), str(line.get("detail"))
            if event == "open":
                kind, what = "file-access", f"tried to {detail.split(' ', 1)[0]} {detail.split(' ', 1)[-1]}, " \
                                            "outside its own folder (not visible in the sandbox)"
            elif event.startswith(("socket.", "urllib.")):
                kind, what = "network", f"tried to use the network ({event} {detail}); the sandbox has none"
            elif event in ("os.fork", "os.forkpty", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                           "os.spawn", "pty.spawn"):
                if event in ("subprocess.Popen", "os.posix_spawn", "os.exec") and _program(detail) in BENIGN_PROGRAMS:
                    continue
                kind, what = "process", f"started a process ({event} {detail})"
            elif event in ("os.kill", "os.killpg"):
                kind, what = "signal", f"sent a signal ({event} {detail})"
            else:
                kind, what = "audit", f"{event} {detail}"
            key = (kind, what if kind != "process" else event)
            if key in seen:
                continue
            seen.add(key)
            self._note(kind, "review", f"the submission {what}")
