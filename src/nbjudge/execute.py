"""Executing a submission: the student's cells in the student's kernel, the tests in the judge.

:class:`SandboxedExecute` is nbgrader's ``Execute`` preprocessor (same configuration:
``c.Execute.timeout`` is the per-cell limit), changed in what runs where:

- **answer cells, cells the student added, and the instructor's other code cells** (imports,
  data, given functions) run in the *student's kernel*, an IPython kernel in the bubblewrap
  sandbox (:class:`~nbjudge.sandbox.SandboxKernelManager`). Their outputs are what the graded
  notebook and the feedback show.
- **test cells** never reach the student's kernel. They run in the *judge*
  (:mod:`nbjudge.judge`), a second sandboxed process started from the instructor's side that
  runs no student code: every name the test uses and the instructor's cells do not define is
  looked up in the student's kernel through the bridge (:mod:`nbjudge.student_kernel`), as
  plain data or as a handle. This module relays those requests: it runs each one in the
  student's kernel as a silent execution, keeps the single reply message and drops everything
  else the student's code prints meanwhile. The judge's outcome (printed text, the error and
  its message) becomes the test cell's outputs, which nbgrader's ``SaveAutoGrades`` scores.

Whatever the student's code does to its own interpreter (IPython's transformers, the kernel's
handlers and messages, numpy, the names the tests use) can change only what its functions
return, never how a test is evaluated.

Robustness, as before: a cell (or a call from the judge) that times out or kills the kernel
fails; the kernel is restarted, the cells that ran before are replayed (outputs discarded), and
execution goes on, at most ``c.Sandbox.max_restarts`` times; the notebook has a wall-clock
budget (``c.Sandbox.notebook_timeout``); each cell keeps at most ``c.Sandbox.max_output_bytes``
of output. A judge that dies or runs past the cell's limit fails that test and is restarted
with the instructor's setup cells.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import threading
import time

import zmq
import zmq.asyncio
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute
from traitlets import Instance

from . import protocol
from .policy import Incident
from .sandbox import Sandbox, SandboxKernelManager, judge_command
from .student_kernel import CALLBACK_PREFIX, NESTED_PREFIX, REPLY_MIME

_HEADER = struct.Struct("!Q")
#: seconds the judge may take to start (it imports NumPy, and TensorFlow when a setup cell does)
JUDGE_START_TIMEOUT = 120


#: programs that libraries start on their own (matplotlib's font cache, platform, ctypes.util): not reported
BENIGN_PROGRAMS = {"fc-list", "fc-match", "uname", "ldconfig", "ldconfig.real", "lscpu", "getconf", "nproc"}


def _program(detail: str) -> str:
    """The program name in an audit detail such as ``('fc-list', ['fc-list', '--help'], None, None)``."""
    match = re.search(r"""['"]([^'"]+)['"]""", detail)
    return os.path.basename(match.group(1)) if match else ""


#: outputs nested deeper than this (JSON of a display message) are dropped: nothing downstream
#: (nbformat's validation, the formgrader) handles them
MAX_OUTPUT_DEPTH = 64


def _depth(value) -> int:
    """Nesting depth of a JSON-like value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_OUTPUT_DEPTH:
                return level
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


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
                if len(buffer) > 65536 and b"\n" not in buffer[-65536:]:  # no line ends: drop it
                    if len(self.lines) < 1000:
                        self.lines.append({"event": "unreadable", "detail": "an audit line longer than 64 KiB"})
                    buffer = b""
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


class BridgeViolation(protocol.ProtocolError):
    """The student's kernel broke the order of the relay (an answer nobody asked for, ...)."""


