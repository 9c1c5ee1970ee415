"""The student's kernel: started INSIDE the sandbox, before any student code.

Run as a script (never imported by the grader)::

    python -s student_kernel.py --stage DIR --limits JSON --audit FIFO --allowed JSON --workdir DIR -- -f CONN

1. copies the submission's files from the read-only stage folder into the working folder;
2. sets the resource limits (soft = hard, so student code cannot raise them);
3. installs an audit hook (PEP 578) that reports network use, process creation and file
   access outside the working folder on a FIFO the grader reads. Student code can silence
   it, so what it reports is a *hint* for a human, never part of a verdict;
4. installs the module ``_nbjudge_bridge``, through which the judge reaches the names the
   student's cells define (see :mod:`nbjudge.judge`), and starts ipykernel.

Everything in this process can be rewritten by the student's code, the bridge included. That is
why nothing it says is trusted: the judge receives only plain data (:mod:`nbjudge.protocol`)
and decides every verdict in its own process.
"""
import importlib.util
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
REPLY_MIME = "application/x-nbjudge-reply"
CALLBACK_PREFIX = "\x00nbjudge-callback:"
NESTED_PREFIX = "\x00nbjudge-nested:"


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
    """Report risky events on ``fifo`` (one JSON object per line); see the module docstring."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        fd = None
    read_ok = tuple(os.path.realpath(p).rstrip("/") + "/" for p in
                    [workdir, "/tmp", "/dev", "/proc", "/sys", "/usr", "/etc", "/run/nbjudge", *allowed])
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


def _load_protocol(path):
    spec = importlib.util.spec_from_file_location("_nbjudge_protocol", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["_nbjudge_protocol"] = module
    return module


def _install_bridge(app, protocol):
    """The module ``_nbjudge_bridge``: ``serve(request)`` answers one request of the judge.

    A request names an operation on a name of the student's namespace or on a handle (an object
    kept here), with arguments that are plain data, handles, or callbacks into the judge. The
    answer is published as one display message of type :data:`REPLY_MIME`; what the student's
    code prints meanwhile is dropped by the grader.
    """
    import numpy as np

    shell, kernel = app.shell, app.kernel
    handles, ids = {}, {}
    ops = {}
    described = []  # one dict per request being answered (requests nest through callbacks)

    class JudgeObject:
        """A function or object that stays in the judge; using it asks the judge (a callback)."""

        __slots__ = ("_cid",)

        def __init__(self, cid):
            object.__setattr__(self, "_cid", cid)

        def __call__(self, *args, **kwargs):
            return ask_judge({"callback": self._cid, "args": protocol.encode(list(args), handle_of),
                              "kwargs": protocol.encode(kwargs, handle_of)})

        def __getattr__(self, name):
            return ask_judge({"callback": self._cid, "attr": name})

        def __repr__(self):
            return f"<grader object {self._cid}>"

    def ask_judge(message):
        prompt = CALLBACK_PREFIX + protocol.dumps(message).decode()
        while True:
            answer = protocol.loads(kernel.raw_input(prompt))
            if "request" in answer:  # the judge's function calls back into this kernel
                prompt = NESTED_PREFIX + protocol.dumps(handle(answer["request"])).decode()
                continue
            if "error" in answer:
                raise RuntimeError(f"the grader's function raised {answer['error']}")
            return protocol.decode(answer["ok"], resolve)

    def handle_of(obj):
        if type(obj) is JudgeObject:
            return {"__callback__": obj._cid}
        key = id(obj)
        if key not in ids or handles.get(ids[key]) is not obj:
            ids[key] = len(handles) + 1
            handles[ids[key]] = obj
        hid = ids[key]
        cls = type(obj)
        described[-1][str(hid)] = {"type": f"{cls.__module__}.{cls.__qualname__}", "callable": callable(obj)}
        return {"__handle__": hid}

    def resolve(kind, ref):
        if kind == "handle":
            if ref not in handles:
                raise protocol.ProtocolError(f"unknown handle {ref}")
            return handles[ref]
        return JudgeObject(ref)

    def lookup(req):
        name = req["name"]
        if name not in shell.user_ns:
            raise NameError(f"name {name!r} is not defined")
        return shell.user_ns[name]

    ops["lookup"] = lookup
    ops["call"] = lambda r: r["target"](*r["args"], **r["kwargs"])
    ops["getattr"] = lambda r: getattr(r["target"], r["name"])
    ops["setattr"] = lambda r: setattr(r["target"], r["name"], r["value"])
    ops["getitem"] = lambda r: r["target"][r["key"]]
    ops["setitem"] = lambda r: r["target"].__setitem__(r["key"], r["value"])
    ops["len"] = lambda r: len(r["target"])
    ops["list"] = lambda r: list(r["target"])
    ops["contains"] = lambda r: r["key"] in r["target"]
    ops["bool"] = lambda r: bool(r["target"])
    ops["repr"] = lambda r: repr(r["target"])
    ops["str"] = lambda r: str(r["target"])
    ops["float"] = lambda r: float(r["target"])
    ops["int"] = lambda r: int(r["target"])
    ops["index"] = lambda r: r["target"].__index__()
    ops["array"] = lambda r: np.asarray(r["target"])
    ops["random_state"] = lambda r: np.random.get_state()

    def handle(request):
        """Answer one request (a decoded JSON object); the reply as a dict of encoded data."""
        described.append({})
        reply = {}
        try:
            ctx = request.get("context") or {}
            raw_args = {k: request.get(k) for k in ("args", "kwargs")}
            req = {k: protocol.decode(v, resolve) for k, v in request.items() if k not in ("op", "context")}
            if "np_random" in ctx:
                np.random.set_state(protocol.decode(ctx["np_random"]))
            before = np.random.get_state() if request["op"] == "call" else None
            with np.errstate(**(ctx.get("errstate") or {})):
                value = ops[request["op"]](req)
            reply["ok"] = protocol.encode(value, handle_of)
            if request["op"] == "call":  # arguments changed in place travel back
                back = {}
                for key in ("args", "kwargs"):
                    now = protocol.encode(req[key], handle_of)
                    if now != raw_args[key]:
                        back[key] = now
                if back:
                    reply["writeback"] = back
            if before is not None:  # the global generator's new state, if the call drew from it
                after = np.random.get_state()
                if after[2:] != before[2:] or not np.array_equal(after[1], before[1]):
                    reply["np_random"] = protocol.encode(after)
        except BaseException as exc:  # noqa: B902 - the judge decides what a failure means
            if isinstance(exc, SystemExit):
                raise
            reply = {"error": {"ename": type(exc).__name__, "evalue": str(exc)[:4000],
                               "builtin": type(exc).__module__ == "builtins",
                               "bases": [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"][:20]}}
        reply["handles"] = described.pop()
        return reply

    def serve(text):
        try:
            reply = handle(protocol.loads(text))
            payload = protocol.dumps(reply).decode()
        except Exception as exc:
            payload = json.dumps({"error": {"ename": "ProtocolError", "evalue": str(exc)[:4000], "builtin": False}})
        kernel.session.send(kernel.iopub_socket, "display_data", {"data": {REPLY_MIME: payload}, "metadata": {},
                                                                  "transient": {}},
                            parent=kernel.get_parent("shell"), ident=kernel._topic("display_data"))

    module = types.ModuleType("_nbjudge_bridge", "The judge's way into this kernel (see nbjudge.student_kernel).")
    module.serve = serve
    sys.modules["_nbjudge_bridge"] = module


def main(argv):
    opts, kernel_args = _parse(argv)
    workdir = opts["workdir"]
    _copy_stage(opts["stage"], workdir)
    os.chdir(workdir)
    _set_limits(json.loads(opts["limits"]))
    protocol = _load_protocol(opts["protocol"])
    audit = _install_audit(opts["audit"], workdir, json.loads(opts["allowed"]), json.loads(opts.get("watch", "[]")))

    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(kernel_args)
    _install_bridge(app, protocol)

    def arm(*_):
        audit["armed"] = True
    app.shell.events.register("pre_run_cell", arm)
    app.start()


if __name__ == "__main__":
    main(sys.argv[1:])
