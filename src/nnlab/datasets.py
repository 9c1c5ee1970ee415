"""Data for the course: logic gates, scikit-learn's 2-D toys, the synthetic 2-D labelers, an
aligned train/validation/test split, and Fashion-MNIST from local files.

Everything random takes a seed or a ``np.random.Generator``; features come back as float32
``(n_samples, n_features)`` and labels as int64 ``(n_samples,)``.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from ._validation import check_array, check_choice, check_number, check_rng, check_same_length

# ---------------------------------------------------------------------------------------------
# Logic gates
# ---------------------------------------------------------------------------------------------
_GATES = {
    "AND": np.array([0, 0, 0, 1]),
    "OR": np.array([0, 1, 1, 1]),
    "XOR": np.array([0, 1, 1, 0]),
    "NAND": np.array([1, 1, 1, 0]),
}


def logic_gate(name):
    """The truth table of a two-input gate as data.

    Returns
    -------
    X : ndarray of shape (4, 2), float32
        The design matrix: rows (0, 0), (0, 1), (1, 0), (1, 1).
    y : ndarray of shape (4,), int64
        The gate's output for each row.
    """
    key = check_choice(str(name).upper(), "gate", _GATES)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return X, _GATES[key].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# scikit-learn's 2-D toys, seeded
# ---------------------------------------------------------------------------------------------
def make_moons(n_samples=1000, *, noise=0.2, seed=0):
    """Two interleaving half circles (``sklearn.datasets.make_moons``), float32 X, int64 y."""
    from sklearn.datasets import make_moons as _make_moons

    check_number(n_samples, "n_samples", low=2, integer=True)
    check_number(noise, "noise", low=0)
    X, y = _make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return X.astype(np.float32), y.astype(np.int64)


def make_circles(n_samples=1000, *, noise=0.1, factor=0.5, seed=0):
    """A small circle inside a large one (``sklearn.datasets.make_circles``)."""
    from sklearn.datasets import make_circles as _make_circles

    check_number(n_samples, "n_samples", low=2, integer=True)
    check_number(noise, "noise", low=0)
    check_number(factor, "factor", low=0, high=1, low_inclusive=False)
    X, y = _make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed)
    return X.astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# The synthetic 2-D study: points uniform in a box, labelled by a non-linear rule
# ---------------------------------------------------------------------------------------------
def _check_points(X):
    return check_array(X, "X", ndim=2, n_cols=2)


def triangle_labels(X):
    """1 inside the triangle ``x0 > -20, x1 > -40, x0 + x1 < 40``, else 0."""
    X = _check_points(X)
    x0, x1 = X[:, 0], X[:, 1]
    return ((x0 > -20) & (x1 > -40) & (x0 + x1 < 40)).astype(np.int64)


def sinusoid_labels(X):
    """1 where ``sgn(x0 + x1) * sgn(x0) * cos(||x|| / (2 pi)) > 0``: concentric ring clusters."""
    X = _check_points(X)
    r = np.linalg.norm(X, axis=1)
    return (np.sign(X.sum(axis=1)) * np.sign(X[:, 0]) * np.cos(r / (2 * np.pi)) > 0).astype(np.int64)


def gaussian_labels(X):
    """1 below the Gaussian bump ``x1 < 50 exp(-x0**2 / 50)``, else 0."""
    X = _check_points(X)
    return (X[:, 1] < 50 * np.exp(-X[:, 0] ** 2 / 50)).astype(np.int64)


#: name -> labeler, the three non-linear rules of the synthetic study
LABELERS = {"triangle": triangle_labels, "sinusoid": sinusoid_labels, "gaussian": gaussian_labels}


def make_synthetic(labeler="triangle", n_samples=4000, *, box=50.0, seed=0):
    """Points uniform in ``[-box, box]**2`` labelled by one of :data:`LABELERS`.

    Returns float32 ``X`` of shape (n_samples, 2) and int64 ``y`` of shape (n_samples,).
    """
    check_choice(labeler, "labeler", LABELERS)
    check_number(n_samples, "n_samples", low=1, integer=True)
    check_number(box, "box", low=0, low_inclusive=False)
    rng = check_rng(seed, "seed")
    X = rng.uniform(-box, box, size=(n_samples, 2))
    return X.astype(np.float32), LABELERS[labeler](X)


# ---------------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------------
def train_val_test_split(X, y, *, val_size=0.2, test_size=0.2, seed=0, stratify=True):
    """Split into train, validation and test sets with ONE permutation for X and y.

    Shuffling ``X`` and ``y`` with two different permutations destroys the pairing of each
    sample with its label (accuracy falls to chance); here both are indexed by the same indices
    (scikit-learn's ``train_test_split``, applied twice).

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples,)
    val_size, test_size : float
        Fractions of the whole data set, each in (0, 1), summing to less than 1.
        ``val_size=0`` returns empty validation arrays.
    stratify : bool
        Keep the class proportions in every part.

    Returns
    -------
    (X_train, y_train), (X_val, y_val), (X_test, y_test)
    """
    from sklearn.model_selection import train_test_split

    X = check_array(X, "X", ndim=(2, 3, 4))
    y = check_array(y, "y", ndim=1)
    check_same_length(X, y, "X", "y")
    check_number(test_size, "test_size", low=0, high=1, low_inclusive=False)
    check_number(val_size, "val_size", low=0, high=1)
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size must be < 1, got {val_size} + {test_size}")
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None)
    if val_size == 0:
        return (X_rest, y_rest), (X_rest[:0], y_rest[:0]), (X_test, y_test)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1 - test_size), random_state=seed + 1,
        stratify=y_rest if stratify else None)
    return (X_train, y_train), (X_val, y_val), (X_test, y_test)


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST
# ---------------------------------------------------------------------------------------------
#: the ten Fashion-MNIST classes, in label order (Xiao et al., 2017)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: the four original files, in Keras' order
FASHION_MNIST_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                       "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
#: where Debian's package ``dataset-fashion-mnist`` installs them
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """Read one IDX file (plain or ``.gz``), the format of MNIST and Fashion-MNIST.

    The header is two zero bytes, a dtype code, the number of dimensions ``d``, then ``d``
    big-endian uint32 sizes; the data follow. Raises ``ValueError`` on a malformed file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (expected magic bytes 00 00 <dtype> <ndim>, "
                         f"got {data[:4].hex(' ')})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes of data), "
                         f"but the file holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def keras_cache_dir():
    """Keras' cache folder for Fashion-MNIST: ``$KERAS_HOME/datasets/fashion-mnist``
    (``KERAS_HOME`` defaults to ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "datasets" / "fashion-mnist"


def _fashion_mnist_candidates():
    """Folders to search, in order, with a label for messages."""
    found = []
    if os.environ.get("NNLAB_DATA"):
        found.append(("$NNLAB_DATA", Path(os.environ["NNLAB_DATA"])))
    found.append(("Debian package dataset-fashion-mnist", DEBIAN_FASHION_MNIST_DIR))
    found.append(("Keras cache", keras_cache_dir()))
    return found


def _keras_download():  # pragma: no cover - needs the internet
    """Keras' own download into its cache (imports TensorFlow/Keras, about 8 s)."""
    import keras

    keras.datasets.fashion_mnist.load_data()
    return keras_cache_dir()


def load_fashion_mnist(*, data_dir=None, download=True):
    """Load Fashion-MNIST as Keras does: ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 of shape (n, 28, 28), labels uint8 of shape (n,); 60,000 training and
    10,000 test images. The four original ``.gz`` IDX files are searched for in order:

    1. ``data_dir`` if given, else ``$NNLAB_DATA`` if set;
    2. ``/usr/share/datasets/fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``);
    3. Keras' cache, ``~/.keras/datasets/fashion-mnist`` (or under ``$KERAS_HOME``);
    4. if ``download`` is true, Keras' own download into that cache (needs the internet).

    Raises
    ------
    FileNotFoundError
        If no folder holds all four files and the download is off or fails; the message names
        every way to get the data.
    ValueError
        If a file is found but is not a valid IDX file of the right size.
    """
    candidates = [("data_dir", Path(data_dir))] if data_dir is not None else _fashion_mnist_candidates()
    for _, folder in candidates:
        if all((folder / name).is_file() for name in FASHION_MNIST_FILES):
            return _read_fashion_mnist(folder)
    searched = ", ".join(f"{label} ({folder})" for label, folder in candidates)
    problem = "download disabled"
    if download and data_dir is None:
        try:
            return _read_fashion_mnist(_keras_download())
        except Exception as exc:  # no internet, no keras, ...
            problem = f"Keras' download failed: {type(exc).__name__}: {exc}"
    raise FileNotFoundError(
        "Fashion-MNIST not found. Searched: " + searched + f"; {problem}.\n"
        "Get the data in one of three ways:\n"
        "  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
        f"(installs the four .gz files into {DEBIAN_FASHION_MNIST_DIR});\n"
        "  2. put the four files " + ", ".join(FASHION_MNIST_FILES) +
        " in a folder and set NNLAB_DATA to it (or pass data_dir=);\n"
        "  3. with internet access, run python -c \"import keras; keras.datasets.fashion_mnist.load_data()\" "
        f"once, which caches them in {keras_cache_dir()}.")


def _read_fashion_mnist(folder):
    folder = Path(folder)
    y_train, x_train, y_test, x_test = (read_idx(folder / name) for name in FASHION_MNIST_FILES)
    for images, labels, part in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{folder}: {part} files do not hold 28x28 images with one label each "
                             f"(images {images.shape}, labels {labels.shape})")
    return (x_train, y_train), (x_test, y_test)


