"""Loss functions: the error E of a batch and the δ = ∂E/∂net it sends into the output layer.

Every loss is the **mean over the examples of the batch** of a per-example error, so gradients do not grow with the
batch size. For one example ``squared_error`` is the seed's E_total = Σ ½(target − out)².

Where the output activation and the loss cancel (softmax with cross-entropy, sigmoid with binary cross-entropy) the
output δ is fused into the exact, numerically stable o − t; otherwise δ = ∂E/∂out ⊙ f′(net) by the chain rule.

>>> import numpy as np
>>> loss = get_loss("squared_error")
>>> out = np.array([[0.75136507, 0.772928465]]); t = np.array([[0.01, 0.99]])
>>> round(loss.value(out, t), 9)  # E_total of the worked example
0.298371109
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import native
from .activations import Activation
from .backend import constant_like, device_of, dtype_in, is_foreign_array, xp_of

__all__ = ["Loss", "SquaredError", "MSE", "CrossEntropy", "BinaryCrossEntropy", "LOSSES", "get_loss"]

Array = Any


class Loss:
    """Base class: E(out, t) averaged over the batch, and its output δ."""

    name: str = ""
    #: the output activation with which δ fuses to o − t (None: no fusion, any output activation).
    fused_activation: str | None = None

    def value(self, out: Array, t: Array, net: Array | None = None) -> float:
        """E, the mean over the batch of the per-example error (``net`` lets fused losses work from logits)."""
        raise NotImplementedError

    def value_array(self, out: Array, t: Array, net: Array | None = None) -> Any:
        """E as a 0-d array of ``out``'s library, not copied to the host (a GPU runs on meanwhile; the training
        loop adds these up and reads the sum once per epoch). The built-in losses compute it in the library;
        this default returns ``value()``, a float."""
        return self.value(out, t, net)

    def elementwise(self, out: Array, t: Array) -> Array:
        """Each output unit's share of each example's error (rows sum to the per-example error, e.g. E_o1 + E_o2)."""
        raise NotImplementedError

    def dE_dout(self, out: Array, t: Array) -> Array:
        """∂E/∂out for every output unit of every example (of the batch-mean E)."""
        raise NotImplementedError

    def output_delta(self, out: Array, t: Array, net: Array, activation: Activation) -> Array:
        """δ at the output layer, ∂E/∂net = ∂E/∂out ⊙ ∂out/∂net (chain rule)."""
        return activation.backward(self.dE_dout(out, t), net, out)

    def check_activation(self, activation: Activation) -> None:
        """Raise ValueError when this loss needs a particular output activation that ``activation`` is not."""
        if self.fused_activation is not None and activation.name != self.fused_activation:
            raise ValueError(
                f"loss {self.name!r} needs output_activation={self.fused_activation!r}, "
                f"got {activation.name!r}; use loss='squared_error' or 'mse' with other output activations"
            )

    def targets(self, Y: Any, n_out: int, dtype: Any) -> Array:
        """Check targets for a network with ``n_out`` outputs and return them as a (n, n_out) float array."""
        Y = _as_float_targets(Y, dtype)
        if Y.ndim == 1 and n_out == 1:
            Y = Y.reshape(-1, 1)
        if Y.ndim != 2 or Y.shape[1] != n_out:
            raise ValueError(
                f"targets have shape {tuple(Y.shape)} but the network has {n_out} output(s); "
                f"expected shape (n_examples, {n_out})"
            )
        return Y

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredError(Loss):
    """The seed's error: per example E = Σ_k ½(t_k − o_k)², averaged over the batch."""

    name = "squared_error"

    def value(self, out: Array, t: Array, net: Array | None = None) -> float:
        diff = t - out
        if isinstance(diff, np.ndarray):
            return float(0.5 * np.vdot(diff, diff) / out.shape[0])  # ½ Σ (t − o)², one BLAS call
        return float(self.value_array(out, t, net))

    def value_array(self, out: Array, t: Array, net: Array | None = None) -> Any:
        diff = t - out
        return 0.5 * xp_of(out).sum(diff * diff) / out.shape[0]

    def elementwise(self, out: Array, t: Array) -> Array:
        return 0.5 * (t - out) ** 2  # E_o = ½(target − out)²

    def dE_dout(self, out: Array, t: Array) -> Array:
        return (out - t) / out.shape[0]  # ∂E/∂o = −(t − o), per example, averaged over the batch


