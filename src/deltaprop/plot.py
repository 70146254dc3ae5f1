"""Pictures of what backpropagation does: loss curves, decision regions, the error curve of one weight, the network.

Needs the optional extra ``[plot]`` (matplotlib): ``pip install "deltaprop[plot]"``. Importing this module does not
import matplotlib; each function does, and raises :class:`~deltaprop.backend.MissingExtraError` naming the extra
when it is missing.

Every function returns a :class:`matplotlib.figure.Figure` and, when ``path`` is given, also saves it; the format
follows the suffix (``.png``, ``.svg``, ``.pdf``) and an existing file is only replaced with ``overwrite=True``.
The figures are built on matplotlib's object API with the Agg canvas, never through ``pyplot``: nothing global
changes (no backend switch, no open-figure registry), and it works without a display.

>>> from deltaprop import plot, trace_step
>>> from deltaprop.examples import WORKED_T, WORKED_X, worked_example_network
>>> net = worked_example_network()
>>> trace = trace_step(net, WORKED_X, WORKED_T, lr=0.5)
>>> fig = plot.network_diagram(net, trace=trace, path="worked.png")  # doctest: +SKIP
>>> fig = plot.error_curve_one_weight(path="descent.svg")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import backend

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .network import Network
    from .trace import Trace

__all__ = [
    "loss_curve",
    "decision_regions",
    "error_curve_one_weight",
    "network_diagram",
    "plot",
    "KINDS",
    "ALIASES",
    "SAVE_FORMATS",
]

#: file suffixes ``path`` may have, and the format each one saves
SAVE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_DPI = 100
PathLike = str | os.PathLike  # a file to save the figure to

# colours: negative blue, positive red (weights); class colours for the data
_WEIGHT_CMAP = "coolwarm"
_CLASS_COLOURS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*"]


# ------------------------------------------------------------------------------------------------ matplotlib
def _matplotlib() -> Any:
    """Import matplotlib (or raise MissingExtraError naming the ``[plot]`` extra)."""
    return backend.require("matplotlib", "plot", "Plotting (deltaprop.plot)")


def _new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no global backend, no display needed."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _check_path(path: PathLike | None, overwrite: bool) -> Path | None:
    """Validate ``path`` before any drawing: a known suffix, an existing folder, no file in the way."""
    if path is None:
        return None
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValueError(
            f"cannot tell the image format of {str(p)!r}: its name must end in one of {', '.join(SAVE_FORMATS)}"
        )
    if p.is_dir():
        raise IsADirectoryError(f"{str(p)!r} is a folder; give a file name such as {str(p / ('figure' + '.png'))!r}")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{str(p)!r} already exists; pass overwrite=True to replace it")
    if not p.parent.is_dir() and str(p.parent) != "":
        raise FileNotFoundError(f"cannot save to {str(p)!r}: the folder {str(p.parent)!r} does not exist")
    return p


def _save(fig: Figure, path: Path | None, overwrite: bool) -> None:
    """Render ``fig`` to memory, then write the file: all at once, never a half-written image."""
    if path is None:
        return
    fmt = SAVE_FORMATS[path.suffix.lower()]
    # no creation dates in SVG/PDF, so the same figure gives the same bytes
    metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    buf = BytesIO()
    mpl = _matplotlib()
    # SVG element ids are random unless salted; the salt is set only while saving (rc_context restores it)
    with mpl.rc_context({"svg.hashsalt": "deltaprop"} if fmt == "svg" else {}):
        fig.savefig(buf, format=fmt, dpi=_DPI, bbox_inches="tight", pad_inches=0.15, metadata=metadata)
    data = buf.getvalue()
    if not overwrite:
        try:
            with open(path, "xb") as fh:  # exclusive creation: never replaces a file that appeared meanwhile
                fh.write(data)
        except FileExistsError:
            raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it") from None
        return
    # write beside the target, then rename over it: readers never see a partial file
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:  # mkstemp makes the file private (0600): give it the mode a new file would get (or the old file's)
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _finish(fig: Figure, path: Path | None, overwrite: bool) -> Figure:
    _save(fig, path, overwrite)
    return fig


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) if text else text


def _fmt(value: float, digits: int) -> str:
    """A number as the trace prints it: ``digits`` significant digits, exponent form for tiny values."""
    v = float(value)
    if v == 0 or abs(v) >= 1e-4:
        return f"{v:.{digits}g}"
    return f"{v:.{max(digits - 3, 1)}e}"


# ------------------------------------------------------------------------------------------------ loss_curve
def _series(history: Any, key: str, n: int) -> np.ndarray:
    values = history.get(key) if isinstance(history, Mapping) else getattr(history, key, None)
    if values is None:
        return np.full(n, np.nan)
    values = list(values)
    if len(values) != n:
        raise ValueError(f"history[{key!r}] has {len(values)} entries but history has {n} epochs")
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def loss_curve(history: Any, *, path: PathLike | None = None, overwrite: bool = False) -> Figure:
    """Loss (and validation loss) per epoch; accuracy on a second panel when it was measured.

    The y axis is logarithmic when the losses span more than two decades. The title says why training stopped
    (``history.stop_reason``), and the epoch whose weights a callback restored (``best_epoch``) is marked.

    Args:
        history: the :class:`~deltaprop.train.History` that ``fit`` returned, or its ``to_dict()``/``history``
            dict (lists ``epoch``, ``loss``, optionally ``val_loss``, ``accuracy``, ``val_accuracy``).
        path: also save the figure there (``.png``, ``.svg`` or ``.pdf``).
        overwrite: replace an existing file at ``path``.

    >>> history = net.fit(X, y, epochs=200, verbose=0)  # doctest: +SKIP
    >>> fig = loss_curve(history, path="loss.png")  # doctest: +SKIP
    """
    _matplotlib()
    path_ = _check_path(path, overwrite)
    loss = history.get("loss") if isinstance(history, Mapping) else getattr(history, "loss", None)
    if loss is None:
        raise TypeError(f"history must be a History (from fit) or a dict with a 'loss' list, got {type(history)!r}")
    n = len(loss)
    if n == 0:
        raise ValueError("history has no epochs to plot (it is empty)")
    epoch_list = history.get("epoch") if isinstance(history, Mapping) else getattr(history, "epoch", None)
    epochs = np.arange(1, n + 1) if not epoch_list else np.asarray(list(epoch_list), dtype=float)
    if epochs.shape != (n,):
        raise ValueError(f"history has {epochs.shape[0]} epoch numbers but {n} losses")
    series = {key: _series(history, key, n) for key in ("loss", "val_loss", "accuracy", "val_accuracy")}
    if not np.any(np.isfinite(series["loss"])) and not np.any(np.isfinite(series["val_loss"])):
        raise ValueError("history has no finite loss values to plot")
    stop = (history.get("stop_reason") if isinstance(history, Mapping) else getattr(history, "stop_reason", "")) or ""
    best = history.get("best_epoch") if isinstance(history, Mapping) else getattr(history, "best_epoch", None)
    has_acc = bool(np.any(np.isfinite(series["accuracy"])) or np.any(np.isfinite(series["val_accuracy"])))

    fig = _new_figure(11.0 if has_acc else 7.0, 4.6)
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    from matplotlib.ticker import MaxNLocator

    marker = "o" if n <= 30 else None

    def legend_label(name: str, values: np.ndarray, best: str) -> str:
        # the last and the best value go in the legend: text beside a noisy curve would sit on top of it
        ok = values[np.isfinite(values)]
        if not ok.size:
            return name
        top = ok.min() if best == "min" else ok.max()
        return f"{name} (last {_fmt(ok[-1], 3)}, {best} {_fmt(top, 3)})"

    ax = axes[0]
    ax.plot(
        epochs,
        series["loss"],
        color="#1f77b4",
        marker=marker,
        ms=3.5,
        lw=1.6,
        label=legend_label("training", series["loss"], "min"),
    )
    if np.any(np.isfinite(series["val_loss"])):
        ax.plot(
            epochs,
            series["val_loss"],
            color="#ff7f0e",
            marker=marker,
            ms=3.5,
            lw=1.6,
            label=legend_label("validation", series["val_loss"], "min"),
        )
    finite = np.concatenate([series["loss"], series["val_loss"]])
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100.0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss E (mean over examples)" + (", log scale" if ax.get_yscale() == "log" else ""))
    ax.set_title("Loss per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="major", alpha=0.3)
    # the last finite loss: where training ended up
    finite_at = np.flatnonzero(np.isfinite(series["loss"]))
    if finite_at.size:
        k = int(finite_at[-1])
        ax.plot([epochs[k]], [series["loss"][k]], "o", color="#1f77b4", ms=7, mfc="white", mew=2, zorder=5)
    bad = np.flatnonzero(~np.isfinite(series["loss"]))
    for n_bad, k in enumerate(bad[:20]):  # epochs whose loss was NaN or infinite (diverged training)
        label = "loss NaN or infinite" if n_bad == 0 else None
        ax.axvline(float(epochs[k]), color="#d62728", ls=":", lw=1.5, label=label)
    pad = max(0.5, 0.02 * float(epochs[-1] - epochs[0]))
    ax.set_xlim(float(epochs[0]) - pad, float(epochs[-1]) + pad)
    if best is not None:
        for a in axes:
            a.axvline(float(best), color="#2ca02c", ls="--", lw=1.2, label=f"best epoch {best} (weights restored)")
    ax.legend(fontsize=9, loc="best")

    if has_acc:
        ax2 = axes[1]
        style = {"marker": marker, "ms": 3.5, "lw": 1.6}
        train_label = legend_label("training", series["accuracy"], "max")
        ax2.plot(epochs, series["accuracy"], color="#1f77b4", label=train_label, **style)
        if np.any(np.isfinite(series["val_accuracy"])):
            val_label = legend_label("validation", series["val_accuracy"], "max")
            ax2.plot(epochs, series["val_accuracy"], color="#ff7f0e", label=val_label, **style)
        acc = np.concatenate([series["accuracy"], series["val_accuracy"]])
        acc = acc[np.isfinite(acc)]
        top = 1.02 if acc.max() <= 1.0 else acc.max() * 1.02
        ax2.set_ylim(min(0.0, float(acc.min())) if acc.min() < 0 else max(0.0, float(acc.min()) - 0.05), top)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("accuracy")
        ax2.set_title("Accuracy per epoch")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=9, loc="lower right")

    heading = f"Training: {n} epoch{'s' if n != 1 else ''}"
    if stop:
        heading += f" — stopped: {stop}"
    fig.suptitle(_wrap(heading, 110 if has_acc else 75), fontsize=12)
    fig.tight_layout()
    return _finish(fig, path_, overwrite)


# ------------------------------------------------------------------------------------------ decision_regions
def decision_regions(
    net: Network,
    X: Any,
    y: Any,
    *,
    path: PathLike | None = None,
    resolution: int = 200,
    overwrite: bool = False,
) -> Figure:
    """The input plane of a 2-input classifier, coloured by what the network predicts there, with the data on top.

    Binary classifiers (one sigmoid output, or two classes) show the probability of the second class as a filled
    contour with the decision boundary (p = 0.5) drawn in black; multi-class networks show the predicted class.
    The grid covers the data's bounding box plus a margin, ``resolution`` × ``resolution`` points.

    A network never trained with ``fit`` (``net.classes`` is None) is read as: one output → p(class 1) = output,
    several outputs → the class is the largest output; its classes are then the sorted labels of ``y``.

    Args:
        net: a network with 2 inputs.
        X: the points, shape (n, 2).
        y: their class labels, shape (n,).
        path: also save the figure there (``.png``, ``.svg`` or ``.pdf``).
        resolution: grid points per axis (2 … 2000).
        overwrite: replace an existing file at ``path``.

    >>> from deltaprop import datasets, MLP
    >>> X, y = datasets.moons(200, noise=0.15, seed=0)  # doctest: +SKIP
    >>> net = MLP([2, 16, 1], activation="tanh", output_activation="sigmoid", seed=0)  # doctest: +SKIP
    >>> _ = net.fit(X, y, epochs=300, verbose=0)  # doctest: +SKIP
    >>> fig = decision_regions(net, X, y, path="moons.png")  # doctest: +SKIP
    """
    _matplotlib()
    path_ = _check_path(path, overwrite)
    n_inputs = getattr(net, "n_inputs", None)
    if n_inputs is None or not hasattr(net, "forward"):
        raise TypeError(f"net must be a deltaprop Network, got {type(net).__name__}")
    if n_inputs != 2:
        raise ValueError(
            f"decision_regions draws the plane of a network with 2 inputs; this network has {n_inputs} "
            f"(layer_sizes={list(net.layer_sizes)})"
        )
    try:
        Xa = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a numeric array of shape (n_examples, 2): {exc}") from None
    if Xa.ndim != 2 or Xa.shape[1] != 2:
        raise ValueError(f"X must be a 2-D array with 2 columns (n_examples, 2), got shape {Xa.shape}")
    if Xa.shape[0] == 0:
        raise ValueError("X has no examples")
    if not np.all(np.isfinite(Xa)):
        raise ValueError("X contains NaN or infinite values")
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != Xa.shape[0]:
        raise ValueError(f"y must hold one class label per row of X ({Xa.shape[0]}), got shape {labels.shape}")
    if not isinstance(resolution, (int, np.integer)) or isinstance(resolution, bool) or not 2 <= resolution <= 2000:
        raise ValueError(f"resolution must be an integer from 2 to 2000, got {resolution!r}")
    resolution = int(resolution)

    classes = net.classes
    if classes is None:
        classes = np.unique(labels)
    classes = np.asarray(classes)
    if labels.dtype.kind != classes.dtype.kind and classes.dtype.kind == "U":
        labels = labels.astype(classes.dtype)
    index = np.searchsorted(classes, labels)
    index = np.minimum(index, classes.size - 1)
    unknown = classes[index] != labels
    if np.any(unknown):
        raise ValueError(
            f"y has labels the network does not know: {sorted(set(labels[unknown].tolist()))[:5]}; "
            f"its classes are {classes.tolist()}"
        )
    n_classes = max(int(classes.size), 2 if net.n_outputs == 1 else int(net.n_outputs))

    # the grid: the data's bounding box plus 8 % on every side
    lo, hi = Xa.min(axis=0), Xa.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    gx, gy = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    xx, yy = np.meshgrid(gx, gy)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    out = np.asarray(net.forward(grid), dtype=float)
    binary = net.n_outputs == 1 or (net.n_outputs == 2 and n_classes == 2)
    if net.n_outputs == 1:
        score_ = out[:, 0]
        predicted_grid = (score_ > 0.5).astype(int)
    else:
        predicted_grid = np.argmax(out, axis=1)
        score_ = out[:, 1] / np.maximum(out.sum(axis=1), 1e-300) if binary else out[:, 1]
    fit_out = np.asarray(net.forward(Xa), dtype=float)
    predicted = (fit_out[:, 0] > 0.5).astype(int) if net.n_outputs == 1 else np.argmax(fit_out, axis=1)
    accuracy = float(np.mean(predicted == index))

    fig = _new_figure(7.6 if binary else 7.0, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    from matplotlib.colors import ListedColormap

    if binary:
        prob = score_.reshape(xx.shape)
        low, high = (0.0, 1.0) if np.all((prob >= 0) & (prob <= 1)) else (float(prob.min()), float(prob.max()))
        filled = ax.contourf(xx, yy, prob, levels=np.linspace(low, high, 21), cmap="RdBu_r", alpha=0.75)
        if low < 0.5 < high:
            ax.contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=1.8)
        bar = fig.colorbar(filled, ax=ax, shrink=0.85, pad=0.03)
        bar.set_label(f"p(class = {classes[1]})" if classes.size > 1 else "network output")
        bar.set_ticks(np.linspace(low, high, 6).tolist())
        colours = ["#08519c", "#a50f15"]
    else:
        colours = [_CLASS_COLOURS[k % len(_CLASS_COLOURS)] for k in range(n_classes)]
        Z = predicted_grid.reshape(xx.shape)
        ax.contourf(xx, yy, Z, levels=np.arange(n_classes + 1) - 0.5, cmap=ListedColormap(colours), alpha=0.3)
        ax.contour(xx, yy, Z, levels=np.arange(n_classes - 1) + 0.5, colors="k", linewidths=0.8, alpha=0.7)
    for k in range(classes.size):
        mask = index == k
        if not np.any(mask):
            continue
        ax.scatter(
            Xa[mask, 0],
            Xa[mask, 1],
            s=26,
            c=colours[k % len(colours)],
            marker=_MARKERS[k % len(_MARKERS)],
            edgecolors="white",
            linewidths=0.7,
            label=f"class {classes[k]}",
            zorder=3,
        )
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("input 1 (x₁)")
    ax.set_ylabel("input 2 (x₂)")
    sizes = "-".join(str(s) for s in net.layer_sizes)
    ax.set_title(f"Decision regions of the {sizes} network — accuracy on these {Xa.shape[0]} points: {accuracy:.1%}")
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    return _finish(fig, path_, overwrite)


# ------------------------------------------------------------------------------------ error_curve_one_weight
def error_curve_one_weight(
    steps: Sequence[Any] | int | None = None,
    *,
    lr: float = 0.3,
    W0: float = 3.0,
    path: PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """The seed's "global loss minimum" picture: E(W) of the one-weight model y = W·x, and gradient descent on it.

    E(W) is evaluated by the library itself (``one_weight_network(W).loss(ONE_WEIGHT_X, ONE_WEIGHT_T)``) over a
    range covering every step. Each step W → W − η·dE/dW is drawn as an arrow walking down the curve to the minimum
    at W = 2 (where the model's outputs equal the desired 0, 2, 4 and E = 0); the tangent at the first point shows
    the slope whose sign says which way to move.

    Args:
        steps: the descent to draw: a list of :class:`~deltaprop.examples.OneWeightStep`, a number of steps, or
            None for 12 steps of :func:`~deltaprop.examples.one_weight_descent` from ``W0`` with ``lr``.
        lr: learning rate η (when the steps are computed here).
        W0: starting weight (when the steps are computed here).
        path: also save the figure there (``.png``, ``.svg`` or ``.pdf``).
        overwrite: replace an existing file at ``path``.

    >>> fig = error_curve_one_weight(lr=0.3, W0=3.0, path="descent.png")  # doctest: +SKIP
    """
    from .examples import ONE_WEIGHT_T, ONE_WEIGHT_X, one_weight_descent, one_weight_network

    _matplotlib()
    path_ = _check_path(path, overwrite)
    for name, value in (("lr", lr), ("W0", W0)):
        if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if steps is None or isinstance(steps, (int, np.integer)):
        if isinstance(steps, bool):
            raise ValueError("steps must be a list of OneWeightStep, a number of steps, or None")
        walk = one_weight_descent(float(W0), float(lr), steps=12 if steps is None else int(steps))
        eta: float | None = float(lr)
    else:
        walk = list(steps)
        if not walk or not all(hasattr(s, "W") and hasattr(s, "W_new") and hasattr(s, "E") for s in walk):
            raise ValueError("steps must be a non-empty list of OneWeightStep (from examples.one_weight_descent)")
        first = walk[0]
        eta = (first.W - first.W_new) / first.dE_dW if first.dE_dW else None

    def E(W: float) -> float:
        return float(one_weight_network(float(W)).loss(ONE_WEIGHT_X, ONE_WEIGHT_T))

    W_MIN = 2.0  # y = 2x fits the data 0→0, 1→2, 2→4 exactly
    if not all(math.isfinite(v) for s in walk for v in (s.W, s.E, s.W_new)):
        raise ValueError("the descent diverged to infinite values; use a smaller lr (below 1.2 for this model)")
    points_W = [float(s.W) for s in walk] + [float(walk[-1].W_new)]
    points_E = [float(s.E) for s in walk] + [E(walk[-1].W_new)]
    if not all(math.isfinite(v) for v in points_W + points_E):
        raise ValueError("the descent diverged to infinite values; use a smaller lr (below 1.2 for this model)")
    # symmetric about the minimum, so the whole bowl is seen, and wide enough for every step
    reach = max(max(abs(W - W_MIN) for W in points_W), 0.5) * 1.15
    left, right = W_MIN - reach, W_MIN + reach
    span = right - left
    grid = np.linspace(left, right, 241)
    curve = np.array([E(W) for W in grid])

    fig = _new_figure(8.0, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(grid, curve, color="#444444", lw=2.0, label="E(W), computed by the library", zorder=1)
    ax.plot(
        points_W,
        points_E,
        "o",
        color="#d62728",
        ms=6,
        mec="white",
        mew=0.8,
        label="gradient-descent steps",
        zorder=4,
    )
    for k in range(len(points_W) - 1):
        if abs(points_W[k + 1] - points_W[k]) < 1e-3 * span:
            break  # the arrows have become too short to draw
        ax.annotate(
            "",
            xy=(points_W[k + 1], points_E[k + 1]),
            xytext=(points_W[k], points_E[k]),
            arrowprops={"arrowstyle": "-|>", "color": "#d62728", "lw": 1.3, "shrinkA": 4, "shrinkB": 4},
            zorder=3,
        )
    E_min = E(W_MIN)
    ax.plot([W_MIN], [E_min], marker="*", color="#2ca02c", ms=16, mec="k", mew=0.6, zorder=5, linestyle="none")
    ymax = float(max(curve.max(), max(points_E)))
    on_right = walk[0].W >= W_MIN
    ax.annotate(
        f"global minimum\nW = 2, E = {_fmt(E_min, 3)}",
        (W_MIN, E_min),
        xytext=(-50 if on_right else 50, 55),
        textcoords="offset points",
        ha="right" if on_right else "left",
        va="bottom",
        fontsize=10,
        color="#2ca02c",
        arrowprops={"arrowstyle": "-", "color": "#2ca02c", "lw": 0.8},
    )

    # the tangent at the first point: its slope dE/dW and what its sign means
    s0 = walk[0]
    half = 0.15 * span
    tW = np.array([s0.W - half, s0.W + half])
    ax.plot(tW, s0.E + s0.dE_dW * (tW - s0.W), color="#1f77b4", lw=1.6, ls="--", zorder=2, label="tangent at W₀")
    sign = "> 0" if s0.dE_dW > 0 else ("< 0" if s0.dE_dW < 0 else "= 0")
    direction = "decrease W" if s0.dE_dW > 0 else ("increase W" if s0.dE_dW < 0 else "stay")
    ax.annotate(
        f"W₀ = {_fmt(s0.W, 4)}, E = {_fmt(s0.E, 4)}\nslope dE/dW = {_fmt(s0.dE_dW, 4)} {sign}\n→ {direction}: "
        f"W ← W − η·dE/dW",
        (s0.W, s0.E),
        xytext=(-14 if on_right else 14, 6),
        textcoords="offset points",
        ha="right" if on_right else "left",
        va="bottom",
        fontsize=9.5,
        color="#1f77b4",
        bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#1f77b4", "alpha": 0.9},
    )
    if len(walk) > 1:
        s1 = walk[1]
        ax.annotate(
            f"step 2: W = {_fmt(s1.W, 4)}",
            (s1.W, s1.E),
            xytext=(10 if on_right else -10, -4),
            textcoords="offset points",
            ha="left" if on_right else "right",
            va="top",
            fontsize=9,
            color="#d62728",
        )
    final = points_W[-1]
    ax.text(
        0.02 if on_right else 0.98,
        0.97,
        f"{len(walk)} steps{f', η = {_fmt(eta, 4)}' if eta is not None else ''}\n"
        f"W: {_fmt(points_W[0], 4)} → {_fmt(final, 6)}\nE: {_fmt(points_E[0], 4)} → {_fmt(points_E[-1], 3)}",
        transform=ax.transAxes,
        ha="left" if on_right else "right",
        va="top",
        fontsize=9.5,
        bbox={"boxstyle": "round,pad=0.4", "fc": "#f7f7f7", "ec": "#999999"},
    )
    ax.set_xlim(left, right)
    ax.set_ylim(-0.12 * ymax, 1.08 * ymax)
    ax.axhline(0.0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.set_xlabel("weight W")
    ax.set_ylabel("error E(W) = mean over examples of ½(W·x − t)²")
    ax.set_title("Gradient descent on one weight: y = W·x, inputs 0, 1, 2, desired outputs 0, 2, 4")
    ax.legend(loc="upper center", fontsize=9, framealpha=0.9)
    ax.grid(True, alpha=0.25)
    fig.tight_layout()
    return _finish(fig, path_, overwrite)


# ------------------------------------------------------------------------------------------- network_diagram
def _slots(n: int, max_units: int) -> list[int | None]:
    """Which units of a layer are drawn: all, or the first few, None (an ellipsis), and the last."""
    if n <= max_units:
        return list(range(n))
    return [*range(max_units - 2), None, n - 1]


def _check_trace(net: Network, trace: Trace) -> None:
    sizes = [len(trace.inputs), *(len(layer) for layer in trace.units)]
    if sizes != list(net.layer_sizes):
        raise ValueError(
            f"the trace is of a {sizes} network but net has layer_sizes {list(net.layer_sizes)}; "
            "pass the trace of this network (trace_step(net, x, t, lr))"
        )


def network_diagram(
    net: Network,
    *,
    trace: Trace | None = None,
    path: PathLike | None = None,
    overwrite: bool = False,
    max_units: int = 12,
    digits: int = 6,
) -> Figure:
    """The network as circles (units) and lines (weights): width ∝ |w|, colour by sign (blue −, red +).

    With ``trace`` (from :func:`deltaprop.trace_step`) every number of the step is written on the picture in the
    seed's names: each input's value; each unit's net, out, δ and bias; each output's target and error; each
    weight's value → new value on its edge; and E_total before and after the update. Edges are then drawn with the
    weights *before* the step (the trace's ``value``), although ``trace_step`` has already updated ``net``.

    When every layer has at most 2 units (the seed's 2-2-2 network) the numbers are written beside the units and on
    the edges; a bigger network's edges carry only their names (w1, w2, …) and its numbers go in a table beside the
    diagram (the weights only while at most 60 edges are drawn; ``trace.to_text()`` lists them all).

    Layers wider than ``max_units`` are summarised: the first units, an ellipsis, the last unit.

    Args:
        net: the network.
        trace: a trace of one step of this network, to write its numbers on the diagram.
        path: also save the figure there (``.png``, ``.svg`` or ``.pdf``).
        overwrite: replace an existing file at ``path``.
        max_units: most units drawn per layer (at least 3).
        digits: significant digits of the numbers written.

    >>> from deltaprop import trace_step
    >>> from deltaprop.examples import WORKED_T, WORKED_X, worked_example_network
    >>> net = worked_example_network()
    >>> trace = trace_step(net, WORKED_X, WORKED_T, lr=0.5)
    >>> fig = network_diagram(net, trace=trace, path="worked_example.png")  # doctest: +SKIP
    """
    _matplotlib()
    from matplotlib.colors import Normalize

    from .trace import unit_names

    path_ = _check_path(path, overwrite)
    if not hasattr(net, "layers") or not hasattr(net, "layer_sizes"):
        raise TypeError(f"net must be a deltaprop Network, got {type(net).__name__}")
    if not isinstance(max_units, (int, np.integer)) or isinstance(max_units, bool) or max_units < 3:
        raise ValueError(f"max_units must be an integer ≥ 3, got {max_units!r}")
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or not 1 <= digits <= 17:
        raise ValueError(f"digits must be an integer from 1 to 17, got {digits!r}")
    if trace is not None:
        _check_trace(net, trace)

    sizes = list(net.layer_sizes)
    names = unit_names(sizes)
    slots = [_slots(n, int(max_units)) for n in sizes]
    # weights (before the step when a trace is given), and the trace's records by position
    weights = [np.asarray(layer.W, dtype=float).copy() for layer in net.layers]
    params: dict[tuple[int, int, int], Any] = {}  # (layer, i, j) → ParamTrace
    bias_params: dict[tuple[int, int], Any] = {}
    units: dict[tuple[int, int], Any] = {}
    if trace is not None:
        index_of = [{name: k for k, name in enumerate(layer)} for layer in names]
        for param in trace.params:
            dst = index_of[param.layer][param.target]
            if param.kind == "weight":
                src = index_of[param.layer - 1][param.source]
                weights[param.layer - 1][src, dst] = param.value
                params[(param.layer, src, dst)] = param
            else:
                bias_params[(param.layer, dst)] = param
        for depth, layer_units in enumerate(trace.units, 1):
            for k, unit in enumerate(layer_units):
                units[(depth, k)] = unit

    # three ways to draw: plain (no trace); a trace of a small network (every layer ≤ 2 units) with the numbers
    # written beside the units and on the edges, as in the seed's figure; a trace of a bigger network, whose edges
    # carry only their names and whose numbers go in a table beside the diagram (it would not fit on the edges)
    inline = trace is not None and max(len(s) for s in slots) <= 2
    tabled = trace is not None and not inline
    n_edges = sum(sum(s is not None for s in a) * sum(s is not None for s in b) for a, b in zip(slots[:-1], slots[1:]))
    name_edges = tabled and n_edges <= 60
    table = _trace_table(trace, names, slots, digits, with_weights=name_edges) if tabled and trace else []
    columns = [table[k : k + _TABLE_ROWS] for k in range(0, len(table), _TABLE_ROWS)]

    # geometry in data units (the axes have equal aspect, so angles on screen are angles in data)
    gap = 3.2 if inline else (2.4 if tabled else 2.0)  # between layers
    step = 1.9 if inline else (1.0 if tabled else 0.8)  # between units of a layer
    radius = 0.26 if inline else (0.3 if tabled else 0.22)
    scale = 0.9 if trace is not None else 0.75  # inches per data unit
    tallest = max(len(s) for s in slots)

    def position(layer: int, slot: int) -> tuple[float, float]:
        m = len(slots[layer])
        return layer * gap, ((m - 1) / 2 - slot) * step

    half_height = (tallest - 1) / 2 * step
    bottom = -half_height - (1.35 if inline else 0.55)  # layer captions
    x_lo = -(1.9 if inline else 0.6)
    x_hi = (len(sizes) - 1) * gap + (1.8 if inline else 0.6)
    y_lo, y_hi = bottom - (0.55 if inline else 0.5), half_height + (1.5 if inline else 0.5)
    diagram_w, diagram_h = (x_hi - x_lo) * scale, (y_hi - y_lo) * scale
    line_h = 8.0 * 1.25 / 72  # inches per table line
    col_w = [max(len(line) for line in col) * 8.0 * 0.62 / 72 + 0.3 for col in columns]
    panel_w, panel_h = sum(col_w), max((len(col) for col in columns), default=0) * line_h
    title_h, bar_w = 0.9, 1.0
    foot_h = 0.35 if trace is not None else 0.0  # a line saying what the numbers are
    fig_w = max(5.0, diagram_w + bar_w + panel_w + 0.2)
    fig_h = max(3.6, max(diagram_h, panel_h + 0.2) + title_h + foot_h)
    fig = _new_figure(fig_w, fig_h)
    body_h = fig_h - title_h - foot_h
    ax: Axes = fig.add_axes(
        (0.1 / fig_w, (foot_h + (body_h - diagram_h) / 2) / fig_h, diagram_w / fig_w, diagram_h / fig_h)
    )
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)

    w_all = np.concatenate([w.ravel() for w in weights])
    w_max = float(np.max(np.abs(w_all))) if w_all.size else 1.0
    w_max = w_max if w_max > 0 else 1.0
    from matplotlib import colormaps

    cmap = colormaps[_WEIGHT_CMAP]
    norm = Normalize(-w_max, w_max)
    f = lambda v: _fmt(v, digits)  # noqa: E731

    # edges
    placed: list[tuple[float, float]] = []  # where edge names were written
    for layer in range(1, len(sizes)):
        for si, i in enumerate(slots[layer - 1]):
            for sj, j in enumerate(slots[layer]):
                if i is None or j is None:
                    continue
                (x0, y0), (x1, y1) = position(layer - 1, si), position(layer, sj)
                w = float(weights[layer - 1][i, j])
                ax.plot(
                    [x0, x1],
                    [y0, y1],
                    color=cmap(norm(w)),
                    lw=0.4 + 4.6 * abs(w) / w_max,
                    solid_capstyle="round",
                    zorder=1,
                )
                p = params.get((layer, i, j))
                if p is None or not (inline or name_edges):
                    continue
                angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
                if inline:
                    # near the source, where one unit's edges fan out, so that crossing edges keep their labels
                    # apart; level edges (nothing fans out near their middle) are labelled halfway
                    t = 0.5 if abs(angle) < 3 or len(slots[layer]) == 1 else 0.3
                    change = f"{f(p.value)} → {f(p.new_value)}" if p.trainable else f"{f(p.value)} (frozen)"
                    label = f"{p.name}: {change}"
                else:
                    # short names: the first place along the edge that is clear of the labels already written
                    t = _free_spot(x0, y0, x1, y1, placed, clearance=0.32)
                    label = p.name
                ax.text(
                    x0 + t * (x1 - x0),
                    y0 + t * (y1 - y0),
                    label,
                    rotation=angle,
                    rotation_mode="anchor",
                    ha="center",
                    va="center",
                    fontsize=8 if inline else 7,
                    zorder=3,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                )

    # units
    for layer, layer_slots in enumerate(slots):
        m = len(layer_slots)
        for s, j in enumerate(layer_slots):
            x, y = position(layer, s)
            if j is None:
                hidden_count = sizes[layer] - (m - 1)
                ax.text(x, y + 0.12 * step, "⋮", ha="center", va="center", fontsize=18, color="#555555")
                ax.text(x, y - 0.22 * step, f"{hidden_count} more", ha="center", va="center", fontsize=8)
                continue
            colour = "#e5f5e0" if layer == 0 else ("#fee6ce" if layer == len(sizes) - 1 else "#deebf7")
            ax.add_patch(_circle(x, y, radius, colour))
            name = names[layer][j]
            size = 10 if inline else (8 if len(name) <= 3 else 7)
            ax.text(x, y, name, ha="center", va="center", fontsize=size, weight="bold", zorder=5)
            if inline and trace is not None:
                _unit_numbers(ax, trace, units, bias_params, layer, j, s, m, x, y, radius, f, last=len(sizes) - 1)

    # layer captions
    for layer, n in enumerate(sizes):
        kind = "input" if layer == 0 else ("output" if layer == len(sizes) - 1 else f"hidden {layer}")
        act = "" if layer == 0 else f", {net.layers[layer - 1].activation.name}"
        caption = f"{kind}\n({n} unit{'s' if n != 1 else ''}{act})"
        ax.text(layer * gap, bottom, caption, ha="center", va="top", fontsize=9)

    from matplotlib.cm import ScalarMappable

    bar_h = min(3.0, 0.6 * body_h)
    bar_ax = fig.add_axes(((diagram_w + 0.25) / fig_w, (body_h - bar_h) / 2 / fig_h, 0.18 / fig_w, bar_h / fig_h))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar_ax)
    bar.set_label("weight" + (" (before the step)" if trace is not None else ""), fontsize=9)
    bar.ax.tick_params(labelsize=8)

    # the table of a big network's step, in columns to the right
    x_in = diagram_w + bar_w + 0.1
    top_in = foot_h + body_h - max(0.0, (body_h - panel_h) / 2)
    for col, width in zip(columns, col_w):
        fig.text(x_in / fig_w, top_in / fig_h, "\n".join(col), ha="left", va="top", fontsize=8, family="monospace")
        x_in += width

    sizes_text = "-".join(str(n) for n in sizes)
    if trace is not None:
        title = (
            f"One backpropagation step of the {sizes_text} network (η = {f(trace.lr)}, loss {trace.loss})\n"
            f"E_total = {f(trace.E_total)} before the update → {f(trace.E_total_new)} after"
        )
        if tabled and not name_edges:
            title += f"  ({n_edges} edges: every weight in trace.to_text())"
        fig.text(
            0.5,
            0.1 / fig_h,
            "net = Σ w·out_below + b    out = f(net)    δ = ∂E_total/∂net    "
            "w → w⁺: the value before → after the update w⁺ = w − η·∂E_total/∂w",
            ha="center",
            va="bottom",
            fontsize=8.5,
            color="#444444",
        )
    else:
        title = f"The {sizes_text} network: line width ∝ |w|, colour = sign (blue −, red +)"
    fig.text(0.5, 1 - 0.12 / fig_h, title, ha="center", va="top", fontsize=11.5 if trace is not None else 10.5)
    return _finish(fig, path_, overwrite)


def _free_spot(
    x0: float, y0: float, x1: float, y1: float, placed: list[tuple[float, float]], *, clearance: float
) -> float:
    """Where along the edge (0 = source, 1 = target) to write its name.

    The first candidate spot at least ``clearance`` away from every spot in ``placed`` (or, failing that, the least
    crowded one); the spot chosen is added to ``placed``.
    """
    best_t, best_d = 0.3, -1.0
    for t in (0.3, 0.7, 0.4, 0.6, 0.22, 0.78, 0.5, 0.15, 0.85):
        x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        d = min((math.hypot(x - px, y - py) for px, py in placed), default=math.inf)
        if d >= clearance:
            best_t = t
            break
        if d > best_d:
            best_t, best_d = t, d
    placed.append((x0 + best_t * (x1 - x0), y0 + best_t * (y1 - y0)))
    return best_t


_TABLE_ROWS = 34  # lines per column of the table beside a big network's diagram


def _unit_numbers(
    ax: Axes,
    trace: Trace,
    units: dict[tuple[int, int], Any],
    bias_params: dict[tuple[int, int], Any],
    layer: int,
    j: int,
    slot: int,
    m: int,
    x: float,
    y: float,
    radius: float,
    f: Callable[[float], str],
    *,
    last: int,
) -> None:
    """Write one unit's numbers beside it: an input's value; net, out, δ, b (and target, error) of the others."""
    if layer == 0:
        name = list(trace.inputs)[j]
        ax.text(x - radius - 0.12, y, f"{name} = {f(trace.inputs[name])}", ha="right", va="center", fontsize=9)
        return
    u = units[(layer, j)]
    lines = [f"net {f(u.net)}", f"out {f(u.out)}", f"δ {f(u.delta)}"]
    bp = bias_params.get((layer, j))
    if bp is not None:
        lines.append(f"b {f(bp.value)} → {f(bp.new_value)}" if bp.trainable else f"b {f(bp.value)} (frozen)")
    if layer == last:
        lines.append(f"target {f(trace.targets[u.name])}")
        error = trace.output_errors.get(f"E_{u.name}")
        if error is not None:
            lines.append(f"E_{u.name} {f(error)}")
        ax.text(x + radius + 0.15, y, "\n".join(lines), ha="left", va="center", fontsize=8.5, zorder=4)
        return
    above = slot < (m - 1) / 2 or m == 1
    ax.text(
        x,
        y + (radius + 0.08) * (1 if above else -1),
        "\n".join(lines),
        ha="center",
        va="bottom" if above else "top",
        fontsize=8.5,
        zorder=4,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#cccccc", "alpha": 0.9},
    )


def _trace_table(
    trace: Trace, names: list[list[str]], slots: list[list[int | None]], digits: int, *, with_weights: bool
) -> list[str]:
    """The numbers of a step as fixed-width lines: inputs, every drawn unit, then every drawn weight."""
    f = lambda v: _fmt(v, digits)  # noqa: E731
    shown = [{names[layer][j] for j in layer_slots if j is not None} for layer, layer_slots in enumerate(slots)]
    width = digits + 7
    lines = ["inputs"]
    lines += [f"  {name:<6}{f(v)}" for name, v in trace.inputs.items() if name in shown[0]]
    bias = {(p.layer, p.target): p for p in trace.params if p.kind == "bias"}
    for depth, layer_units in enumerate(trace.units, 1):
        kind = "output layer" if depth == len(trace.units) else f"hidden layer {depth}"
        act = trace.activations[depth - 1] if depth - 1 < len(trace.activations) else ""
        lines.append(f"{kind} ({act})")
        lines.append(f"  {'unit':<6}{'net':<{width}}{'out':<{width}}{'δ':<{width}}b → b⁺")
        for u in layer_units:
            if u.name not in shown[depth]:
                continue
            b = bias.get((depth, u.name))
            b_text = "" if b is None else (f"{f(b.value)} → {f(b.new_value)}" if b.trainable else f"{f(b.value)} fixed")
            lines.append(f"  {u.name:<6}{f(u.net):<{width}}{f(u.out):<{width}}{f(u.delta):<{width}}{b_text}")
    lines.append("targets and errors")
    for name, target in trace.targets.items():
        if name in shown[-1]:
            lines.append(
                f"  {name:<6}target {f(target):<{width}}E_{name} {f(trace.output_errors.get('E_' + name, 0.0))}"
            )
    if with_weights:
        lines.append("weights (w → w⁺)")
        for p in trace.params:
            if p.kind == "weight" and p.source in shown[p.layer - 1] and p.target in shown[p.layer]:
                change = f"{f(p.value)} → {f(p.new_value)}" if p.trainable else f"{f(p.value)} fixed"
                lines.append(f"  {p.name:<5}{p.source + '→' + p.target:<12}{change}")
    return lines


def _circle(x: float, y: float, radius: float, colour: str) -> Any:
    from matplotlib.patches import Circle

    return Circle((x, y), radius, facecolor=colour, edgecolor="#333333", lw=1.3, zorder=4)


# ------------------------------------------------------------------------------------------------ dispatcher
#: every picture by name (the CLI's ``deltaprop plot KIND``)
KINDS: dict[str, Callable[..., Figure]] = {
    "loss_curve": loss_curve,
    "decision_regions": decision_regions,
    "error_curve_one_weight": error_curve_one_weight,
    "network_diagram": network_diagram,
}
#: short names accepted by :func:`plot`
ALIASES = {
    "loss": "loss_curve",
    "regions": "decision_regions",
    "one_weight": "error_curve_one_weight",
    "error_curve": "error_curve_one_weight",
    "network": "network_diagram",
    "diagram": "network_diagram",
}


def plot(kind: str, *args: Any, path: PathLike | None = None, overwrite: bool = False, **kwargs: Any) -> Figure:
    """Draw the picture named ``kind`` (a key of :data:`KINDS` or :data:`ALIASES`) with the function's arguments.

    >>> fig = plot("network", net, path="net.svg")  # doctest: +SKIP
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, got {type(kind).__name__}")
    name = ALIASES.get(kind, kind)
    if name not in KINDS:
        known = ", ".join(sorted([*KINDS, *ALIASES]))
        raise ValueError(f"unknown plot kind {kind!r}; choose one of: {known}")
    return KINDS[name](*args, path=path, overwrite=overwrite, **kwargs)