class Judge:
    """The worker's end of one judge process (see :mod:`nbjudge.judge`)."""

    def __init__(self, command, cwd, log_path, env):
        self.command, self.cwd, self.log_path, self.env = command, cwd, log_path, env
        self.proc = None

    async def start(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                cwd=self.cwd, env=self.env, start_new_session=True, limit=2**20)
        finally:
            log.close()
        frame = await asyncio.wait_for(self.recv(), JUDGE_START_TIMEOUT)
        if not frame.get("ready"):
            raise RuntimeError("the judge did not start")

    async def send(self, message):
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        self.proc.stdin.write(_HEADER.pack(len(data)) + data)
        await self.proc.stdin.drain()

    async def recv(self):
        header = await self.proc.stdout.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        if size > protocol.LIMITS["bytes"] + 1024:
            raise protocol.ProtocolError(f"the judge sent a frame of {size} bytes")
        return json.loads(await self.proc.stdout.readexactly(size))

    async def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            pass
        self.proc = None


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with a sandboxed student kernel and a judge (see the module docstring).

    Set :attr:`sandbox` and :attr:`grading` before calling ``preprocess``:

    ``workdir``      the kernel's working folder (path inside the sandbox)
    ``stage``        host folder with the submission's files
    ``scratch``      host folder for connection files and logs
    ``uid``, ``judge_uid``   user ids of the student's kernel and of the judge (root only)
    ``ro_paths``     the Python environment (read-only in both sandboxes)
    ``overlays``     ``[(host, path)]`` read-only mounts over ``ro_paths`` in the student's sandbox
                     (the assignment's view of the teaching package; the grader hidden)
    ``kit``          host folder holding ``student_kernel.py`` and ``protocol.py``
    ``bwrap``        the bubblewrap executable

    After it, :attr:`incidents` and :attr:`cell_status` hold what happened.
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
        self.store_widget_state = False  # widget state is the student's to fill, without bound
        self.judge = None

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most ``max_output_bytes`` per cell and 20 times that per notebook.

        Errors are always kept (they decide the score), shortened if huge; a stream is cut at
        the limit; anything else past the limit is dropped. Dropped bytes are reported.
        """
        content = msg.get("content", {})
        if _depth(content) > MAX_OUTPUT_DEPTH:
            self._note("malformed-output", f"{self._label(self.nb.cells[cell_index], cell_index)} displayed an "
                       f"output nested deeper than {MAX_OUTPUT_DEPTH} levels; it was dropped",
                       cell=self._label(self.nb.cells[cell_index], cell_index), key=("deep", cell_index))
            return None
        if msg["msg_type"] == "error":
            errors = self._errors_kept.get(cell_index, 0)
            if errors >= 3:  # a failing cell shows its error; a flood of forged ones is dropped
                self._truncated[cell_index] = self._truncated.get(cell_index, 0) + _output_size(content)
                return None
            self._errors_kept[cell_index] = errors + 1
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

    def _update_display_id(self, display_id, msg):
        """An update of an earlier output obeys the same limits as a new one."""
        content = msg.get("content", {})
        if _depth(content) > MAX_OUTPUT_DEPTH or _output_size(content) > self.sandbox.max_output_bytes:
            return None
        return super()._update_display_id(display_id, msg)

    # -- the student's kernel ------------------------------------------------------------------
    def _conn_dir(self) -> str:
        # short path: a Unix socket's path must stay under ~100 bytes
        conn = tempfile.mkdtemp(prefix="nbj-k")
        self._conn_dirs.append(conn)
        uid = self.grading.get("uid")
        if uid is not None:
            os.chown(conn, uid, uid)
        os.chmod(conn, 0o700)
        return conn

    def _box(self, kind):
        """A cgroup for one sandbox (:mod:`nbjudge.cgroups`), or None where the run has none."""
        data = self.grading.get("cgroup")
        if not data or not self.sandbox.enabled:
            return None
        from . import cgroups
        if self._cgroup_run is None:
            self._cgroup_run = cgroups.Run.from_dict(data)
        self._boxes_made += 1
        tmp = 2 * self.sandbox.tmp_mb  # its /tmp and working folder are in memory too
        box = cgroups.Box.create(f"{self.grading.get('box_prefix', 'box')}-{kind}{self._boxes_made}",
                                 run=self._cgroup_run, memory_bytes=(self.sandbox.memory_mb + tmp) * 2**20,
                                 pids_max=self.sandbox.max_processes)
        self._live_boxes.append(box)
        return box

    def _remove_boxes(self, keep=()):
        for box in [b for b in self._live_boxes if b not in keep]:
            try:
                box.remove()
            except Exception:
                pass
            self._live_boxes.remove(box)

    async def _start(self):
        conn = self._conn_dir()
        fifo = os.path.join(conn, "audit.fifo")
        os.mkfifo(fifo, 0o600)
        if self.grading.get("uid") is not None:
            os.chown(fifo, self.grading["uid"], self.grading["uid"])
        self._audit = AuditReader(fifo)
        self.km = SandboxKernelManager(config=self.config)
        self._kernel_box = self._box("kernel")
        self.km.grading = {**self.grading, "sandbox": self.sandbox, "conn_dir": conn, "audit_fifo": fifo,
                           "box": self._kernel_box}
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
        self.kc.allow_stdin = True
        if self.grading.get("uid") is not None and os.geteuid() == 0:
            # sockets exist now: take write access away, so the kernel cannot fill the disk here
            os.chown(conn, 0, 0)
            os.chmod(conn, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        self._kernel_lost = False

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
        if getattr(self, "_kernel_box", None) is not None:
            self._remove_boxes(keep=[b for b in self._live_boxes if b is not self._kernel_box])
            self._kernel_box = None

    async def _run_cell(self, cell, index, timeout) -> str:
        """Execute one cell in the student's kernel; ``"ok"``, ``"error"``, ``"timeout"`` or ``"died"``."""
        if self.kc is None:  # no live kernel (a restart failed)
            return "died"
        self.timeout = max(1, int(timeout))
        self._out_bytes[index] = 0
        try:
            await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1,
                                          store_history=cell.metadata.get("nbjudge", {}).get("origin") != "instructor")
        except CellTimeoutError:
            return "timeout"
        except DeadKernelError:
            return "died"
        except Exception as exc:  # a message the grader cannot read (nested too deep, not JSON, ...)
            self._note("malformed-output", f"{self._label(cell, index)}: the kernel sent a message the grader "
                       f"could not read ({type(exc).__name__}: {str(exc)[:120]}); the cell scores 0 and the kernel "
                       "was restarted", cell=self._label(cell, index))
            self._fail_cell(cell, "GraderError", "the kernel sent an output the grader could not read")
            await self._lose_kernel()
            return "lost"
        if not cell.source.strip():
            return "ok"
        return self.cell_status.get(index, "ok")

    def on_cell_executed(self, **kwargs):
        index, reply = kwargs["cell_index"], kwargs["execute_reply"]
        self.cell_status[index] = "error" if reply["content"]["status"] == "error" else "ok"
        super().on_cell_executed(**kwargs)

    # -- the bridge: one request of the judge, run in the student's kernel ----------------------
    async def _bridge(self, request, deadline) -> dict:
        """``{"reply_text": ...}`` (the student's answer, unparsed) or ``{"reply": {"transport": ...}}``."""
        if self.kc is None or self._kernel_lost:
            return {"reply": {"transport": "dead", "message": "the student's kernel is not running (it died "
                                                              "or was stopped earlier)"}}
        text = json.dumps(request, separators=(",", ":"))
        code = f"__import__('_nbjudge_bridge').serve({text!r})"
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=True, stop_on_error=False)
        sockets = {self.kc.iopub_channel.socket: "iopub", self.kc.stdin_channel.socket: "stdin",
                   self.kc.shell_channel.socket: "shell"}
        poller = zmq.asyncio.Poller()
        for sock in sockets:
            poller.register(sock, zmq.POLLIN)
        payload, replied, idle = None, False, False
        nested = 0  # requests of the judge's functions now being answered by the kernel
        while not (replied and idle):  # idle comes after every output of the request
            left = deadline - time.monotonic()
            if left <= 0:
                await self._lose_kernel()
                return {"reply": {"transport": "timeout", "message": "the student's code did not answer within "
                                                                     f"the cell's time limit"}}
            events = dict(await poller.poll(timeout=min(left, 5.0) * 1000))
            if not events and not await self.km.is_alive():
                self._kernel_lost = True
                return {"reply": {"transport": "dead", "message": "the student's kernel died while the judge "
                                                                  "called it"}}
            for sock in events:
                channel = getattr(self.kc, f"{sockets[sock]}_channel")
                msg = await channel.get_msg(timeout=0)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg.get("content", {})
                if sockets[sock] == "iopub":
                    if kind == "status" and content.get("execution_state") == "idle":
                        idle = True
                    elif kind == "display_data" and payload is None and \
                            isinstance((content.get("data") or {}).get(REPLY_MIME), str):
                        payload = content["data"][REPLY_MIME]
                        if len(payload) > protocol.LIMITS["bytes"]:
                            await self._lose_kernel()
                            raise BridgeViolation(f"a reply of {len(payload) // 2**20} MiB (the limit is "
                                                  f"{protocol.LIMITS['bytes'] // 2**20} MiB)")
                    elif kind in ("stream", "display_data", "execute_result", "error"):
                        self._call_output[self._calling] = self._call_output.get(self._calling, 0) + \
                            _output_size(content)
                elif sockets[sock] == "shell":
                    replied = kind == "execute_reply"
                elif kind == "input_request":
                    prompt = str(content.get("prompt", ""))
                    if prompt.startswith(CALLBACK_PREFIX):
                        await self.judge.send({"callback_text": prompt[len(CALLBACK_PREFIX):]})
                    elif prompt.startswith(NESTED_PREFIX) and nested > 0:
                        nested -= 1
                        await self.judge.send({"reply_text": prompt[len(NESTED_PREFIX):]})
                    elif prompt.startswith(NESTED_PREFIX):  # an answer to nothing the judge asked
                        await self._lose_kernel()
                        raise BridgeViolation("the student's kernel sent an answer to a request the judge never made")
                    else:  # the student's own input(): nothing to read
                        self.kc.input("")
                        continue
                    answer, asks = await self._judge_answer(deadline)
                    nested += asks
                    self.kc.input(answer)
        if payload is None:
            return {"reply": {"transport": "protocol", "message": "the student's kernel finished the judge's "
                                                                  "request without a reply (the bridge was "
                                                                  "replaced or removed)"}}
        return {"reply_text": payload}

    async def _judge_answer(self, deadline) -> tuple[str, int]:
        """What the student's kernel, waiting in a callback, gets next from the judge: the callback's
        result, or a request of the judge's function to the student's code (requests nest); with 1 for a
        request (the kernel owes an answer to it) and 0 for a result."""
        frame = await asyncio.wait_for(self.judge.recv(), max(0.1, deadline - time.monotonic()))
        if "request" in frame:
            return json.dumps({"request": frame["request"]}, ensure_ascii=False), 1
        if "callback_reply" in frame:
            return json.dumps(frame["callback_reply"], ensure_ascii=False), 0
        await self._lose_kernel()
        raise BridgeViolation(f"the judge sent {sorted(frame)[:3]} while the student's code waited in a callback")

    async def _lose_kernel(self):
        self._kernel_lost = True
        try:
            if self.km is not None:
                await self.km.provisioner.kill()
        except Exception:
            pass

    # -- the judge ------------------------------------------------------------------------------
    async def _start_judge(self):
        g = self.grading
        # -I: neither the working folder (the assignment's files) nor PYTHON* variables reach sys.path
        inner = [sys.executable, "-I", "-m", "nbjudge.judge"]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
               "MPLCONFIGDIR": "/tmp", "KERAS_HOME": "/tmp/keras", "PYTHONDONTWRITEBYTECODE": "1",
               **self.sandbox.env}
        if self.sandbox.enabled:
            command = judge_command(inner, stage=g.get("judge_stage", g["stage"]), sandbox=self.sandbox,
                                    bwrap=g["bwrap"], uid=g.get("judge_uid"), ro_paths=g["ro_paths"])
            self._judge_box = self._box("judge")
            if self._judge_box is not None:
                command = self._judge_box.wrap(command)
            cwd = g["scratch"]
        else:
            command, cwd = inner, g.get("judge_stage", g["stage"])
        self.judge = Judge(command, cwd, os.path.join(g["scratch"], "judge.log"), env)
        await self.judge.start()
        submitted = [c.source for c in self.nb.cells if c.cell_type == "code"
                     and c.metadata.get("nbjudge", {}).get("origin") in ("answer", "student")]
        await self.judge.send({"op": "sources", "cells": submitted})
        await asyncio.wait_for(self.judge.recv(), JUDGE_START_TIMEOUT)
        for source in self._setup_sources:
            await self._judge_run("setup", None, source, time.monotonic() + self.timeout_per_cell)

    async def _stop_judge(self):
        if self.judge is not None:
            await self.judge.stop()
            self.judge = None
        if getattr(self, "_judge_box", None) is not None:
            self._remove_boxes(keep=[b for b in self._live_boxes if b is not self._judge_box])
            self._judge_box = None

    async def _judge_run(self, op, gid, source, deadline):
        """Run one cell in the judge; its outcome dict."""
        await self.judge.send({"op": op, "cell": gid, "source": source})
        while True:
            frame = await asyncio.wait_for(self.judge.recv(), max(0.1, deadline - time.monotonic()))
            if "done" in frame:
                return frame["done"]
            if "request" not in frame:
                raise protocol.ProtocolError(f"the judge sent {sorted(frame)}")
            await self.judge.send(await self._bridge(frame["request"], deadline))

    async def _judge_setup(self, cell, label):
        self._setup_sources.append(cell.source)
        if self.judge is None:
            return
        try:
            await self._judge_run("setup", label, cell.source, time.monotonic() + self.timeout_per_cell)
        except Exception:
            await self._stop_judge()

    async def _abandon_test(self, cell, ename, evalue, kind, message, label) -> str:
        """A test that could not finish: it fails, with an incident, and the judge and the student's
        kernel (which may be waiting in the middle of a call) both start afresh."""
        await self._stop_judge()
        await self._lose_kernel()
        self._fail_cell(cell, ename, evalue)
        self._note(kind, message, cell=label)
        return "error"

    async def _judge_test(self, cell, index, timeout) -> str:
        """Run a test cell in the judge and write its outcome into the cell; ``"ok"`` or ``"error"``."""
        label = self._label(cell, index)
        self._calling = label
        cell.outputs = []
        try:
            if self.judge is None:
                await self._start_judge()
        except Exception as exc:
            await self._stop_judge()
            self._fail_cell(cell, "GraderError", "not run: the judge could not start")
            self._note("judge-error", f"the judge could not start for {label} ({type(exc).__name__}: {exc}); "
                       f"see {self.grading['scratch']}/judge.log", cell=label)
            return "error"
        try:
            outcome = await self._judge_run("test", label, cell.source, time.monotonic() + timeout)
        except BridgeViolation as exc:
            return await self._abandon_test(cell, "GraderError", "the student's kernel broke the judge's protocol "
                                            "during this test", "protocol", f"during {label}: {exc}; the test scores "
                                            "0, the kernel and the judge were restarted", label)
        except asyncio.TimeoutError:  # the kernel may be waiting in a callback: both start afresh
            return await self._abandon_test(cell, "CellTimeoutError", f"the test ran longer than {int(timeout)} s and "
                                            "was stopped", "timeout", f"{label} ran longer than {int(timeout)} s; it "
                                            "scores 0", label)
        except (asyncio.IncompleteReadError, protocol.ProtocolError, ValueError, OSError, ConnectionError,
                RecursionError) as exc:
            return await self._abandon_test(cell, "GraderError", "the judge failed while running this test",
                                            "judge-error", f"the judge failed while running {label} "
                                            f"({type(exc).__name__}); it scores 0 and the judge was restarted", label)
        for name in ("stdout", "stderr"):
            text = str(outcome.get(name) or "")
            if text:
                cell.outputs.append(NotebookNode(output_type="stream", name=name, text=text))
        if outcome.get("result") is not None:
            cell.outputs.append(NotebookNode(output_type="execute_result", execution_count=None, metadata={},
                                             data={"text/plain": str(outcome["result"])}))
        if outcome.get("status") != "ok":
            cell.outputs.append(NotebookNode(output_type="error", ename=str(outcome.get("ename", "Error")),
                                             evalue=str(outcome.get("evalue", "")),
                                             traceback=[str(t) for t in outcome.get("traceback", [])][-60:]))
            transport = outcome.get("transport")
            if transport == "StudentTimeout":
                self._note("call-timeout", f"during {label} the student's code did not answer within the cell's "
                           f"limit ({int(timeout)} s); the test scores 0 and the kernel was restarted", cell=label)
            elif transport == "StudentDied":
                self._note("kernel-died", f"the kernel died while {label} called the submission's code (os._exit, "
                           "a crash, or a resource limit); the test scores 0 and the kernel was restarted", cell=label)
            elif transport == "BrokenProtocol":
                self._note("protocol", f"during {label}: {outcome.get('evalue', '')[:300]}", cell=label)
            elif outcome.get("not_data"):
                self._note("protocol", f"{label} failed on a value of the submission that is not data: "
                           f"{'; '.join(outcome['not_data'])}", cell=label)
            if outcome.get("undefined"):
                self._note("undefined-name", f"{label} uses {', '.join(outcome['undefined'])}, which the "
                           "submission does not define (misnamed, or its cell failed); the test scores 0", cell=label)
        dropped = self._call_output.pop(label, 0)
        if dropped > self.sandbox.max_output_bytes:
            self._note("output-truncated", f"the submission's code printed {dropped} bytes while {label} called it; "
                       "output produced during the judge's calls is never kept", cell=label)
        cell.execution_count = None
        return "ok" if outcome.get("status") == "ok" else "error"

    # -- the notebook ----------------------------------------------------------------------------
    def preprocess(self, nb, resources, km=None):
        self.nb, self.resources = nb, resources
        self.reset_execution_trackers()
        self._out_bytes, self._truncated, self._errors_kept = {}, {}, {}
        self.incidents, self.cell_status, self.audit_events = [], {}, []
        self._seen, self._total_out, self._conn_dirs = set(), 0, []
        self._setup_sources, self._kernel_lost = [], False
        self._call_output, self._calling = {}, None
        self._cgroup_run, self._live_boxes, self._boxes_made = None, [], 0
        self._kernel_box = self._judge_box = None
        self.km = self.kc = None
        self.judge = None
        self.timeout_per_cell = int(self.timeout or 30)
        try:
            run_sync(self._run_notebook)()
        finally:
            self.timeout = self.timeout_per_cell
        return nb, resources

    def _note(self, kind, message, cell=None, key=None):
        """Record an incident; ``key`` (if given) reports the same finding only once."""
        if key is not None:
            if key in self._seen:
                return
            self._seen.add(key)
        self.incidents.append(Incident(kind, message, cell=cell,
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
        instructor = {i for i in code if cells[i].metadata.get("nbjudge", {}).get("origin") == "instructor"}
        done, restarts = [], 0
        try:
            await self._start()
        except Exception as exc:  # the kernel could not start: nothing runs
            for i in code:
                self._fail_cell(cells[i], "GraderError", "not run: the grading kernel could not start")
            self._note("kernel-start-failed", f"the grading kernel could not start: {exc}")
            await self._stop()
            return
        pos = 0
        try:
            while pos < len(code):
                i = code[pos]
                cell, label = cells[i], self._label(cells[i], i)
                left = deadline - time.monotonic()
                if left <= 1:
                    for j in code[pos:]:
                        self._fail_cell(cells[j], "GraderTimeout", "not run: the notebook's time budget "
                                        f"({self.sandbox.notebook_timeout} s) ran out")
                    self._note("notebook-timeout", f"the notebook's time budget ({self.sandbox.notebook_timeout} s) "
                               f"ran out before {label}; {len(code) - pos} code cell(s) did not run", cell=label)
                    break
                if i in tests:
                    self.cell_status[i] = await self._judge_test(cell, i, min(self.timeout_per_cell, left))
                    self._resource_errors(cell, label)
                    if self._kernel_lost:
                        if restarts >= self.sandbox.max_restarts or not await self._restart(done, deadline):
                            self._give_up(code[pos + 1:], restarts, label)
                            break
                        restarts += 1
                    pos += 1
                    continue
                outcome = await self._run_cell(cell, i, min(self.timeout_per_cell, left))
                if outcome in ("timeout", "died", "lost"):
                    if outcome != "lost":
                        self._cell_lost(cell, label, outcome)
                    self.cell_status[i] = outcome
                    if restarts >= self.sandbox.max_restarts or not await self._restart(done, deadline):
                        self._give_up(code[pos + 1:], restarts, label)
                        break
                    restarts += 1
                else:
                    done.append(i)
                    self._resource_errors(cell, label)
                if i in instructor:
                    await self._judge_setup(cell, label)
                pos += 1
        finally:
            await self._stop_judge()
            await self._stop()
        self._report_audit()
        for index, dropped in self._truncated.items():
            if index < len(cells):
                label = self._label(cells[index], index)
                self._note("output-truncated", f"{label} printed more than {self.sandbox.max_output_bytes} bytes; "
                           f"{dropped} bytes of output were dropped", cell=label)
        self.resources.setdefault("nbjudge", {}).update(elapsed=round(time.monotonic() - started, 3))

    def _cell_lost(self, cell, label, outcome):
        if outcome == "timeout":
            self._fail_cell(cell, "CellTimeoutError", f"the cell ran longer than {self.timeout_per_cell} s and was "
                            "stopped")
            self._note("timeout", f"{label} ran longer than {self.timeout_per_cell} s (infinite loop?); it scores 0 "
                       "and the kernel was restarted", cell=label)
        else:
            self._fail_cell(cell, "DeadKernelError", "the kernel died while running this cell (os._exit, a crash, "
                            "or a resource limit such as memory)")
            self._note("kernel-died", f"the kernel died while running {label} (os._exit, a crash, or a resource "
                       "limit); it scores 0 and the kernel was restarted", cell=label)

    def _give_up(self, rest, restarts, label):
        for j in rest:
            self._fail_cell(self.nb.cells[j], "GraderError", "not run: the kernel had to be restarted too many times")
        if rest:
            self._note("restarts-exhausted", f"after {restarts + 1} kernel restart(s) the remaining {len(rest)} code "
                       "cell(s) were not run", cell=label)

    def _resource_errors(self, cell, label):
        """A cell that failed on a sandbox limit is an incident, not just a failed test."""
        for output in cell.outputs:
            if output.output_type != "error":
                continue
            text = f"{output.ename}: {output.evalue}"
            if output.ename == "MemoryError":
                self._note("memory-limit", f"{label} ran out of memory (limit "
                           f"{self.sandbox.memory_mb} MiB): {text[:120]}", cell=label)
            elif "Resource temporarily unavailable" in text or output.ename == "BlockingIOError":
                self._note("process-limit", f"{label} hit the process limit "
                           f"({self.sandbox.max_processes} processes and threads): {text[:120]}", cell=label)
            elif "File too large" in text:
                self._note("file-size-limit", f"{label} wrote a file larger than "
                           f"{self.sandbox.max_file_mb} MiB: {text[:120]}", cell=label)

    async def _restart(self, done, deadline) -> bool:
        """Fresh kernel, then replay the cells in ``done`` (outputs discarded). False if impossible."""
        await self._stop()
        try:
            await self._start()
        except Exception as exc:
            self._note("kernel-start-failed", f"the grading kernel could not be restarted: {exc}")
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
            if outcome in ("timeout", "died", "lost"):
                self._note("replay-failed", f"replaying {self._label(self.nb.cells[j], j)} after a "
                           f"restart failed ({outcome}); later cells may miss its definitions")
                done.remove(j)
                await self._stop()
                try:
                    await self._start()
                except Exception:
                    return False
        return True

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
            self._note(kind, f"the submission {what}")
