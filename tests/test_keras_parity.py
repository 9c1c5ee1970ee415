"""NumPy layers agree with their Keras twins on the same weights, statistics, masks and noise.

Tolerances: float64 to round-off (rtol 1e-10, atol 1e-12); float32 to rtol 1e-4, atol 1e-5 —
float32 carries about 7 significant digits and Keras (TensorFlow, oneDNN) sums in another order.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.slow  # imports TensorFlow
tf = pytest.importorskip("tensorflow")

from nnlab import regularizers  # noqa: E402
from nnlab.layers import BatchNorm, Dense, Dropout, GaussianDropout  # noqa: E402

TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}


def _bn_pair(dtype, rng, n_features=6, momentum=0.99, epsilon=1e-3):
    """An nnlab BatchNorm and a Keras BatchNormalization with the same gamma, beta and moving statistics."""
    gamma = rng.normal(1.0, 0.3, n_features).astype(dtype)
    beta = rng.normal(0.0, 1.0, n_features).astype(dtype)
    moving_mean = rng.normal(0.0, 1.0, n_features).astype(dtype)
    moving_variance = rng.uniform(0.5, 2.0, n_features).astype(dtype)
    kbn = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, dtype=dtype)
    kbn.build((None, n_features))
    assert [w.name for w in kbn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    kbn.set_weights([gamma, beta, moving_mean, moving_variance])
    bn = BatchNorm(n_features, momentum=momentum, epsilon=epsilon, dtype=np.dtype(dtype))
    bn.params["gamma"], bn.params["beta"] = gamma.copy(), beta.copy()
    bn.moving_mean, bn.moving_variance = moving_mean.copy(), moving_variance.copy()
    return bn, kbn


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_inference_output_matches_keras(dtype):
    rng = np.random.default_rng(0)
    bn, kbn = _bn_pair(dtype, rng)
    x = rng.normal(2.0, 3.0, size=(32, 6)).astype(dtype)
    np.testing.assert_allclose(bn.forward(x, training=False), kbn(x, training=False).numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.99, 0.9])
def test_batchnorm_training_output_moving_statistics_and_gradients_match_keras(dtype, momentum):
    rng = np.random.default_rng(1)
    bn, kbn = _bn_pair(dtype, rng, momentum=momentum)
    for step in range(3):  # several steps: the moving averages compound
        x = rng.normal(2.0, 3.0, size=(16, 6)).astype(dtype)
        dout = rng.normal(size=x.shape).astype(dtype)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = kbn(xt, training=True)
            scalar = tf.reduce_sum(out * dout)
        dx_k, dgamma_k, dbeta_k = tape.gradient(scalar, [xt, kbn.gamma.value, kbn.beta.value])
        out_n = bn.forward(x, training=True)
        dx_n = bn.backward(dout)
        np.testing.assert_allclose(out_n, out.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.moving_mean, kbn.moving_mean.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.moving_variance, kbn.moving_variance.numpy(), **TOL[dtype])
        np.testing.assert_allclose(dx_n, dx_k.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.grads["gamma"], dgamma_k.numpy(), **TOL[dtype])
        np.testing.assert_allclose(bn.grads["beta"], dbeta_k.numpy(), **TOL[dtype])


def test_batchnorm_moving_variance_is_biased_as_in_keras():
    """An unbiased (N-1) variance would differ from Keras by a factor N/(N-1) on a small batch."""
    rng = np.random.default_rng(2)
    bn, kbn = _bn_pair("float64", rng, momentum=0.0)  # moving = batch statistics
    x = rng.normal(size=(4, 6))
    kbn(x, training=True)
    np.testing.assert_allclose(kbn.moving_variance.numpy(), x.var(axis=0, ddof=0), rtol=1e-12)
    bn.forward(x, training=True)
    np.testing.assert_allclose(bn.moving_variance, kbn.moving_variance.numpy(), rtol=1e-12)


def test_dropout_matches_keras_given_keras_mask():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 2.0, size=(64, 20)).astype("float32")  # no zeros: a 0 output means dropped
    dout = rng.normal(size=x.shape).astype("float32")
    layer = keras.layers.Dropout(0.3, seed=1)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt, training=True)
        scalar = tf.reduce_sum(out * dout)
    dx_k, out = tape.gradient(scalar, xt).numpy(), out.numpy()
    mask = out != 0
    assert 0.6 < mask.mean() < 0.8  # about 1 - rate kept
    ours = Dropout(0.3, rng=0)
    np.testing.assert_allclose(ours.forward(x, training=True, mask=mask), out, rtol=1e-6)
    np.testing.assert_allclose(ours.backward(dout), dx_k, rtol=1e-6)
    # and both are the identity at inference
    np.testing.assert_array_equal(layer(x, training=False).numpy(), ours.forward(x, training=False))


def test_gaussian_dropout_matches_keras_given_keras_noise():
    rng = np.random.default_rng(4)
    x = rng.uniform(0.5, 2.0, size=(200, 50)).astype("float32")
    dout = rng.normal(size=x.shape).astype("float32")
    layer = keras.layers.GaussianDropout(0.3, seed=2)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt, training=True)
        scalar = tf.reduce_sum(out * dout)
    dx_k, out = tape.gradient(scalar, xt).numpy(), out.numpy()
    noise = out / x
    # Keras draws N(1, rate / (1 - rate)) noise, as nnlab does
    assert abs(noise.mean() - 1.0) < 0.02
    assert abs(noise.std() - GaussianDropout(0.3, rng=0).stddev) < 0.02
    ours = GaussianDropout(0.3, rng=0)
    np.testing.assert_allclose(ours.forward(x, training=True, noise=noise), out, rtol=1e-6)
    np.testing.assert_allclose(ours.backward(dout), dx_k, rtol=1e-5, atol=1e-6)


# Factors exactly representable in float32 (2**-6, 2**-5): Keras' L1 stores its factor as a
# float32 tensor, so 0.01 would become 0.009999999776 in a float64 comparison.
L1_FACTOR, L2_FACTOR = 0.015625, 0.03125
PAIRS = [
    (lambda: keras.regularizers.L1(L1_FACTOR), lambda: regularizers.L1(L1_FACTOR)),
    (lambda: keras.regularizers.L2(L2_FACTOR), lambda: regularizers.L2(L2_FACTOR)),
    (lambda: keras.regularizers.L1L2(l1=L1_FACTOR, l2=L2_FACTOR),
     lambda: regularizers.L1L2(l1=L1_FACTOR, l2=L2_FACTOR)),
]


def _dense_pair(keras_reg, nnlab_reg, where, rng, dtype="float32"):
    kwargs_k = {f"{where}_regularizer": keras_reg()}
    kwargs_n = {f"{where}_regularizer": nnlab_reg()}
    inp = keras.Input((5,), dtype=dtype)
    klayer = keras.layers.Dense(4, dtype=dtype, **kwargs_k)  # linear: the output is z, as in nnlab
    model = keras.Model(inp, klayer(inp))
    kernel = rng.normal(size=(5, 4)).astype(dtype)
    bias = rng.normal(size=4).astype(dtype)
    klayer.set_weights([kernel, bias])
    ours = Dense(5, 4, rng=0, dtype=np.dtype(dtype), **kwargs_n)
    ours.params["kernel"], ours.params["bias"] = kernel.copy(), bias.copy()
    return model, ours


@pytest.mark.parametrize("keras_reg, nnlab_reg", PAIRS, ids=["L1", "L2", "L1L2"])
@pytest.mark.parametrize("where", ["kernel", "activity"])
def test_penalty_matches_the_loss_keras_adds(keras_reg, nnlab_reg, where):
    rng = np.random.default_rng(5)
    model, ours = _dense_pair(keras_reg, nnlab_reg, where, rng)
    x = rng.normal(size=(8, 5)).astype("float32")
    model(x)
    assert len(model.losses) == 1
    ours.forward(x, training=True)
    assert ours.regularization_loss() == pytest.approx(float(model.losses[0]), rel=1e-5)


@pytest.mark.parametrize("keras_reg, nnlab_reg", PAIRS, ids=["L1", "L2", "L1L2"])
@pytest.mark.parametrize("where", ["kernel", "activity"])
def test_penalized_gradients_match_keras(keras_reg, nnlab_reg, where):
    """Gradient of data term + penalty, by GradientTape on Keras' total and by nnlab's backward."""
    rng = np.random.default_rng(6)
    model, ours = _dense_pair(keras_reg, nnlab_reg, where, rng, dtype="float64")
    x = rng.normal(size=(8, 5))
    dout = rng.normal(size=(8, 4)) / 8  # dL/dz of a mean loss over the batch
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = model(xt)
        total = tf.reduce_sum(z * dout) + tf.add_n(model.losses)
    dx_k, dkernel_k, dbias_k = tape.gradient(total, [xt, *model.trainable_variables])
    ours.forward(x, training=True)
    dx_n = ours.backward(dout)
    np.testing.assert_allclose(dx_n, dx_k.numpy(), **TOL["float64"])
    np.testing.assert_allclose(ours.grads["kernel"], dkernel_k.numpy(), **TOL["float64"])
    np.testing.assert_allclose(ours.grads["bias"], dbias_k.numpy(), **TOL["float64"])
