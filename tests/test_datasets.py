import gzip
import struct

import numpy as np
import pytest

from nnlab import datasets
from nnlab.datasets import (FASHION_MNIST_FILES, load_fashion_mnist, read_idx, train_val_test_split)


def test_logic_gates():
    X, y = datasets.logic_gate("xor")
    assert X.shape == (4, 2) and X.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    np.testing.assert_array_equal(datasets.logic_gate("AND")[1], [0, 0, 0, 1])
    np.testing.assert_array_equal(datasets.logic_gate("OR")[1], [0, 1, 1, 1])
    # the labels really are the gates applied to the rows
    np.testing.assert_array_equal(datasets.logic_gate("XOR")[1], np.logical_xor(X[:, 0], X[:, 1]))
    with pytest.raises(ValueError, match=r"unknown gate 'NOR'; expected one of"):
        datasets.logic_gate("nor")


def test_moons_and_circles_are_seeded():
    a, b = datasets.make_moons(50, seed=1), datasets.make_moons(50, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], datasets.make_moons(50, seed=2)[0])
    Xc, yc = datasets.make_circles(200, noise=0.0, factor=0.5, seed=0)
    r = np.linalg.norm(Xc, axis=1)
    np.testing.assert_allclose(r[yc == 1], 0.5, atol=1e-6)  # inner circle is class 1
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\), got 1.5"):
        datasets.make_circles(factor=1.5)
    with pytest.raises(ValueError, match=r"noise must be in \[0, inf\), got -0.1"):
        datasets.make_moons(noise=-0.1)


def test_labelers_on_hand_picked_points():
    pts = np.array([[0.0, 0.0], [-30.0, 0.0], [0.0, -45.0], [30.0, 30.0]])
    np.testing.assert_array_equal(datasets.triangle_labels(pts), [1, 0, 0, 0])
    # gaussian boundary x1 < 50 exp(-x0^2/50): at x0=0 the bump is at 50
    np.testing.assert_array_equal(datasets.gaussian_labels(np.array([[0.0, 49.0], [0.0, 51.0], [20.0, 1.0]])), [1, 0, 0])
    # sinusoid: sgn(x0+x1) sgn(x0) cos(|x|/2pi) > 0
    p = np.array([[1.0, 1.0], [-1.0, 2.0], [20.0, 0.0]])
    expected = [1, 0, int(np.cos(20 / (2 * np.pi)) > 0)]
    np.testing.assert_array_equal(datasets.sinusoid_labels(p), expected)
    with pytest.raises(ValueError, match=r"X must have 2 columns"):
        datasets.triangle_labels(np.zeros((3, 3)))


@pytest.mark.parametrize("name", sorted(datasets.LABELERS))
def test_make_synthetic(name):
    X, y = datasets.make_synthetic(name, 2000, seed=0)
    assert X.shape == (2000, 2) and X.dtype == np.float32 and np.abs(X).max() <= 50
    np.testing.assert_array_equal(y, datasets.LABELERS[name](X))
    assert 0.1 < y.mean() < 0.9  # both classes present in fair numbers
    with pytest.raises(ValueError, match=r"unknown labeler 'circle'"):
        datasets.make_synthetic("circle")


def test_split_keeps_X_and_y_aligned():
    X = np.arange(300, dtype=np.float32).reshape(100, 3)
    y = (np.arange(100) % 2).astype(int)
    (a, ya), (b, yb), (c, yc) = train_val_test_split(X, y, val_size=0.2, test_size=0.2, seed=3)
    assert (len(a), len(b), len(c)) == (60, 20, 20)
    for part, labels in ((a, ya), (b, yb), (c, yc)):
        np.testing.assert_array_equal(labels, (part[:, 0] / 3).astype(int) % 2)  # row i still has label i % 2
    ids = np.concatenate([a[:, 0], b[:, 0], c[:, 0]])
    assert len(np.unique(ids)) == 100  # disjoint and complete
    assert ya.mean() == pytest.approx(0.5) and yc.mean() == pytest.approx(0.5)  # stratified


