"""Optimisers and learning-rate schedules, with the update rules of the PyTorch optimisers of the same names.

An optimiser is plain data plus one update rule: ``init(theta) → state`` (a dict of arrays shaped like ``theta`` and
a step count) and ``step(theta, grad, state)``, which updates the network's flat parameter buffer in place. The
learning rate ``lr`` is an attribute that a schedule may change between steps.

>>> import numpy as np
>>> opt = SGD(lr=0.1, momentum=0.9)
>>> theta, grad = np.array([1.0, -2.0]), np.array([0.5, 0.5])
>>> state = opt.init(theta)
>>> opt.step(theta, grad, state); theta.tolist()
[0.95, -2.05]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
    "clip_grad_norm",
    "Schedule",
    "ConstantLR",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
    "SCHEDULES",
    "get_schedule",
]

State = dict[str, Any]


def _number(value: Any, name: str, *, low: float = 0.0, low_open: bool = False, high: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > low if low_open else value >= low
        if high is not None:
            ok = ok and value < high
    if not ok:
        rng = f"{'>' if low_open else '≥'} {low:g}" + (f" and < {high:g}" if high is not None else "")
        raise ValueError(f"{name} must be a finite number {rng}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: hyper-parameters, ``init`` and ``step``."""

    name = ""
    lr: float
    weight_decay: float = 0.0
    #: boolean mask over theta: weight decay applies only where True (None: everywhere)
    weight_decay_mask: np.ndarray | None = None

    def init(self, theta: np.ndarray) -> State:
        raise NotImplementedError

    def step(self, theta: np.ndarray, grad: np.ndarray, state: State) -> None:
        raise NotImplementedError

    def _decayed(self, theta: np.ndarray, grad: np.ndarray, state: State) -> np.ndarray:
        """g + λθ (L2 weight decay added to the gradient), in a scratch buffer; ``grad`` itself is not changed."""
        if not self.weight_decay:
            return grad
        g = state["_g"]
        if self.weight_decay_mask is None:
            np.multiply(theta, self.weight_decay, out=g)
        else:
            np.multiply(theta, self.weight_decay * self.weight_decay_mask, out=g)
        g += grad
        return g

    def _hyper(self) -> dict[str, Any]:
        return {}

    def get_config(self) -> dict[str, Any]:
        """Name and hyper-parameters (JSON data); ``optimizer_from_config`` rebuilds the optimiser."""
        return {"name": self.name, "lr": self.lr, **self._hyper()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule (``torch.optim.SGD``).

    g ← ∇ + λθ; with momentum μ: b ← g at the first step, else b ← μ·b + (1 − τ)·g; then g ← g + μ·b (Nesterov)
    or g ← b; finally θ ← θ − lr·g. With momentum 0 this is the seed's w ← w − η·∂E/∂w.

    The learning rate multiplies the momentum buffer's result, not the gradient inside it. scikit-learn's and Keras's
    SGD fold the learning rate into the velocity (v ← μ·v − lr·g), which gives the same steps at a constant rate but
    different ones when the rate changes.
    """

    name = "sgd"

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        weight_decay_mask: np.ndarray | None = None,
    ) -> None:
        self.lr = _number(lr, "lr")
        self.momentum = _number(momentum, "momentum")
        self.dampening = _number(dampening, "dampening")
        self.weight_decay = _number(weight_decay, "weight_decay")
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        self.nesterov = bool(nesterov)
        self.weight_decay_mask = weight_decay_mask

    def _hyper(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }

    def init(self, theta: np.ndarray) -> State:
        z = np.zeros_like
        return {"step": 0, "momentum_buffer": z(theta), "_g": z(theta), "_u": z(theta)}

    def step(self, theta: np.ndarray, grad: np.ndarray, state: State) -> None:
        g = self._decayed(theta, grad, state)  # g ← ∇ + λθ
        u = state["_u"]
        if self.momentum:
            b = state["momentum_buffer"]
            if state["step"] == 0:
                b[...] = g  # b ← g
            else:
                b *= self.momentum
                if self.dampening:
                    np.multiply(g, 1.0 - self.dampening, out=u)
                    b += u  # b ← μb + (1 − τ)g
                else:
                    b += g  # b ← μb + g
            if self.nesterov:
                np.multiply(b, self.momentum, out=u)
                u += g  # g ← g + μb
                g = u
            else:
                g = b  # g ← b
        if g is u:
            u *= self.lr
        else:
            np.multiply(g, self.lr, out=u)
        theta -= u  # θ ← θ − lr·g
        state["step"] += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule (``torch.optim.Adam``), weight decay as L2 added to the gradient.

    g ← ∇ + λθ; m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²; m̂ = m/(1 − β1ᵗ); v̂ = v/(1 − β2ᵗ)
    (amsgrad: v_max ← max(v_max, v), v̂ = v_max/(1 − β2ᵗ)); θ ← θ − lr·m̂/(√v̂ + ε).
    """

    name = "adam"
    decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        weight_decay_mask: np.ndarray | None = None,
    ) -> None:
        self.lr = _number(lr, "lr")
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_number(betas[0], "betas[0]", high=1.0), _number(betas[1], "betas[1]", high=1.0))
        self.eps = _number(eps, "eps", low_open=True)
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.amsgrad = bool(amsgrad)
        self.weight_decay_mask = weight_decay_mask

    def _hyper(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}

    def init(self, theta: np.ndarray) -> State:
        state: State = {"step": 0, "m": np.zeros_like(theta), "v": np.zeros_like(theta), "_g": np.zeros_like(theta)}
        state["_u"] = np.zeros_like(theta)
        if self.amsgrad:
            state["v_max"] = np.zeros_like(theta)
        return state

    def step(self, theta: np.ndarray, grad: np.ndarray, state: State) -> None:
        beta1, beta2 = self.betas
        if self.decoupled and self.weight_decay:  # AdamW: θ ← θ − lr·λ·θ first
            if self.weight_decay_mask is None:
                theta *= 1.0 - self.lr * self.weight_decay
            else:
                theta *= 1.0 - self.lr * self.weight_decay * self.weight_decay_mask
            g = grad
        else:
            g = self._decayed(theta, grad, state)
        state["step"] += 1
        t = state["step"]
        m, v, u = state["m"], state["v"], state["_u"]
        m *= beta1
        np.multiply(g, 1.0 - beta1, out=u)
        m += u  # m ← β1·m + (1 − β1)·g
        v *= beta2
        np.multiply(g, g, out=u)
        u *= 1.0 - beta2
        v += u  # v ← β2·v + (1 − β2)·g²
        if self.amsgrad:
            np.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]
        bc1 = 1.0 - beta1**t
        bc2 = 1.0 - beta2**t
        # θ ← θ − lr·m̂/(√v̂ + ε), as PyTorch: denom = √v/√bc2 + ε, step size lr/bc1
        np.sqrt(v, out=u)
        u /= math.sqrt(bc2)
        u += self.eps
        np.divide(m, u, out=u)
        u *= self.lr / bc1
        theta -= u


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter), PyTorch's rule: decoupled weight decay θ ← θ(1 − lr·λ), then Adam's step."""

    name = "adamw"
    decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        weight_decay_mask: np.ndarray | None = None,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad, weight_decay_mask)


class RMSprop(Optimizer):
    """RMSprop, PyTorch's rule (``torch.optim.RMSprop``).

    g ← ∇ + λθ; v ← α·v + (1 − α)·g²; centered: g_avg ← α·g_avg + (1 − α)·g, ṽ = v − g_avg², else ṽ = v;
    with momentum μ: b ← μ·b + g/(√ṽ + ε), θ ← θ − lr·b; without: θ ← θ − lr·g/(√ṽ + ε).
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
        weight_decay_mask: np.ndarray | None = None,
    ) -> None:
        self.lr = _number(lr, "lr")
        self.alpha = _number(alpha, "alpha", high=1.0 + 1e-12)
        self.eps = _number(eps, "eps", low_open=True)
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.momentum = _number(momentum, "momentum")
        self.centered = bool(centered)
        self.weight_decay_mask = weight_decay_mask

    def _hyper(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
        }

    def init(self, theta: np.ndarray) -> State:
        z = np.zeros_like
        state: State = {"step": 0, "square_avg": z(theta), "_g": z(theta), "_u": z(theta)}
        if self.momentum:
            state["momentum_buffer"] = z(theta)
        if self.centered:
            state["grad_avg"] = z(theta)
        return state

    def step(self, theta: np.ndarray, grad: np.ndarray, state: State) -> None:
        g = self._decayed(theta, grad, state)
        v, u = state["square_avg"], state["_u"]
        v *= self.alpha
        np.multiply(g, g, out=u)
        u *= 1.0 - self.alpha
        v += u  # v ← αv + (1 − α)g²
        if self.centered:
            g_avg = state["grad_avg"]
            g_avg *= self.alpha
            g_avg += (1.0 - self.alpha) * g
            np.multiply(g_avg, g_avg, out=u)
            np.subtract(v, u, out=u)  # ṽ = v − g_avg²
            np.sqrt(u, out=u)
        else:
            np.sqrt(v, out=u)
        u += self.eps
        np.divide(g, u, out=u)  # g/(√ṽ + ε)
        if self.momentum:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += u
            np.multiply(b, self.lr, out=u)
        else:
            u *= self.lr
        theta -= u
        state["step"] += 1


