"""The grading sandbox: every submission's kernel runs inside bubblewrap (``bwrap``).

What a kernel sees (``build_command``)
--------------------------------------
- its own working folder, at the same path the submission has under ``autograded/``: a
  size-limited tmpfs holding a copy of the submission's files (so writes never reach the disk);
- a private ``/tmp`` (tmpfs, size-limited);
- read-only: ``/usr``, a few files of ``/etc`` the dynamic loader needs, and the Python
  environment (the venv, the interpreter it was made from, and editable installs such as
  ``src/`` of the course packages), with the overlays described below;
- the folder with its own connection file and ZeroMQ sockets (IPC transport, because the
  kernel has no network at all: ``--unshare-net``).

It sees nothing else: no ``gradebook.db``, no ``solutions/`` or ``release/``, no other student,
no home folder. The rest of the file system is absent, and ``/`` is read-only.

Limits
------
The kernel is started by :mod:`nbjudge.student_kernel`, which sets resource limits before any
student code runs: address space (memory), processes and threads, file size, CPU seconds, open
files, no core dumps. When the grader runs as root, the kernel drops to an unprivileged user
id (one per parallel slot, from :attr:`Sandbox.uid_base`) because Linux does not apply the
process limit to root. Per-cell and per-notebook timeouts are enforced by the executor
(:mod:`nbjudge.execute`) and by :mod:`nbjudge.grade`.

The teaching package as the assignment allows it
------------------------------------------------
:func:`package_view` builds, per assignment, a copy of the ``nnlab`` package holding only the
modules the assignment allows (``allowed_modules`` in its source notebook's ``nbjudge``
metadata); every other module is a stub whose import raises an ``ImportError`` that names the
rule. It is mounted over the real package in the student's sandbox, so the reference
implementation of what an assignment asks for cannot be imported, not even by path. The
grader's own package is hidden there too: the student's kernel starts from a copy of
:mod:`nbjudge.student_kernel` and :mod:`nbjudge.protocol` (:func:`student_kit`).

The judge
---------
:func:`judge_command` runs the judge (:mod:`nbjudge.judge`) in a sandbox of its own: the same
read-only system and Python environment (the whole teaching package: hidden tests compare with
its reference code), the assignment's files read-only as its working folder, no network, no
view of the course, and a user id of its own.

If ``bwrap`` is missing or cannot create namespaces, :func:`check_available` raises
:class:`SandboxUnavailable` with the command to install it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Instance, Integer, List, Unicode
from traitlets.config import Configurable

HERE = Path(__file__).resolve().parent
KIT_FILES = ("student_kernel.py", "protocol.py")
KIT = "/run/nbjudge/kit"
INSTALL_HINT = ("install bubblewrap: `sudo apt-get install bubblewrap` (Debian/Ubuntu), "
                "`sudo dnf install bubblewrap` (Fedora); or pass --no-sandbox to grade WITHOUT "
                "isolation (student code can then read solutions/ and write gradebook.db)")
#: files of /etc that the dynamic loader and Python need; absent ones are skipped
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/alternatives")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot run here; the message says how to fix it."""


