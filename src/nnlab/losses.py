"""Losses with their gradients, written to be numerically stable.

Every loss returns ``(loss, grad)``: the mean loss over the batch (a Python float) and its
gradient with respect to the first array argument that the network produced (probabilities for
:func:`binary_cross_entropy`, logits for the ``*_with_logits`` and softmax losses). Because the
loss is a mean, the gradient carries a factor ``1 / n_samples``.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_array, check_binary_labels, check_class_labels, check_number, check_same_length
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


def _max_shifted(z, axis):
    """Validated logits minus their maximum along ``axis``: every entry ``<= 0``, the largest 0."""
    z = check_array(z, "z", dtype_kind="fiu")
    if z.ndim == 0 or z.shape[axis] == 0:
        raise ValueError(f"z must hold at least one logit along axis {axis}, got shape {z.shape}")
    return z - np.max(z, axis=axis, keepdims=True)


def softmax(z, axis=-1):
    """Softmax along ``axis``, stable for any finite logits.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes) (any shape with at least one axis)
        Logits; float or integer.
    axis : int
        The axis holding the classes.

    Returns
    -------
    p : ndarray shaped like ``z``, floating point
        ``p_i = exp(z_i) / sum_j exp(z_j)``: positive, summing to 1 along ``axis``.

    Notes
    -----
    Softmax is shift invariant, ``softmax(z - c) = softmax(z)`` for any constant ``c`` per row.
    Subtracting the row maximum makes every exponent ``<= 0``, so ``exp`` cannot overflow
    (logits of 1000 are fine) and the largest term is exactly 1, so the sum cannot underflow to 0.
    """
    shifted = _max_shifted(z, axis)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    """``log(softmax(z))`` via log-sum-exp: ``z - max - log(sum(exp(z - max)))``.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_classes) (any shape with at least one axis)
        Logits; float or integer.
    axis : int
        The axis holding the classes.

    Returns
    -------
    log_p : ndarray shaped like ``z``
        Log-probabilities, all ``<= 0``, finite for finite ``z``.

    Notes
    -----
    Computing ``np.log(softmax(z))`` instead gives ``-inf`` once a probability underflows to 0
    (e.g. ``z = [0, -1000]``), while ``log_softmax`` returns the exact ``-1000``.
    """
    shifted = _max_shifted(z, axis)
    # log-sum-exp of the shifted logits lies in [0, log(n_classes)]: no overflow, no log(0)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def one_hot(y, n_classes, dtype=np.float32):
    """Integer labels -> one-hot matrix.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Integer class labels in ``[0, n_classes)`` (integer-valued floats are accepted).
    n_classes : int
        Number of classes, at least 1.
    dtype : numpy dtype

    Returns
    -------
    onehot : ndarray of shape (n_samples, n_classes)
        ``onehot[i, y[i]] = 1``, every other entry 0.
    """

    check_number(n_classes, "n_classes", low=1, integer=True)
    labels = check_class_labels(y, n_classes)
    out = np.zeros((len(labels), int(n_classes)), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def _check_one_hot(y, z):
    """One-hot rows ``y`` (2-D) checked against the logits ``z``, in the dtype of ``z``."""
    if y.shape != z.shape:
        raise ValueError(f"one-hot y_true must have the shape of the logits {z.shape}, got shape {y.shape}")
    bad_rows = np.flatnonzero(np.any((y != 0) & (y != 1), axis=1) | (np.sum(y, axis=1) != 1))
    if bad_rows.size:
        i = bad_rows[0]
        raise ValueError(f"one-hot y_true must have exactly one 1 per row and 0 elsewhere, got row {i} "
                         f"= {y[i].tolist()} ({bad_rows.size} bad row(s)); pass integer labels of shape "
                         "(n_samples,) otherwise")
    return y.astype(z.dtype)


def softmax_cross_entropy(logits, y_true):
    """Mean categorical cross-entropy of ``softmax(logits)`` against the targets.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes), float
    y_true : ndarray of shape (n_samples,) with integer labels, or (n_samples, n_classes) one-hot

    Returns
    -------
    loss : float
        ``-mean_i log softmax(z_i)[y_i]``, computed with :func:`log_softmax`, so it stays finite
        for any finite logits (a confident wrong logit gap of 1000 costs 1000, not ``inf``).
    grad : ndarray of shape (n_samples, n_classes), dtype of ``logits``
        ``dL/dz = (softmax(z) - onehot(y)) / n_samples``: the softmax Jacobian
        ``p_i (delta_ij - p_j)`` contracted with ``-y / p`` collapses to ``p - y``.
    """
    z = check_array(logits, "logits", ndim=2, dtype_kind="f")
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"logits must hold at least one sample and one class, got shape {z.shape}")
    y = check_array(y_true, "y_true", ndim=(1, 2))
    if y.ndim == 1:
        y = check_class_labels(y, z.shape[1], "y_true")
    check_same_length(y, z, "y_true", "logits")
    n = len(z)
    logp = log_softmax(z)
    grad = np.exp(logp)  # exp(log_softmax) = softmax, without recomputing the shift
    if y.ndim == 1:
        # integer labels: the one-hot y would pick one log-probability per row and subtract 1
        # from one probability per row, so index instead of building it
        rows = np.arange(n)
        loss = -np.sum(logp[rows, y]) / n
        grad[rows, y] -= 1
    else:
        y = _check_one_hot(y, z)
        loss = -np.sum(y * logp) / n
        grad -= y
    grad /= n
    return float(loss), grad.astype(z.dtype, copy=False)
