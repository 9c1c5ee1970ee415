"""Training throughput: nnlab's NumPy MLP vs Keras vs scikit-learn on Fashion-MNIST.

Network 784-300-200-10, ReLU, softmax cross-entropy, plain SGD (no momentum), float32,
batch sizes 32 and 128. Each framework trains ``--epochs`` epochs (default 1) on the 60,000
training images; the table reports seconds per epoch, measured in this one run. ``numpy`` is
the same training written as a single loop without nnlab's layers (what the design costs);
``products`` runs only that loop's matrix products (what the elementwise steps cost).
The bound is what the epoch's matrix products alone would take at the float32 GFLOP/s that
NumPy's BLAS reaches on this machine (measured here on the same shapes, data in cache).

    .venv/bin/python benchmarks/train_throughput.py [--epochs 1] [--frameworks nnlab,numpy,products,keras,sklearn]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

SIZES = [784, 300, 200, 10]


def load():
    from nnlab.datasets import load_fashion_mnist
    (x, y), _ = load_fashion_mnist()
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32), y.astype(np.int64)


def products(batch):
    """The matrix products one training step needs, as (left shape, right shape) pairs.

    Per layer ``a -> b``: forward ``X @ W`` (batch x a)(a x b), kernel gradient ``X.T @ dZ``
    (a x batch)(batch x b) and input gradient ``dZ @ W.T`` (batch x b)(b x a), except for the
    first layer, whose input is the data: neither Keras nor nnlab computes a gradient for it.
    """
    out = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        out += [((batch, a), (a, b)), ((a, batch), (batch, b))]
        if i > 0:
            out.append(((batch, b), (b, a)))
    return out


def flops_per_epoch(n_samples, batch):
    """2 x multiply-adds of one epoch's matrix products (see :func:`products`)."""
    steps = n_samples / batch
    return steps * sum(2 * l[0] * l[1] * r[1] for l, r in products(batch))


def matmul_gflops(batch, repeats=30):
    """float32 GFLOP/s that NumPy's BLAS reaches on one step's own matrix products."""
    rng = np.random.default_rng(0)
    pairs = [(rng.standard_normal(l).astype(np.float32), rng.standard_normal(r).astype(np.float32))
             for l, r in products(batch)]
    for left, right in pairs:  # warm up
        left @ right
    t0 = time.perf_counter()
    for _ in range(repeats):
        for left, right in pairs:
            left @ right
    elapsed = time.perf_counter() - t0
    return repeats * flops_per_epoch(batch, batch) / elapsed / 1e9


def time_nnlab(X, y, batch, epochs):
    from nnlab.network import MLP
    from nnlab.optim import SGD
    net = MLP(SIZES, activation="relu", loss="sparse_categorical_crossentropy", rng=0)
    t0 = time.perf_counter()
    net.fit(X, y, epochs=epochs, batch_size=batch, optimizer=SGD(0.01), rng=0, progress=False)
    return (time.perf_counter() - t0) / epochs


def time_numpy(X, y, batch, epochs):
    """The same training written as one NumPy loop: no layers, no checks, in-place where possible.

    A reference for what nnlab's layer objects and input checks cost; both leave the elementwise
    passes (bias, ReLU, softmax, the SGD update) to NumPy, one pass each.
    """
    rng = np.random.default_rng(0)
    kernels = [(rng.uniform(-1, 1, (a, b)) * np.sqrt(6 / (a + b))).astype(np.float32)
               for a, b in zip(SIZES[:-1], SIZES[1:])]
    biases = [np.zeros(b, np.float32) for b in SIZES[1:]]
    lr = np.float32(0.01)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch):
            idx = order[start:start + batch]
            acts, n = [X[idx]], len(idx)
            for i, (w, b) in enumerate(zip(kernels, biases)):
                z = acts[-1] @ w
                z += b
                if i < len(kernels) - 1:
                    np.maximum(z, 0, out=z)
                acts.append(z)
            p = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(n), y[idx]] -= 1
            delta = p / n
            for i in range(len(kernels) - 1, -1, -1):
                grad_w, grad_b = acts[i].T @ delta, delta.sum(axis=0)
                if i > 0:
                    delta = delta @ kernels[i].T
                    delta *= acts[i] > 0
                kernels[i] -= lr * grad_w
                biases[i] -= lr * grad_b
    return (time.perf_counter() - t0) / epochs


def time_products(X, y, batch, epochs):
    """Only the matrix products of :func:`products`, on freshly gathered shuffled batches.

    What an epoch would cost if every elementwise step (bias, ReLU, softmax, update) were free.
    """
    rng = np.random.default_rng(0)
    kernels = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(SIZES[:-1], SIZES[1:])]
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch):
            acts = [X[order[start:start + batch]]]
            for w in kernels:
                acts.append(acts[-1] @ w)
            delta = acts[-1]
            for i in range(len(kernels) - 1, -1, -1):
                acts[i].T @ delta
                if i > 0:
                    delta = delta @ kernels[i].T
    return (time.perf_counter() - t0) / epochs


def time_keras(X, y, batch, epochs):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,))] +
                             [keras.layers.Dense(n, activation="relu") for n in SIZES[1:-1]] +
                             [keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # build and trace, for full batches and for the epoch's last, shorter one (a new shape is a new trace)
    warm = batch * 4 + len(X) % batch
    model.fit(X[:warm], y[:warm], batch_size=batch, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(X, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    return (time.perf_counter() - t0) / epochs


def time_sklearn(X, y, batch, epochs):
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=tuple(SIZES[1:-1]), activation="relu", solver="sgd",
                        momentum=0.0, nesterovs_momentum=False, learning_rate_init=0.01, batch_size=batch,
                        max_iter=epochs, shuffle=True, random_state=0, tol=0, n_iter_no_change=epochs + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X, y)
    return (time.perf_counter() - t0) / epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batches", default="32,128")
    parser.add_argument("--frameworks", default="nnlab,numpy,products,keras,sklearn")
    args = parser.parse_args()
    X, y = load()
    timers = {"nnlab": time_nnlab, "numpy": time_numpy, "products": time_products, "keras": time_keras,
              "sklearn": time_sklearn}
    frameworks = args.frameworks.split(",")
    print(f"Fashion-MNIST {X.shape[0]} x {X.shape[1]}, MLP {'-'.join(map(str, SIZES))} relu, plain SGD, "
          f"float32, {args.epochs} epoch(s), {os.cpu_count()} cores")
    header = f"{'batch':>5} | " + " | ".join(f"{f + ' s/epoch':>15}" for f in frameworks) + \
        f" | {'bound s/epoch':>13} | {'GFLOP/s':>7} | nnlab/keras | bound/nnlab"
    print(header)
    print("-" * len(header))
    for batch in map(int, args.batches.split(",")):
        seconds = {f: timers[f](X, y, batch, args.epochs) for f in frameworks}
        gflops = matmul_gflops(batch)
        bound = flops_per_epoch(len(X), batch) / (gflops * 1e9)
        ratio = seconds["nnlab"] / seconds["keras"] if {"nnlab", "keras"} <= set(seconds) else float("nan")
        eff = bound / seconds["nnlab"] if "nnlab" in seconds else float("nan")
        print(f"{batch:>5} | " + " | ".join(f"{seconds[f]:>15.2f}" for f in frameworks) +
              f" | {bound:>13.2f} | {gflops:>7.1f} | {ratio:>11.2f} | {eff:>11.0%}")


if __name__ == "__main__":
    main()
