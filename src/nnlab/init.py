"""Weight initializers, named and parameterised as in ``keras.initializers``.

Every initializer has the signature ``init(shape, rng, dtype=np.float32, **params) -> ndarray``
and draws its randomness only from the ``np.random.Generator`` passed in (an int seed is accepted
too). Dense kernels have shape ``(fan_in, fan_out)``; for convolution kernels
``(kh, kw, in, out)`` the fans are multiplied by the receptive-field size, as Keras computes them.

The variance-scaling family (LeCun, Glorot, He) keeps ``Var[z]`` roughly constant from layer to
layer: ``Var[W] = scale / n`` with ``n = fan_in`` (LeCun, He; He uses scale 2 for ReLU) or
``n = (fan_in + fan_out) / 2`` (Glorot). The ``*_normal`` members draw from a normal truncated at
two standard deviations and rescale it so that the variance is exactly ``scale / n``; the
``*_uniform`` members draw from ``U[-limit, limit]`` with ``limit = sqrt(3 scale / n)``.

Summary (name as in Keras: distribution, variance of the entries)::

    zeros, ones, constant   constant                               0
    random_normal           N(mean, stddev**2)                     stddev**2 (Keras: 0.05**2)
    random_uniform          U[minval, maxval]                      (maxval - minval)**2 / 12
    truncated_normal        normal cut at mean +- 2 stddev         0.774 stddev**2
    lecun_normal            truncated normal, rescaled             1 / fan_in
    lecun_uniform           U[-sqrt(3 / fan_in), +sqrt(...)]       1 / fan_in
    glorot_normal           truncated normal, rescaled             2 / (fan_in + fan_out)
    glorot_uniform          U[-sqrt(6 / (fan_in + fan_out)), +]    2 / (fan_in + fan_out)
    he_normal               truncated normal, rescaled             2 / fan_in
    he_uniform              U[-sqrt(6 / fan_in), +sqrt(...)]       2 / fan_in
    orthogonal              QR of a Gaussian matrix                gain**2 / max(rows, cols)

Each is checked against the Keras initializer of the same name in ``tests/test_init.py``.
"""
from __future__ import annotations

import functools
import inspect
import numbers

import numpy as np

from ._validation import check_choice, check_number, check_rng

# std of a standard normal truncated to [-2, 2]; dividing by it restores the wanted variance
_TRUNCATED_STD = 0.87962566103423978


def _check_shape(shape, *, min_ndim=0) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of non-negative ints, or raise ValueError quoting it."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}") from None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"shape must be a tuple of non-negative integers, got {shape!r}")
    if len(dims) < min_ndim:
        raise ValueError(f"shape must have at least {min_ndim} dimensions, got {dims}")
    return tuple(int(d) for d in dims)


def compute_fans(shape) -> tuple[float, float]:
    """Return ``(fan_in, fan_out)`` for a weight of the given shape (Keras' convention).

    ``()`` -> (1, 1); ``(n,)`` -> (n, n); ``(fan_in, fan_out)`` for a dense kernel;
    ``(*receptive, in, out)`` -> ``(in * prod(receptive), out * prod(receptive))``.
    """
    shape = _check_shape(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape, rng, stddev, mean=0.0):
    """Normal samples redrawn until they lie within two standard deviations of the mean.

    Redrawing (not clipping) keeps the shape of the distribution inside the bounds; the
    truncated standard normal has std :data:`_TRUNCATED_STD` (about 0.88), not 1.
    """
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while np.any(bad):
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


def zeros(shape, rng=None, dtype=np.float32):
    """All zeros. ``rng`` is accepted for a uniform signature and ignored.

    Every unit of a layer initialized this way computes the same function and receives the
    same gradient, so the units never become different (the symmetry problem).

    Returns
    -------
    ndarray of shape ``shape``
    """
    return np.zeros(_check_shape(shape), dtype=dtype)


def ones(shape, rng=None, dtype=np.float32):
    """All ones (same symmetry problem as :func:`zeros`). Returns an ndarray of shape ``shape``."""
    return np.ones(_check_shape(shape), dtype=dtype)