class Sandbox(Configurable):
    """Limits and layout of the grading sandbox (configure as ``c.Sandbox.*`` in nbgrader_config.py)."""

    enabled = Bool(True, help="Run kernels in bubblewrap. False only with `grade --no-sandbox`.").tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap executable (name on PATH or absolute path).").tag(config=True)
    memory_mb = Integer(2048, help="Address-space limit of a kernel (RLIMIT_AS), MiB.").tag(config=True)
    max_processes = Integer(128, help="Processes + threads a kernel may have (RLIMIT_NPROC).").tag(config=True)
    max_file_mb = Integer(64, help="Largest file a kernel may write (RLIMIT_FSIZE), MiB.").tag(config=True)
    cpu_seconds = Integer(600, help="CPU seconds per kernel process (RLIMIT_CPU).").tag(config=True)
    max_open_files = Integer(1024, help="Open files per kernel process (RLIMIT_NOFILE).").tag(config=True)
    tmp_mb = Integer(256, help="Size of the kernel's /tmp and of its working folder (tmpfs), MiB.").tag(config=True)
    notebook_timeout = Integer(900, help="Wall-clock budget of one notebook, seconds (all cells, "
                                         "restarts included); the per-cell limit is c.Execute.timeout.").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="Output kept per cell; the rest is dropped and reported.").tag(config=True)
    max_restarts = Integer(3, help="Kernel restarts (after a crash or a timeout) per notebook.").tag(config=True)
    uid_base = Integer(61000, help="When grading as root, kernels run as uid/gid uid_base + slot.").tag(config=True)
    judge_uid_offset = Integer(500, help="Judges run as uid/gid uid_base + judge_uid_offset + slot.").tag(config=True)
    ro_paths = List(Unicode(), [], help="Extra read-only paths visible to kernels (data sets outside /usr).").tag(config=True)
    per_assignment = Dict({}, help="Limits that differ for one assignment, e.g. "
                              "{'07_training_with_keras': {'memory_mb': 4096}} (TensorFlow needs a larger "
                              "address space).").tag(config=True)
    env = Dict({"TF_CPP_MIN_LOG_LEVEL": "2", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
               help="Environment of the kernel (nothing else of the grader's environment is passed).").tag(config=True)

    def limits(self) -> dict:
        """Resource limits for :mod:`nbjudge.student_kernel` (soft = hard)."""
        return {"AS": self.memory_mb * 2**20, "NPROC": self.max_processes, "FSIZE": self.max_file_mb * 2**20,
                "CPU": self.cpu_seconds, "NOFILE": self.max_open_files, "CORE": 0}


def _find_bwrap(sandbox: Sandbox) -> str | None:
    path = sandbox.bwrap
    if os.sep in path:
        return path if os.access(path, os.X_OK) else None
    return shutil.which(path)


def check_available(sandbox: Sandbox) -> str:
    """Return the path of a working ``bwrap`` or raise :class:`SandboxUnavailable`."""
    exe = _find_bwrap(sandbox)
    if exe is None:
        raise SandboxUnavailable(f"the grading sandbox needs bubblewrap, but {sandbox.bwrap!r} was not found; "
                                 + INSTALL_HINT)
    probe = [exe, "--unshare-all", "--die-with-parent", *_system_mounts(), "--proc", "/proc", "--dev", "/dev",
             "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise SandboxUnavailable(f"bubblewrap ({exe}) cannot be started: {exc}; " + INSTALL_HINT) from exc
    if proc.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap ({exe}) cannot create a sandbox here: "
                                 f"{proc.stderr.strip() or 'exit code ' + str(proc.returncode)} "
                                 "(it needs user namespaces or root); " + INSTALL_HINT)
    return exe


def _system_mounts() -> list[str]:
    """/usr read-only, and /bin, /lib, ... as on the host (symlinks into /usr, or directories)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def python_paths() -> list[str]:
    """The folders that make up the running Python environment (read-only in the sandbox).

    The venv (``sys.prefix``), the interpreter it was made from (``sys.base_prefix`` and the
    real location of ``sys.executable``), and every folder that a ``.pth`` file in
    site-packages adds to ``sys.path`` (editable installs such as ``src/``).
    """
    paths = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
             str(Path(os.path.realpath(sys.executable)).parents[1])}
    import site
    for sp in site.getsitepackages():
        for pth in Path(sp).glob("*.pth"):
            for line in pth.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "import ")) and os.path.isdir(line):
                    paths.add(os.path.realpath(line))
    # keep only outermost folders
    result = []
    for path in sorted(paths):
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in result):
            result.append(path)
    return result


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_exposure(paths, secrets) -> None:
    """Refuse to mount a folder that holds (or is inside) a secret, e.g. ``solutions/``.

    ``secrets`` are paths the kernel must never see: the course's gradebook, solutions,
    release and submission folders. A ``.pth`` pointing at the course root would expose them.
    """
    for path in paths:
        for secret in secrets:
            if _inside(secret, path):
                raise SandboxUnavailable(
                    f"the Python environment includes {path}, which contains {secret}: a kernel would "
                    "see it. Install the course package from src/ (pip install -e .) rather than adding "
                    "the course root to sys.path, or move the environment out of the course folder")


def check_uids(uids) -> None:
    """Refuse user ids that belong to an account of this system (its files would be the sandbox's)."""
    import pwd
    taken = []
    for uid in sorted(set(uids)):
        try:
            taken.append(f"{uid} ({pwd.getpwuid(uid).pw_name})")
        except KeyError:
            continue
    if taken:
        raise SandboxUnavailable(f"the sandbox's user ids {', '.join(taken)} belong to accounts of this system; "
                                 "choose a free range with c.Sandbox.uid_base")


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts
    return [str(Path(*parts[:i])) for i in range(2, len(parts))]


def build_command(inner, *, workdir, stage, conn_dir, sandbox: Sandbox, bwrap: str, uid=None,
                  ro_paths=(), stage_bytes=0, kit=None, overlays=()) -> list[str]:
    """The bwrap command line that runs ``inner`` (a list) in the sandbox.

    Parameters
    ----------
    inner : list of str
        The command to run inside (the kernel launcher).
    workdir : str
        Path of the kernel's working folder *inside* the sandbox (a tmpfs is mounted there).
    stage : str
        Host folder with the submission's files; mounted read-only at ``/run/nbjudge/stage`` and
        copied into ``workdir`` by the launcher.
    conn_dir : str
        Host folder for the connection file and the IPC sockets; same path inside.
    uid : int, optional
        Run as this uid/gid (only when the grader is root).
    ro_paths : sequence of str
        The Python environment and extra read-only folders.
    stage_bytes : int
        Size of the staged files: the working folder holds them plus ``tmp_mb``.
    kit : str
        Host folder with the kernel's launcher (:func:`student_kit`); read-only at ``/run/nbjudge/kit``.
    overlays : sequence of (str, str)
        ``(host, path)`` read-only mounts over parts of ``ro_paths`` (:func:`package_view`).
    """
    size = str(sandbox.tmp_mb * 2**20)
    args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "grading-sandbox"]
    if os.geteuid() != 0:
        args.append("--unshare-user")
    args += _system_mounts()
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
             # POSIX semaphores and shared memory (multiprocessing, joblib) live here
             "--perms", "1777", "--size", str(min(sandbox.tmp_mb, 64) * 2**20), "--tmpfs", "/dev/shm"]
    made = {"/", "/usr", "/tmp", "/proc", "/dev"}
    mounts = [(p, "ro") for p in ro_paths] + [(stage, "stage"), (conn_dir, "rw"), (workdir, "work")]
    if kit is not None:
        mounts.append((kit, "kit"))
    targets = {"stage": "/run/nbjudge/stage", "kit": KIT}
    for path, _ in mounts:
        target = targets.get(_, path)
        for parent in _ancestors(target):
            if parent not in made and not any(_inside(parent, m) for m in ("/usr", "/proc", "/dev")):
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
    for path, kind in mounts:
        if kind == "ro":
            args += ["--ro-bind", path, path]
        elif kind in targets:
            args += ["--ro-bind", path, targets[kind]]
        elif kind == "rw":
            args += ["--bind", path, path]
        else:
            args += ["--perms", "0777", "--size", str(sandbox.tmp_mb * 2**20 + int(stage_bytes)), "--tmpfs", path]
    for host, path in overlays:
        args += ["--ro-bind", host, path]
    args += ["--remount-ro", "/", "--chdir", workdir, "--clearenv"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/home", "USER": "student", "LOGNAME": "student",
           "LANG": "C.UTF-8", "IPYTHONDIR": "/tmp/ipython", "MPLCONFIGDIR": "/tmp/matplotlib",
           "KERAS_HOME": "/tmp/keras", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "PYTHONDONTWRITEBYTECODE": "1",
           "VIRTUAL_ENV": sys.prefix, **sandbox.env}
    return args + _as_user(env, uid) + list(inner)


