"""nnlab.regularizers and the kernel/activity penalties of nnlab.layers.Dense."""
import numpy as np
import pytest

from nnlab import regularizers
from nnlab.gradcheck import check_network, numerical_gradient, relative_error
from nnlab.layers import Activation, Dense
from nnlab.network import MLP, Sequential

W = np.array([[1.0, -2.0], [3.0, 0.0]])  # sum |w| = 6, sum w**2 = 14


@pytest.mark.parametrize("reg, expected", [
    (regularizers.L1(0.1), 0.6),
    (regularizers.L2(0.1), 1.4),
    (regularizers.L1L2(l1=0.1, l2=0.01), 0.6 + 0.14),
    (regularizers.L1L2(), 0.0),
])
def test_penalty_values_follow_keras_formulas(reg, expected):
    assert reg(W) == pytest.approx(expected, rel=1e-12)
    assert isinstance(reg(W), float)


def test_gradients_match_numerical_gradients():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))  # away from 0, where |w| has its kink
    for reg in (regularizers.L1(0.3), regularizers.L2(0.2), regularizers.L1L2(0.1, 0.5)):
        numeric = numerical_gradient(lambda: reg(w), w)
        assert relative_error(reg.gradient(w), numeric) < 1e-8, reg


def test_l1_gradient_is_zero_at_zero_and_l2_gradient_has_factor_two():
    np.testing.assert_array_equal(regularizers.L1(0.5).gradient(W), [[0.5, -0.5], [0.5, 0.0]])
    np.testing.assert_array_equal(regularizers.L2(0.5).gradient(W), W)


def test_keras_default_factors_and_string_identifiers():
    assert regularizers.L1().l1 == 0.01 and regularizers.L2().l2 == 0.01
    assert regularizers.L1L2().l1 == 0.0 and regularizers.L1L2().l2 == 0.0
    both = regularizers.get("l1_l2")
    assert (both.l1, both.l2) == (0.01, 0.01)
    assert isinstance(regularizers.get("l1"), regularizers.L1)
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    reg = regularizers.L2(0.3)
    assert regularizers.get(reg) is reg
    assert regularizers.get(None) is None


@pytest.mark.parametrize("bad", ["l3", 0.01, {"l2": 0.01}])
def test_get_rejects_unknown_identifiers(bad):
    with pytest.raises(ValueError, match=r"regularizer must be None, one of \['l1', 'l1_l2', 'l2'\]"):
        regularizers.get(bad)


@pytest.mark.parametrize("make, match", [
    (lambda: regularizers.L1(-0.1), r"l1 must be in \[0, inf\), got -0\.1"),
    (lambda: regularizers.L2(-1), r"l2 must be in \[0, inf\), got -1"),
    (lambda: regularizers.L1L2(l1="0.1"), r"l1 must be a number, got '0\.1'"),
])
def test_negative_or_non_numeric_factors_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_dense_rejects_an_unknown_regularizer():
    with pytest.raises(ValueError, match=r"regularizer must be None.*got 'L2'"):
        Dense(2, 3, rng=0, kernel_regularizer="L2")


def test_dense_without_regularizers_is_unchanged():
    rng = np.random.default_rng(1)
    layer = Dense(3, 2, rng=0)
    x, dout = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["kernel"], x.T @ dout, rtol=1e-6)
    assert layer.regularization_loss() == 0.0


def test_kernel_penalty_is_added_to_loss_and_gradient():
    rng = np.random.default_rng(2)
    layer = Dense(3, 2, rng=0, kernel_regularizer=regularizers.L2(0.5)).astype(np.float64)
    x, dout = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    layer.forward(x, training=True)
    layer.backward(dout)
    kernel = layer.params["kernel"]
    assert layer.regularization_loss() == pytest.approx(0.5 * np.sum(kernel ** 2), rel=1e-12)
    np.testing.assert_allclose(layer.grads["kernel"], x.T @ dout + kernel, rtol=1e-12)
    # a weight penalty does not depend on the data
    layer.forward(10 * x, training=True)
    assert layer.regularization_loss() == pytest.approx(0.5 * np.sum(kernel ** 2), rel=1e-12)


def test_activity_penalty_depends_on_the_output_and_is_divided_by_batch_size():
    rng = np.random.default_rng(3)
    layer = Dense(3, 2, rng=0, activity_regularizer=regularizers.L1(0.1)).astype(np.float64)
    x = rng.normal(size=(4, 3))
    z = layer.forward(x, training=True)
    assert layer.regularization_loss() == pytest.approx(0.1 * np.sum(np.abs(z)) / 4, rel=1e-12)
    # the same batch twice: same per-sample penalty
    layer.forward(np.concatenate([x, x]), training=True)
    assert layer.regularization_loss() == pytest.approx(0.1 * np.sum(np.abs(z)) / 4, rel=1e-12)
    # a different batch: a different penalty, while the kernel is unchanged
    layer.forward(3 * x, training=True)
    assert layer.regularization_loss() == pytest.approx(3 * 0.1 * np.sum(np.abs(z)) / 4, rel=1e-12)


