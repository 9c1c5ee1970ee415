"""One cgroup per grading sandbox: one memory limit for all its processes, an equal CPU share, a pids limit.

Why
---
The sandbox's resource limits (``RLIMIT_AS``, ``RLIMIT_NPROC``) are per process: 128 processes
of 2 GiB each are 256 GiB, and a submission that forks spinning children gets one CPU share per
child, starving the kernel graded beside it. A cgroup counts all the processes of a sandbox
together: the kernel charges their memory to one limit, the CPU scheduler shares the CPU between
cgroups first (equal weights: each of N parallel boxes gets 1/N of a contended CPU, however many
processes it runs), and ``pids.max`` bounds their number.

Use
---
::

    support = detect()                    # Support(available, reason, ...); never raises
    if not support.available:             # grade anyway, and say so at the top of the report
        print(support.summary)            # "CPU and memory were not isolated ...: <reason>"
    cleanup_stale(support)                # folders of crashed runs (their owner process is gone)
    with Run.open(support) as run:        # <base>/nbjudge/<run>/ in every hierarchy
        with Box.create("slot0-kernel1", run=run, memory_bytes=2 << 30, pids_max=128) as box:
            proc = subprocess.Popen(box.wrap(["bwrap", ...]))   # joins the box before it execs bwrap
            ...
            box.stats()                   # peak memory, OOM kills, pids, CPU time
        # leaving the block: every process of the box is SIGKILLed and its folders are removed

Layout
------
``<base>/nbjudge/<label>.<pid>.<starttime>.<random>/<box>/``, where ``<base>`` is the grader's
own cgroup (from ``/proc/self/cgroup``) in each hierarchy, so the boxes stay inside whatever
limits the grader itself runs under (a systemd unit, a container) and never escape them. The run
folder names its owner process, which is how :func:`cleanup_stale` knows a run has crashed.

cgroup v2 and v1
----------------
=====================  ==========================================  =====================================
                       v2 (one hierarchy, ``/sys/fs/cgroup``)      v1 (one hierarchy per controller)
=====================  ==========================================  =====================================
folders of a box       one                                         memory, cpu, cpuacct (if mounted
                                                                   apart from cpu), pids
memory                 ``memory.max``; ``memory.swap.max`` = 0     ``memory.limit_in_bytes``;
                                                                   ``memory.memsw.limit_in_bytes`` = the
                                                                   same (no swap), else swappiness 0
CPU                    ``cpu.weight`` (1..10000, default 100)      ``cpu.shares`` = weight * 1024 / 100
processes              ``pids.max``                                ``pids.max``
joining                ``echo 0 > cgroup.procs`` (0 = the writer)  the same, once per hierarchy
stats                  ``memory.peak``, ``memory.events``,         ``memory.max_usage_in_bytes``,
                       ``pids.current``, ``cpu.stat``              ``memory.oom_control``,
                                                                   ``pids.current``, ``cpuacct.usage``
killing                ``cgroup.kill`` (Linux 5.14), else a        a SIGKILL loop over ``cgroup.procs``
                       SIGKILL loop over ``cgroup.procs``
preparing              ``+memory +pids +cpu`` in every level's     nothing (no ``subtree_control``)
                       ``cgroup.subtree_control``; see below
=====================  ==========================================  =====================================

On v2 a cgroup that holds processes cannot enable controllers for its children (the "no internal
processes" rule; only the real root is exempt). The grader holds processes in its own cgroup, so
:meth:`Run.open` first moves every process of that cgroup into a leaf ``<base>/nbjudge-grader``
and then enables the controllers in ``<base>``. Give the grader a cgroup of its own for that:
``systemd-run --scope -p Delegate=yes -- make grade`` (or ``Delegate=yes`` in its service), or a
container whose cgroup holds only the grader. The move is not undone: the grader stays in the
leaf, which disappears with its cgroup.

Where no cgroup can be created (not root, a read-only cgroupfs, a container without delegation,
controllers not delegated), :func:`detect` says why in :attr:`Support.reason` and grading runs
without cgroups; :attr:`Support.summary` is the line to print at the top of the report.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import re
import secrets
import shlex
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
#: the folder (in the grader's own cgroup) that holds one folder per grading run
PARENT = "nbjudge"
#: cgroup v2: the leaf the grader's own processes move to (a cgroup with processes has no controllers)
GRADER_LEAF = "nbjudge-grader"
PROBE_PREFIX = "nbjudge-probe-"
V2_CONTROLLERS = ("memory", "pids", "cpu")
#: cgroup v1: controller -> a file every cgroup of its hierarchy has (cpuacct is optional: CPU time only)
V1_MARKERS = {"memory": "memory.limit_in_bytes", "cpu": "cpu.shares", "pids": "pids.max",
              "cpuacct": "cpuacct.usage"}
V1_REQUIRED = ("memory", "cpu", "pids")
DEFAULT_CPU_WEIGHT = 100  # v2's default; v1's cpu.shares default is 1024
MIN_MEMORY_BYTES = 1 << 20
NOT_ISOLATED = "CPU and memory were not isolated between submissions"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_RUN = re.compile(r"(?P<label>[A-Za-z0-9][A-Za-z0-9_-]{0,63})\.(?P<pid>\d+)\.(?P<start>\d+)\.[0-9a-f]+\Z")


class CgroupError(RuntimeError):
    """A cgroup operation failed; the message names the file and the reason."""


class CgroupsUnavailable(CgroupError):
    """:meth:`Run.open` was given a :class:`Support` that says cgroups are not usable here."""


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    """One cgroup hierarchy: the controllers it carries and the grader's own cgroup in it (``base``)."""

    controllers: tuple[str, ...]
    base: Path


