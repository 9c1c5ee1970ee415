"""The plain data that may cross between the judge and the student's kernel (nbjudge.protocol),
and the judge's side of it that needs no kernel (nbjudge.judge): namespaces, write-back, classes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nbjudge import judge, protocol
from nbjudge.protocol import ProtocolError


def roundtrip(value, reference=None, resolve=None):
    return protocol.decode(protocol.loads(protocol.dumps(protocol.encode(value, reference))), resolve)


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**70, 1.5, float("inf"), complex(1, -2), "text", b"\x00\xff",
    [1, [2, (3, 4)]], (), {"a": 1, 2: "b", None: [1.0]},
])
def test_plain_values_survive_with_their_types(value):
    back = roundtrip(value)
    assert back == value and type(back) is type(value)


def test_nan_survives():
    assert np.isnan(roundtrip(float("nan")))


@pytest.mark.parametrize("array", [np.arange(6, dtype=np.int16).reshape(2, 3), np.array([True, False]),
                                   np.linspace(0, 1, 5, dtype=np.float32), np.zeros((0, 3)),
                                   np.array([1 + 2j]), np.asfortranarray(np.ones((3, 2)))])
def test_numeric_arrays_survive_exactly(array):
    back = roundtrip(array)
    assert type(back) is np.ndarray and back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)


def test_numpy_scalars_dtypes_and_generators_survive():
    assert type(roundtrip(np.float32(2.5))) is np.float32
    assert roundtrip(np.float32) is np.float32 and roundtrip(np.dtype("int8")) == np.dtype("int8")
    rng = np.random.default_rng(3)
    rng.random(5)
    copy = roundtrip(rng)
    assert copy.random() == rng.random()


def test_an_ndarray_subclass_is_not_data():
    class Agreeable(np.ndarray):
        def __array_function__(self, *args, **kwargs):
            return True

    value = np.arange(3).view(Agreeable)
    with pytest.raises(ProtocolError, match=r"cannot cross \(only numbers"):
        protocol.encode(value)
    assert protocol.encode(value, lambda v: {"__handle__": 1}) == {"__handle__": 1}, "it may travel as a handle"


@pytest.mark.parametrize("value, message", [
    (np.array([1, None], dtype=object), "cannot cross"),
    (object(), "cannot cross"),
    ({(1, 2): 3}, "a dict key of type tuple"),
    (lambda: 0, "cannot cross"),
])
def test_what_is_not_data_is_refused(value, message):
    with pytest.raises(ProtocolError, match=message):
        protocol.encode(value)


def _npy_b64(raw: bytes) -> str:
    import base64
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("data, message", [
    ({"__ndarray__": "not base64!"}, "not a plain numeric .npy"),
    ({"__ndarray__": _npy_b64(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                              + b" " * 50 + b"\n")}, "not a plain numeric .npy"),
    ({"__handle__": 3}, "a reference \\(handle\\) where only data may stand"),
    ({"__weird__": 1}, "unexpected data"),
    ({"__tuple__": [], "extra": 1}, "unexpected data"),
    ({"__int__": "12x"}, "unexpected data"),
    ({"__dict__": [[{"__tuple__": [1]}, 2]]}, "a dict key of type tuple"),
    ({"__generator__": ["PCG64", {"__dict__": [["state", 5]]}]}, "malformed state"),
])
def test_malformed_data_is_refused(data, message):
    with pytest.raises(ProtocolError, match=message):
        protocol.decode(data)


def test_pickled_object_arrays_never_load():
    import base64
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProtocolError, match="not a plain numeric .npy"):
        protocol.decode({"__ndarray__": base64.b64encode(buffer.getvalue()).decode()})


def test_depth_and_size_are_bounded(monkeypatch):
    deep = []
    for _ in range(protocol.LIMITS["depth"] + 5):
        deep = [deep]
    with pytest.raises(ProtocolError, match="nested deeper than"):
        protocol.encode(deep)
    with pytest.raises(ProtocolError, match="nested deeper than"):
        protocol.decode(json.loads("[" * 60 + "]" * 60))
    with pytest.raises(ProtocolError, match="not valid JSON"):
        protocol.loads(b"[" * 100_000 + b"]" * 100_000)
    monkeypatch.setitem(protocol.LIMITS, "bytes", 1000)
    with pytest.raises(ProtocolError, match="a message of"):
        protocol.dumps(protocol.encode(np.zeros(1000)))
    with pytest.raises(ProtocolError, match="a message of"):
        protocol.loads(b" " * 2000)


def test_references_resolve_through_the_callback():
    seen = []

    def resolve(kind, ref):
        seen.append((kind, ref))
        return f"{kind}-{ref}"
    assert protocol.decode([{"__handle__": 4}, {"__callback__": 2}], resolve) == ["handle-4", "callback-2"]
    assert seen == [("handle", 4), ("callback", 2)]


# -- the judge's side ---------------------------------------------------------------------------
class FakeChannel:
    """Answers lookups from a dict, as if it were the student's kernel."""

    def __init__(self, names):
        self.names, self.asked = names, []

    def request(self, op, target=None, **fields):
        self.asked.append(fields["name"])
        if fields["name"] not in self.names:
            raise NameError(fields["name"])
        return self.names[fields["name"]]