@pytest.mark.parametrize("kernel_reg, activity_reg", [
    (regularizers.L2(0.1), None),
    (regularizers.L1(0.05), None),
    (None, regularizers.L2(0.2)),
    (None, regularizers.L1(0.1)),
    (regularizers.L1L2(0.01, 0.02), regularizers.L1L2(0.03, 0.04)),
])
def test_gradient_check_network_with_penalties(kernel_reg, activity_reg):
    rng = np.random.default_rng(4)
    model = Sequential([
        Dense(3, 5, rng=rng, kernel_regularizer=kernel_reg, activity_regularizer=activity_reg),
        Activation("tanh"),
        Dense(5, 1, rng=rng, kernel_regularizer=kernel_reg),
    ])
    X = rng.normal(size=(10, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    check_network(model, X, y, tol=1e-6)
    # the penalty really is part of the loss the gradients belong to
    plain = Sequential([Dense(3, 5, rng=0), Activation("tanh"), Dense(5, 1, rng=0)]).astype(np.float64)
    for src, dst in zip(model.layers, plain.layers):
        dst.params = {k: v.astype(np.float64) for k, v in src.params.items()}
    assert model.astype(np.float64).loss_and_gradients(X, y) > plain.loss_and_gradients(X, y)


def test_l1_gives_sparser_weights_than_l2():
    X = np.random.default_rng(5).normal(size=(400, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)  # only 2 of 10 features matter

    def train(reg):
        model = Sequential([Dense(10, 1, rng=7, kernel_regularizer=reg)])
        model.fit(X, y, epochs=300, batch_size=400, optimizer="sgd", learning_rate=0.5, rng=1,
                  progress=False)
        return np.abs(model.layers[0].params["kernel"].ravel())

    w_l1, w_l2 = train(regularizers.L1(0.01)), train(regularizers.L2(0.01))
    assert np.all(w_l1[:2] > 1) and np.all(w_l2[:2] > 1)  # the useful features keep large weights
    # L1 drives the useless ones (much) closer to zero than the same amount of L2
    assert np.median(w_l1[2:]) < 0.2 * np.median(w_l2[2:])


def test_mlp_helper_is_unaffected():
    net = MLP([2, 3, 1], activation="tanh", rng=0)
    assert all(layer.regularization_loss() == 0.0 for layer in net.layers)


# -- noise augmentation (nnlab.datasets.augment_with_noise): training with noise acts as a regularizer
from nnlab.datasets import augment_with_noise  # noqa: E402


def test_augment_with_noise_appends_shifted_copies_with_their_labels():
    # a grid with spacing 100: a copy shifted by sigma = 3 is nearest to its own source
    g = np.arange(40, dtype=np.float32) * 100
    X = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    y = np.random.default_rng(20).integers(0, 2, size=len(X))
    X_aug, y_aug = augment_with_noise(X, y, 0.2, 3.0, rng=21)
    n, n_extra = len(X), round(0.2 * len(X))
    assert X_aug.shape == (n + n_extra, 2) and y_aug.shape == (n + n_extra,)
    assert X_aug.dtype == np.float32 and y_aug.dtype == y.dtype
    np.testing.assert_array_equal(X_aug[:n], X)  # originals first, unchanged
    np.testing.assert_array_equal(y_aug[:n], y)
    src = np.argmin(np.abs(X_aug[n:, None, :] - X[None, :, :]).sum(axis=2), axis=1)  # nearest original
    np.testing.assert_array_equal(y_aug[n:], y[src])  # each copy keeps its source's label
    assert len(np.unique(src)) == n_extra  # distinct sources
    shifts = X_aug[n:] - X[src]
    # 640 shifts of std 3: standard error of the mean 0.12, of the std about 0.08
    assert abs(shifts.std() - 3.0) < 0.3 and abs(shifts.mean()) < 0.5


def test_augment_with_noise_copies_distinct_points_and_keeps_their_labels_exactly():
    X = np.arange(20, dtype=np.float64).reshape(10, 2) * 100  # points 100+ apart, labels = index
    y = np.arange(10)
    X_aug, y_aug = augment_with_noise(X, y, 0.5, 1.0, rng=0)
    src = np.rint(X_aug[10:, 0] / 200).astype(int)  # the original each copy was shifted from
    np.testing.assert_array_equal(y_aug[10:], src)
    assert len(set(src)) == 5  # without replacement


def test_augment_with_noise_is_seeded_and_sigma_zero_gives_exact_copies():
    X = np.random.default_rng(1).normal(size=(50, 3))
    y = np.arange(50) % 2
    a = augment_with_noise(X, y, 0.1, 2.0, rng=5)
    b = augment_with_noise(X, y, 0.1, 2.0, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    X0, y0 = augment_with_noise(X, y, 0.1, 0.0, rng=5)
    assert len(X0) == 55
    assert all(any(np.array_equal(row, orig) for orig in X) for row in X0[50:])
    Xn, yn = augment_with_noise(X, y, 0.0, 2.0, rng=5)
    np.testing.assert_array_equal(Xn, X)


@pytest.mark.parametrize("args, match", [
    ((np.zeros((4, 2)), np.zeros(4), 1.5, 1.0), r"fraction must be in \[0, 1\], got 1\.5"),
    ((np.zeros((4, 2)), np.zeros(4), 0.1, -1.0), r"sigma must be in \[0, inf\), got -1\.0"),
    ((np.zeros((4, 2)), np.zeros(3), 0.1, 1.0), r"X and y must have the same number of samples, got 4 and 3"),
    ((np.zeros(4), np.zeros(4), 0.1, 1.0), r"X must be 2-D, got array of shape \(4,\)"),
])
def test_augment_with_noise_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        augment_with_noise(*args, rng=0)
