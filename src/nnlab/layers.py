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
from . import regularizers
from ._validation import check_array, check_choice, check_number, check_rng
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
    kernel_regularizer : None, str or nnlab.regularizers.Regularizer
        Penalty on the kernel, e.g. ``L2(1e-4)``: ``penalty(kernel)`` is added to the loss.
    activity_regularizer : None, str or nnlab.regularizers.Regularizer
        Penalty on the layer's output ``z``: ``penalty(z) / n_samples`` is added to the loss
        (Keras 3 divides by the batch size too). The output of an nnlab ``Dense`` is the
        pre-activation ``z``; a Keras ``Dense(..., activation="relu")`` penalizes ``relu(z)``.

    Notes
    -----
    With ``dout = dL/dz`` of shape ``(n_samples, units)``, backward computes::

        dL/dkernel = x.T @ dout        (n_inputs, units)
        dL/dbias   = dout.sum(axis=0)  (units,)
        dL/dx      = dout @ kernel.T   (n_samples, n_inputs)

    The loss is a mean over the batch, so ``dout`` already carries the ``1/n_samples``.
    With regularizers, backward adds their gradients itself (the network adds the penalties
    to the loss through :meth:`regularization_loss`)::

        dL/dz      += activity.gradient(z) / n_samples     before the three lines above
        dL/dkernel += kernel_regularizer.gradient(kernel)

    Attributes
    ----------
    input_grad : bool
        True by default. When False, backward fills ``grads`` but skips ``dL/dx`` and returns
        ``None``. A network's first layer never needs the gradient for its input during training,
        and ``dout @ kernel.T`` is that layer's costliest product (784 x 300 in Fashion-MNIST
        networks); :meth:`nnlab.network.Sequential.fit` turns it off for its first layer.
    """

    def __init__(self, n_inputs, units, *, rng, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", dtype=np.float32, kernel_regularizer=None,
                 activity_regularizer=None):
        super().__init__()
        check_number(n_inputs, "n_inputs", low=1, integer=True)
        check_number(units, "units", low=1, integer=True)
        rng = check_rng(rng)
        self.n_inputs, self.units = int(n_inputs), int(units)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.params["kernel"] = initializers.get(kernel_initializer)((n_inputs, units), rng, dtype)
        self.params["bias"] = initializers.get(bias_initializer)((units,), rng, dtype)
        self.input_grad = True
        self._x = None
        self._z = None
        self._activity_loss = 0.0

    def forward(self, x, training=False):
        """x : (n_samples, n_inputs) -> z : (n_samples, units)."""
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"Dense layer expects input of shape (n_samples, {self.n_inputs}), "
                             f"got shape {x.shape}")
        self._x = x
        z = x @ self.params["kernel"]
        z += self.params["bias"]  # in place: no second (n_samples, units) array
        if self.activity_regularizer is not None:
            self._z = z
            self._activity_loss = self.activity_regularizer(z) / max(len(z), 1)
        return z

    def backward(self, dout):
        """dout : (n_samples, units) -> dx : (n_samples, n_inputs)."""
        if self._x is None:
            raise RuntimeError("backward() called before forward()")
        if self.activity_regularizer is not None:
            dout = dout + self.activity_regularizer.gradient(self._z) / max(len(self._z), 1)
        self.grads["kernel"] = self._x.T @ dout
        self.grads["bias"] = dout.sum(axis=0)
        if self.kernel_regularizer is not None:
            self.grads["kernel"] += self.kernel_regularizer.gradient(self.params["kernel"])
        return dout @ self.params["kernel"].T if self.input_grad else None

    def regularization_loss(self) -> float:
        """``kernel_regularizer(kernel)`` plus the activity penalty of the last forward pass."""
        loss = 0.0
        if self.kernel_regularizer is not None:
            loss += self.kernel_regularizer(self.params["kernel"])
        if self.activity_regularizer is not None:
            loss += self._activity_loss
        return loss


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


def _check_features(x, n_features, layer):
    """Return ``x`` as a 2-D array with ``n_features`` columns or raise ``ValueError``."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"{layer} expects input of shape (n_samples, {n_features}), got shape {x.shape}")
    return x


