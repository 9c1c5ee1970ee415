"""Input checks shared by the public functions of :mod:`nnlab`.

Every check raises ``ValueError`` whose message quotes the bad value and says what was
expected, e.g. ``ValueError: rate must be in [0, 1), got 1.5``.
"""
from __future__ import annotations

import numbers

import numpy as np


def _describe(x) -> str:
    """Short description of a value for an error message."""
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def check_array(x, name: str, *, ndim=None, dtype_kind: str = "fiub", n_cols=None,
                finite: bool = True) -> np.ndarray:
    """Return ``x`` as an ndarray after checking its dimensions, dtype and values.

    Parameters
    ----------
    x : array_like
    name : str
        Name used in error messages (``"X"``, ``"y"``, ...).
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    dtype_kind : str
        Allowed ``dtype.kind`` letters: f float, i int, u unsigned, b bool.
    n_cols : int, optional
        Required size of the last axis.
    finite : bool
        Reject NaN and infinity.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be array-like, got {_describe(x)}: {exc}") from exc
    if arr.dtype.kind not in dtype_kind:
        kinds = {"f": "float", "i": "int", "u": "unsigned int", "b": "bool"}
        wanted = " or ".join(kinds.get(k, k) for k in dtype_kind)
        raise ValueError(f"{name} must have a numeric dtype ({wanted}), got {_describe(arr)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got {_describe(arr)}")
    if n_cols is not None and arr.shape[-1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns (last axis), got {_describe(arr)}")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values, got NaN or infinity in {_describe(arr)}")
    return arr


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise if two arrays do not have the same number of samples (first axis)."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same number of samples, "
                         f"got {len(a)} and {len(b)}")


def check_binary_labels(y, name: str = "y") -> np.ndarray:
    """Return ``y`` as float array after checking it only holds 0 and 1."""
    arr = check_array(y, name)
    bad = arr[(arr != 0) & (arr != 1)]
    if bad.size:
        raise ValueError(f"{name} must hold binary labels 0 or 1, got {bad.flat[0].item()!r} "
                         f"({bad.size} value(s) outside {{0, 1}})")
    return arr


def check_class_labels(y, n_classes: int, name: str = "y") -> np.ndarray:
    """Return ``y`` as int array after checking it holds integers in ``[0, n_classes)``."""
    arr = check_array(y, name, ndim=1)
    if arr.dtype.kind == "f":
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values "
                             f"such as {arr[arr != np.round(arr)][0].item()!r}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n_classes)]
    if bad.size:
        raise ValueError(f"{name} must hold class labels in [0, {n_classes}), got {bad[0].item()!r}")
    return arr


def check_number(value, name: str, *, low=None, high=None, low_inclusive=True,
                 high_inclusive=False, integer=False):
    """Check a scalar lies in an interval; return it unchanged.

    The message uses interval notation, e.g. ``rate must be in [0, 1), got 1.5``.
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what}, got {_describe(value)}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = ("[" if low_inclusive else "(") + ("-inf" if low is None else f"{low}")
        right = ("inf" if high is None else f"{high}") + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must be in {left}, {right}, got {value!r}")
    return value


def check_choice(value, name: str, choices) -> str:
    """Check ``value`` is one of ``choices`` (e.g. an activation name)."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(choices)}")
    return value


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    """Accept a ``np.random.Generator`` or an int seed; refuse the legacy global RNG."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"{name} must be a numpy Generator (np.random.default_rng(seed)) or an int seed, "
                     f"got {_describe(rng)}")
