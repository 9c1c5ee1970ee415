"""Keras model factories of the course: a dense network (:func:`build_mlp`) and LeNet-5
(:func:`build_lenet5`), with the checks that catch the classic set-up mistakes early.

Importing this module imports TensorFlow and Keras (a few seconds); ``import nnlab`` does not.
``TF_CPP_MIN_LOG_LEVEL`` is set to 2 first (unless already set) so TensorFlow's C++ start-up
messages stay quiet, and the ``tensorflow`` Python logger is set to show errors only. Keras 3 APIs only: optimizers take ``learning_rate=``, class predictions are
``np.argmax(model.predict(X), axis=1)``.

Examples
--------
>>> from nnlab.keras_models import build_mlp, seed_everything
>>> seed_everything(0)
>>> model = build_mlp([64, 32], optimizer="sgd", learning_rate=0.01)
>>> model.count_params()   # (784*64 + 64) + (64*32 + 32) + (32*10 + 10)
52650
"""
from __future__ import annotations

import numbers
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import logging  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

# TensorFlow's Python-side notices (e.g. "N out of the last M calls ... triggered tf.function
# retracing" when a notebook builds many small models) go to stdout in Jupyter; keep errors only.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from ._validation import _describe, check_choice, check_number  # noqa: E402
from .conv import output_size  # noqa: E402

#: optimizer name -> Keras 3 class (the lab's ``optimizers.legacy`` no longer exists)
OPTIMIZERS = {
    "sgd": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
}
#: activations accepted for hidden layers (Keras names)
HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "leaky_relu", "linear")
#: activations accepted for the output layer
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "linear")
#: loss name -> the label format it expects
LOSSES = {
    "sparse_categorical_crossentropy": "integer class labels of shape (n_samples,)",
    "categorical_crossentropy": "one-hot rows of shape (n_samples, n_outputs)",
    "binary_crossentropy": "labels 0 or 1 of shape (n_samples,) or (n_samples, 1)",
    "mean_squared_error": "real targets of shape (n_samples,) or (n_samples, n_outputs)",
}


