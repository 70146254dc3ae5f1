"""Compiled online learning: one whole epoch of batch-size-1 SGD in a single call (optional, needs numba).

With one example per update the arrays are tiny, and the NumPy engine spends its time not on arithmetic but on the
~25 NumPy calls of each step (about a microsecond each). This module runs the very same step — forward pass, error
before the update, delta rule backward, ``θ ← θ − lr·g`` — for every example of an epoch inside one function
compiled by `numba <https://numba.pydata.org>`_, on the network's flat ``theta`` (W row-major then b, layer by
layer) and in the network's dtype. It is an accelerator only: when numba is not installed :func:`available` is False
and the NumPy engine does the work, with the same results.

* :func:`available` — numba can be imported (it is imported only when a kernel is first used: ``import deltaprop``
  never imports it). Setting the environment variable ``DELTAPROP_NUMBA=0`` turns the kernels off.
* :func:`supports` — a compiled step exists for this network, optimiser and batch size.
* :func:`online_sgd_epoch` — one epoch over the rows ``order`` of ``X``, updating ``net.theta`` in place.
* :func:`repeat_steps` — the seed's loop on one example: forward, error, backward, update, ``steps`` times.
* :func:`warmup` — compile (or load from numba's on-disk cache) both dtypes now rather than on first use.

Supported: hidden activations sigmoid, tanh, relu, leaky_relu, elu, softplus, identity; the same or softmax at the
output; losses squared_error, mse, cross_entropy, binary_cross_entropy; frozen biases; plain SGD and PyTorch's
momentum SGD (dampening, Nesterov) without weight decay.

>>> from deltaprop import kernels
>>> kernels.available() in (True, False)
True
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np

from . import activations as _acts
from . import losses as _losses

__all__ = [
    "available",
    "supports",
    "online_sgd_epoch",
    "repeat_steps",
    "optimizer_kwargs",
    "warmup",
    "ACTIVATION_CODES",
    "LOSS_CODES",
]

#: activation class → the kernel's code for it (exact classes only: a subclass may change the maths)
ACTIVATION_CODES: dict[type, int] = {
    _acts.Sigmoid: 0,
    _acts.Tanh: 1,
    _acts.ReLU: 2,
    _acts.LeakyReLU: 3,
    _acts.ELU: 4,
    _acts.Softplus: 5,
    _acts.Identity: 6,
    _acts.Softmax: 7,
}
#: loss class → the kernel's code for it
LOSS_CODES: dict[type, int] = {
    _losses.SquaredError: 0,
    _losses.MSE: 1,
    _losses.CrossEntropy: 2,
    _losses.BinaryCrossEntropy: 3,
}
_SOFTMAX = 7

# the layout of the small array of constants, in the network's dtype, that every kernel receives (so that float32
# networks compute in float32: a Python literal in compiled code would be float64)
_C_LR, _C_HALF, _C_ONE, _C_ZERO, _C_K, _C_MSE, _C_MU, _C_DAMP1, _N_CONSTS = range(9)

# the numba source below, leaves first (a kernel calls the compiled dispatchers of the helpers it names)
_NB_FUNCTIONS = (
    "_nb_f",
    "_nb_df",
    "_nb_forward",
    "_nb_loss",
    "_nb_predict",
    "_nb_momentum",
    "_nb_activation_backward",
    "_nb_backward_update",
    "_nb_run",
)
_NB_INLINE = ("_nb_forward", "_nb_loss", "_nb_backward_update")
_available: bool | None = None
_compiled: dict[str, Any] | None = None
_lock = threading.Lock()


# ----------------------------------------------------------------------------------------------- public API
def available() -> bool:
    """True when numba can be imported (and ``DELTAPROP_NUMBA`` is not ``0``): the compiled kernels can run."""
    global _available
    if os.environ.get("DELTAPROP_NUMBA", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _available is None:
        try:
            import numba  # noqa: F401
        except Exception:  # not installed, or broken against this NumPy
            _available = False
        else:
            _available = True
    return _available


def supports(net: Any, optimizer: Any = None, batch_size: int = 1) -> bool:
    """True when :func:`online_sgd_epoch` can train ``net`` with ``optimizer`` (None: plain SGD) at ``batch_size``.

    Needs batch_size 1, numba, a float32/float64 NumPy network built of the library's own activation and loss
    classes, and plain or momentum SGD (``deltaprop.optim.SGD``, any momentum, dampening, Nesterov) without
    weight decay.
    """
    if batch_size != 1 or not available() or not _net_supported(net):
        return False
    if optimizer is not None:
        from .optim import SGD

        if type(optimizer) is not SGD or optimizer.weight_decay != 0.0:
            return False
    return True


def _net_supported(net: Any) -> bool:
    """The network is one the kernels can run: flat float32/float64 buffers and the library's own maths."""
    theta, grad = getattr(net, "theta", None), getattr(net, "grad", None)
    for a in (theta, grad):
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64) or a.ndim != 1:
            return False
        if not a.flags.c_contiguous or not a.flags.writeable:
            return False
    assert isinstance(theta, np.ndarray) and isinstance(grad, np.ndarray)
    if grad.shape != theta.shape or grad.dtype != theta.dtype:
        return False
    try:
        sizes = [int(n) for n in net.layer_sizes]
        layers = list(net.layers)
    except (AttributeError, TypeError):
        return False
    if len(layers) != len(sizes) - 1 or len(layers) == 0:
        return False
    if theta.size != sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])):
        return False
    for i, layer in enumerate(layers):
        code = ACTIVATION_CODES.get(type(layer.activation))
        if code is None or (code == _SOFTMAX and i != len(layers) - 1):
            return False
    return type(net.loss_function) in LOSS_CODES