def _as_user(env, uid) -> list[str]:
    """The end of a bwrap command line: the environment, then (as root) the drop to ``uid``: no
    capabilities, no new privileges, no supplementary groups."""
    args = []
    for key, value in sorted(env.items()):
        args += ["--setenv", key, str(value)]
    if uid is None:
        return args + ["--"]
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return args + ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", setpriv, f"--reuid={uid}",
                   f"--regid={uid}", "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]


def count_tasks(uid: int) -> int:
    """Number of threads currently owned by ``uid`` (RLIMIT_NPROC counts them all)."""
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return n


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start in the grading sandbox.

    Set :attr:`grading` (a dict with ``sandbox``, ``workdir``, ``stage``, ``conn_dir``,
    ``uid``, ``ro_paths``, ``audit_fifo``, ``bwrap``) before ``start_kernel``. The kernel talks
    over ZeroMQ IPC sockets in ``conn_dir``, the only channel out of the sandbox.
    """

    grading = Dict()
    sandbox = Instance(Sandbox, allow_none=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self._kernel_spec = KernelSpec(argv=[sys.executable, "-s", "{launcher}", "{launcher_args}", "--",
                                             "-f", "{connection_file}"],
                                       display_name="Python 3 (grading sandbox)", language="python",
                                       interrupt_mode="signal", env={}, metadata={})

    @property
    def kernel_spec(self):
        return self._kernel_spec

    @property
    def ipykernel(self) -> bool:
        return True

    def write_connection_file(self, **kwargs):
        conn = Path(self.grading["conn_dir"])
        self.connection_file = str(conn / "kernel.json")
        self.ip = str(conn / "kernel-ipc")
        super().write_connection_file(**kwargs)
        uid = self.grading.get("uid")
        if uid is not None:
            os.chown(self.connection_file, uid, uid)

    def format_kernel_cmd(self, extra_arguments=None):
        g = self.grading
        sandbox = g["sandbox"]
        limits = sandbox.limits()
        if g.get("uid") is None and sandbox.enabled:
            # RLIMIT_NPROC counts every thread of this user, not only the kernel's
            limits["NPROC"] += count_tasks(os.getuid())
        if not sandbox.enabled:
            limits.pop("NPROC")  # useless as root, harmful for a desktop user
        kit = g["kit"] if not sandbox.enabled else KIT
        launcher_args = ["--stage", g["stage"] if not sandbox.enabled else "/run/nbjudge/stage",
                         "--protocol", f"{kit}/protocol.py",
                         "--limits", json.dumps(limits), "--audit", g["audit_fifo"],
                         "--allowed", json.dumps(g["ro_paths"]), "--workdir", g["workdir"],
                         "--watch", json.dumps(g.get("watch", []))]
        cmd = []
        for arg in super().format_kernel_cmd(extra_arguments):
            if arg == "{launcher}":
                arg = f"{kit}/student_kernel.py"
            cmd.extend(launcher_args if arg == "{launcher_args}" else [arg])
        if not sandbox.enabled:
            return cmd
        cmd = build_command(cmd, workdir=g["workdir"], stage=g["stage"], conn_dir=g["conn_dir"],
                            sandbox=sandbox, bwrap=g["bwrap"], uid=g.get("uid"), ro_paths=g["ro_paths"],
                            stage_bytes=g.get("stage_bytes", 0), kit=g["kit"], overlays=g.get("overlays", ()))
        box = g.get("box")  # the sandbox's cgroup (nbjudge.cgroups): bwrap and all it starts run in it
        return box.wrap(cmd) if box is not None else cmd


def judge_command(inner, *, stage, sandbox: Sandbox, bwrap: str, uid=None, ro_paths=()) -> list[str]:
    """The bwrap command line that runs the judge ``inner`` (see the module docstring).

    The assignment's files (``stage``) are its read-only working folder ``/run/nbjudge/work``;
    it has a private ``/tmp`` and nothing of the course, the student's kernel or the network.
    """
    args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "grading-judge"]
    if os.geteuid() != 0:
        args.append("--unshare-user")
    args += _system_mounts()
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(sandbox.tmp_mb * 2**20),
             "--tmpfs", "/tmp", "--perms", "1777", "--size", str(min(sandbox.tmp_mb, 64) * 2**20), "--tmpfs", "/dev/shm"]
    made = {"/", "/usr", "/tmp", "/proc", "/dev"}
    for path in list(ro_paths) + ["/run/nbjudge/work"]:
        for parent in _ancestors(path):
            if parent not in made and not any(_inside(parent, m) for m in ("/usr", "/proc", "/dev")):
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
    for path in ro_paths:
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", stage, "/run/nbjudge/work", "--remount-ro", "/", "--chdir", "/run/nbjudge/work",
             "--clearenv"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "USER": "judge", "LANG": "C.UTF-8",
           "MPLCONFIGDIR": "/tmp", "KERAS_HOME": "/tmp/keras", "PYTHONDONTWRITEBYTECODE": "1",
           "VIRTUAL_ENV": sys.prefix, **sandbox.env}
    return args + _as_user(env, uid) + list(inner)


def student_kit(folder) -> str:
    """Copy the student kernel's launcher and the protocol into ``folder`` (mounted read-only)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in KIT_FILES:
        shutil.copyfile(HERE / name, folder / name)
        os.chmod(folder / name, 0o644)
    os.chmod(folder, 0o755)
    return str(folder)