def test_namespace_prefers_the_judges_names_and_builtins():
    channel = FakeChannel({"relu": "student relu", "np": "student numpy", "len": "student len"})
    ns = judge.Namespace(channel)
    ns["np"] = np
    ns.student = True
    outcome = judge.run_cell(ns, "a = np.__name__\nb = len([1, 2])\nc = relu", "<t>")
    assert outcome["status"] == "ok", outcome
    assert (ns["a"], ns["b"], ns["c"]) == ("numpy", 2, "student relu")
    assert channel.asked == ["relu"], "only names the judge does not define are asked for"


def test_namespace_asks_nothing_in_setup_cells():
    channel = FakeChannel({"stds": [1.0]})
    ns = judge.Namespace(channel)
    outcome = judge.run_cell(ns, "x = stds", "<setup>")
    assert outcome["status"] == "error" and outcome["ename"] == "NameError" and channel.asked == []


def test_names_are_looked_up_inside_functions_and_comprehensions_too():
    channel = FakeChannel({"f": abs})
    ns = judge.Namespace(channel)
    ns.student = True
    outcome = judge.run_cell(ns, "def g(x):\n    return f(x)\nvalues = [f(v) for v in (-1, -2)]\nlast = g(-3)",
                             "<t>")
    assert outcome["status"] == "ok", outcome
    assert ns["values"] == [1, 2] and ns["last"] == 3


def test_run_cell_reports_a_failed_assert_with_its_line_and_the_last_value():
    ns = judge.Namespace(FakeChannel({}))
    outcome = judge.run_cell(ns, "x = 1\nassert x == 2, f'x should be 2, got {x}'", "<test_x>")
    assert outcome["ename"] == "AssertionError" and outcome["evalue"] == "x should be 2, got 1"
    assert any("line 2" in line for line in outcome["traceback"])
    assert judge.run_cell(ns, "print('hi')\n0.5", "<t>")["result"] == "0.5"
    assert judge.run_cell(ns, "print('hi')", "<t>")["stdout"] == "hi\n"


def test_writeback_changes_arguments_in_place():
    X = np.zeros(3)
    params = {"W": np.ones(2), "gone": 1}
    layers = [(np.zeros(2), np.zeros(1))]
    rng = np.random.default_rng(0)
    judge._apply([X, params, layers, rng], [np.arange(3.0), {"W": np.full(2, 5.0), "new": 2},
                                             [(np.ones(2), np.ones(1))], np.random.default_rng(9)])
    assert np.array_equal(X, [0, 1, 2]) and np.array_equal(params["W"], [5, 5]) and params.keys() == {"W", "new"}
    assert np.array_equal(layers[0][0], [1, 1]), "arrays inside tuples change in place"
    assert rng.random() == np.random.default_rng(9).random()