class BatchNorm(Layer):
    """Batch normalization (Ioffe & Szegedy, 2015), named and updated as
    ``keras.layers.BatchNormalization``.

    Parameters
    ----------
    n_features : int
        Number of features (columns) normalized, each on its own.
    momentum : float in [0, 1)
        Weight of the old value in the moving averages (Keras' default 0.99).
    epsilon : float > 0
        Added to the variance before the square root (Keras' default 1e-3).
    dtype : numpy dtype

    Attributes
    ----------
    params : dict with ``gamma`` (scale, init 1) and ``beta`` (shift, init 0), shape (n_features,)
    moving_mean : ndarray of shape (n_features,), init 0
    moving_variance : ndarray of shape (n_features,), init 1
        Not trained by gradient descent: updated in every training forward pass.

    Notes
    -----
    Training (``training=True``), with ``m = n_samples``::

        mu  = mean(x, axis=0)                 var = mean((x - mu)**2, axis=0)   (biased, as Keras)
        x_hat = (x - mu) / sqrt(var + epsilon)
        out = gamma * x_hat + beta
        moving_mean     = moving_mean * momentum     + mu  * (1 - momentum)
        moving_variance = moving_variance * momentum + var * (1 - momentum)

    Inference (``training=False``): the same formula with ``moving_mean`` and
    ``moving_variance`` in place of ``mu`` and ``var``, so each sample's output depends on that
    sample alone.

    Backward in training mode, the compact form (``N = n_samples``, sums over the batch)::

        dbeta  = sum(dout)          dgamma = sum(dout * x_hat)
        dx     = gamma / (N sqrt(var + epsilon)) * (N dout - dbeta - x_hat * dgamma)

    In inference mode the statistics are constants and ``dx = dout * gamma / sqrt(moving_variance + epsilon)``.
    """

    def __init__(self, n_features, *, momentum=0.99, epsilon=1e-3, dtype=np.float32):
        super().__init__()
        check_number(n_features, "n_features", low=1, integer=True)
        self.n_features = int(n_features)
        self.momentum = float(check_number(momentum, "momentum", low=0, high=1))
        self.epsilon = float(check_number(epsilon, "epsilon", low=0, low_inclusive=False))
        self.params["gamma"] = np.ones(self.n_features, dtype=dtype)
        self.params["beta"] = np.zeros(self.n_features, dtype=dtype)
        self.moving_mean = np.zeros(self.n_features, dtype=dtype)
        self.moving_variance = np.ones(self.n_features, dtype=dtype)
        self._cache = None

    def forward(self, x, training=False):
        """x : (n_samples, n_features) -> out : (n_samples, n_features)."""
        x = _check_features(x, self.n_features, "BatchNorm")
        if training:
            mean = x.mean(axis=0)
            var = x.var(axis=0)  # biased (divides by N), as Keras and the paper's training step
            self.moving_mean = (self.moving_mean * self.momentum
                                + mean * (1 - self.momentum)).astype(self.moving_mean.dtype)
            self.moving_variance = (self.moving_variance * self.momentum
                                    + var * (1 - self.momentum)).astype(self.moving_variance.dtype)
        else:
            mean, var = self.moving_mean, self.moving_variance
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        x_hat = (x - mean) * inv_std
        self._cache = (x_hat, inv_std, bool(training))
        return self.params["gamma"] * x_hat + self.params["beta"]

    def backward(self, dout):
        """dout : (n_samples, n_features) -> dx : (n_samples, n_features); sets dgamma, dbeta."""
        if self._cache is None:
            raise RuntimeError("backward() called before forward()")
        x_hat, inv_std, training = self._cache
        gamma = self.params["gamma"]
        self.grads["beta"] = dout.sum(axis=0)
        self.grads["gamma"] = (dout * x_hat).sum(axis=0)
        if not training:
            return dout * gamma * inv_std
        n = len(dout)
        return (gamma * inv_std / n) * (n * dout - self.grads["beta"] - x_hat * self.grads["gamma"])

    def astype(self, dtype):
        """Convert gamma, beta and the moving statistics in place; return self."""
        super().astype(dtype)
        self.moving_mean = self.moving_mean.astype(dtype)
        self.moving_variance = self.moving_variance.astype(dtype)
        return self

    def __repr__(self):
        return f"BatchNorm({self.n_features}, momentum={self.momentum}, epsilon={self.epsilon})"