@dataclasses.dataclass(frozen=True)
class Support:
    """Whether and how this machine can give each sandbox its own cgroup (the result of :func:`detect`).

    Attributes
    ----------
    available : bool
        True if :meth:`Run.open` can create boxes here.
    reason : str
        One line: how cgroups will be used, or why they cannot be.
    version : int or None
        1 or 2 when available.
    hierarchies : tuple of Hierarchy
        v2: one; v1: memory, cpu, pids, and cpuacct when mounted apart from cpu.
    leaf : bool
        v2 only: the grader's processes must first move into ``<base>/nbjudge-grader``.
    """

    available: bool
    reason: str
    version: int | None = None
    hierarchies: tuple[Hierarchy, ...] = ()
    leaf: bool = False

    @property
    def summary(self) -> str:
        """The line for the top of the grading report."""
        if self.available:
            return f"Each sandbox ran in its own cgroup ({self.reason})."
        return f"{NOT_ISOLATED}: {self.reason}."


@dataclasses.dataclass(frozen=True)
class Stats:
    """What a box's processes used, together (None: this kernel does not report it)."""

    memory_peak_bytes: int | None   #: highest memory of the box (v2 ``memory.peak`` needs Linux 5.19)
    memory_current_bytes: int | None
    oom_kills: int | None           #: processes the kernel killed at the box's memory limit
    pids_current: int | None        #: processes and threads now
    pids_refused: int | None        #: forks refused at ``pids.max``
    cpu_ns: int | None              #: CPU time of all its processes, user + system


# -- small file helpers ---------------------------------------------------------------------------
def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, text: str) -> None:
    """Write to an existing cgroup file (never creates one: a missing file is an error)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _set(path: Path, value) -> None:
    try:
        _write(path, str(value))
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror or exc}") from exc


def _int(text: str | None) -> int | None:
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def _keyed(text: str | None, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed file such as ``memory.events`` ("oom_kill 3")."""
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return _int(parts[1])
    return None


def _pids(path: Path) -> set[int]:
    return {int(line) for line in (_read(path) or "").split()}


def _signal_all(folder: Path) -> set[int]:
    """SIGKILL every process listed in one cgroup folder (v2: ``cgroup.kill`` first); returns their pids."""
    kill = folder / "cgroup.kill"
    if kill.exists():
        try:
            _write(kill, "1")
        except OSError:
            pass  # the SIGKILLs below do it
    pids = _pids(folder / "cgroup.procs")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def _rmdir(path: Path, timeout: float = 10.0) -> None:
    """Kill what is in a cgroup folder and remove it; missing is fine.

    rmdir fails (EBUSY) while a process is in the folder: one that is still exiting, or one that
    joined just now (a wrapped command starting while its box is removed). Each retry kills what
    is listed again, so a late joiner cannot keep the folder alive.
    """
    deadline = time.monotonic() + timeout
    while True:
        pids = _signal_all(path)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                still = f" (processes {sorted(pids)[:10]} survived SIGKILL)" if pids else ""
                raise CgroupError(f"cannot remove {path}: {exc.strerror}{still}") from exc
        time.sleep(0.02)


