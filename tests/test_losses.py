"""Binary cross-entropy and MSE (the softmax family is tested in test_losses_softmax.py)."""
import numpy as np
import pytest

from nnlab.activations import sigmoid
from nnlab.gradcheck import numerical_gradient, relative_error
from nnlab.losses import binary_cross_entropy, binary_cross_entropy_with_logits, mean_squared_error



def naive_bce(y, p):
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_bce_values_match_the_definition():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.6, 0.3])
    assert binary_cross_entropy(y, p)[0] == pytest.approx(naive_bce(y, p))
    z = np.log(p / (1 - p))
    assert binary_cross_entropy_with_logits(y, z)[0] == pytest.approx(naive_bce(y, p))


@pytest.mark.parametrize("shape", [(9,), (9, 1)])
def test_bce_gradients(shape, rng):
    y = rng.integers(0, 2, size=shape)
    z = rng.normal(size=shape)
    p = sigmoid(z)
    loss, grad = binary_cross_entropy(y, p)
    assert grad.shape == p.shape
    assert relative_error(grad, numerical_gradient(lambda: binary_cross_entropy(y, p)[0], p)) < 1e-6
    loss_z, grad_z = binary_cross_entropy_with_logits(y, z)
    assert relative_error(grad_z, numerical_gradient(lambda: binary_cross_entropy_with_logits(y, z)[0], z)) < 1e-6
    # through the sigmoid the gradient collapses to (p - y) / n
    np.testing.assert_allclose(grad_z, (p - y) / len(y))


def test_bce_with_logits_is_stable():
    y = np.array([1, 0, 1, 0])
    z = np.array([1000.0, -1000.0, -1000.0, 1000.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss, grad = binary_cross_entropy_with_logits(y, z)
    assert np.isfinite(loss) and loss == pytest.approx(500.0)  # two perfect, two off by 1000: 2000 / 4
    np.testing.assert_allclose(grad, [0, 0, -0.25, 0.25])


def test_bce_from_probabilities_is_clipped():
    loss, grad = binary_cross_entropy(np.array([1, 0]), np.array([0.0, 1.0]))
    assert np.isfinite(loss) and loss == pytest.approx(-np.log(1e-7), rel=1e-3)
    assert np.all(np.isfinite(grad))


def test_mse_and_gradient(rng):
    y, yp = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    loss, grad = mean_squared_error(y, yp)
    assert loss == pytest.approx(0.5 * np.sum((yp - y) ** 2) / 5)
    assert relative_error(grad, numerical_gradient(lambda: mean_squared_error(y, yp)[0], yp)) < 1e-6


def test_bce_rejects_bad_labels_and_shapes():
    with pytest.raises(ValueError, match=r"y_true must hold binary labels 0 or 1, got 2"):
        binary_cross_entropy_with_logits(np.array([0, 2]), np.zeros(2))
    with pytest.raises(ValueError, match=r"one label per row of logits"):
        binary_cross_entropy_with_logits(np.array([0, 1, 1]), np.zeros(2))
    with pytest.raises(ValueError, match=r"y_prob must have a numeric dtype \(float\)"):
        binary_cross_entropy(np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="finite"):
        binary_cross_entropy_with_logits(np.array([0, 1]), np.array([0.0, np.nan]))
