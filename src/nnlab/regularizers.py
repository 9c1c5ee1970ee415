"""Weight and activity penalties, named and scaled as in ``keras.regularizers``.

A regularizer maps an array ``x`` (a kernel, or a layer's output) to a scalar penalty that is
added to the training loss, and gives the gradient of that penalty with respect to ``x``::

    L1(l1)      penalty = l1 * sum(|x|)                  gradient = l1 * sign(x)
    L2(l2)      penalty = l2 * sum(x**2)                 gradient = 2 * l2 * x
    L1L2(l1, l2) the sum of both

Keras' convention is kept exactly: no factor 1/2 in L2 and no division by the number of
samples for a weight penalty. Where a penalty is applied is the layer's business
(:class:`nnlab.layers.Dense`): ``kernel_regularizer`` penalizes the weights, and
``activity_regularizer`` penalizes the layer's output, divided by the batch size as Keras 3 does.

The L1 gradient uses ``sign(0) = 0``, the subgradient TensorFlow also returns for ``|x|`` at 0.
"""
from __future__ import annotations

import numpy as np

from ._validation import _describe, check_number


class Regularizer:
    """Base class: no penalty."""

    def __call__(self, x) -> float:
        """Penalty of ``x`` (any shape) as a Python float."""
        return 0.0

    def gradient(self, x):
        """``d penalty / dx``, an array shaped like ``x``."""
        return np.zeros_like(x)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``.

    Parameters
    ----------
    l1, l2 : float
        Non-negative factors; Keras' defaults for ``L1L2`` are 0 and 0.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = float(check_number(l1, "l1", low=0))
        self.l2 = float(check_number(l2, "l2", low=0))

    def __call__(self, x) -> float:
        x = np.asarray(x)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.sum(np.abs(x)))
        if self.l2:
            penalty += self.l2 * float(np.sum(np.square(x)))
        return penalty

    def gradient(self, x):
        """``l1 * sign(x) + 2 * l2 * x``, same shape and dtype as ``x``."""
        x = np.asarray(x)
        grad = np.zeros_like(x)
        if self.l1:
            grad += self.l1 * np.sign(x)
        if self.l2:
            grad += 2.0 * self.l2 * x
        return grad

    def __repr__(self):
        return f"{type(self).__name__}(l1={self.l1}, l2={self.l2})"


class L1(L1L2):
    """``l1 * sum(|x|)``: pushes weights to exactly zero (sparse solutions). Keras default 0.01."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1, l2=0.0)

    def __repr__(self):
        return f"L1(l1={self.l1})"


class L2(L1L2):
    """``l2 * sum(x**2)``: shrinks every weight in proportion to its size (weight decay).
    Keras default 0.01."""

    def __init__(self, l2=0.01):
        super().__init__(l1=0.0, l2=l2)

    def __repr__(self):
        return f"L2(l2={self.l2})"


#: string identifiers -> factory, with Keras' default factors (``"l1_l2"`` is 0.01 and 0.01)
REGULARIZERS = {
    "l1": L1,
    "l2": L2,
    "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),
}


def get(identifier):
    """A regularizer from ``None`` (no penalty, returns ``None``), a name in :data:`REGULARIZERS`
    or a :class:`Regularizer` instance (returned as is)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    raise ValueError(f"regularizer must be None, one of {sorted(REGULARIZERS)} or an "
                     f"nnlab.regularizers.Regularizer, got {_describe(identifier)}")
