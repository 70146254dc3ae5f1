"""The ``deltaprop`` command: a thin layer that parses arguments, calls the library and prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

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

__all__ = ["main"]

PUBLISHED_VARIANT_NOTE = (
    "The widely copied walk-through reports 0.291027924 after the first update and outputs 0.015912196 / "
    "0.984065734 after 10,000 rounds: it computes the hidden deltas with w5..w8 already updated. deltaprop, like "
    "the seed's algorithm, uses the weights from before the update for every layer, hence 0.291027774."
)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deltaprop`` console script."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="deltaprop",
        description="Train multi-layer perceptrons by backpropagation, and see every number of a step.",
        epilog="Examples:\n  deltaprop demo\n  deltaprop demo one-weight\n  deltaprop demo --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="walk through the seed's worked examples step by step",
        description="Print one backpropagation step of the seed's 2-2-2 example, then train it; "
        "'one-weight' shows the one-weight example instead.",
        epilog="Examples:\n  deltaprop demo\n  deltaprop demo one-weight --lr 0.3\n  deltaprop demo --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("example", nargs="?", default="2-2-2", choices=["2-2-2", "one-weight"])
    demo.add_argument("--json", action="store_true", help="print machine-readable JSON keyed by the seed's names")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default 10000; one-weight 12)")
    demo.add_argument("--lr", type=float, default=0.3, help="learning rate of the one-weight descent")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.example == "one-weight":
            text = demo_one_weight(args.json, args.lr, args.steps or 12)
        else:
            text = demo_worked(args.json, args.steps or 10_000)
    except (ValueError, TypeError) as exc:
        print(f"deltaprop: error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