def _start_time(pid: int) -> int | None:
    """The start time of a process (clock ticks after boot), to tell a live owner from a reused pid."""
    stat = _read(Path(f"/proc/{pid}/stat"))
    if stat is None:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _hint(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "run as root, or delegate the cgroup to the grader's user"
    if exc.errno == errno.EROFS:
        return "the cgroup file system is read-only: a container without cgroup delegation"
    return exc.strerror or str(exc)


def _probe(folder: Path, what: str, marker: str | None) -> str | None:
    """Create and remove a child cgroup of ``folder``; None if that works, else why not."""
    probe = folder / f"{PROBE_PREFIX}{os.getpid()}"
    try:
        probe.mkdir()
    except FileExistsError:
        pass
    except OSError as exc:
        return f"{what} not writable: {folder} ({_hint(exc)})"
    try:
        if not (probe / "cgroup.procs").exists() or (marker and not (probe / marker).exists()):
            return f"{folder} is not a cgroup file system (a new folder in it has no {marker or 'cgroup.procs'})"
        return None
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


# -- detection ------------------------------------------------------------------------------------
def _own_paths(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as controller -> path ("" is the v2 hierarchy)."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def _own_folder(mount: Path, path: str | None) -> Path:
    if path:
        folder = mount / path.lstrip("/")
        if folder.is_dir():
            return folder
    # a container without a cgroup namespace shows the host's path, with its own cgroup mounted at the top
    return mount


def _detect_v2(mount: Path, own: str | None) -> Support:
    folder = _own_folder(mount, own)
    if folder.name == GRADER_LEAF and folder != mount:
        folder = folder.parent  # an earlier Run.open moved the grader into its leaf
    offered = (_read(folder / "cgroup.controllers") or "").split()
    missing = [c for c in V2_CONTROLLERS if c not in offered]
    if missing:
        return Support(False, f"cgroup v2 controller(s) {', '.join(missing)} not delegated to {folder} "
                              f"(its cgroup.controllers: {' '.join(offered) or 'none'}); run the grader as "
                              "`systemd-run --scope -p Delegate=yes -- ...` or in a container with cgroup delegation")
    why = _probe(folder, "cgroup v2", None)
    if why is None and not os.access(folder / "cgroup.subtree_control", os.W_OK):
        why = f"cgroup v2 not writable: {folder / 'cgroup.subtree_control'} (run as root, or delegate it)"
    if why:
        return Support(False, why)
    leaf = (folder / "cgroup.type").exists()  # every cgroup but the real root has it
    how = "the grader moves into a leaf" if leaf else "the root cgroup"
    return Support(True, f"cgroup v2 at {folder}, {how}; memory, pids, cpu", 2, (Hierarchy(V2_CONTROLLERS, folder),),
                   leaf)


def _v1_mount(root: Path, controller: str) -> Path | None:
    names = [controller]
    if controller in ("cpu", "cpuacct"):
        names += ["cpu,cpuacct", "cpuacct,cpu"]
    for name in names:
        if (root / name / "tasks").exists():  # "tasks" exists only in v1 hierarchies
            return root / name
    return None


def _detect_v1(root: Path, own: dict[str, str]) -> Support:
    found: dict[Path, list[str]] = {}  # real mount -> controllers
    bases: dict[Path, Path] = {}
    for controller in V1_MARKERS:
        mount = _v1_mount(root, controller)
        if mount is None:
            if controller in V1_REQUIRED:
                return Support(False, f"cgroup v1 has no {controller} hierarchy at {root / controller}")
            continue
        real = mount.resolve()
        found.setdefault(real, []).append(controller)
        bases[real] = _own_folder(mount, own.get(controller))
    hierarchies = []
    for real, controllers in found.items():
        why = _probe(bases[real], f"cgroup v1 {','.join(controllers)} controller", V1_MARKERS[controllers[0]])
        if why:
            return Support(False, why)
        hierarchies.append(Hierarchy(tuple(controllers), bases[real]))
    where = ", ".join(f"{','.join(h.controllers)} in {h.base}" for h in hierarchies)
    return Support(True, f"cgroup v1: {where}", 1, tuple(hierarchies))


def detect(root: str | os.PathLike = ROOT, *, proc_cgroup: str | os.PathLike = PROC_CGROUP) -> Support:
    """Find out whether each sandbox can get its own cgroup here, and how. Never raises.

    cgroup v2 is used when the grader's own v2 cgroup offers the memory, pids and cpu
    controllers; otherwise v1, when memory, cpu and pids hierarchies are mounted (cpuacct too,
    for CPU time). Either way a child cgroup is created and removed to prove it works.

    Parameters
    ----------
    root : path
        Where the cgroup file systems are mounted (tests pass a fake one).
    proc_cgroup : path
        The grader's cgroup membership, as in ``/proc/self/cgroup``.
    """
    root = Path(root)
    try:
        own = _own_paths(Path(proc_cgroup).read_text())
    except OSError as exc:
        return Support(False, f"cannot read {proc_cgroup}: {exc.strerror}")
    unified = next((p for p in (root, root / "unified") if (p / "cgroup.controllers").is_file()), None)
    v2 = _detect_v2(unified, own.get("")) if unified is not None else None
    if v2 is not None and (v2.available or unified == root):
        return v2
    if _v1_mount(root, "memory") is None:
        return v2 or Support(False, f"no cgroup file system at {root} (neither v2 cgroup.controllers nor v1 "
                                    "memory, cpu and pids hierarchies)")
    # hybrid: the controllers are bound to the v1 hierarchies, the v2 one beside them has none
    return _detect_v1(root, own)


# -- a grading run: the parent folder of its boxes --------------------------------------------------
def _enable_v2(folder: Path) -> None:
    """Let ``folder``'s children use memory, pids and cpu (v2 ``cgroup.subtree_control``)."""
    enabled = (_read(folder / "cgroup.subtree_control") or "").split()
    wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c not in enabled)
    if not wanted:
        return
    try:
        _write(folder / "cgroup.subtree_control", wanted)
    except OSError as exc:
        extra = (" (it holds processes: cgroup v2 enables controllers only for cgroups without their own "
                 "processes)") if exc.errno == errno.EBUSY else ""
        raise CgroupError(f"cannot enable {wanted} in {folder / 'cgroup.subtree_control'}: "
                          f"{exc.strerror}{extra}") from exc


def _move_into_leaf(base: Path) -> None:
    """v2: move every process of ``base`` into ``base/nbjudge-grader``, so that ``base`` can enable controllers."""
    leaf = base / GRADER_LEAF
    leaf.mkdir(exist_ok=True)
    for _ in range(20):  # processes may fork while they move
        pids = _pids(base / "cgroup.procs")
        if not pids:
            return
        for pid in pids:
            try:
                _write(leaf / "cgroup.procs", str(pid))
            except ProcessLookupError:
                pass
            except OSError as exc:
                raise CgroupError(f"cannot move process {pid} out of {base} into {leaf}: {exc.strerror}") from exc
    raise CgroupError(f"processes keep appearing in {base}; cannot empty it for its child cgroups")


class Run:
    """The folder of one grading run, ``<base>/nbjudge/<run>/``, in every hierarchy.

    Create it with :meth:`open`; :meth:`close` (or leaving the ``with`` block) removes every box
    it made and then its folders. A Run is plain data (paths), so it can be passed to worker
    processes, which create their boxes with :meth:`Box.create`.
    """

    def __init__(self, support: Support, name: str, folders: tuple[Path, ...]):
        self.support = support
        self.name = name
        self.folders = folders
        self.version = support.version
        self._boxes: list[Box] = []

    @classmethod
    def open(cls, support: Support, *, label: str = "grade") -> "Run":
        """Create the run's folders (v2: after preparing the grader's cgroup, see the module docstring).

        Raises
        ------
        CgroupsUnavailable
            If ``support`` says cgroups are not usable here.
        CgroupError
            If a folder cannot be created; nothing is left behind.
        """
        if not isinstance(support, Support):
            raise TypeError(f"support must be a Support from detect(), got {type(support).__name__}")
        if not support.available:
            raise CgroupsUnavailable(f"{NOT_ISOLATED}: {support.reason}")
        if not _NAME.match(label):
            raise ValueError(f"label must be 1-64 letters, digits, '-' or '_' starting with a letter or digit, "
                             f"got {label!r}")
        pid = os.getpid()
        name = f"{label}.{pid}.{_start_time(pid) or 0}.{secrets.token_hex(4)}"
        made: list[Path] = []
        try:
            for h in support.hierarchies:
                parent = h.base / PARENT
                if support.version == 2:
                    if support.leaf:
                        _move_into_leaf(h.base)
                    _enable_v2(h.base)
                parent.mkdir(exist_ok=True)
                if support.version == 2:
                    _enable_v2(parent)
                (parent / name).mkdir()
                made.append(parent / name)
                if support.version == 2:
                    _enable_v2(parent / name)
        except (OSError, CgroupError) as exc:
            try:
                _remove_folders(made)
            except CgroupError:
                pass  # the first error is the one to report
            if isinstance(exc, CgroupError):
                raise
            raise CgroupError(f"cannot create the run's cgroup folder {exc.filename}: {exc.strerror}") from exc
        return cls(support, name, tuple(made))

    def to_dict(self) -> dict:
        """The run as plain data, for a worker process (:meth:`from_dict`)."""
        return {"name": self.name, "folders": [str(f) for f in self.folders], "version": self.support.version,
                "reason": self.support.reason, "leaf": self.support.leaf,
                "hierarchies": [[list(h.controllers), str(h.base)] for h in self.support.hierarchies]}

    @classmethod
    def from_dict(cls, data: dict) -> "Run":
        """A run opened by another process (its boxes are this process's to remove)."""
        support = Support(True, str(data["reason"]), int(data["version"]),
                          tuple(Hierarchy(tuple(c), Path(b)) for c, b in data["hierarchies"]), bool(data["leaf"]))
        return cls(support, str(data["name"]), tuple(Path(f) for f in data["folders"]))

    def close(self) -> None:
        """Kill and remove every box of this run, then the run's folders (idempotent)."""
        errors = []
        for box in list(self._boxes):
            try:
                box.remove()
            except CgroupError as exc:
                errors.append(str(exc))
        for folder in self.folders:
            if folder.is_dir():
                for child in folder.iterdir():  # boxes made by other processes (workers)
                    if child.is_dir():
                        try:
                            _rmdir(child)
                        except CgroupError as exc:
                            errors.append(str(exc))
        try:
            _remove_folders(list(self.folders))
        except CgroupError as exc:
            errors.append(str(exc))
        for folder in self.folders:  # the shared parent, once no run uses it
            try:
                folder.parent.rmdir()
            except OSError:
                pass
        if errors:
            raise CgroupError("; ".join(errors))

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Run({self.name!r}, v{self.version})"


def _remove_folders(folders: list[Path]) -> None:
    """rmdir every folder, deepest first, trying all of them before reporting what failed."""
    errors = []
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            _rmdir(folder)
        except CgroupError as exc:
            errors.append(str(exc))
    if errors:
        raise CgroupError("; ".join(errors))


def _kill_folder(folder: Path, timeout: float = 10.0) -> None:
    """SIGKILL every process of one cgroup folder until none is listed."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _signal_all(folder)
        if not pids:
            return
        if time.monotonic() > deadline:
            raise CgroupError(f"{len(pids)} process(es) of {folder} survived SIGKILL for {timeout} s: "
                              f"{sorted(pids)[:10]}")
        time.sleep(0.01)


# -- a box: one sandbox -------------------------------------------------------------------------------
def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        expected = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


class Box:
    """The cgroup of one sandbox (one slot's kernel): all its processes share its limits.

    Create with :meth:`create`; start its processes with :meth:`wrap`; :meth:`remove` (or
    leaving the ``with`` block) kills them and removes its folders.
    """

    def __init__(self, name: str, run: Run, folders: tuple[Path, ...], *, memory_bytes: int, pids_max: int,
                 cpu_weight: int):
        self.name = name
        self.run = run
        self.folders = folders
        self.memory_bytes = memory_bytes
        self.pids_max = pids_max
        self.cpu_weight = cpu_weight

    @classmethod
    def create(cls, name: str, *, run: Run, memory_bytes: int, pids_max: int,
               cpu_weight: int = DEFAULT_CPU_WEIGHT) -> "Box":
        """Create the box's cgroup in every hierarchy of ``run`` and set its limits.

        Parameters
        ----------
        name : str
            Unique in the run, e.g. ``"slot2-kernel7"``: 1-64 letters, digits, ``-``, ``_``.
        run : Run
        memory_bytes : int
            Memory of all the box's processes together (anonymous memory, page cache, tmpfs
            files they write); no swap. At the limit the kernel OOM-kills a process of the box.
        pids_max : int
            Processes and threads of the box together.
        cpu_weight : int
            CPU weight in v2 units, 1..10000 (v1: ``cpu.shares = weight * 1024 / 100``). Weights
            are relative between the boxes of a run: give every box the same weight, and each of
            N parallel slots gets 1/N of a contended CPU however many processes it runs.

        Raises
        ------
        ValueError
            For a bad name or limit, before anything is created.
        CgroupError
            If the kernel refuses a folder or a limit; nothing is left behind.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"box name must be 1-64 letters, digits, '-' or '_' starting with a letter or digit, "
                             f"got {name!r}")
        _check_int("memory_bytes", memory_bytes, MIN_MEMORY_BYTES)
        _check_int("pids_max", pids_max, 1)
        _check_int("cpu_weight", cpu_weight, 1, 10000)
        if not isinstance(run, Run):
            raise TypeError(f"run must be a Run from Run.open(), got {type(run).__name__}")
        made: list[Path] = []
        try:
            for folder in run.folders:
                try:
                    (folder / name).mkdir()
                except FileExistsError:
                    raise ValueError(f"a box named {name!r} already exists in run {run.name}") from None
                except OSError as exc:
                    raise CgroupError(f"cannot create {folder / name}: {exc.strerror}") from exc
                made.append(folder / name)
            box = cls(name, run, tuple(made), memory_bytes=memory_bytes, pids_max=pids_max, cpu_weight=cpu_weight)
            box._set_limits()
        except BaseException:
            try:
                _remove_folders(made)
            except CgroupError:
                pass  # the first error is the one to report; cleanup_stale() finds a folder left here
            raise
        run._boxes.append(box)
        return box

    def _file(self, controller: str, filename: str) -> Path:
        """The file ``filename`` in this box's folder of the hierarchy carrying ``controller``."""
        for h, folder in zip(self.run.support.hierarchies, self.folders):
            if controller in h.controllers:
                return folder / filename
        return self.folders[0] / filename  # a missing optional controller (v1 cpuacct): reads give None

    def _set_limits(self) -> None:
        f = self._file
        if self.run.version == 2:
            _set(f("memory", "memory.max"), self.memory_bytes)
            if f("memory", "memory.swap.max").exists():
                _set(f("memory", "memory.swap.max"), 0)
            _set(f("pids", "pids.max"), self.pids_max)
            _set(f("cpu", "cpu.weight"), self.cpu_weight)
        else:
            _set(f("memory", "memory.limit_in_bytes"), self.memory_bytes)
            if f("memory", "memory.memsw.limit_in_bytes").exists():  # memory + swap: no swap at all
                _set(f("memory", "memory.memsw.limit_in_bytes"), self.memory_bytes)
            elif f("memory", "memory.swappiness").exists():
                _set(f("memory", "memory.swappiness"), 0)
            _set(f("pids", "pids.max"), self.pids_max)
            _set(f("cpu", "cpu.shares"), max(2, self.cpu_weight * 1024 // 100))

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` prefixed by a shell that moves itself into the box, then execs ``cmd``.

        Writing 0 to ``cgroup.procs`` moves the writer (v1 and v2), so the command and every
        process it starts run in the box from their first instruction. If joining fails, the
        shell exits with status 125 and ``cmd`` never runs.
        """
        if isinstance(cmd, (str, bytes)) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise ValueError(f"cmd must be a non-empty list of strings, got {cmd!r}")
        procs = " ".join(shlex.quote(str(folder / "cgroup.procs")) for folder in self.folders)
        script = (f'for f in {procs}; do echo 0 > "$f" || {{ echo "nbjudge: cannot join the cgroup $f" >&2; '
                  'exit 125; }; done; exec "$@"')
        return ["/bin/sh", "-c", script, "nbjudge-cgroup", *cmd]

    def pids(self) -> set[int]:
        """Every process of the box (in the caller's pid namespace)."""
        found = set()
        for folder in self.folders:
            found |= _pids(folder / "cgroup.procs")
        return found

    def stats(self) -> Stats:
        """What the box's processes used together so far."""
        f = self._file
        if self.run.version == 2:
            events = _read(f("memory", "memory.events"))
            cpu = _keyed(_read(f("cpu", "cpu.stat")), "usage_usec")
            return Stats(memory_peak_bytes=_int(_read(f("memory", "memory.peak"))),
                         memory_current_bytes=_int(_read(f("memory", "memory.current"))),
                         oom_kills=_keyed(events, "oom_kill"),
                         pids_current=_int(_read(f("pids", "pids.current"))),
                         pids_refused=_keyed(_read(f("pids", "pids.events")), "max"),
                         cpu_ns=None if cpu is None else cpu * 1000)
        return Stats(memory_peak_bytes=_int(_read(f("memory", "memory.max_usage_in_bytes"))),
                     memory_current_bytes=_int(_read(f("memory", "memory.usage_in_bytes"))),
                     oom_kills=_keyed(_read(f("memory", "memory.oom_control")), "oom_kill"),
                     pids_current=_int(_read(f("pids", "pids.current"))),
                     pids_refused=_keyed(_read(f("pids", "pids.events")), "max"),
                     cpu_ns=_int(_read(f("cpuacct", "cpuacct.usage"))))

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process of the box until none is left (v2: ``cgroup.kill`` first).

        Raises :class:`CgroupError` if processes survive ``timeout`` seconds.
        """
        for folder in self.folders:
            if folder.is_dir():
                _kill_folder(folder, timeout)
        if self.pids():  # a process that joined one hierarchy after its folder was emptied
            for folder in self.folders:
                _kill_folder(folder, timeout)

    def remove(self) -> None:
        """Kill every process, then remove the box's folder in every hierarchy (idempotent).

        Every folder is tried even if killing or an earlier folder failed; what failed is
        raised afterwards as one :class:`CgroupError`.
        """
        errors = []
        try:
            self.kill_all()
        except CgroupError as exc:
            errors.append(str(exc))
        try:
            _remove_folders(list(self.folders))
        except CgroupError as exc:
            errors.append(str(exc))
        if not errors and self in self.run._boxes:
            self.run._boxes.remove(self)
        if errors:
            raise CgroupError(f"box {self.name}: " + "; ".join(errors))

    def __enter__(self) -> "Box":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Box({self.name!r}, memory_bytes={self.memory_bytes}, pids_max={self.pids_max})"


# -- leftovers of crashed runs ----------------------------------------------------------------------
def _owner_alive(run_name: str) -> bool:
    m = _RUN.match(run_name)
    if m is None:
        return True  # not a run folder of ours: leave it alone
    start = _start_time(int(m["pid"]))
    if start is None:
        return False
    return int(m["start"]) in (0, start)  # 0: the owner could not read its start time; its pid is alive


def cleanup_stale(support: Support) -> list[Path]:
    """Remove the folders of runs whose owner process is gone (a crashed grader), and stray probes.

    Processes still in such a run's boxes (orphaned kernels) are killed first. Runs of live
    processes are left alone. Returns the folders removed; raises :class:`CgroupError` after
    trying every folder if some could not be removed.
    """
    removed: list[Path] = []
    errors: list[str] = []
    if not support.available:
        return removed
    for h in support.hierarchies:
        for probe in h.base.glob(f"{PROBE_PREFIX}*"):
            pid = probe.name[len(PROBE_PREFIX):]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                try:
                    probe.rmdir()
                    removed.append(probe)
                except OSError:
                    pass
        parent = h.base / PARENT
        if not parent.is_dir():
            continue
        for run in parent.iterdir():
            if not run.is_dir() or _owner_alive(run.name):
                continue
            for folder in [*(p for p in run.iterdir() if p.is_dir()), run]:
                try:
                    _rmdir(folder)
                    removed.append(folder)
                except CgroupError as exc:
                    errors.append(str(exc))
        try:
            parent.rmdir()  # once no run is left
            removed.append(parent)
        except OSError:
            pass
    if errors:
        raise CgroupError("; ".join(errors))
    return removed
