"""nnlab.layers.BatchNorm: behaviour in both modes, moving statistics, gradients, input checks."""
import numpy as np
import pytest

from nnlab.gradcheck import check_gradients, check_layer, check_network
from nnlab.layers import Activation, BatchNorm, Dense
from nnlab.network import Sequential


def _batch(rng, n=64, d=5, dtype=np.float64):
    """Features with very different means and scales, so normalization has work to do."""
    return (rng.normal(3.0, 1.0, size=(n, d)) * np.arange(1, d + 1) + 10 * np.arange(d)).astype(dtype)


def test_training_output_is_standardized_per_feature():
    x = _batch(np.random.default_rng(0))
    out = BatchNorm(5).astype(np.float64).forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-10)
    # std is sqrt(var / (var + epsilon)), just below 1 for variances of order 1 or more
    var = x.var(axis=0)
    np.testing.assert_allclose(out.std(axis=0), np.sqrt(var / (var + 1e-3)), rtol=1e-10)
    assert np.all(out.std(axis=0) > 0.99)


def test_gamma_and_beta_set_scale_and_shift():
    x = _batch(np.random.default_rng(1))
    bn = BatchNorm(5, epsilon=1e-12).astype(np.float64)
    bn.params["gamma"][:] = [1.0, 2.0, 0.5, 3.0, 1.5]
    bn.params["beta"][:] = [-1.0, 0.0, 4.0, 2.0, 0.5]
    out = bn.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=0), bn.params["beta"], atol=1e-9)
    np.testing.assert_allclose(out.std(axis=0), bn.params["gamma"], rtol=1e-9)


def test_moving_statistics_follow_keras_update_rule_with_biased_variance():
    rng = np.random.default_rng(2)
    bn = BatchNorm(5, momentum=0.9).astype(np.float64)
    mean_ref, var_ref = np.zeros(5), np.ones(5)
    for _ in range(3):
        x = _batch(rng, n=8)
        bn.forward(x, training=True)
        mean_ref = 0.9 * mean_ref + 0.1 * x.mean(axis=0)
        var_ref = 0.9 * var_ref + 0.1 * x.var(axis=0, ddof=0)
    np.testing.assert_allclose(bn.moving_mean, mean_ref, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance, var_ref, rtol=1e-12)


def test_keras_defaults_and_initial_state():
    bn = BatchNorm(4)
    assert bn.momentum == 0.99 and bn.epsilon == 1e-3
    np.testing.assert_array_equal(bn.moving_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.moving_variance, np.ones(4))
    np.testing.assert_array_equal(bn.params["gamma"], np.ones(4))
    np.testing.assert_array_equal(bn.params["beta"], np.zeros(4))
    assert bn.params["gamma"].dtype == np.float32
    out = bn.forward(np.ones((3, 4), dtype=np.float32), training=True)
    assert out.dtype == np.float32 and bn.moving_mean.dtype == np.float32


def test_inference_uses_moving_statistics_and_leaves_them_alone():
    rng = np.random.default_rng(3)
    bn = BatchNorm(5).astype(np.float64)
    bn.moving_mean = rng.normal(size=5)
    bn.moving_variance = rng.uniform(0.5, 2.0, size=5)
    bn.params["gamma"] = rng.normal(size=5)
    bn.params["beta"] = rng.normal(size=5)
    before = bn.moving_mean.copy(), bn.moving_variance.copy()
    x = _batch(rng)
    out = bn.forward(x, training=False)
    expected = (x - before[0]) / np.sqrt(before[1] + 1e-3) * bn.params["gamma"] + bn.params["beta"]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.moving_mean, before[0])
    np.testing.assert_array_equal(bn.moving_variance, before[1])
    # each sample's output depends on that sample only
    np.testing.assert_allclose(bn.forward(x[:1], training=False), out[:1], rtol=1e-12)


def test_batch_of_one_in_training_mode_outputs_beta_whatever_the_input():
    """The train/inference pitfall: batch statistics of a single sample erase it."""
    bn = BatchNorm(3).astype(np.float64)
    bn.params["beta"][:] = [0.5, -1.0, 2.0]
    for x in (np.array([[1.0, 2.0, 3.0]]), np.array([[-40.0, 0.0, 7.0]])):
        np.testing.assert_allclose(bn.forward(x, training=True), [[0.5, -1.0, 2.0]])
    assert not np.allclose(bn.forward(np.array([[1.0, 2.0, 3.0]]), training=False), [[0.5, -1.0, 2.0]])


def test_gradient_check_training_mode():
    rng = np.random.default_rng(4)
    bn = BatchNorm(6)
    bn.params["gamma"] = rng.normal(1.0, 0.5, size=6).astype(np.float32)
    bn.params["beta"] = rng.normal(size=6).astype(np.float32)
    errors = check_layer(bn, _batch(rng, n=10, d=6), rng=5, tol=1e-6)
    assert set(errors) == {"gamma", "beta", "x"}


