"""Start an IPython kernel for grading; runs INSIDE the sandbox, before any student code.

Run as a script by :class:`nnlab.grading.sandbox.SandboxKernelManager` (never imported by the
grader)::

    python -s _kernel.py --stage DIR --limits JSON --audit FIFO --allowed JSON --workdir DIR -- -f CONN

1. copies the submission's files from the read-only stage folder into the working folder;
2. sets the resource limits (soft = hard, so student code cannot raise them);
3. installs an audit hook (PEP 578) that reports network use, process creation and file
   access outside the working folder to the grader, through a FIFO the grader reads: the
   grader keeps every line it received, so a submission cannot take a report back;
4. records the identity of the functions tests rely on (numpy's and math's comparisons,
   builtins, nnlab, IPython's error display), so the grader's canary cells can tell whether
   a submission replaced them (``_nnlab_sandbox.integrity()``);
5. starts ipykernel.
"""
import json
import os
import resource
import shutil
import sys
import types

LIMITS = {"AS": resource.RLIMIT_AS, "NPROC": resource.RLIMIT_NPROC, "FSIZE": resource.RLIMIT_FSIZE,
          "CPU": resource.RLIMIT_CPU, "NOFILE": resource.RLIMIT_NOFILE, "CORE": resource.RLIMIT_CORE}
PROCESS_EVENTS = {"os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system",
                  "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg"}
NETWORK_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                  "socket.gethostbyname", "socket.gethostbyaddr", "urllib.Request"}
OTHER_EVENTS = {"sys.addaudithook", "sys.setprofile", "sys.settrace", "ctypes.dlsym", "ctypes.addressof"}
MAX_REPORTS = 200


def _parse(argv):
    opts, i = {}, 0
    while i < len(argv) and argv[i] != "--":
        opts[argv[i].lstrip("-")] = argv[i + 1]
        i += 2
    return opts, argv[i + 1:]


def _copy_stage(stage, workdir):
    os.makedirs(workdir, exist_ok=True)
    for name in os.listdir(stage):
        src, dst = os.path.join(stage, name), os.path.join(workdir, name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dst)
    if os.environ.get("HOME") == "/tmp/home":  # in the sandbox: private folders on its /tmp
        for folder in ("/tmp/home", "/tmp/ipython", "/tmp/matplotlib", "/tmp/jupyter", "/tmp/keras"):
            os.makedirs(folder, exist_ok=True)


def _set_limits(limits):
    for name, value in limits.items():
        value = int(value)
        soft, hard = resource.getrlimit(LIMITS[name])
        if hard != resource.RLIM_INFINITY and value > hard:
            value = hard
        resource.setrlimit(LIMITS[name], (value, value))


def _install_audit(fifo, workdir, allowed, watched=()):
    """Report risky events on ``fifo`` (one JSON object per line).

    File access is reported outside the working folder and the read-only environment, and
    anywhere in a ``watched`` folder (the course) except the working folder itself: the course
    may live under /tmp, which is otherwise the kernel's own.
    """
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        fd = None
    read_ok = tuple(os.path.realpath(p).rstrip("/") + "/" for p in
                    [workdir, "/tmp", "/dev", "/proc", "/sys", "/usr", "/etc", "/run/nnlab", *allowed])
    write_ok = tuple(os.path.realpath(p).rstrip("/") + "/" for p in [workdir, "/tmp"]) + ("/dev/null/",)
    mine = os.path.realpath(workdir).rstrip("/") + "/"
    watch = tuple(os.path.realpath(p).rstrip("/") + "/" for p in watched)
    environment = tuple(os.path.realpath(p).rstrip("/") + "/" for p in allowed) or ("/nonexistent/",)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    state = {"armed": False, "busy": False, "sent": 0}
    join, normpath, getcwd, fsdecode = os.path.join, os.path.normpath, os.getcwd, os.fsdecode
    dumps, write = json.dumps, os.write

    def report(event, detail):
        if fd is None or state["sent"] >= MAX_REPORTS:
            return
        state["sent"] += 1
        try:
            write(fd, (dumps({"event": event, "detail": detail[:300]}) + "\n").encode())
        except OSError:
            pass

    def hook(event, args):
        if not state["armed"] or state["busy"]:
            return
        if event == "open":
            path = args[0]
            if isinstance(path, int) or path is None:
                return
            state["busy"] = True
            try:
                path = fsdecode(path)
                full = normpath(join(getcwd(), path)) + "/"
                mode, flags = args[1], args[2] or 0
                writing = bool(flags & write_flags) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
                if full.startswith(mine) or (not writing and full.startswith(environment)):
                    pass
                elif watch and full.startswith(watch):
                    report("open", f"{'write' if writing else 'read'} {full[:-1]}")
                elif writing and not full.startswith(write_ok):
                    report("open", f"write {full[:-1]}")
                elif not full.startswith(read_ok):
                    report("open", f"{'write' if writing else 'read'} {full[:-1]}")
            except Exception:
                pass
            finally:
                state["busy"] = False
        elif event in NETWORK_EVENTS or event in PROCESS_EVENTS or event in OTHER_EVENTS:
            state["busy"] = True
            try:
                report(event, repr(args))
            except Exception:
                pass
            finally:
                state["busy"] = False

    sys.addaudithook(hook)
    return state


