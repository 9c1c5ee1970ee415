"""Optimizers: update rules applied in place to the layers' ``.params`` using their ``.grads``.

Names and defaults follow ``keras.optimizers`` so that the NumPy and Keras chapters line up.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_choice, check_number


class Optimizer:
    """Base class. ``step(layers)`` updates every parameter of every layer once."""

    def __init__(self, learning_rate):
        self.learning_rate = check_number(learning_rate, "learning_rate", low=0, low_inclusive=False)
        self.iterations = 0
        self._state: dict[tuple[int, str], dict[str, np.ndarray]] = {}

    def step(self, layers):
        self.iterations += 1
        for layer in layers:
            for name, param in layer.params.items():
                grad = layer.grads.get(name)
                if grad is None:
                    raise RuntimeError(f"{layer!r} has no gradient for {name!r}: call backward() before step()")
                state = self._state.setdefault((id(layer), name), {})
                self._update(param, grad, state)

    def _update(self, param, grad, state):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov-free) momentum.

    Update rule, as in Keras::

        velocity = momentum * velocity - learning_rate * grad
        param    = param + velocity          (momentum = 0: param -= learning_rate * grad)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0):
        super().__init__(learning_rate)
        self.momentum = check_number(momentum, "momentum", low=0, high=1)

    def _update(self, param, grad, state):
        if self.momentum == 0:
            param -= self.learning_rate * grad
            return
        v = state.setdefault("velocity", np.zeros_like(param))
        v *= self.momentum
        v -= self.learning_rate * grad
        param += v


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with Keras' defaults.

    Update rule at step ``t``::

        m = beta_1 m + (1 - beta_1) g            v = beta_2 v + (1 - beta_2) g**2
        lr_t = learning_rate sqrt(1 - beta_2**t) / (1 - beta_1**t)
        param -= lr_t m / (sqrt(v) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1 = check_number(beta_1, "beta_1", low=0, high=1)
        self.beta_2 = check_number(beta_2, "beta_2", low=0, high=1)
        self.epsilon = check_number(epsilon, "epsilon", low=0, low_inclusive=False)

    def _update(self, param, grad, state):
        m = state.setdefault("m", np.zeros_like(param))
        v = state.setdefault("v", np.zeros_like(param))
        t = self.iterations
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        v *= self.beta_2
        v += (1 - self.beta_2) * grad * grad
        lr_t = self.learning_rate * np.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        param -= (lr_t * m / (np.sqrt(v) + self.epsilon)).astype(param.dtype, copy=False)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get(optimizer, learning_rate=None):
    """An optimizer instance from a name (``"sgd"``, ``"adam"``) or an instance (returned as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    cls = OPTIMIZERS[check_choice(optimizer, "optimizer", OPTIMIZERS)]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)
