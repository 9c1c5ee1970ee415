"""Weight initializers, named and parameterised as in ``keras.initializers``.

Every initializer has the signature ``init(shape, rng, dtype=np.float32) -> ndarray`` and draws
its randomness only from the ``np.random.Generator`` passed in. Dense kernels have shape
``(fan_in, fan_out)``; for convolution kernels ``(kh, kw, in, out)`` the fans are multiplied by the
receptive-field size, as Keras computes them.

The variance-scaling family (LeCun, Glorot, He) keeps ``Var[z]`` roughly constant from layer to
layer: ``Var[W] = scale / n`` with ``n = fan_in`` (LeCun, He; He uses scale 2 for ReLU) or
``n = (fan_in + fan_out) / 2`` (Glorot).
"""
from __future__ import annotations

import numpy as np

from ._validation import check_choice, check_rng

# std of a standard normal truncated to [-2, 2]; dividing by it restores the wanted variance
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape) -> tuple[float, float]:
    """Return ``(fan_in, fan_out)`` for a weight of the given shape (Keras' convention)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape, rng, stddev, mean=0.0):
    """Normal samples redrawn until they lie within two standard deviations of the mean."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while np.any(bad):
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


def zeros(shape, rng=None, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng=None, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


def constant(shape, rng=None, dtype=np.float32, value=0.0):
    return np.full(shape, value, dtype=dtype)


def random_normal(shape, rng, dtype=np.float32, mean=0.0, stddev=0.05):
    return (mean + stddev * check_rng(rng).standard_normal(shape)).astype(dtype)


def random_uniform(shape, rng, dtype=np.float32, minval=-0.05, maxval=0.05):
    return check_rng(rng).uniform(minval, maxval, size=shape).astype(dtype)


def truncated_normal(shape, rng, dtype=np.float32, mean=0.0, stddev=0.05):
    return _truncated_normal(shape, check_rng(rng), stddev, mean).astype(dtype)


def variance_scaling(shape, rng, dtype=np.float32, scale=1.0, mode="fan_in",
                     distribution="truncated_normal"):
    """``Var[W] = scale / n`` with ``n`` = fan_in, fan_out or their mean (``mode='fan_avg'``)."""
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
    return variance_scaling(shape, rng, dtype, 1.0, "fan_in", "truncated_normal")


def lecun_uniform(shape, rng, dtype=np.float32):
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
    return variance_scaling(shape, rng, dtype, 2.0, "fan_in", "uniform")


def orthogonal(shape, rng, dtype=np.float32, gain=1.0):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix.

    The sign correction with ``diag(R)`` makes the result uniformly distributed over
    orthogonal matrices. Higher-rank shapes are flattened to ``(prod(shape[:-1]), shape[-1])``.
    """
    rng = check_rng(rng)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal initialization needs a shape with at least 2 dimensions, got {shape}")
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
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "truncated_normal": truncated_normal,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "orthogonal": orthogonal,
}


def get(initializer):
    """Return the initializer for a name, or ``initializer`` itself if it is callable."""
    if callable(initializer):
        return initializer
    return INITIALIZERS[check_choice(initializer, "initializer", INITIALIZERS)]
