"""Model files and checkpoints: safetensors files with JSON metadata, written atomically, loaded without running code.

A model file holds each layer's ``W`` and ``b`` as tensors ``layers.{i}.W`` / ``layers.{i}.b`` and, as JSON
metadata, everything else ``predict`` needs: the architecture, the label set, any preprocessing the command line
fitted, the format version and the library version. Any tool that reads safetensors can read the weights.

Loading checks everything and raises one error type, :class:`ModelFileError`, for every kind of bad file.

>>> import tempfile, os, deltaprop
>>> net = deltaprop.MLP([2, 3, 1], seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> net.save(path)
>>> bool((deltaprop.load(path).theta == net.theta).all())
True
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from . import safefile
from .activations import ACTIVATIONS, get_activation
from .backend import to_host
from .losses import LOSSES, get_loss
from .safefile import ModelFileError

if TYPE_CHECKING:
    from .network import Network

__all__ = ["ModelFileError", "save", "load", "save_checkpoint", "load_checkpoint", "FORMAT_VERSION"]

MODEL_FORMAT = "deltaprop-model"
CHECKPOINT_FORMAT = "deltaprop-checkpoint"
FORMAT_VERSION = 1
_MODEL_KEYS = {"format", "format_version", "library_version", "architecture", "classes", "metadata"}
_ARCH_KEYS = {"layer_sizes", "activations", "loss", "dtype", "bias_trainable"}


def _library_version() -> str:
    from . import __version__

    return __version__


# ------------------------------------------------------------------------------------------------ models
def model_payload(net: Network) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors and metadata that describe ``net`` completely."""
    tensors: dict[str, np.ndarray] = {}
    for i, layer in enumerate(net.layers):
        tensors[f"layers.{i}.W"] = np.ascontiguousarray(to_host(layer.W))
        tensors[f"layers.{i}.b"] = np.ascontiguousarray(to_host(layer.b))
    for name, arr in net.extra_arrays.items():
        tensors[f"extra.{name}"] = np.array(arr, order="C")  # a copy (0-d arrays stay 0-d)
    classes = None
    if net.classes is not None:
        kind = {"i": "int", "u": "int", "U": "str", "b": "bool", "f": "float"}.get(net.classes.dtype.kind)
        if kind is None:
            raise TypeError(f"class labels of dtype {net.classes.dtype} cannot be saved")
        classes = {"kind": kind, "values": net.classes.tolist()}
    meta = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "architecture": net.get_config(),
        "classes": classes,
        "metadata": net.metadata,
    }
    return tensors, meta


