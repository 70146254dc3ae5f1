"""Check backpropagation's gradients against central finite differences, in float64.

For every parameter θ_i, the five-point central difference

    ∂E/∂θ_i ≈ (−E(θ + 2h·e_i) + 8·E(θ + h·e_i) − 8·E(θ − h·e_i) + E(θ − 2h·e_i)) / 12h

estimates the gradient without the chain rule at all, with an error of order h⁴ (about 1e-13 in float64 for
h = 1e-3), so even gradients near 1e-7 are resolved. If backward is right, the two agree to many digits.

>>> from deltaprop import MLP, gradcheck
>>> net = MLP([3, 4, 2], activation="tanh", output_activation="identity", dtype="float64", seed=0)
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> gradcheck(net, rng.normal(size=(5, 3)), rng.normal(size=(5, 2))).max_rel_error < 1e-6
True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .network import MLP, Network

__all__ = ["GradcheckResult", "gradcheck"]


class GradcheckResult(NamedTuple):
    """Analytic (backprop) and numeric (finite-difference) gradients and how far apart they are."""

    analytic: np.ndarray
    numeric: np.ndarray
    #: max_i |a_i − n_i| / max(|a_i| + |n_i|, floor · max_j |a_j|)
    max_rel_error: float
    max_abs_error: float
    #: index into ``theta`` of the worst parameter
    worst_index: int

    def __bool__(self) -> bool:
        return self.max_rel_error < 1e-6


def gradcheck(
    net: Network, X: Any, Y: Any, *, h: float = 1e-3, floor: float = 1e-4, max_params: int | None = None
) -> GradcheckResult:
    """Compare ``net``'s backprop gradient with central finite differences, computed on a float64 copy of ``net``.

    Args:
        net: the network to check (left unchanged: the check runs on a float64 copy).
        X, Y: a batch of inputs and targets.
        h: finite-difference step (five-point stencil).
        floor: denominators of the relative error are at least ``floor`` times the largest gradient component: a
            component ten thousand times smaller than the largest may be below the finite differences' rounding noise
            (about 1e-13 here), so it is judged on the scale of the whole gradient rather than its own.
        max_params: check only this many parameters, spread evenly over ``theta`` (None: all of them).
    """
    if not (isinstance(h, float) and h > 0):
        raise ValueError(f"h must be a positive float, got {h!r}")
    net64 = _float64_copy(net)
    net64.forward(X)
    net64.backward(Y)
    analytic = net64.grad.copy()
    frozen = net.frozen_mask()  # frozen biases have gradient 0 by definition: not compared
    indices = np.arange(net64.n_params)
    if max_params is not None and max_params < net64.n_params:
        indices = np.unique(np.linspace(0, net64.n_params - 1, max_params).astype(int))
    numeric = np.zeros_like(analytic)
    theta = net64.theta
    for i in indices:
        if frozen[i]:
            continue
        saved = theta[i]
        E = []
        for shift in (2.0 * h, h, -h, -2.0 * h):
            theta[i] = saved + shift
            E.append(net64.loss(X, Y))
        theta[i] = saved
        numeric[i] = (-E[0] + 8.0 * E[1] - 8.0 * E[2] + E[3]) / (12.0 * h)  # five-point central difference
    a, n = analytic[indices], numeric[indices]
    abs_err = np.abs(a - n)
    scale = max(float(np.abs(a).max(initial=0.0)), 1e-12)
    rel_err = abs_err / np.maximum(np.abs(a) + np.abs(n), floor * scale)
    worst = int(np.argmax(rel_err)) if rel_err.size else 0
    return GradcheckResult(
        analytic=analytic,
        numeric=numeric,
        max_rel_error=float(rel_err.max(initial=0.0)),
        max_abs_error=float(abs_err.max(initial=0.0)),
        worst_index=int(indices[worst]) if indices.size else 0,
    )


def _float64_copy(net: Network) -> Network:
    copy = MLP(
        net.layer_sizes,
        activation=net.activations[:-1] if len(net.layers) > 1 else [],
        output_activation=net.activations[-1],
        loss=net.loss_function,
        init=[(W.astype(np.float64), b.astype(np.float64)) for W, b in net.get_weights()],
        dtype="float64",
    )
    for layer, orig in zip(copy.layers, net.layers):
        layer.bias_trainable = orig.bias_trainable
    return copy
