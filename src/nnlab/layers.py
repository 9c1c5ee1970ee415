"""Layers with forward and backward side by side.

The contract every layer follows (CS231n's ``layers.py``, micrograd's ``engine.py``):

- ``forward(x, training=False) -> out`` computes the output and stores what backward needs;
- ``backward(dout) -> dx`` takes ``dL/dout`` and returns ``dL/dx``; it also fills ``.grads``;
- trainable arrays live in ``.params`` (name -> array), their gradients in ``.grads`` (same keys).

Rows are samples: ``x`` has shape ``(n_samples, n_features)``, as in Keras, so a dense kernel has
shape ``(n_inputs, units)`` and ``z = x @ kernel + bias``.
"""
from __future__ import annotations

import numpy as np

from . import init as initializers
from ._validation import check_choice, check_number, check_rng
from .activations import ACTIVATIONS, DERIVATIVES


class Layer:
    """Base class: no parameters, identity forward, identity backward."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x, training=False):
        return x

    def backward(self, dout):
        return dout

    def regularization_loss(self) -> float:
        """Penalty this layer adds to the training loss (0 unless a regularizer is set)."""
        return 0.0

    def astype(self, dtype):
        """Convert the parameters in place (e.g. to float64 for a gradient check); return self."""
        for name, value in self.params.items():
            self.params[name] = value.astype(dtype)
        return self

    def __repr__(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Dense(Layer):
    """Fully connected layer ``z = x @ kernel + bias``.

    Parameters
    ----------
    n_inputs : int
        Number of input features.
    units : int
        Number of output units.
    rng : np.random.Generator or int
        Source of randomness for the kernel initializer.
    kernel_initializer, bias_initializer : str or callable
        Names from :data:`nnlab.init.INITIALIZERS` (Keras' names) or ``init(shape, rng, dtype)``.
    dtype : numpy dtype
        float32 by default; use float64 for gradient checks.

    Notes
    -----
    With ``dout = dL/dz`` of shape ``(n_samples, units)``, backward computes::

        dL/dkernel = x.T @ dout        (n_inputs, units)
        dL/dbias   = dout.sum(axis=0)  (units,)
        dL/dx      = dout @ kernel.T   (n_samples, n_inputs)

    The loss is a mean over the batch, so ``dout`` already carries the ``1/n_samples``.
    """

    def __init__(self, n_inputs, units, *, rng, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", dtype=np.float32):
        super().__init__()
        check_number(n_inputs, "n_inputs", low=1, integer=True)
        check_number(units, "units", low=1, integer=True)
        rng = check_rng(rng)
        self.n_inputs, self.units = int(n_inputs), int(units)
        self.params["kernel"] = initializers.get(kernel_initializer)((n_inputs, units), rng, dtype)
        self.params["bias"] = initializers.get(bias_initializer)((units,), rng, dtype)
        self._x = None

    def forward(self, x, training=False):
        """x : (n_samples, n_inputs) -> z : (n_samples, units)."""
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"Dense layer expects input of shape (n_samples, {self.n_inputs}), "
                             f"got shape {x.shape}")
        self._x = x
        return x @ self.params["kernel"] + self.params["bias"]

    def backward(self, dout):
        """dout : (n_samples, units) -> dx : (n_samples, n_inputs)."""
        if self._x is None:
            raise RuntimeError("backward() called before forward()")
        self.grads["kernel"] = self._x.T @ dout
        self.grads["bias"] = dout.sum(axis=0)
        return dout @ self.params["kernel"].T


class Activation(Layer):
    """Elementwise activation ``a = f(z)`` with ``f`` from :data:`nnlab.activations.ACTIVATIONS`.

    backward: ``dL/dz = dL/da * f'(z)`` (elementwise).
    """

    def __init__(self, name):
        super().__init__()
        self.name = check_choice(name, "activation", ACTIVATIONS)
        self._f, self._df = ACTIVATIONS[name], DERIVATIVES[name]
        self._z = None

    def forward(self, x, training=False):
        self._z = x
        return self._f(x)

    def backward(self, dout):
        if self._z is None:
            raise RuntimeError("backward() called before forward()")
        return dout * self._df(self._z)

    def __repr__(self):
        return f"Activation({self.name!r})"
