"""Per-layer diagnostics of a network: activation statistics, inactive units, gradient norms.

These answer the questions of the initialization chapter for any
:class:`~nnlab.network.Sequential` model: does the signal keep its scale from layer to layer
(or does it vanish, explode, saturate)? How many ReLUs are dead? Do the gradients reaching the
first layers vanish or explode?

"Hidden layer ``l``" below means the ``l``-th :class:`~nnlab.layers.Activation` layer of the model;
its input is the pre-activation ``z`` and its output the activation ``a = f(z)``.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_same_length
from .activations import DERIVATIVES
from .layers import Activation, Dense


def _check_model(model):
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not any(isinstance(layer, Activation) for layer in layers):
        raise ValueError(f"model must be an nnlab Sequential with at least one Activation layer, got {model!r}")
    return layers


def forward_trace(model, X, training=False):
    """Run ``X`` through the model and keep what every hidden layer sees and produces.

    Parameters
    ----------
    model : nnlab.network.Sequential
    X : ndarray of shape (n_samples, n_inputs)
    training : bool
        Passed to every layer (``False``: inference behaviour, e.g. no dropout).

    Returns
    -------
    trace : list of (str, ndarray, ndarray)
        One ``(activation name, z, a)`` per Activation layer, in order; ``z`` and ``a`` have shape
        (n_samples, units).
    """
    layers = _check_model(model)
    out = model._check_X(X)
    trace = []
    for layer in layers:
        z = out
        out = layer.forward(out, training=training)
        if isinstance(layer, Activation):
            trace.append((layer.name, z, out))
    return trace


def activation_statistics(model, X, *, saturation=0.01):
    """Mean and spread of every hidden layer's activations on ``X``.

    Parameters
    ----------
    model : nnlab.network.Sequential
    X : ndarray of shape (n_samples, n_inputs)
    saturation : float
        An activation counts as saturated where its local derivative ``f'(z)`` is below
        ``saturation`` times the largest value ``f'`` takes (1/4 for sigmoid, 1 otherwise):
        sigmoid and tanh units pinned near their asymptotes, and ReLUs with ``z <= 0``.

    Returns
    -------
    stats : dict of ndarray, each of shape (n_hidden_layers,)
        ``layer`` (1, 2, ...), ``mean`` and ``std`` of the activations ``a`` (over samples and
        units), ``z_std`` (std of the pre-activations), ``fraction_zero`` (share of ``a == 0``),
        ``fraction_saturated`` (share with a small local derivative, see above).
    """
    if not 0 < saturation < 1:
        raise ValueError(f"saturation must be in (0, 1), got {saturation!r}")
    trace = forward_trace(model, X)
    stats = {key: [] for key in ("layer", "mean", "std", "z_std", "fraction_zero", "fraction_saturated")}
    for i, (name, z, a) in enumerate(trace, start=1):
        deriv = DERIVATIVES[name](z)
        largest = 0.25 if name == "sigmoid" else 1.0
        stats["layer"].append(i)
        stats["mean"].append(float(a.mean()))
        stats["std"].append(float(a.std()))
        stats["z_std"].append(float(z.std()))
        stats["fraction_zero"].append(float(np.mean(a == 0)))
        stats["fraction_saturated"].append(float(np.mean(deriv < saturation * largest)))
    return {key: np.asarray(value) for key, value in stats.items()}


def inactive_units(model, X):
    """Share of units in each hidden layer whose pre-activation is ``<= 0`` on every sample of ``X``.

    For ReLU these units are *dead*: they output 0 and pass back a zero gradient for all of
    ``X``, so gradient descent on ``X`` cannot revive them. Leaky ReLU and ELU units in the same
    state still pass a gradient (slope ``negative_slope`` or ``alpha exp(z)``) and can recover.

    Returns
    -------
    ndarray of shape (n_hidden_layers,), values in [0, 1]
    """
    return np.array([float(np.mean(np.all(z <= 0, axis=0))) for _, z, _ in forward_trace(model, X)])


def gradient_norms(model, X, y):
    """Per-layer gradient norms of one forward and backward pass on the batch ``(X, y)``.

    Two quantities per Dense layer ``l`` (with output ``z_l = a_{l-1} W_l + b_l``):

    - the **backpropagated error** ``delta_l = dL/dz_l``: the signal backpropagation carries
      from the loss down to layer ``l``. It shrinks towards the input when gradients vanish and
      grows when they explode;
    - the **kernel gradient** ``dL/dW_l = a_{l-1}^T delta_l``: what the optimizer uses. It is the
      product of the forward scale of ``a_{l-1}`` and the backward scale of ``delta_l``, so the two
      effects can cancel in it (the reason to look at ``delta`` as well).

    The pass uses ``training=True``, as during training, and fills every layer's ``.grads``.

    Parameters
    ----------
    model : nnlab.network.Sequential
    X : ndarray of shape (n_samples, n_inputs)
    y : ndarray of shape (n_samples,), labels as ``model.fit`` takes them

    Returns
    -------
    norms : dict with two ndarrays of shape (n_dense_layers,), first layer first
        ``"delta"``: Frobenius norm of ``dL/dz_l`` (shape (n_samples, units); the loss is a mean
        over the batch, so it carries the factor ``1/n_samples``); ``"kernel"``: Frobenius norm of
        ``dL/dW_l``.
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not any(isinstance(layer, Dense) for layer in layers):
        raise ValueError(f"model must be an nnlab Sequential with at least one Dense layer, got {model!r}")
    X, y = model._check_X(X), model._check_y(y)
    check_same_length(X, y, "X", "y")
    _, grad = model._loss_fn(model.forward(X, training=True), y)
    delta = []
    for layer in reversed(layers):              # Sequential.backward, keeping what reaches each Dense
        if isinstance(layer, Dense):
            delta.append(float(np.linalg.norm(grad)))
        grad = layer.backward(grad)
    kernel = [float(np.linalg.norm(layer.grads["kernel"])) for layer in layers if isinstance(layer, Dense)]
    return {"delta": np.array(delta[::-1]), "kernel": np.array(kernel)}