def constant(shape, rng=None, dtype=np.float32, value=0.0):
    """Every entry equal to ``value`` (Keras' ``Constant``). Returns an ndarray of shape ``shape``."""
    check_number(value, "value")
    return np.full(_check_shape(shape), value, dtype=dtype)


def random_normal(shape, rng, dtype=np.float32, mean=0.0, stddev=0.05):
    """Samples of ``N(mean, stddev**2)``; Keras' default ``stddev`` is 0.05.

    ``stddev=1`` gives the "N(0, 1)" initialization that makes deep networks saturate or explode.

    Parameters
    ----------
    shape : tuple of int
    rng : np.random.Generator or int
    dtype : numpy dtype
    mean : float
    stddev : float, > 0

    Returns
    -------
    ndarray of shape ``shape``
    """
    shape = _check_shape(shape)
    check_number(mean, "mean")
    check_number(stddev, "stddev", low=0, low_inclusive=False)
    return (mean + stddev * check_rng(rng).standard_normal(shape)).astype(dtype)


def random_uniform(shape, rng, dtype=np.float32, minval=-0.05, maxval=0.05):
    """Samples of ``U[minval, maxval)``; Keras' defaults are ±0.05.

    Returns
    -------
    ndarray of shape ``shape``, variance ``(maxval - minval)**2 / 12``
    """
    shape = _check_shape(shape)
    check_number(minval, "minval")
    check_number(maxval, "maxval")
    if not minval < maxval:
        raise ValueError(f"minval must be smaller than maxval, got minval={minval!r}, maxval={maxval!r}")
    return check_rng(rng).uniform(minval, maxval, size=shape).astype(dtype)


def truncated_normal(shape, rng, dtype=np.float32, mean=0.0, stddev=0.05):
    """``N(mean, stddev**2)`` restricted to ``[mean - 2 stddev, mean + 2 stddev]`` by redrawing.

    As in Keras, ``stddev`` is the std *before* truncation: the samples' std is about
    ``0.88 stddev``.

    Returns
    -------
    ndarray of shape ``shape``
    """
    shape = _check_shape(shape)
    check_number(mean, "mean")
    check_number(stddev, "stddev", low=0, low_inclusive=False)
    return _truncated_normal(shape, check_rng(rng), stddev, mean).astype(dtype)


def variance_scaling(shape, rng, dtype=np.float32, scale=1.0, mode="fan_in",
                     distribution="truncated_normal"):
    """Samples with ``Var[W] = scale / n``, ``n`` = fan_in, fan_out or their mean.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_in, fan_out)`` for a dense kernel; see :func:`compute_fans`.
    rng : np.random.Generator or int
    dtype : numpy dtype
    scale : float, > 0
    mode : {"fan_in", "fan_out", "fan_avg"}
    distribution : {"truncated_normal", "untruncated_normal", "uniform"}
        ``truncated_normal`` is rescaled by 1 / 0.8796 so that the variance after truncation
        is ``scale / n``; ``uniform`` uses ``limit = sqrt(3 scale / n)``.

    Returns
    -------
    ndarray of shape ``shape``
    """
    shape = _check_shape(shape)
    check_number(scale, "scale", low=0, low_inclusive=False)
    check_choice(mode, "mode", ("fan_in", "fan_out", "fan_avg"))
    check_choice(distribution, "distribution", ("truncated_normal", "untruncated_normal", "uniform"))
    rng = check_rng(rng)
    fan_in, fan_out = compute_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, n)
    if distribution == "truncated_normal":
        w = _truncated_normal(shape, rng, np.sqrt(variance) / _TRUNCATED_STD)
    elif distribution == "untruncated_normal":
        w = np.sqrt(variance) * rng.standard_normal(shape)
    else:  # uniform on [-limit, limit] has variance limit**2 / 3
        limit = np.sqrt(3.0 * variance)
        w = rng.uniform(-limit, limit, size=shape)
    return w.astype(dtype)


