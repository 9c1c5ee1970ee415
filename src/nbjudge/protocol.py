"""The plain data that crosses between the judge and the student kernel.

Both sides import this file: the judge as ``nbjudge.protocol``, the student kernel's launcher
by path (it never imports the rest of ``nbjudge``). It uses the standard library and NumPy only.

What may cross (:func:`encode` refuses everything else, :func:`decode` accepts nothing else):

- ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes`` (exact types, no subclasses);
- NumPy arrays of a numeric or bool dtype and NumPy scalars of those dtypes, travelling as
  ``.npy`` bytes and read back with ``allow_pickle=False``: a student's ndarray subclass arrives
  as a plain ``ndarray``, an object array does not arrive at all;
- ``numpy.random.Generator`` objects (as the state of their bit generator), NumPy dtypes and
  scalar types such as ``np.float32``;
- lists, tuples and dicts of these (dict keys: ``str``, ``int``, ``float``, ``bool``, ``None``);
- two references that are not data: a *handle* (an object that stays in the student kernel,
  ``{"__handle__": id}``) and a *callback* (a function that stays in the judge,
  ``{"__callback__": id}``). What a reference means is up to each side; nothing is ever
  unpickled or evaluated.

A message is JSON text; :data:`LIMITS` bounds its size and nesting depth on both sides.
"""
from __future__ import annotations

import base64
import binascii
import io
import json

import numpy as np

#: bounds on one message (bytes of JSON text, nesting depth of containers, number of items)
LIMITS = {"bytes": 256 * 2**20, "depth": 40, "items": 2_000_000}
_DTYPE_KINDS = "biufc"  # bool, signed, unsigned, float, complex
_KEY_TYPES = (str, int, float, bool, type(None))
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


class ProtocolError(ValueError):
    """A value that may not cross, or a message that breaks the protocol; the text says which."""


