"""Optimisers and learning-rate schedules that work on one flat parameter array.

Every network keeps all its parameters in one contiguous array ``theta`` and their gradients in ``grad`` (same
length, same dtype). An optimiser is an object with hyper-parameters and two methods:

* ``init(theta) -> state``: a plain dict ``{"step": 0, <name>: array shaped like theta, ...}``; every buffer the
  optimiser will ever need is created here (zeros, dtype of theta), so the state can be inspected at any time.
* ``step(theta, grad, state)``: updates ``theta`` and ``state`` in place and never writes to ``grad``.

The update rules are PyTorch's (``torch.optim``), term for term; the tests compare every option with PyTorch.
``lr`` is a plain attribute that a schedule (or you) may change between steps.

The state is already serialisable as is: a dict of arrays plus the integer ``"step"``. :func:`state_to_arrays`
splits it into named arrays (for ``np.savez`` or safetensors) and JSON scalars; :func:`state_from_arrays` puts
it back. With :meth:`Optimizer.get_config` / :func:`optimizer_from_config` a run can be stopped and continued
bit for bit.

>>> import numpy as np
>>> theta = np.array([1.0, -1.0])
>>> opt = get_optimizer("adam", lr=0.1)
>>> state = opt.init(theta)
>>> for _ in range(3):
...     opt.step(theta, 2 * theta, state)  # the gradient of ||theta||²
>>> np.round(theta, 4).tolist(), state["step"]
([0.7016, -0.7016], 3)

A learning-rate schedule is bound to an optimiser, is stepped once per epoch and writes ``optimizer.lr``:

>>> sched = get_schedule("step", opt)
>>> [round(sched.step(), 6) for _ in range(12)][8:]
[0.1, 0.01, 0.01, 0.01]
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from . import native
from .backend import device_of, dtype_in, is_foreign_array, xp_of

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "OPTIMIZERS",
    "get_optimizer",
    "optimizer_from_config",
    "state_to_arrays",
    "state_from_arrays",
    "clip_grad_norm",
    "Schedule",
    "ConstantLR",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
    "SCHEDULES",
    "get_schedule",
    "schedule_from_config",
]


# ------------------------------------------------------------------------------------------- validation
def _number(value: Any, name: str, low: float = -math.inf, high: float = math.inf, *, kind: str) -> float:
    """``value`` as a float if it is a finite real number in [low, high] (bounds as ``kind`` words them)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        x = float(value)
        ok = math.isfinite(x) and low <= x <= high
    if not ok:
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return x


def _non_negative(value: Any, name: str) -> float:
    return _number(value, name, 0.0, kind="a finite non-negative number")


def _positive(value: Any, name: str) -> float:
    x = _number(value, name, 0.0, kind="a finite positive number")
    if x == 0.0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return x


def _fraction(value: Any, name: str, *, closed: bool) -> float:
    """A number in [0, 1] (``closed``) or [0, 1)."""
    x = _number(value, name, 0.0, 1.0, kind=f"a number in [0, 1{']' if closed else ')'}")
    if not closed and x == 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return x


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        words = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {words}, got {value!r}")
    return int(value)


def _mask(mask: Any) -> np.ndarray | None:
    """A read-only boolean copy of ``mask``; also accepts the ranges form that ``get_config`` writes."""
    if mask is None:
        return None
    if isinstance(mask, dict):  # {"size": n, "ranges": [[lo, hi], ...]}: True on each [lo, hi)
        try:
            m = np.zeros(int(mask["size"]), dtype=bool)
            for lo, hi in mask["ranges"]:
                m[int(lo) : int(hi)] = True
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "weight_decay_mask as a dict must be {'size': n, 'ranges': [[lo, hi], ...]}, got " + repr(mask)
            ) from exc
    else:
        m = np.array(mask)
        if m.dtype != np.bool_:
            raise ValueError(
                "weight_decay_mask must be a boolean array (True where weight decay applies) or None, got an "
                f"array of dtype {m.dtype}"
            )
    m.flags.writeable = False
    return m


def _mask_config(mask: np.ndarray | None) -> dict[str, Any] | None:
    """The mask as JSON: its size and the [lo, hi) ranges where it is True (compact for weights/biases)."""
    if mask is None:
        return None
    flat = mask.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flat, [0]))))
    return {"size": int(mask.size), "ranges": edges.reshape(-1, 2).tolist()}


