"""deltaprop.plot: every picture renders to a real image, shows the library's numbers, and refuses bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
mpl_image = pytest.importorskip("matplotlib.image")
mpl_text = pytest.importorskip("matplotlib.text")

from deltaprop import MLP, plot, trace_step  # noqa: E402
from deltaprop.backend import MissingExtraError  # noqa: E402
from deltaprop.examples import (  # noqa: E402
    ONE_WEIGHT_T,
    ONE_WEIGHT_X,
    WORKED_T,
    WORKED_X,
    one_weight_descent,
    one_weight_network,
    worked_example_network,
)
from deltaprop.train import History  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ helpers
def assert_real_image(path: Path, min_width: int = 400, min_height: int = 300) -> np.ndarray:
    """The PNG exists, is big enough, has many colours and is not mostly one colour."""
    assert path.is_file() and path.stat().st_size > 5_000
    img = mpl_image.imread(str(path))
    height, width = img.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    rgb = (np.asarray(img)[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    assert len(colours) > 20, f"only {len(colours)} distinct colours"
    assert counts.max() / counts.sum() < 0.97, "the image is nearly blank"
    return img


def texts(fig) -> str:
    """Every piece of text in the figure (titles, labels, annotations), joined."""
    found = [t.get_text() for t in fig.findobj(mpl_text.Text)]
    return "\n".join(found)


def history(n: int = 40, *, accuracy: bool = True, decades: float = 3.0, stop: str = "reached epochs=40") -> History:
    h = History()
    for epoch in range(1, n + 1):
        loss = 10 ** (-decades * (epoch - 1) / (n - 1))
        logs = {"loss": loss, "val_loss": loss * 1.2, "lr": 0.1, "time": 0.01 * epoch}
        if accuracy:
            logs["accuracy"] = min(1.0, 0.5 + epoch / n)
            logs["val_accuracy"] = min(1.0, 0.45 + epoch / n)
        h.append(epoch, logs)
    h.stop_reason = stop
    return h


def moons(n: int = 120, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (the shape of scikit-learn's make_moons), made here with numpy."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, np.pi, n // 2)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
    X = np.vstack([upper, lower]) + rng.normal(scale=noise, size=(n, 2))
    y = np.repeat([0, 1], n // 2)
    return X, y


def trained_classifier(X, y, n_outputs: int = 1, epochs: int = 300):
    """A small classifier trained with the engine's own forward/backward/step (no optimiser module needed)."""
    if n_outputs == 1:
        net = MLP([2, 8, 1], activation="tanh", output_activation="sigmoid", seed=0, dtype="float64")
        T = y.reshape(-1, 1).astype(float)
    else:
        net = MLP([2, 8, n_outputs], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0)
        T = np.eye(n_outputs)[y]
    for _ in range(epochs):
        net.forward(X)
        net.backward(T)
        net.step(0.5)
    net.classes = np.arange(max(2, n_outputs))
    return net


@pytest.fixture(scope="module")
def moons_net():
    X, y = moons()
    return trained_classifier(X, y), X, y


# ------------------------------------------------------------------------------------------------ loss_curve
def test_loss_curve_renders_loss_and_accuracy(tmp_path):
    path = tmp_path / "loss.png"
    fig = plot.loss_curve(history(), path=path)
    assert_real_image(path)
    assert len(fig.axes) == 2
    loss_ax = fig.axes[0]
    assert loss_ax.get_yscale() == "log"  # three decades
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert "training (last 0.001, min 0.001)" in labels and "validation (last 0.0012, min 0.0012)" in labels
    assert "stopped: reached epochs=40" in texts(fig)


def test_loss_curve_linear_scale_single_panel_and_dict_input(tmp_path):
    h = history(25, accuracy=False, decades=1.0, stop="")
    fig = plot.loss_curve(h.to_dict(), path=tmp_path / "loss.png")
    assert len(fig.axes) == 1
    assert fig.axes[0].get_yscale() == "linear"
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), h.loss)


