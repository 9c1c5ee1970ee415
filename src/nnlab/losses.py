"""Losses with their gradients, written to be numerically stable.

Every loss returns ``(loss, grad)``: the mean loss over the batch (a Python float) and its
gradient with respect to the first array argument that the network produced (probabilities for
:func:`binary_cross_entropy`, logits for the ``*_with_logits`` and softmax losses). Because the
loss is a mean, the gradient carries a factor ``1 / n_samples``.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_array, check_binary_labels, check_class_labels, check_same_length
from .activations import sigmoid

#: probabilities are clipped to [EPSILON, 1 - EPSILON] before taking logs (Keras uses 1e-7 too)
EPSILON = 1e-7


def _binary_targets(y_true, ref, name_ref):
    y = check_binary_labels(y_true, "y_true").astype(ref.dtype)
    if y.size != ref.size or len(y) != len(ref):
        raise ValueError(f"y_true must have one label per row of {name_ref}: got y_true of shape "
                         f"{y.shape} and {name_ref} of shape {ref.shape}")
    return y.reshape(ref.shape)


def binary_cross_entropy(y_true, y_prob):
    """Mean binary cross-entropy ``-[y log p + (1 - y) log(1 - p)]`` from probabilities.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,) or (n_samples, 1)
        Labels, 0 or 1.
    y_prob : ndarray of the same number of elements
        Predicted probabilities of class 1.

    Returns
    -------
    loss : float
    grad : ndarray shaped like ``y_prob``
        ``dL/dp = (p - y) / (p (1 - p)) / n_samples``, with ``p`` clipped.

    Notes
    -----
    ``p`` is clipped to ``[EPSILON, 1 - EPSILON]`` so a confident wrong prediction costs about
    ``-log(1e-7) = 16.1`` instead of ``inf``. Prefer :func:`binary_cross_entropy_with_logits`
    when the logits are available: it needs no clipping.
    """
    p = check_array(y_prob, "y_prob", dtype_kind="f")
    y = _binary_targets(y_true, p, "y_prob")
    p = np.clip(p, EPSILON, 1 - EPSILON)
    n = len(p)
    loss = -np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)) / n
    grad = (p - y) / (p * (1 - p)) / n
    return float(loss), grad


def binary_cross_entropy_with_logits(y_true, logits):
    """Mean binary cross-entropy computed from logits ``z`` (``p = sigmoid(z)``).

    Uses ``log(1 + exp(-|z|)) + max(z, 0) - z y``, which equals
    ``-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]`` but never overflows.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,) or (n_samples, 1)
    logits : ndarray of shape (n_samples,) or (n_samples, 1)

    Returns
    -------
    loss : float
    grad : ndarray shaped like ``logits``
        ``dL/dz = (sigmoid(z) - y) / n_samples``: the sigmoid's derivative cancels the
        cross-entropy's denominator.
    """
    z = check_array(logits, "logits", dtype_kind="f")
    y = _binary_targets(y_true, z, "logits")
    n = len(z)
    loss = np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))) / n
    grad = (sigmoid(z) - y) / n
    return float(loss), grad.astype(z.dtype, copy=False)


def mean_squared_error(y_true, y_pred):
    """Quadratic cost ``mean over samples of sum_j (y_pred - y_true)**2 / 2``.

    Returns the loss and ``dL/dy_pred = (y_pred - y_true) / n_samples``.
    """
    yp = check_array(y_pred, "y_pred", dtype_kind="f")
    yt = check_array(y_true, "y_true").astype(yp.dtype)
    if yt.size != yp.size:
        raise ValueError(f"y_true and y_pred must have the same number of elements, got shapes "
                         f"{yt.shape} and {yp.shape}")
    yt = yt.reshape(yp.shape)
    n = len(yp)
    diff = yp - yt
    return float(0.5 * np.sum(diff ** 2) / n), diff / n


def softmax(z, axis=-1):
    """Softmax along ``axis``, stable for any logits.

    Subtracting the row maximum leaves the result unchanged (softmax is shift invariant) and
    makes every exponent ``<= 0``, so ``exp`` cannot overflow: logits of 1000 are fine.
    """
    z = check_array(z, "z", dtype_kind="fiu")
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    """``log(softmax(z))`` via log-sum-exp: ``z - max - log(sum(exp(z - max)))``.

    Computing ``np.log(softmax(z))`` instead gives ``-inf`` once a probability underflows to 0.
    """
    z = check_array(z, "z", dtype_kind="fiu")
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def one_hot(y, n_classes, dtype=np.float32):
    """Integer labels ``(n_samples,)`` -> one-hot matrix ``(n_samples, n_classes)``."""
    labels = check_class_labels(y, n_classes)
    out = np.zeros((len(labels), n_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def _class_targets(y_true, z):
    """Integer labels or one-hot rows -> one-hot matrix matching logits ``z``."""
    y = np.asarray(y_true)
    if y.ndim == 1:
        return one_hot(y, z.shape[1], dtype=z.dtype)
    y = check_array(y, "y_true", ndim=2)
    if y.shape != z.shape:
        raise ValueError(f"one-hot y_true must have the shape of the logits {z.shape}, got {y.shape}")
    if np.any((y != 0) & (y != 1)) or np.any(y.sum(axis=1) != 1):
        raise ValueError("one-hot y_true must have exactly one 1 per row and 0 elsewhere; "
                         "pass integer labels of shape (n_samples,) otherwise")
    return y.astype(z.dtype)


def softmax_cross_entropy(logits, y_true):
    """Mean categorical cross-entropy of ``softmax(logits)`` against the targets.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    y_true : ndarray of shape (n_samples,) with integer labels, or (n_samples, n_classes) one-hot

    Returns
    -------
    loss : float
        ``-mean_i log softmax(z_i)[y_i]``, computed with :func:`log_softmax`.
    grad : ndarray of shape (n_samples, n_classes)
        ``dL/dz = (softmax(z) - onehot(y)) / n_samples``: the softmax Jacobian
        ``p_i (delta_ij - p_j)`` contracted with ``-y / p`` collapses to ``p - y``.
    """
    z = check_array(logits, "logits", ndim=2, dtype_kind="f")
    y = _class_targets(y_true, z)
    check_same_length(y, z, "y_true", "logits")
    n = len(z)
    logp = log_softmax(z)
    loss = -np.sum(y * logp) / n
    grad = (np.exp(logp) - y) / n
    return float(loss), grad.astype(z.dtype, copy=False)
