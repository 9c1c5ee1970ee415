"""Softmax, log-softmax, one-hot targets and categorical cross-entropy (``nnlab.losses``).

Behaviour (probabilities, shift invariance, extreme logits), gradients checked numerically in
float64, agreement with independent implementations (SciPy; Keras in the slow test), and every
error message a user can meet.
"""
import warnings

import numpy as np
import pytest
from scipy import special

from nnlab import gradcheck, losses
from nnlab.network import MLP


@pytest.fixture
def logits():
    """A (6, 4) float64 batch of logits of moderate size."""
    return np.random.default_rng(0).normal(scale=3.0, size=(6, 4))


@pytest.fixture
def labels():
    return np.array([0, 3, 1, 2, 3, 0])


# ---------------------------------------------------------------------------------------------
# softmax and log_softmax
# ---------------------------------------------------------------------------------------------
def test_softmax_rows_are_probability_vectors(logits):
    p = losses.softmax(logits)
    assert p.shape == logits.shape
    assert np.all(p > 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_softmax_matches_definition_and_scipy(logits):
    e = np.exp(logits)
    np.testing.assert_allclose(losses.softmax(logits), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(losses.softmax(logits), special.softmax(logits, axis=1), rtol=1e-12)


def test_softmax_axis_argument(logits):
    np.testing.assert_allclose(losses.softmax(logits, axis=0), special.softmax(logits, axis=0), rtol=1e-12)
    np.testing.assert_allclose(losses.softmax(logits.T, axis=0), losses.softmax(logits).T, rtol=1e-12)


@pytest.mark.parametrize("shift", [-1000.0, -3.5, 0.0, 7.25, 1000.0])
def test_softmax_and_log_softmax_are_shift_invariant(logits, shift):
    rows = np.arange(len(logits))[:, None] * shift  # a different constant for every row
    np.testing.assert_allclose(losses.softmax(logits + rows), losses.softmax(logits), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(losses.log_softmax(logits + rows), losses.log_softmax(logits), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_with_logits_of_plus_minus_1000(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 0.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        p = losses.softmax(z)
        logp = losses.log_softmax(z)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(logp))
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], atol=1e-6)
    # exact log-probabilities, where log(softmax(z)) would give -inf
    np.testing.assert_allclose(logp[0], [0.0, -1000.0, -2000.0], rtol=1e-6)
    np.testing.assert_allclose(logp[2], [-np.log(2), -np.log(2), -1000 - np.log(2)], rtol=1e-6)


def test_log_softmax_equals_log_of_softmax_where_both_are_finite(logits):
    np.testing.assert_allclose(losses.log_softmax(logits), np.log(losses.softmax(logits)), rtol=1e-12)
    np.testing.assert_allclose(losses.log_softmax(logits), special.log_softmax(logits, axis=1), rtol=1e-12)


def test_softmax_accepts_integer_logits():
    np.testing.assert_allclose(losses.softmax(np.array([[1, 2, 3]])), special.softmax([[1.0, 2.0, 3.0]], axis=1))


def test_softmax_jacobian_matches_numerical_jacobian():
    """d softmax_i / d z_j = p_i (delta_ij - p_j), checked column by column."""
    z = np.random.default_rng(1).normal(size=5)
    p = losses.softmax(z)
    analytic = np.diag(p) - np.outer(p, p)
    numeric = np.empty((5, 5))
    for j in range(5):
        e = np.zeros(5)
        e[j] = 1e-6
        numeric[:, j] = (losses.softmax(z + e) - losses.softmax(z - e)) / 2e-6
    assert gradcheck.relative_error(analytic, numeric) < 1e-6


# ---------------------------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------------------------
def test_one_hot_puts_a_single_one_per_row():
    out = losses.one_hot(np.array([2, 0, 1, 2]), 3)
    expected = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32
    assert losses.one_hot([1.0, 0.0], 2, dtype=np.float64).dtype == np.float64


def test_one_hot_keeps_unused_classes_as_columns():
    assert losses.one_hot([0, 0], 5).shape == (2, 5)


# ---------------------------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------------------------
def test_cross_entropy_value_is_mean_negative_log_probability(logits, labels):
    loss, _ = losses.softmax_cross_entropy(logits, labels)
    p = special.softmax(logits, axis=1)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(len(labels)), labels])), rel=1e-12)