class Adagrad(Optimizer):
    """Adagrad, PyTorch's rule (``torch.optim.Adagrad``).

    g ← ∇ + λθ; clr = lr/(1 + (t − 1)·η_decay); s ← s + g²; θ ← θ − clr·g/(√s + ε).
    """

    name = "adagrad"

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        weight_decay_mask: np.ndarray | None = None,
    ) -> None:
        self.lr = _number(lr, "lr")
        self.lr_decay = _number(lr_decay, "lr_decay")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.initial_accumulator_value = _number(initial_accumulator_value, "initial_accumulator_value")
        self.eps = _number(eps, "eps", low_open=True)
        self.weight_decay_mask = weight_decay_mask

    def _hyper(self) -> dict[str, Any]:
        return {
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
        }

    def init(self, theta: np.ndarray) -> State:
        return {
            "step": 0,
            "sum": np.full_like(theta, self.initial_accumulator_value),
            "_g": np.zeros_like(theta),
            "_u": np.zeros_like(theta),
        }

    def step(self, theta: np.ndarray, grad: np.ndarray, state: State) -> None:
        g = self._decayed(theta, grad, state)
        state["step"] += 1
        clr = self.lr / (1.0 + (state["step"] - 1) * self.lr_decay)
        s, u = state["sum"], state["_u"]
        np.multiply(g, g, out=u)
        s += u  # s ← s + g²
        np.sqrt(s, out=u)
        u += self.eps
        np.divide(g, u, out=u)
        u *= clr
        theta -= u  # θ ← θ − clr·g/(√s + ε)


OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def get_optimizer(spec: str | Optimizer | dict[str, Any], lr: float | None = None) -> Optimizer:
    """An optimiser from a name (``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``), config dict or instance.

    >>> get_optimizer("adam", lr=0.01)
    Adam(lr=0.01, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.0, amsgrad=False)
    """
    if isinstance(spec, Optimizer):
        if lr is not None:
            spec.lr = _number(lr, "lr")
        return spec
    if isinstance(spec, dict):
        return optimizer_from_config(spec)
    if not isinstance(spec, str):
        raise TypeError(f"optimizer must be a name such as 'adam' or an optimiser object, got {type(spec).__name__}")
    key = spec.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec!r}; choose one of: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[key]() if lr is None else OPTIMIZERS[key](lr=lr)  # type: ignore[call-arg]


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimiser from ``get_config()``."""
    cfg = dict(config)
    name = cfg.pop("name", None)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(sorted(OPTIMIZERS))}")
    if "betas" in cfg:
        cfg["betas"] = tuple(cfg["betas"])
    return OPTIMIZERS[name](**cfg)


def clip_grad_norm(grad: np.ndarray, max_norm: float) -> float:
    """Scale ``grad`` in place so its global L2 norm is at most ``max_norm`` (PyTorch's ``clip_grad_norm_``).

    Returns the norm before clipping; the scale is max_norm/(norm + 1e-6), applied only when it is below 1.
    """
    norm = float(np.sqrt(np.dot(grad, grad)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        grad *= coef
    return norm


# ------------------------------------------------------------------------------------------ schedules
class Schedule:
    """A learning-rate schedule bound to an optimiser, stepped once per epoch; it writes ``optimizer.lr``."""

    name = ""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        return self.base_lr

    def step(self, metric: float | None = None) -> float:
        """Advance one epoch; return the new learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch, "lr": self.optimizer.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        self.optimizer.lr = float(state["lr"])

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class ConstantLR(Schedule):
    """The learning rate never changes."""

    name = "constant"


class StepLR(Schedule):
    """lr = base_lr · γ^⌊epoch / step_size⌋ (``torch.optim.lr_scheduler.StepLR``)."""

    name = "step"

    def __init__(self, optimizer: Optimizer, step_size: int = 10, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, _number(gamma, "gamma")

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "step_size": self.step_size, "gamma": self.gamma}


class ExponentialLR(Schedule):
    """lr = base_lr · γ^epoch (``torch.optim.lr_scheduler.ExponentialLR``)."""

    name = "exponential"

    def __init__(self, optimizer: Optimizer, gamma: float = 0.95) -> None:
        super().__init__(optimizer)
        self.gamma = _number(gamma, "gamma")

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma}


