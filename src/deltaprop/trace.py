"""One backpropagation step, recorded number by number, and rendered as text or JSON.

The trace is not a second implementation: it runs the network's own ``forward``, ``backward`` and ``step`` with
recording switched on and reads what they computed. Names follow the seed: inputs i1, i2…, hidden units h1, h2…
(h1_1, h2_1… when there are several hidden layers), outputs o1, o2…, and weights w1, w2… numbered layer by layer,
for each unit of the layer above in turn (so w1 is i1→h1, w2 is i2→h1, w3 is i1→h2, …); the bias of unit h1 in
layer 1 is b1_h1.

>>> from deltaprop.examples import worked_example_network
>>> trace = trace_step(worked_example_network(), [0.05, 0.10], [0.01, 0.99], lr=0.5)
>>> round(trace["E_total"], 9), round(trace["w5_new"], 8), round(trace["w1_new"], 9)
(0.298371109, 0.35891648, 0.149780716)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .network import Network, check_inputs

__all__ = ["Trace", "UnitTrace", "ParamTrace", "trace_step", "unit_names"]


@dataclass(frozen=True)
class UnitTrace:
    """One unit (neuron) of a layer during the step."""

    name: str
    layer: int  # 1 = first hidden layer
    net: float
    out: float
    dE_dout: float  # ∂E_total/∂out
    dout_dnet: float | None  # ∂out/∂net (None for softmax, whose Jacobian is not diagonal)
    delta: float  # δ = ∂E_total/∂net


@dataclass(frozen=True)
class ParamTrace:
    """One weight or bias: the three factors of the chain rule, their product, and the update."""

    name: str
    kind: str  # "weight" or "bias"
    layer: int
    source: str  # the unit (or "1" for a bias) the connection comes from
    target: str  # the unit it feeds
    value: float
    dnet_dw: float  # ∂net_target/∂w: the source's output (1 for a bias)
    grad: float  # ∂E_total/∂w, as backward computed it
    new_value: float
    trainable: bool = True


@dataclass
class Trace:
    """Everything one step of backpropagation computed, in the seed's names."""

    lr: float
    loss: str
    inputs: dict[str, float]
    targets: dict[str, float]
    units: list[list[UnitTrace]]  # per layer (hidden layers, then the output layer)
    output_errors: dict[str, float]  # E_o1, E_o2, …
    E_total: float
    params: list[ParamTrace]
    E_total_new: float
    activations: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ look-ups
    def to_dict(self) -> dict[str, Any]:
        """A flat dict keyed by the seed's names: ``out_h1``, ``E_total``, ``dE_dw5``, ``w5_new``, …"""
        d: dict[str, Any] = {"lr": self.lr, "loss": self.loss}
        d.update(self.inputs)
        d.update({f"target_{k}": v for k, v in self.targets.items()})
        for layer in self.units:
            for u in layer:
                d[f"net_{u.name}"] = u.net
                d[f"out_{u.name}"] = u.out
        d.update(self.output_errors)
        d["E_total"] = self.E_total
        for layer in self.units:
            for u in layer:
                d[f"dE_dout_{u.name}"] = u.dE_dout
                if u.dout_dnet is not None:
                    d[f"dout_dnet_{u.name}"] = u.dout_dnet
                d[f"delta_{u.name}"] = u.delta
        for p in self.params:
            d[p.name] = p.value
            d[f"dnet_d{p.name}"] = p.dnet_dw
            d[f"dE_d{p.name}"] = p.grad
            d[f"{p.name}_new"] = p.new_value
        d["E_total_new"] = self.E_total_new
        return d

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def to_json(self, indent: int | None = 2) -> str:
        """The flat dict as JSON, plus the structure (units per layer, parameters) for programs that draw it."""
        payload = self.to_dict()
        payload["layers"] = [[u.name for u in layer] for layer in self.units]
        payload["activations"] = self.activations
        return json.dumps(payload, indent=indent)

    # ------------------------------------------------------------ rendering
    def to_text(self, *, full: bool | None = None, digits: int = 9) -> str:
        """The step as the seed explains it: Step 1 forward, Step 2 backward, Step 3 update.

        ``full``: every weight (True) or a per-layer summary (False); None picks full for ≤ 60 parameters.
        """
        if full is None:
            full = len(self.params) <= 60
        f = _formatter(digits)
        lines: list[str] = []
        by_target: dict[str, list[ParamTrace]] = {}
        for p in self.params:
            by_target.setdefault(p.target, []).append(p)
        lines.append("Step 1 — forward pass")
        lines.append("  inputs: " + ", ".join(f"{k} = {f(v)}" for k, v in self.inputs.items()))
        for depth, layer in enumerate(self.units):
            act = self.activations[depth] if depth < len(self.activations) else ""
            if not full:
                nets = np.array([u.net for u in layer])
                outs = np.array([u.out for u in layer])
                lines.append(
                    f"  layer {depth + 1} ({len(layer)} units, {act}): net in [{f(nets.min())}, {f(nets.max())}], "
                    f"out in [{f(outs.min())}, {f(outs.max())}]"
                )
                continue
            for u in layer:
                terms = [p for p in by_target[u.name]]
                symbolic = " + ".join(f"{p.name}·{_out(p.source)}" if p.kind == "weight" else p.name for p in terms)
                numeric = _sum(
                    f"{f(p.value)}·{_par(f(p.dnet_dw))}" if p.kind == "weight" else f(p.value) for p in terms
                )
                lines.append(f"  net_{u.name} = {symbolic} = {numeric} = {f(u.net)}")
                lines.append(f"  out_{u.name} = {act}(net_{u.name}) = {f(u.out)}")
        lines.append("  error:")
        for name, e in self.output_errors.items():
            o = name[2:]
            lines.append(f"  {name} = {_error_formula(self.loss, o)} = {f(e)}")
        lines.append(f"  E_total = {' + '.join(self.output_errors)} = {f(self.E_total)}")

        lines.append("")
        lines.append("Step 2 — backward pass (chain rule: ∂E/∂w = ∂E/∂out · ∂out/∂net · ∂net/∂w)")
        for depth in range(len(self.units) - 1, -1, -1):
            layer = self.units[depth]
            title = "output layer" if depth == len(self.units) - 1 else f"hidden layer {depth + 1}"
            lines.append(f"  {title}:")
            if not full:
                grads = np.array([p.grad for p in self.params if p.layer == depth + 1])
                deltas = np.array([u.delta for u in layer])
                lines.append(
                    f"    δ in [{f(deltas.min())}, {f(deltas.max())}], |∂E/∂w| max {f(np.abs(grads).max())}, "
                    f"gradient norm {f(float(np.sqrt((grads**2).sum())))}"
                )
                continue
            for u in layer:
                if depth < len(self.units) - 1:
                    above = self.units[depth + 1]
                    outgoing = [p for p in self.params if p.kind == "weight" and p.source == u.name]
                    parts = " + ".join(f"δ_{p.target}·{p.name}" for p in outgoing)
                    nums = _sum(
                        f"{f(next(a.delta for a in above if a.name == p.target))}·{_par(f(p.value))}" for p in outgoing
                    )
                    lines.append(f"    ∂E_total/∂out_{u.name} = {parts} = {nums} = {f(u.dE_dout)}")
                else:
                    lines.append(f"    ∂E_total/∂out_{u.name} = {f(u.dE_dout)}")
                if u.dout_dnet is not None:
                    lines.append(f"    ∂out_{u.name}/∂net_{u.name} = {f(u.dout_dnet)}")
                    lines.append(
                        f"    δ_{u.name} = ∂E_total/∂out_{u.name} · ∂out_{u.name}/∂net_{u.name} = {f(u.delta)}"
                    )
                else:
                    lines.append(f"    δ_{u.name} = ∂E_total/∂net_{u.name} = out − target (fused) = {f(u.delta)}")
                for p in by_target[u.name]:
                    if p.kind == "weight":
                        lines.append(
                            f"    ∂E_total/∂{p.name} = δ_{u.name} · {_out(p.source)} = {f(u.delta)} · {f(p.dnet_dw)} "
                            f"= {f(p.grad)}"
                        )
                    else:
                        lines.append(
                            f"    ∂E_total/∂{p.name} = δ_{u.name} · 1 = {f(p.grad)}"
                            + ("" if p.trainable else "  (bias frozen: not applied)")
                        )

        lines.append("")
        lines.append(f"Step 3 — update (w⁺ = w − η·∂E_total/∂w, η = {f(self.lr)})")
        if full:
            for p in self.params:
                if p.trainable:
                    lines.append(f"  {p.name}⁺ = {f(p.value)} − {f(self.lr)}·{_par(f(p.grad))} = {f(p.new_value)}")
                else:
                    lines.append(f"  {p.name} = {f(p.value)} (frozen)")
        else:
            changes = np.array([abs(p.new_value - p.value) for p in self.params])
            lines.append(f"  {len(self.params)} parameters updated; largest change {f(changes.max())}")
        lines.append(f"  E_total after the update: {f(self.E_total_new)} (was {f(self.E_total)})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def unit_names(layer_sizes: list[int]) -> list[list[str]]:
    """The seed's names of every unit, layer by layer: [[i1, i2], [h1, h2], [o1, o2]]."""
    n_hidden = len(layer_sizes) - 2
    names = [[f"i{j}" for j in range(1, layer_sizes[0] + 1)]]
    for k in range(1, n_hidden + 1):
        prefix = "h" if n_hidden == 1 else f"h{k}_"
        names.append([f"{prefix}{j}" for j in range(1, layer_sizes[k] + 1)])
    names.append([f"o{j}" for j in range(1, layer_sizes[-1] + 1)])
    return names


def trace_step(net: Network, x: Any, t: Any, lr: float) -> Trace:
    """Run one backpropagation step on one example and record every number.

    The network **is updated** (w ← w − lr·∂E/∂w), exactly as a training step would; trace a copy to keep it.

    Args:
        net: the network (its own forward/backward/step do the work).
        x: one example's inputs (n_inputs values).
        t: its targets (n_outputs values, or a class index for a cross-entropy network).
        lr: the learning rate η.
    """
    X, _ = check_inputs(x, net.n_inputs, net.dtype, name="x")
    if X.shape[0] != 1:
        raise ValueError(f"trace_step traces one example; x has {X.shape[0]} rows (pass a single row)")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not np.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite non-negative number, got {lr!r}")
    if np.ndim(t) == 0:
        t = [t]
    T = net._targets(t, n_examples=1)
    names = unit_names(net.layer_sizes)
    net._record = True
    try:
        net._forward(X)
        net._backward(T)
    finally:
        net._record = False
    out = net.layers[-1].out
    E_total = net.loss_function.value(out, T, net.layers[-1].net)
    errors = net.loss_function.elementwise(out, T)[0]
    units: list[list[UnitTrace]] = []
    for depth, layer in enumerate(net.layers):
        deriv = layer.activation.derivative(layer.net, layer.out) if layer.activation.elementwise else None
        assert layer.dE_dout is not None and layer.delta is not None
        assert layer.net is not None and layer.out is not None
        units.append(
            [
                UnitTrace(
                    name=names[depth + 1][j],
                    layer=depth + 1,
                    net=float(layer.net[0, j]),
                    out=float(layer.out[0, j]),
                    dE_dout=float(layer.dE_dout[0, j]),
                    dout_dnet=None if deriv is None else float(deriv[0, j]),
                    delta=float(layer.delta[0, j]),
                )
                for j in range(layer.n_out)
            ]
        )
    params: list[ParamTrace] = []
    count = 0
    old = [(layer.W.copy(), layer.b.copy(), layer.dW.copy(), layer.db.copy()) for layer in net.layers]
    net.step(lr)
    for depth, (layer, (W, b, dW, db)) in enumerate(zip(net.layers, old)):
        src_names, dst_names = names[depth], names[depth + 1]
        below = net.layers[depth - 1].out if depth else X
        assert below is not None
        src_out = below[0]
        for j in range(layer.n_out):
            for i in range(layer.n_in):
                count += 1
                params.append(
                    ParamTrace(
                        name=f"w{count}",
                        kind="weight",
                        layer=depth + 1,
                        source=src_names[i],
                        target=dst_names[j],
                        value=float(W[i, j]),
                        dnet_dw=float(src_out[i]),
                        grad=float(dW[i, j]),
                        new_value=float(layer.W[i, j]),
                    )
                )
            params.append(
                ParamTrace(
                    name=f"b{depth + 1}_{dst_names[j]}",
                    kind="bias",
                    layer=depth + 1,
                    source="1",
                    target=dst_names[j],
                    value=float(b[j]),
                    dnet_dw=1.0,
                    # ∂E/∂b = δ; a frozen bias has the same derivative, it is just not applied
                    grad=float(db[j]) if layer.bias_trainable else units[depth][j].delta,
                    new_value=float(layer.b[j]),
                    trainable=layer.bias_trainable,
                )
            )
    E_new = net.loss_function.value(net._forward(X), T, net.layers[-1].net)
    return Trace(
        lr=float(lr),
        loss=net.loss_function.name,
        inputs={n: float(v) for n, v in zip(names[0], X[0])},
        targets={n: float(v) for n, v in zip(names[-1], T[0])},
        units=units,
        output_errors={f"E_{n}": float(e) for n, e in zip(names[-1], errors)},
        E_total=float(E_total),
        params=params,
        E_total_new=float(E_new),
        activations=[a.name for a in net.activations],
    )


def _formatter(digits: int) -> Any:
    def f(v: float) -> str:
        return f"{float(v):.{digits}g}" if abs(float(v)) >= 1e-4 or v == 0 else f"{float(v):.{digits - 1}e}"

    return f


def _out(unit: str) -> str:
    """How a unit's output is written: inputs by their name (i1), other units as out_h1."""
    return unit if unit.startswith("i") else f"out_{unit}"


def _par(number: str) -> str:
    """Parenthesise a negative factor: 0.5·(−0.02)."""
    return f"({number})" if number.startswith("-") else number


def _sum(terms: Any) -> str:
    """Join terms with +, writing '+ -x' as '− x'."""
    text = ""
    for k, term in enumerate(terms):
        if k == 0:
            text = term
        elif term.startswith("-"):
            text += f" − {term[1:]}"
        else:
            text += f" + {term}"
    return text


def _error_formula(loss: str, o: str) -> str:
    return {
        "squared_error": f"½(target_{o} − out_{o})²",
        "mse": f"(target_{o} − out_{o})² / K",
        "cross_entropy": f"−target_{o}·ln(out_{o})",
        "binary_cross_entropy": f"−[target_{o}·ln(out_{o}) + (1 − target_{o})·ln(1 − out_{o})]",
    }.get(loss, f"E({o})")
