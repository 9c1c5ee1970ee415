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


def _boundary_vertices(ax):
    from matplotlib.contour import ContourSet
    (line,) = [c for c in ax.collections if isinstance(c, ContourSet) and list(c.levels) == [0.5]]
    return np.concatenate([p.vertices for p in line.get_paths()])


@pytest.mark.parametrize("shape", ["(n,)", "(n, 1)", "(n, 2)"])
def test_decision_boundary_reads_class_1_from_every_common_output_shape(shape):
    # P[class 1] = 0.8 where x0 > 0.3, else 0: the 0.5 line sits at x0 = 0.3, and the shading holds
    # the bands [0, 0.1) and around 0.8 but nothing near 1, so a version that read P[class 0] from an
    # (n, 2) output (values 1 and 0.2) or mis-reshaped an (n, 1) one fails
    def proba(P):
        p1 = np.where(P[:, 0] > 0.3, 0.8, 0.0)
        return {"(n,)": p1, "(n, 1)": p1[:, None], "(n, 2)": np.c_[1 - p1, p1]}[shape]
    ax = plots.plot_decision_boundary(proba, X, y, resolution=40)
    vertices = _boundary_vertices(ax)
    step = np.ptp(plots.decision_grid(X, resolution=40)[0]) / 39
    assert np.all(np.abs(vertices[:, 0] - 0.3) <= step), (
        f"{shape}: the 0.5 contour spans x0 in [{vertices[:, 0].min():.2f}, {vertices[:, 0].max():.2f}], expected 0.3")
    from matplotlib.contour import ContourSet
    (filled,) = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
    bands = [i for i, path in enumerate(filled.get_paths()) if len(path.vertices)]
    assert 0 in bands and 9 not in bands and set(bands) & {7, 8}, (
        f"{shape}: shaded bands {bands} (band i is P in [i/10, (i+1)/10]); expected 0 and 7 or 8, never 9")


def test_decision_boundary_rejects_wrong_output():
    with pytest.raises(ValueError, match=r"predict_proba returned 3 values for 400 grid points"):
        plots.plot_decision_boundary(lambda P: np.zeros(3), X, y, resolution=20)


def test_animation_draws_each_snapshot_in_order():
    # three snapshots whose boundaries sit at x0 = -0.5, 0.3, 1.2: frame i must draw snapshot i
    _, _, pts = plots.decision_grid(X, resolution=30)
    cuts = [-0.5, 0.3, 1.2]
    frames = [(pts[:, 0] > c).astype(float) for c in cuts]
    anim = plots.animate_decision_boundary(frames, X, y, resolution=30, titles=["a", "b", "c"])
    assert len(list(anim.new_frame_seq())) == 3, "one frame per snapshot"
    ax = anim._fig.axes[0]
    step = np.ptp(pts[:, 0]) / 29
    for i, (cut, title) in enumerate(zip(cuts, "abc")):
        anim._func(i)
        vertices = _boundary_vertices(ax)
        assert np.all(np.abs(vertices[:, 0] - cut) <= step), (
            f"frame {i}: boundary at x0 in [{vertices[:, 0].min():.2f}, {vertices[:, 0].max():.2f}], expected {cut}")
        assert ax.get_title() == title, f"frame {i}: title {ax.get_title()!r}, expected {title!r}"
    fresh = plots.animate_decision_boundary(frames, X, y, resolution=30)  # to_jshtml caches its first result
    page = plots.animation_html(fresh)
    assert page.count("data:image/jpeg") == 3, "the HTML page must embed one image per frame"
    assert "font-awesome" not in page and "https://" not in page
    with pytest.raises(ValueError, match="at least one grid"):
        plots.animate_decision_boundary([], X, y, resolution=30)


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
