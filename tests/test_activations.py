import numpy as np
import pytest

from nnlab.activations import ACTIVATIONS, DERIVATIVES, elu, leaky_relu, relu, sigmoid

Z = np.linspace(-6, 6, 101)


def test_registries_pair_up():
    assert set(ACTIVATIONS) == set(DERIVATIVES)
    assert {"sigmoid", "tanh", "relu", "leaky_relu", "elu"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_matches_centred_differences(name):
    f, df = ACTIVATIONS[name], DERIVATIVES[name]
    z = Z[np.abs(Z) > 1e-3]  # away from the kinks of relu-like functions
    h = 1e-6
    numeric = (f(z + h) - f(z - h)) / (2 * h)
    np.testing.assert_allclose(df(z), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_shape_and_float32_kept(name):
    z = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    assert ACTIVATIONS[name](z).shape == z.shape
    assert DERIVATIVES[name](z).shape == z.shape
    assert ACTIVATIONS[name](z).dtype == np.float32
    assert DERIVATIVES[name](z).dtype == np.float32


def test_sigmoid_stable_for_huge_inputs():
    with np.errstate(over="raise"):
        s = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])
    assert DERIVATIVES["sigmoid"](np.array(0.0)) == pytest.approx(0.25)


def test_elu_does_not_overflow_on_the_unused_branch():
    with np.errstate(over="raise"):
        out = elu(np.array([1000.0, -1000.0]))
    np.testing.assert_allclose(out, [1000.0, -1.0])


def test_relu_family_values():
    np.testing.assert_array_equal(relu(np.array([-2.0, 0.0, 3.0])), [0, 0, 3])
    np.testing.assert_allclose(leaky_relu(np.array([-2.0, 3.0])), [-0.4, 3.0])  # Keras slope 0.2
    np.testing.assert_array_equal(DERIVATIVES["relu"](np.array([-1.0, 0.0, 1.0])), [0, 0, 1])