def _array_bytes(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _array_from(text: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # bad base64, bad header, object dtype (pickle refused)
        raise ProtocolError(f"an array that is not a plain numeric .npy ({type(exc).__name__}: {exc})") from None
    if type(array) is not np.ndarray or array.dtype.kind not in _DTYPE_KINDS:
        raise ProtocolError(f"an array of dtype {array.dtype} (only bool and numeric arrays may cross)")
    return array


def encode(value, reference=None, *, depth=0, count=None) -> object:
    """``value`` as JSON-ready data.

    Parameters
    ----------
    value : object
    reference : callable, optional
        Called with any value that is not plain data; returns its reference dict
        (``{"__handle__": id}`` or ``{"__callback__": id}``). Without it such values raise.
    """
    count = count if count is not None else [0]
    count[0] += 1
    if count[0] > LIMITS["items"]:
        raise ProtocolError(f"more than {LIMITS['items']} items in one value")
    if depth > LIMITS["depth"]:
        raise ProtocolError(f"a value nested deeper than {LIMITS['depth']} levels")
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return value if abs(value) < 2**53 else {"__int__": str(value)}
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {"__float__": repr(value)}
        return value
    if kind is complex:
        return {"__complex__": [encode(value.real), encode(value.imag)]}
    if kind is bytes:
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    if kind is np.ndarray and value.dtype.kind in _DTYPE_KINDS:
        return {"__ndarray__": _array_bytes(value)}
    if issubclass(kind, np.generic) and kind.__module__ == "numpy" and value.dtype.kind in _DTYPE_KINDS:
        return {"__npscalar__": _array_bytes(np.asarray(value))}
    if kind is np.random.Generator:
        bits = value.bit_generator
        if type(bits).__name__ in _BIT_GENERATORS:
            return {"__generator__": [type(bits).__name__, encode(bits.state, depth=depth + 1, count=count)]}
    if kind is type and issubclass(value, np.generic) and value.__module__ == "numpy":
        try:
            dtype = np.dtype(value)
        except TypeError:  # an abstract type such as np.floating
            dtype = None
        if dtype is not None and dtype.kind in _DTYPE_KINDS:
            return {"__dtype__": ["type", dtype.str]}
    if kind is np.dtype or (kind.__module__ == "numpy.dtypes" and issubclass(kind, np.dtype)):
        if value.kind in _DTYPE_KINDS:
            return {"__dtype__": ["dtype", value.str]}
    if kind is slice and all(v is None or type(v) is int for v in (value.start, value.stop, value.step)):
        return {"__slice__": [value.start, value.stop, value.step]}
    if value is Ellipsis:
        return {"__ellipsis__": 0}
    if kind in (list, tuple):
        items = [encode(v, reference, depth=depth + 1, count=count) for v in value]
        return items if kind is list else {"__tuple__": items}
    if kind is dict:
        pairs = []
        for k, v in value.items():
            if type(k) not in _KEY_TYPES:
                if reference is not None:  # e.g. keys np.int64(1) or (i, j): the dict stays where it is
                    return reference(value)
                raise ProtocolError(f"a dict key of type {type(k).__name__} (keys must be str, int, float, bool)")
            pairs.append([encode(k, None, depth=depth + 1, count=count),
                          encode(v, reference, depth=depth + 1, count=count)])
        return {"__dict__": pairs}
    if reference is not None:
        return reference(value)
    raise ProtocolError(f"a value of type {kind.__module__}.{kind.__qualname__} cannot cross "
                        "(only numbers, strings, bools, None, numeric arrays and lists, tuples, dicts of them)")


def decode(data, resolve=None, *, depth=0):
    """The value that :func:`encode` made ``data`` from (see :func:`_decode`); anything malformed
    raises :class:`ProtocolError`."""
    try:
        return _decode(data, resolve, depth=depth)
    except ProtocolError:
        raise
    except (ValueError, TypeError, OverflowError, MemoryError, binascii.Error) as exc:
        raise ProtocolError(f"malformed data ({type(exc).__name__}: {str(exc)[:120]})") from None


def _decode(data, resolve=None, *, depth=0):
    """The value that :func:`encode` made ``data`` from.

    ``resolve(kind, id)`` turns a ``("handle" | "callback", id)`` reference into an object; without
    it references raise :class:`ProtocolError`.
    """
    if depth > LIMITS["depth"]:
        raise ProtocolError(f"a value nested deeper than {LIMITS['depth']} levels")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(v, resolve, depth=depth + 1) for v in data]
    if kind is not dict or len(data) != 1:
        raise ProtocolError(f"unexpected data {str(data)[:80]!r}")
    (tag, body), = data.items()
    if tag == "__tuple__" and type(body) is list:
        return tuple(decode(v, resolve, depth=depth + 1) for v in body)
    if tag == "__dict__" and type(body) is list:
        out = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise ProtocolError("a malformed dict entry")
            key = decode(pair[0], None, depth=depth + 1)
            if type(key) not in _KEY_TYPES:
                raise ProtocolError(f"a dict key of type {type(key).__name__}")
            out[key] = decode(pair[1], resolve, depth=depth + 1)
        return out
    if tag == "__ndarray__" and type(body) is str:
        return _array_from(body)
    if tag == "__npscalar__" and type(body) is str:
        array = _array_from(body)
        if array.shape != ():
            raise ProtocolError("a NumPy scalar that is not 0-d")
        return array[()]
    if tag == "__int__" and type(body) is str and body.lstrip("-").isdigit() and len(body) < 5000:
        return int(body)
    if tag == "__float__" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "__complex__" and type(body) is list and len(body) == 2:
        return complex(decode(body[0], depth=depth + 1), decode(body[1], depth=depth + 1))
    if tag == "__generator__" and type(body) is list and len(body) == 2 and body[0] in _BIT_GENERATORS:
        bits = getattr(np.random, body[0])()
        try:
            bits.state = decode(body[1], depth=depth + 1)
        except (TypeError, ValueError, KeyError) as exc:
            raise ProtocolError(f"a random generator with a malformed state ({exc})") from None
        return np.random.Generator(bits)
    if tag == "__dtype__" and type(body) is list and len(body) == 2 and body[0] in ("type", "dtype"):
        try:
            dtype = np.dtype(str(body[1]))
        except TypeError:
            raise ProtocolError(f"an unknown dtype {body[1]!r}") from None
        if dtype.kind not in _DTYPE_KINDS:
            raise ProtocolError(f"a dtype of kind {dtype.kind!r}")
        return dtype.type if body[0] == "type" else dtype
    if tag == "__slice__" and type(body) is list and len(body) == 3:
        parts = [decode(v, depth=depth + 1) for v in body]
        if not all(v is None or type(v) is int for v in parts):
            raise ProtocolError("a slice whose bounds are not integers")
        return slice(*parts)
    if tag == "__ellipsis__" and body == 0:
        return Ellipsis
    if tag == "__bytes__" and type(body) is str:
        return base64.b64decode(body.encode("ascii"), validate=True)
    if tag in ("__handle__", "__callback__") and type(body) is int:
        if resolve is None:
            raise ProtocolError(f"a reference ({tag.strip('_')}) where only data may stand")
        return resolve(tag.strip("_"), body)
    raise ProtocolError(f"unexpected data {str(data)[:80]!r}")


def dumps(message) -> bytes:
    """A message (already encoded) as bytes; refuses one above :data:`LIMITS`."""
    text = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    if len(text) > LIMITS["bytes"]:
        raise ProtocolError(f"a message of {len(text) / 2**20:.0f} MiB (the limit is {LIMITS['bytes'] // 2**20} MiB)")
    return text


def loads(raw) -> object:
    """Parse a message; :class:`ProtocolError` for anything but bounded JSON."""
    if len(raw) > LIMITS["bytes"]:
        raise ProtocolError(f"a message of {len(raw) / 2**20:.0f} MiB (the limit is {LIMITS['bytes'] // 2**20} MiB)")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"a message that is not valid JSON ({type(exc).__name__})") from None


def _refuse_constant(name):
    raise ValueError(f"bare {name}")
