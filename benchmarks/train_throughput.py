"""Training throughput: nnlab's NumPy MLP vs Keras vs scikit-learn on Fashion-MNIST.

Network 784-300-200-10, ReLU, softmax cross-entropy, plain SGD (no momentum), float32,
batch sizes 32 and 128. Each framework trains ``--epochs`` epochs (default 1) on the 60,000
training images; the table reports seconds per epoch, measured in this one run. The bound is
what the epoch's matrix products alone would take at the float32 GFLOP/s that NumPy's BLAS
reaches on this machine (measured here on the same shapes).

    .venv/bin/python benchmarks/train_throughput.py [--epochs 1] [--frameworks nnlab,keras,sklearn]
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


def flops_per_epoch(n_samples):
    """Multiply-adds x 2 of one epoch: forward X@W, backward X.T@dZ and dZ@W.T per layer."""
    per_sample = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return 3 * 2 * n_samples * per_sample


def matmul_gflops(batch, repeats=30):
    """float32 GFLOP/s of the epoch's own matrix products at this batch size."""
    rng = np.random.default_rng(0)
    shapes = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        x, w, dz = (rng.standard_normal(s).astype(np.float32) for s in ((batch, a), (a, b), (batch, b)))
        shapes.append((x, w, dz))
    for x, w, dz in shapes:  # warm up
        x @ w, x.T @ dz, dz @ w.T
    t0 = time.perf_counter()
    for _ in range(repeats):
        for x, w, dz in shapes:
            x @ w
            x.T @ dz
            dz @ w.T
    elapsed = time.perf_counter() - t0
    flops = repeats * 3 * 2 * batch * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    return flops / elapsed / 1e9


def time_nnlab(X, y, batch, epochs):
    from nnlab.network import MLP
    from nnlab.optim import SGD
    net = MLP(SIZES, activation="relu", loss="sparse_categorical_crossentropy", rng=0)
    t0 = time.perf_counter()
    net.fit(X, y, epochs=epochs, batch_size=batch, optimizer=SGD(0.01), rng=0, progress=False)
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
    model.fit(X[:batch * 4], y[:batch * 4], batch_size=batch, epochs=1, verbose=0)  # build and trace
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
    parser.add_argument("--frameworks", default="nnlab,keras,sklearn")
    args = parser.parse_args()
    X, y = load()
    timers = {"nnlab": time_nnlab, "keras": time_keras, "sklearn": time_sklearn}
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
        bound = flops_per_epoch(len(X)) / (gflops * 1e9)
        ratio = seconds["nnlab"] / seconds["keras"] if {"nnlab", "keras"} <= set(seconds) else float("nan")
        eff = bound / seconds["nnlab"] if "nnlab" in seconds else float("nan")
        print(f"{batch:>5} | " + " | ".join(f"{seconds[f]:>15.2f}" for f in frameworks) +
              f" | {bound:>13.2f} | {gflops:>7.1f} | {ratio:>11.2f} | {eff:>11.0%}")


if __name__ == "__main__":
    main()
