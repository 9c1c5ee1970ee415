"""Numerical gradient checks: centred differences in float64 against backpropagation.

The relative error ``||a - n|| / (||a|| + ||n||)`` is scale free: below about 1e-7 the analytic
gradient is right; around 1e-2 or above it is wrong (kinks such as ReLU at 0 can give larger
errors, which is why the checks use random inputs away from 0).
"""
from __future__ import annotations

import copy

import numpy as np

from ._validation import check_rng


def numerical_gradient(f, x, eps=1e-6):
    """Centred-difference gradient of the scalar function ``f()`` with respect to array ``x``.

    ``x`` is perturbed in place, one element at a time, and restored:
    ``df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, with error O(eps**2).

    Parameters
    ----------
    f : callable with no arguments returning a float
        Must read ``x`` (e.g. a layer's parameter array) each time it is called.
    x : ndarray of dtype float64
    eps : float
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical gradients need float64 arrays (float32 round-off swamps the "
                         f"difference quotient), got dtype {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        f_plus = f()
        x[i] = old - eps
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    """Relative error ``||a - n|| / (||a|| + ||n||)`` between two gradient arrays (2-norms).

    Taking norms over the whole array, rather than the worst element, keeps entries that are
    almost zero (where finite differences carry mostly round-off) from dominating the verdict.
    0 means identical; below about 1e-7 the analytic gradient is right; an error in the formula
    typically gives 1e-2 or more.
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"gradients must have the same shape, got {a.shape} and {n.shape}")
    denominator = np.linalg.norm(a) + np.linalg.norm(n)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(a - n) / denominator)


def check_gradients(f, params, grads, *, eps=1e-6, tol=1e-6):
    """Compare analytic ``grads`` with numerical gradients of ``f`` for every array in ``params``.

    Parameters
    ----------
    f : callable returning the scalar loss, reading the arrays in ``params``
    params : dict name -> float64 ndarray
    grads : dict name -> ndarray, the analytic gradients (same keys)
    tol : float
        Largest relative error accepted.

    Returns
    -------
    errors : dict name -> relative error

    Raises
    ------
    AssertionError
        If any relative error exceeds ``tol``; the message lists every parameter's error.
    """
    errors = {}
    for name, x in params.items():
        if name not in grads:
            raise AssertionError(f"no analytic gradient for parameter {name!r}")
        if np.shape(grads[name]) != np.shape(x):
            raise AssertionError(f"gradient of {name!r} has shape {np.shape(grads[name])}, "
                                 f"parameter has shape {np.shape(x)}")
        errors[name] = relative_error(grads[name], numerical_gradient(f, x, eps))
    failed = {k: e for k, e in errors.items() if not e <= tol}
    if failed:
        lines = [f"  {k:<24s} relative error {e:.3e}  {'FAIL' if k in failed else 'ok'}"
                 for k, e in errors.items()]
        raise AssertionError(f"gradient check failed (tolerance {tol:.0e}):\n" + "\n".join(lines))
    return errors


def check_layer(layer, x, *, rng=0, eps=1e-6, tol=1e-6):
    """Gradient-check a layer's parameters and its input gradient.

    A float64 copy of the layer is used (the original is untouched). The scalar being
    differentiated is ``sum(forward(x) * dout)`` for a fixed random ``dout``, whose gradient is
    exactly what ``backward(dout)`` returns. The layer's forward must be deterministic.

    Returns a dict name -> relative error, with the input gradient under ``"x"``.
    """
    rng = check_rng(rng)
    layer = copy.deepcopy(layer).astype(np.float64)
    x = np.array(x, dtype=np.float64)
    out = layer.forward(x, training=True)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)

    def f():
        return float(np.sum(layer.forward(x, training=True) * dout))

    params = dict(layer.params, x=x)
    grads = dict(layer.grads, x=dx)
    return check_gradients(f, params, grads, eps=eps, tol=tol)


def check_network(model, X, y, *, eps=1e-6, tol=1e-6):
    """Gradient-check every parameter of a :class:`~nnlab.network.Sequential` on a batch.

    Works on a float64 copy. Returns ``{"layer{i}.{name}": relative error}``.
    """
    model = copy.deepcopy(model).astype(np.float64)
    X = np.asarray(X, dtype=np.float64)
    model.loss_and_gradients(X, y)
    params, grads = {}, {}
    for i, layer in enumerate(model.layers):
        for name, value in layer.params.items():
            params[f"layer{i}.{name}"] = value
            grads[f"layer{i}.{name}"] = layer.grads[name].copy()

    def f():
        logits = model.forward(X, training=True)
        loss, _ = model._loss_fn(logits, y)
        return loss + sum(layer.regularization_loss() for layer in model.layers)

    return check_gradients(f, params, grads, eps=eps, tol=tol)
