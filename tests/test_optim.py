"""nnlab.optim: update rules and gradient clipping, checked by hand and against Keras' optimizers."""

import numpy as np
import pytest

from nnlab import optim
from nnlab.layers import Layer


class Params(Layer):
    """A layer that only holds parameters and gradients set by the test."""

    def __init__(self, **arrays):
        super().__init__()
        self.params = {k: np.array(v, dtype=np.float32) for k, v in arrays.items()}



def gradient_sequence(n_steps, seed=0, scale=5.0):
    """Gradients for a kernel (3, 4) and a bias (4,), large enough that clipping is active."""
    rng = np.random.default_rng(seed)
    return [{"kernel": scale * rng.standard_normal((3, 4)).astype(np.float32),
             "bias": scale * rng.standard_normal(4).astype(np.float32)} for _ in range(n_steps)]


def run_nnlab(opt, grads_seq, start):
    layer = Params(**start)
    for grads in grads_seq:
        layer.grads = {k: v.copy() for k, v in grads.items()}
        opt.step([layer])
    return layer.params


def run_keras(keras, opt, grads_seq, start):
    variables = {k: keras.Variable(np.array(v, dtype=np.float32)) for k, v in start.items()}
    names = list(variables)
    for grads in grads_seq:
        opt.apply_gradients([(grads[k], variables[k]) for k in names])
    return {k: np.asarray(variables[k]) for k in names}


START = {"kernel": np.linspace(-1, 1, 12).reshape(3, 4), "bias": np.array([0.1, -0.2, 0.3, 0.0])}

CONFIGS = [
    ("SGD", {"learning_rate": 0.1}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("Adam", {"learning_rate": 0.01}),
    ("SGD", {"learning_rate": 0.1, "clipnorm": 1.0}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "clipvalue": 0.5}),
    ("SGD", {"learning_rate": 0.1, "global_clipnorm": 2.0}),
    ("Adam", {"learning_rate": 0.01, "clipnorm": 1.0}),
    ("Adam", {"learning_rate": 0.01, "global_clipnorm": 1.0}),
]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{'-'.join(k)}" for n, k in CONFIGS])
def test_matches_keras_optimizer(keras, name, kwargs):
    grads_seq = gradient_sequence(5)
    ours = run_nnlab(getattr(optim, name)(**kwargs), grads_seq, START)
    theirs = run_keras(keras, getattr(keras.optimizers, name)(**kwargs), grads_seq, START)
    for key in START:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}({kwargs}) differs from Keras on {key}")


def test_clipping_changes_the_update():
    """Without this, the parity test above could pass with clipping silently ignored."""
    grads_seq = gradient_sequence(1)
    plain = run_nnlab(optim.SGD(learning_rate=0.1), grads_seq, START)
    clipped = run_nnlab(optim.SGD(learning_rate=0.1, clipnorm=1.0), grads_seq, START)
    assert not np.allclose(plain["kernel"], clipped["kernel"])


def test_clipnorm_bounds_each_gradient_and_keeps_its_direction():
    g = [np.full((2, 2), 3.0, np.float32), np.full(3, 0.1, np.float32)]
    out = optim.SGD(clipnorm=1.0).clip_gradients(g)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(out[0] / np.linalg.norm(out[0]), g[0] / np.linalg.norm(g[0]), rtol=1e-6)
    np.testing.assert_array_equal(out[1], g[1])  # small gradients are left alone
    assert g[0][0, 0] == 3.0, "clip_gradients must not modify its input"


def test_global_clipnorm_scales_all_gradients_by_one_factor():
    g = [np.full((2, 2), 3.0, np.float32), np.full(3, 4.0, np.float32)]
    norm = np.sqrt(4 * 9 + 3 * 16)
    assert optim.global_norm(g) == pytest.approx(norm)
    out = optim.SGD(global_clipnorm=2.0).clip_gradients(g)
    assert optim.global_norm(out) == pytest.approx(2.0, rel=1e-6)
    assert out[0][0, 0] / 3.0 == pytest.approx(out[1][0] / 4.0)


def test_clipvalue_clips_elementwise():
    g = [np.array([-3.0, -0.2, 0.0, 0.4, 7.0], np.float32)]
    out = optim.SGD(clipvalue=0.5).clip_gradients(g)
    np.testing.assert_array_equal(out[0], np.array([-0.5, -0.2, 0.0, 0.4, 0.5], np.float32))


def test_step_records_the_unclipped_global_norm():
    layer = Params(w=np.zeros(2))
    layer.grads = {"w": np.array([3.0, 4.0], np.float32)}
    opt = optim.SGD(learning_rate=1.0, clipnorm=1.0)
    opt.step([layer])
    assert opt.last_global_norm == pytest.approx(5.0)
    np.testing.assert_allclose(layer.params["w"], [-0.6, -0.8], rtol=1e-6)
    np.testing.assert_array_equal(layer.grads["w"], [3.0, 4.0])


def test_sgd_update_rule_by_hand():
    layer = Params(w=[1.0, 2.0])
    opt = optim.SGD(learning_rate=0.5, momentum=0.5)
    for _ in range(2):
        layer.grads = {"w": np.array([1.0, -1.0], np.float32)}
        opt.step([layer])
    # v1 = -0.5 g, w1 = w0 - 0.5 g; v2 = 0.5 v1 - 0.5 g = -0.75 g, w2 = w1 - 0.75 g
    np.testing.assert_allclose(layer.params["w"], [1.0 - 1.25, 2.0 + 1.25])


def test_step_without_gradient_raises():
    layer = Params(w=[1.0])
    with pytest.raises(RuntimeError, match=r"has no gradient for 'w': call backward\(\) before step\(\)"):
        optim.SGD().step([layer])


@pytest.mark.parametrize("kwargs, match", [
    ({"clipnorm": 1.0, "clipvalue": 0.5},
     r"only one of clipnorm, clipvalue and global_clipnorm can be set, got clipnorm=1.0, clipvalue=0.5"),
    ({"clipnorm": 0.0}, r"clipnorm must be in \(0, inf\), got 0.0"),
    ({"clipvalue": -1.0}, r"clipvalue must be in \(0, inf\), got -1.0"),
    ({"global_clipnorm": "1"}, r"global_clipnorm must be a number, got '1'"),
    ({"learning_rate": 0.0}, r"learning_rate must be in \(0, inf\), got 0.0"),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.SGD(**kwargs)


def test_adam_bad_epsilon_and_get():
    with pytest.raises(ValueError, match=r"epsilon must be in \(0, inf\), got 0"):
        optim.Adam(epsilon=0)
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; expected one of \['adam', 'sgd'\]"):
        optim.get("rmsprop")
    assert isinstance(optim.get("adam", 0.01), optim.Adam) and optim.get("adam", 0.01).learning_rate == 0.01
