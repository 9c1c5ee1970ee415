"""Optimizers: update rules applied in place to the layers' ``.params`` using their ``.grads``.

Names and defaults follow ``keras.optimizers`` so that the NumPy and Keras chapters line up.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_choice, check_number


def global_norm(grads) -> float:
    """Norm of all arrays in ``grads`` taken together: ``sqrt(sum_i ||g_i||**2)``."""
    return float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))


class Optimizer:
    """Base class. ``step(layers)`` updates every parameter of every layer once.

    Gradient clipping, with Keras' argument names (at most one of the three may be set). The
    gradients are clipped before the update rule sees them; ``layer.grads`` is left as it is.

    - ``clipnorm``: each parameter's gradient ``g`` is rescaled to norm at most ``clipnorm``:
      ``g * clipnorm / max(||g||, clipnorm)``;
    - ``global_clipnorm``: all gradients together are rescaled so that the norm of their
      concatenation is at most ``global_clipnorm`` (their directions relative to each other are kept);
    - ``clipvalue``: every element is clipped to ``[-clipvalue, clipvalue]`` (this can change the
      gradient's direction).

    Attributes
    ----------
    iterations : int
        Number of ``step`` calls so far.
    last_global_norm : float or None
        Norm of all gradients of the last step, before clipping (for monitoring).
    """

    def __init__(self, learning_rate, *, clipnorm=None, clipvalue=None, global_clipnorm=None):
        self.learning_rate = check_number(learning_rate, "learning_rate", low=0, low_inclusive=False)
        given = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(given) > 1:
            raise ValueError("only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                             + ", ".join(f"{k}={v!r}" for k, v in given.items()))
        for key, value in given.items():
            check_number(value, key, low=0, low_inclusive=False)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self._last_grads = None
        self._state: dict[tuple[int, str], dict[str, np.ndarray]] = {}

    def clip_gradients(self, grads):
        """Apply the configured clipping to a list of gradient arrays.

        Returns a new list (the arrays of ``grads`` are not modified); without clipping, ``grads``.
        """
        if self.clipnorm is not None:
            return [g * (self.clipnorm / max(float(np.linalg.norm(g)), self.clipnorm)) for g in grads]
        if self.global_clipnorm is not None:
            norm = global_norm(grads)
            factor = self.global_clipnorm / max(norm, self.global_clipnorm)
            return [g * factor for g in grads]
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    @property
    def last_global_norm(self):
        """Norm of all gradients of the last step before clipping, or None before the first step.

        Computed when asked for, not at every step: most training loops never look at it.
        """
        return None if self._last_grads is None else global_norm(self._last_grads)

    def step(self, layers):
        """Update every parameter of ``layers`` in place from its gradient in ``layer.grads``."""
        self.iterations += 1
        items = []
        for layer in layers:
            for name, param in layer.params.items():
                grad = layer.grads.get(name)
                if grad is None:
                    raise RuntimeError(f"{layer!r} has no gradient for {name!r}: call backward() before step()")
                items.append(((id(layer), name), param, grad))
        grads = [grad for _, _, grad in items]
        self._last_grads = grads
        grads = self.clip_gradients(grads)
        for (key, param, _), grad in zip(items, grads):
            self._update(param, grad.astype(param.dtype, copy=False), self._state.setdefault(key, {}))

    def _update(self, param, grad, state):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov-free) momentum.

    ``clipnorm``, ``clipvalue`` or ``global_clipnorm`` clip the gradients first (see
    :class:`Optimizer`). Update rule, as in Keras::

        velocity = momentum * velocity - learning_rate * grad
        param    = param + velocity          (momentum = 0: param -= learning_rate * grad)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, **clipping):
        super().__init__(learning_rate, **clipping)
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

    ``clipnorm``, ``clipvalue`` or ``global_clipnorm`` clip the gradients first (see
    :class:`Optimizer`). Update rule at step ``t``::

        m = beta_1 m + (1 - beta_1) g            v = beta_2 v + (1 - beta_2) g**2
        lr_t = learning_rate sqrt(1 - beta_2**t) / (1 - beta_1**t)
        param -= lr_t m / (sqrt(v) + epsilon)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **clipping):
        super().__init__(learning_rate, **clipping)
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