# -------------------------------------------------------------------------------------------- optimisers
class Optimizer:
    """Base class: hyper-parameters, ``init``/``step`` on flat arrays, ``get_config``.

    Subclasses set ``name``, implement ``_buffers`` (the state's array names), ``_hyper`` and ``step``. So that a
    step allocates nothing, an instance keeps two scratch arrays for the state it last stepped (they are not part
    of the state, and copies and pickles leave them behind); stepping another state allocates new ones.
    """

    name = "optimizer"
    lr: float
    weight_decay: float
    weight_decay_mask: np.ndarray | None

    def __init__(self, lr: float, weight_decay: float, weight_decay_mask: Any) -> None:
        self.lr = _non_negative(lr, "lr")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.weight_decay_mask = _mask(weight_decay_mask)
        self._scratch: tuple[Any, np.ndarray, np.ndarray] | None = None
        self._decay: dict[Any, np.ndarray] = {}

    # ------------------------------------------------------------------ public
    def init(self, theta: np.ndarray) -> dict[str, Any]:
        """A fresh state for ``theta``: ``{"step": 0, <buffer>: zeros like theta, ...}``."""
        if not isinstance(theta, np.ndarray):
            return self._init_xp(theta)
        if theta.dtype.kind != "f":
            raise ValueError(f"theta must be a floating-point NumPy array, got {type(theta).__name__}")
        return self._fresh_state(theta, np)

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One update of ``theta`` (in place) from ``grad`` (left unchanged); advances ``state``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The name and hyper-parameters, JSON-serialisable; :func:`optimizer_from_config` rebuilds it."""
        return {"name": self.name, **self._hyper(), "weight_decay_mask": _mask_config(self.weight_decay_mask)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        masked = "" if self.weight_decay_mask is None else ", weight_decay_mask=<mask>"
        return f"{type(self).__name__}({args}{masked})"

    def __getstate__(self) -> dict[str, Any]:  # copies and pickles leave the scratch arrays behind
        return {k: v for k, v in self.__dict__.items() if k not in ("_scratch", "_decay")}

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._scratch, self._decay = None, {}

    # ------------------------------------------------------------------ other array libraries
    def _init_xp(self, theta: Any) -> dict[str, Any]:
        """``init`` for an array of another library (PyTorch, CuPy, array-api-strict): ``xp.zeros_like`` buffers."""
        if not is_foreign_array(theta):
            raise ValueError(f"theta must be a floating-point NumPy array, got {type(theta).__name__}")
        xp = xp_of(theta)
        if not xp.isdtype(theta.dtype, "real floating"):
            raise ValueError(f"theta must be a floating-point array, got one of dtype {theta.dtype}")
        return self._fresh_state(theta, xp)

    def _fresh_state(self, theta: Any, xp: Any) -> dict[str, Any]:
        """Step 0 and a zero buffer of theta's shape for each of the optimiser's buffers, after checking the mask."""
        mask = self.weight_decay_mask
        if mask is not None and tuple(mask.shape) != tuple(theta.shape):
            raise ValueError(
                f"weight_decay_mask has shape {mask.shape} but theta has shape {tuple(theta.shape)}: the mask needs "
                "one entry per parameter"
            )
        state: dict[str, Any] = {"step": 0}
        for key in self._buffers():
            state[key] = xp.zeros_like(theta)
        return state

    def _xp_mask(self, xp: Any, theta: Any, on: float, off: float) -> Any:
        """The array ``on`` where the weight-decay mask is True, ``off`` elsewhere, in theta's library and device."""
        np_dtype = np.float32 if theta.dtype == xp.float32 else np.float64
        assert self.weight_decay_mask is not None
        vec = np.where(self.weight_decay_mask, on, off).astype(np_dtype)
        return xp.asarray(vec, dtype=dtype_in(xp, np_dtype), device=device_of(theta))

    def _l2_xp(self, xp: Any, theta: Any, grad: Any) -> Any:
        """grad + λ·θ (λ·mask·θ with a mask) as a new array of theta's library."""
        if self.weight_decay_mask is None:
            return grad + self.weight_decay * theta
        return grad + self._xp_mask(xp, theta, self.weight_decay, 0.0) * theta

    # ------------------------------------------------------------------ for subclasses
    def _buffers(self) -> tuple[str, ...]:
        return ()

    def _hyper(self) -> dict[str, Any]:
        raise NotImplementedError

    def _new_scratch(self, theta: np.ndarray, state: dict[str, Any]) -> tuple[Any, np.ndarray, np.ndarray]:
        """Two scratch arrays like ``theta``, kept (with the state they serve) for the next steps."""
        self._scratch = (state, np.empty_like(theta), np.empty_like(theta))
        return self._scratch

    def _l2(self, theta: np.ndarray, grad: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out`` ← grad + λ·θ (λ·mask·θ with a mask): PyTorch's ``grad.add(param, alpha=weight_decay)``."""
        if self.weight_decay_mask is None:
            np.multiply(theta, self.weight_decay, out=out)
        else:
            vec = self._decay.get(theta.dtype)  # the array λ·mask, cached per dtype
            if vec is None:
                vec = np.where(self.weight_decay_mask, self.weight_decay, 0.0).astype(theta.dtype)
                self._decay[theta.dtype] = vec
            np.multiply(theta, vec, out=out)
        out += grad
        return out


#: elements per piece when a large update is done piece by piece (a few arrays of it stay in the L2 cache)
_CHUNK = 65536


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay (PyTorch's rule).

    At step t, with gradient g, weight decay λ, momentum μ, dampening τ::

        g ← g + λ·θ                                  (if λ ≠ 0)
        b ← g                      at t = 1          (if μ ≠ 0)
        b ← μ·b + (1 − τ)·g        afterwards
        g ← g + μ·b  (nesterov)    or   g ← b
        θ ← θ − lr·g

    State: ``{"step", "b"}`` (``b`` only with momentum). Nesterov needs momentum > 0 and dampening = 0.

    The learning rate multiplies the step, not the velocity: scikit-learn's and Keras's momentum
    (v ← μ·v − lr·g, θ ← θ + v) fold the learning rate into the velocity, so the two agree while lr is constant
    and differ as soon as lr changes (a schedule), because there the velocity keeps the earlier learning rates.

    >>> import numpy as np
    >>> opt = SGD(lr=0.1, momentum=0.9)
    >>> theta, grad = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    >>> state = opt.init(theta)
    >>> opt.step(theta, grad, state); theta.tolist()
    [0.95, -2.05]
    >>> opt.step(theta, grad, state); np.round(theta, 6).tolist()  # b = 0.9·0.5 + 0.5 = 0.95
    [0.855, -2.145]
    """

    name = "sgd"

    def __init__(
        self,
        lr: float = 1e-2,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        weight_decay_mask: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay, weight_decay_mask)
        self.momentum = _non_negative(momentum, "momentum")
        self.dampening = _fraction(dampening, "dampening", closed=True)
        self.nesterov = _flag(nesterov, "nesterov")
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError(
                f"nesterov=True requires momentum > 0 and dampening = 0, got momentum={momentum!r}, "
                f"dampening={dampening!r}"
            )

    def _buffers(self) -> tuple[str, ...]:
        return ("b",) if self.momentum != 0.0 else ()

    def _hyper(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One SGD update of ``theta`` in place."""
        if not isinstance(theta, np.ndarray):
            return self._step_xp(theta, grad, state)
        c = self._scratch
        if c is None or c[0] is not state:  # scratch arrays, allocated once per state
            c = self._new_scratch(theta, state)
        s, u = c[1], c[2]
        g = self._l2(theta, grad, u) if self.weight_decay != 0.0 else grad  # g ← g + λθ
        b = state["b"] if self.momentum != 0.0 else s
        first = state["step"] == 0
        n = theta.shape[0]
        if n <= 2 * _CHUNK:
            self._update(theta, g, b, s, first)
        else:  # the same update in cache-sized pieces: one trip through memory instead of four (bench finding 5)
            for lo in range(0, n, _CHUNK):
                hi = lo + _CHUNK
                self._update(theta[lo:hi], g[lo:hi], b[lo:hi], s[lo:hi], first)
        state["step"] += 1

    def _step_xp(self, theta: Any, grad: Any, state: dict[str, Any]) -> None:
        """The SGD update for arrays of another library, as the formulas read (array API functions, no ``out=``)."""
        xp = xp_of(theta)
        g = self._l2_xp(xp, theta, grad) if self.weight_decay != 0.0 else grad  # g ← g + λθ
        mu = self.momentum
        if mu != 0.0:
            b = state["b"]  # updated in place (in-place operators are array API too: fewer GPU kernels)
            if state["step"] == 0:
                _assign(b, g)  # b ← g
            elif self.dampening != 0.0:
                b *= mu
                b += (1.0 - self.dampening) * g  # b ← μb + (1 − τ)g
            else:
                b *= mu
                b += g  # b ← μb + g
            g = g + mu * b if self.nesterov else b
        theta -= self.lr * g  # θ ← θ − lr·g
        state["step"] += 1

    def _update(self, theta: np.ndarray, g: np.ndarray, b: np.ndarray, s: np.ndarray, first: bool) -> None:
        mu = self.momentum
        if mu != 0.0:
            if first:
                np.copyto(b, g)  # b ← g
            else:
                b *= mu  # b ← μb + (1 − τ)g
                if self.dampening != 0.0:
                    np.multiply(g, 1.0 - self.dampening, out=s)
                    b += s
                else:
                    b += g
            if self.nesterov:
                np.multiply(b, mu, out=s)  # g ← g + μb
                s += g
                s *= self.lr
            else:
                np.multiply(b, self.lr, out=s)  # g ← b
        else:
            np.multiply(g, self.lr, out=s)
        theta -= s  # θ ← θ − lr·g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias corrections, L2 weight decay and AMSGrad.

    At step t, with gradient g and weight decay λ::

        g ← g + λ·θ                                  (if λ ≠ 0; AdamW decays θ instead)
        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        v_max ← max(v_max, v)   and use v_max for v   (amsgrad)
        m_hat ← m / (1 − β1^t),   v_hat ← v / (1 − β2^t)
        θ ← θ − lr·m_hat / (√v_hat + eps)

    State: ``{"step", "m", "v"}``, plus ``"v_max"`` with amsgrad (PyTorch keeps the max of the raw v and divides
    it by the bias correction afterwards, as here).

    >>> import numpy as np
    >>> opt = Adam(lr=0.1)
    >>> theta = np.array([1.0, -1.0])
    >>> state = opt.init(theta)
    >>> opt.step(theta, np.array([3.0, -0.5]), state)  # the first step moves every weight by about lr
    >>> np.round(theta, 6).tolist()
    [0.9, -0.9]
    """

    name = "adam"
    _decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        weight_decay_mask: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay, weight_decay_mask)
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
        self.betas = (_fraction(betas[0], "betas[0]", closed=False), _fraction(betas[1], "betas[1]", closed=False))
        self.eps = _positive(eps, "eps")
        self.amsgrad = _flag(amsgrad, "amsgrad")
        self._factor: tuple[Any, np.ndarray] | None = None

    def _buffers(self) -> tuple[str, ...]:
        return ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def _hyper(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": self.amsgrad,
        }

    def _decay_factor(self, theta: np.ndarray) -> Any:
        """AdamW's 1 − lr·λ, or the array 1 − lr·λ·mask (cached for the current lr and dtype)."""
        if self.weight_decay_mask is None:
            return 1.0 - self.lr * self.weight_decay
        key, cached = (self.lr, theta.dtype), self._factor
        if cached is None or cached[0] != key:
            vec = np.where(self.weight_decay_mask, 1.0 - self.lr * self.weight_decay, 1.0).astype(theta.dtype)
            cached = self._factor = (key, vec)
        return cached[1]

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One Adam update of ``theta`` in place."""
        if not isinstance(theta, np.ndarray):
            return self._step_xp(theta, grad, state)
        t = state["step"] = state["step"] + 1
        m, v = state["m"], state["v"]
        beta1, beta2 = self.betas
        c = self._scratch
        if c is None or c[0] is not state:  # scratch arrays, allocated once per state
            c = self._new_scratch(theta, state)
        s, u = c[1], c[2]
        g = grad
        if self.weight_decay != 0.0:
            if self._decoupled:
                theta *= self._decay_factor(theta)  # θ ← θ(1 − lr·λ)
            else:
                g = self._l2(theta, grad, u)  # g ← g + λθ
        bias1, root_bias2 = 1.0 - beta1**t, math.sqrt(1.0 - beta2**t)
        eps_hat, step_size = self.eps * root_bias2, self.lr * root_bias2 / bias1
        if not self.amsgrad and native.adam(theta, g, m, v, beta1, beta2, eps_hat, step_size):
            return  # the lines below, in one compiled pass
        np.subtract(g, m, out=s)  # m ← β1·m + (1 − β1)·g, as PyTorch's m.lerp_(g, 1 − β1) = m + (1 − β1)(g − m)
        s *= 1.0 - beta1
        m += s
        np.multiply(g, g, out=s)  # v ← β2·v + (1 − β2)·g²
        s *= 1.0 - beta2
        v *= beta2
        v += s
        if self.amsgrad:
            v = np.maximum(state["v_max"], v, out=state["v_max"])  # v_max ← max(v_max, v)
        # θ ← θ − lr·m_hat/(√v_hat + eps) = θ − (lr·√(1 − β2^t)/(1 − β1^t))·m/(√v + eps·√(1 − β2^t))
        np.sqrt(v, out=s)
        s += eps_hat
        np.divide(m, s, out=s)
        s *= step_size
        theta -= s

    def _step_xp(self, theta: Any, grad: Any, state: dict[str, Any]) -> None:
        """The Adam update for arrays of another library: array API functions, the buffers updated in place (in-place
        operators are array API too: on a GPU, fewer kernels than new arrays and copies back)."""
        xp = xp_of(theta)
        t = state["step"] = state["step"] + 1
        beta1, beta2 = self.betas
        g = grad
        if self.weight_decay != 0.0:
            if self._decoupled:  # θ ← θ(1 − lr·λ)
                if self.weight_decay_mask is None:
                    factor: Any = 1.0 - self.lr * self.weight_decay
                else:
                    factor = self._xp_mask(xp, theta, 1.0 - self.lr * self.weight_decay, 1.0)
                _assign(theta, theta * factor)
            else:
                g = self._l2_xp(xp, theta, grad)  # g ← g + λθ
        m, v = state["m"], state["v"]
        _lerp_(m, g, 1.0 - beta1)  # m ← β1·m + (1 − β1)·g (PyTorch's lerp)
        _mean_square_(v, g, beta2)  # v ← β2·v + (1 − β2)·g²
        if self.amsgrad:
            _assign(state["v_max"], xp.maximum(state["v_max"], v))  # v_max ← max(v_max, v)
            v = state["v_max"]
        bias1, root_bias2 = 1.0 - beta1**t, math.sqrt(1.0 - beta2**t)
        denom = xp.sqrt(v)
        denom += self.eps * root_bias2
        step = m / denom
        step *= self.lr * root_bias2 / bias1
        theta -= step  # θ ← θ − lr·m_hat/(√v_hat + eps)

    def __setstate__(self, d: dict[str, Any]) -> None:
        super().__setstate__(d)
        self._factor = None

    def __getstate__(self) -> dict[str, Any]:
        d = super().__getstate__()
        d.pop("_factor", None)
        return d


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's AdamW.

    The same as :class:`Adam` except that the decay shrinks the weights instead of entering the gradient::

        θ ← θ·(1 − lr·λ)                             (first; with a mask only where it is True)
        m, v, v_max, m_hat, v_hat as Adam with the raw gradient g
        θ ← θ − lr·m_hat / (√v_hat + eps)

    >>> import numpy as np
    >>> opt = AdamW(lr=0.1, weight_decay=0.5)
    >>> theta = np.array([2.0])
    >>> state = opt.init(theta)
    >>> opt.step(theta, np.array([0.0]), state); theta.tolist()  # 2·(1 − 0.05), no gradient step
    [1.9]
    """

    name = "adamw"
    _decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        weight_decay_mask: Any = None,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad, weight_decay_mask)


class RMSprop(Optimizer):
    """RMSprop (Hinton) as PyTorch: optional momentum, centring and L2 weight decay.

    At each step, with gradient g, smoothing α and weight decay λ::

        g ← g + λ·θ                                  (if λ ≠ 0)
        v ← α·v + (1 − α)·g²
        g_avg ← α·g_avg + (1 − α)·g,   ṽ ← v − g_avg²      (centered; else ṽ ← v)
        b ← μ·b + g / (√ṽ + eps),   θ ← θ − lr·b    (momentum μ > 0)
        θ ← θ − lr·g / (√ṽ + eps)                     (otherwise)

    State: ``{"step", "v"}`` plus ``"g_avg"`` (centered) and ``"b"`` (momentum).

    >>> import numpy as np
    >>> opt = RMSprop(lr=0.01)
    >>> theta = np.array([1.0])
    >>> state = opt.init(theta)
    >>> opt.step(theta, np.array([4.0]), state); np.round(theta, 6).tolist()  # 1 − 0.01·4/√(0.01·16)
    [0.9]
    """

    name = "rmsprop"

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay_mask: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay, weight_decay_mask)
        self.alpha = _fraction(alpha, "alpha", closed=True)
        self.eps = _positive(eps, "eps")
        self.momentum = _non_negative(momentum, "momentum")
        self.centered = _flag(centered, "centered")

    def _buffers(self) -> tuple[str, ...]:
        return ("v",) + (("g_avg",) if self.centered else ()) + (("b",) if self.momentum > 0.0 else ())

    def _hyper(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
        }

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One RMSprop update of ``theta`` in place."""
        if not isinstance(theta, np.ndarray):
            return self._step_xp(theta, grad, state)
        state["step"] += 1
        alpha, v = self.alpha, state["v"]
        c = self._scratch
        if c is None or c[0] is not state:  # scratch arrays, allocated once per state
            c = self._new_scratch(theta, state)
        s, u = c[1], c[2]
        g = self._l2(theta, grad, u) if self.weight_decay != 0.0 else grad  # g ← g + λθ
        np.multiply(g, g, out=s)  # v ← α·v + (1 − α)·g²
        s *= 1.0 - alpha
        v *= alpha
        v += s
        if self.centered:
            g_avg = state["g_avg"]
            np.subtract(g, g_avg, out=s)  # g_avg ← α·g_avg + (1 − α)·g, as g_avg.lerp_(g, 1 − α)
            s *= 1.0 - alpha
            g_avg += s
            np.multiply(g_avg, g_avg, out=s)  # √ṽ = √(v − g_avg²)
            np.subtract(v, s, out=s)
            np.sqrt(s, out=s)
        else:
            np.sqrt(v, out=s)  # √ṽ = √v
        s += self.eps
        np.divide(g, s, out=s)  # g / (√ṽ + eps)
        if self.momentum > 0.0:
            b = state["b"]
            b *= self.momentum  # b ← μb + g/(√ṽ + eps)
            b += s
            np.multiply(b, self.lr, out=s)  # θ ← θ − lr·b
        else:
            s *= self.lr  # θ ← θ − lr·g/(√ṽ + eps)
        theta -= s

    def _step_xp(self, theta: Any, grad: Any, state: dict[str, Any]) -> None:
        """The RMSprop update for arrays of another library (array API functions, no ``out=``)."""
        xp = xp_of(theta)
        state["step"] += 1
        alpha = self.alpha
        g = self._l2_xp(xp, theta, grad) if self.weight_decay != 0.0 else grad  # g ← g + λθ
        v = state["v"]  # the buffers are updated in place (array API in-place operators: fewer GPU kernels)
        _mean_square_(v, g, alpha)  # v ← α·v + (1 − α)·g²
        if self.centered:
            g_avg = state["g_avg"]
            _lerp_(g_avg, g, 1.0 - alpha)  # g_avg ← α·g_avg + (1 − α)·g
            denom = xp.sqrt(v - g_avg * g_avg)  # √(v − g_avg²)
        else:
            denom = xp.sqrt(v)
        denom += self.eps
        if self.momentum > 0.0:
            b = state["b"]
            b *= self.momentum
            b += g / denom  # b ← μb + g/(√ṽ + eps)
            theta -= self.lr * b
        else:
            theta -= self.lr * (g / denom)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.) as PyTorch: learning-rate decay, L2 weight decay, initial accumulator.

    At step t, with gradient g and weight decay λ::

        g ← g + λ·θ                                  (if λ ≠ 0)
        clr ← lr / (1 + (t − 1)·lr_decay)
        sum ← sum + g²
        θ ← θ − clr·g / (√sum + eps)

    State: ``{"step", "sum"}``, ``sum`` starting at ``initial_accumulator_value``.

    >>> import numpy as np
    >>> opt = Adagrad(lr=0.5)
    >>> theta = np.array([1.0, 1.0])
    >>> state = opt.init(theta)
    >>> opt.step(theta, np.array([2.0, -0.5]), state); np.round(theta, 6).tolist()
    [0.5, 1.5]
    """

    name = "adagrad"

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        weight_decay_mask: Any = None,
    ) -> None:
        super().__init__(lr, weight_decay, weight_decay_mask)
        self.lr_decay = _non_negative(lr_decay, "lr_decay")
        self.initial_accumulator_value = _non_negative(initial_accumulator_value, "initial_accumulator_value")
        self.eps = _positive(eps, "eps")

    def _buffers(self) -> tuple[str, ...]:
        return ("sum",)

    def _hyper(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
        }

    def init(self, theta: np.ndarray) -> dict[str, Any]:
        """A fresh state: ``{"step": 0, "sum": initial_accumulator_value everywhere}``."""
        state = super().init(theta)
        if isinstance(theta, np.ndarray):
            state["sum"].fill(self.initial_accumulator_value)
        else:
            state["sum"] = xp_of(theta).full_like(theta, self.initial_accumulator_value)
        return state

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One Adagrad update of ``theta`` in place."""
        if not isinstance(theta, np.ndarray):
            return self._step_xp(theta, grad, state)
        t = state["step"] = state["step"] + 1
        acc = state["sum"]
        c = self._scratch
        if c is None or c[0] is not state:  # scratch arrays, allocated once per state
            c = self._new_scratch(theta, state)
        s, u = c[1], c[2]
        g = self._l2(theta, grad, u) if self.weight_decay != 0.0 else grad  # g ← g + λθ
        clr = self.lr / (1.0 + (t - 1) * self.lr_decay)
        np.multiply(g, g, out=s)  # sum ← sum + g²
        acc += s
        np.sqrt(acc, out=s)  # θ ← θ − clr·g/(√sum + eps)
        s += self.eps
        np.divide(g, s, out=s)
        s *= clr
        theta -= s

    def _step_xp(self, theta: Any, grad: Any, state: dict[str, Any]) -> None:
        """The Adagrad update for arrays of another library (array API functions, no ``out=``)."""
        xp = xp_of(theta)
        t = state["step"] = state["step"] + 1
        g = self._l2_xp(xp, theta, grad) if self.weight_decay != 0.0 else grad  # g ← g + λθ
        clr = self.lr / (1.0 + (t - 1) * self.lr_decay)
        acc = state["sum"] + g * g  # sum ← sum + g²
        _assign(state["sum"], acc)
        _assign(theta, theta - clr * (g / (xp.sqrt(acc) + self.eps)))  # θ ← θ − clr·g/(√sum + eps)


# ------------------------------------------------------------------------------------ other array libraries
def _assign(target: Any, value: Any) -> None:
    """``target[...] = value`` in place (so that views into ``target``, e.g. a layer's W, see the new values)."""
    target[...] = value


def _lerp_(a: Any, g: Any, weight: float) -> None:
    """a ← a + weight·(g − a) = (1 − weight)·a + weight·g, in place (array API in-place operators: on a GPU, fewer
    kernels than new arrays and copies back)."""
    d = g - a
    d *= weight
    a += d


def _mean_square_(v: Any, g: Any, beta: float) -> None:
    """v ← β·v + (1 − β)·g², in place."""
    g2 = g * g
    g2 *= 1.0 - beta
    v *= beta
    v += g2


#: name → class, for get_optimizer and optimizer_from_config
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """The optimiser that :meth:`Optimizer.get_config` describes.

    >>> opt = optimizer_from_config(SGD(lr=0.5, momentum=0.9).get_config())
    >>> opt
    SGD(lr=0.5, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0)
    """
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"an optimiser config must be a dict with a 'name', got {config!r}")
    options = dict(config)
    name = str(options.pop("name")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimiser {config['name']!r}; known: {', '.join(OPTIMIZERS)}")
    cls: Any = OPTIMIZERS[name]
    if "betas" in options and isinstance(options["betas"], list):
        options["betas"] = tuple(options["betas"])
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"bad options for {cls.__name__} in {config!r}: {exc}") from exc