def _watched():
    """name -> object for the functions whose replacement makes a test pass wrongly."""
    import builtins
    import math

    import numpy
    import numpy.testing
    watched = {}
    for name in ("abs", "all", "any", "bool", "float", "int", "isinstance", "issubclass", "len", "max", "min",
                 "round", "sum", "type", "getattr", "hasattr", "sorted", "repr", "str", "__import__"):
        watched[f"builtins.{name}"] = getattr(builtins, name)
    for name in ("isclose", "isfinite", "isnan", "fabs"):
        watched[f"math.{name}"] = getattr(math, name)
    for name in ("allclose", "isclose", "array_equal", "array_equiv", "all", "any", "abs", "asarray", "array",
                 "isfinite", "isnan", "max", "min", "sum", "mean", "argmax", "shape"):
        watched[f"numpy.{name}"] = getattr(numpy, name)
    watched["numpy.linalg.norm"] = numpy.linalg.norm
    for name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_almost_equal",
                 "assert_equal", "assert_array_less"):
        watched[f"numpy.testing.{name}"] = getattr(numpy.testing, name)
    try:
        import nnlab
        for modname in getattr(nnlab, "__all__", []):
            module = getattr(nnlab, modname, None)
            for name, obj in vars(module).items() if module is not None else ():
                if not name.startswith("_") and callable(obj) and getattr(obj, "__module__", "") == module.__name__:
                    watched[f"nnlab.{modname}.{name}"] = obj
    except Exception:
        pass
    return watched


def _install_integrity(app):
    """Register ``_nnlab_sandbox.integrity()``: names of watched functions that were replaced.

    Returns ``snapshot``, to be called right before the first cell runs (IPython and ipykernel
    finish setting up their hooks only when the kernel starts).
    """
    shell, kernel = app.shell, app.kernel
    shell_methods = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                     "run_code", "run_ast_nodes", "CustomTB", "transform_cell", "custom_exceptions")
    kernel_methods = ("do_execute", "execute_request", "send_response")
    before = {}

    def current():
        state = {name: obj for name, obj in _watched().items()}
        for m in shell_methods:
            state[f"IPython shell.{m}"] = (vars(shell).get(m), vars(type(shell)).get(m), getattr(type(shell), m, None))
        for m in kernel_methods:
            state[f"kernel.{m}"] = (vars(kernel).get(m), getattr(type(kernel), m, None))
        state["kernel.session.send"] = (vars(kernel.session).get("send"), type(kernel.session).send)
        # sys.excepthook is not checked: IPython swaps it during every cell and does not use it
        # for cell errors (the static scan reports submissions that touch it)
        return state

    def same(a, b):
        if isinstance(a, tuple) and isinstance(b, tuple):
            return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b))
        return a is b

    def snapshot():
        if not before:
            before.update(current())

    def integrity():
        now = current()
        return sorted(name for name, obj in before.items() if name not in now or not same(obj, now[name]))

    module = types.ModuleType("_nnlab_sandbox", "Grader's integrity check (see nnlab.grading._kernel).")
    module.integrity = integrity
    sys.modules["_nnlab_sandbox"] = module
    return snapshot


def main(argv):
    opts, kernel_args = _parse(argv)
    workdir = opts["workdir"]
    _copy_stage(opts["stage"], workdir)
    os.chdir(workdir)
    _set_limits(json.loads(opts["limits"]))
    audit = _install_audit(opts["audit"], workdir, json.loads(opts["allowed"]), json.loads(opts.get("watch", "[]")))

    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(kernel_args)
    snapshot = _install_integrity(app)

    def arm(*_):
        snapshot()
        audit["armed"] = True
    app.shell.events.register("pre_run_cell", arm)
    app.start()


if __name__ == "__main__":
    main(sys.argv[1:])
