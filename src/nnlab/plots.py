"""Plots used across chapters: decision boundaries (static and animated) and training curves.

Imported explicitly (``from nnlab import plots``) so that ``import nnlab`` does not load
matplotlib.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._validation import check_array, check_same_length


def decision_grid(X, *, resolution=200, margin=0.5):
    """A regular grid covering the 2-D data with a margin.

    Returns
    -------
    xx, yy : ndarrays of shape (resolution, resolution)
    points : ndarray of shape (resolution**2, 2), float32, the grid as samples
    """
    X = check_array(X, "X", ndim=2, n_cols=2)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()].astype(np.float32)


def _class1_probability(proba, n_points):
    """Accept (n,), (n, 1) or (n, 2) outputs of a predict_proba-like callable."""
    p = np.asarray(proba)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    p = p.reshape(-1)
    if p.size != n_points:
        raise ValueError(f"predict_proba returned {p.size} values for {n_points} grid points; expected "
                         "P[class 1] per point, shape (n,), (n, 1) or (n, 2)")
    return p


def _scatter(ax, X, y):
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=12, edgecolors="k", linewidths=0.3)
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")


def plot_decision_boundary(predict_proba, X, y, *, ax=None, resolution=200, margin=0.5, title=None):
    """Shade P[class 1] of a binary classifier over the plane and draw the 0.5 contour.

    Parameters
    ----------
    predict_proba : callable
        Maps an array of shape (n, 2) to probabilities, shape (n,), (n, 1) or (n, 2)
        (an nnlab network's ``predict_proba``, scikit-learn's, or ``keras_model.predict``).
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,)
    """
    X = check_array(X, "X", ndim=2, n_cols=2)
    y = check_array(y, "y", ndim=1)
    check_same_length(X, y, "X", "y")
    xx, yy, points = decision_grid(X, resolution=resolution, margin=margin)
    p = _class1_probability(predict_proba(points), len(points)).reshape(xx.shape)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.6)
    ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1.5)
    _scatter(ax, X, y)
    if title:
        ax.set_title(title)
    return ax


def animate_decision_boundary(frames, X, y, *, resolution, margin=0.5, titles=None, interval=200):
    """Animate a sequence of decision boundaries, e.g. one per training epoch.

    Parameters
    ----------
    frames : list of ndarray of shape (resolution**2,)
        P[class 1] on ``decision_grid(X, resolution=resolution, margin=margin)`` per frame.
    X, y : the data drawn on top.
    titles : list of str, optional

    Returns
    -------
    matplotlib.animation.FuncAnimation; in a notebook show it with ``HTML(anim.to_jshtml())``.
    """
    from matplotlib.animation import FuncAnimation

    X = check_array(X, "X", ndim=2, n_cols=2)
    xx, yy, _ = decision_grid(X, resolution=resolution, margin=margin)
    if not frames:
        raise ValueError("frames must hold at least one grid of probabilities")
    fig, ax = plt.subplots(figsize=(5, 4))

    def draw(i):
        ax.clear()
        p = _class1_probability(frames[i], xx.size).reshape(xx.shape)
        ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.6)
        ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=1.5)
        _scatter(ax, X, y)
        if titles:
            ax.set_title(titles[i])
        return ()

    anim = FuncAnimation(fig, draw, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)
    return anim


def _check_confusion_matrix(cm, class_names):
    """``cm`` as a square integer array with one row per class name, or ``ValueError``."""
    cm = check_array(cm, "cm", ndim=2, dtype_kind="iu")
    if cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"cm must be square with one row per class name ({len(class_names)}), got shape {cm.shape}")
    return cm


def plot_confusion_matrix(cm, class_names, *, ax=None, title=None):
    """Confusion matrix as an annotated heatmap: rows are true classes, columns predictions.

    Parameters
    ----------
    cm : ndarray of shape (n_classes, n_classes)
        Counts, e.g. ``sklearn.metrics.confusion_matrix(y_true, y_pred)``.
    class_names : sequence of str of length n_classes
    """
    import seaborn as sns

    cm = _check_confusion_matrix(cm, class_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 6.2))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar_kws={"label": "test images"},
                xticklabels=class_names, yticklabels=class_names, ax=ax)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    return ax


def most_confused_pairs(cm, class_names, k=4):
    """The ``k`` pairs of classes with the most errors in either direction, largest first.

    Returns a list of dicts with keys ``pair`` ("A / B"), ``errors`` (``cm[i, j] + cm[j, i]``),
    ``i taken for j`` and ``j taken for i``, ready for ``pandas.DataFrame``.
    """
    cm = _check_confusion_matrix(cm, class_names)
    n = cm.shape[0]
    pairs = sorted(((int(cm[i, j] + cm[j, i]), i, j) for i in range(n) for j in range(i + 1, n)),
                   key=lambda t: (-t[0], t[1], t[2]))
    return [{"pair": f"{class_names[i]} / {class_names[j]}", "errors": errors,
             "i taken for j": int(cm[i, j]), "j taken for i": int(cm[j, i])} for errors, i, j in pairs[:k]]


def animation_html(anim, *, frame_format="jpeg"):
    """HTML of an animation for a notebook or the book: ``HTML(animation_html(anim))``.

    Frames are embedded as JPEG by default (several times lighter than PNG for shaded plots).
    Matplotlib's player links Font Awesome 4 from a CDN for its buttons; that link is dropped,
    because the book's theme ships Font Awesome itself and a page should not depend on a CDN
    (it fails offline and in the site test).
    """
    import re

    with plt.rc_context({"animation.frame_format": frame_format}):
        html = anim.to_jshtml()
    return re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">\s*', "", html)


def plot_history(history, *, metrics=("loss", "accuracy"), axes=None, label=None):
    """Training curves from an nnlab ``fit`` history or ``keras_model.fit(...).history``.

    One panel per metric; validation curves (``val_<metric>``) dashed where present.
    """
    metrics = [m for m in metrics if m in history]
    if not metrics:
        raise ValueError(f"history has none of the metrics asked for; it has {sorted(history)}")
    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
        axes = axes[0]
    prefix = f"{label} " if label else ""
    for ax, metric in zip(axes, metrics):
        epochs = np.arange(1, len(history[metric]) + 1)
        line, = ax.plot(epochs, history[metric], label=f"{prefix}train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "--", color=line.get_color(), label=f"{prefix}validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    return axes