class MSE(Loss):
    """Mean squared error over every output of every example: (1/(n·K)) Σ (t − o)²."""

    name = "mse"

    def value(self, out: Array, t: Array, net: Array | None = None) -> float:
        return float(self.value_array(out, t, net))

    def value_array(self, out: Array, t: Array, net: Array | None = None) -> Any:
        diff = t - out
        return xp_of(out).sum(diff * diff) / (out.shape[0] * out.shape[1])

    def elementwise(self, out: Array, t: Array) -> Array:
        return (t - out) ** 2 / out.shape[1]

    def dE_dout(self, out: Array, t: Array) -> Array:
        return (out - t) * (2.0 / (out.shape[0] * out.shape[1]))


class CrossEntropy(Loss):
    """Categorical cross-entropy of a softmax output: per example E = −Σ_k t_k ln o_k.

    Targets are class indices (integers 0..K−1) or one-hot / probability rows. With softmax the output δ is
    exactly o − t (per example), computed without forming ln o, so it stays finite for any net input.
    """

    name = "cross_entropy"
    fused_activation = "softmax"

    def value(self, out: Array, t: Array, net: Array | None = None) -> float:
        if net is not None and isinstance(net, np.ndarray):  # NumPy fast path (the training loop's batch loss)
            m = np.maximum.reduce(net, axis=-1, keepdims=True)
            s = np.add.reduce(np.exp(net - m), axis=-1, keepdims=True)
            return self.value_from_softmax(t, net, m, s)
        return float(self.value_array(out, t, net))

    def value_array(self, out: Array, t: Array, net: Array | None = None) -> Any:
        xp = xp_of(out)
        if net is None:  # from probabilities: clip so that a zero probability gives a large, finite E
            return -xp.sum(t * xp.log(xp.clip(out, _ln_floor(xp, out), 1.0))) / out.shape[0]
        m = xp.max(net, axis=-1, keepdims=True)
        log_out = net - (m + xp.log(xp.sum(xp.exp(net - m), axis=-1, keepdims=True)))  # log-softmax
        return -xp.sum(t * log_out) / out.shape[0]

    def value_array_from_softmax(self, t: Array, net: Array, m: Array, s: Array) -> Any:
        """``value_from_softmax`` for arrays of another library: a 0-d array, on their device."""
        return self.sum_array_from_softmax(t, net, m, s) / net.shape[0]

    def sum_array_from_softmax(self, t: Array, net: Array, m: Array, s: Array) -> Any:
        """−Σ t·ln o over the whole batch (not divided by its size), a 0-d array of ``net``'s library."""
        xp = xp_of(net)
        return xp.sum(t * ((m + xp.log(s)) - net))  # ln o = net − (m + ln s)

    def value_from_softmax(self, t: np.ndarray, net: np.ndarray, m: np.ndarray, s: np.ndarray) -> float:
        """E from the softmax's own row max ``m`` and row sum ``s`` of e^(net − m): nothing is exponentiated again."""
        return -native.cross_entropy_sum(net, m, s, t) / net.shape[0]  # −Σ t·ln o / n, ln o = (net − m) − ln s

    def elementwise(self, out: Array, t: Array) -> Array:
        xp = xp_of(out)
        return -t * xp.log(xp.clip(out, _ln_floor(xp, out), 1.0))

    def dE_dout(self, out: Array, t: Array) -> Array:
        return -t / out / out.shape[0]

    def output_delta(self, out: Array, t: Array, net: Array, activation: Activation) -> Array:
        return (out - t) / out.shape[0]  # softmax + cross-entropy: δ = o − t (fused)

    def targets(self, Y: Any, n_out: int, dtype: Any) -> Array:
        arr = Y if is_foreign_array(Y) else np.asarray(Y)
        if getattr(arr, "ndim", None) == 1 and _is_integer_array(arr):
            xp = xp_of(arr)
            if arr.shape[0] and (int(xp.min(arr)) < 0 or int(xp.max(arr)) >= n_out):
                raise ValueError(
                    f"class indices must lie in 0..{n_out - 1} for a network with {n_out} outputs, "
                    f"got values from {int(xp.min(arr))} to {int(xp.max(arr))}"
                )
            if xp is not np:  # the array API has no fancy-index assignment: compare with 0..n_out−1 instead
                classes = xp.arange(n_out, dtype=arr.dtype, device=device_of(arr))
                hot = xp.expand_dims(arr, axis=1) == classes
                return xp.astype(hot, dtype_in(xp, dtype))
            one_hot = xp.zeros((arr.shape[0], n_out), dtype=dtype)
            one_hot[xp.arange(arr.shape[0]), arr] = 1.0
            return one_hot
        return super().targets(Y, n_out, dtype)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of sigmoid outputs: per example E = −Σ_k [t_k ln o_k + (1 − t_k) ln(1 − o_k)].

    With sigmoid outputs the δ is exactly o − t, and E is computed from the net input as
    softplus(net) − t·net, which never takes the log of 0.
    """

    name = "binary_cross_entropy"
    fused_activation = "sigmoid"

    def value(self, out: Array, t: Array, net: Array | None = None) -> float:
        return float(self.value_array(out, t, net))

    def value_array(self, out: Array, t: Array, net: Array | None = None) -> Any:
        xp = xp_of(out)
        if net is None:
            e = _bce_margin(xp, out)
            o = xp.clip(out, e, 1.0 - e)
            return -xp.sum(t * xp.log(o) + (1.0 - t) * xp.log(1.0 - o)) / out.shape[0]
        # softplus(net) − t·net  =  max(net, 0) − t·net + ln(1 + e^(−|net|))
        e = xp.maximum(net, constant_like(0.0, net)) - t * net + xp.log1p(xp.exp(-xp.abs(net)))
        return xp.sum(e) / out.shape[0]

    def elementwise(self, out: Array, t: Array) -> Array:
        xp = xp_of(out)
        e = _bce_margin(xp, out)
        o = xp.clip(out, e, 1.0 - e)
        return -(t * xp.log(o) + (1.0 - t) * xp.log(1.0 - o))

    def dE_dout(self, out: Array, t: Array) -> Array:
        return (out - t) / (out * (1.0 - out)) / out.shape[0]

    def output_delta(self, out: Array, t: Array, net: Array, activation: Activation) -> Array:
        return (out - t) / out.shape[0]  # sigmoid + binary cross-entropy: δ = o − t (fused)


def _ln_floor(xp: Any, out: Array) -> float:
    """Where probabilities are clipped before ln: 1e-300, or the dtype's smallest normal number where 1e-300 would
    round to 0 (float32: ln 0 = −inf, and 0·ln 0 = NaN for the classes with t = 0)."""
    return max(1e-300, float(xp.finfo(out.dtype).smallest_normal))


def _bce_margin(xp: Any, out: Array) -> float:
    """e in clip(o, e, 1 − e) for binary cross-entropy: 1e-15, or the dtype's epsilon where 1 − 1e-15 rounds to 1."""
    return max(1e-15, float(xp.finfo(out.dtype).eps))


