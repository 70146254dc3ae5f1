"""Activation functions f(net) and, beside each, its derivative f′ (ActivationFunction in the seed's words).

Every activation is a small object with three jobs:

* ``forward(net)``: out = f(net);
* ``derivative(net, out)``: dout/dnet, elementwise, written the way the maths reads (sigmoid′ = o(1 − o));
* ``backward(dE_dout, net, out)``: δ = ∂E/∂net. For elementwise functions this is ∂E/∂out ⊙ f′(net); softmax is not
  elementwise, so it applies its Jacobian instead.

``backward`` may overwrite ``dE_dout`` (the network hands it a scratch buffer): the hot path multiplies in place.

>>> import numpy as np
>>> sigmoid = get_activation("sigmoid")
>>> out = sigmoid.forward(np.array([0.3775]))
>>> round(float(out[0]), 9)
0.593269992
>>> round(float(sigmoid.derivative(None, out)[0]), 9)  # o(1 − o)
0.241300709
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import native
from .backend import constant_like, xp_of

__all__ = [
    "Activation",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softplus",
    "Identity",
    "Softmax",
    "ACTIVATIONS",
    "get_activation",
]

Array = Any


class Activation:
    """Base class: an activation f and its derivative f′."""

    name: str = ""
    #: True when f acts on each unit alone, so that δ = ∂E/∂out ⊙ f′(net).
    elementwise: bool = True
    #: True when the function may only be used on the output layer.
    output_only: bool = False
    #: True when backward reads ``net`` (so forward must keep it apart from ``out``)
    reads_net: bool = True

    def forward(self, net: Array) -> Array:
        """out = f(net)."""
        raise NotImplementedError

    def forward_into(self, net: Array, out: Array) -> Array:
        """out = f(net) written into the preallocated NumPy array ``out`` (the training hot path); returns it.

        ``out`` may be ``net`` itself when ``reads_net`` is False (the backward pass then needs only ``out``).
        """
        out[...] = self.forward(net)
        return out

    def derivative(self, net: Array, out: Array) -> Array:
        """dout/dnet, elementwise (given both net and out, whichever the formula reads best with)."""
        raise NotImplementedError

    def backward(self, dE_dout: Array, net: Array, out: Array) -> Array:
        """δ = ∂E/∂net = ∂E/∂out ⊙ f′(net) (chain rule); may overwrite ``dE_dout``."""
        dE_dout *= self.derivative(net, out)
        return dE_dout

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


class Sigmoid(Activation):
    """Logistic function 1 / (1 + e^(−net)), the seed's activation."""

    name = "sigmoid"

    def forward(self, net: Array) -> Array:
        # 1 / (1 + exp(−net)), written through tanh so that large |net| never overflows exp
        return 0.5 * (1.0 + xp_of(net).tanh(0.5 * net))

    reads_net = False

    def forward_into(self, net: Array, out: Array) -> Array:
        # out = ½(1 + tanh(net/2)), in place
        np.multiply(net, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    def derivative(self, net: Array, out: Array) -> Array:
        return out * (1.0 - out)  # dout/dnet = o(1 − o)

    def backward(self, dE_dout: Array, net: Array, out: Array) -> Array:
        dE_dout *= out
        dE_dout *= 1.0 - out  # δ = ∂E/∂out · o(1 − o)
        return dE_dout


class Tanh(Activation):
    """Hyperbolic tangent."""

    name = "tanh"

    reads_net = False

    def forward(self, net: Array) -> Array:
        return xp_of(net).tanh(net)

    def forward_into(self, net: Array, out: Array) -> Array:
        return np.tanh(net, out=out)

    def derivative(self, net: Array, out: Array) -> Array:
        return 1.0 - out * out  # dout/dnet = 1 − o²

    def backward(self, dE_dout: Array, net: Array, out: Array) -> Array:
        if isinstance(dE_dout, np.ndarray):
            sq = np.multiply(out, out)
            np.subtract(1.0, sq, out=sq)
            dE_dout *= sq  # δ = ∂E/∂out · (1 − o²)
            return dE_dout
        dE_dout *= 1.0 - out * out
        return dE_dout


class ReLU(Activation):
    """Rectified linear unit max(0, net)."""

    name = "relu"

    reads_net = False

    def forward(self, net: Array) -> Array:
        return xp_of(net).maximum(net, constant_like(0.0, net))

    def forward_into(self, net: Array, out: Array) -> Array:
        return native.relu(net, out)  # max(net, 0), one compiled pass where deltaprop._ckernels was built

    def derivative(self, net: Array, out: Array) -> Array:
        xp = xp_of(out)
        return xp.astype(out > 0, out.dtype)  # 1 where net > 0, else 0

    def backward(self, dE_dout: Array, net: Array, out: Array) -> Array:
        if isinstance(dE_dout, np.ndarray):
            native.relu_backward(dE_dout, out)  # δ = ∂E/∂out where the unit is active (out > 0), 0 elsewhere
            return dE_dout
        # the array API multiplies numbers only, not booleans: keep ∂E/∂out where out > 0, else 0
        return xp_of(out).where(out > 0, dE_dout, constant_like(0.0, dE_dout))


class LeakyReLU(Activation):
    """max(net, α·net): a small slope α instead of zero for negative net inputs."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha < 1.0):
            raise ValueError(f"leaky_relu alpha must be a number in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, net: Array) -> Array:
        return xp_of(net).where(net > 0, net, self.alpha * net)

    def derivative(self, net: Array, out: Array) -> Array:
        xp = xp_of(net)
        return xp.where(net > 0, xp.ones_like(net), xp.full_like(net, self.alpha))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}


class ELU(Activation):
    """Exponential linear unit: net if net > 0 else α(e^net − 1)."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        if not (isinstance(alpha, (int, float)) and alpha > 0.0):
            raise ValueError(f"elu alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, net: Array) -> Array:
        xp = xp_of(net)
        return xp.where(net > 0, net, self.alpha * xp.expm1(xp.minimum(net, 0.0)))

    def derivative(self, net: Array, out: Array) -> Array:
        return xp_of(net).where(net > 0, 1.0, out + self.alpha)  # f′ = f(net) + α for net ≤ 0

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}


class Softplus(Activation):
    """ln(1 + e^net), a smooth ReLU; its derivative is the sigmoid."""

    name = "softplus"

    def forward(self, net: Array) -> Array:
        xp = xp_of(net)
        return xp.logaddexp(xp.zeros_like(net), net)  # ln(1 + e^net) without overflow

    def derivative(self, net: Array, out: Array) -> Array:
        return 0.5 * (1.0 + xp_of(net).tanh(0.5 * net))  # sigmoid(net)


class Identity(Activation):
    """f(net) = net (linear output, for regression)."""

    name = "identity"

    reads_net = False

    def forward(self, net: Array) -> Array:
        return xp_of(net).asarray(net, copy=True)

    def forward_into(self, net: Array, out: Array) -> Array:
        if out is not net:
            out[...] = net
        return out

    def derivative(self, net: Array, out: Array) -> Array:
        return xp_of(net).ones_like(net)

    def backward(self, dE_dout: Array, net: Array, out: Array) -> Array:
        return dE_dout  # f′ = 1


class Softmax(Activation):
    """o_k = e^(net_k) / Σ_j e^(net_j) over the units of one example (output layer only)."""

    name = "softmax"
    elementwise = False
    output_only = True
    reads_net = True  # the fused cross-entropy loss reads net (log-softmax)
    #: (out, row max m, row sum s of e^(net − m)) of the last forward_into, or None
    kept: tuple[Array, Array, Array] | None = None

    def forward_into(self, net: Array, out: Array) -> Array:
        # o = e^(net − m) / s with m the row max (shifting net changes no o, and avoids overflow), s = Σ e^(net − m);
        # ln Σ_j e^(net_j) = m + ln s per row: the cross-entropy of this batch needs it (Network._batch_loss)
        self.kept = native.softmax(net, out)
        return out

    def forward(self, net: Array) -> Array:
        xp = xp_of(net)
        m = xp.max(net, axis=-1, keepdims=True)
        e = xp.exp(net - m)  # shifting net changes no o, and avoids overflow
        s = xp.sum(e, axis=-1, keepdims=True)
        e /= s
        if not isinstance(net, np.ndarray):  # another library: the batch's cross-entropy reuses m and s
            self.kept = (e, m, s)
        return e

    def derivative(self, net: Array, out: Array) -> Array:
        """Diagonal of the Jacobian, o_k(1 − o_k); the full Jacobian is diag(o) − o oᵀ (see ``backward``)."""
        return out * (1.0 - out)

    def backward(self, dE_dout: Array, net: Array, out: Array) -> Array:
        # δ = J·∂E/∂out with J = diag(o) − o oᵀ:  δ_k = o_k (g_k − Σ_j g_j o_j)
        s = xp_of(out).sum(dE_dout * out, axis=-1, keepdims=True)
        dE_dout -= s
        dE_dout *= out
        return dE_dout


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, Identity, Softmax)
}
_ALIASES = {"logistic": "sigmoid", "linear": "identity", "none": "identity"}


def get_activation(spec: str | Activation | dict[str, Any]) -> Activation:
    """Return the activation named by ``spec`` (a name, a config dict, or an :class:`Activation`).

    >>> get_activation("relu")
    ReLU()
    >>> get_activation({"name": "leaky_relu", "alpha": 0.1})
    LeakyReLU(alpha=0.1)
    """
    if isinstance(spec, Activation):
        return spec
    params: dict[str, Any] = {}
    if isinstance(spec, dict):
        params = {k: v for k, v in spec.items() if k != "name"}
        spec = spec.get("name", "")
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name such as 'sigmoid' or an Activation, got {type(spec).__name__}")
    key = _ALIASES.get(spec.lower(), spec.lower())
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {spec!r}; choose one of: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[key](**params)