# ---------------------------------------------------------------------------------------------
# Noise augmentation
# ---------------------------------------------------------------------------------------------
def augment_with_noise(X, y, fraction, sigma, rng):
    """Append noisy copies of randomly chosen samples, keeping their labels.

    ``round(fraction * n_samples)`` distinct samples are drawn without replacement; each copy is
    shifted by Gaussian noise ``N(0, sigma**2)`` on every feature, in the units of ``X`` (so
    augment before standardizing). The originals come first, unchanged, then the copies.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    fraction : float in [0, 1]
        Number of extra samples as a fraction of ``n_samples`` (0.1 adds 10 %).
    sigma : float >= 0
        Standard deviation of the shift.
    rng : np.random.Generator or int

    Returns
    -------
    X_aug : ndarray of shape (n_samples + n_extra, n_features), dtype of ``X``
    y_aug : ndarray of shape (n_samples + n_extra,), dtype of ``y``
    """
    X = check_array(X, "X", ndim=2)
    y = check_array(y, "y", ndim=1)
    check_same_length(X, y, "X", "y")
    check_number(fraction, "fraction", low=0, high=1, high_inclusive=True)
    check_number(sigma, "sigma", low=0)
    rng = check_rng(rng)
    n_extra = int(round(fraction * len(X)))
    idx = rng.choice(len(X), size=n_extra, replace=False)
    shifts = rng.normal(0.0, sigma, size=(n_extra, X.shape[1]))
    X_new = (X[idx] + shifts).astype(X.dtype if X.dtype.kind == "f" else np.float32)
    return np.concatenate([X.astype(X_new.dtype), X_new]), np.concatenate([y, y[idx]])
