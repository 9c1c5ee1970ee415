"""The judge: the process that runs the instructor's test cells, where no student code ever runs.

``python -m nbjudge.judge`` is started by the worker (:mod:`nbjudge.execute`) in its own
sandbox, once per graded notebook. It reads length-prefixed JSON frames on stdin and writes
them on stdout:

worker -> judge
    ``{"op": "setup", "source": ...}``   an instructor cell that is not a test (imports, data,
    given code); it runs here too, with no access to the student's names, and its errors are
    ignored (it also ran in the student's kernel, where its output belongs).
    ``{"op": "test", "cell": grade_id, "source": ...}``   a test cell; answered by
    ``{"done": outcome}`` once it has finished.
    ``{"reply": ...}``, ``{"callback_reply": ...}``   answers to the judge's own requests.
judge -> worker
    ``{"request": {...}}``   an operation on the student's kernel (look up a name, call a
    function, read an attribute, ...); the worker runs it there and sends back the ``reply``.
    ``{"done": outcome}``   ``{"status": "ok" | "error", "stdout", "stderr", "result",
    "ename", "evalue", "traceback", "incidents"}``.

A test cell runs in a namespace whose missing names are looked up in the student's kernel: a
name that holds plain data arrives as that data (a real ``ndarray``, ``float``, ...), anything
else as a :class:`Remote`, whose calls, attributes and items are again requests. Names that
the instructor's cells define here (``np``, the helpers of the setup cell, the reference
values of hidden tests) always win over the student's, and Python's builtins are this
process's own. Arguments are copied into the student's kernel and changes made to them there
are copied back, as if the call had happened here; the same goes for NumPy's global random
state, and NumPy's error state (``np.errstate``) applies to the student's code too.
Functions of the judge passed to the student's code (``np.tanh``, a lambda) stay here and are
called back.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import io
import linecache
import os
import struct
import sys
import traceback

import numpy as np

from . import protocol
from .source import bound_names, python_source
from .protocol import ProtocolError

_HEADER = struct.Struct("!Q")
#: the exceptions of the student's code that arrive here as themselves (others as StudentError)
PASSED_THROUGH = {cls.__name__: cls for cls in (
    ArithmeticError, AssertionError, AttributeError, FloatingPointError, ImportError, IndexError, KeyError,
    LookupError, MemoryError, ModuleNotFoundError, NameError, NotImplementedError, OverflowError,
    RecursionError, RuntimeError, TypeError, ValueError, ZeroDivisionError)}


class StudentError(Exception):
    """An exception raised by the student's code that is not one of Python's own."""


class StudentTimeout(Exception):
    """The student's code did not answer within the cell's time limit."""


class BrokenProtocol(Exception):
    """The student's kernel answered something that is not a valid reply."""


class StudentDied(Exception):
    """The student's kernel died while the judge called it."""