def test_loss_curve_marks_restored_best_epoch_and_skips_missing_values():
    h = history(30)
    h.val_loss[3] = None
    h.best_epoch = 12
    fig = plot.loss_curve(h)
    assert "best epoch 12" in "\n".join(line.get_label() for line in fig.axes[0].get_lines())


def test_loss_curve_rejects_empty_history():
    with pytest.raises(ValueError, match="no epochs"):
        plot.loss_curve(History())
    with pytest.raises(TypeError, match="History"):
        plot.loss_curve(42)


def test_loss_curve_of_a_real_fit(tmp_path):
    pytest.importorskip("deltaprop.optim")
    X, y = moons(80)
    net = MLP([2, 6, 1], activation="tanh", output_activation="sigmoid", seed=1)
    h = net.fit(X, y, epochs=15, batch_size=16, optimizer="sgd", lr=0.5, verbose=0)
    plot.loss_curve(h, path=tmp_path / "fit.png")
    assert_real_image(tmp_path / "fit.png")


# ------------------------------------------------------------------------------------------ decision_regions
def test_decision_regions_binary(tmp_path, moons_net):
    net, X, y = moons_net
    path = tmp_path / "moons.png"
    fig = plot.decision_regions(net, X, y, path=path, resolution=80)
    img = assert_real_image(path)
    # both classes' colours fill large areas: reddish and bluish pixels are each common
    rgb = np.asarray(img)[..., :3]
    reddish = np.mean(rgb[..., 0] > rgb[..., 2] + 0.15)
    bluish = np.mean(rgb[..., 2] > rgb[..., 0] + 0.15)
    assert reddish > 0.1 and bluish > 0.1
    assert "accuracy on these 120 points" in texts(fig)


def test_decision_regions_multiclass(tmp_path):
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [1.5, 2.5]])
    y = np.repeat([0, 1, 2], 30)
    X = centres[y] + rng.normal(scale=0.5, size=(90, 2))
    net = trained_classifier(X, y, n_outputs=3, epochs=200)
    fig = plot.decision_regions(net, X, y, path=tmp_path / "blobs.png", resolution=60)
    assert_real_image(tmp_path / "blobs.png")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["class 0", "class 1", "class 2"]


def test_decision_regions_untrained_network_uses_labels_of_y(moons_net):
    _, X, y = moons_net
    net = MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    assert net.classes is None
    plot.decision_regions(net, X, y, resolution=20)


def test_decision_regions_errors(moons_net):
    net, X, y = moons_net
    three_inputs = MLP([3, 4, 1], output_activation="sigmoid", seed=0)
    with pytest.raises(ValueError, match="2 inputs; this network has 3"):
        plot.decision_regions(three_inputs, np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match=r"2-D array with 2 columns .*shape \(5, 3\)"):
        plot.decision_regions(net, np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match=r"2-D array with 2 columns .*shape \(10,\)"):
        plot.decision_regions(net, np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="one class label per row"):
        plot.decision_regions(net, X, y[:-1])
    with pytest.raises(ValueError, match="does not know"):
        plot.decision_regions(net, X, np.where(y == 1, 7, 0))
    with pytest.raises(ValueError, match="resolution"):
        plot.decision_regions(net, X, y, resolution=1)
    with pytest.raises(ValueError, match="NaN"):
        plot.decision_regions(net, np.array([[0.0, np.nan]]), [0])


# ------------------------------------------------------------------------------------ error_curve_one_weight
def test_error_curve_one_weight(tmp_path):
    path = tmp_path / "descent.png"
    fig = plot.error_curve_one_weight(path=path)
    assert_real_image(path)
    ax = fig.axes[0]
    curve = next(line for line in ax.get_lines() if line.get_label().startswith("E(W)"))
    W, E = curve.get_xdata(), curve.get_ydata()
    # the curve is the library's E(W), and it covers every step and the minimum
    for k in (0, len(W) // 3, len(W) - 1):
        assert E[k] == pytest.approx(one_weight_network(W[k]).loss(ONE_WEIGHT_X, ONE_WEIGHT_T), abs=1e-12)
    walk = one_weight_descent(3.0, 0.3, 12)
    assert W.min() < 2.0 < 3.0 < W.max()
    steps = next(line for line in ax.get_lines() if line.get_label() == "gradient-descent steps")
    np.testing.assert_allclose(steps.get_xdata()[:12], [s.W for s in walk])
    np.testing.assert_allclose(steps.get_ydata()[:12], [s.E for s in walk])
    assert steps.get_xdata()[-1] == pytest.approx(walk[-1].W_new)
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None and a.get_text() == ""]
    assert len(arrows) >= 5
    text = texts(fig)
    assert "global minimum" in text and "W = 2" in text
    assert "dE/dW = 1.667 > 0" in text and "decrease W" in text