def seed_everything(seed):
    """Make Keras runs repeatable: seed Python, NumPy and TensorFlow, and ask TensorFlow for
    deterministic kernels.

    ``keras.utils.set_random_seed`` seeds the three generators that weight initialisation,
    shuffling and dropout draw from; ``enable_op_determinism`` makes TensorFlow pick
    deterministic implementations of ops whose parallel reductions could otherwise sum in a
    different order from run to run. Call it before building each model that must be
    reproducible.

    Parameters
    ----------
    seed : int
        Non-negative integer.
    """
    check_number(seed, "seed", low=0, integer=True)
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every training epoch, for ``model.fit(..., callbacks=[timer])``.

    The first epoch also pays for tracing the training graph, so use ``timer.seconds[1:]`` to
    estimate the steady cost of an epoch.

    Attributes
    ----------
    seconds : list of float
        One entry per epoch of the last ``fit`` call.
    """

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _check_units(hidden_units):
    try:
        units = list(hidden_units)
    except TypeError:
        raise ValueError(f"hidden_units must be a list of positive integers (one per hidden layer), "
                         f"got {_describe(hidden_units)}") from None
    for u in units:
        if isinstance(u, bool) or not isinstance(u, numbers.Integral) or u < 1:
            raise ValueError(f"hidden_units must hold positive integers, got {u!r} in {hidden_units!r}")
    return [int(u) for u in units]


def _check_input_shape(input_shape):
    shape = (input_shape,) if isinstance(input_shape, numbers.Integral) else tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape):
        raise ValueError(f"input_shape must be a positive integer or a tuple of positive integers, "
                         f"got {input_shape!r}")
    return tuple(int(s) for s in shape)


def _check_loss_and_output(loss, output_activation, n_outputs):
    check_choice(loss, "loss", LOSSES)
    check_choice(output_activation, "output_activation", OUTPUT_ACTIVATIONS)
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        if output_activation != "softmax":
            raise ValueError(f"loss {loss!r} expects probabilities from a softmax output layer, "
                             f"got output_activation={output_activation!r}")
        if n_outputs < 2:
            raise ValueError(f"loss {loss!r} needs at least 2 output units (one per class), got {n_outputs}")
    if loss == "binary_crossentropy":
        if output_activation != "sigmoid" or n_outputs != 1:
            raise ValueError("loss 'binary_crossentropy' needs 1 sigmoid output unit, got "
                             f"n_outputs={n_outputs} and output_activation={output_activation!r}; "
                             "use sparse_categorical_crossentropy with softmax for several classes")


def _make_optimizer(optimizer, learning_rate):
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        check_number(learning_rate, "learning_rate", low=0, low_inclusive=False)
        learning_rate = float(learning_rate)
    return OPTIMIZERS[optimizer](learning_rate=learning_rate)


def build_mlp(hidden_units, *, activation="relu", output_activation="softmax", optimizer="adam",
              loss="sparse_categorical_crossentropy", learning_rate=1e-3, l2=0.0, dropout=0.0,
              n_outputs=10, input_shape=(28, 28), steps_per_execution=1, name=None):
    """A compiled dense network: Flatten, then ``Dense(u, activation)`` per hidden layer, then
    ``Dense(n_outputs, output_activation)``.

    The course's version of the lab's ``pipeline()`` factory, with Keras 3 APIs and its
    arguments checked before anything is built.

    Parameters
    ----------
    hidden_units : sequence of int
        Width of each hidden layer, e.g. ``[64, 32]``; empty for a linear/softmax model.
    activation : str
        Hidden activation, one of :data:`HIDDEN_ACTIVATIONS`.
    output_activation : str
        ``"softmax"`` (multi-class), ``"sigmoid"`` (binary, 1 unit) or ``"linear"`` (regression).
    optimizer : str
        ``"sgd"``, ``"adam"`` or ``"rmsprop"`` (case-insensitive).
    loss : str
        One of :data:`LOSSES`; it must fit the output layer (softmax for the cross-entropies over
        classes, one sigmoid unit for binary cross-entropy).
    learning_rate : float or keras.optimizers.schedules.LearningRateSchedule
        Positive step size, or a schedule such as ``keras.optimizers.schedules.CosineDecay``.
    l2 : float
        L2 penalty factor on every kernel (``keras.regularizers.L2``), ``>= 0``.
    dropout : float
        Fraction of hidden units dropped after each hidden layer during training, in [0, 1).
    n_outputs : int
        Number of output units (10 for Fashion-MNIST's classes).
    input_shape : int or tuple of int
        Shape of one sample, without the batch axis: ``(28, 28)`` for images, ``n_features`` for
        tabular data.
    steps_per_execution : int
        Batches processed per call into TensorFlow. Same updates, less Python overhead per batch:
        worth 10-50 for small networks on a CPU.
    name : str, optional
        Model name.

    Returns
    -------
    keras.Sequential
        Compiled with ``metrics=["accuracy"]`` for classification losses.

    Raises
    ------
    ValueError
        For an unknown name, a non-positive size or learning rate, or a loss that does not fit
        the output layer; the message quotes the value and says what was expected.
    """
    units = _check_units(hidden_units)
    check_choice(activation, "activation", HIDDEN_ACTIVATIONS)
    check_number(n_outputs, "n_outputs", low=1, integer=True)
    _check_loss_and_output(loss, output_activation, n_outputs)
    shape = _check_input_shape(input_shape)
    check_number(l2, "l2", low=0)
    check_number(dropout, "dropout", low=0, high=1)
    check_number(steps_per_execution, "steps_per_execution", low=1, integer=True)
    opt = _make_optimizer(str(optimizer).lower(), learning_rate)

    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    layers = [keras.Input(shape=shape)]
    if len(shape) > 1:
        layers.append(keras.layers.Flatten())
    for u in units:
        layers.append(keras.layers.Dense(u, activation=activation, kernel_regularizer=regularizer))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(n_outputs, activation=output_activation, kernel_regularizer=regularizer))
    model = keras.Sequential(layers, name=name)
    metrics = ["accuracy"] if loss != "mean_squared_error" else []
    model.compile(optimizer=opt, loss=loss, metrics=metrics, steps_per_execution=int(steps_per_execution))
    return model


def check_labels_for_loss(y, loss, n_outputs):
    """Check that labels have the format ``loss`` expects, before ``fit`` gets them.

    Keras' own messages for a mismatch are shape errors deep inside the graph (or, worse, no
    error: a one-hot loss broadcast against the wrong array). Typical mistake: integer labels
    with ``categorical_crossentropy``, which wants one-hot rows.

    Parameters
    ----------
    y : array_like of shape (n_samples,) or (n_samples, n_outputs)
    loss : str
        One of :data:`LOSSES`.
    n_outputs : int
        Number of output units of the model (number of classes).

    Returns
    -------
    y : ndarray, unchanged.

    Raises
    ------
    ValueError
        If the labels do not have the format the loss expects.
    """
    check_choice(loss, "loss", LOSSES)
    check_number(n_outputs, "n_outputs", low=1, integer=True)
    y = np.asarray(y)
    if y.dtype.kind not in "iufb":
        raise ValueError(f"labels must be numeric, got {_describe(y)}")
    if loss == "sparse_categorical_crossentropy":
        if y.ndim == 2 and y.shape[1] == n_outputs and y.shape[1] > 1:
            raise ValueError(f"loss 'sparse_categorical_crossentropy' expects integer class labels of shape "
                             f"(n_samples,), got one-hot labels of shape {y.shape}; use "
                             "loss='categorical_crossentropy' or np.argmax(y, axis=1)")
        if y.ndim != 1:
            raise ValueError(f"loss 'sparse_categorical_crossentropy' expects integer class labels of shape "
                             f"(n_samples,), got shape {y.shape}")
        if np.any(y != np.round(y)) or np.any(y < 0) or np.any(y >= n_outputs):
            bad = y[(y != np.round(y)) | (y < 0) | (y >= n_outputs)][0]
            raise ValueError(f"loss 'sparse_categorical_crossentropy' expects class labels in "
                             f"[0, {n_outputs}), got {bad.item()!r}")
    elif loss == "categorical_crossentropy":
        if y.ndim == 1:
            raise ValueError(f"loss 'categorical_crossentropy' expects one-hot labels of shape (n_samples, "
                             f"{n_outputs}), got integer labels of shape {y.shape}; use "
                             f"loss='sparse_categorical_crossentropy' or keras.utils.to_categorical(y, {n_outputs})")
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"loss 'categorical_crossentropy' expects one-hot labels of shape (n_samples, "
                             f"{n_outputs}), got shape {y.shape}")
        if np.any((y != 0) & (y != 1)) or np.any(y.sum(axis=1) != 1):
            raise ValueError("loss 'categorical_crossentropy' expects one-hot rows (a single 1, zeros "
                             "elsewhere)")
    elif loss == "binary_crossentropy":
        if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
            raise ValueError(f"loss 'binary_crossentropy' expects labels of shape (n_samples,) or "
                             f"(n_samples, 1), got shape {y.shape}")
        if np.any((y != 0) & (y != 1)):
            raise ValueError(f"loss 'binary_crossentropy' expects labels 0 or 1, got {y[(y != 0) & (y != 1)][0].item()!r}")
    return y


def build_lenet5(*, kernel_size=5, first_padding="same", pooling="average", activation="relu",
                 input_shape=(28, 28, 1), n_classes=10, optimizer="adam", learning_rate=1e-3, l2=0.0,
                 flip=False, steps_per_execution=1, name="lenet5"):
    """LeNet-5 (LeCun et al., 1998) in Keras, compiled for integer labels.

    Layers, with the default arguments on 28x28x1 images (output shapes without the batch axis)::

        C1  Conv2D(6, 5, padding="same")     28x28x6      156 parameters
        S2  AveragePooling2D(2)              14x14x6
        C3  Conv2D(16, 5)                    10x10x16    2416
        S4  AveragePooling2D(2)               5x5x16
        C5  Conv2D(120, 5)                    1x1x120   48120
            Flatten                               120
        F6  Dense(84)                              84   10164
            Dense(n_classes, softmax)              10     850     total 61706

    C5's kernel covers the whole map it receives (5x5 here), so its output is 1x1, as in the
    original; with other ``kernel_size`` / ``first_padding`` it is sized to do the same.

    Parameters
    ----------
    kernel_size : int
        Side of the C1 and C3 kernels (odd or even, >= 1).
    first_padding : {"same", "valid"}
        Padding of C1. The original pads the 28x28 digits to 32x32, which ``"same"`` matches.
    pooling : {"average", "max"}
        Subsampling layers S2 and S4 (2x2, stride 2).
    activation : str
        Activation of C1, C3, C5 and F6, one of :data:`HIDDEN_ACTIVATIONS` (the original used a
        scaled tanh; ReLU trains faster).
    input_shape : tuple (height, width, channels)
    n_classes : int
    optimizer, learning_rate, l2, steps_per_execution
        As in :func:`build_mlp`.
    flip : bool
        Start with a ``RandomFlip("horizontal")`` layer: during training each image is mirrored
        left-right with probability 1/2 (data augmentation; no parameters, inactive at inference).

    Returns
    -------
    keras.Sequential
        Compiled with ``sparse_categorical_crossentropy`` and ``metrics=["accuracy"]``.

    Raises
    ------
    ValueError
        For a bad argument, or an input too small for the layers asked for.
    """
    check_number(kernel_size, "kernel_size", low=1, integer=True)
    check_choice(first_padding, "first_padding", ("same", "valid"))
    check_choice(pooling, "pooling", ("average", "max"))
    check_choice(activation, "activation", HIDDEN_ACTIVATIONS)
    check_number(n_classes, "n_classes", low=2, integer=True)
    check_number(l2, "l2", low=0)
    check_number(steps_per_execution, "steps_per_execution", low=1, integer=True)
    shape = _check_input_shape(input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    opt = _make_optimizer(str(optimizer).lower(), learning_rate)

    # Spatial size after C1, S2, C3, S4; C5's kernel covers all of it.
    try:
        h, w = (output_size(output_size(output_size(output_size(n, kernel_size, padding=first_padding), 2, stride=2),
                                        kernel_size), 2, stride=2) for n in shape[:2])
    except ValueError:
        raise ValueError(f"input_shape {shape} is too small for LeNet-5 with kernel_size={kernel_size} and "
                         f"first_padding={first_padding!r}: the maps vanish before C5") from None
    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    pool = keras.layers.AveragePooling2D if pooling == "average" else keras.layers.MaxPooling2D
    augment = [keras.layers.RandomFlip("horizontal", name="flip")] if flip else []
    model = keras.Sequential([
        keras.Input(shape=shape),
        *augment,
        keras.layers.Conv2D(6, kernel_size, padding=first_padding, activation=activation, name="C1"),
        pool(2, name="S2"),
        keras.layers.Conv2D(16, kernel_size, activation=activation, name="C3"),
        pool(2, name="S4"),
        keras.layers.Conv2D(120, (h, w), activation=activation, name="C5"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(84, activation=activation, kernel_regularizer=reg, name="F6"),
        keras.layers.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="output"),
    ], name=name)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=int(steps_per_execution))
    return model