class CosineAnnealingLR(Schedule):
    """lr = η_min + (base_lr − η_min)(1 + cos(π·epoch/T_max))/2 (PyTorch's closed form)."""

    name = "cosine"

    def __init__(self, optimizer: Optimizer, T_max: int = 50, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"T_max must be a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = T_max, _number(eta_min, "eta_min")

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "T_max": self.T_max, "eta_min": self.eta_min}


class ReduceLROnPlateau(Schedule):
    """Multiply lr by ``factor`` when the metric has not improved for ``patience`` epochs (PyTorch's semantics)."""

    name = "plateau"

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.factor = _number(factor, "factor", high=1.0)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.mode, self.patience, self.threshold_mode = mode, patience, threshold_mode
        self.threshold, self.cooldown, self.min_lr, self.eps = threshold, cooldown, min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metric: float | None = None) -> float:
        if metric is None:
            raise ValueError("ReduceLROnPlateau.step needs the monitored metric")
        self.last_epoch += 1
        if self._better(float(metric), self.best):
            self.best, self.num_bad_epochs = float(metric), 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.optimizer.lr * self.factor, self.min_lr)
            if self.optimizer.lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "factor": self.factor, "patience": self.patience, "mode": self.mode}


SCHEDULES: dict[str, type[Schedule]] = {
    c.name: c for c in (ConstantLR, StepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau)
}


def get_schedule(spec: str | Schedule | dict[str, Any], optimizer: Optimizer) -> Schedule:
    """A schedule bound to ``optimizer`` from a name (constant, step, exponential, cosine, plateau) or instance."""
    if isinstance(spec, Schedule):
        spec.optimizer = optimizer
        return spec
    params: dict[str, Any] = {}
    if isinstance(spec, dict):
        params = {k: v for k, v in spec.items() if k != "name"}
        spec = spec.get("name", "")
    if not isinstance(spec, str) or spec.lower() not in SCHEDULES:
        raise ValueError(f"unknown schedule {spec!r}; choose one of: {', '.join(sorted(SCHEDULES))}")
    return SCHEDULES[spec.lower()](optimizer, **params)
