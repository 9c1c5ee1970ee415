"""nnlab.keras_models: the dense-network and LeNet-5 factories, label checks, seeding."""
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.slow  # imports TensorFlow

from nnlab import conv  # noqa: E402
from nnlab.keras_models import build_lenet5, build_mlp, check_labels_for_loss, seed_everything  # noqa: E402


def dense_params(sizes):
    """Weights and biases of a chain of dense layers with the given sizes."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


# -- build_mlp ----------------------------------------------------------------------------------
@pytest.mark.parametrize("hidden", [[64, 32], [128, 64, 32], [7], []])
def test_build_mlp_architecture_and_parameter_count(hidden):
    model = build_mlp(hidden, activation="tanh", n_outputs=10, input_shape=(28, 28))
    assert model.count_params() == dense_params([784, *hidden, 10])
    dense = dense_layers(model)
    assert [d.units for d in dense] == [*hidden, 10]
    assert all(d.activation is keras.activations.tanh for d in dense[:-1])
    assert dense[-1].activation is keras.activations.softmax
    assert isinstance(model.layers[0], keras.layers.Flatten)
    assert model.output_shape == (None, 10)


def test_build_mlp_tabular_input_has_no_flatten_and_binary_output():
    model = build_mlp([5], input_shape=3, n_outputs=1, output_activation="sigmoid", loss="binary_crossentropy")
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in model.layers)
    assert model.count_params() == dense_params([3, 5, 1])
    assert model.loss == "binary_crossentropy"


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("Adam", "Adam"), ("RMSprop", "RMSprop")])
def test_build_mlp_optimizer_by_name_and_learning_rate(name, cls):
    model = build_mlp([4], optimizer=name, learning_rate=0.0123)
    assert type(model.optimizer).__name__ == cls
    assert np.isclose(float(model.optimizer.learning_rate), 0.0123)


def test_build_mlp_accepts_a_learning_rate_schedule():
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
    model = build_mlp([4], learning_rate=schedule)
    assert model.optimizer._learning_rate is schedule


def test_build_mlp_l2_and_dropout():
    model = build_mlp([8, 8], l2=0.01, dropout=0.25)
    dense = dense_layers(model)
    assert all(np.isclose(d.kernel_regularizer.l2, 0.01) for d in dense)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in drops] == [0.25, 0.25]
    plain = build_mlp([8, 8])
    assert all(d.kernel_regularizer is None for d in dense_layers(plain))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)


def test_l2_penalty_enters_the_loss():
    x = np.ones((4, 3), dtype="float32")
    y = np.zeros(4, dtype="int64")
    seed_everything(0)
    plain = build_mlp([5], input_shape=3, n_outputs=2)
    seed_everything(0)
    penalised = build_mlp([5], input_shape=3, n_outputs=2, l2=1.0)
    assert penalised.evaluate(x, y, verbose=0)[0] > plain.evaluate(x, y, verbose=0)[0] + 0.1


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="adagradx"), r"unknown optimizer 'adagradx'; expected one of \['adam', 'rmsprop', 'sgd'\]"),
    (dict(activation="relu6x"), r"unknown activation 'relu6x'; expected one of"),
    (dict(output_activation="tanh"), r"unknown output_activation 'tanh'; expected one of"),
    (dict(loss="hinge"), r"unknown loss 'hinge'; expected one of"),
    (dict(learning_rate=0), r"learning_rate must be in \(0, inf\), got 0"),
    (dict(learning_rate=-1e-3), r"learning_rate must be in \(0, inf\), got -0.001"),
    (dict(hidden_units=[64, 0]), r"hidden_units must hold positive integers, got 0 in \[64, 0\]"),
    (dict(hidden_units=[64, 2.5]), r"hidden_units must hold positive integers, got 2.5"),
    (dict(hidden_units=64), r"hidden_units must be a list of positive integers .* got 64"),
    (dict(n_outputs=0), r"n_outputs must be in \[1, inf\), got 0"),
    (dict(l2=-0.1), r"l2 must be in \[0, inf\), got -0.1"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(input_shape=(28, 0)), r"input_shape must be a positive integer or a tuple of positive integers, got \(28, 0\)"),
    (dict(loss="binary_crossentropy", output_activation="sigmoid"),
     r"'binary_crossentropy' needs 1 sigmoid output unit, got n_outputs=10"),
    (dict(output_activation="sigmoid"), r"loss 'sparse_categorical_crossentropy' expects probabilities from a softmax"),
    (dict(n_outputs=1), r"loss 'sparse_categorical_crossentropy' needs at least 2 output units .* got 1"),
    (dict(steps_per_execution=0), r"steps_per_execution must be in \[1, inf\), got 0"),
])
def test_build_mlp_rejects_bad_arguments(kwargs, message):
    args = dict(hidden_units=[4])
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build_mlp(args.pop("hidden_units"), **args)


# -- check_labels_for_loss ----------------------------------------------------------------------
def test_check_labels_accepts_the_right_format():
    y = np.array([0, 3, 9, 1])
    assert check_labels_for_loss(y, "sparse_categorical_crossentropy", 10) is not None
    onehot = keras.utils.to_categorical(y, 10)
    np.testing.assert_array_equal(check_labels_for_loss(onehot, "categorical_crossentropy", 10), onehot)
    check_labels_for_loss(np.array([0, 1, 1]), "binary_crossentropy", 1)
    check_labels_for_loss(np.array([[0.5], [2.0]]), "mean_squared_error", 1)


@pytest.mark.parametrize("y, loss, message", [
    (np.array([0, 3, 9]), "categorical_crossentropy",
     r"'categorical_crossentropy' expects one-hot labels of shape \(n_samples, 10\), got integer labels of shape "
     r"\(3,\); use loss='sparse_categorical_crossentropy' or keras.utils.to_categorical\(y, 10\)"),
    (np.eye(10)[[0, 3]], "sparse_categorical_crossentropy",
     r"expects integer class labels of shape \(n_samples,\), got one-hot labels of shape \(2, 10\)"),
    (np.array([0, 10]), "sparse_categorical_crossentropy", r"expects class labels in \[0, 10\), got 10"),
    (np.array([0, -1]), "sparse_categorical_crossentropy", r"expects class labels in \[0, 10\), got -1"),
    (np.array([0.0, 1.5]), "sparse_categorical_crossentropy", r"expects class labels in \[0, 10\), got 1.5"),
    (np.eye(5)[[0, 3]], "categorical_crossentropy", r"got shape \(2, 5\)"),
    (np.full((2, 10), 0.1), "categorical_crossentropy", r"expects one-hot rows"),
    (np.array([0, 2]), "binary_crossentropy", r"'binary_crossentropy' expects labels 0 or 1, got 2"),
    (np.array(["a", "b"]), "binary_crossentropy", r"labels must be numeric, got array of shape \(2,\)"),
])
def test_check_labels_rejects_the_wrong_format(y, loss, message):
    n_outputs = 1 if loss == "binary_crossentropy" else 10
    with pytest.raises(ValueError, match=message):
        check_labels_for_loss(y, loss, n_outputs)


def test_check_labels_unknown_loss():
    with pytest.raises(ValueError, match=r"unknown loss 'crossentropy'"):
        check_labels_for_loss(np.array([0, 1]), "crossentropy", 2)


# -- seeding ------------------------------------------------------------------------------------
def test_seed_everything_makes_weights_and_training_repeatable():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def run(seed):
        seed_everything(seed)
        model = build_mlp([8], input_shape=6, n_outputs=2, dropout=0.5, learning_rate=0.01)
        first = [w.copy() for w in model.get_weights()]
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)  # shuffling and dropout draw randomness
        return first, model.get_weights()

    a0, a1 = run(3)
    b0, b1 = run(3)
    c0, _ = run(4)
    assert all(np.array_equal(p, q) for p, q in zip(a0, b0))
    assert all(np.array_equal(p, q) for p, q in zip(a1, b1))
    assert not np.array_equal(a0[0], c0[0])
    assert not np.array_equal(a0[0], a1[0])  # training changed the weights


def test_seed_everything_rejects_bad_seed():
    with pytest.raises(ValueError, match=r"seed must be in \[0, inf\), got -1"):
        seed_everything(-1)
    with pytest.raises(ValueError, match=r"seed must be an integer, got 1.5"):
        seed_everything(1.5)


# -- build_lenet5 -------------------------------------------------------------------------------
def conv_params(k, c_in, filters):
    return k * k * c_in * filters + filters


def test_lenet5_shapes_and_parameters():
    model = build_lenet5()
    shapes = {layer.name: layer.output.shape[1:] for layer in model.layers}
    assert shapes == {"C1": (28, 28, 6), "S2": (14, 14, 6), "C3": (10, 10, 16), "S4": (5, 5, 16),
                      "C5": (1, 1, 120), "flatten": (120,), "F6": (84,), "output": (10,)}
    expected = conv_params(5, 1, 6) + conv_params(5, 6, 16) + conv_params(5, 16, 120) \
        + dense_params([120, 84, 10])
    assert model.count_params() == expected
    assert isinstance(model.get_layer("S2"), keras.layers.AveragePooling2D)
    assert model.loss == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("k, padding", [(3, "same"), (5, "valid"), (3, "valid"), (7, "same")])
def test_lenet5_c5_covers_the_remaining_map(k, padding):
    model = build_lenet5(kernel_size=k, first_padding=padding, pooling="max")
    side = 28
    for kk, s, p in [(k, 1, padding), (2, 2, "valid"), (k, 1, "valid"), (2, 2, "valid")]:
        side = conv.output_size(side, kk, s, p)
    assert model.get_layer("S4").output.shape[1:3] == (side, side)
    assert model.get_layer("C5").output.shape[1:] == (1, 1, 120)
    assert model.get_layer("C5").kernel.shape == (side, side, 16, 120)
    assert isinstance(model.get_layer("S2"), keras.layers.MaxPooling2D)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(8, 8, 1)), r"input_shape \(8, 8, 1\) is too small for LeNet-5 with kernel_size=5"),
    (dict(input_shape=(28, 28)), r"input_shape must be \(height, width, channels\), got \(28, 28\)"),
    (dict(kernel_size=0), r"kernel_size must be in \[1, inf\), got 0"),
    (dict(first_padding="full"), r"unknown first_padding 'full'"),
    (dict(pooling="min"), r"unknown pooling 'min'"),
    (dict(optimizer="lbfgs"), r"unknown optimizer 'lbfgs'"),
    (dict(n_classes=1), r"n_classes must be in \[2, inf\), got 1"),
])
def test_lenet5_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_lenet5(**kwargs)


def test_import_nnlab_alone_does_not_load_keras_but_keras_models_does():
    code = ("import os, sys; import nnlab; a = 'tensorflow' in sys.modules; "
            "import nnlab.keras_models; print(a, 'tensorflow' in sys.modules, os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "True", "2"]


def test_keras_models_keeps_tensorflow_python_logging_to_errors():
    import logging

    assert logging.getLogger("tensorflow").getEffectiveLevel() == logging.ERROR


def test_lenet5_flip_augmentation_is_parameter_free_and_off_at_inference():
    plain, flipped = build_lenet5(), build_lenet5(flip=True)
    assert isinstance(flipped.layers[0], keras.layers.RandomFlip)
    assert flipped.count_params() == plain.count_params()
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    flip = flipped.get_layer("flip")
    np.testing.assert_array_equal(np.asarray(flip(x, training=False)), x)
    # in training every image comes out either unchanged or mirrored left-right
    out = np.asarray(flip(np.repeat(x, 8, axis=0), training=True))
    for img, src in zip(out, np.repeat(x, 8, axis=0)):
        assert np.array_equal(img, src) or np.array_equal(img, src[:, ::-1])


def test_epoch_timer_records_one_positive_time_per_epoch():
    from nnlab.keras_models import EpochTimer

    x = np.zeros((32, 3), dtype="float32")
    y = np.zeros(32, dtype="int64")
    model = build_mlp([4], input_shape=3, n_outputs=2)
    timer = EpochTimer()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 3 and all(t > 0 for t in timer.seconds)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 2, "a new fit starts a new record"