def test_cross_entropy_of_uniform_prediction_is_log_n_classes():
    loss, _ = losses.softmax_cross_entropy(np.zeros((3, 10)), [0, 4, 9])
    assert loss == pytest.approx(np.log(10), rel=1e-12)


def test_cross_entropy_gradient_is_p_minus_y_over_n(logits, labels):
    _, grad = losses.softmax_cross_entropy(logits, labels)
    expected = (special.softmax(logits, axis=1) - np.eye(4)[labels]) / len(labels)
    np.testing.assert_allclose(grad, expected, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)  # rows of p - y sum to 0


def test_cross_entropy_gradient_check_float64(logits, labels):
    z = logits.copy()
    _, grad = losses.softmax_cross_entropy(z, labels)
    errors = gradcheck.check_gradients(lambda: losses.softmax_cross_entropy(z, labels)[0],
                                       {"logits": z}, {"logits": grad}, tol=1e-6)
    assert errors["logits"] < 1e-6


def test_integer_and_one_hot_targets_give_the_same_loss_and_gradient(logits, labels):
    loss_int, grad_int = losses.softmax_cross_entropy(logits, labels)
    loss_hot, grad_hot = losses.softmax_cross_entropy(logits, losses.one_hot(labels, 4))
    assert loss_int == pytest.approx(loss_hot, rel=1e-12)
    np.testing.assert_allclose(grad_int, grad_hot, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_logits_of_plus_minus_1000(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = losses.softmax_cross_entropy(z, [2, 0])
    # sample 0: confidently wrong, -log p = 2000; sample 1: confidently right, -log p = 0
    assert loss == pytest.approx(1000.0, rel=1e-6)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, [[0.5, 0, -0.5], [0, 0, 0]], atol=1e-6)


def test_cross_entropy_keeps_float32(labels):
    z = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    _, grad = losses.softmax_cross_entropy(z, labels)
    assert grad.dtype == np.float32


def test_multiclass_network_gradient_check_float64():
    """The softmax loss wired into nnlab.network: every parameter's gradient, numerically."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(7, 5))
    y = rng.integers(0, 3, size=7)
    for loss, targets in (("sparse_categorical_crossentropy", y),
                          ("categorical_crossentropy", losses.one_hot(y, 3, dtype=np.float64))):
        net = MLP([5, 6, 3], activation="tanh", loss=loss, rng=0)
        errors = gradcheck.check_network(net, X, targets, tol=1e-6)
        assert max(errors.values()) < 1e-6


def test_agrees_with_keras(keras):
    """Same numbers as keras.ops and keras.losses (imports TensorFlow: a few seconds)."""
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0], [-2.0, 0.5, 0.25]])
    y = np.array([2, 0, 1])
    np.testing.assert_allclose(losses.softmax(z), keras.ops.convert_to_numpy(keras.ops.softmax(z)), atol=1e-7)
    np.testing.assert_allclose(losses.log_softmax(z), keras.ops.convert_to_numpy(keras.ops.log_softmax(z)),
                               rtol=1e-6)
    ours, _ = losses.softmax_cross_entropy(z, y)
    sparse = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z))
    dense = float(keras.losses.CategoricalCrossentropy(from_logits=True)(np.eye(3)[y], z))
    assert ours == pytest.approx(sparse, rel=1e-5)
    assert ours == pytest.approx(dense, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# error messages
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("func", [losses.softmax, losses.log_softmax])
def test_softmax_rejects_bad_logits(func):
    with pytest.raises(ValueError, match=r"z must have a numeric dtype .* dtype <U1"):
        func(np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"z must have a numeric dtype .* dtype bool"):
        func(np.array([True, False]))
    with pytest.raises(ValueError, match=r"z must contain only finite values, got NaN or infinity"):
        func(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match=r"z must hold at least one logit along axis -1, got shape \(2, 0\)"):
        func(np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"z must hold at least one logit along axis -1, got shape \(\)"):
        func(3.0)


def test_one_hot_rejects_bad_labels_and_class_counts():
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 3\), got .*3"):
        losses.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 3\), got .*-1"):
        losses.one_hot([-1, 0], 3)
    with pytest.raises(ValueError, match=r"y must hold integer class labels, got non-integer values such as .*0\.5"):
        losses.one_hot([0.5, 1.0], 3)
    with pytest.raises(ValueError, match=r"y must be 1-D, got array of shape \(1, 2\)"):
        losses.one_hot([[0, 1]], 3)
    with pytest.raises(ValueError, match=r"n_classes must be an integer, got 2\.0"):
        losses.one_hot([0, 1], 2.0)
    with pytest.raises(ValueError, match=r"n_classes must be an integer, got True"):
        losses.one_hot([0, 1], True)
    with pytest.raises(ValueError, match=r"n_classes must be in \[1, inf\), got 0"):
        losses.one_hot([], 0)


def test_cross_entropy_rejects_bad_logits(labels):
    with pytest.raises(ValueError, match=r"logits must be 2-D, got array of shape \(4,\)"):
        losses.softmax_cross_entropy(np.zeros(4), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"logits must have a numeric dtype \(float\), got .* dtype int64"):
        losses.softmax_cross_entropy(np.zeros((6, 4), dtype=np.int64), labels)
    with pytest.raises(ValueError, match=r"logits must contain only finite values"):
        losses.softmax_cross_entropy(np.full((6, 4), np.nan), labels)
    with pytest.raises(ValueError, match=r"logits must hold at least one sample and one class, got shape \(0, 4\)"):
        losses.softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, dtype=int))


def test_cross_entropy_rejects_bad_targets(logits, labels):
    with pytest.raises(ValueError, match=r"y_true must hold class labels in \[0, 4\), got .*4"):
        losses.softmax_cross_entropy(logits, [0, 1, 2, 3, 4, 0])
    with pytest.raises(ValueError, match=r"y_true must hold integer class labels, got non-integer values"):
        losses.softmax_cross_entropy(logits, [0, 1, 2, 3, 2.5, 0])
    with pytest.raises(ValueError, match=r"y_true and logits must have the same number of samples, got 5 and 6"):
        losses.softmax_cross_entropy(logits, labels[:5])
    with pytest.raises(ValueError, match=r"y_true must be 1-D or 2-D, got array of shape \(6, 4, 1\)"):
        losses.softmax_cross_entropy(logits, np.zeros((6, 4, 1)))
    with pytest.raises(ValueError, match=r"y_true must be 1-D or 2-D, got array of shape \(\)"):
        losses.softmax_cross_entropy(logits, 1)
    with pytest.raises(ValueError, match=r"y_true must have a numeric dtype"):
        losses.softmax_cross_entropy(logits, list("abcdef"))
    with pytest.raises(ValueError, match=r"one-hot y_true must have the shape of the logits \(6, 4\), got shape \(6, 3\)"):
        losses.softmax_cross_entropy(logits, np.eye(3)[[0, 1, 2, 0, 1, 2]])
    soft = losses.one_hot(labels, 4)
    soft[2] = [0.5, 0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"exactly one 1 per row and 0 elsewhere, got row 2 = \[0\.5, 0\.5, 0\.0, 0\.0\]"):
        losses.softmax_cross_entropy(logits, soft)
    two_ones = losses.one_hot(labels, 4)
    two_ones[[0, 4], 1] = 1
    with pytest.raises(ValueError, match=r"got row 0 = \[1\.0, 1\.0, 0\.0, 0\.0\] \(2 bad row\(s\)\)"):
        losses.softmax_cross_entropy(logits, two_ones)
