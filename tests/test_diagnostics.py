"""nnlab.diagnostics: per-layer statistics, checked against direct NumPy computations."""
import copy

import numpy as np
import pytest

from nnlab import diagnostics, init
from nnlab.gradcheck import numerical_gradient
from nnlab.layers import Activation, Dense
from nnlab.network import MLP, Sequential


def tiny_net(activation="relu", dtype=np.float32):
    """2 -> 3 -> 3 -> 1 with hand-set weights."""
    d1 = Dense(2, 3, rng=0, dtype=dtype)
    d1.params["kernel"] = np.array([[1.0, -1.0, 0.5], [2.0, 0.5, -1.0]], dtype)
    d1.params["bias"] = np.array([0.0, 0.1, -0.2], dtype)
    d2 = Dense(3, 3, rng=0, dtype=dtype)
    d2.params["kernel"] = np.array([[0.3, -0.2, 1.0], [-0.7, 0.4, 0.2], [0.5, 0.5, -0.5]], dtype)
    d2.params["bias"] = np.array([0.05, -0.05, 0.0], dtype)
    d3 = Dense(3, 1, rng=0, dtype=dtype)
    d3.params["kernel"] = np.array([[1.0], [-1.0], [0.5]], dtype)
    return Sequential([d1, Activation(activation), d2, Activation(activation), d3])


X = np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8], [-1.0, -1.0]], np.float32)
Y = np.array([1, 0, 1, 0])


def manual_forward(net, X, f):
    d1, d2 = net.layers[0].params, net.layers[2].params
    z1 = X @ d1["kernel"] + d1["bias"]
    a1 = f(z1)
    z2 = a1 @ d2["kernel"] + d2["bias"]
    return [(z1, a1), (z2, f(z2))]


def test_forward_trace_matches_manual_forward():
    net = tiny_net("tanh")
    trace = diagnostics.forward_trace(net, X)
    expected = manual_forward(net, X, np.tanh)
    assert [name for name, _, _ in trace] == ["tanh", "tanh"]
    for (_, z, a), (z_ref, a_ref) in zip(trace, expected):
        np.testing.assert_allclose(z, z_ref, rtol=1e-6)
        np.testing.assert_allclose(a, a_ref, rtol=1e-6)


def test_activation_statistics_match_numpy():
    net = tiny_net("relu")
    stats = diagnostics.activation_statistics(net, X)
    expected = manual_forward(net, X, lambda z: np.maximum(z, 0))
    np.testing.assert_array_equal(stats["layer"], [1, 2])
    for i, (z, a) in enumerate(expected):
        assert stats["mean"][i] == pytest.approx(a.mean(), rel=1e-6)
        assert stats["std"][i] == pytest.approx(a.std(), rel=1e-6)
        assert stats["z_std"][i] == pytest.approx(z.std(), rel=1e-6)
        assert stats["fraction_zero"][i] == pytest.approx(np.mean(a == 0))
        # a ReLU is "saturated" (zero derivative) exactly where z <= 0
        assert stats["fraction_saturated"][i] == pytest.approx(np.mean(z <= 0))


def test_saturation_of_tanh_depends_on_the_weight_scale():
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((500, 50)).astype(np.float32)
    big = MLP([50, 50, 50, 1], activation="tanh", rng=1, kernel_initializer=init.get("random_normal", stddev=1.0))
    small = MLP([50, 50, 50, 1], activation="tanh", rng=1, kernel_initializer=init.get("random_normal", stddev=0.01))
    sat_big = diagnostics.activation_statistics(big, Xb)["fraction_saturated"]
    sat_small = diagnostics.activation_statistics(small, Xb)["fraction_saturated"]
    assert np.all(sat_big > 0.5), sat_big     # tanh'(z) < 0.01 needs |z| > 3.0: common when std(z) ~ 7
    assert np.all(sat_small == 0), sat_small  # |z| stays far below 3