def test_gradient_check_inference_mode():
    rng = np.random.default_rng(6)
    bn = BatchNorm(4).astype(np.float64)
    bn.moving_mean = rng.normal(size=4)
    bn.moving_variance = rng.uniform(0.5, 2.0, size=4)
    bn.params["gamma"] = rng.normal(size=4)
    x = rng.normal(size=(7, 4))
    dout = rng.normal(size=(7, 4))
    bn.forward(x, training=False)
    dx = bn.backward(dout)

    def f():
        return float(np.sum(bn.forward(x, training=False) * dout))

    grads = dict(bn.grads, x=dx)
    check_gradients(f, dict(bn.params, x=x), grads, tol=1e-7)


def test_backward_differs_from_naive_chain_rule_that_ignores_batch_statistics():
    """Treating mean and variance as constants in training mode is a classic bug: the compact
    form must differ from it (and the gradient check above shows which one is right)."""
    rng = np.random.default_rng(7)
    bn = BatchNorm(3).astype(np.float64)
    x = rng.normal(size=(6, 3))
    dout = rng.normal(size=(6, 3))
    bn.forward(x, training=True)
    dx = bn.backward(dout)
    naive = dout / np.sqrt(x.var(axis=0) + 1e-3)
    assert not np.allclose(dx, naive, atol=1e-3)
    # the batch-mean term makes dx sum to zero over the batch, feature by feature
    np.testing.assert_allclose(dx.sum(axis=0), 0.0, atol=1e-12)


def test_gradient_check_in_a_network():
    rng = np.random.default_rng(8)
    model = Sequential([Dense(3, 4, rng=rng), Activation("tanh"), BatchNorm(4), Dense(4, 1, rng=rng)],
                       loss="binary_crossentropy")
    X = rng.normal(size=(12, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    errors = check_network(model, X, y, tol=1e-6)
    assert "layer2.gamma" in errors and "layer2.beta" in errors


def test_bias_of_a_dense_layer_before_batchnorm_gets_no_gradient():
    """BN subtracts the batch mean, so a constant added before it changes nothing: the bias of
    the Dense layer feeding it is redundant (Keras models use ``use_bias=False`` there)."""
    rng = np.random.default_rng(10)
    model = Sequential([Dense(3, 4, rng=rng), BatchNorm(4), Activation("sigmoid"), Dense(4, 1, rng=rng)])
    model.astype(np.float64)
    X = rng.normal(size=(12, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    model.loss_and_gradients(X, y)
    np.testing.assert_allclose(model.layers[0].grads["bias"], 0.0, atol=1e-15)
    assert np.max(np.abs(model.layers[0].grads["kernel"])) > 1e-4


def test_network_with_batchnorm_trains_and_predicts_per_sample():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(400, 2)).astype(np.float32) * [10, 0.1] + [50, -3]
    y = (X[:, 0] - 50 > 0).astype(np.int64)
    # momentum 0.9: the moving statistics must have caught up after 5 epochs of 13 steps
    model = Sequential([Dense(2, 8, rng=rng), BatchNorm(8, momentum=0.9), Activation("tanh"),
                        Dense(8, 1, rng=rng)])
    history = model.fit(X, y, epochs=5, batch_size=32, optimizer="sgd", learning_rate=0.1, rng=1,
                        progress=False)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert model.evaluate(X, y)["accuracy"] > 0.9
    # inference: predicting one sample at a time gives the batch prediction
    one_by_one = np.concatenate([model.predict_proba(X[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(one_by_one, model.predict_proba(X[:5]), rtol=1e-5)


def test_astype_converts_moving_statistics():
    bn = BatchNorm(2).astype(np.float64)
    assert bn.moving_mean.dtype == np.float64 and bn.moving_variance.dtype == np.float64
    assert bn.params["gamma"].dtype == np.float64


@pytest.mark.parametrize("kwargs, match", [
    ({"n_features": 0}, r"n_features must be in \[1, inf\), got 0"),
    ({"n_features": 2.5}, r"n_features must be an integer, got 2\.5"),
    ({"n_features": 3, "momentum": 1.0}, r"momentum must be in \[0, 1\), got 1\.0"),
    ({"n_features": 3, "momentum": -0.1}, r"momentum must be in \[0, 1\), got -0\.1"),
    ({"n_features": 3, "epsilon": 0.0}, r"epsilon must be in \(0, inf\), got 0\.0"),
])
def test_constructor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNorm(**kwargs)


@pytest.mark.parametrize("shape", [(4, 3), (4,), (2, 5, 1)])
def test_forward_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match=r"BatchNorm expects input of shape \(n_samples, 5\), got shape "
                                         + re_shape(shape)):
        BatchNorm(5).forward(np.zeros(shape), training=True)


def re_shape(shape):
    return "\\" + str(tuple(shape)).replace(")", "\\)")


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="backward"):
        BatchNorm(2).backward(np.zeros((3, 2)))