def test_error_curve_from_given_steps_and_from_the_left():
    walk = one_weight_descent(0.5, 0.2, 6)
    fig = plot.error_curve_one_weight(walk)
    text = texts(fig)
    assert "< 0" in text and "increase W" in text and "η = 0.2" in text
    fig = plot.error_curve_one_weight(4, lr=0.1, W0=1.0)
    assert "4 steps" in texts(fig)


def test_error_curve_rejects_bad_input():
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="diverged"):
        plot.error_curve_one_weight(lr=1e200)
    with pytest.raises(ValueError, match="OneWeightStep"):
        plot.error_curve_one_weight([1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        plot.error_curve_one_weight(lr=float("nan"))


# ------------------------------------------------------------------------------------------- network_diagram
def test_network_diagram_of_the_worked_example_writes_every_number(tmp_path):
    net = worked_example_network()
    trace = trace_step(net, WORKED_X, WORKED_T, lr=0.5)
    path = tmp_path / "worked.png"
    fig = plot.network_diagram(net, trace=trace, path=path)
    assert_real_image(path, 700, 400)
    text = texts(fig)
    for name in ("i1", "i2", "h1", "h2", "o1", "o2", "E_o1", "E_o2"):
        assert name in text
    for k in range(1, 9):
        assert f"w{k}: " in text
    assert "w5: 0.4 → 0.358916" in text
    assert "w1: 0.15 → 0.149781" in text
    assert "E_total = 0.298371" in text and "0.291028" in text
    assert "out 0.593270" in text or "out 0.59327" in text  # out_h1
    assert "b 0.35 (frozen)" in text


def test_network_diagram_of_a_bigger_trace_puts_the_numbers_in_a_table(tmp_path):
    net = MLP([2, 3, 3, 2], activation="tanh", output_activation="sigmoid", seed=2, dtype="float64")
    trace = trace_step(net, [0.5, -0.2], [0, 1], lr=0.1)
    numbers = trace.to_dict()
    fig = plot.network_diagram(net, trace=trace, path=tmp_path / "deep.png")
    assert_real_image(tmp_path / "deep.png", 800, 400)
    text = texts(fig)
    edge_names = {t.get_text() for t in fig.axes[0].texts}
    assert {f"w{k}" for k in range(1, 22)} <= edge_names  # every edge is named on the diagram
    assert "h1_2→h2_1" in text and "h2_3" in text
    assert f"{numbers['w13']:.6g} → {numbers['w13_new']:.6g}" in text
    assert f"{numbers['out_h2_2']:.6g}" in text and f"{numbers['E_o2']:.6g}" in text


def test_network_diagram_edges_follow_the_weights():
    net = MLP([2, 3, 1], init=[([[1.0, -2.0, 0.0], [0.5, 0.0, 4.0]], [0, 0, 0]), ([[1.0], [-1.0], [0.1]], [0])])
    fig = plot.network_diagram(net)
    ax = fig.axes[0]
    widths = sorted(line.get_linewidth() for line in ax.get_lines())
    assert len(widths) == 2 * 3 + 3 * 1
    assert widths[-1] == pytest.approx(5.0)  # the largest |w| (4.0)
    assert widths[0] == pytest.approx(0.4)  # w = 0
    colours = {tuple(np.round(line.get_color(), 3)) for line in ax.get_lines()}
    assert len(colours) > 4  # signs and magnitudes differ


def test_network_diagram_summarises_wide_layers(tmp_path):
    net = MLP([30, 20, 3], activation="relu", output_activation="softmax", loss="cross_entropy", seed=1)
    fig = plot.network_diagram(net, max_units=6, path=tmp_path / "wide.png")
    assert_real_image(tmp_path / "wide.png")
    text = texts(fig)
    assert "⋮" in text and "25 more" in text and "15 more" in text
    assert "i30" in text and "h20" in text and "i6" not in text
    assert len(fig.axes[0].get_lines()) == 5 * 5 + 5 * 3  # 5 units and an ellipsis per wide layer


def test_network_diagram_errors():
    net = worked_example_network()
    other = MLP([2, 3, 2], seed=0)
    trace = trace_step(other, [0.1, 0.2], [0.0, 1.0], lr=0.1)
    with pytest.raises(ValueError, match=r"trace is of a \[2, 3, 2\] network"):
        plot.network_diagram(net, trace=trace)
    with pytest.raises(ValueError, match="max_units"):
        plot.network_diagram(net, max_units=2)


# ------------------------------------------------------------------------------------------- saving and plot()
def test_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "curve.png"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        plot.error_curve_one_weight(path=path)
    assert path.read_bytes() == b"keep me"
    plot.error_curve_one_weight(path=path, overwrite=True)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temporary file left behind
    if os.name == "posix":  # the replaced file keeps its mode (not the private 0600 of a temporary file)
        umask = os.umask(0)
        os.umask(umask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_formats_by_suffix(tmp_path):
    net = worked_example_network()
    plot.network_diagram(net, path=tmp_path / "net.svg")
    plot.network_diagram(net, path=tmp_path / "net.PDF")
    assert b"<svg" in (tmp_path / "net.svg").read_bytes()[:500]
    assert (tmp_path / "net.PDF").read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        plot.network_diagram(net, path=tmp_path / "net.jpg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot.network_diagram(net, path=tmp_path / "missing" / "net.png")


def test_svg_is_reproducible(tmp_path):
    plot.error_curve_one_weight(path=tmp_path / "a.svg")
    plot.error_curve_one_weight(path=tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_plot_dispatcher(tmp_path):
    assert set(plot.KINDS) == {"loss_curve", "decision_regions", "error_curve_one_weight", "network_diagram"}
    assert all(target in plot.KINDS for target in plot.ALIASES.values())
    fig = plot.plot("network", worked_example_network(), path=tmp_path / "n.png")
    assert fig.axes and (tmp_path / "n.png").exists()
    fig = plot.plot("error_curve_one_weight", 3)
    assert "3 steps" in texts(fig)
    with pytest.raises(ValueError, match="unknown plot kind 'pie'.*loss_curve"):
        plot.plot("pie")


# ------------------------------------------------------------------------------------ matplotlib is optional
def test_missing_matplotlib_names_the_extra(monkeypatch):
    import deltaprop.backend

    def missing(module, extra, purpose):
        raise MissingExtraError(f'{purpose} needs {module}; install it with: pip install "deltaprop[{extra}]"')

    monkeypatch.setattr(deltaprop.backend, "require", missing)
    with pytest.raises(MissingExtraError, match=r'pip install "deltaprop\[plot\]"'):
        plot.error_curve_one_weight()


def test_without_matplotlib_import_works_and_calls_name_the_extra():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        import deltaprop.plot as plot
        from deltaprop.backend import MissingExtraError
        from deltaprop.examples import worked_example_network
        for call in (lambda: plot.network_diagram(worked_example_network()), lambda: plot.loss_curve({"loss": [1]})):
            try:
                call()
            except MissingExtraError as exc:
                print(exc)
            else:
                raise SystemExit("no error")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "matplotlib" in line and 'pip install "deltaprop[plot]"' in line


def test_no_global_matplotlib_state_is_touched():
    script = textwrap.dedent(
        """
        import sys
        import matplotlib
        from deltaprop import plot
        from deltaprop.examples import worked_example_network
        plot.network_diagram(worked_example_network())
        plot.error_curve_one_weight()
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        print("ok")
        """
    )
    env = {**os.environ, "DISPLAY": "", "MPLBACKEND": ""}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