class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014), as ``keras.layers.Dropout``.

    Parameters
    ----------
    rate : float in [0, 1)
        Fraction of the units DROPPED (set to 0) in training, as in Keras.
    rng : np.random.Generator or int
        Draws the masks.

    Notes
    -----
    Training: each unit is kept with probability ``1 - rate`` and the kept ones are scaled up::

        mask ~ Bernoulli(1 - rate)          out = x * mask / (1 - rate)
        dx   = dout * mask / (1 - rate)

    so ``E[out] = x``: the next layer sees inputs of the same expected size in training and at
    inference, where the layer is the identity (no rescaling needed at test time).
    """

    def __init__(self, rate, *, rng):
        super().__init__()
        self.rate = float(check_number(rate, "rate", low=0, high=1))
        self.rng = check_rng(rng)
        self.mask = None
        self._scale = None

    def forward(self, x, training=False, *, mask=None):
        """x : any shape -> out : same shape.

        Parameters
        ----------
        mask : ndarray of bool, shaped like ``x``, optional
            Units to KEEP (True) in training; drawn from ``rng`` when not given. Passing one
            makes the forward pass deterministic (gradient checks, parity with Keras).
        """
        x = np.asarray(x)
        if not training:
            self._scale = None
            return x
        if mask is None:
            mask = self.rng.random(x.shape) >= self.rate
        else:
            mask = np.asarray(mask)
            if mask.shape != x.shape:
                raise ValueError(f"mask must have the input's shape {x.shape}, got shape {mask.shape}")
            if mask.dtype != bool:
                raise ValueError(f"mask must be a boolean array (True = keep the unit), got dtype {mask.dtype}")
        self.mask = mask
        self._scale = (mask / (1.0 - self.rate)).astype(x.dtype if x.dtype.kind == "f" else np.float32)
        return x * self._scale

    def backward(self, dout):
        """dout -> dx = dout * mask / (1 - rate) after a training forward, dout otherwise."""
        return dout if self._scale is None else dout * self._scale

    def __repr__(self):
        return f"Dropout(rate={self.rate})"


class GaussianDropout(Layer):
    """Multiplicative Gaussian noise, as ``keras.layers.GaussianDropout``.

    Parameters
    ----------
    rate : float in [0, 1)
        Same meaning as for :class:`Dropout`: the noise has the variance of dropout's scaled
        Bernoulli mask, ``rate / (1 - rate)``.
    rng : np.random.Generator or int

    Notes
    -----
    Training::

        noise ~ Normal(mean 1, std sqrt(rate / (1 - rate)))     out = x * noise
        dx = dout * noise

    ``E[out] = x`` as for dropout; inference is the identity.
    """

    def __init__(self, rate, *, rng):
        super().__init__()
        self.rate = float(check_number(rate, "rate", low=0, high=1))
        self.rng = check_rng(rng)
        self.stddev = float(np.sqrt(self.rate / (1.0 - self.rate)))
        self.noise = None

    def forward(self, x, training=False, *, noise=None):
        """x : any shape -> out : same shape; ``noise`` (shaped like ``x``) overrides the draw."""
        x = np.asarray(x)
        if not training:
            self.noise = None
            return x
        if noise is None:
            noise = 1.0 + self.stddev * self.rng.standard_normal(x.shape)
        else:
            noise = check_array(noise, "noise", dtype_kind="f")
            if noise.shape != x.shape:
                raise ValueError(f"noise must have the input's shape {x.shape}, got shape {noise.shape}")
        self.noise = noise.astype(x.dtype if x.dtype.kind == "f" else np.float32)
        return x * self.noise

    def backward(self, dout):
        """dout -> dx = dout * noise after a training forward, dout otherwise."""
        return dout if self.noise is None else dout * self.noise

    def __repr__(self):
        return f"GaussianDropout(rate={self.rate})"