@pytest.mark.parametrize("kwargs, message", [
    ({"test_size": 0.0}, r"test_size must be in \(0, 1\), got 0.0"),
    ({"val_size": 0.5, "test_size": 0.5}, r"val_size \+ test_size must be < 1, got 0.5 \+ 0.5"),
])
def test_split_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_val_test_split(np.zeros((10, 2)), np.zeros(10), **kwargs)
    with pytest.raises(ValueError, match="X and y must have the same number of samples, got 10 and 9"):
        train_val_test_split(np.zeros((10, 2)), np.zeros(9))


# -- IDX and Fashion-MNIST ---------------------------------------------------------------------
def write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def make_fixture(folder, n_train=5, n_test=3):
    rng = np.random.default_rng(0)
    data = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in data.items():
        write_idx(folder / name, arr)
    return data


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Hide the Debian copy and the Keras cache, and make Keras' download fail (no internet)."""
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    monkeypatch.delenv("NNLAB_DATA", raising=False)

    def offline():
        raise OSError("URL fetch failure: network unreachable")
    monkeypatch.setattr(datasets, "_keras_download", offline)


def test_read_idx_round_trip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)


def test_read_idx_rejects_garbage(tmp_path):
    (tmp_path / "bad").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match=r"is not an IDX file \(expected magic bytes"):
        read_idx(tmp_path / "bad")
    arr = np.zeros((2, 2), np.uint8)
    write_idx(tmp_path / "short.gz", arr)
    raw = gzip.open(tmp_path / "short.gz").read()[:-1]
    with gzip.open(tmp_path / "short.gz", "wb") as fh:
        fh.write(raw)
    with pytest.raises(ValueError, match=r"header says shape \(2, 2\) \(4 bytes of data\), but the file holds 3"):
        read_idx(tmp_path / "short.gz")


def test_loader_prefers_nnlab_data(no_system_data, monkeypatch, tmp_path):
    data = make_fixture(tmp_path / "mine")
    monkeypatch.setenv("NNLAB_DATA", str(tmp_path / "mine"))
    (x_tr, y_tr), (x_te, y_te) = load_fashion_mnist()
    np.testing.assert_array_equal(x_tr, data["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_te, data["t10k-labels-idx1-ubyte.gz"])
    assert x_tr.shape == (5, 28, 28) and x_te.shape == (3, 28, 28) and y_tr.dtype == np.uint8


def test_loader_falls_back_to_debian_then_keras_cache(no_system_data, monkeypatch, tmp_path):
    keras_dir = tmp_path / "no-keras" / "datasets" / "fashion-mnist"
    make_fixture(keras_dir, n_train=4)
    assert load_fashion_mnist()[0][0].shape == (4, 28, 28)  # from the Keras cache
    make_fixture(tmp_path / "no-debian", n_train=6)
    assert load_fashion_mnist()[0][0].shape == (6, 28, 28)  # Debian's copy wins over the cache


def test_loader_uses_keras_download_last(no_system_data, monkeypatch, tmp_path):
    target = tmp_path / "downloaded"
    make_fixture(target, n_train=7)
    monkeypatch.setattr(datasets, "_keras_download", lambda: target)
    assert load_fashion_mnist()[0][0].shape == (7, 28, 28)


def test_loader_error_names_every_way_to_get_the_data(no_system_data):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist()
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "NNLAB_DATA" in msg
    assert "keras.datasets.fashion_mnist.load_data()" in msg
    assert "URL fetch failure" in msg  # why the download did not help


def test_loader_reports_partial_folder(no_system_data, monkeypatch, tmp_path):
    make_fixture(tmp_path / "partial")
    (tmp_path / "partial" / FASHION_MNIST_FILES[0]).unlink()
    with pytest.raises(FileNotFoundError, match="download disabled"):
        load_fashion_mnist(data_dir=tmp_path / "partial")


@pytest.mark.skipif(not datasets.DEBIAN_FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    (x_tr, y_tr), (x_te, y_te) = load_fashion_mnist(data_dir=datasets.DEBIAN_FASHION_MNIST_DIR)
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_tr), [6000] * 10)  # balanced, as published
    np.testing.assert_array_equal(np.bincount(y_te), [1000] * 10)
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
