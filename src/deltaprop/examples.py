"""The seed's two worked examples, built on the same engine as everything else.

* The 2-2-2 network (inputs 0.05/0.10, targets 0.01/0.99, w1..w8 = .15 .20 .25 .30 .40 .45 .50 .55, b1 = .35,
  b2 = .60, sigmoid, squared error, learning rate 0.5).
* The one-weight model y = W·x on inputs 0, 1, 2 with desired outputs 0, 2, 4: why we move against the gradient.

>>> net = worked_example_network()
>>> round(net.loss([0.05, 0.10], [0.01, 0.99]), 9)
0.298371109
>>> [row.squared_errors for row in one_weight_table([3.0])]
[[0.0, 1.0, 4.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .network import MLP, Network

__all__ = [
    "WORKED_X",
    "WORKED_T",
    "WORKED_LR",
    "worked_example_network",
    "train_worked_example",
    "WorkedTraining",
    "ONE_WEIGHT_X",
    "ONE_WEIGHT_T",
    "one_weight_network",
    "one_weight_table",
    "one_weight_descent",
    "OneWeightRow",
    "OneWeightStep",
]

WORKED_X = np.array([[0.05, 0.10]])
WORKED_T = np.array([[0.01, 0.99]])
WORKED_LR = 0.5
# w1 is i1→h1, w2 i2→h1, w3 i1→h2, w4 i2→h2; W has shape (n_in, n_out), so W[i, j] is the weight from input i to unit j
_W1 = [[0.15, 0.25], [0.20, 0.30]]  # [[w1, w3], [w2, w4]]
_W2 = [[0.40, 0.50], [0.45, 0.55]]  # [[w5, w7], [w6, w8]]


def worked_example_network(*, train_biases: bool = False, dtype: str = "float64") -> Network:
    """The seed's 2-2-2 sigmoid network with its published starting weights (biases frozen, as published)."""
    net = MLP(
        [2, 2, 2],
        activation="sigmoid",
        loss="squared_error",
        init=[(_W1, [0.35, 0.35]), (_W2, [0.60, 0.60])],
        dtype=dtype,
    )
    net.freeze_biases(frozen=not train_biases)
    return net


@dataclass(frozen=True)
class WorkedTraining:
    """The error after training the worked example."""

    train_biases: bool
    steps: int  # updates made
    E_after_first_update: float
    #: E_total at forward pass number ``steps`` (the published "after 10,000 rounds" figure: steps = 10,000)
    E_total: float
    outputs: tuple[float, float]
    curve: np.ndarray  # E_total at every forward pass, 1 … steps


def train_worked_example(steps: int = 10_000, *, train_biases: bool = False) -> WorkedTraining:
    """Repeat the worked step: ``steps`` forward passes, with an update after each but the last.

    The published figure E_total = 0.0000351085 is the error at the 10,000th forward pass with biases fixed.
    """
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer ≥ 2, got {steps!r}")
    net = worked_example_network(train_biases=train_biases)
    curve = np.empty(steps)
    for n in range(steps):
        out = net._forward(WORKED_X)
        curve[n] = net.loss_function.value(out, WORKED_T)
        if n < steps - 1:
            net._backward(WORKED_T)
            net.step(WORKED_LR)
    return WorkedTraining(
        train_biases=train_biases,
        steps=steps,
        E_after_first_update=float(curve[1]),
        E_total=float(curve[-1]),
        outputs=(float(out[0, 0]), float(out[0, 1])),
        curve=curve,
    )


ONE_WEIGHT_X = np.array([[0.0], [1.0], [2.0]])
ONE_WEIGHT_T = np.array([[0.0], [2.0], [4.0]])


def one_weight_network(W: float) -> Network:
    """The model y = W·x: one input, one identity output, no bias (held at 0), float64."""
    net = MLP([1, 1], activation="identity", loss="squared_error", init=[([[W]], [0.0])], dtype="float64")
    net.freeze_biases()
    return net


@dataclass(frozen=True)
class OneWeightRow:
    """The seed's table for one value of W."""

    W: float
    inputs: list[float]
    desired: list[float]
    outputs: list[float]
    absolute_errors: list[float]
    squared_errors: list[float]
    sum_squared_error: float
    E: float  # the loss deltaprop minimises: mean over examples of ½(t − y)²


def one_weight_table(Ws: Any = (3.0, 4.0, 2.0)) -> list[OneWeightRow]:
    """Outputs and errors of y = W·x for each W (the seed's W = 3, then 4: the error grows, then 2: no error)."""
    rows = []
    for W in Ws:
        net = one_weight_network(float(W))
        y = net.forward(ONE_WEIGHT_X)[:, 0]
        t = ONE_WEIGHT_T[:, 0]
        rows.append(
            OneWeightRow(
                W=float(W),
                inputs=ONE_WEIGHT_X[:, 0].tolist(),
                desired=t.tolist(),
                outputs=y.tolist(),
                absolute_errors=np.abs(t - y).tolist(),
                squared_errors=((t - y) ** 2).tolist(),
                sum_squared_error=float(((t - y) ** 2).sum()),
                E=net.loss(ONE_WEIGHT_X, ONE_WEIGHT_T),
            )
        )
    return rows


@dataclass(frozen=True)
class OneWeightStep:
    """One gradient-descent step on W."""

    step: int
    W: float
    E: float
    dE_dW: float
    W_new: float


def one_weight_descent(W0: float = 3.0, lr: float = 0.3, steps: int = 12) -> list[OneWeightStep]:
    """Gradient descent on W from ``W0``: W ← W − lr·dE/dW, with dE/dW from backpropagation.

    E(W) = (1/3) Σ ½(W·x − t)², so dE/dW = (5/3)(W − 2): positive when W is too large, so stepping against it
    moves W down towards 2, and the step shrinks as the slope does. With lr = 0.3 each step halves W − 2.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    net = one_weight_network(float(W0))
    history = []
    for k in range(1, steps + 1):
        W = float(net.layers[0].W[0, 0])
        out = net._forward(ONE_WEIGHT_X)
        E = net.loss_function.value(out, ONE_WEIGHT_T)
        net._backward(ONE_WEIGHT_T)
        grad = float(net.layers[0].dW[0, 0])
        net.step(lr)
        history.append(OneWeightStep(step=k, W=W, E=E, dE_dW=grad, W_new=float(net.layers[0].W[0, 0])))
    return history
