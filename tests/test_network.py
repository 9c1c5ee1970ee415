import numpy as np
import pytest

from nnlab import datasets
from nnlab.gradcheck import check_network
from nnlab.network import MLP, Sequential
from nnlab.layers import Activation, Dense
from nnlab.optim import SGD, Adam

X, y = datasets.make_moons(2000, noise=0.2, seed=0)
(X_tr, y_tr), (X_va, y_va), (X_te, y_te) = datasets.train_val_test_split(X, y, seed=0)


@pytest.mark.parametrize("loss, n_out, labels", [
    ("binary_crossentropy", 1, y[:12]),
    ("sparse_categorical_crossentropy", 3, (y[:12] + (X[:12, 0] > 0)).astype(int)),
    ("categorical_crossentropy", 2, np.eye(2)[y[:12]]),
    ("mean_squared_error", 2, np.random.default_rng(0).normal(size=(12, 2))),
])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "elu"])
def test_network_gradients(loss, n_out, labels, activation):
    net = MLP([2, 5, 4, n_out], activation=activation, loss=loss, rng=1)
    errors = check_network(net, X[:12], labels)
    assert len(errors) == 6 and max(errors.values()) < 1e-6


def test_fit_learns_moons_and_reports_history():
    net = MLP([2, 16, 16, 1], activation="tanh", rng=0)
    hist = net.fit(X_tr, y_tr, epochs=40, batch_size=32, learning_rate=0.1, rng=1,
                   validation_data=(X_va, y_va), progress=False)
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 40 for v in hist.values())
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    result = net.evaluate(X_te, y_te)
    assert result["accuracy"] >= 0.95  # the Bayes rate at noise 0.2 is about 0.97
    assert net.predict_proba(X_te).shape == (len(X_te),)
    assert set(np.unique(net.predict(X_te))) <= {0, 1}


def test_fit_is_reproducible_and_rng_driven():
    def run(seed):
        net = MLP([2, 8, 1], activation="relu", rng=0)
        return net.fit(X_tr, y_tr, epochs=3, batch_size=16, learning_rate=0.05, rng=seed, progress=False)["loss"]
    assert run(5) == run(5)
    assert run(5) != run(6)  # the shuffling comes from the rng passed in


def test_multiclass_fit_and_float32():
    from sklearn.datasets import load_digits
    Xd, yd = load_digits(return_X_y=True)
    Xd = (Xd / 16).astype(np.float32)
    net = MLP([64, 32, 10], activation="relu", loss="sparse_categorical_crossentropy", rng=0)
    net.fit(Xd[:1200], yd[:1200], epochs=15, batch_size=32, optimizer=Adam(0.01), rng=0, progress=False)
    assert net.layers[0].params["kernel"].dtype == np.float32
    assert net.predict_logits(Xd[:5]).dtype == np.float32
    assert net.evaluate(Xd[1200:], yd[1200:])["accuracy"] > 0.9
    assert net.predict_proba(Xd[:4]).sum(axis=1) == pytest.approx(np.ones(4), rel=1e-5)


def test_callbacks_see_every_epoch():
    seen = []
    net = MLP([2, 4, 1], rng=0)
    net.fit(X_tr, y_tr, epochs=4, rng=0, progress=False, callbacks=[lambda m, e, logs: seen.append((e, logs["loss"]))])
    assert [e for e, _ in seen] == [0, 1, 2, 3]


def test_count_params():
    assert MLP([784, 300, 200, 10], loss="sparse_categorical_crossentropy", rng=0).count_params() == \
        784 * 300 + 300 + 300 * 200 + 200 + 200 * 10 + 10


def test_momentum_sgd_and_adam_reduce_the_loss():
    for opt in (SGD(0.05, momentum=0.9), Adam(0.01)):
        net = MLP([2, 8, 1], activation="tanh", rng=0)
        hist = net.fit(X_tr, y_tr, epochs=20, optimizer=opt, rng=0, progress=False)
        assert hist["loss"][-1] < hist["loss"][0]