def _package_dir(name) -> str | None:
    """Where the package ``name`` lives, found without importing it."""
    import importlib.util
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.realpath(list(spec.submodule_search_locations)[0])


def package_view(folder, package, allowed, assignment) -> list[tuple]:
    """Overlays for the student's sandbox: ``package`` with only the ``allowed`` modules, and the
    grader hidden. Returns ``[(host, path), ...]`` for :func:`build_command`.

    ``allowed`` None means every module. Private modules (``_name.py``) are always kept: the
    allowed ones import them.
    """
    hidden = Path(folder) / HERE.name
    hidden.mkdir(parents=True, exist_ok=True)
    (hidden / "__init__.py").write_text(f'raise ImportError("the grader ({HERE.name}) is not available to '
                                        'submissions")\n')
    for path in (hidden, hidden / "__init__.py"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    overlays = [(str(hidden), str(HERE))]
    real = _package_dir(package)
    if real is None or allowed is None:
        return overlays
    allowed = sorted(set(allowed))
    view = Path(folder) / package
    view.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f"{package}.{m}" for m in allowed) or "none"
    for source in sorted(Path(real).glob("*.py")):
        module = source.stem
        if module == "__init__":
            continue
        if module.startswith("_") or module in allowed:
            shutil.copyfile(source, view / source.name)
        else:
            (view / source.name).write_text(
                f'raise ImportError("{package}.{module} is not available in assignment {assignment}: its '
                f'students may import only {listed} (allowed_modules in the assignment\'s metadata)")\n')
    imports = ", ".join(allowed)
    (view / "__init__.py").write_text(
        f'"""{package} as assignment {assignment} provides it in grading: only {listed}."""\n'
        + (f"from . import {imports}\n" if allowed else "") + f"__all__ = {allowed!r}\n")
    for path in [view, *view.iterdir()]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    overlays.append((str(view), real))
    return overlays
