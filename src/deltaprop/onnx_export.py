"""Export a network to ONNX, so that any ONNX runtime (onnxruntime, TensorRT, browsers, phones) can run it.

The graph is the network itself, layer by layer: a ``Gemm`` computing ``net = X·W + b`` (``W`` of shape
(n_in, n_out) stored as an initializer, ``transB=0``), then the activation as standard ONNX operators:

==============  =====================================================================
deltaprop       ONNX
==============  =====================================================================
sigmoid         ``Sigmoid``
tanh            ``Tanh``
relu            ``Relu``
leaky_relu(α)   ``LeakyRelu(alpha=α)``
elu(α)          ``Elu(alpha=α)``
softplus        ``Softplus``
identity        ``Identity``
softmax         ``Softmax(axis=-1)``
==============  =====================================================================

For float64 networks ``leaky_relu``, ``elu`` and ``softplus`` are written as the same functions from elementary
operators (``Greater``/``Where``/``Mul``, ``Min``/``Exp``/``Sub``, ``Max``/``Abs``/``Exp``/``Log``) with α as a
float64 constant: ONNX attributes are 32-bit floats, so ``LeakyRelu(alpha=0.2)`` would compute with α rounded to
float32, and onnxruntime implements ``Elu`` and ``Softplus`` for float32 only. The results agree with the network
to rounding (about 1e-15 relative).

The input (default name ``X``) has shape (batch, n_inputs) with a dynamic batch dimension, the output (default
``output``) shape (batch, n_outputs), both of the network's dtype (float32 or float64). The output is the output
layer's activation, as ``Network.forward`` returns it: for a classifier, the class probabilities (one sigmoid unit:
P(second class)). The class labels, when the network is a classifier, are in the model's ``metadata_props`` under
``classes`` (a JSON list, in output order), with ``decision`` saying how to pick one (``argmax``, or
``threshold_0.5`` for one sigmoid output). Preprocessing kept beside the network (the command line's input
scaling) is not part of the graph: feed the graph inputs prepared the same way.

>>> import deltaprop
>>> net = deltaprop.MLP([4, 8, 3], activation="relu", output_activation="softmax", seed=0)
>>> net.to_onnx("model.onnx")  # doctest: +SKIP
>>> import numpy as np, onnxruntime as ort  # doctest: +SKIP
>>> session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])  # doctest: +SKIP
>>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)  # doctest: +SKIP
>>> np.allclose(session.run(None, {"X": X})[0], net.forward(X), atol=1e-5)  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import require

if TYPE_CHECKING:
    from .network import Network

__all__ = ["to_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

#: the opset written when none is asked for: every operator used is unchanged since, and runtimes of 2022 on read it
DEFAULT_OPSET = 17
#: the oldest opset accepted (``Softmax`` works on one axis, as deltaprop's does, from opset 13)
MIN_OPSET = 13


def to_onnx(
    net: Network,
    path: str | os.PathLike[str],
    *,
    opset: int | None = None,
    input_name: str = "X",
    output_name: str = "output",
) -> None:
    """Write ``net`` to ``path`` as an ONNX model (Gemm + activation per layer), atomically; needs ``[onnx]``.

    Args:
        net: the network to export.
        path: the ``.onnx`` file to write; it is replaced in one step, or left as it was if anything fails.
        opset: the ONNX opset version (default :data:`DEFAULT_OPSET`, at least :data:`MIN_OPSET`, at most the
            newest the installed ``onnx`` knows).
        input_name, output_name: the names of the graph's input and output.

    Raises:
        MissingExtraError: ``onnx`` is not installed (``pip install "deltaprop[onnx]"``).
        ValueError: a bad opset or name, weights that are NaN or infinite, or an activation ONNX has no operator for.

    >>> net = MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=0)  # doctest: +SKIP
    >>> to_onnx(net, "xor.onnx", opset=17)  # doctest: +SKIP
    """
    onnx = require("onnx", "onnx", "ONNX export")
    model = build_model(net, opset=opset, input_name=input_name, output_name=output_name)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()

    from .safefile import atomic_write_bytes

    atomic_write_bytes(path, data)


def build_model(net: Network, *, opset: int | None = None, input_name: str = "X", output_name: str = "output") -> Any:
    """The ``onnx.ModelProto`` that :func:`to_onnx` writes (not yet checked or serialised)."""
    onnx = require("onnx", "onnx", "ONNX export")
    from onnx import TensorProto, helper, numpy_helper

    newest = int(onnx.defs.onnx_opset_version())
    if opset is None:
        opset = min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (this onnx's newest), got {opset!r}")
    opset = int(opset)
    for what, name in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if input_name == output_name:
        raise ValueError(f"input_name and output_name must differ, both are {input_name!r}")
    if net.dtype not in (np.float32, np.float64):
        raise ValueError(f"ONNX export supports float32 and float64 networks, not {net.dtype}")
    for i, layer in enumerate(net.layers):
        if not (np.all(np.isfinite(layer.W)) and np.all(np.isfinite(layer.b))):
            raise ValueError(f"layer {i}: weights contain NaN or infinite values (did training diverge?)")

    dtype = np.dtype(net.dtype)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    builder = _GraphBuilder(helper, numpy_helper, dtype)
    current = input_name
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        prefix = f"layer{i}"
        W = builder.constant(f"{prefix}.W", layer.W)
        b = builder.constant(f"{prefix}.b", layer.b)
        net_name = builder.node("Gemm", [current, W, b], f"{prefix}.net", name=f"{prefix}.gemm", transA=0, transB=0)
        out = output_name if i == last else f"{prefix}.out"
        builder.activation(layer.activation, net_name, out, prefix)
        current = out
    reserved = builder.names - {output_name}
    for what, name in (("input_name", input_name), ("output_name", output_name)):
        if name in reserved:
            raise ValueError(f"{what} {name!r} is the name of a value inside the graph; choose another")

    graph = helper.make_graph(
        builder.nodes,
        "deltaprop_mlp",
        [helper.make_tensor_value_info(input_name, elem, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info(output_name, elem, ["batch", net.n_outputs])],
        builder.initializers,
        doc_string=repr(net),
    )
    opset_ids = [helper.make_opsetid("", opset)]
    from . import __version__

    model = helper.make_model(
        graph,
        opset_imports=opset_ids,
        producer_name="deltaprop",
        producer_version=__version__,
        doc_string=f"deltaprop multi-layer perceptron {net.layer_sizes}",
    )
    # the oldest IR version that carries this opset, so that older runtimes read the file too
    model.ir_version = helper.find_min_ir_version_for(opset_ids)
    props = {"deltaprop_architecture": json.dumps(net.get_config())}
    if net.classes is not None:
        props["classes"] = json.dumps(np.asarray(net.classes).tolist())
        props["decision"] = "threshold_0.5" if net.n_outputs == 1 else "argmax"
    helper.set_model_props(model, props)
    return model


class _GraphBuilder:
    """Collects nodes and initializers, giving every value a unique name."""

    def __init__(self, helper: Any, numpy_helper: Any, dtype: np.dtype[Any]) -> None:
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: set[str] = set()

    def _claim(self, name: str) -> str:
        self.names.add(name)
        return name

    def constant(self, name: str, value: Any) -> str:
        arr = np.ascontiguousarray(np.asarray(value, dtype=self.dtype))
        self.initializers.append(self.numpy_helper.from_array(arr, name=self._claim(name)))
        return name

    def node(self, op: str, inputs: list[str], output: str, *, name: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [self._claim(output)], name=name, **attrs))
        return output

    def activation(self, act: Any, x: str, out: str, prefix: str) -> None:
        config = act.get_config()
        kind = config["name"]
        simple = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "identity": "Identity"}
        name = f"{prefix}.{kind}"
        if kind in simple:
            self.node(simple[kind], [x], out, name=name)
        elif kind == "softmax":
            self.node("Softmax", [x], out, name=name, axis=-1)
        elif kind == "leaky_relu" and self.dtype == np.float32:
            self.node("LeakyRelu", [x], out, name=name, alpha=float(config["alpha"]))
        elif kind == "leaky_relu":  # x if x > 0 else α·x, with α in float64
            zero = self.constant(f"{prefix}.zero", 0.0)
            alpha = self.constant(f"{prefix}.alpha", config["alpha"])
            pos = self.node("Greater", [x, zero], f"{prefix}.positive", name=f"{name}.greater")
            scaled = self.node("Mul", [alpha, x], f"{prefix}.scaled", name=f"{name}.mul")
            self.node("Where", [pos, x, scaled], out, name=f"{name}.where")
        elif kind == "elu" and self.dtype == np.float32:
            self.node("Elu", [x], out, name=name, alpha=float(config["alpha"]))
        elif kind == "elu":  # x if x > 0 else α(e^min(x, 0) − 1)
            zero = self.constant(f"{prefix}.zero", 0.0)
            one = self.constant(f"{prefix}.one", 1.0)
            alpha = self.constant(f"{prefix}.alpha", config["alpha"])
            pos = self.node("Greater", [x, zero], f"{prefix}.positive", name=f"{name}.greater")
            neg = self.node("Min", [x, zero], f"{prefix}.negative_part", name=f"{name}.min")
            e = self.node("Exp", [neg], f"{prefix}.exp", name=f"{name}.exp")
            em1 = self.node("Sub", [e, one], f"{prefix}.expm1", name=f"{name}.sub")
            scaled = self.node("Mul", [alpha, em1], f"{prefix}.scaled", name=f"{name}.mul")
            self.node("Where", [pos, x, scaled], out, name=f"{name}.where")
        elif kind == "softplus" and self.dtype == np.float32:
            self.node("Softplus", [x], out, name=name)
        elif kind == "softplus":  # ln(1 + e^x) = max(x, 0) + ln(1 + e^−|x|), without overflow
            zero = self.constant(f"{prefix}.zero", 0.0)
            one = self.constant(f"{prefix}.one", 1.0)
            hi = self.node("Max", [x, zero], f"{prefix}.max", name=f"{name}.max")
            a = self.node("Abs", [x], f"{prefix}.abs", name=f"{name}.abs")
            na = self.node("Neg", [a], f"{prefix}.neg_abs", name=f"{name}.neg")
            e = self.node("Exp", [na], f"{prefix}.exp", name=f"{name}.exp")
            one_plus = self.node("Add", [one, e], f"{prefix}.one_plus_exp", name=f"{name}.add")
            log = self.node("Log", [one_plus], f"{prefix}.log", name=f"{name}.log")
            self.node("Add", [hi, log], out, name=f"{name}.sum")
        else:
            raise ValueError(
                f"{prefix}: activation {kind!r} has no ONNX equivalent here; export supports sigmoid, tanh, relu, "
                "leaky_relu, elu, softplus, identity and softmax"
            )