def test_local_class_only_for_modules_already_imported():
    assert judge._local_class("numpy.ndarray") is np.ndarray
    assert judge._local_class("collections.OrderedDict") is __import__("collections").OrderedDict
    assert judge._local_class("no_such_module_xyz.Thing") is None
    assert judge._local_class("numpy.not_a_class_here") is None
    assert judge._local_class("builtins.len") is None, "a function is not a class"


def test_source_of_a_student_function_comes_from_the_submitted_cells():
    import inspect

    ns = judge.Namespace(FakeChannel({}))
    sources = judge.SubmittedSource(ns)
    sources.cells = ["import numpy as np\n\ndef train(X):\n    for x in X:\n        pass\n",
                     "def train(X):\n    return X.sum(axis=0)\n"]
    original = inspect.getsource
    try:
        sources.install()
        remote = judge.Remote(FakeChannel({}), 1, {})
        ns.looked_up[id(remote)] = "train"
        assert inspect.getsource(remote) == "def train(X):\n    return X.sum(axis=0)\n", "the last definition wins"
        assert "def test_source_of" in inspect.getsource(test_source_of_a_student_function_comes_from_the_submitted_cells)
        ns.looked_up[id(remote)] = "missing"
        with pytest.raises(OSError, match="could not find the source of 'missing' in the submitted cells"):
            inspect.getsource(remote)
    finally:
        inspect.getsource = original


def test_slices_ellipsis_and_abstract_types():
    assert roundtrip((slice(None, 3), Ellipsis, slice(1, None, 2))) == (slice(None, 3), Ellipsis, slice(1, None, 2))
    with pytest.raises(ProtocolError, match="cannot cross"):
        protocol.encode(np.floating)
    with pytest.raises(ProtocolError, match="bounds are not integers"):
        protocol.decode({"__slice__": ["a", 1, None]})


@pytest.mark.parametrize("data", [{"__complex__": ["a", "b"]}, {"__int__": "--5"}, {"__bytes__": "@@@"},
                                  {"__generator__": ["PCG64", {"__dict__": [["bit_generator", "PCG64"],
                                                                            ["state", {"__dict__": []}]]}]}])
def test_every_malformed_value_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        protocol.decode(data)


def test_a_dict_whose_keys_are_not_data_travels_as_a_handle():
    assert protocol.encode({np.int64(1): 2}, lambda v: {"__handle__": 9}) == {"__handle__": 9}


def test_remote_forwards_no_numpy_memory_protocol():
    asked = []

    class Channel(FakeChannel):
        def request(self, op, target=None, **fields):
            asked.append((op, fields.get("name")))
            if op == "array":
                return np.arange(3.0)
            raise AttributeError(fields.get("name"))
    remote = judge.Remote(Channel({}), 1, {"type": "builtins.object"})
    with pytest.raises(AttributeError):
        remote.__array_interface__
    assert np.array_equal(np.asarray(remote), [0.0, 1.0, 2.0])
    assert ("getattr", "__array_interface__") not in asked and ("getattr", "__array_struct__") not in asked


def test_student_exception_subclasses_are_caught_as_their_builtin_base():
    channel = judge.Channel(None, None)
    reply = {"error": {"ename": "AxisError", "evalue": "axis 2 is out of bounds", "builtin": False,
                       "bases": ["ValueError", "IndexError", "Exception", "BaseException", "object"]}}
    with pytest.raises(ValueError, match="axis 2 is out of bounds") as info:
        channel._finish(reply, "call", None, None)
    assert isinstance(info.value, judge.StudentError) and type(info.value).__name__ == "AxisError"


def test_grader_objects_hide_their_private_attributes():
    import io
    channel = judge.Channel(io.BytesIO(), io.BytesIO())
    secret = {"_expected": 42}
    f = eval("lambda z: z", secret)
    ref = channel._reference(f)
    channel._run_callback(json.dumps({"callback": ref["__callback__"], "attr": "__globals__"}))
    out = channel.out.getvalue()
    assert b"may not read '__globals__'" in out and b"42" not in out