def _check_net(net: Any) -> None:
    if not _net_supported(net):
        raise ValueError(
            f"deltaprop.kernels cannot run {net!r}: it needs a float32/float64 network of the library's own "
            "activations and loss (check kernels.supports first)"
        )


def optimizer_kwargs(optimizer: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The momentum keywords of :func:`online_sgd_epoch` for a ``deltaprop.optim.SGD`` and its state.

    After the epoch, advance ``state["step"]`` by the number of updates made (``info["steps"]``).
    """
    if optimizer.momentum == 0.0:
        return {}
    return {
        "momentum_buffer": state["b"],
        "momentum": optimizer.momentum,
        "dampening": optimizer.dampening,
        "nesterov": optimizer.nesterov,
        "first_step": state["step"] == 0,
    }


def online_sgd_epoch(
    net: Any,
    X: np.ndarray,
    T: np.ndarray,
    order: Any,
    lr: float,
    *,
    labels: np.ndarray | None = None,
    momentum_buffer: np.ndarray | None = None,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    first_step: bool = True,
    info: dict[str, Any] | None = None,
) -> tuple[float, int]:
    """One epoch of online learning: for each row ``i`` of ``order``, forward ``X[i]``, error, backward, update.

    Updates ``net.theta`` in place exactly as the NumPy engine does with batch size 1 (hidden deltas use the weights
    before the update; frozen biases stay fixed); ``net.grad`` ends holding the last example's gradient. ``T`` holds
    the prepared targets (n, n_outputs) — one-hot rows for a classifier. With ``momentum_buffer`` (PyTorch's ``b``,
    updated in place) and ``momentum`` > 0 the update is momentum SGD; ``first_step`` says whether the first update
    of this epoch is the optimiser's very first (then ``b ← g``).

    Returns (the sum over the examples of each one's error before its update, how many examples the network
    classified as ``labels[i]`` before its update — 0 without ``labels``). Like the engine, an example whose error
    is not finite ends the epoch before its update: it is counted in both sums, and ``info`` (a dict, if given)
    receives ``steps`` (updates made) and ``examples`` (examples seen).
    """
    _check_net(net)
    k = _compiled_kernels()
    dtype = net.theta.dtype
    sizes = np.asarray(net.layer_sizes, dtype=np.int64)
    X = _rows(X, dtype, sizes[0], "X")
    T = _rows(T, dtype, sizes[-1], "T")
    n = X.shape[0]
    if T.shape[0] != n:
        raise ValueError(f"X has {n} rows but T has {T.shape[0]}")
    order = np.ascontiguousarray(order, dtype=np.int64)
    if order.ndim != 1:
        raise ValueError(f"order must be a 1-D array of row indices, got shape {order.shape}")
    if order.size and (int(order.min()) < 0 or int(order.max()) >= n):
        raise ValueError(f"order holds row indices outside 0..{n - 1}")
    if labels is None:
        lab = np.zeros(0, dtype=np.int64)
    else:
        lab = np.ascontiguousarray(labels, dtype=np.int64)
        if lab.shape != (n,):
            raise ValueError(f"labels must have one entry per row of X, shape ({n},), got {lab.shape}")
    mom_mode = 0
    if momentum != 0.0:
        if momentum_buffer is None:
            raise ValueError("momentum > 0 needs momentum_buffer (the optimiser state's 'b')")
        if (
            not isinstance(momentum_buffer, np.ndarray)
            or momentum_buffer.shape != net.theta.shape
            or momentum_buffer.dtype != dtype
            or not momentum_buffer.flags.c_contiguous
            or not momentum_buffer.flags.writeable
        ):
            raise ValueError("momentum_buffer must be a writeable contiguous array shaped and typed like net.theta")
        mom_mode = 2 if nesterov else 1
        buf = momentum_buffer
    else:
        buf = np.zeros(0, dtype=dtype)
    layout = _layout(net)
    consts = _consts(net, lr, momentum=momentum, dampening=dampening)
    work = _work(layout, dtype)
    stats = np.zeros(2, dtype=np.int64)
    loss_sum, correct = k["run"](
        net.theta,
        net.grad,
        X,
        T,
        order,
        lab,
        labels is not None,
        *layout,
        consts,
        buf,
        mom_mode,
        dampening != 0.0,
        bool(first_step),
        True,
        True,
        *work,
        np.zeros(0, dtype=np.float64),
        stats,
    )
    if info is not None:
        info["steps"] = int(stats[0])
        info["examples"] = int(stats[1])
    return float(loss_sum), int(correct)


def repeat_steps(net: Any, x: Any, t: Any, lr: float, steps: int) -> np.ndarray:
    """The seed's loop on one example: ``steps`` forward passes, with a plain SGD update after each but the last.

    Returns E (the loss of the example) at every forward pass, float64 — ``curve[0]`` before any update,
    ``curve[-1]`` after ``steps − 1`` updates — as ``deltaprop.examples.train_worked_example`` records it.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    _check_net(net)
    k = _compiled_kernels()
    dtype = net.theta.dtype
    sizes = net.layer_sizes
    x_row = np.array(x, dtype=dtype).reshape(-1)  # a fresh writeable copy (numba types read-only arrays apart)
    t_row = np.array(t, dtype=dtype).reshape(-1)
    if x_row.shape != (sizes[0],) or t_row.shape != (sizes[-1],):
        raise ValueError(f"x must hold {sizes[0]} inputs and t {sizes[-1]} targets, got {x_row.size} and {t_row.size}")
    layout = _layout(net)
    consts = _consts(net, lr)
    work = _work(layout, dtype)
    curve = np.empty(int(steps), dtype=np.float64)
    order = np.zeros(int(steps), dtype=np.int64)
    no_labels, no_buffer, stats = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=dtype), np.zeros(2, dtype=np.int64)
    X, T = x_row.reshape(1, -1), t_row.reshape(1, -1)
    k["run"](
        net.theta,
        net.grad,
        X,
        T,
        order,
        no_labels,
        False,
        *layout,
        consts,
        no_buffer,
        0,
        False,
        False,
        False,
        False,
        *work,
        curve,
        stats,
    )
    return curve


