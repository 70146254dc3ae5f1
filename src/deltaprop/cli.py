"""The ``deltaprop`` command: a thin layer that parses arguments, calls the library and prints.

Commands: ``train``, ``predict``, ``evaluate``, ``trace``, ``datasets``, ``plot``, ``demo`` (see ``docs/cli.md``).
It is built with click (extra ``[cli]``, with rich for tables); ``main`` reports a missing click in one line.
Every error the user can fix is one line ``deltaprop: error: …`` on stderr and exit status 2 (``--debug`` adds
the traceback).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .examples import (
    WORKED_LR,
    WORKED_T,
    WORKED_X,
    one_weight_descent,
    one_weight_table,
    train_worked_example,
    worked_example_network,
)
from .trace import trace_step

if TYPE_CHECKING:
    import numpy as np

    from .network import Network
    from .tabular import Preprocessor, Table

__all__ = ["main", "build_cli", "CLIError", "PUBLISHED_VARIANT_NOTE", "demo_worked", "demo_one_weight"]

PUBLISHED_VARIANT_NOTE = (
    "The widely copied walk-through reports 0.291027924 after the first update and outputs 0.015912196 / "
    "0.984065734 after 10,000 rounds: it computes the hidden deltas with w5..w8 already updated. deltaprop, like "
    "the seed's algorithm, uses the weights from before the update for every layer, hence 0.291027774."
)


class CLIError(Exception):
    """Something the user asked for cannot be done: printed as one line ``deltaprop: error: …``, exit status 2."""


# ------------------------------------------------------------------------------------------------------ demo
def demo_worked(as_json: bool, steps: int) -> str:
    trace = trace_step(worked_example_network(), WORKED_X[0], WORKED_T[0], WORKED_LR)
    fixed = train_worked_example(steps, train_biases=False)
    trained = train_worked_example(steps, train_biases=True)
    if as_json:
        payload: dict[str, Any] = {"example": "2-2-2", **trace.to_dict()}
        payload["b1"], payload["b2"] = 0.35, 0.60
        payload["training"] = {
            "steps": steps,
            "biases_fixed": {
                "E_total": fixed.E_total,
                "out_o1": fixed.outputs[0],
                "out_o2": fixed.outputs[1],
            },
            "biases_trained": {
                "E_total": trained.E_total,
                "out_o1": trained.outputs[0],
                "out_o2": trained.outputs[1],
            },
        }
        return json.dumps(payload, indent=2)
    lines = [
        "The seed's worked example: 2 inputs, 2 sigmoid hidden units, 2 sigmoid outputs, squared error, η = 0.5",
        "  i1 = 0.05, i2 = 0.10; targets 0.01, 0.99; w1..w8 = .15 .20 .25 .30 .40 .45 .50 .55; b1 = .35, b2 = .60",
        "  (biases held fixed, as in the published example)",
        "",
        trace.to_text(),
        "",
        f"Training on: E_total at forward pass number {steps:,}",
        f"  biases fixed:   E_total = {fixed.E_total:.10f}, outputs {fixed.outputs[0]:.8f} / {fixed.outputs[1]:.8f}",
        f"  biases trained: E_total = {trained.E_total:.10f}, outputs {trained.outputs[0]:.8f} / "
        f"{trained.outputs[1]:.8f}",
        "",
        "Note: " + PUBLISHED_VARIANT_NOTE,
    ]
    return "\n".join(lines)


def demo_one_weight(as_json: bool, lr: float, steps: int) -> str:
    rows = one_weight_table([3.0, 4.0, 2.0])
    descent = one_weight_descent(3.0, lr=lr, steps=steps)
    if as_json:
        return json.dumps(
            {
                "example": "one-weight",
                "tables": [r.__dict__ for r in rows],
                "descent": {"lr": lr, "steps": [s.__dict__ for s in descent]},
            },
            indent=2,
        )
    lines = ["The one-weight example: model y = W·x, inputs 0, 1, 2, desired outputs 0, 2, 4", ""]
    for r in rows:
        lines.append(f"W = {r.W:g}")
        lines.append(f"  {'input':>6} {'desired':>8} {'output':>8} {'|error|':>8} {'error²':>8}")
        for x, t, y, a, s in zip(r.inputs, r.desired, r.outputs, r.absolute_errors, r.squared_errors):
            lines.append(f"  {x:>6g} {t:>8g} {y:>8g} {a:>8g} {s:>8g}")
        lines.append(f"  sum of squared errors = {r.sum_squared_error:g}")
    lines += [
        "",
        "W = 4 made the error larger, W = 2 makes it zero. Gradient descent finds W = 2 by itself:",
        f"E(W) = (1/3)·Σ ½(W·x − t)², dE/dW = (5/3)(W − 2); W ← W − η·dE/dW with η = {lr:g}",
        f"  {'step':>4} {'W':>12} {'E':>12} {'dE/dW':>12} {'W new':>12}",
    ]
    for st in descent:
        lines.append(f"  {st.step:>4} {st.W:>12.8f} {st.E:>12.8f} {st.dE_dW:>12.8f} {st.W_new:>12.8f}")
    lines.append("The gradient is positive while W > 2, so moving against it lowers W; at W = 2 it is 0.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- helpers
def _echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _note(text: str) -> None:
    sys.stderr.write(f"deltaprop: {text}\n")


def _console() -> Any:
    from .backend import require

    rich_console = require("rich.console", "cli", "The deltaprop command's tables")
    # off a terminal (a pipe, a log file) rich would assume 80 columns and wrap the tables: allow wider lines
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
    return rich_console.Console(highlight=False, soft_wrap=False, width=width)


def _rich_table(title: str | None = None, *, header: bool = True) -> Any:
    from .backend import require

    rich_table = require("rich.table", "cli", "The deltaprop command's tables")
    box = require("rich.box", "cli", "The deltaprop command's tables")
    return rich_table.Table(title=title, show_header=header, box=box.SIMPLE_HEAD if header else box.SIMPLE)


def _text(value: Any) -> Any:
    """A cell for a rich table: plain text, never read as rich markup."""
    from rich.text import Text

    return Text(str(value))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _jsonable(value: Any) -> Any:
    """Plain JSON data: NumPy scalars to Python, non-finite floats to None."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dump(payload: Any) -> None:
    _echo(json.dumps(_jsonable(payload), indent=2))


def _check_new_file(path: str | os.PathLike[str], force: bool, what: str, hint: str = "") -> Path:
    """A file about to be written: its folder must exist, and an existing file needs ``--force``."""
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{p} is a folder; give a file name for the {what}")
    if p.exists() and not force:
        raise CLIError(f"{p} already exists; pass --force to replace it{hint}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise CLIError(f"cannot write the {what} to {p}: the folder {folder} does not exist")
    return p


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"no such file: {p} (the {what})")
    if p.is_dir():
        raise CLIError(f"{p} is a folder, not a {what} file")
    return p


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",")] if text.strip() else []


