"""What the explorer explores: sessions, networks, one traced step, training — every number from deltaprop.

This module knows nothing about HTTP. The server (:mod:`deltaprop.explore.server`) turns requests into calls of
:class:`SessionStore` and :class:`Model` and their JSON-ready answers back into responses. The page draws what it is
sent and never computes a value of its own: net inputs, outputs, errors, δs, gradients, updated weights, losses,
accuracies and decision regions all come from the library (``trace_step``, ``Network``, the optimisers).

Bad input raises :class:`ExploreError` with a message for the person using the page (the server answers 4xx).

>>> store = SessionStore()
>>> session = store.create()
>>> state = session.build({"example": "worked"})
>>> state["layer_sizes"], state["loss"]
([2, 2, 2], 'squared_error')
>>> payload = session.trace({})
>>> round(payload["trace"]["values"]["out_h1"], 9), round(payload["trace"]["values"]["w5_new"], 8)
(0.593269992, 0.35891648)
"""

from __future__ import annotations

import csv
import io
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import datasets as _datasets
from ..examples import (
    ONE_WEIGHT_T,
    ONE_WEIGHT_X,
    WORKED_LR,
    WORKED_T,
    WORKED_X,
    one_weight_network,
    worked_example_network,
)
from ..network import MLP, Network
from ..optim import get_optimizer
from ..trace import Trace, _par, _sum, trace_step, unit_names  # the text trace's way of writing formulas
from ..train import encode_targets, score

__all__ = [
    "ExploreError",
    "NotFound",
    "LIMITS",
    "SessionStore",
    "Session",
    "Model",
    "UploadedData",
    "parse_csv",
    "options",
]

# ------------------------------------------------------------------------------------------------------ limits
#: Hard limits on what one session may ask for (also sent to the page by ``GET /api/info``).
LIMITS: dict[str, int | float] = {
    "max_hidden_layers": 6,  # so a network has at most 8 layers, counting the inputs and the outputs
    "max_units": 64,  # per hidden layer
    "max_inputs": 64,  # columns of an uploaded file used as inputs
    "max_classes": 20,
    "max_steps": 2000,  # training steps per request
    "max_seconds": 2.0,  # a training request stops after this long, whatever the steps asked
    "max_sessions": 16,  # the least recently used session is forgotten beyond this
    "max_upload_bytes": 2 * 1024 * 1024,
    "max_rows": 20_000,
    "max_samples": 2000,  # points of a built-in dataset
    "max_grid": 120,  # decision-region grid points per side
    "max_draw_units": 16,  # a layer wider than this is drawn as a summary
    "max_draw_params": 300,  # a network with more parameters is drawn (and traced) as a summary
    "max_history": 1000,  # points of the loss curve kept (older ones are thinned)
    "max_path": 500,  # steps of the one-weight walk kept
    "max_points": 2000,  # data points sent for the scatter plot
}

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity")
OUTPUT_ACTIVATIONS = ("sigmoid", "tanh", "identity")  # for squared_error / mse; the cross-entropies fix their own
LOSSES = ("squared_error", "mse", "binary_cross_entropy", "cross_entropy")
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad")
BUILTIN_DATASETS = {
    "xor": "XOR: the four corners of the unit square, class 1 where exactly one input is on",
    "moons": "Two moons: two interleaving half circles",
    "circles": "Two circles: a circle inside a larger one",
    "spirals": "Two spirals (Lang and Witbrock): three turns each",
}


class ExploreError(ValueError):
    """A request the explorer cannot honour; the message is shown on the page."""

    status = 400


class NotFound(ExploreError):
    """No such session (it expired, or the server restarted)."""

    status = 404


def options() -> dict[str, Any]:
    """What the page may choose from, and the limits (``GET /api/info``)."""
    from .. import __version__

    return {
        "version": __version__,
        "limits": dict(LIMITS),
        "examples": {
            "worked": "The seed's 2-2-2 worked example (inputs .05/.10, targets .01/.99, η = 0.5)",
            "one_weight": "One weight: y = W·x on x = 0, 1, 2 with targets 0, 2, 4",
            "custom": "Build a network on a dataset",
        },
        "datasets": {**BUILTIN_DATASETS, "upload": "An uploaded CSV file (numeric columns)"},
        "activations": list(HIDDEN_ACTIVATIONS),
        "output_activations": list(OUTPUT_ACTIVATIONS),
        "losses": list(LOSSES),
        "optimizers": list(OPTIMIZERS),
    }


# ------------------------------------------------------------------------------------------------ numbers
def num(x: Any) -> float | None:
    """A float for JSON: None where it is missing, NaN or infinite (JSON has no such numbers)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _clean(value: Any) -> Any:
    """Recursively replace NaN/inf floats with None so that the answer is valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def fmt(v: float, digits: int = 9) -> str:
    """A number as the traces print it: 9 significant digits, scientific notation below 1e-4."""
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0 or abs(v) >= 1e-4:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


def _out(unit: str) -> str:
    return unit if unit.startswith("i") else f"out_{unit}"


# ------------------------------------------------------------------------------------------- config checks
def _get(config: dict[str, Any], key: str, default: Any) -> Any:
    value = config.get(key, default)
    return default if value is None else value