@pytest.mark.parametrize("call, message", [
    (lambda n: n.fit(X_tr[:, :1], y_tr, epochs=1, rng=0), r"X must have shape \(n_samples, 2\) for this network, got shape \(\d+, 1\)"),
    (lambda n: n.fit(X_tr, y_tr[:-1], epochs=1, rng=0), r"X and y must have the same number of samples"),
    (lambda n: n.fit(X_tr, y_tr + 1, epochs=1, rng=0), r"y must hold binary labels 0 or 1, got 2"),
    (lambda n: n.fit(X_tr, y_tr, epochs=0, rng=0), r"epochs must be in \[1, inf\), got 0"),
    (lambda n: n.fit(X_tr, y_tr, epochs=1, batch_size=2.5, rng=0), r"batch_size must be an integer, got 2.5"),
    (lambda n: n.fit(X_tr, y_tr, epochs=1, learning_rate=-0.1, rng=0), r"learning_rate must be in \(0, inf\), got -0.1"),
    (lambda n: n.fit(X_tr, y_tr, epochs=1, optimizer="adagrad", rng=0), r"unknown optimizer 'adagrad'"),
    (lambda n: n.fit(X_tr, y_tr, epochs=1, rng=None), r"rng must be a numpy Generator"),
    (lambda n: n.predict(X_tr[:, 0]), r"X must be 2-D, got array of shape"),
    (lambda n: n.predict(np.full((2, 2), np.inf)), r"X must contain only finite values"),
    (lambda n: n.predict(np.array([["a", "b"]])), r"X must have a numeric dtype"),
])
def test_bad_input_messages(call, message):
    net = MLP([2, 4, 1], rng=0)
    with pytest.raises(ValueError, match=message):
        call(net)


def test_multiclass_label_range_checked():
    net = MLP([2, 4, 3], loss="sparse_categorical_crossentropy", rng=0)
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 3\), got 3"):
        net.fit(X_tr, np.full(len(X_tr), 3), epochs=1, rng=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"layer_sizes": [2]}, r"layer_sizes must be a list of at least two positive integers"),
    ({"layer_sizes": [2, 0, 1]}, r"layer_sizes must be a list of at least two positive integers"),
    ({"layer_sizes": [2, 4, 2]}, r"binary_crossentropy needs 1 output unit"),
    ({"layer_sizes": [2, 4, 1], "loss": "sparse_categorical_crossentropy"}, r"needs at least 2 output units"),
    ({"layer_sizes": [2, 4, 1], "loss": "hinge"}, r"unknown loss 'hinge'"),
    ({"layer_sizes": [2, 4, 1], "activation": "swish"}, r"unknown activation 'swish'"),
])
def test_mlp_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(rng=0, **kwargs)


def test_sequential_needs_layers():
    with pytest.raises(ValueError, match="non-empty list of nnlab Layer objects"):
        Sequential([])
    net = Sequential([Dense(2, 3, rng=0), Activation("relu"), Dense(3, 1, rng=0)])
    assert net.count_params() == 13


def test_training_loop_is_vectorized(monkeypatch):
    """fit must not loop over samples in Python: one forward call per layer per minibatch."""
    calls = []
    original = Dense.forward

    def counting_forward(self, x, training=False):
        calls.append(len(x))
        return original(self, x, training)

    monkeypatch.setattr(Dense, "forward", counting_forward)
    net = MLP([2, 8, 1], rng=0)
    net.fit(X_tr, y_tr, epochs=1, batch_size=len(X_tr), rng=0, progress=False)
    assert calls == [len(X_tr), len(X_tr)]  # two Dense layers, one full batch each


def test_training_backward_skips_only_the_input_gradient():
    """fit's backward(input_grad=False) fills the same parameter gradients and skips dL/dX."""
    rng = np.random.default_rng(3)
    xb, yb = rng.normal(size=(16, 2)), rng.integers(0, 2, 16)
    net = MLP([2, 8, 8, 1], rng=0, dtype=np.float64)
    _, dlogits = net._loss_fn(net.forward(xb, training=True), yb)
    dx = net.backward(dlogits)
    full = [{k: v.copy() for k, v in layer.grads.items()} for layer in net.layers]
    assert dx.shape == xb.shape
    assert net.backward(dlogits, input_grad=False) is None
    for layer, grads in zip(net.layers, full):
        for name, value in grads.items():
            np.testing.assert_array_equal(layer.grads[name], value)
    assert net.layers[0].input_grad, "the first layer's setting is restored after the call"
    assert net.backward(dlogits).shape == xb.shape


def test_training_backward_with_a_subclassed_first_layer():
    """A Dense subclass that overrides backward(dout) (chapter 3's L2Dense) still trains."""
    class Penalized(Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["kernel"] = self.grads["kernel"] + 0.1 * self.params["kernel"]
            return dx

    net = Sequential([Penalized(2, 8, rng=0), Activation("tanh"), Dense(8, 1, rng=0)])
    history = net.fit(X_tr, y_tr, epochs=3, batch_size=64, rng=0, progress=False)
    assert history["loss"][-1] < history["loss"][0]