def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` to ``path`` (safetensors + JSON metadata), atomically: a crash never leaves a damaged file."""
    tensors, meta = model_payload(net)
    safefile.write(path, tensors, meta)


#: The key of a model's metadata under which ``MLPClassifier.save`` / ``MLPRegressor.save`` keep the estimator.
SKLEARN_ESTIMATOR_KEY = "sklearn_estimator"


def load(path: str | os.PathLike[str], *, as_network: bool = False) -> Any:
    """Read a model written by :func:`save`; raise :class:`ModelFileError` for anything that is not a good model.

    A file written by :meth:`deltaprop.sklearn.MLPClassifier.save` or ``MLPRegressor.save`` (its metadata holds
    ``"sklearn_estimator"``) gives back that estimator, fitted, its ``network_`` rebuilt from the file; it needs
    scikit-learn (:class:`~deltaprop.backend.MissingExtraError` otherwise), which is imported only then. Any other
    model file gives back the :class:`~deltaprop.Network`. ``as_network=True`` always gives the network, as stored
    (for code that only predicts, such as the command line), without importing scikit-learn.

    Nothing from the file is ever run (no pickle): estimator metadata that is not what ``save`` writes - an unknown
    class, values of the wrong type, parameters that the estimator rejects - raises :class:`ModelFileError` too.
    """
    tensors, meta = safefile.read(path)
    net = network_from_payload(tensors, meta, path)
    if as_network or SKLEARN_ESTIMATOR_KEY not in net.metadata:
        return net
    return _estimator_from_network(net, path)


def _estimator_from_network(net: Network, path: Any) -> Any:
    """The scikit-learn estimator whose fitted state ``net.metadata["sklearn_estimator"]`` describes."""
    from .backend import require

    require("sklearn", "sklearn", f"loading the scikit-learn estimator saved in {os.fspath(path)}")
    from .sklearn import estimator_from_network

    try:
        return estimator_from_network(net, path)
    except ModelFileError:
        raise
    except Exception as exc:  # every check is explicit; this only makes sure no other error type can escape
        raise ModelFileError(
            f"{os.fspath(path)}: the scikit-learn estimator saved in it cannot be rebuilt "
            f"({type(exc).__name__}: {exc}); it is not a usable deltaprop model file"
        ) from None


_LABEL_KINDS = {"i": "int", "u": "int", "U": "str", "b": "bool", "f": "float"}
_LABEL_TYPES: dict[str, type] = {"int": int, "str": str, "bool": bool, "float": float}


def labels_to_json(labels: Any) -> dict[str, Any]:
    """An array of labels as JSON: ``{"kind": "int" | "str" | "bool" | "float", "values": [...]}``.

    The encoding of a model's ``classes``; an object array of Python strings (or numbers) is stored as its kind.
    Raise ``TypeError`` for labels of any other kind.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise TypeError(f"labels must be a 1-d array, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        arr = np.asarray(arr.tolist()) if len(arr) else arr.astype(str)
    kind = _LABEL_KINDS.get(arr.dtype.kind)
    if kind is None:
        raise TypeError(f"labels of dtype {arr.dtype} cannot be saved")
    values = arr.tolist()
    if kind == "float" and not all(math.isfinite(v) for v in values):
        raise TypeError("labels must be finite numbers")
    return {"kind": kind, "values": values}


def labels_from_json(spec: Any, what: str) -> np.ndarray:
    """The array that :func:`labels_to_json` encoded; ``ValueError`` (naming ``what``) for anything else."""
    if not isinstance(spec, dict) or set(spec) != {"kind", "values"} or not isinstance(spec["values"], list):
        raise ValueError(f"{what} must be an object {{kind, values}}")
    kind, values = spec["kind"], spec["values"]
    if not isinstance(kind, str) or kind not in _LABEL_TYPES or not all(type(v) is _LABEL_TYPES[kind] for v in values):
        raise ValueError(f"{what}: kind must be one of {sorted(_LABEL_TYPES)} and every value of that kind")
    if kind == "float" and not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be finite numbers")
    if kind == "int" and not all(-(2**63) <= v < 2**63 for v in values):
        raise ValueError(f"{what} must be 64-bit integers")
    if not values:
        return np.array([], dtype={"int": np.int64, "str": str, "bool": bool, "float": np.float64}[kind])
    return np.array(values)


def network_from_payload(tensors: dict[str, np.ndarray], meta: dict[str, Any], path: Any) -> Network:
    """Check model tensors and metadata thoroughly and build the network they describe."""
    from .network import MLP

    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{os.fspath(path)}: {what}; it is not a usable deltaprop model file")

    _check_format(meta, MODEL_FORMAT, path)
    missing, unknown = _MODEL_KEYS - set(meta), set(meta) - _MODEL_KEYS
    if missing or unknown:
        raise bad(f"metadata keys missing {sorted(missing)} / unknown {sorted(unknown)}")
    arch = meta["architecture"]
    if not isinstance(arch, dict) or set(arch) != _ARCH_KEYS:
        raise bad(f"the architecture must be an object with keys {sorted(_ARCH_KEYS)}")
    sizes = arch["layer_sizes"]
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n < 2**31 for n in sizes)
    ):
        raise bad(f"layer_sizes must be a list of at least two positive integers, got {sizes!r}")
    n_layers = len(sizes) - 1
    acts = arch["activations"]
    if not isinstance(acts, list) or len(acts) != n_layers:
        raise bad(f"expected {n_layers} activations, got {acts!r}")
    for a in acts:
        if not isinstance(a, dict) or a.get("name") not in ACTIVATIONS:
            raise bad(f"unknown activation {a!r}")
    loss = arch["loss"]
    if not isinstance(loss, dict) or loss.get("name") not in LOSSES:
        raise bad(f"unknown loss {loss!r}")
    if arch["dtype"] not in ("float32", "float64"):
        raise bad(f"dtype must be float32 or float64, got {arch['dtype']!r}")
    bias_trainable = arch["bias_trainable"]
    if not isinstance(bias_trainable, list) or len(bias_trainable) != n_layers:
        raise bad("bias_trainable must list one boolean per layer")
    expected = {f"layers.{i}.{p}" for i in range(n_layers) for p in ("W", "b")}
    names = set(tensors)
    unknown_tensors = sorted(n for n in names - expected if not n.startswith("extra."))
    if not expected <= names or unknown_tensors:
        raise bad(f"tensors missing {sorted(expected - names)} / unknown {unknown_tensors}")
    weights = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = tensors[f"layers.{i}.W"], tensors[f"layers.{i}.b"]
        if W.shape != (n_in, n_out) or b.shape != (n_out,):
            raise bad(f"layer {i} has W {W.shape} and b {b.shape}; layer_sizes needs ({n_in}, {n_out}) and ({n_out},)")
        for name, arr in ((f"layers.{i}.W", W), (f"layers.{i}.b", b)):
            if arr.dtype not in (np.float32, np.float64):
                raise bad(f"tensor {name} has dtype {arr.dtype}; weights must be float32 or float64")
            if not np.all(np.isfinite(arr)):
                raise bad(f"tensor {name} contains NaN or infinite values")
        weights.append((W, b))
    try:
        net = MLP(
            sizes,
            activation=[get_activation(a) for a in acts[:-1]],
            output_activation=get_activation(acts[-1]),
            loss=get_loss(loss),
            init=weights,
            dtype=arch["dtype"],
        )
    except (ValueError, TypeError) as exc:
        raise bad(str(exc)) from None
    for layer, trainable in zip(net.layers, bias_trainable):
        layer.bias_trainable = bool(trainable)
    net.classes = _classes_from(meta["classes"], net.n_outputs, bad)
    if not isinstance(meta["metadata"], dict):
        raise bad("metadata must be an object")
    net.metadata = meta["metadata"]
    net.extra_arrays = {n[len("extra.") :]: a for n, a in tensors.items() if n.startswith("extra.")}
    return net


def _classes_from(spec: Any, n_outputs: int, bad: Any) -> np.ndarray | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) != {"kind", "values"} or not isinstance(spec["values"], list):
        raise bad("classes must be null or {kind, values}")
    kind, values = spec["kind"], spec["values"]
    types = {"int": int, "str": str, "bool": bool, "float": float}
    if kind not in types or not all(type(v) is types[kind] for v in values):
        raise bad(f"class labels must all be of kind {kind!r}")
    if kind == "float" and not all(math.isfinite(v) for v in values):
        raise bad("class labels must be finite")
    if len(values) < 2 or len(values) > max(2, n_outputs) or len(set(values)) != len(values):
        raise bad(f"{len(values)} distinct class labels do not fit a network with {n_outputs} output(s)")
    classes = np.array(values)
    if not np.all(classes[:-1] < classes[1:]):
        raise bad("class labels must be sorted")
    return classes


def _check_format(meta: dict[str, Any], expected: str, path: Any) -> None:
    where = os.fspath(path)
    if meta.get("format") != expected:
        raise ModelFileError(f"{where}: this file is not a {expected} file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{where}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: written by a newer deltaprop (format version {version}, this one reads up to "
            f"{FORMAT_VERSION}); upgrade deltaprop to read it"
        )


# ------------------------------------------------------------------------------------------ checkpoints
def save_checkpoint(path: Any, net: Network, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
    """Write a training checkpoint: the model itself plus the trainer's arrays and state, atomically."""
    tensors, model_meta = model_payload(net)
    for name, arr in arrays.items():
        tensors[f"train.{name}"] = arr
    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "model": {k: v for k, v in model_meta.items() if k not in ("format", "format_version", "library_version")},
        "state": state,
    }
    safefile.write(path, tensors, meta)


def load_checkpoint(path: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint: (the trainer's arrays, its state). Bad files raise :class:`ModelFileError`."""
    tensors, meta = safefile.read(path)
    _check_format(meta, CHECKPOINT_FORMAT, path)
    if not isinstance(meta.get("state"), dict) or not isinstance(meta.get("model"), dict):
        raise ModelFileError(f"{os.fspath(path)}: a checkpoint needs 'model' and 'state' objects")
    model_meta = {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "library_version": "", **meta["model"]}
    network_from_payload({k: v for k, v in tensors.items() if not k.startswith("train.")}, model_meta, path)
    arrays = {k[len("train.") :]: v for k, v in tensors.items() if k.startswith("train.")}
    if "theta" not in arrays:
        raise ModelFileError(f"{os.fspath(path)}: the checkpoint has no parameter buffer")
    return arrays, meta["state"]


def load_checkpoint_model(path: Any) -> Network:
    """The network stored in a checkpoint (architecture, label set, preprocessing, latest weights)."""
    tensors, meta = safefile.read(path)
    _check_format(meta, CHECKPOINT_FORMAT, path)
    model_meta = {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "library_version": "", **meta["model"]}
    return network_from_payload({k: v for k, v in tensors.items() if not k.startswith("train.")}, model_meta, path)