def _int(config: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = _get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ExploreError(f"{key} must be a whole number, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ExploreError(f"{key} must be between {low} and {high}, got {value}")
    return value


def _float(config: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = _get(config, key, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ExploreError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ExploreError(f"{key} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ExploreError(f"{key} must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def _choice(config: dict[str, Any], key: str, default: str, allowed: Any) -> str:
    value = _get(config, key, default)
    if not isinstance(value, str) or value not in allowed:
        raise ExploreError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _hidden(config: dict[str, Any]) -> list[int]:
    value = _get(config, "hidden", [4])
    if isinstance(value, str):  # "8, 8" from a text field
        parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise ExploreError(f"hidden must list layer widths such as 8, 8; got {config.get('hidden')!r}") from None
    if not isinstance(value, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in value):
        raise ExploreError(f"hidden must be a list of layer widths such as [8, 8], got {value!r}")
    max_layers, max_units = int(LIMITS["max_hidden_layers"]), int(LIMITS["max_units"])
    if len(value) > max_layers:
        raise ExploreError(f"at most {max_layers} hidden layers (so {max_layers + 2} layers in all), got {len(value)}")
    for n in value:
        if not 1 <= n <= max_units:
            raise ExploreError(f"a hidden layer has 1 to {max_units} units, got {n}")
    return list(value)


# ------------------------------------------------------------------------------------------------ uploads
@dataclass
class UploadedData:
    """A parsed CSV file: the input columns, the target column, and the task it implies."""

    name: str
    X: np.ndarray
    y: np.ndarray  # class labels (int) or regression targets (float, 1-D)
    feature_names: list[str]
    target_name: str
    task: str  # "classification" or "regression"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "n_rows": int(self.X.shape[0]),
            "n_features": int(self.X.shape[1]),
            "feature_names": self.feature_names,
            "target_name": self.target_name,
            "task": self.task,
        }
        if self.task == "classification":
            out["classes"] = [_label(c) for c in np.unique(self.y)]
        return out


def _label(v: Any) -> Any:
    f = float(v)
    return int(f) if f == int(f) else f


def parse_csv(data: bytes, *, target: str | None = None, task: str | None = None, name: str = "upload") -> UploadedData:
    """Parse an uploaded CSV file: numeric columns, a header row or none, the target the last column by default.

    ``target`` names the target column, or gives its position (0 = first, -1 = last). ``task`` is
    ``classification`` or ``regression``; by default a target of whole numbers with at most ``max_classes``
    values is a class label, anything else a regression target.
    """
    limit = int(LIMITS["max_upload_bytes"])
    if len(data) > limit:
        raise ExploreError(f"the file is {len(data):,} bytes; the limit is {limit:,} bytes (2 MB)")
    if not data.strip():
        raise ExploreError("the file is empty")
    if b"\x00" in data:
        raise ExploreError("this is not a CSV text file (it contains binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExploreError("this is not a CSV text file (it is not UTF-8 text)") from None
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ExploreError("the file needs at least two rows of numbers")

    def is_number(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return True

    header: list[str] | None = None
    if not all(is_number(c.strip()) for c in rows[0]):
        header = [c.strip() or f"column {j + 1}" for j, c in enumerate(rows[0])]
        rows = rows[1:]
    if len(rows) < 2:
        raise ExploreError("the file needs at least two rows of numbers below its header")
    max_rows = int(LIMITS["max_rows"])
    if len(rows) > max_rows:
        raise ExploreError(f"the file has {len(rows):,} rows; the explorer takes at most {max_rows:,}")
    n_cols = len(header) if header is not None else len(rows[0])
    if n_cols < 2:
        raise ExploreError("the file needs at least two columns: one or more inputs and a target")
    names = header if header is not None else [f"x{j + 1}" for j in range(n_cols)]
    values = np.empty((len(rows), n_cols))
    first_line = 2 if header is not None else 1
    for i, row in enumerate(rows):
        if len(row) != n_cols:
            raise ExploreError(f"line {i + first_line} has {len(row)} columns, expected {n_cols}")
        for j, cell in enumerate(row):
            try:
                v = float(cell.strip())
            except ValueError:
                shown = cell.strip()[:40]
                raise ExploreError(
                    f"line {i + first_line}, column {names[j]!r}: {shown!r} is not a number "
                    "(the explorer takes numeric columns only)"
                ) from None
            if not math.isfinite(v):
                raise ExploreError(f"line {i + first_line}, column {names[j]!r}: {cell.strip()!r} is not finite")
            values[i, j] = v
    t = _target_index(target, names)
    y_col = values[:, t]
    X = np.delete(values, t, axis=1)
    feature_names = [n for j, n in enumerate(names) if j != t]
    if X.shape[1] > int(LIMITS["max_inputs"]):
        limit_inputs = LIMITS["max_inputs"]
        raise ExploreError(f"the file has {X.shape[1]} input columns; the explorer takes at most {limit_inputs}")
    whole = bool(np.all(y_col == np.round(y_col)))
    n_distinct = int(np.unique(y_col).size)
    if task is None or task == "":
        task = "classification" if whole and 2 <= n_distinct <= int(LIMITS["max_classes"]) else "regression"
    if task == "classification":
        if not whole:
            raise ExploreError(f"the target {names[t]!r} has fractional values: class labels must be whole numbers")
        if n_distinct < 2:
            raise ExploreError(f"the target {names[t]!r} has a single class; a classifier needs at least two")
        if n_distinct > int(LIMITS["max_classes"]):
            raise ExploreError(f"the target {names[t]!r} has {n_distinct} classes; at most {LIMITS['max_classes']}")
        y: np.ndarray = y_col.astype(np.int64)
    elif task == "regression":
        y = y_col.astype(np.float64)
    else:
        raise ExploreError(f"task must be classification or regression, got {task!r}")
    clean_name = "".join(c for c in name if c.isprintable())[:80] or "upload"
    return UploadedData(clean_name, X, y, feature_names, names[t], task)


def _target_index(target: str | None, names: list[str]) -> int:
    if target is None or target == "":
        return len(names) - 1
    if target in names:
        return names.index(target)
    try:
        k = int(target)
    except ValueError:
        raise ExploreError(f"no column named {target!r}; the columns are {', '.join(names)}") from None
    if not -len(names) <= k < len(names):
        raise ExploreError(f"target column {k} is out of range: the file has {len(names)} columns")
    return k % len(names)


# ------------------------------------------------------------------------------------------------- the model
@dataclass
class Model:
    """A network being explored, its data, its optimiser and its history."""

    example: str  # worked, one_weight, custom
    config: dict[str, Any]
    net: Network
    X: np.ndarray  # the inputs as given (original units)
    Xn: np.ndarray  # the inputs the network sees (standardised for custom datasets)
    T: np.ndarray  # training targets, one row per example
    y: np.ndarray | None  # class labels (classification) or targets (regression); None for the seed's examples
    task: str  # classification, regression, or "example"
    lr: float
    optimizer_name: str
    dataset_info: dict[str, Any]
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    optimizer: Any = None
    opt_state: dict[str, Any] | None = None
    steps: int = 0
    history_steps: list[int] = field(default_factory=list)
    history_loss: list[float | None] = field(default_factory=list)
    path: list[dict[str, Any]] = field(default_factory=list)  # one-weight walk
    next_row: int = 0
    diverged: bool = False

    # -------------------------------------------------------------------- building
    @classmethod
    def build(cls, config: Any, upload: UploadedData | None = None) -> Model:
        if not isinstance(config, dict):
            raise ExploreError("the request body must be a JSON object")
        example = _choice(config, "example", "worked", ("worked", "one_weight", "custom"))
        if example == "worked":
            return cls._worked(config)
        if example == "one_weight":
            return cls._one_weight(config)
        return cls._custom(config, upload)

    @classmethod
    def _worked(cls, config: dict[str, Any]) -> Model:
        lr = _float(config, "lr", WORKED_LR, 0.0, 10.0)
        train_biases = bool(_get(config, "train_biases", False))
        net = worked_example_network(train_biases=train_biases)
        norm = {"example": "worked", "lr": lr, "train_biases": train_biases}
        info = {
            "name": "worked example",
            "description": "One example: inputs i1 = 0.05, i2 = 0.10, targets 0.01, 0.99; b1 = .35, b2 = .60"
            + (" (biases trained)" if train_biases else " (biases held fixed, as published)"),
            "n_rows": 1,
            "n_features": 2,
            "task": "example",
        }
        X = WORKED_X.astype(np.float64)
        return cls("worked", norm, net, X, X, WORKED_T.astype(np.float64), None, "example", lr, "sgd", info)

    @classmethod
    def _one_weight(cls, config: dict[str, Any]) -> Model:
        W0 = _float(config, "W0", 3.0, -10.0, 10.0)
        lr = _float(config, "lr", 0.3, 0.0, 2.0)
        net = one_weight_network(W0)
        norm = {"example": "one_weight", "lr": lr, "W0": W0}
        info = {
            "name": "one weight",
            "description": "y = W·x on inputs 0, 1, 2 with desired outputs 0, 2, 4; E = mean of ½(t − y)²",
            "n_rows": 3,
            "n_features": 1,
            "task": "example",
        }
        X = ONE_WEIGHT_X.astype(np.float64)
        T = ONE_WEIGHT_T.astype(np.float64)
        return cls("one_weight", norm, net, X, X, T, None, "example", lr, "sgd", info)

    @classmethod
    def _custom(cls, config: dict[str, Any], upload: UploadedData | None) -> Model:
        dataset = _choice(config, "dataset", "xor", (*BUILTIN_DATASETS, "upload"))
        hidden = _hidden(config)
        activation = _choice(config, "activation", "tanh", HIDDEN_ACTIVATIONS)
        lr = _float(config, "lr", 0.05, 0.0, 10.0)
        optimizer = _choice(config, "optimizer", "adam", OPTIMIZERS)
        seed = _int(config, "seed", 0, 0, 2**31 - 1)
        standardize = bool(_get(config, "standardize", True))
        norm: dict[str, Any] = {
            "example": "custom",
            "dataset": dataset,
            "hidden": hidden,
            "activation": activation,
            "lr": lr,
            "optimizer": optimizer,
            "seed": seed,
            "standardize": standardize,
        }
        if dataset == "upload":
            if upload is None:
                raise ExploreError("upload a CSV file first (or pick a built-in dataset)")
            X, y, task = upload.X, upload.y, upload.task
            info = upload.summary()
            info["description"] = f"Uploaded file {upload.name!r}: predicting {upload.target_name!r} ({task})"
            feature_names = upload.feature_names
        else:
            n_samples = _int(config, "n_samples", 200, 4, int(LIMITS["max_samples"]))
            noise = _float(config, "noise", {"moons": 0.1, "circles": 0.05, "spirals": 0.0}.get(dataset, 0.0), 0, 2)
            if dataset == "xor":
                ds = _datasets.xor()
            elif dataset == "moons":
                ds = _datasets.moons(n_samples=n_samples, noise=noise, seed=seed)
            elif dataset == "circles":
                ds = _datasets.circles(n_samples=n_samples, noise=noise, seed=seed)
            else:
                ds = _datasets.two_spirals(n_samples=n_samples, noise=noise, seed=seed)
            if dataset != "xor":
                norm.update(n_samples=n_samples, noise=noise)
            X, y, task = ds.X, ds.y, "classification"
            feature_names = list(ds.feature_names)
            info = {
                "name": dataset,
                "description": ds.description,
                "n_rows": int(X.shape[0]),
                "n_features": int(X.shape[1]),
                "feature_names": feature_names,
                "target_name": "class",
                "task": task,
                "classes": [int(c) for c in np.unique(y)],
            }
        n_classes = int(np.unique(y).size) if task == "classification" else 0
        loss_default = "binary_cross_entropy" if n_classes == 2 else "cross_entropy" if n_classes else "squared_error"
        loss = _choice(config, "loss", loss_default, LOSSES)
        if task == "regression" and loss in ("binary_cross_entropy", "cross_entropy"):
            raise ExploreError(f"{loss} needs class labels, but this target is numeric (regression): use squared_error")
        if loss == "binary_cross_entropy" and n_classes != 2:
            raise ExploreError(
                f"binary_cross_entropy needs two classes; this dataset has {n_classes}: use cross_entropy"
            )
        if loss == "cross_entropy":
            out_act, n_out = "softmax", n_classes
        elif loss == "binary_cross_entropy":
            out_act, n_out = "sigmoid", 1
        else:
            out_default = "sigmoid" if task == "classification" else "identity"
            out_act = _choice(config, "output_activation", out_default, OUTPUT_ACTIVATIONS)
            n_out = (1 if n_classes == 2 else n_classes) if task == "classification" else 1
            norm["output_activation"] = out_act
        norm["loss"] = loss
        layer_sizes = [int(X.shape[1]), *hidden, n_out]
        net = MLP(
            layer_sizes,
            activation=activation,
            output_activation=out_act,
            loss=loss,
            init="glorot_uniform" if activation in ("tanh", "sigmoid", "identity", "softplus") else "he_uniform",
            dtype="float64",
            seed=seed,
        )
        mean = X.mean(axis=0) if standardize else np.zeros(X.shape[1])
        std = X.std(axis=0) if standardize else np.ones(X.shape[1])
        std = np.where(std > 0, std, 1.0)
        Xn = (X - mean) / std
        if task == "classification":
            T, classes, _index = encode_targets(net, y, "classification")
            net.classes = classes
        else:
            T, _, _ = encode_targets(net, y, "regression")
        info["feature_names"] = feature_names
        model = cls("custom", norm, net, X, Xn, T, y, task, lr, optimizer, info, mean=mean, std=std)
        model.optimizer = get_optimizer(optimizer, lr)
        model.opt_state = model.optimizer.init(net.theta)
        return model

    # -------------------------------------------------------------------- training
    def _record(self, E: float) -> None:
        self.steps += 1
        value = num(E)
        if value is None:
            self.diverged = True
        self.history_steps.append(self.steps)
        self.history_loss.append(value)
        limit = int(LIMITS["max_history"])
        if len(self.history_steps) > limit:  # thin the older half, keep the newest points
            half = len(self.history_steps) // 2
            self.history_steps = self.history_steps[:half:2] + self.history_steps[half:]
            self.history_loss = self.history_loss[:half:2] + self.history_loss[half:]

    def train(self, steps: int) -> dict[str, Any]:
        """``steps`` updates on the whole dataset (one example for the worked example), within the time limit."""
        net, T = self.net, self.T
        deadline = time.monotonic() + float(LIMITS["max_seconds"])
        done = 0
        with np.errstate(all="ignore"):
            for _ in range(steps):
                if self.diverged:
                    break
                out = net._forward(self.Xn)
                E = net.loss_function.value(out, T, net.layers[-1].net)
                if self.example == "one_weight":
                    W = float(net.layers[0].W[0, 0])
                    net._backward(T)
                    grad = float(net.layers[0].dW[0, 0])
                    net.step(self.lr)
                    self._walk(W, E, grad)
                elif self.optimizer is None:
                    net._backward(T)
                    net.step(self.lr)
                else:
                    net._backward(T)
                    self.optimizer.step(net.theta, net.grad, self.opt_state)
                self._record(E)
                done += 1
                if not np.all(np.isfinite(net.theta)):
                    self.diverged = True
                if time.monotonic() > deadline:
                    break
        return {"steps_done": done, "time_limited": done < steps and not self.diverged}

    def _walk(self, W: float, E: float, grad: float) -> None:
        W_new = num(self.net.layers[0].W[0, 0])
        self.path.append({"step": self.steps + 1, "W": num(W), "E": num(E), "dE_dW": num(grad), "W_new": W_new})
        if len(self.path) > int(LIMITS["max_path"]):
            del self.path[0]

    # -------------------------------------------------------------------- one traced step
    def trace(self, body: dict[str, Any]) -> dict[str, Any]:
        """One step, number by number, as phases the page reveals one after the other (the network is updated)."""
        if self.diverged:
            raise ExploreError("training diverged (the loss is not finite): lower the learning rate and reset")
        if self.example == "one_weight":
            return self._trace_one_weight()
        n = int(self.Xn.shape[0])
        row = body.get("row")
        if row is None:
            row = self.next_row % n
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < n:
            raise ExploreError(f"row must be a whole number from 0 to {n - 1}, got {row!r}")
        self.next_row = (row + 1) % n
        lr = self.lr
        # the loss curve shows the loss over all the data; the traced step sees (and updates on) one example
        E_all = self.current_loss() if n > 1 else None
        with np.errstate(all="ignore"):
            trace = trace_step(self.net, self.Xn[row], self.T[row], lr)
        self._record(trace.E_total if E_all is None else E_all)
        full = self.drawable()
        return {
            "kind": "trace",
            "row": row,
            "n_rows": n,
            "x_raw": self.X[row].tolist(),
            "full": full,
            "lr": lr,
            "names": unit_names(self.net.layer_sizes),
            "values": trace.to_dict() if full else _summary_values(trace),
            "phases": _phases(trace, full),
            "text": trace.to_text(full=full) if len(trace.params) <= 5000 else "",
        }

    def _trace_one_weight(self) -> dict[str, Any]:
        net = self.net
        W = float(net.layers[0].W[0, 0])
        out = net._forward(self.Xn)
        E = net.loss_function.value(out, self.T)
        net._backward(self.T)
        grad = float(net.layers[0].dW[0, 0])
        net.step(self.lr)
        W_new = float(net.layers[0].W[0, 0])
        self._walk(W, E, grad)
        self._record(E)
        E_new = net.loss(self.Xn, self.T)
        xs, ts, ys = self.X[:, 0], self.T[:, 0], out[:, 0]
        forward = [
            _item(f"y{k + 1}", f"y{k + 1}", f"W·x{k + 1}", f"{fmt(W)}·{_par(fmt(x))}", y)
            for k, (x, y) in enumerate(zip(xs, ys))
        ]
        n = len(xs)
        error = [
            _item(
                "E",
                "E",
                f"(1/{n})·Σ ½(t_k − y_k)²",
                f"(1/{n})·(" + " + ".join(f"½({fmt(t)} − {_par(fmt(y))})²" for t, y in zip(ts, ys)) + ")",
                E,
            )
        ]
        backward = [
            _item(
                "dE_dW",
                "dE/dW",
                f"(1/{n})·Σ (y_k − t_k)·x_k",
                f"(1/{n})·(" + " + ".join(f"({fmt(y)} − {fmt(t)})·{_par(fmt(x))}" for x, t, y in zip(xs, ts, ys)) + ")",
                grad,
            )
        ]
        update = [
            _item("W_new", "W⁺", "W − η·dE/dW", f"{fmt(W)} − {fmt(self.lr)}·{_par(fmt(grad))}", W_new),
            _item("E_new", "E after the update", "E(W⁺)", "", E_new),
        ]
        values = {"W": W, "E": E, "dE_dW": grad, "W_new": W_new, "E_new": E_new, "lr": self.lr}
        values.update({f"y{k + 1}": float(y) for k, y in enumerate(ys)})
        return {
            "kind": "one_weight",
            "full": True,
            "lr": self.lr,
            "names": [["i1"], ["o1"]],
            "values": values,
            "phases": [
                _phase("forward-1", "forward", 1, "Forward pass: the outputs y = W·x", forward),
                _phase("error", "error", 1, "Error over the three examples", error),
                _phase("backward-1", "backward", 1, "Backward pass: the slope dE/dW", backward),
                _phase("update", "update", 0, "Update: step against the slope", update),
            ],
            "text": "",
        }

    # -------------------------------------------------------------------- what the page shows
    def drawable(self) -> bool:
        sizes = self.net.layer_sizes
        return self.net.n_params <= int(LIMITS["max_draw_params"]) and max(sizes) <= int(LIMITS["max_draw_units"])

    def current_loss(self) -> float | None:
        with np.errstate(all="ignore"):
            out = self.net._forward(self.Xn)
            return num(self.net.loss_function.value(out, self.T, self.net.layers[-1].net))

    def metrics(self) -> dict[str, Any]:
        if self.task not in ("classification", "regression") or self.diverged:
            return {}
        assert self.y is not None
        with np.errstate(all="ignore"):
            value = score(self.net, self.Xn, self.y)
        return {"accuracy": num(value)} if self.task == "classification" else {"r2": num(value)}

    def weights(self) -> dict[str, Any]:
        if self.drawable():
            return {
                "layers": [{"W": layer.W.tolist(), "b": layer.b.tolist()} for layer in self.net.layers],
                "bias_trainable": [layer.bias_trainable for layer in self.net.layers],
            }
        stats = []
        for layer in self.net.layers:
            W = layer.W
            stats.append(
                {
                    "shape": list(W.shape),
                    "min": num(W.min()),
                    "max": num(W.max()),
                    "mean_abs": num(np.abs(W).mean()),
                    "norm": num(np.sqrt((W**2).sum())),
                }
            )
        return {"summary": stats}

    def points(self) -> dict[str, Any] | None:
        if self.X.shape[1] != 2:
            return None
        n = min(int(self.X.shape[0]), int(LIMITS["max_points"]))
        pts: dict[str, Any] = {"x": self.X[:n].tolist()}
        if self.task == "classification":
            assert self.net.classes is not None and self.y is not None
            pts["cls"] = np.searchsorted(self.net.classes, self.y[:n]).tolist()
        elif self.y is not None:
            pts["value"] = np.asarray(self.y[:n], dtype=np.float64).reshape(n, -1)[:, 0].tolist()
        return pts

    def grid(self, size: int) -> dict[str, Any]:
        """Predicted class over a size × size grid spanning the data (original units), for the decision regions."""
        if self.task != "classification" or self.X.shape[1] != 2:
            raise ExploreError("decision regions need a classifier with exactly two inputs")
        if self.diverged:
            raise ExploreError("training diverged (the loss is not finite): lower the learning rate and reset")
        lo, hi = self.X.min(axis=0), self.X.max(axis=0)
        pad = np.maximum((hi - lo) * 0.15, 0.25)
        lo, hi = lo - pad, hi + pad
        gx = np.linspace(lo[0], hi[0], size)
        gy = np.linspace(lo[1], hi[1], size)
        xx, yy = np.meshgrid(gx, gy)  # row 0 is the lowest y
        pts = np.column_stack([xx.ravel(), yy.ravel()])
        assert self.mean is not None and self.std is not None
        with np.errstate(all="ignore"):
            proba = self.net.predict_proba((pts - self.mean) / self.std)
        cls = np.argmax(proba, axis=1)
        conf = proba[np.arange(proba.shape[0]), cls]
        return {
            "size": size,
            "x_min": float(lo[0]),
            "x_max": float(hi[0]),
            "y_min": float(lo[1]),
            "y_max": float(hi[1]),
            "n_classes": int(proba.shape[1]),
            "cls": cls.astype(int).tolist(),
            "conf": np.round(np.nan_to_num(conf), 3).tolist(),
        }

    def one_weight_view(self) -> dict[str, Any]:
        net = self.net
        W = float(net.layers[0].W[0, 0])
        W0 = float(self.config.get("W0", W))
        half = max(1.5, abs(W0 - 2.0) + 0.5, min(abs(W - 2.0) + 0.5, 50.0))  # centred on the minimum, W = 2
        ws = np.linspace(2.0 - half, 2.0 + half, 121)
        probe = one_weight_network(0.0)
        curve = []
        for w in ws:
            probe.layers[0].W[0, 0] = w
            curve.append(probe.loss(self.Xn, self.T))
        return {
            "W": W,
            "E": net.loss(self.Xn, self.T),
            "curve": {"W": ws.tolist(), "E": curve},
            "path": list(self.path),
            "minimum": {"W": 2.0, "E": 0.0},
        }

    def state(self, *, grid: int | None = None) -> dict[str, Any]:
        net = self.net
        out: dict[str, Any] = {
            "example": self.example,
            "config": self.config,
            "layer_sizes": list(net.layer_sizes),
            "names": unit_names(net.layer_sizes),
            "activations": [a.name for a in net.activations],
            "loss": net.loss_function.name,
            "optimizer": self.optimizer_name if self.optimizer is not None else "sgd (plain gradient descent)",
            "lr": self.lr,
            "n_params": net.n_params,
            "drawable": self.drawable(),
            "weights": self.weights(),
            "step": self.steps,
            "loss_value": self.current_loss(),
            "history": {"step": list(self.history_steps), "loss": list(self.history_loss)},
            "metrics": self.metrics(),
            "task": self.task,
            "dataset": dict(self.dataset_info),
            "points": self.points(),
            "diverged": self.diverged,
            "classes": None if net.classes is None else [_label(c) for c in net.classes],
        }
        if self.example == "one_weight":
            out["one_weight"] = self.one_weight_view()
        if grid and self.task == "classification" and self.X.shape[1] == 2 and not self.diverged:
            out["grid"] = self.grid(grid)
        return out


# ------------------------------------------------------------------------------------------- trace → phases
def _item(key: str, label: str, formula: str, numeric: str, value: Any, unit: str | None = None) -> dict[str, Any]:
    v = num(value)
    shown = "" if v is None and value is None else fmt(float(value))
    return {
        "key": key,
        "label": label,
        "formula": formula,
        "numeric": numeric,
        "value": v,
        "shown": shown,
        "unit": unit,
    }


def _phase(pid: str, kind: str, layer: int, title: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": pid, "kind": kind, "layer": layer, "title": title, "items": items}


def _act_formula(act: str, u: str, net: float) -> tuple[str, str]:
    if act == "softmax":
        return f"e^net_{u} / Σ_k e^net_k", ""
    return f"{act}(net_{u})", f"{act}({fmt(net)})"


def _deriv_formula(act: str, u: str, net: float, out: float) -> tuple[str, str]:
    o = fmt(out)
    if act == "sigmoid":
        return f"out_{u}·(1 − out_{u})", f"{o}·(1 − {_par(o)})"
    if act == "tanh":
        return f"1 − out_{u}²", f"1 − {_par(o)}²"
    if act == "identity":
        return "1", ""
    if act == "relu":
        return f"1 if net_{u} > 0 else 0", f"net_{u} = {fmt(net)}"
    return f"{act}′(net_{u})", f"{act}′({fmt(net)})"


def _error_formula(loss: str, o: str, t: float, out: float, K: int) -> tuple[str, str]:
    ts, os_ = fmt(t), fmt(out)
    if loss == "squared_error":
        return f"½(target_{o} − out_{o})²", f"½({ts} − {_par(os_)})²"
    if loss == "mse":
        return f"(target_{o} − out_{o})² / {K}", f"({ts} − {_par(os_)})² / {K}"
    if loss == "cross_entropy":
        return f"−target_{o}·ln(out_{o})", f"−{_par(ts)}·ln({os_})"
    if loss == "binary_cross_entropy":
        return (
            f"−[target_{o}·ln(out_{o}) + (1 − target_{o})·ln(1 − out_{o})]",
            f"−[{_par(ts)}·ln({os_}) + (1 − {_par(ts)})·ln(1 − {_par(os_)})]",
        )
    return f"E({o})", ""


def _dE_dout_formula(loss: str, o: str, t: float, out: float, K: int) -> tuple[str, str]:
    ts, os_ = fmt(t), fmt(out)
    if loss == "squared_error":
        return f"−(target_{o} − out_{o})", f"−({ts} − {_par(os_)})"
    if loss == "mse":
        return f"−2(target_{o} − out_{o}) / {K}", f"−2({ts} − {_par(os_)}) / {K}"
    if loss == "cross_entropy":
        return f"−target_{o} / out_{o}", f"−{_par(ts)} / {_par(os_)}"
    if loss == "binary_cross_entropy":
        return (
            f"(out_{o} − target_{o}) / (out_{o}·(1 − out_{o}))",
            f"({os_} − {_par(ts)}) / ({os_}·(1 − {_par(os_)}))",
        )
    return f"∂E/∂out_{o}", ""


def _phases(trace: Trace, full: bool) -> list[dict[str, Any]]:
    """The step in the order the page reveals it: forward layer by layer, error, backward from the top, update."""
    units = trace.units
    n_layers = len(units)
    acts = trace.activations
    by_target: dict[str, list[Any]] = {}
    for p in trace.params:
        by_target.setdefault(p.target, []).append(p)
    phases: list[dict[str, Any]] = []
    # ---- forward
    for depth, layer in enumerate(units):
        act = acts[depth] if depth < len(acts) else ""
        where = "output layer" if depth == n_layers - 1 else f"hidden layer {depth + 1}"
        items: list[dict[str, Any]] = []
        if full:
            for u in layer:
                terms = by_target[u.name]
                symbolic = " + ".join(f"{p.name}·{_out(p.source)}" if p.kind == "weight" else p.name for p in terms)
                numeric = _sum(
                    [f"{fmt(p.value)}·{_par(fmt(p.dnet_dw))}" if p.kind == "weight" else fmt(p.value) for p in terms]
                )
                items.append(_item(f"net_{u.name}", f"net_{u.name}", symbolic, numeric, u.net, u.name))
                f_sym, f_num = _act_formula(act, u.name, u.net)
                items.append(_item(f"out_{u.name}", f"out_{u.name}", f_sym, f_num, u.out, u.name))
        else:
            nets = np.array([u.net for u in layer])
            outs = np.array([u.out for u in layer])
            items.append(_range_item(f"net_layer{depth + 1}", "net", nets, "X·W + b, one per unit"))
            items.append(_range_item(f"out_layer{depth + 1}", "out", outs, f"{act}(net)"))
        phases.append(_phase(f"forward-{depth + 1}", "forward", depth + 1, f"Forward pass, {where} ({act})", items))
    # ---- error
    items = []
    out_layer = units[-1]
    K = len(out_layer)
    if full:
        for u in out_layer:
            e_key = f"E_{u.name}"
            f_sym, f_num = _error_formula(trace.loss, u.name, trace.targets[u.name], u.out, K)
            items.append(_item(e_key, e_key, f_sym, f_num, trace.output_errors[e_key], u.name))
        names = list(trace.output_errors)
        items.append(
            _item(
                "E_total",
                "E_total",
                " + ".join(names),
                _sum([fmt(trace.output_errors[k]) for k in names]),
                trace.E_total,
            )
        )
    else:
        items.append(_item("E_total", "E_total", f"Σ over the {K} outputs", "", trace.E_total))
    phases.append(_phase("error", "error", n_layers, f"Error ({trace.loss})", items))
    # ---- backward
    for depth in range(n_layers - 1, -1, -1):
        layer = units[depth]
        where = "output layer" if depth == n_layers - 1 else f"hidden layer {depth + 1}"
        act = acts[depth] if depth < len(acts) else ""
        items = []
        if full:
            for u in layer:
                name = u.name
                if depth == n_layers - 1:
                    d_sym, d_num = _dE_dout_formula(trace.loss, name, trace.targets[name], u.out, K)
                else:
                    above = {a.name: a for a in units[depth + 1]}
                    outgoing = [p for p in trace.params if p.kind == "weight" and p.source == name]
                    d_sym = " + ".join(f"δ_{p.target}·{p.name}" for p in outgoing)
                    d_num = _sum([f"{fmt(above[p.target].delta)}·{_par(fmt(p.value))}" for p in outgoing])
                items.append(_item(f"dE_dout_{name}", f"∂E_total/∂out_{name}", d_sym, d_num, u.dE_dout, name))
                if u.dout_dnet is not None:
                    g_sym, g_num = _deriv_formula(act, name, u.net, u.out)
                    items.append(
                        _item(f"dout_dnet_{name}", f"∂out_{name}/∂net_{name}", g_sym, g_num, u.dout_dnet, name)
                    )
                    fused = depth == n_layers - 1 and trace.loss in ("binary_cross_entropy", "cross_entropy")
                    if fused:
                        items.append(
                            _item(
                                f"delta_{name}",
                                f"δ_{name}",
                                f"out_{name} − target_{name} (fused)",
                                f"{fmt(u.out)} − {_par(fmt(trace.targets[name]))}",
                                u.delta,
                                name,
                            )
                        )
                    else:
                        items.append(
                            _item(
                                f"delta_{name}",
                                f"δ_{name}",
                                f"∂E_total/∂out_{name} · ∂out_{name}/∂net_{name}",
                                f"{fmt(u.dE_dout)}·{_par(fmt(u.dout_dnet))}",
                                u.delta,
                                name,
                            )
                        )
                else:
                    items.append(
                        _item(
                            f"delta_{name}",
                            f"δ_{name}",
                            f"out_{name} − target_{name} (fused)",
                            f"{fmt(u.out)} − {_par(fmt(trace.targets[name]))}",
                            u.delta,
                            name,
                        )
                    )
                for p in by_target[name]:
                    if p.kind == "weight":
                        items.append(
                            _item(
                                f"dE_d{p.name}",
                                f"∂E_total/∂{p.name}",
                                f"δ_{name} · {_out(p.source)}",
                                f"{fmt(u.delta)}·{_par(fmt(p.dnet_dw))}",
                                p.grad,
                                name,
                            )
                        )
                    else:
                        label = f"∂E_total/∂{p.name}"
                        formula = f"δ_{name} · 1" + ("" if p.trainable else "  (bias frozen: not applied)")
                        items.append(_item(f"dE_d{p.name}", label, formula, fmt(u.delta), p.grad, name))
        else:
            deltas = np.array([u.delta for u in layer])
            grads = np.array([p.grad for p in trace.params if p.layer == depth + 1])
            items.append(_range_item(f"delta_layer{depth + 1}", "δ", deltas, "∂E_total/∂net, one per unit"))
            items.append(
                _item(
                    f"gradnorm_layer{depth + 1}",
                    f"‖∂E_total/∂W‖ (layer {depth + 1})",
                    "√Σ (δ · out_below)²",
                    f"largest |∂E/∂w| {fmt(float(np.abs(grads).max()))}",
                    float(np.sqrt((grads**2).sum())),
                )
            )
        phases.append(_phase(f"backward-{depth + 1}", "backward", depth + 1, f"Backward pass, {where}", items))
    # ---- update
    items = []
    lr = trace.lr
    if full:
        for p in trace.params:
            if p.trainable:
                items.append(
                    _item(
                        f"{p.name}_new",
                        f"{p.name}⁺",
                        f"{p.name} − η·∂E_total/∂{p.name}",
                        f"{fmt(p.value)} − {fmt(lr)}·{_par(fmt(p.grad))}",
                        p.new_value,
                        p.target,
                    )
                )
            else:
                items.append(_item(f"{p.name}_new", p.name, "frozen", fmt(p.value), p.new_value, p.target))
    else:
        changes = np.array([abs(p.new_value - p.value) for p in trace.params])
        items.append(
            _item(
                "largest_change",
                "largest |w⁺ − w|",
                f"w⁺ = w − η·∂E_total/∂w for all {len(trace.params)} parameters, η = {fmt(lr)}",
                "",
                float(changes.max()),
            )
        )
    items.append(_item("E_total_new", "E_total after the update", "forward pass again", "", trace.E_total_new))
    phases.append(_phase("update", "update", 0, f"Update: w⁺ = w − η·∂E_total/∂w, η = {fmt(lr)}", items))
    return phases


def _range_item(key: str, label: str, values: np.ndarray, formula: str) -> dict[str, Any]:
    item = _item(key, f"{label} (layer)", formula, f"from {fmt(values.min())} to {fmt(values.max())}", None)
    item["min"], item["max"] = num(values.min()), num(values.max())
    return item


def _summary_values(trace: Trace) -> dict[str, Any]:
    return {"E_total": trace.E_total, "E_total_new": trace.E_total_new, "lr": trace.lr, "loss": trace.loss}


# ------------------------------------------------------------------------------------------------ sessions
class Session:
    """One person's explorer: a model, an uploaded file, a lock (requests of one session run one at a time)."""

    def __init__(self, sid: str) -> None:
        self.id = sid
        self.lock = threading.Lock()
        self.model: Model | None = None
        self.upload: UploadedData | None = None
        self.last_used = time.monotonic()

    def _need_model(self) -> Model:
        if self.model is None:
            raise ExploreError("no network yet: choose an example or build a network first")
        return self.model

    def build(self, config: Any) -> dict[str, Any]:
        with self.lock:
            self.model = Model.build(config, self.upload)
            return _clean({"session": self.id, **self.model.state(grid=_grid_size(config))})

    def reset(self) -> dict[str, Any]:
        with self.lock:
            model = self._need_model()
            self.model = Model.build(dict(model.config), self.upload)
            return _clean({"session": self.id, **self.model.state(grid=48)})

    def state(self, grid: int | None = None) -> dict[str, Any]:
        with self.lock:
            return _clean({"session": self.id, **self._need_model().state(grid=grid)})

    def trace(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ExploreError("the request body must be a JSON object")
        with self.lock:
            model = self._need_model()
            payload = model.trace(body)
            return _clean({"session": self.id, "trace": payload, "state": model.state(grid=_grid_size(body))})

    def train(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ExploreError("the request body must be a JSON object")
        steps = _int(body, "steps", 1, 1, int(LIMITS["max_steps"]))
        with self.lock:
            model = self._need_model()
            if model.diverged:
                raise ExploreError("training diverged (the loss is not finite): lower the learning rate and reset")
            result = model.train(steps)
            return _clean({"session": self.id, **result, "state": model.state(grid=_grid_size(body))})

    def grid(self, size: int) -> dict[str, Any]:
        with self.lock:
            return _clean(self._need_model().grid(size))

    def set_upload(self, data: bytes, *, target: str | None, task: str | None, name: str) -> dict[str, Any]:
        parsed = parse_csv(data, target=target, task=task, name=name)
        with self.lock:
            self.upload = parsed
        return _clean({"session": self.id, "upload": parsed.summary()})


def _grid_size(body: Any) -> int | None:
    if not isinstance(body, dict) or not body.get("grid"):
        return None
    return _int(body, "grid_size", 48, 4, int(LIMITS["max_grid"]))


class SessionStore:
    """Sessions in memory, at most ``max_sessions``; creating one more forgets the least recently used."""

    def __init__(self, max_sessions: int | None = None) -> None:
        self.max_sessions = int(max_sessions or LIMITS["max_sessions"])
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self) -> Session:
        with self._lock:
            sid = secrets.token_urlsafe(16)
            session = Session(sid)
            self._sessions[sid] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return session

    def get(self, sid: str) -> Session:
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                raise NotFound("unknown or expired session: reload the page to start a new one")
            self._sessions.move_to_end(sid)
            session.last_used = time.monotonic()
            return session

    def delete(self, sid: str) -> None:
        with self._lock:
            if self._sessions.pop(sid, None) is None:
                raise NotFound("unknown or expired session")

    def __len__(self) -> int:
        return len(self._sessions)