def warmup() -> bool:
    """Compile the kernels for float32 and float64 now (or load them from numba's cache); False without numba."""
    if not available():
        return False
    from .network import MLP

    for dtype in ("float32", "float64"):
        net = MLP([2, 2, 2], dtype=dtype, seed=0)
        X = np.zeros((2, 2), dtype=net.dtype)
        T = np.zeros((2, 2), dtype=net.dtype)
        online_sgd_epoch(net, X, T, np.arange(2), 0.1, labels=np.zeros(2, dtype=np.int64))
        repeat_steps(net, X[0], T[0], 0.1, 2)
    return True


# ----------------------------------------------------------------------------------------------- helpers
def _rows(A: Any, dtype: np.dtype, width: int, name: str) -> np.ndarray:
    A = np.ascontiguousarray(A, dtype=dtype)
    if A.ndim != 2 or A.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}), got {A.shape}")
    if not A.flags.writeable:  # numba compiles read-only arrays as a type of their own: copy instead
        A = A.copy()
    return A


def _layout(net: Any) -> tuple[np.ndarray, ...]:
    """(sizes, W offsets, b offsets, unit offsets, activation codes, alphas, bias trainable, loss code) as arrays."""
    sizes = np.asarray(net.layer_sizes, dtype=np.uint64)
    n_layers = sizes.size - 1
    w_off = np.empty(n_layers, dtype=np.uint64)
    b_off = np.empty(n_layers, dtype=np.uint64)
    offset = 0
    for i in range(n_layers):
        w_off[i] = offset
        b_off[i] = offset + sizes[i] * sizes[i + 1]
        offset = int(b_off[i] + sizes[i + 1])
    a_off = np.concatenate(([0], np.cumsum(sizes))).astype(np.uint64)  # where each layer's units sit in work arrays
    codes = np.array([ACTIVATION_CODES[type(layer.activation)] for layer in net.layers], dtype=np.int64)
    alphas = np.array([getattr(layer.activation, "alpha", 0.0) for layer in net.layers], dtype=net.theta.dtype)
    trainable = np.array([bool(layer.bias_trainable) for layer in net.layers], dtype=np.bool_)
    loss = np.array([LOSS_CODES[type(net.loss_function)]], dtype=np.int64)
    return sizes, w_off, b_off, a_off, codes, alphas, trainable, loss


