"""nnlab.layers.Dropout and GaussianDropout: expectation kept, masks, backward, input checks."""
import numpy as np
import pytest

from nnlab.gradcheck import check_gradients
from nnlab.layers import Activation, Dense, Dropout, GaussianDropout
from nnlab.network import Sequential


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_keeps_the_expected_activation(rate):
    x = np.random.default_rng(0).uniform(0.5, 2.0, size=(1, 40))
    layer = Dropout(rate, rng=1)
    outs = np.stack([layer.forward(x, training=True) for _ in range(20000)])
    # average over masks -> x; the std of a mean of 20000 scaled Bernoullis is x * sqrt(rate/(1-rate)/20000)
    se = x * np.sqrt(rate / (1 - rate) / len(outs))
    assert np.all(np.abs(outs.mean(axis=0) - x) < 5 * se)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_drops_the_rate_fraction_and_scales_the_rest(rate):
    x = np.random.default_rng(2).uniform(1.0, 2.0, size=(500, 200)).astype(np.float32)
    layer = Dropout(rate, rng=3)
    out = layer.forward(x, training=True)
    dropped = out == 0
    assert abs(dropped.mean() - rate) < 0.01
    np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(layer.mask, ~dropped)
    assert out.dtype == np.float32


def test_dropout_is_the_identity_at_inference():
    x = np.arange(12.0).reshape(3, 4)
    layer = Dropout(0.5, rng=0)
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    dout = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_backward_uses_the_forward_mask():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 5))
    layer = Dropout(0.4, rng=5)
    layer.forward(x, training=True)
    dout = rng.normal(size=(6, 5))
    np.testing.assert_allclose(layer.backward(dout), dout * layer.mask / 0.6)


def test_dropout_gradient_check_with_a_fixed_mask():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 4))
    mask = rng.random((5, 4)) >= 0.3
    dout = rng.normal(size=(5, 4))
    layer = Dropout(0.3, rng=0)
    layer.forward(x, training=True, mask=mask)
    dx = layer.backward(dout)
    check_gradients(lambda: float(np.sum(layer.forward(x, training=True, mask=mask) * dout)),
                    {"x": x}, {"x": dx}, tol=1e-8)


def test_dropout_masks_come_from_the_seeded_rng():
    x = np.ones((4, 10))
    a = Dropout(0.5, rng=7).forward(x, training=True)
    b = Dropout(0.5, rng=np.random.default_rng(7)).forward(x, training=True)
    c = Dropout(0.5, rng=8).forward(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    layer = Dropout(0.5, rng=7)
    assert not np.array_equal(layer.forward(x, training=True), layer.forward(x, training=True))


def test_dropout_rate_zero_is_the_identity_in_training():
    x = np.random.default_rng(9).normal(size=(3, 3))
    np.testing.assert_array_equal(Dropout(0.0, rng=0).forward(x, training=True), x)


@pytest.mark.parametrize("cls", [Dropout, GaussianDropout])
@pytest.mark.parametrize("rate", [1.5, 1.0, -0.1])
def test_rate_outside_zero_one_is_rejected(cls, rate):
    with pytest.raises(ValueError, match=rf"rate must be in \[0, 1\), got {rate}"):
        cls(rate, rng=0)


@pytest.mark.parametrize("cls", [Dropout, GaussianDropout])
def test_rng_must_be_a_generator_or_seed(cls):
    with pytest.raises(ValueError, match=r"rng must be a numpy Generator .* got 'seed'"):
        cls(0.5, rng="seed")


def test_dropout_rejects_a_mask_of_the_wrong_shape_or_dtype():
    layer = Dropout(0.5, rng=0)
    with pytest.raises(ValueError, match=r"mask must have the input's shape \(2, 3\), got shape \(3, 2\)"):
        layer.forward(np.ones((2, 3)), training=True, mask=np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"mask must be a boolean array \(True = keep the unit\), got dtype float64"):
        layer.forward(np.ones((2, 3)), training=True, mask=np.ones((2, 3)))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_gaussian_dropout_noise_has_mean_one_and_dropout_variance(rate):
    x = np.ones((400, 500))
    layer = GaussianDropout(rate, rng=10)
    out = layer.forward(x, training=True)
    assert abs(out.mean() - 1.0) < 0.005
    assert abs(out.std() - np.sqrt(rate / (1 - rate))) < 0.005
    np.testing.assert_array_equal(out, layer.noise)


def test_gaussian_dropout_keeps_the_expected_activation_and_backward_uses_the_noise():
    rng = np.random.default_rng(11)
    x = rng.uniform(0.5, 2.0, size=(1, 30))
    layer = GaussianDropout(0.3, rng=12)
    outs = np.stack([layer.forward(x, training=True) for _ in range(20000)])
    se = x * np.sqrt(0.3 / 0.7 / len(outs))
    assert np.all(np.abs(outs.mean(axis=0) - x) < 5 * se)
    dout = rng.normal(size=x.shape)
    np.testing.assert_allclose(layer.backward(dout), dout * layer.noise)


def test_gaussian_dropout_is_the_identity_at_inference_and_accepts_given_noise():
    x = np.arange(6.0).reshape(2, 3)
    layer = GaussianDropout(0.5, rng=0)
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))
    noise = np.full((2, 3), 2.0)
    np.testing.assert_array_equal(layer.forward(x, training=True, noise=noise), 2 * x)
    with pytest.raises(ValueError, match=r"noise must have the input's shape \(2, 3\), got shape \(3,\)"):
        layer.forward(x, training=True, noise=np.ones(3))


def test_network_with_dropout_trains_and_predicts_deterministically():
    rng = np.random.default_rng(13)
    X = rng.normal(size=(300, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    model = Sequential([Dense(2, 32, rng=rng), Activation("tanh"), Dropout(0.2, rng=rng),
                        Dense(32, 1, rng=rng)])
    history = model.fit(X, y, epochs=40, batch_size=16, optimizer="adam", learning_rate=0.01, rng=1,
                        progress=False)
    assert history["loss"][-1] < history["loss"][0]
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))
    assert model.evaluate(X, y)["accuracy"] > 0.9