def lecun_normal(shape, rng, dtype=np.float32):
    """LeCun et al. (1998): ``Var[W] = 1 / fan_in``, truncated normal (for tanh, SELU)."""
    return variance_scaling(shape, rng, dtype, 1.0, "fan_in", "truncated_normal")


def lecun_uniform(shape, rng, dtype=np.float32):
    """LeCun: uniform on ``±sqrt(3 / fan_in)``, so ``Var[W] = 1 / fan_in``."""
    return variance_scaling(shape, rng, dtype, 1.0, "fan_in", "uniform")


def glorot_normal(shape, rng, dtype=np.float32):
    """Glorot & Bengio (2010): ``Var[W] = 2 / (fan_in + fan_out)``, truncated normal."""
    return variance_scaling(shape, rng, dtype, 1.0, "fan_avg", "truncated_normal")


def glorot_uniform(shape, rng, dtype=np.float32):
    """Glorot & Bengio (2010): uniform on ``±sqrt(6 / (fan_in + fan_out))`` (Keras' default)."""
    return variance_scaling(shape, rng, dtype, 1.0, "fan_avg", "uniform")


def he_normal(shape, rng, dtype=np.float32):
    """He et al. (2015): ``Var[W] = 2 / fan_in``, truncated normal; for ReLU layers."""
    return variance_scaling(shape, rng, dtype, 2.0, "fan_in", "truncated_normal")


def he_uniform(shape, rng, dtype=np.float32):
    """He et al. (2015): uniform on ``±sqrt(6 / fan_in)``, so ``Var[W] = 2 / fan_in``."""
    return variance_scaling(shape, rng, dtype, 2.0, "fan_in", "uniform")


def orthogonal(shape, rng, dtype=np.float32, gain=1.0):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix (Saxe et al., 2014).

    The sign correction with ``diag(R)`` makes the result uniformly distributed over
    orthogonal matrices. Higher-rank shapes are flattened to ``(prod(shape[:-1]), shape[-1])``.

    Parameters
    ----------
    shape : tuple of int, at least 2 dimensions
    rng : np.random.Generator or int
    dtype : numpy dtype
    gain : float
        Multiplies the matrix.

    Returns
    -------
    W : ndarray of shape ``shape``
        Flattened to ``(rows, cols)``: ``W.T @ W = gain**2 I`` if ``rows >= cols``, else
        ``W @ W.T = gain**2 I``. Every singular value equals ``gain``, so ``||x W|| = gain ||x||``
        for ``rows <= cols``.
    """
    shape = _check_shape(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal initialization needs a shape with at least 2 dimensions, got {shape}")
    check_number(gain, "gain")
    rng = check_rng(rng)
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q.reshape(shape)).astype(dtype)


#: name -> initializer, the names of ``keras.initializers.get``
INITIALIZERS = {
    "zeros": zeros,
    "ones": ones,
    "constant": constant,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "truncated_normal": truncated_normal,
    "variance_scaling": variance_scaling,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "orthogonal": orthogonal,
}


def get(initializer, **params):
    """Return the initializer for a name, or ``initializer`` itself if it is callable.

    Keyword arguments fix the initializer's parameters, as the arguments of a Keras
    initializer class do: ``get("random_normal", stddev=1.0)`` is the N(0, 1) initializer,
    like ``keras.initializers.RandomNormal(stddev=1.0)``.

    Raises
    ------
    ValueError
        For an unknown name, or a parameter the initializer does not take.
    """
    if callable(initializer):
        fn = initializer
    else:
        fn = INITIALIZERS[check_choice(initializer, "initializer", INITIALIZERS)]
    if not params:
        return fn
    accepted = [p for p in inspect.signature(fn).parameters if p not in ("shape", "rng", "dtype")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        name = getattr(fn, "__name__", repr(fn))
        raise ValueError(f"initializer {name!r} takes no parameter(s) {unknown}; expected some of {accepted}")
    return functools.partial(fn, **params)