def _consts(net: Any, lr: float, *, momentum: float = 0.0, dampening: float = 0.0) -> np.ndarray:
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite non-negative number, got {lr!r}")
    c = np.zeros(_N_CONSTS, dtype=net.theta.dtype)
    K = int(net.layer_sizes[-1])
    c[_C_LR] = lr
    c[_C_HALF] = 0.5
    c[_C_ONE] = 1.0
    c[_C_ZERO] = 0.0
    c[_C_K] = K
    c[_C_MSE] = 2.0 / K  # the engine's (2 / (n·K)) with n = 1, a Python float cast to the dtype
    c[_C_MU] = momentum
    c[_C_DAMP1] = 1.0 - dampening
    return c


def _work(layout: tuple[np.ndarray, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = int(layout[3][-1])
    return np.zeros(total, dtype=dtype), np.zeros(total, dtype=dtype), np.zeros(total, dtype=dtype)


def _compiled_kernels() -> dict[str, Any]:
    """Compile (lazily, once per process; numba caches the machine code on disk) and return the kernels."""
    global _compiled
    if _compiled is not None:
        return _compiled
    if not available():
        raise RuntimeError(
            "deltaprop.kernels needs numba (pip install numba); without it use the NumPy engine "
            "(check kernels.available() first)"
        )
    with _lock:
        if _compiled is None:
            import numba

            g = globals()
            for name in _NB_FUNCTIONS:
                # error_model="numpy": x/0 gives inf or nan as in NumPy (a diverging run must not raise)
                # the per-example steps are inlined into the loop (numba IR inlining): no call overhead per example
                options: dict[str, Any] = {"inline": "always" if name in _NB_INLINE else "never"}
                g[name] = numba.njit(cache=True, nogil=True, error_model="numpy", **options)(g[name])
            _compiled = {"run": g["_nb_run"]}
    return _compiled


# ------------------------------------------------------------------------------ the kernels (numba source)
# Plain Python written for numba's nopython mode; _compiled_kernels() replaces each with its compiled dispatcher.
# Work arrays ``outs``, ``nets``, ``deltas`` hold every layer's units side by side: the inputs at a_off[0], the
# units of layer l at a_off[l + 1]. Constants come from ``c`` so that float32 networks compute in float32.


def _nb_forward(theta, sizes, w_off, b_off, a_off, codes, alphas, c, outs, nets):  # type: ignore[no-untyped-def]
    """out = f(out_below · W + b), layer by layer; the input must already be in outs[0:n_inputs]."""
    half, one, zero = c[1], c[2], c[3]
    for layer in range(sizes.shape[0] - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        wo, bo, ai, ao = w_off[layer], b_off[layer], a_off[layer], a_off[layer + 1]
        for j in range(n_out):
            nets[ao + j] = zero
        for i in range(n_in):
            xi = outs[ai + i]
            base = wo + i * n_out
            for j in range(n_out):
                nets[ao + j] += xi * theta[base + j]
        for j in range(n_out):
            nets[ao + j] += theta[bo + j]  # net = x·W + b
        code = codes[layer]
        if code == 7:  # softmax: shift by the max (no overflow), exponentiate, normalise
            m = nets[ao]
            for j in range(n_out):
                m = max(m, nets[ao + j])
            s = zero
            for j in range(n_out):
                e = math.exp(nets[ao + j] - m)
                outs[ao + j] = e
                s += e
            for j in range(n_out):
                outs[ao + j] /= s
        else:
            alpha = alphas[layer]
            for j in range(n_out):
                outs[ao + j] = _nb_f(code, nets[ao + j], alpha, half, one, zero)


def _nb_f(code, v, alpha, half, one, zero):  # type: ignore[no-untyped-def]
    """out = f(net) for one unit of an elementwise activation, written as the engine computes it."""
    if code == 0:  # sigmoid, ½(1 + tanh(net/2))
        return half * (one + math.tanh(half * v))
    if code == 1:
        return math.tanh(v)
    if code == 2:
        return zero if v < zero else v  # np.maximum(net, 0): NaN stays NaN
    if code == 3:
        return v if v > zero else alpha * v
    if code == 4:
        return v if v > zero else alpha * math.expm1(min(v, zero))
    if code == 5:  # softplus ln(1 + e^net) = max(net, 0) + ln(1 + e^−|net|)
        return max(v, zero) + math.log1p(math.exp(-abs(v)))
    return v


def _nb_df(code, g, v, o, alpha, half, one, zero):  # type: ignore[no-untyped-def]
    """δ = g·f′ for one unit (g = ∂E/∂out, v = net, o = out), multiplied in the engine's order."""
    if code == 0:
        return g * o * (one - o)  # (g·o)·(1 − o)
    if code == 1:
        return g * (one - o * o)
    if code == 2:
        return g if o > zero else g * zero
    if code == 3:
        return g if v > zero else g * alpha
    if code == 4:
        return g if v > zero else g * (o + alpha)
    if code == 5:
        return g * (half * (one + math.tanh(half * v)))
    return g


def _nb_loss(t, loss_code, c, outs, nets, ao, K):  # type: ignore[no-untyped-def]
    """The example's error, computed in the network's dtype as the engine does (returned as float64)."""
    half, zero = c[1], c[3]
    if loss_code == 0 or loss_code == 1:  # Σ ½(t − o)², or Σ (t − o)² / K
        s = zero
        for k in range(K):
            d = t[k] - outs[ao + k]
            s += d * d
        if loss_code == 0:
            return float(half * s)
        return float(s / c[4])
    if loss_code == 2:  # −Σ t·log_softmax(net)
        m = nets[ao]
        for k in range(K):
            m = max(m, nets[ao + k])
        s = zero
        for k in range(K):
            s += math.exp(nets[ao + k] - m)
        lse = m + math.log(s)
        e = zero
        for k in range(K):
            e += t[k] * (nets[ao + k] - lse)
        return float(-e)
    e = zero  # binary cross-entropy from net: max(net, 0) − t·net + ln(1 + e^−|net|)
    for k in range(K):
        v = nets[ao + k]
        e += max(v, zero) - t[k] * v + math.log1p(math.exp(-abs(v)))
    return float(e)


def _nb_predict(c, outs, ao, K):  # type: ignore[no-untyped-def]
    """The predicted class: argmax (first maximum, NaN wins as in NumPy), or out > ½ for one output."""
    if K == 1:
        return np.int64(1) if outs[ao] > c[1] else np.int64(0)
    best = np.int64(0)
    for k in range(np.int64(K)):
        v = outs[np.int64(ao) + k]
        if math.isnan(v):
            return k
        if v > outs[np.int64(ao) + best]:
            best = k
    return best


def _nb_backward_update(  # type: ignore[no-untyped-def]
    theta,
    grad,
    t,
    sizes,
    w_off,
    b_off,
    a_off,
    codes,
    alphas,
    trainable,
    loss_code,
    c,
    buf,
    mom_mode,
    has_damp,
    first,
    store,
    update,
    outs,
    nets,
    deltas,
):
    """Delta rule from the output down; each layer is updated once the δ of the layer below has used its W.

    ``store``: also write the gradient into ``grad``; ``update``: apply the (momentum) SGD update to ``theta``.
    """
    lr, zero, mu, damp1 = c[0], c[3], c[6], c[7]
    n_layers = sizes.shape[0] - 1
    K = sizes[n_layers]
    ao = a_off[n_layers]
    # δ at the output
    if loss_code >= 2:  # fused softmax + cross-entropy, sigmoid + binary cross-entropy: δ = o − t
        for k in range(K):
            deltas[ao + k] = outs[ao + k] - t[k]
    else:
        for k in range(K):
            deltas[ao + k] = outs[ao + k] - t[k]  # ∂E/∂o
        if loss_code == 1:
            for k in range(K):
                deltas[ao + k] *= c[5]
        _nb_activation_backward(codes[n_layers - 1], alphas[n_layers - 1], c, outs, nets, deltas, ao, K)
    for layer in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        wo, bo, ai, ao = w_off[layer], b_off[layer], a_off[layer], a_off[layer + 1]
        if layer > 0:  # ∂E/∂out_below = δ·Wᵀ with W before its update, then ⊙ f′(net_below)
            for i in range(n_in):
                base = wo + i * n_out
                s = zero
                for j in range(n_out):
                    s += deltas[ao + j] * theta[base + j]
                deltas[ai + i] = s
            _nb_activation_backward(codes[layer - 1], alphas[layer - 1], c, outs, nets, deltas, ai, n_in)
        if store:
            for i in range(n_in):
                xi = outs[ai + i]
                base = wo + i * n_out
                for j in range(n_out):
                    grad[base + j] = xi * deltas[ao + j]
            for j in range(n_out):
                grad[bo + j] = deltas[ao + j] if trainable[layer] else zero
        if not update:
            continue
        if mom_mode == 0:  # θ ← θ − lr·g
            for i in range(n_in):
                xi = outs[ai + i]
                base = wo + i * n_out
                for j in range(n_out):
                    theta[base + j] -= lr * (xi * deltas[ao + j])
            if trainable[layer]:
                for j in range(n_out):
                    theta[bo + j] -= lr * deltas[ao + j]
        else:
            for i in range(n_in):
                xi = outs[ai + i]
                base = wo + i * n_out
                for j in range(n_out):
                    _nb_momentum(theta, buf, base + j, xi * deltas[ao + j], lr, mu, damp1, mom_mode, has_damp, first)
            for j in range(n_out):
                g = deltas[ao + j] if trainable[layer] else zero  # a frozen bias has g = 0 (as in the engine)
                _nb_momentum(theta, buf, bo + j, g, lr, mu, damp1, mom_mode, has_damp, first)


def _nb_momentum(theta, buf, k, g, lr, mu, damp1, mom_mode, has_damp, first):  # type: ignore[no-untyped-def]
    """PyTorch's momentum SGD for one parameter: b ← g (first step) or μb + (1 − τ)g; θ ← θ − lr·(b or g + μb)."""
    if first:
        b = g
    elif has_damp:
        b = mu * buf[k] + g * damp1
    else:
        b = mu * buf[k] + g
    buf[k] = b
    if mom_mode == 2:
        theta[k] -= (b * mu + g) * lr
    else:
        theta[k] -= b * lr


def _nb_activation_backward(code, alpha, c, outs, nets, deltas, lo, n):  # type: ignore[no-untyped-def]
    """δ = ∂E/∂out ⊙ f′(net) in place on deltas[lo:lo+n] (softmax: its Jacobian), as the engine's backward."""
    half, one, zero = c[1], c[2], c[3]
    if code == 7:  # δ_k = o_k (g_k − Σ_j g_j o_j)
        s = zero
        for j in range(n):
            s += deltas[lo + j] * outs[lo + j]
        for j in range(n):
            deltas[lo + j] = (deltas[lo + j] - s) * outs[lo + j]
    elif code != 6:  # identity: f′ = 1
        for j in range(n):
            deltas[lo + j] = _nb_df(code, deltas[lo + j], nets[lo + j], outs[lo + j], alpha, half, one, zero)


def _nb_run(  # type: ignore[no-untyped-def]
    theta,
    grad,
    X,
    T,
    order,
    labels,
    has_labels,
    sizes,
    w_off,
    b_off,
    a_off,
    codes,
    alphas,
    trainable,
    loss,
    c,
    buf,
    mom_mode,
    has_damp,
    first_step,
    update_last,
    stop_when_not_finite,
    outs,
    nets,
    deltas,
    curve,
    stats,
):
    """For each row r of ``order``: forward X[r], error (into ``curve`` when it has room), backward, update.

    ``update_last`` False: no backward pass or update after the last forward pass (the seed's repeated step).
    ``stop_when_not_finite``: an example whose error is not finite ends the loop before its update (the engine's
    epoch). Returns (Σ error, correct predictions); ``stats`` receives (updates made, examples seen).
    """
    n_layers = sizes.shape[0] - 1
    n_in, K, ao = sizes[0], sizes[n_layers], a_off[n_layers]
    loss_code = loss[0]
    record = curve.shape[0] > 0
    loss_sum = 0.0
    correct = 0
    first = first_step
    n = order.shape[0]
    updates = 0
    for e in range(n):
        r = order[e]
        for i in range(n_in):
            outs[i] = X[r, i]
        _nb_forward(theta, sizes, w_off, b_off, a_off, codes, alphas, c, outs, nets)
        E = _nb_loss(T[r], loss_code, c, outs, nets, ao, K)
        loss_sum += E
        if record:
            curve[e] = E
        if has_labels and _nb_predict(c, outs, ao, K) == labels[r]:
            correct += 1
        if e == n - 1 and not update_last:
            break
        stop = stop_when_not_finite and not math.isfinite(E)
        _nb_backward_update(
            theta,
            grad,
            T[r],
            sizes,
            w_off,
            b_off,
            a_off,
            codes,
            alphas,
            trainable,
            loss_code,
            c,
            buf,
            mom_mode,
            has_damp,
            first,
            e >= n - 2 or stop,  # net.grad ends holding the gradient of the last backward pass
            not stop,
            outs,
            nets,
            deltas,
        )
        if stop:  # diverged: the engine ends the epoch here, before this example's update
            stats[0] = updates
            stats[1] = e + 1
            return loss_sum, correct
        updates += 1
        first = False
    stats[0] = updates
    stats[1] = n
    return loss_sum, correct
