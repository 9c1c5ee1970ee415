"""A sequential network trained with minibatch gradient descent, fully vectorized.

The last layer produces logits; the loss turns them into probabilities itself (sigmoid for
binary cross-entropy, softmax for categorical cross-entropy), which is both numerically stable
and the reason the output gradient is simply ``p - y``.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from . import losses, optim
from ._validation import (check_array, check_binary_labels, check_choice, check_class_labels,
                          check_number, check_rng, check_same_length)
from .activations import sigmoid
from .layers import Activation, Dense, Layer

#: loss name (Keras' names) -> (function(logits, y) -> (loss, dlogits), output activation)
LOSSES = {
    "binary_crossentropy": (lambda z, y: losses.binary_cross_entropy_with_logits(y, z), "sigmoid"),
    "categorical_crossentropy": (losses.softmax_cross_entropy, "softmax"),
    "sparse_categorical_crossentropy": (losses.softmax_cross_entropy, "softmax"),
    "mean_squared_error": (lambda z, y: losses.mean_squared_error(y, z), "linear"),
}


class Sequential:
    """A stack of layers ending in logits, with a loss.

    Parameters
    ----------
    layers : list of Layer
    loss : str
        One of :data:`LOSSES`. ``"binary_crossentropy"`` expects one output unit and labels 0/1;
        ``"sparse_categorical_crossentropy"`` integer labels; ``"categorical_crossentropy"``
        integer labels or one-hot rows.
    """

    def __init__(self, layers, loss="binary_crossentropy"):
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise ValueError(f"layers must be a non-empty list of nnlab Layer objects, got {layers!r}")
        self.layers = list(layers)
        self.loss = check_choice(loss, "loss", LOSSES)
        self._loss_fn, self.output_activation = LOSSES[loss]
        self.history: dict[str, list[float]] = {}

    # -- structure ---------------------------------------------------------------------------
    @property
    def dtype(self):
        for layer in self.layers:
            for value in layer.params.values():
                return value.dtype
        return np.dtype(np.float32)

    @property
    def n_inputs(self):
        return next((layer.n_inputs for layer in self.layers if isinstance(layer, Dense)), None)

    @property
    def n_outputs(self):
        return next((layer.units for layer in reversed(self.layers) if isinstance(layer, Dense)), None)

    def count_params(self) -> int:
        """Total number of trainable scalars (Keras' ``model.count_params()``)."""
        return int(sum(v.size for layer in self.layers for v in layer.params.values()))

    def astype(self, dtype):
        """Convert every layer's parameters (float64 for gradient checks); return self."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], loss={self.loss!r})"

    # -- forward and backward ---------------------------------------------------------------
    def forward(self, X, training=False):
        """X : (n_samples, n_inputs) -> logits : (n_samples, n_outputs)."""
        out = X
        for layer in self.layers:
            out = layer.forward(out, training=training)
        return out

    def backward(self, dlogits, input_grad=True):
        """Backpropagate ``dL/dlogits`` through every layer, filling each layer's ``.grads``.

        Returns ``dL/dX``. With ``input_grad=False`` (what :meth:`fit` uses) a first ``Dense``
        layer skips that product and the result is ``None``; the parameter gradients are the same.
        """
        first = self.layers[0] if self.layers else None
        skip = not input_grad and isinstance(first, Dense) and first.input_grad
        if skip:
            first.input_grad = False
        try:
            grad = dlogits
            for layer in reversed(self.layers):
                grad = layer.backward(grad)
        finally:
            if skip:
                first.input_grad = True
        return grad

    def loss_and_gradients(self, X, y, training=True):
        """One forward and backward pass on a batch; return the loss (regularization included)."""
        logits = self.forward(X, training=training)
        loss, dlogits = self._loss_fn(logits, y)
        self.backward(dlogits)
        return loss + sum(layer.regularization_loss() for layer in self.layers)

    # -- public API with input validation ----------------------------------------------------
    def _check_X(self, X, name="X"):
        X = check_array(X, name, ndim=2)
        if self.n_inputs is not None and X.shape[1] != self.n_inputs:
            raise ValueError(f"{name} must have shape (n_samples, {self.n_inputs}) for this network, "
                             f"got shape {X.shape}")
        return X.astype(self.dtype, copy=False)

    def _check_y(self, y, name="y"):
        if self.loss == "binary_crossentropy":
            return check_binary_labels(check_array(y, name, ndim=(1, 2)), name).reshape(-1)
        if self.loss == "mean_squared_error":
            return check_array(y, name)
        y = np.asarray(y)
        if y.ndim == 2 and self.loss == "categorical_crossentropy":
            return y
        if y.ndim != 1:
            raise ValueError(f"{name} must be integer labels of shape (n_samples,) for loss "
                             f"{self.loss!r}, got shape {y.shape}")
        return check_class_labels(y, self.n_outputs, name)

    def predict_logits(self, X, batch_size=1024):
        X = self._check_X(X)
        return np.concatenate([self.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]) \
            if len(X) else np.zeros((0, self.n_outputs), self.dtype)

    def predict_proba(self, X):
        """Probabilities: shape (n_samples,) for a binary network (P[class 1]),
        (n_samples, n_classes) for a softmax network."""
        z = self.predict_logits(X)
        if self.output_activation == "sigmoid":
            return sigmoid(z).reshape(-1)
        if self.output_activation == "softmax":
            return losses.softmax(z)
        return z

    def predict(self, X):
        """Class labels (n_samples,), or the raw outputs for a regression loss."""
        p = self.predict_proba(X)
        if self.output_activation == "sigmoid":
            return (p >= 0.5).astype(np.int64)
        if self.output_activation == "softmax":
            return np.argmax(p, axis=1)
        return p

    def evaluate(self, X, y):
        """Return ``{"loss": ..., "accuracy": ...}`` on a dataset (no training behaviour)."""
        X, y = self._check_X(X), self._check_y(y)
        check_same_length(X, y, "X", "y")
        logits = self.predict_logits(X)
        loss, _ = self._loss_fn(logits, y)
        result = {"loss": loss}
        if self.output_activation != "linear":
            labels = y if y.ndim == 1 else np.argmax(y, axis=1)
            result["accuracy"] = float(np.mean(self.predict(X) == labels))
        return result

    def fit(self, X, y, *, epochs, batch_size=32, optimizer="sgd", learning_rate=None, rng,
            validation_data=None, progress=True, callbacks=()):
        """Train with minibatch gradient descent.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_inputs)
        y : ndarray of shape (n_samples,) (or one-hot rows for categorical cross-entropy)
        epochs : int
        batch_size : int
        optimizer : str or nnlab.optim.Optimizer
            ``"sgd"`` or ``"adam"`` (with ``learning_rate``), or an optimizer instance.
        learning_rate : float, optional
        rng : np.random.Generator or int
            Shuffles the training set at the start of every epoch.
        validation_data : tuple (X_val, y_val), optional
        progress : bool
            Show a tqdm progress bar over epochs.
        callbacks : sequence of callables
            Each is called as ``callback(model, epoch, logs)`` after every epoch.

        Returns
        -------
        history : dict of lists
            ``loss`` and ``accuracy`` (means over the epoch's minibatches, as Keras reports them)
            and, with validation data, ``val_loss`` and ``val_accuracy`` after each epoch.
        """
        X, y = self._check_X(X), self._check_y(y)
        check_same_length(X, y, "X", "y")
        check_number(epochs, "epochs", low=1, integer=True)
        check_number(batch_size, "batch_size", low=1, integer=True)
        if learning_rate is not None:
            check_number(learning_rate, "learning_rate", low=0, low_inclusive=False)
        rng = check_rng(rng)
        opt = optim.get(optimizer, learning_rate)
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            X_val, y_val = self._check_X(validation_data[0], "X_val"), self._check_y(validation_data[1], "y_val")
            check_same_length(X_val, y_val, "X_val", "y_val")
        trainable = [layer for layer in self.layers if layer.params]
        classify = self.output_activation != "linear"
        labels_all = (y if y.ndim == 1 else np.argmax(y, axis=1)) if classify else None
        history = {"loss": [], "accuracy": []} if classify else {"loss": []}
        if validation_data is not None:
            history.update({"val_" + k: [] for k in list(history)})
        n = len(X)
        bar = tqdm(range(epochs), disable=not progress, desc="epochs", unit="epoch")
        for epoch in bar:
            order = rng.permutation(n)
            total_loss, total_correct = 0.0, 0
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                xb, yb = X[idx], y[idx]
                logits = self.forward(xb, training=True)
                loss, dlogits = self._loss_fn(logits, yb)
                loss += sum(layer.regularization_loss() for layer in self.layers)
                self.backward(dlogits, input_grad=False)
                opt.step(trainable)
                total_loss += loss * len(idx)
                if classify:
                    pred = np.argmax(logits, axis=1) if logits.shape[1] > 1 else (logits[:, 0] >= 0)
                    total_correct += int(np.sum(pred == labels_all[idx]))
            logs = {"loss": total_loss / n}
            if classify:
                logs["accuracy"] = total_correct / n
            if validation_data is not None:
                logs.update({"val_" + k: v for k, v in self.evaluate(X_val, y_val).items()})
            for key, value in logs.items():
                history[key].append(float(value))
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            for callback in callbacks:
                callback(self, epoch, logs)
        self.history = history
        return history


class MLP(Sequential):
    """A multilayer perceptron: Dense layers with one activation between them.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_inputs, hidden_1, ..., n_outputs]``; use 1 output for binary cross-entropy.
    activation : str
        Hidden activation, a name from :data:`nnlab.activations.ACTIVATIONS`.
    loss : str
        See :class:`Sequential`.
    rng : np.random.Generator or int
        Initializes the weights.
    kernel_initializer : str or callable
    dtype : numpy dtype

    Examples
    --------
    >>> net = MLP([2, 16, 16, 1], activation="tanh", rng=0)
    >>> net.count_params()
    337
    """

    def __init__(self, layer_sizes, activation="relu", loss="binary_crossentropy", *, rng,
                 kernel_initializer="glorot_uniform", dtype=np.float32):
        sizes = list(layer_sizes)
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
            raise ValueError(f"layer_sizes must be a list of at least two positive integers "
                             f"[n_inputs, ..., n_outputs], got {layer_sizes!r}")
        check_choice(loss, "loss", LOSSES)
        if loss == "binary_crossentropy" and sizes[-1] != 1:
            raise ValueError(f"binary_crossentropy needs 1 output unit, got layer_sizes ending in {sizes[-1]}; "
                             "use sparse_categorical_crossentropy for several classes")
        if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy") and sizes[-1] < 2:
            raise ValueError(f"{loss} needs at least 2 output units, got {sizes[-1]}")
        rng = check_rng(rng)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Dense(n_in, n_out, rng=rng, kernel_initializer=kernel_initializer, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(Activation(activation))
        super().__init__(layers, loss=loss)
        self.layer_sizes, self.activation = sizes, activation
