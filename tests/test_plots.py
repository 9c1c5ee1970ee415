import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnlab import datasets, plots  # noqa: E402
from nnlab.network import MLP  # noqa: E402

X, y = datasets.make_moons(200, noise=0.1, seed=0)


def test_decision_boundary_shades_the_callable_probabilities():
    # a known classifier: P[class 1] = 1 where x1 < 0.25
    ax = plots.plot_decision_boundary(lambda P: (P[:, 1] < 0.25).astype(float), X, y, resolution=50)
    from matplotlib.contour import ContourSet
    (line,) = [c for c in ax.collections if isinstance(c, ContourSet) and list(c.levels) == [0.5]]
    vertices = np.concatenate([p.vertices for p in line.get_paths()])
    grid_step = np.ptp(plots.decision_grid(X, resolution=50)[1]) / 49
    assert np.all(np.abs(vertices[:, 1] - 0.25) <= grid_step)  # the boundary is drawn where P crosses 0.5
    assert ax.get_xlabel() == "$x_0$"
    xx, yy, pts = plots.decision_grid(X, resolution=50)
    assert pts.shape == (2500, 2) and xx.shape == (50, 50)
    assert pts[:, 0].min() < X[:, 0].min() and pts[:, 1].max() > X[:, 1].max()


@pytest.mark.parametrize("shape", [(1,), (2,)])
def test_decision_boundary_accepts_common_output_shapes(shape):
    net = MLP([2, 4, 1], rng=0)
    def proba(P):
        p = net.predict_proba(P)
        return p if shape == (1,) else np.c_[1 - p, p]
    plots.plot_decision_boundary(proba, X, y, resolution=20)


def test_decision_boundary_rejects_wrong_output():
    with pytest.raises(ValueError, match=r"predict_proba returned 3 values for 400 grid points"):
        plots.plot_decision_boundary(lambda P: np.zeros(3), X, y, resolution=20)


def test_animation_has_one_frame_per_snapshot():
    _, _, pts = plots.decision_grid(X, resolution=20)
    frames = [np.full(len(pts), p) for p in (0.2, 0.5, 0.8)]
    anim = plots.animate_decision_boundary(frames, X, y, resolution=20, titles=["a", "b", "c"])
    html = anim.to_jshtml()
    assert html.count("frames[") >= 3 or "frames" in html
    assert anim._save_count == 3 or len(list(anim.new_frame_seq())) == 3
    fresh = plots.animate_decision_boundary(frames, X, y, resolution=20)  # to_jshtml caches its first result
    page = plots.animation_html(fresh)
    assert "data:image/jpeg" in page and "font-awesome" not in page and "https://" not in page
    with pytest.raises(ValueError, match="at least one grid"):
        plots.animate_decision_boundary([], X, y, resolution=20)


def test_history_plot():
    hist = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}
    axes = plots.plot_history(hist)
    assert len(axes) == 2
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 1  # val curve only where recorded
    with pytest.raises(ValueError, match=r"history has none of the metrics asked for; it has \['loss'\]"):
        plots.plot_history({"loss": [1.0]}, metrics=("auc",))


def test_confusion_matrix_helpers():
    cm = np.array([[5, 1, 0], [4, 6, 2], [0, 3, 9]])
    names = ["a", "b", "c"]
    ax = plots.plot_confusion_matrix(cm, names, title="t")
    assert [t.get_text() for t in ax.get_xticklabels()] == names and ax.get_ylabel() == "true class"
    pairs = plots.most_confused_pairs(cm, names, k=2)
    assert pairs == [{"pair": "a / b", "errors": 5, "i taken for j": 1, "j taken for i": 4},
                     {"pair": "b / c", "errors": 5, "i taken for j": 2, "j taken for i": 3}]
    with pytest.raises(ValueError, match=r"cm must be square with one row per class name \(2\), got shape \(3, 3\)"):
        plots.plot_confusion_matrix(cm, names[:2])
    with pytest.raises(ValueError, match=r"cm must be square with one row per class name \(3\), got shape \(3, 2\)"):
        plots.most_confused_pairs(cm[:, :2], names)
    with pytest.raises(ValueError, match=r"class name \(4\), got shape \(3, 3\)"):
        plots.most_confused_pairs(cm, names + ["d"])