def _is_integer_array(a: Any) -> bool:
    dtype = getattr(a, "dtype", None)
    if isinstance(a, np.ndarray):
        return bool(np.issubdtype(a.dtype, np.integer))
    return dtype is not None and "int" in str(dtype)


def _as_float_targets(Y: Any, dtype: Any) -> Array:
    if is_foreign_array(Y):  # stays in its library (and on its device), in the network's dtype
        xp = xp_of(Y)
        want = dtype_in(xp, dtype)
        return Y if Y.dtype == want else xp.astype(Y, want)
    try:
        arr = np.asarray(Y)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"targets must be a rectangular array of numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"targets must be numeric, got an array of dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError("targets contain NaN or infinite values; remove or impute them first")
    return arr


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (SquaredError, MSE, CrossEntropy, BinaryCrossEntropy)}
_ALIASES = {
    "sse": "squared_error",
    "mean_squared_error": "mse",
    "categorical_cross_entropy": "cross_entropy",
    "crossentropy": "cross_entropy",
    "log_loss": "cross_entropy",
    "bce": "binary_cross_entropy",
}


def get_loss(spec: str | Loss | dict[str, Any]) -> Loss:
    """Return the loss named by ``spec`` (a name, a config dict, or a :class:`Loss`).

    >>> get_loss("cross_entropy")
    CrossEntropy()
    """
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        spec = spec.get("name", "")
    if not isinstance(spec, str):
        raise TypeError(f"loss must be a name such as 'squared_error' or a Loss, got {type(spec).__name__}")
    key = _ALIASES.get(spec.lower(), spec.lower())
    if key not in LOSSES:
        raise ValueError(f"unknown loss {spec!r}; choose one of: {', '.join(sorted(LOSSES))}")
    return LOSSES[key]()
