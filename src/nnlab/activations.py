"""Activation functions and their derivatives, registered by name in paired dicts.

Each activation ``f`` maps the pre-activation ``z`` elementwise to ``a = f(z)``; its partner in
:data:`DERIVATIVES` returns ``f'(z)``, also from ``z``. Both keep the shape and dtype of ``z``.
Names and default constants follow ``keras.activations``.
"""
from __future__ import annotations

import numpy as np


def linear(z):
    """Identity, ``f(z) = z``."""
    return z


def linear_derivative(z):
    return np.ones_like(z)


def sigmoid(z):
    """Logistic function ``1 / (1 + exp(-z))``, evaluated without overflow.

    For ``z < 0`` the equivalent form ``exp(z) / (1 + exp(z))`` is used, so ``exp`` only ever
    sees non-positive arguments.
    """
    z = np.asarray(z)
    out = np.empty_like(z, dtype=np.result_type(z, np.float32))
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def sigmoid_derivative(z):
    """``sigma'(z) = sigma(z) (1 - sigma(z))``, at most 1/4 (at z = 0)."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    return np.tanh(z)


def tanh_derivative(z):
    """``tanh'(z) = 1 - tanh(z)**2``."""
    return 1.0 - np.tanh(z) ** 2


def relu(z):
    """``max(0, z)``."""
    return np.maximum(z, 0)


def relu_derivative(z):
    """1 where ``z > 0``, else 0 (the subgradient 0 is used at ``z = 0``, as Keras does)."""
    return (np.asarray(z) > 0).astype(np.result_type(z, np.float32))


def leaky_relu(z, negative_slope=0.2):
    """``z`` for positive ``z``, ``negative_slope * z`` otherwise (Keras default slope 0.2)."""
    return np.where(z > 0, z, negative_slope * z)


def leaky_relu_derivative(z, negative_slope=0.2):
    z = np.asarray(z)
    return np.where(z > 0, 1.0, negative_slope).astype(np.result_type(z, np.float32))


def elu(z, alpha=1.0):
    """``z`` for positive ``z``, ``alpha (exp(z) - 1)`` otherwise.

    ``expm1`` is evaluated on ``min(z, 0)`` so the unused branch cannot overflow.
    """
    z = np.asarray(z)
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def elu_derivative(z, alpha=1.0):
    z = np.asarray(z)
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0))).astype(np.result_type(z, np.float32))


#: name -> activation function ``f(z)``
ACTIVATIONS = {
    "linear": linear,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
}

#: name -> derivative ``f'(z)``, with the same keys as :data:`ACTIVATIONS`
DERIVATIVES = {
    "linear": linear_derivative,
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
    "leaky_relu": leaky_relu_derivative,
    "elu": elu_derivative,
}
