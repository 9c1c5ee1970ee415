import numpy as np
import pytest

from nnlab.activations import ACTIVATIONS
from nnlab.gradcheck import check_layer
from nnlab.layers import Activation, Dense



def test_dense_forward_is_affine(rng):
    layer = Dense(3, 2, rng=0)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    layer.params["bias"][:] = [1.0, -1.0]
    np.testing.assert_allclose(layer.forward(x), x @ layer.params["kernel"] + [1.0, -1.0], rtol=1e-6)
    assert layer.params["kernel"].shape == (3, 2) and layer.params["kernel"].dtype == np.float32


def test_dense_gradients(rng):
    layer = Dense(4, 3, rng=1)
    layer.params["bias"][:] = rng.normal(size=3)
    errors = check_layer(layer, rng.normal(size=(5, 4)))
    assert set(errors) == {"kernel", "bias", "x"}
    assert max(errors.values()) < 1e-7


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_gradients(name, rng):
    x = rng.normal(size=(6, 4))
    x[np.abs(x) < 1e-2] = 0.5  # keep clear of kinks
    errors = check_layer(Activation(name), x)
    assert errors["x"] < 1e-6


def test_gradient_check_catches_a_wrong_backward(rng):
    class BrokenDense(Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["kernel"] = self._x.T @ dout / len(dout)  # wrong: divides by n again
            return dx

    with pytest.raises(AssertionError, match=r"kernel\s+relative error .* FAIL"):
        check_layer(BrokenDense(3, 2, rng=0), rng.normal(size=(5, 3)))


def test_dense_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match=r"expects input of shape \(n_samples, 3\), got shape \(4, 2\)"):
        Dense(3, 2, rng=0).forward(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_inputs": 0, "units": 2}, r"n_inputs must be in \[1, inf\), got 0"),
    ({"n_inputs": 3, "units": 2.5}, r"units must be an integer, got 2.5"),
])
def test_dense_validates_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Dense(**kwargs, rng=0)


def test_dense_validates_initializer_and_rng():
    with pytest.raises(ValueError, match=r"unknown initializer 'glorot'"):
        Dense(2, 2, rng=0, kernel_initializer="glorot")
    with pytest.raises(ValueError, match=r"rng must be a numpy Generator"):
        Dense(2, 2, rng=np.random.RandomState(0))


def test_unknown_activation():
    with pytest.raises(ValueError, match=r"unknown activation 'softplus'; expected one of"):
        Activation("softplus")


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2, rng=0).backward(np.zeros((1, 2)))