# ---------------------------------------------------------------------------------------------
# Frames on a pair of file descriptors
# ---------------------------------------------------------------------------------------------
def read_frame(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the worker closed the connection")
    (size,) = _HEADER.unpack(header)
    if size > protocol.LIMITS["bytes"] + 1024:  # the stream cannot be trusted any more: end here
        sys.stderr.write(f"nbjudge.judge: a frame of {size} bytes; exiting\n")
        os._exit(3)
    data = stream.read(size)
    return protocol.loads(data)


def write_frame(stream, message):
    data = protocol.dumps(message)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


class Channel:
    """The judge's end of the connection: requests to the student kernel, callbacks from it."""

    def __init__(self, inp, out):
        self.inp, self.out = inp, out
        self.callbacks: dict[int, object] = {}
        self.remotes: dict[int, "Remote"] = {}
        self.in_callback = 0
        self.calls = 0
        self._handle_meta = {}
        self._callback_ids: dict[int, int] = {}
        self.depth = 0
        self._rng_agreed = None           # NumPy's global random state as both sides last had it
        self.undefined: list[str] = []    # names a test used that the student's cells do not define
        self.not_data: list[str] = []     # student values that could not be used as data
        self.incidents: list[dict] = []

    def _reference(self, value):
        """A value that is not data, as a reference: a Remote goes home, anything else stays here."""
        if type(value) is Remote:
            return {"__handle__": object.__getattribute__(value, "_id")}
        if type(value) is slice:  # remote[:, 0]
            return {"__slice__": [protocol.encode(v, self._reference) for v in (value.start, value.stop, value.step)]}
        if value is Ellipsis:
            return {"__ellipsis__": 0}
        key = id(value)
        cid = self._callback_ids.get(key)
        if cid is None or self.callbacks.get(cid) is not value:
            self._next_callback = getattr(self, "_next_callback", 0) + 1
            cid = self._next_callback
            self.callbacks[cid] = value
            self._callback_ids[key] = cid
        return {"__callback__": cid}

    def _resolve(self, kind, ref):
        if kind == "handle":
            if ref not in self.remotes:
                self.remotes[ref] = Remote(self, ref, self._handle_meta.get(str(ref), {}))
            return self.remotes[ref]
        if ref not in self.callbacks:
            raise ProtocolError(f"the student's kernel named a judge object {ref} that does not exist")
        return self.callbacks[ref]

    def request(self, op, target=None, **fields):
        """Run ``op`` in the student's kernel; the decoded result (see the module docstring).

        The judge's functions and objects passed along stay reachable for the student's code only
        while the outermost request runs; they are forgotten when it returns.
        """
        self.calls += 1
        self.depth += 1
        try:
            return self._request(op, target, fields)
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.callbacks.clear()
                self._callback_ids.clear()

    def _request(self, op, target, fields):
        message = {"op": op}
        if target is not None:
            message["target"] = self._reference(target)
        args = fields.pop("args", None)
        for key, value in fields.items():
            message[key] = protocol.encode(value, self._reference)
        if args is not None:
            message["args"] = protocol.encode(list(args[0]), self._reference)
            message["kwargs"] = protocol.encode(dict(args[1]), self._reference)
            message["context"] = {"errstate": np.geterr()}
            state = np.random.get_state()
            if not _same_state(state, self._rng_agreed):  # the student's side knows it already otherwise
                message["context"]["np_random"] = protocol.encode(state)
        write_frame(self.out, {"request": message})
        while True:
            frame = read_frame(self.inp)
            if "callback_text" in frame:
                self._run_callback(frame["callback_text"])
                continue
            if "reply_text" in frame:
                try:
                    reply = protocol.loads(str(frame["reply_text"]).encode())
                except ProtocolError as exc:
                    raise BrokenProtocol(f"the student's kernel answered with something that is not a reply ({exc})")
                if not isinstance(reply, dict) or "transport" in reply:
                    raise BrokenProtocol("the student's kernel answered with something that is not a reply")
                return self._finish(reply, op, fields.get("name"), args)
            if "reply" in frame:
                return self._finish(frame["reply"], op, fields.get("name"), args)
            raise ProtocolError(f"unexpected frame {sorted(frame)}")

    def sync_random_state(self):
        """Take NumPy's global random state from the student's kernel: in a notebook, the test and
        the student's cells before it share one."""
        self._rng_agreed = None
        try:
            state = self.request("random_state")
            np.random.set_state(state)
            self._rng_agreed = np.random.get_state()
        except Exception:
            pass  # no kernel, or no valid state: the first call sends the judge's

    def _finish(self, reply, op, name, args):
        if isinstance(reply, dict) and reply.get("transport"):
            kind = reply["transport"]
            if kind == "timeout":
                raise StudentTimeout(reply.get("message", "the student's code did not finish in time"))
            if kind == "dead":
                raise StudentDied(reply.get("message", "the student's kernel died"))
            raise BrokenProtocol(reply.get("message", "the student's kernel did not answer"))
        try:
            if not isinstance(reply, dict):
                raise ProtocolError("a reply that is not an object")
            self._handle_meta = reply.get("handles") if isinstance(reply.get("handles"), dict) else {}
            if "error" in reply:
                error = reply["error"]
                ename, evalue = str(error.get("ename", "Exception"))[:100], str(error.get("evalue", ""))[:4000]
            else:
                value = protocol.decode(reply["ok"], self._resolve)
                if args is not None:
                    back = reply.get("writeback") or {}
                    if "args" in back:
                        _apply(list(args[0]), protocol.decode(back["args"], self._resolve))
                    if "kwargs" in back:
                        _apply(dict(args[1]), protocol.decode(back["kwargs"], self._resolve))
                    if "np_random" in reply:
                        np.random.set_state(protocol.decode(reply["np_random"]))
                    self._rng_agreed = np.random.get_state()
                return value
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            raise BrokenProtocol(f"the student's kernel answered with data that may not cross ({exc})") from None
        what = f"{op} {name!r}" if name else op
        if ename == "NameError" and op == "lookup":
            raise NameError(evalue)
        bases = error.get("bases") if isinstance(error.get("bases"), list) else ([ename] if error.get("builtin") else [])
        cls = next((PASSED_THROUGH[b] for b in bases if isinstance(b, str) and b in PASSED_THROUGH), None)
        if cls is not None and not error.get("builtin"):  # a subclass (AxisError, the student's own ShapeError)
            cls = type(ename[:100] if ename.isidentifier() else "StudentException", (cls, StudentError), {})
        if cls is not None and issubclass(cls, KeyError):
            raise cls(evalue) from None
        if cls is not None:
            raise cls(evalue)
        raise StudentError(f"{ename}: {evalue} (raised by the student's code during {what})")

    def _run_callback(self, text):
        self.in_callback += 1
        try:
            frame = protocol.loads(str(text).encode())
            cid = frame.get("callback") if isinstance(frame, dict) else None
            target = self.callbacks.get(cid)
            if target is None:
                raise ProtocolError(f"unknown judge object {cid!r}")
            if "attr" in frame:
                attr = str(frame["attr"])
                if attr.startswith("_"):  # no way from a test's function to its globals, code or class
                    raise AttributeError(f"the student's code may not read {attr!r} of the grader's objects")
                result = getattr(target, attr)
            else:
                args = protocol.decode(frame.get("args", []), self._resolve)
                kwargs = protocol.decode(frame.get("kwargs", {}), self._resolve)
                if not isinstance(args, list) or not isinstance(kwargs, dict):
                    raise ProtocolError("malformed arguments")
                result = target(*args, **kwargs)
            answer = {"ok": protocol.encode(result, self._reference)}
        except Exception as exc:  # the judge's own function failed: the student's code sees an error
            answer = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
        finally:
            self.in_callback -= 1
        write_frame(self.out, {"callback_reply": answer})


def _same_state(a, b) -> bool:
    """Whether two states of NumPy's legacy global generator (``np.random.get_state()``) are equal."""
    return b is not None and a[0] == b[0] and a[2:] == b[2:] and np.array_equal(a[1], b[1])


def _apply(old, new):
    """Make ``old`` equal to ``new`` in place where it can be changed in place."""
    if type(old) is Remote:  # the student's own object: it changed where it lives
        return
    if isinstance(old, np.ndarray) and type(new) is np.ndarray:
        if old.shape == new.shape and old.flags.writeable:
            old[...] = new.astype(old.dtype, copy=False)
        return
    if isinstance(old, np.random.Generator) and type(new) is np.random.Generator:
        if type(old.bit_generator) is type(new.bit_generator):
            old.bit_generator.state = new.bit_generator.state
        return
    if isinstance(old, list) and type(new) is list:
        for i, item in enumerate(new[:len(old)]):
            if _mutable(old[i]) and type(old[i]) is type(item):
                _apply(old[i], item)
            else:
                old[i] = item
        del old[len(new):]
        old.extend(new[len(old):])
        return
    if isinstance(old, tuple) and type(new) is tuple:
        for a, b in zip(old, new):
            if _mutable(a):
                _apply(a, b)
        return
    if isinstance(old, dict) and type(new) is dict:
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, item in new.items():
            if key in old and _mutable(old[key]) and type(old[key]) is type(item):
                _apply(old[key], item)
            else:
                old[key] = item


def _mutable(value):
    return type(value) is not Remote and isinstance(value, (np.ndarray, list, dict, tuple, np.random.Generator))


_CONVERSIONS = ("float", "int", "index", "array", "len", "list", "bool")
_FORWARDED_DUNDERS = {"__name__", "__qualname__", "__module__", "__doc__", "__wrapped__"}


class Remote:
    # An object that lives in the student's kernel. Every use is a request; the answers are data
    # or further Remotes. (No docstring: ``__doc__`` is forwarded like any attribute.)
    __slots__ = ("_channel", "_id", "_meta")

    def __init__(self, channel, ref, meta):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_id", ref)
        object.__setattr__(self, "_meta", meta if isinstance(meta, dict) else {})

    def _do(self, op, **fields):
        channel = object.__getattribute__(self, "_channel")
        try:
            return channel.request(op, self, **fields)
        except TypeError as exc:
            if op in _CONVERSIONS:
                channel.not_data.append(f"{op}() of a {self._type_name()}: {exc}"[:300])
            raise

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") and name not in _FORWARDED_DUNDERS:
            # NumPy asks for __array_interface__ and friends: an answer would point into this
            # process's memory; only __array__ (a copy, as data) is followed
            raise AttributeError(name)
        return self._do("getattr", name=name)

    def __setattr__(self, name, value):
        self._do("setattr", name=name, value=value)

    def __call__(self, *args, **kwargs):
        return self._do("call", args=(args, kwargs))

    def __getitem__(self, key):
        return self._do("getitem", key=key)

    def __setitem__(self, key, value):
        self._do("setitem", key=key, value=value)

    def __len__(self):
        n = self._do("len")
        if type(n) is not int or n < 0:
            raise TypeError(f"len() of the student's object gave {n!r}")
        return n

    def __iter__(self):
        items = self._do("list")
        if type(items) is not list:
            raise TypeError("the student's object cannot be iterated")
        return iter(items)

    def __contains__(self, key):
        return bool(self._do("contains", key=key) is True)

    def __bool__(self):
        return self._do("bool") is True

    def __repr__(self):
        text = self._do("repr")
        return text if type(text) is str else "<student object>"

    def __str__(self):
        text = self._do("str")
        return text if type(text) is str else "<student object>"

    def __format__(self, spec):
        return format(str(self), spec)

    def __array__(self, dtype=None, copy=None):
        array = self._do("array")
        if type(array) is not np.ndarray:
            given = array._type_name() if type(array) is Remote else type(array).__name__
            object.__getattribute__(self, "_channel").not_data.append(
                f"a {self._type_name()} read as an array gave a {given}, not a numeric array")
            raise BrokenProtocol(f"the student's {self._type_name()} cannot be read as a numeric array")
        return array.astype(dtype) if dtype is not None else array

    def __float__(self):
        return float(self._number("float", float))

    def __int__(self):
        return int(self._number("int", int))

    def __index__(self):
        return int(self._number("index", int))

    def _number(self, op, kind):
        value = self._do(op)
        if type(value) is not kind:
            raise TypeError(f"{op}() of the student's {self._type_name()} gave {type(value).__name__}")
        return value

    def _type_name(self):
        return str(object.__getattribute__(self, "_meta").get("type", "object"))

    @property
    def __class__(self):
        # isinstance(remote, keras.layers.Dense) asks for __class__: the class of the same name
        # here, if the judge has imported its module (the name is the student kernel's word)
        return _local_class(self._type_name()) or Remote

    @property
    def __doc__(self):
        return self._do("getattr", name="__doc__")


def _local_class(dotted):
    """The class ``module.Qualname`` if ``module`` is already imported here (nothing is imported)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        obj = sys.modules.get(".".join(parts[:i]))
        if obj is None:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name, None)
        return obj if isinstance(obj, type) and obj is not Remote else None
    return None


class Namespace(dict):
    """The test cells' globals: the judge's own names, then builtins, then the student's names."""

    def __init__(self, channel):
        super().__init__()
        self.channel = channel
        self.student = False  # True while a test cell runs
        self.cache = {}
        self.looked_up: dict[int, str] = {}  # id(Remote) -> the name it was found under
        self.protected: set[str] = set()      # names of the instructor's cells, never the student's

    def __missing__(self, name):
        if not self.student or hasattr(builtins, name) or name.startswith("__") or name in self.protected:
            raise KeyError(name)
        if name not in self.cache:
            try:
                value = self.channel.request("lookup", name=name)
            except NameError:
                self.channel.undefined.append(name)
                raise KeyError(name) from None
            self.cache[name] = value
            if type(value) is Remote:
                self.looked_up[id(value)] = name
        return self.cache[name]


class SubmittedSource:
    """The source of the student's definitions, read from the submitted cells (never from the kernel).

    Tests that look at *how* something was written (``inspect.getsource(train)``, "no Python loop
    over samples") get the text of the last top-level ``def``/``class`` of that name in the
    student's cells, as it was submitted.
    """

    def __init__(self, namespace):
        self.namespace = namespace
        self.cells: list[str] = []

    def of(self, name):
        found = None
        for text in self.cells:
            try:
                tree = ast.parse(python_source(text))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                    found = ast.get_source_segment(python_source(text), node, padded=True)
        if found is None:
            raise OSError(f"could not find the source of {name!r} in the submitted cells")
        return found + "\n"

    def install(self):
        import inspect
        original = inspect.getsource

        def getsource(obj):
            if type(obj) is Remote:
                name = self.namespace.looked_up.get(id(obj))
                if name is None:
                    name = obj.__name__
                return self.of(str(name))
            return original(obj)
        inspect.getsource = getsource


def run_cell(namespace, source, filename):
    """Execute ``source`` like a notebook cell; return the outcome dict."""
    out, err = io.StringIO(), io.StringIO()
    outcome = {"status": "ok", "stdout": "", "stderr": "", "result": None}
    code_text = python_source(source)
    linecache.cache[filename] = (len(code_text), None, code_text.splitlines(True), filename)
    try:
        tree = ast.parse(code_text, filename=filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(tree, filename, "exec"), namespace)
            if last is not None:
                value = eval(compile(last, filename, "eval"), namespace)
                if value is not None:
                    outcome["result"] = repr(value)
    except BaseException as exc:  # noqa: B902 - every failure of a test is its outcome
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not isinstance(exc, SystemExit):
            raise
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
        lines = [f"{type(exc).__name__}    Traceback (most recent call last)"]
        for frame in frames:
            lines.append(f"Cell {filename}, line {frame.lineno}:\n    {frame.line}")
        lines.append(f"{type(exc).__name__}: {exc}")
        outcome.update(status="error", ename=type(exc).__name__, evalue=str(exc)[:10_000], traceback=lines)
        if isinstance(exc, (StudentTimeout, BrokenProtocol, StudentDied)):
            outcome["transport"] = type(exc).__name__
    outcome["stdout"], outcome["stderr"] = out.getvalue()[-100_000:], err.getvalue()[-100_000:]
    return outcome


def main() -> int:
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    # Anything else that writes to the process's stdout must not corrupt the frames.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 0)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(open(os.devnull, "wb"))
    channel = Channel(inp, out)
    namespace = Namespace(channel)
    namespace["__name__"] = "__main__"
    sources = SubmittedSource(namespace)
    sources.install()
    write_frame(out, {"ready": True})
    while True:
        try:
            frame = read_frame(inp)
        except EOFError:
            return 0
        op = frame.get("op")
        if op == "exit":
            return 0
        if op == "sources":
            sources.cells = [str(text) for text in frame.get("cells", [])]
            write_frame(out, {"done": {"status": "ok"}})
            continue
        if op not in ("setup", "test"):
            return 2  # a frame out of order: the worker restarts the judge
        namespace.student = op == "test"
        namespace.cache = {}
        channel.calls, channel.undefined, channel.not_data = 0, [], []
        if op == "test":
            channel.sync_random_state()
        outcome = run_cell(namespace, frame.get("source", ""), f"<{frame.get('cell') or 'cell'}>")
        if op == "setup" and outcome["status"] != "ok":
            # what the instructor's cell would have defined is never looked up in the student's kernel
            namespace.protected |= bound_names(frame.get("source", ""))
        namespace.student = False
        outcome.update(calls=channel.calls, undefined=sorted(set(channel.undefined)), not_data=channel.not_data[:5])
        write_frame(out, {"done": outcome})


if __name__ == "__main__":
    sys.exit(main())