def test_he_keeps_relu_activations_at_scale_and_n01_explodes():
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((1000, 100)).astype(np.float32)
    sizes = [100] + [100] * 10 + [1]
    he = diagnostics.activation_statistics(MLP(sizes, "relu", rng=2, kernel_initializer="he_normal"), Xb)["std"]
    n01 = diagnostics.activation_statistics(
        MLP(sizes, "relu", rng=2, kernel_initializer=init.get("random_normal", stddev=1.0)), Xb)["std"]
    assert 0.3 < he[-1] / he[0] < 3, he
    # Var[z] grows by fan_in / 2 = 50 per layer: a factor of about 7 in std per layer
    assert n01[-1] / n01[0] > 1e6, n01


def test_inactive_units_counts_units_off_on_every_sample():
    net = tiny_net("relu")
    net.layers[0].params["bias"] = np.array([0.0, -100.0, 0.0], np.float32)  # unit 1 is dead
    frac = diagnostics.inactive_units(net, X)
    z1 = X @ net.layers[0].params["kernel"] + net.layers[0].params["bias"]
    assert frac[0] == pytest.approx(np.mean(np.all(z1 <= 0, axis=0)))
    assert frac[0] >= 1 / 3
    assert frac.shape == (2,)


def test_gradient_norms_match_numerical_gradients():
    net = tiny_net("tanh", dtype=np.float64)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    norms = diagnostics.gradient_norms(net, X64, Y)
    assert norms["kernel"].shape == norms["delta"].shape == (3,)
    probe = copy.deepcopy(net)

    def loss_from(start, a):
        # the loss of the network fed with ``a`` at layer index ``start``
        for layer in probe.layers[start:]:
            a = layer.forward(a)
        return probe._loss_fn(a, Y64)[0]

    dense_positions = [i for i, layer in enumerate(probe.layers) if isinstance(layer, Dense)]
    for k, pos in enumerate(dense_positions):
        kernel = probe.layers[pos].params["kernel"]
        numeric_kernel = numerical_gradient(lambda: loss_from(0, X64), kernel)
        assert norms["kernel"][k] == pytest.approx(np.linalg.norm(numeric_kernel), rel=1e-6)
        a_in = X64
        for layer in probe.layers[:pos + 1]:
            a_in = layer.forward(a_in)
        z = a_in.copy()                                   # output of Dense layer k
        numeric_delta = numerical_gradient(lambda: loss_from(pos + 1, z), z)
        assert norms["delta"][k] == pytest.approx(np.linalg.norm(numeric_delta), rel=1e-6)


def test_delta_vanishes_through_sigmoid_layers_but_not_with_he_relu():
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((500, 50)).astype(np.float32)
    yb = (Xb[:, 0] > 0).astype(np.int64)
    sizes = [50] + [50] * 8 + [1]
    sig = diagnostics.gradient_norms(MLP(sizes, "sigmoid", rng=1, kernel_initializer="glorot_normal"), Xb, yb)
    he = diagnostics.gradient_norms(MLP(sizes, "relu", rng=1, kernel_initializer="he_normal"), Xb, yb)
    # each sigmoid layer multiplies delta by about sqrt(50 * Var[w]) * sigma' <= 1/4
    assert sig["delta"][0] / sig["delta"][-1] < 1e-3, sig["delta"]
    assert 0.1 < he["delta"][0] / he["delta"][-1] < 10, he["delta"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"model must be an nnlab Sequential with at least one Activation layer"):
        diagnostics.activation_statistics(Sequential([Dense(2, 1, rng=0)]), X)
    with pytest.raises(ValueError, match=r"model must be an nnlab Sequential with at least one Dense layer, got 'net'"):
        diagnostics.gradient_norms("net", X, Y)
    with pytest.raises(ValueError, match=r"saturation must be in \(0, 1\), got 1.5"):
        diagnostics.activation_statistics(tiny_net(), X, saturation=1.5)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 2\) for this network, got shape \(4, 3\)"):
        diagnostics.inactive_units(tiny_net(), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"X and y must have the same number of samples, got 4 and 3"):
        diagnostics.gradient_norms(tiny_net(), X, Y[:3])