def get_optimizer(spec: Any, lr: float | None = None) -> Any:
    """An optimiser from a name (``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``; any case), a config
    dict, or an instance (returned as is).

    ``lr`` sets the learning rate of a named optimiser (None keeps the class default). Given with an instance
    whose ``lr`` differs it is an error, since it is unclear which one is meant.

    >>> get_optimizer("RMSprop", lr=0.1)
    RMSprop(lr=0.1, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, centered=False)
    """
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {spec!r}; known optimizers: {', '.join(OPTIMIZERS)}")
        cls: Any = OPTIMIZERS[key]
        return cls() if lr is None else cls(lr=lr)
    if isinstance(spec, dict):
        opt = optimizer_from_config(spec)
        if lr is not None:
            opt.lr = _non_negative(lr, "lr")
        return opt
    if callable(getattr(spec, "step", None)) and callable(getattr(spec, "init", None)) and hasattr(spec, "lr"):
        if lr is not None and float(lr) != float(spec.lr):
            raise ValueError(
                f"lr={lr!r} was given with an optimiser instance that has lr={spec.lr!r}: set the instance's lr "
                "(or pass the optimiser by name)"
            )
        return spec
    raise TypeError(
        f"optimizer must be a name ({', '.join(OPTIMIZERS)}), a config dict or an optimiser instance, got {spec!r}"
    )