def _parse_hidden(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    sizes = []
    for part in _split(text):
        try:
            n = int(part)
        except ValueError:
            n = 0
        if n <= 0:
            raise CLIError(f"--hidden takes layer sizes such as 64 or 64,32 (positive integers), got {text!r}")
        sizes.append(n)
    return sizes


def _parse_batch(text: str) -> int | None:
    if text.strip().lower() == "full":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise CLIError(f"--batch-size takes a positive integer or 'full' (one update per epoch), got {text!r}")
    return n


def _parse_checkpoint_every(text: str) -> int | str:
    if text.strip().lower() == "epoch":
        return "epoch"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise CLIError(f"--checkpoint-every takes 'epoch' or a positive number of updates, got {text!r}")
    return n


def _parse_numbers(text: str, option: str) -> list[float]:
    values = []
    for part in _split(text):
        try:
            v = float(part)
        except ValueError:
            raise CLIError(f"{option} takes comma-separated numbers such as 0.05,0.10, got {text!r}") from None
        if not math.isfinite(v):
            raise CLIError(f"{option} takes finite numbers, got {part!r}")
        values.append(v)
    return values


def _plot_check(path: str, force: bool) -> Path:
    """An image file the command will write: a known suffix, a folder that exists, no file in the way."""
    from .backend import require

    p = _check_new_file(path, force, "figure")
    if p.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise CLIError(f"cannot tell the image format of {p}: its name must end in .png, .svg or .pdf")
    require("matplotlib", "plot", "Plotting")
    return p


def _arch(net: Network) -> str:
    sizes = " → ".join(str(n) for n in net.layer_sizes)
    acts = ", ".join(dict.fromkeys(a.name for a in net.activations))
    return f"{sizes} ({acts}), loss {net.loss_function.name}, {net.n_params:,} parameters"


# ------------------------------------------------------------------------------------------------- models
def _load_model(path: str) -> Network:
    """A model file (or the model inside a training checkpoint)."""
    from .io import ModelFileError, load, load_checkpoint_model

    p = _require_file(path, "model")
    try:
        return load(p, as_network=True)  # an estimator's file: its network
    except ModelFileError as exc:
        if "checkpoint" not in str(exc):
            raise
        try:
            return load_checkpoint_model(p)
        except ModelFileError:
            raise exc from None


def _preprocessor(net: Network, table: Table | None = None, exclude: Sequence[str] = ()) -> Preprocessor:
    """The preprocessing stored in ``net``, or (a model saved from Python) the table's numeric columns as is."""
    from .tabular import Preprocessor

    pre = Preprocessor.from_model(net)
    if pre is not None:
        return pre
    if table is None:
        return _raw(net)
    if table.format == "npz" and not exclude:
        exclude = [n for n in table.names if n == "y" or (n[:1] == "y" and n[1:].isdigit())]
    return Preprocessor.passthrough(
        table, net.n_inputs, exclude, task="classification" if net.classes is not None else "regression"
    )


def _raw(net: Network) -> Preprocessor:
    """Identity preprocessing for a model saved without one: inputs i1…iN taken as they are."""
    import numpy as np

    from .tabular import Feature, Preprocessor

    return Preprocessor(
        [Feature(f"i{j + 1}", "numeric") for j in range(net.n_inputs)],
        np.zeros(net.n_inputs),
        np.ones(net.n_inputs),
        [],
        "classification" if net.classes is not None else "regression",
        scaled=False,
    )


def _note_unseen(pre: Preprocessor, table: Table) -> None:
    for column, values in pre.unseen_categories(table).items():
        shown = ", ".join(repr(v) for v in values[:5]) + (" …" if len(values) > 5 else "")
        _note(f"note: column {column!r} has value(s) not seen in training ({shown}); their one-hot inputs are all zero")


# -------------------------------------------------------------------------------------------------- train
def _dataset_table(name: str) -> tuple[Table, list[str], str]:
    """A built-in dataset as a table: its feature columns, then ``target`` (``target_0``… for several)."""
    from . import datasets
    from .tabular import Table

    ds = datasets.load(name)
    cols: dict[str, np.ndarray] = {fname: ds.X[:, j] for j, fname in enumerate(ds.feature_names)}
    if ds.y.ndim == 1:
        cols["target"] = ds.y
        targets = ["target"]
    else:
        targets = [f"target_{k}" for k in range(ds.y.shape[1])] if ds.y.shape[1] > 1 else ["target"]
        for k, t in enumerate(targets):
            cols[t] = ds.y[:, k]
    task = "classification" if ds.task == "classification" else "regression"
    return Table(cols, f"built-in dataset {ds.name!r}", "builtin"), targets, task


def _output_layer(
    task: str, n_classes: int, n_targets: int, output_activation: str | None, loss: str | None
) -> tuple[int, str, str]:
    """(output units, output activation, loss) for the task, filling in the defaults."""
    from .activations import get_activation
    from .losses import get_loss

    loss_name = get_loss(loss).name if loss else None
    out_act = get_activation(output_activation).name if output_activation else None
    if task == "classification":
        if out_act is None:
            out_act = "sigmoid" if loss_name == "binary_cross_entropy" and n_classes == 2 else "softmax"
        n_out = 1 if out_act == "sigmoid" and n_classes == 2 else n_classes
        if loss_name is None:
            if out_act == "softmax":
                loss_name = "cross_entropy"
            elif out_act == "sigmoid" and n_out == 1:
                loss_name = "binary_cross_entropy"
            else:
                loss_name = "mse"
        return n_out, out_act, loss_name
    return n_targets, out_act or "identity", loss_name or "mse"


def _epoch_logger(epochs: int) -> Any:
    """A line every tenth of the run on stderr (when stderr is not a terminal and no bar is shown)."""
    from .progress import EpochLogger

    return EpochLogger(every=max(1, epochs // 10), stream=sys.stderr)


def run_train(data: str | None, **options: Any) -> int:
    """``deltaprop train``: see :func:`_run_train` for the options. Temporary files of ``stream`` are removed at the
    end, also when training fails or is interrupted."""
    with contextlib.ExitStack() as cleanup:
        return _run_train(data, cleanup=cleanup, **options)


def _use_stream(data: str, stream: bool | None) -> bool:
    """Whether to stream DATA: as asked, or (``stream`` None) a CSV, TSV or Parquet file over STREAM_AUTO_BYTES."""
    from .tabular import STREAM_AUTO_BYTES, STREAM_FORMATS, DataFileError, data_format

    if stream is not None:
        return stream
    try:
        fmt = data_format(data)
        size = os.path.getsize(data)
    except (DataFileError, OSError):
        return False  # read_table reports what is wrong with the file
    return fmt in STREAM_FORMATS and size > STREAM_AUTO_BYTES


def _run_train(
    data: str | None,
    *,
    cleanup: contextlib.ExitStack,
    stream: bool | None = None,
    target: str | None = None,
    dataset: str | None = None,
    ignore: str = "",
    hidden: str = "64",
    activation: str = "relu",
    output_activation: str | None = None,
    loss: str | None = None,
    init: str | None = None,
    dtype: str = "float32",
    optimizer: str = "adam",
    lr: float | None = None,
    schedule: str | None = None,
    epochs: int = 50,
    batch_size: str = "32",
    validation_split: float | None = None,
    patience: int | None = None,
    seed: int | None = 0,
    checkpoint: str | None = None,
    checkpoint_every: str = "epoch",
    resume: str | None = None,
    out: str = "model.safetensors",
    force: bool = False,
    plot: str | None = None,
    task: str | None = None,
    scale: bool = True,
    quiet: bool = False,
    as_json: bool = False,
    distributed: bool = False,
) -> int:
    import numpy as np

    from . import MLP
    from .tabular import Preprocessor, infer_task, read_table, resolve_targets, target_values

    # ---- the options, checked before reading any data
    hidden_sizes = _parse_hidden(hidden)
    batch = _parse_batch(batch_size)
    every = _parse_checkpoint_every(checkpoint_every)
    if epochs < 1:
        raise CLIError(f"--epochs must be a positive integer, got {epochs}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise CLIError(f"--lr must be a positive number, got {lr}")
    if validation_split is not None and not 0 <= validation_split < 1:
        raise CLIError(f"--validation-split must be a fraction from 0 (none) to below 1, got {validation_split}")
    if patience is not None and patience < 1:
        raise CLIError(f"--patience must be a positive number of epochs, got {patience}")
    if data is not None and dataset is not None:
        raise CLIError("give a data file or --dataset NAME, not both")
    if resume is not None:
        _require_file(resume, "checkpoint to resume from")
    from .distributed import launched_size, world

    dist = world() if distributed else None  # without mpi4py: MissingExtraError naming deltaprop[mpi]
    if dist is not None and not dist.is_root:  # rank 0 alone prints and writes files; the others only train
        quiet, as_json, plot, force = True, False, None, True
    if dist is None and launched_size() > 1:
        raise CLIError(
            f"started by mpiexec with {launched_size()} processes but without --distributed: each would train alone "
            "and write the same files; add --distributed"
        )
    from .optim import get_optimizer, get_schedule

    if schedule is not None:
        get_schedule(schedule, get_optimizer(optimizer, lr=lr))  # unknown names fail here, not after reading data
    else:
        get_optimizer(optimizer, lr=lr)

    # ---- the data
    streaming = data is not None and _use_stream(data, stream)
    if streaming:
        if dist is not None:
            raise CLIError("--stream cannot be combined with --distributed (each rank would read the whole file)")
    scan = None
    if streaming:
        from .tabular import scan_stream

        assert data is not None
        scan = scan_stream(data, target, _split(ignore), task)
        table, targets, features, task = scan.sample, scan.targets, scan.features, scan.task
        y = scan.sample_targets()  # the first rows' targets, for the figures; the rest stay on disk
    elif data is None:
        table, targets, default_task = _dataset_table(dataset or "digits")
        if target is not None:
            raise CLIError("--target names a column of a data file; a built-in dataset has its own target")
    else:
        table = read_table(data)
        targets = resolve_targets(table, target)
        default_task = None
    if scan is None:
        ignored = _split(ignore)
        unknown = [c for c in ignored if c not in table]
        if unknown:
            raise CLIError(
                f"--ignore names column(s) {', '.join(map(repr, unknown))} that {table.source} does not have"
            )
        features = [n for n in table.names if n not in targets and n not in ignored]
        task = task or default_task or infer_task([table[t] for t in targets])
        y = target_values(table, targets, task)
    source = table.source
    assert task is not None

    # ---- the network and its preprocessing
    if resume is not None:
        net = _load_model(resume)
        pre = Preprocessor.from_model(net)
        if pre is None:
            raise CLIError(f"{resume} was not written by 'deltaprop train --checkpoint'; it cannot be resumed here")
        if pre.feature_names != features or pre.targets != targets or pre.task != task:
            raise CLIError(
                f"{resume} was trained on columns {pre.feature_names} → {pre.targets} ({pre.task}); resume with the "
                "same data and options"
            )
    else:
        if scan is not None:
            pre = scan.preprocessor(scale=scale)
            n_classes = 0 if scan.classes is None else int(scan.classes.size)
        else:
            pre = Preprocessor.fit(table, features, targets, task, scale=scale, y=y if task == "regression" else None)
            n_classes = int(np.unique(y).size) if task == "classification" else 0
        n_out, out_act, loss_name = _output_layer(task, n_classes, len(targets), output_activation, loss)
        if init is None:
            init = "he_uniform" if activation.lower() in ("relu", "leaky_relu", "elu") else "glorot_uniform"
        net = MLP(
            [pre.n_inputs, *hidden_sizes, n_out],
            activation=activation,
            output_activation=out_act,
            loss=loss_name,
            init=init,
            dtype=dtype,
            seed=seed,
        )
        pre.to_model(net)
    if scan is None:
        X = pre.transform(table)
        Y = y if task == "classification" else pre.scale_targets(y)

    # ---- the files it will write: checked before spending time on training
    out_path = _check_new_file(out, force, "model", " (or --out to choose another file)")
    if checkpoint is not None:
        same = resume is not None and Path(checkpoint).resolve() == Path(resume).resolve()
        _check_new_file(checkpoint, force or same, "checkpoint")
    plot_paths: list[Path] = []
    if plot is not None:
        p = _plot_check(plot, force)
        plot_paths = [p]
        if task == "classification" and len(pre.features) == 2 and all(f.kind == "numeric" for f in pre.features):
            plot_paths.append(_check_new_file(p.with_name(f"{p.stem}-regions{p.suffix}"), force, "figure"))

    if scan is not None:  # second pass: the inputs into a memory-mapped file, removed when training ends
        workdir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="deltaprop-stream-"))
        X, Y = scan.write_arrays(pre, workdir, net.dtype)
    n_rows = X.shape[0]
    split = 0.2 if validation_split is None else validation_split
    if validation_split is None and math.floor(n_rows * split) < 1:
        split = 0.0  # too few rows for the default hold-out: train on all of them
    if scan is not None and split > 0 and not quiet:
        n_val = math.floor(n_rows * split)
        _note(
            f"streaming {source}: {n_rows:,} rows; validation holds out its last {n_val:,} rows "
            "(a streamed file is split by position, not at random)"
        )
    monitor = "val_loss" if split > 0 else "loss"
    net.metadata["training"] = {
        "data": source,
        "rows": n_rows,
        "task": task,
        "targets": targets,
        "streamed": scan is not None,
        "options": {
            "hidden": hidden_sizes,
            "optimizer": optimizer,
            "lr": lr,
            "schedule": schedule,
            "epochs": epochs,
            "batch_size": batch_size,
            "validation_split": split,
            "patience": patience,
            "seed": seed,
        },
    }
    callbacks = []
    tty = sys.stderr.isatty()
    if not quiet and not tty:
        callbacks.append(_epoch_logger(epochs))
    start = time.perf_counter()
    fit = net.fit if dist is None else functools.partial(dist.fit, net)
    history = fit(
        X,
        Y,
        epochs=epochs,
        batch_size=batch,
        optimizer=optimizer,
        lr=lr,
        schedule=schedule,
        seed=seed,
        validation_split=split if split > 0 else None,
        patience=patience,
        monitor=monitor,
        restore_best_weights=patience is not None,
        task=task,
        checkpoint=checkpoint,
        checkpoint_every=every,
        resume=resume,
        callbacks=callbacks,
        verbose=1 if tty and not quiet else 0,
    )
    elapsed = time.perf_counter() - start
    if not np.all(np.isfinite(net.theta)):
        raise CLIError(
            f"training diverged ({history.stop_reason or 'the weights became NaN or infinite'}); the model was not "
            "saved. Try a smaller --lr"
        )
    if dist is not None and not dist.is_root:
        return 0  # every rank holds the same weights; rank 0 saves them and prints the summary
    net.metadata["training"]["history"] = _jsonable(history.to_dict())
    if out_path.exists() and not force:
        raise CLIError(f"{out_path} appeared while training; pass --force to replace it (the model was not saved)")
    net.save(out_path)

    written_plots: list[str] = []
    if plot_paths:
        written_plots = _train_plots(net, pre, table, y, history, plot_paths, force)

    def last(values: list[Any]) -> Any:
        return values[-1] if values else None

    summary = {
        "model": str(out_path),
        "data": source,
        "rows": n_rows,
        "streamed": scan is not None,
        "targets": targets,
        "task": task,
        "classes": None if net.classes is None else net.classes.tolist(),
        "layer_sizes": net.layer_sizes,
        "inputs": pre.input_names,
        "epochs": history.epochs_run,
        "stop_reason": history.stop_reason,
        "best_epoch": history.best_epoch,
        "loss": last(history.loss),
        "val_loss": last(history.val_loss),
        "accuracy": last(history.accuracy),
        "val_accuracy": last(history.val_accuracy),
        "time_s": elapsed,
        "plots": written_plots,
    }
    if as_json:
        _dump(summary)
        return 0
    table_ = _rich_table("Training summary", header=False)
    table_.add_column(style="bold")
    table_.add_column()
    what = f"{task}, {net.classes.size} classes" if net.classes is not None else task
    units = " (on standardised targets)" if pre.target_mean is not None else ""
    streamed = " (streamed)" if scan is not None else ""
    rows = [
        ("data", f"{source}: {n_rows:,} rows{streamed}; predicting {', '.join(map(repr, targets))} ({what})"),
        ("network", _arch(net)),
        ("epochs", f"{history.epochs_run}"),
        ("stopped", history.stop_reason),
        ("loss", _fmt(summary["loss"]) + units),
    ]
    if summary["val_loss"] is not None:
        rows.append(("val loss", _fmt(summary["val_loss"]) + units))
    if summary["accuracy"] is not None:
        rows.append(("accuracy", _pct(summary["accuracy"])))
    if summary["val_accuracy"] is not None:
        rows.append(("val accuracy", _pct(summary["val_accuracy"])))
    if history.best_epoch is not None:
        rows.append(("best epoch", f"{history.best_epoch + 1} (its weights were kept)"))
    rows += [("time", f"{elapsed:.2f} s"), ("model", str(out_path))]
    if written_plots:
        rows.append(("plots", ", ".join(written_plots)))
    for key, value in rows:
        table_.add_row(_text(key), _text(value))
    _console().print(table_)
    return 0


def _train_plots(
    net: Network, pre: Preprocessor, table: Table, y: Any, history: Any, paths: list[Path], force: bool
) -> list[str]:
    from . import plot
    from .tabular import raw_input_network

    plot.loss_curve(history, path=paths[0], overwrite=force)
    written = [str(paths[0])]
    if len(paths) > 1:  # a classifier of two numeric columns: its decision regions, in the data's units
        plot.decision_regions(raw_input_network(net, pre), pre.encode(table), y, path=paths[1], overwrite=force)
        written.append(str(paths[1]))
    return written


# ------------------------------------------------------------------------------------------------ predict
def run_predict(model: str, data: str, *, out: str | None = None, proba: bool = False, force: bool = False) -> int:
    from .tabular import WRITE_FORMATS, format_csv, predict_table, read_table, write_table

    if out is not None:
        p = _check_new_file(out, force, "predictions")
        if p.suffix.lower() not in WRITE_FORMATS:
            raise CLIError(f"cannot write predictions to {p}: its name must end in {', '.join(WRITE_FORMATS)}")
    net = _load_model(model)
    table = read_table(data)
    pre = _preprocessor(net, table)
    if proba and net.classes is None:
        raise CLIError("--proba needs a classifier; this model is a regressor (it predicts numbers)")
    cols = predict_table(net, pre, table, proba=proba)
    _note_unseen(pre, table)
    if out is None:
        sys.stdout.write(format_csv(cols))
        sys.stdout.flush()
        return 0
    write_table(cols, out, overwrite=force)
    _note(f"wrote {table.n_rows:,} prediction(s) to {out}")
    return 0


# ----------------------------------------------------------------------------------------------- evaluate
def _targets_for(net: Network, pre: Preprocessor, table: Table, target: str | None) -> list[str]:
    from .tabular import resolve_targets

    if target is not None or not pre.targets:
        return resolve_targets(table, target)
    missing = [t for t in pre.targets if t not in table]
    if missing:
        raise CLIError(
            f"{table.source} lacks the target column(s) {', '.join(map(repr, missing))} the model was trained on; "
            "name the column with the true values with --target COLUMN"
        )
    return list(pre.targets)


def _preprocessing_and_targets(net: Network, table: Any, target: str | None) -> tuple[Any, list[str]]:
    """The model's stored preprocessing (or one derived from the file's columns) and the target column(s)."""
    from .tabular import Preprocessor, resolve_targets

    stored = Preprocessor.from_model(net)
    if stored is None:
        targets = resolve_targets(table, target)
        return _preprocessor(net, table, exclude=targets), targets
    return stored, _targets_for(net, stored, table, target)


def run_evaluate(model: str, data: str, *, target: str | None = None, as_json: bool = False) -> int:
    from .tabular import evaluate_table, read_table

    net = _load_model(model)
    table = read_table(data)
    pre, targets = _preprocessing_and_targets(net, table, target)
    result = evaluate_table(net, pre, table, targets)
    _note_unseen(pre, table)
    result = {"model": model, "data": table.source, "targets": targets, **result}
    if as_json:
        _dump(result)
        return 0
    console = _console()
    console.print(_text(f"{model} on {table.source}: {result['n_examples']:,} examples"))
    if result["task"] == "classification":
        head = _rich_table(header=False)
        head.add_column(style="bold")
        head.add_column()
        head.add_row(_text("accuracy"), _text(_pct(result["accuracy"])))
        head.add_row(_text("macro precision"), _text(f"{result['macro_precision']:.4f}"))
        head.add_row(_text("macro recall"), _text(f"{result['macro_recall']:.4f}"))
        head.add_row(_text("macro F1"), _text(f"{result['macro_f1']:.4f}"))
        console.print(head)
        per = _rich_table()
        for name in ("class", "precision", "recall", "F1", "support"):
            per.add_column(name, justify="left" if name == "class" else "right")
        for r in result["per_class"]:
            per.add_row(
                _text(r["class"]),
                _text(f"{r['precision']:.4f}"),
                _text(f"{r['recall']:.4f}"),
                _text(f"{r['f1']:.4f}"),
                _text(r["support"]),
            )
        console.print(per)
        if len(result["classes"]) > 20:
            console.print(_text(f"({len(result['classes'])} classes: the confusion matrix is in the --json output)"))
            return 0
        console.print(_text("Confusion matrix (rows: true class, columns: predicted class)"))
        cm = _rich_table()
        cm.add_column("true \\ predicted")
        for c in result["classes"]:
            cm.add_column(str(c), justify="right")
        for c, row in zip(result["classes"], result["confusion_matrix"]):
            cm.add_row(_text(c), *[_text(v) for v in row])
        console.print(cm)
        return 0
    reg = _rich_table()
    for name in ("target", "MSE", "MAE", "R²"):
        reg.add_column(name, justify="left" if name == "target" else "right")
    for r in result.get("per_target", []):
        reg.add_row(_text(r["target"]), _text(_fmt(r["mse"], 6)), _text(_fmt(r["mae"], 6)), _text(f"{r['r2']:.4f}"))
    label = "mean" if "per_target" in result else targets[0]
    reg.add_row(
        _text(label), _text(_fmt(result["mse"], 6)), _text(_fmt(result["mae"], 6)), _text(f"{result['r2']:.4f}")
    )
    console.print(reg)
    return 0


# -------------------------------------------------------------------------------------------------- trace
def _trace_target(net: Network, pre: Preprocessor, text: str | None) -> tuple[Any, str]:
    """The target vector for ``--target`` and a line saying what it means."""
    import numpy as np

    from .tabular import category_text
    from .train import one_hot_targets

    if net.classes is not None:
        classes = [category_text(c) for c in net.classes.tolist()]
        if text is None:
            raise CLIError(
                f"--target is required: the class label this example should have (one of {', '.join(classes)}), "
                f"or {net.n_outputs} target output value(s)"
            )
        if text.strip() in classes:
            k = classes.index(text.strip())
            t = one_hot_targets(np.array([k]), net.n_outputs, np.float64)[0]
            outs = ", ".join(f"{v:g}" for v in t)
            return t, f"target: class {text.strip()!r} → desired outputs {outs}"
        values = _parse_numbers(text, "--target") if all(_is_number(s) for s in _split(text)) else []
        if len(values) != net.n_outputs:
            raise CLIError(
                f"--target must be one of the classes ({', '.join(classes)}) or {net.n_outputs} output value(s), "
                f"got {text!r}"
            )
        return np.array(values), "target: desired outputs " + ", ".join(f"{v:g}" for v in values)
    if text is None:
        raise CLIError(f"--target is required: the {net.n_outputs} value(s) this example should produce")
    values = _parse_numbers(text, "--target")
    if len(values) != net.n_outputs:
        raise CLIError(f"--target needs {net.n_outputs} value(s), one per output, got {len(values)}")
    raw = np.array([values], dtype=np.float64)
    scaled = pre.scale_targets(raw)[0]
    if pre.target_mean is not None and pre.target_std is not None:
        stats = zip(values, pre.target_mean, pre.target_std, scaled)
        parts = ", ".join(f"({_minus(v, m)}) / {s:.6g} = {z:.6g}" for v, m, s, z in stats)
        return scaled, f"target (standardised as in training): {parts}"
    return scaled, "target: " + ", ".join(f"{v:g}" for v in values)


def _minus(value: float, mean: float) -> str:
    """``value − mean`` written without a double sign."""
    return f"{value:g} − {mean:.6g}" if mean >= 0 else f"{value:g} + {-mean:.6g}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _input_lines(pre: Preprocessor, values: Sequence[str], x: Any, limit: int = 12) -> list[str]:
    """How each raw input value became the network's inputs i1, i2, …"""
    lines = []
    j = 0
    for f, v in zip(pre.features, values):
        if f.kind == "numeric":
            if pre.scaled:
                centred = _minus(float(v), float(pre.mean[j]))
                lines.append(f"  i{j + 1} = {f.name}: ({centred}) / {pre.std[j]:.6g} = {x[j]:.6g}")
            else:
                lines.append(f"  i{j + 1} = {f.name} = {float(v):g}")
        else:
            span = f"i{j + 1}" if f.width == 1 else f"i{j + 1}..i{j + f.width}"
            known = v.strip() in f.categories
            hot = ", ".join(f"{x[k]:g}" for k in range(j, j + f.width))
            note = "" if known else " (not seen in training: all zero)"
            lines.append(f"  {span} = {f.name} one-hot over {f.categories} for {v.strip()!r}: {hot}{note}")
        j += f.width
    if len(lines) > limit:
        lines = [*lines[: limit - 1], f"  … ({len(pre.features)} input columns in all)"]
    return lines


def run_trace(
    model: str,
    *,
    input_text: str,
    target_text: str | None = None,
    lr: float = 0.5,
    full: bool = False,
    as_json: bool = False,
) -> int:
    import numpy as np

    if not (math.isfinite(lr) and lr >= 0):
        raise CLIError(f"--lr must be a non-negative number, got {lr}")
    net = _load_model(model)
    pre = _preprocessor(net)
    values = _split(input_text)
    try:
        x = pre.transform_values(values)[0]
    except ValueError as exc:
        raise CLIError(f"--input: {exc}") from None
    t, target_line = _trace_target(net, pre, target_text)
    trace = trace_step(net, np.asarray(x, dtype=np.float64), t, lr)
    if as_json:
        payload = json.loads(trace.to_json())
        payload["model"] = model
        payload["raw_input"] = dict(zip(pre.feature_names, values))
        payload["input_names"] = pre.input_names
        payload["target_description"] = target_line
        _dump(payload)
        return 0
    lines = [f"One backpropagation step of {model}: {_arch(net)}"]
    if pre.features and pre.feature_names != [f"i{j + 1}" for j in range(net.n_inputs)]:
        lines.append("Inputs, preprocessed as 'deltaprop predict' does:")
        lines += _input_lines(pre, values, x)
    lines += [target_line, f"(the model file is not changed; η = {lr:g})", ""]
    lines.append(trace.to_text(full=True if full else None))
    _echo("\n".join(lines))
    return 0


# ----------------------------------------------------------------------------------------------- datasets
def run_datasets_list(as_json: bool = False) -> int:
    from . import datasets

    infos = datasets.available()
    if as_json:
        _dump([{"name": i.name, "task": i.task, "shape": list(i.shape), "description": i.description} for i in infos])
        return 0
    table = _rich_table("Built-in datasets")
    for name in ("name", "task", "examples × inputs", "description"):
        table.add_column(name)
    for i in infos:
        table.add_row(_text(i.name), _text(i.task), _text(f"{i.shape[0]:,} × {i.shape[1]}"), _text(i.description))
    console = _console()
    console.print(table)
    console.print(
        _text("Train on one: deltaprop train --dataset NAME; write it to a file: deltaprop datasets export NAME FILE")
    )
    return 0


def run_datasets_export(name: str, path: str, *, force: bool = False) -> int:
    from . import datasets
    from .tabular import WRITE_FORMATS, write_table

    p = _check_new_file(path, force, "dataset")
    suffix = p.suffix.lower()
    if suffix in datasets.EXPORT_FORMATS:
        datasets.export(name, p, overwrite=force)
    elif suffix in WRITE_FORMATS:
        table, _, _ = _dataset_table(name)
        write_table(table.columns, p, overwrite=force)
    else:
        known = sorted({*datasets.EXPORT_FORMATS, *WRITE_FORMATS})
        raise CLIError(f"cannot export to {p}: its name must end in one of {', '.join(known)}")
    _note(f"wrote {p}")
    return 0


# --------------------------------------------------------------------------------------------------- plot
def run_plot_one_weight(path: str, *, lr: float = 0.3, steps: int = 12, force: bool = False) -> int:
    from . import plot

    p = _plot_check(path, force)
    plot.error_curve_one_weight(steps, lr=lr, path=p, overwrite=force)
    _note(f"wrote {p}")
    return 0


def run_plot_worked_example(path: str, *, force: bool = False) -> int:
    from . import plot

    p = _plot_check(path, force)
    net = worked_example_network()
    trace = trace_step(net, WORKED_X[0], WORKED_T[0], WORKED_LR)
    plot.network_diagram(net, trace=trace, path=p, overwrite=force)
    _note(f"wrote {p}")
    return 0


def run_plot_network(
    model: str,
    path: str,
    *,
    trace_input: str | None = None,
    trace_target: str | None = None,
    lr: float = 0.5,
    force: bool = False,
) -> int:
    import numpy as np

    from . import plot

    p = _plot_check(path, force)
    net = _load_model(model)
    trace = None
    if trace_input is not None:
        pre = _preprocessor(net)
        try:
            x = pre.transform_values(_split(trace_input))[0]
        except ValueError as exc:
            raise CLIError(f"--trace-input: {exc}") from None
        t, _ = _trace_target(net, pre, trace_target)
        trace = trace_step(net, np.asarray(x, dtype=np.float64), t, lr)
    elif trace_target is not None:
        raise CLIError("--trace-target goes with --trace-input (the example whose step to draw)")
    plot.network_diagram(net, trace=trace, path=p, overwrite=force)
    _note(f"wrote {p}")
    return 0


def run_plot_regions(model: str, data: str, path: str, *, target: str | None = None, force: bool = False) -> int:
    from . import plot
    from .tabular import raw_input_network, read_table

    p = _plot_check(path, force)
    net = _load_model(model)
    if net.classes is None:
        raise CLIError("decision regions need a classifier; this model is a regressor")
    table = read_table(data)
    pre, targets = _preprocessing_and_targets(net, table, target)
    if len(pre.features) != 2 or any(f.kind != "numeric" for f in pre.features):
        raise CLIError(
            f"decision regions are drawn for a classifier of 2 numeric input columns; this model has "
            f"{len(pre.features)} ({', '.join(pre.feature_names)})"
        )
    pre.check_columns(table)
    labels = table[targets[0]]
    if labels.dtype.kind == "f":
        labels = labels.astype("int64")
    elif labels.dtype == object:
        labels = labels.astype(str)
    plot.decision_regions(raw_input_network(net, pre), pre.encode(table), labels, path=p, overwrite=force)
    _note(f"wrote {p}")
    return 0


def run_plot_loss(model: str, path: str, *, force: bool = False) -> int:
    from . import plot
    from .io import ModelFileError, load, load_checkpoint
    from .train import History

    p = _plot_check(path, force)
    src = _require_file(model, "model or checkpoint")
    try:
        history = load(src).metadata.get("training", {}).get("history")
    except ModelFileError as exc:
        if "checkpoint" not in str(exc):
            raise
        history = load_checkpoint(src)[1].get("history")
    if not history or not history.get("epoch"):
        raise CLIError(f"{src} holds no training history (it was not written by 'deltaprop train')")
    plot.loss_curve(History.from_dict(history), path=p, overwrite=force)
    _note(f"wrote {p}")
    return 0


# -------------------------------------------------------------------------------------------------- click
EPILOG_MAIN = """\b
Examples:
  deltaprop train                                  # the built-in digits, no files needed
  deltaprop train data.csv --target label --out model.safetensors
  deltaprop predict model.safetensors new.csv --out predictions.csv
  deltaprop evaluate model.safetensors test.csv --target label
  deltaprop trace model.safetensors --input 5.1,3.5,1.4,0.2 --target setosa
  deltaprop demo

A guide with examples for every command: docs/cli.md"""


def build_cli() -> Any:
    """The click command group (click is imported here, so that importing this module never needs it)."""
    import click

    ctx_settings = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

    @click.group(
        context_settings=ctx_settings,
        invoke_without_command=True,
        epilog=EPILOG_MAIN,
        help="Train multi-layer perceptrons by backpropagation, and see every number of a step.",
    )
    @click.version_option(__version__, "--version", prog_name="deltaprop", message="%(prog)s %(version)s")
    @click.option("--debug", is_flag=True, help="Show the full traceback when something goes wrong.")
    @click.pass_context
    def cli(ctx: click.Context, debug: bool) -> None:
        if ctx.invoked_subcommand is None:
            click.echo(ctx.get_help())

    # ---------------------------------------------------------------------------------------------- train
    @cli.command(
        "train",
        short_help="Train a network on a data file or built-in dataset; save it.",
        epilog="""\b
Examples:
  deltaprop train                                      # built-in digits, > 95 % in seconds
  deltaprop train --dataset moons --hidden 16 --epochs 200 --plot moons.png
  deltaprop train iris.csv --target species --hidden 16,16 --epochs 200
  deltaprop train houses.parquet --target price --task regression --patience 10
  deltaprop train data.npz --batch-size full --optimizer sgd --lr 0.1
  deltaprop train big.csv --target y --checkpoint run.ckpt
  deltaprop train big.csv --target y --checkpoint run.ckpt --resume run.ckpt
  deltaprop train huge.parquet --target y --stream      # larger than memory: bounded memory
  mpiexec -n 4 python -m mpi4py -m deltaprop train big.parquet --target y --distributed""",
    )
    @click.argument("data", required=False, metavar="[DATA]")
    @click.option(
        "--target", help="Column to predict (default: 'target', .npy: the last column, .npz: y); a,b: several."
    )
    @click.option("--dataset", help="Train on a built-in dataset instead of a file (see 'deltaprop datasets').")
    @click.option("--ignore", default="", metavar="COLS", help="Comma-separated columns to leave out (ids, notes…).")
    @click.option("--task", type=click.Choice(["classification", "regression"]), help="Default: from the target.")
    @click.option("--hidden", default="64", show_default=True, help="Hidden layer sizes, e.g. 64,32 ('none': none).")
    @click.option("--activation", default="relu", show_default=True, help="Hidden activation: relu, tanh, sigmoid…")
    @click.option("--output-activation", help="Default: softmax (classification), identity (regression).")
    @click.option("--loss", help="Default: cross_entropy (classification), mse (regression).")
    @click.option("--init", help="Initial weights: he_uniform (default for relu), glorot_uniform, uniform…")
    @click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
    @click.option("--optimizer", default="adam", show_default=True, help="sgd, adam, adamw, rmsprop, adagrad.")
    @click.option("--lr", type=float, help="Learning rate (default: the optimizer's own, 0.001 for adam).")
    @click.option("--schedule", help="Learning-rate schedule: step, exponential, cosine, plateau (default: none).")
    @click.option("--epochs", type=int, default=50, show_default=True, help="Most passes over the data.")
    @click.option("--batch-size", default="32", show_default=True, help="Examples per update, or 'full'.")
    @click.option(
        "--validation-split",
        type=float,
        help="Fraction held out to measure val loss/accuracy [default: 0.2; 0 for none].",
    )
    @click.option("--patience", type=int, help="Stop when val loss has not improved for this many epochs.")
    @click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same result.")
    @click.option("--checkpoint", metavar="PATH", help="Save everything needed to resume, as training goes.")
    @click.option("--checkpoint-every", default="epoch", show_default=True, help="'epoch' or a number of updates.")
    @click.option("--resume", metavar="PATH", help="Continue from a checkpoint (same data and options).")
    @click.option("--out", default="model.safetensors", show_default=True, metavar="MODEL", help="Model file.")
    @click.option("--force", is_flag=True, help="Replace existing output files.")
    @click.option("--plot", metavar="FILE.png", help="Loss curve (and FILE-regions.png for 2-input classifiers).")
    @click.option("--scale/--no-scale", default=True, show_default=True, help="Standardise inputs (and targets).")
    @click.option(
        "--stream/--no-stream",
        default=None,
        help="Read a CSV/TSV/Parquet file in chunks, twice, and train from a temporary file on disk: memory stays "
        "bounded whatever the file's size; validation holds out the last rows [default: only for files over 1 GiB].",
    )
    @click.option("--quiet", "-q", is_flag=True, help="No progress output.")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    @click.option(
        "--distributed",
        is_flag=True,
        help="Data-parallel over the MPI ranks of 'mpiexec -n N python -m mpi4py -m deltaprop train …' (extra [mpi]).",
    )
    def train(data: str | None, **options: Any) -> int:
        """Train a network on DATA (or a built-in dataset) and save it, preprocessing included.

        DATA is a CSV, TSV, Parquet, NPY or NPZ file. Numeric columns are standardised and text columns
        one-hot encoded; both are stored in the model, so 'deltaprop predict' takes raw data. Without DATA it
        trains on the built-in digits. The task is classification for a text, boolean or integer target with at
        most 20 values, otherwise regression (--task overrides).
        """
        return run_train(data, **options)

    # -------------------------------------------------------------------------------------------- predict
    @cli.command(
        "predict",
        short_help="Predict for every row of a data file.",
        epilog="""\b
Examples:
  deltaprop predict model.safetensors new.csv                 # CSV on stdout
  deltaprop predict model.safetensors new.parquet --out predictions.parquet
  deltaprop predict model.safetensors new.csv --proba --out p.csv --force""",
    )
    @click.argument("model")
    @click.argument("data")
    @click.option("--out", metavar="FILE", help="Write a .csv, .tsv or .parquet file instead of CSV on stdout.")
    @click.option("--proba", is_flag=True, help="Add one probability column per class (classifiers).")
    @click.option("--force", is_flag=True, help="Replace an existing --out file.")
    def predict(model: str, data: str, out: str | None, proba: bool, force: bool) -> int:
        """Predict for every row of DATA with MODEL.

        Columns are matched by name to the training columns; extra columns (such as the target) are ignored.
        Output: a 'prediction' column (and 'proba_<class>' columns with --proba), one row per input row.
        """
        return run_predict(model, data, out=out, proba=proba, force=force)

    # ------------------------------------------------------------------------------------------- evaluate
    @cli.command(
        "evaluate",
        short_help="Accuracy, F1 and confusion matrix (or MSE, MAE, R²) of a model.",
        epilog="""\b
Examples:
  deltaprop evaluate model.safetensors test.csv
  deltaprop evaluate model.safetensors test.csv --target label --json""",
    )
    @click.argument("model")
    @click.argument("data")
    @click.option("--target", help="Column with the true values (default: the column the model was trained on).")
    @click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
    def evaluate(model: str, data: str, target: str | None, as_json: bool) -> int:
        """Measure MODEL on DATA: accuracy, precision/recall/F1 and the confusion matrix for a classifier;
        MSE, MAE and R² for a regressor."""
        return run_evaluate(model, data, target=target, as_json=as_json)

    # ---------------------------------------------------------------------------------------------- trace
    @cli.command(
        "trace",
        short_help="One backpropagation step of a model, every number.",
        epilog="""\b
Examples:
  deltaprop trace model.safetensors --input 5.1,3.5,1.4,0.2 --target setosa
  deltaprop trace model.safetensors --input 0.05,0.10 --target 0.01,0.99 --lr 0.5 --full
  deltaprop trace model.safetensors --input 2.5,red --target 7.5 --json""",
    )
    @click.argument("model")
    @click.option("--input", "input_text", required=True, help="One example's raw values, comma-separated.")
    @click.option("--target", "target_text", help="Its class label, or its target value(s). Required.")
    @click.option("--lr", type=float, default=0.5, show_default=True, help="Learning rate η of the step.")
    @click.option("--full", is_flag=True, help="Every weight, however large the network.")
    @click.option("--json", "as_json", is_flag=True, help="Every number as JSON, keyed by the seed's names.")
    def trace(model: str, input_text: str, target_text: str | None, lr: float, full: bool, as_json: bool) -> int:
        """One backpropagation step of MODEL on one example, every number: forward pass, error, backward
        pass, update (the model file is not changed).

        The input is preprocessed as 'deltaprop predict' would. Networks up to 60 parameters are shown in
        full, bigger ones as a per-layer summary (--full shows everything).
        """
        return run_trace(model, input_text=input_text, target_text=target_text, lr=lr, full=full, as_json=as_json)

    # ------------------------------------------------------------------------------------------- datasets
    @cli.group(
        "datasets",
        invoke_without_command=True,
        epilog="""\b
Examples:
  deltaprop datasets
  deltaprop datasets export moons moons.csv
  deltaprop datasets export digits digits.parquet --force""",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
    @click.pass_context
    def datasets_group(ctx: click.Context, as_json: bool) -> int:
        """List the built-in datasets, or export one to a file."""
        if ctx.invoked_subcommand is None:
            return run_datasets_list(as_json)
        return 0

    @datasets_group.command(
        "export",
        epilog="""\b
Examples:
  deltaprop datasets export moons moons.csv
  deltaprop datasets export two_spirals spirals.npz --force""",
    )
    @click.argument("name")
    @click.argument("file")
    @click.option("--force", is_flag=True, help="Replace an existing file.")
    def datasets_export(name: str, file: str, force: bool) -> int:
        """Write the built-in dataset NAME to FILE (.csv, .tsv, .parquet or .npz), ready for 'deltaprop train'."""
        return run_datasets_export(name, file, force=force)

    # ----------------------------------------------------------------------------------------------- demo
    @cli.command(
        "demo",
        epilog="""\b
Examples:
  deltaprop demo
  deltaprop demo one-weight --lr 0.3
  deltaprop demo --json""",
    )
    @click.argument(
        "example", required=False, default="2-2-2", metavar="[EXAMPLE]", type=click.Choice(["2-2-2", "one-weight"])
    )
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON keyed by the seed's names.")
    @click.option("--steps", type=int, default=None, help="Training steps (default 10000; one-weight 12).")
    @click.option("--lr", type=float, default=0.3, show_default=True, help="Learning rate of the one-weight descent.")
    def demo(example: str, as_json: bool, steps: int | None, lr: float) -> int:
        """Walk through the seed's worked examples step by step.

        Prints one backpropagation step of the seed's 2-2-2 example, then trains it; EXAMPLE 'one-weight' shows
        the one-weight example instead.
        """
        if example == "one-weight":
            text = demo_one_weight(as_json, lr, steps or 12)
        else:
            text = demo_worked(as_json, steps or 10_000)
        click.echo(text)
        return 0

    # ---------------------------------------------------------------------------------------------- bench
    @cli.command(
        "bench",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        short_help="Benchmark deltaprop against PyTorch and scikit-learn on this machine.",
        add_help_option=False,
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def bench(args: tuple[str, ...]) -> int:
        """Run the benchmark suite (workloads L, M, S, O); 'deltaprop bench --help' lists its options."""
        from .benchmark import main as bench_main

        return bench_main(list(args))

    # -------------------------------------------------------------------------------------------- explore
    @cli.command(
        "explore",
        short_help="Step through backpropagation and watch training in your web browser.",
        epilog="""\b
Examples:
  deltaprop explore
  deltaprop explore --port 8765 --no-browser""",
    )
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (this computer only).")
    @click.option("--port", type=int, default=0, show_default=True, help="Port; 0 picks a free one.")
    @click.option("--no-browser", is_flag=True, help="Print the address without opening a web browser.")
    def explore(host: str, port: int, no_browser: bool) -> int:
        """Serve the backprop explorer page (docs/explorer.md) until Ctrl+C."""
        from .explore import main as explore_main

        return explore_main(host=host, port=port, open_browser=not no_browser)

    # ----------------------------------------------------------------------------------------------- plot
    @cli.group(
        "plot",
        short_help="Draw figures: loss curve, decision regions, network diagrams.",
        epilog="""\b
Examples:
  deltaprop plot worked-example worked.png
  deltaprop plot one-weight descent.svg --lr 0.3
  deltaprop plot network model.safetensors net.png --trace-input 5.1,3.5,1.4,0.2 --trace-target setosa
  deltaprop plot regions model.safetensors moons.csv regions.png
  deltaprop plot loss model.safetensors loss.png""",
    )
    def plot_group() -> None:
        """Draw figures (.png, .svg or .pdf; needs the [plot] extra, matplotlib)."""

    @plot_group.command(
        "one-weight",
        short_help="The one-weight example's error curve and descent.",
        epilog="""\b
Examples:
  deltaprop plot one-weight descent.png
  deltaprop plot one-weight descent.svg --lr 0.9 --steps 8""",
    )
    @click.argument("file")
    @click.option("--lr", type=float, default=0.3, show_default=True, help="Learning rate η.")
    @click.option("--steps", type=int, default=12, show_default=True, help="Descent steps drawn.")
    @click.option("--force", is_flag=True, help="Replace an existing file.")
    def plot_one_weight(file: str, lr: float, steps: int, force: bool) -> int:
        """E(W) of the one-weight model y = W·x and gradient descent walking down to W = 2."""
        return run_plot_one_weight(file, lr=lr, steps=steps, force=force)

    @plot_group.command(
        "worked-example",
        short_help="The 2-2-2 worked example with every number.",
        epilog="""\b
Example:
  deltaprop plot worked-example worked.png""",
    )
    @click.argument("file")
    @click.option("--force", is_flag=True, help="Replace an existing file.")
    def plot_worked(file: str, force: bool) -> int:
        """The seed's 2-2-2 network with every number of its first step written on it."""
        return run_plot_worked_example(file, force=force)

    @plot_group.command(
        "network",
        short_help="A model's units and weights (optionally one traced step).",
        epilog="""\b
Examples:
  deltaprop plot network model.safetensors net.png
  deltaprop plot network model.safetensors step.png --trace-input 0.5,0.2 --trace-target 1""",
    )
    @click.argument("model")
    @click.argument("file")
    @click.option("--trace-input", help="Write one step's numbers for this raw example (comma-separated).")
    @click.option("--trace-target", help="Its class label or target value(s) (needed with --trace-input).")
    @click.option("--lr", type=float, default=0.5, show_default=True, help="Learning rate η of the traced step.")
    @click.option("--force", is_flag=True, help="Replace an existing file.")
    def plot_network(
        model: str, file: str, trace_input: str | None, trace_target: str | None, lr: float, force: bool
    ) -> int:
        """MODEL as units and weights (width ∝ |w|, blue negative, red positive)."""
        return run_plot_network(model, file, trace_input=trace_input, trace_target=trace_target, lr=lr, force=force)

    @plot_group.command(
        "regions",
        short_help="Decision regions of a 2-input classifier.",
        epilog="""\b
Example:
  deltaprop plot regions model.safetensors moons.csv regions.png""",
    )
    @click.argument("model")
    @click.argument("data")
    @click.argument("file")
    @click.option("--target", help="Column with the class labels (default: the model's target column).")
    @click.option("--force", is_flag=True, help="Replace an existing file.")
    def plot_regions(model: str, data: str, file: str, target: str | None, force: bool) -> int:
        """The decision regions of a classifier with 2 numeric input columns, with DATA's points on top."""
        return run_plot_regions(model, data, file, target=target, force=force)

    @plot_group.command(
        "loss",
        short_help="The loss curve of a trained model or checkpoint.",
        epilog="""\b
Examples:
  deltaprop plot loss model.safetensors loss.png
  deltaprop plot loss run.ckpt loss.svg                    # a run still in progress""",
    )
    @click.argument("model")
    @click.argument("file")
    @click.option("--force", is_flag=True, help="Replace an existing file.")
    def plot_loss(model: str, file: str, force: bool) -> int:
        """The loss curve stored in a model or checkpoint written by 'deltaprop train'."""
        return run_plot_loss(model, file, force=force)

    return cli


# --------------------------------------------------------------------------------------------------- main
def _error(message: str) -> None:
    text = " ".join(str(message).split()) or "unknown error"
    sys.stderr.write(f"deltaprop: error: {text}\n")


def _user_errors() -> tuple[type[BaseException], ...]:
    from .backend import MissingExtraError
    from .io import ModelFileError
    from .tabular import DataFileError

    return (
        CLIError,
        DataFileError,
        ModelFileError,
        MissingExtraError,
        ValueError,
        TypeError,
        OSError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deltaprop`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:cut] or os.environ.get("DELTAPROP_DEBUG", "") not in ("", "0")
    args = [a for i, a in enumerate(args) if not (a == "--debug" and i < cut)]
    try:
        import click
    except ImportError:
        _error('the deltaprop command needs the optional package click; install it with: pip install "deltaprop[cli]"')
        return 2
    try:
        rv = build_cli().main(args=args, prog_name="deltaprop", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("deltaprop: interrupted\n")
        return 130
    except click.exceptions.UsageError as exc:
        if debug:
            traceback.print_exc()
        command = exc.ctx.command_path if exc.ctx is not None else "deltaprop"
        _error(f"{exc.format_message()} (see '{command} --help')")
        return 2
    except click.exceptions.ClickException as exc:
        if debug:
            traceback.print_exc()
        _error(exc.format_message())
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("deltaprop: interrupted\n")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if isinstance(exc, _user_errors()):
            _error(str(exc) if str(exc) else type(exc).__name__)
            return 2
        _error(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug in deltaprop; run again with --debug for the "
            "traceback and report it)"
        )
        return 1
    return rv if isinstance(rv, int) else 0


def _quiet_stdout() -> None:
    """After a closed pipe (``deltaprop predict … | head``), send what is left to /dev/null instead of failing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