def state_to_arrays(state: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split an optimiser state into named arrays (for ``np.savez``/safetensors) and JSON scalars (``step``).

    >>> import numpy as np
    >>> arrays, scalars = state_to_arrays(Adam().init(np.zeros(3)))
    >>> sorted(arrays), scalars
    (['m', 'v'], {'step': 0})
    """
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: (int(v) if isinstance(v, numbers.Integral) else v) for k, v in state.items() if k not in arrays}
    return arrays, scalars


def state_from_arrays(arrays: Any, scalars: dict[str, Any]) -> dict[str, Any]:
    """The state that :func:`state_to_arrays` split (``arrays`` may be an ``np.load`` result); arrays are copied."""
    state: dict[str, Any] = {k: np.array(arrays[k]) for k in arrays}
    state.update(scalars)
    return state


def clip_grad_norm(grad: np.ndarray, max_norm: float) -> float:
    """Rescale ``grad`` in place when its L2 norm exceeds ``max_norm``; return the norm before clipping.

    As PyTorch's ``clip_grad_norm_``: ``grad ← grad·min(1, max_norm/(norm + 1e-6))``, the norm taken over every
    entry. A gradient with a NaN or infinite entry is left as it is and its norm (NaN or inf) returned, where
    PyTorch would fill it with NaN or zeros; finite entries whose squares overflow are still clipped.

    >>> import numpy as np
    >>> g = np.array([3.0, 4.0])
    >>> clip_grad_norm(g, 1.0), np.round(g, 6).tolist()
    (5.0, [0.6, 0.8])
    """
    max_norm = _non_negative(max_norm, "max_norm")
    if not isinstance(grad, np.ndarray):
        return _clip_grad_norm_xp(grad, max_norm)
    flat = grad.reshape(-1)
    norm = math.sqrt(float(np.dot(flat, flat)))
    if not math.isfinite(norm):
        big = float(np.max(np.abs(flat)))  # inf or nan if an entry is
        if not math.isfinite(big):
            return norm
        scaled = flat / big  # finite entries whose squares overflowed: ‖g‖ = big·‖g/big‖
        norm = big * math.sqrt(float(np.dot(scaled, scaled)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        grad *= coef
    return norm


def _clip_grad_norm_xp(grad: Any, max_norm: float) -> float:
    """``clip_grad_norm`` for an array of another library (array API functions)."""
    xp = xp_of(grad)
    flat = xp.reshape(grad, (-1,))
    norm = math.sqrt(float(xp.sum(flat * flat)))
    if not math.isfinite(norm):
        big = float(xp.max(xp.abs(flat)))
        if not math.isfinite(big):
            return norm
        scaled = flat / big
        norm = big * math.sqrt(float(xp.sum(scaled * scaled)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        _assign(grad, grad * coef)
    return norm


# ------------------------------------------------------------------------------------------------ schedules
class Schedule:
    """Base class of the learning-rate schedules: bound to an optimiser, stepped once per epoch.

    At construction it reads the base learning rate from ``optimizer.lr`` (and sets ``optimizer.lr`` to the rate
    of epoch 0); each :meth:`step` advances one epoch, writes the new rate to ``optimizer.lr`` and returns it.
    ``state_dict()`` / ``load_state_dict()`` save and restore the position as a plain JSON-able dict.
    """

    name = "schedule"

    def __init__(self, optimizer: Any) -> None:
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"a schedule needs an optimiser with an lr attribute, got {optimizer!r}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0
        self.last_lr = self.lr_at_epoch(0)
        optimizer.lr = self.last_lr

    def lr_at_epoch(self, epoch: int) -> float:
        """The learning rate after ``epoch`` steps."""
        raise NotImplementedError

    def step(self, metric: float | None = None) -> float:
        """Advance one epoch (``metric`` is used only by :class:`ReduceLROnPlateau`); return the new lr."""
        self.last_epoch += 1
        self.last_lr = self.lr_at_epoch(self.last_epoch)
        self.optimizer.lr = self.last_lr
        return self.last_lr

    def _hyper(self) -> dict[str, Any]:
        return {}

    def get_config(self) -> dict[str, Any]:
        """The name and hyper-parameters, JSON-serialisable; :func:`schedule_from_config` rebuilds it."""
        return {"name": self.name, **self._hyper()}

    def state_dict(self) -> dict[str, Any]:
        """The position in the schedule (JSON-able)."""
        return {"name": self.name, "base_lr": self.base_lr, "last_epoch": self.last_epoch, "last_lr": self.last_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`; also sets ``optimizer.lr`` to the saved rate."""
        if state.get("name") != self.name:
            raise ValueError(f"this state is of a {state.get('name')!r} schedule, not {self.name!r}")
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        self.last_lr = float(state["last_lr"])
        self.optimizer.lr = self.last_lr

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self._hyper().items())
        return f"{type(self).__name__}(<{type(self.optimizer).__name__} lr={self.base_lr!r}>{args})"


class ConstantLR(Schedule):
    """The base rate times ``factor`` for the first ``total_iters`` epochs, then the base rate (PyTorch's).

    ``lr(epoch) = base_lr·factor if epoch < total_iters else base_lr``. The defaults (factor 1, total_iters 0)
    keep the learning rate constant; PyTorch's defaults are factor 1/3 and total_iters 5.

    >>> opt = SGD(lr=0.1)
    >>> sched = ConstantLR(opt, factor=0.5, total_iters=2)
    >>> opt.lr, sched.step(), sched.step(), sched.step()
    (0.05, 0.05, 0.1, 0.1)
    """

    name = "constant"

    def __init__(self, optimizer: Any, factor: float = 1.0, total_iters: int = 0) -> None:
        self.factor = _fraction(factor, "factor", closed=True)
        self.total_iters = _int(total_iters, "total_iters", 0)
        super().__init__(optimizer)

    def lr_at_epoch(self, epoch: int) -> float:
        """``base_lr·factor`` before ``total_iters``, ``base_lr`` from then on."""
        return self.base_lr * self.factor if epoch < self.total_iters else self.base_lr

    def _hyper(self) -> dict[str, Any]:
        return {"factor": self.factor, "total_iters": self.total_iters}


class StepLR(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (PyTorch's StepLR).

    ``lr(epoch) = base_lr·gamma^⌊epoch/step_size⌋``. PyTorch has no default ``step_size``; 10 is deltaprop's.

    >>> opt = SGD(lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> [sched.step() for _ in range(5)]
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    name = "step"

    def __init__(self, optimizer: Any, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size = _int(step_size, "step_size", 1)
        self.gamma = _positive(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at_epoch(self, epoch: int) -> float:
        """``base_lr·gamma^⌊epoch/step_size⌋``."""
        return self.base_lr * self.gamma ** (epoch // self.step_size)

    def _hyper(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}


class ExponentialLR(Schedule):
    """Multiply the learning rate by ``gamma`` every epoch (PyTorch's ExponentialLR).

    ``lr(epoch) = base_lr·gamma^epoch``. PyTorch has no default ``gamma``; 0.95 is deltaprop's.

    >>> opt = SGD(lr=1.0)
    >>> sched = ExponentialLR(opt, gamma=0.5)
    >>> [sched.step() for _ in range(3)]
    [0.5, 0.25, 0.125]
    """

    name = "exponential"

    def __init__(self, optimizer: Any, gamma: float = 0.95) -> None:
        self.gamma = _positive(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at_epoch(self, epoch: int) -> float:
        """``base_lr·gamma^epoch``."""
        return self.base_lr * self.gamma**epoch

    def _hyper(self) -> dict[str, Any]:
        return {"gamma": self.gamma}


class CosineAnnealingLR(Schedule):
    """Cosine annealing from the base rate down to ``eta_min`` over ``T_max`` epochs (PyTorch's CosineAnnealingLR).

    ``lr(epoch) = eta_min + (base_lr − eta_min)·(1 + cos(π·epoch/T_max))/2``: PyTorch's closed form. Past
    ``T_max`` the rate climbs back up again (a period of 2·T_max), as PyTorch's does. PyTorch has no default
    ``T_max``; 50 is deltaprop's.

    >>> opt = SGD(lr=1.0)
    >>> sched = CosineAnnealingLR(opt, T_max=2)
    >>> [round(sched.step(), 6) for _ in range(4)]
    [0.5, 0.0, 0.5, 1.0]
    """

    name = "cosine"

    def __init__(self, optimizer: Any, T_max: int = 50, eta_min: float = 0.0) -> None:
        self.T_max = _int(T_max, "T_max", 1)
        self.eta_min = _non_negative(eta_min, "eta_min")
        super().__init__(optimizer)

    def lr_at_epoch(self, epoch: int) -> float:
        """``eta_min + (base_lr − eta_min)·(1 + cos(π·epoch/T_max))/2``."""
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2

    def _hyper(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}


class ReduceLROnPlateau(Schedule):
    """Cut the learning rate by ``factor`` when a metric has stopped improving (PyTorch's ReduceLROnPlateau).

    Each :meth:`step` takes the epoch's metric. It is an improvement when it beats the best so far by the
    threshold: ``metric < best·(1 − threshold)`` (mode ``min``, ``rel``), ``metric < best − threshold``
    (``min``, ``abs``), ``metric > best·(1 + threshold)`` or ``metric > best + threshold`` (``max``). After
    more than ``patience`` epochs without improvement, ``lr ← max(lr·factor, min_lr)`` (skipped when that changes
    lr by ``eps`` or less) and the next ``cooldown`` epochs count no bad epochs. The rate is read from
    ``optimizer.lr`` at each step, so changes made to it elsewhere are kept.

    >>> opt = SGD(lr=1.0)
    >>> sched = ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> [sched.step(loss) for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    """

    name = "plateau"

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _fraction(factor, "factor", closed=False)
        self.patience = _int(patience, "patience", 0)
        self.threshold = _non_negative(threshold, "threshold")
        self.cooldown = _int(cooldown, "cooldown", 0)
        self.min_lr = _non_negative(min_lr, "min_lr")
        self.eps = _non_negative(eps, "eps")
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(optimizer)

    def lr_at_epoch(self, epoch: int) -> float:
        """The current rate (this schedule depends on the metrics, not on the epoch alone)."""
        return float(self.optimizer.lr)

    def _is_better(self, a: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return a < best * (1.0 - th) if self.threshold_mode == "rel" else a < best - th
        return a > best * (th + 1.0) if self.threshold_mode == "rel" else a > best + th

    def step(self, metric: float | None = None) -> float:
        """Record the epoch's ``metric``; reduce the rate if it has plateaued; return the rate."""
        if metric is None:
            raise ValueError("ReduceLROnPlateau.step needs the monitored metric, e.g. the epoch's validation loss")
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            old_lr = float(self.optimizer.lr)
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self.last_lr = float(self.optimizer.lr)
        return self.last_lr

    def _hyper(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "threshold_mode": self.threshold_mode,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "eps": self.eps,
        }

    def state_dict(self) -> dict[str, Any]:
        """The position, the best metric (None while there is none), the bad-epoch and cooldown counters."""
        state = super().state_dict()
        state.update(
            best=self.best if math.isfinite(self.best) else None,
            num_bad_epochs=self.num_bad_epochs,
            cooldown_counter=self.cooldown_counter,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`; also sets ``optimizer.lr`` to the saved rate."""
        super().load_state_dict(state)
        best = state["best"]
        self.best = float(best) if best is not None else (math.inf if self.mode == "min" else -math.inf)
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])


#: name → class, for get_schedule and schedule_from_config
SCHEDULES: dict[str, type[Schedule]] = {
    "constant": ConstantLR,
    "step": StepLR,
    "exponential": ExponentialLR,
    "cosine": CosineAnnealingLR,
    "plateau": ReduceLROnPlateau,
}
_SCHEDULE_ALIASES = {cls.__name__.lower(): name for name, cls in SCHEDULES.items()}


def _schedule_name(name: str) -> str:
    key = name.strip().lower()
    key = _SCHEDULE_ALIASES.get(key, key)
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known schedules: {', '.join(SCHEDULES)}")
    return key


def schedule_from_config(config: dict[str, Any], optimizer: Any) -> Schedule:
    """The schedule that :meth:`Schedule.get_config` describes, bound to ``optimizer``.

    >>> schedule_from_config({"name": "step", "step_size": 3}, SGD(lr=0.1))
    StepLR(<SGD lr=0.1>, step_size=3, gamma=0.1)
    """
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"a schedule config must be a dict with a 'name', got {config!r}")
    options = dict(config)
    key = _schedule_name(str(options.pop("name")))
    cls = SCHEDULES[key]
    try:
        return cls(optimizer, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for {cls.__name__} in {config!r}: {exc}") from exc


def get_schedule(spec: Any, optimizer: Any) -> Schedule:
    """A schedule bound to ``optimizer`` from a name, a config dict, or an instance (returned as is).

    Names (any case; the class names work too) get the class defaults: ``constant`` (the rate never changes),
    ``step`` (StepLR, step_size=10, gamma=0.1), ``exponential`` (ExponentialLR, gamma=0.95), ``cosine``
    (CosineAnnealingLR, T_max=50, eta_min=0), ``plateau`` (ReduceLROnPlateau with PyTorch's defaults).

    A dict such as ``{"name": "cosine", "T_max": 50}`` sets options; an instance must be bound to ``optimizer``.

    >>> get_schedule("cosine", SGD(lr=0.1))
    CosineAnnealingLR(<SGD lr=0.1>, T_max=50, eta_min=0.0)
    """
    if isinstance(spec, Schedule):
        if spec.optimizer is not optimizer:
            raise ValueError(
                "this schedule is bound to another optimiser; build it with the optimiser being trained, or pass "
                "its name or config instead"
            )
        return spec
    if isinstance(spec, str):
        return schedule_from_config({"name": spec}, optimizer)
    if isinstance(spec, dict):
        return schedule_from_config(spec, optimizer)
    raise TypeError(f"schedule must be a name ({', '.join(SCHEDULES)}), a config dict or a schedule, got {spec!r}")
