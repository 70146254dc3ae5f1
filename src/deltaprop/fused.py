"""SGD fused into the backward pass: the momentum update is made inside each weight-gradient matrix product.

The plain order of a step is backward (every ``dW = outᵀ_below · δ`` into ``grad``), then the optimiser's update
over all parameters: with momentum μ (PyTorch's rule, :class:`deltaprop.optim.SGD`)::

    b ← μ·b + g          θ ← θ − lr·b

which reads and writes memory the size of the network four or five times per step. Fused::

    [b_W; b_b] ← μ·[b_W; b_b] + [outᵀ_below·δ; Σ δ]     per layer, in the backward pass: BLAS gemm with β = μ
                                                          (deltaprop.blas) instead of np.matmul into grad
    θ ← θ − lr·b                                          after the pass: one BLAS axpy over all parameters

The gradient never goes to memory of its own and the update is a single pass (bench/RESULTS.md measures what it
buys on workload L). Every δ·Wᵀ still uses the weights before the update, as the seed's algorithm has it. The
result is that of the plain order up to rounding: the sums are the same, only their float rounding order differs.
Without momentum the gradient goes to ``grad`` as usual and the update is ``θ ← θ − lr·g`` (one axpy).

Used by :class:`deltaprop.train.Trainer` for :class:`~deltaprop.optim.SGD` with ``dampening=0``, no Nesterov and
no weight decay, NumPy arrays, trainable biases, no gradient clipping and no gradient reduction over processes;
``fit(..., trainer_options={"fused_update": False})`` turns it off. With momentum, ``net.grad`` is not filled
during such a run (the gradient goes straight into the momentum buffer).

**The compiled step.** Where :mod:`deltaprop.compiled_step` applies (the built-in elementwise activations with
cross-entropy, binary cross-entropy, squared error or mse), the C extension makes the whole step in one call: gather
the batch's rows, the forward pass, E and the batch's correct predictions, the backward pass above, the update
(:meth:`FusedSGD.compiled_step`). It computes what the NumPy path computes, in the same order except that every
layer adds its bias inside the forward product; without the extension, for other layers or losses, or with
``trainer_options={"compiled_step": False}``, the NumPy path runs. The layers' ``net`` and ``out``
are then not kept after a step (nothing reads them between steps).

>>> import numpy as np
>>> from deltaprop import MLP, optim
>>> from deltaprop.fused import FusedSGD
>>> net = MLP([3, 4, 2], seed=0)
>>> opt = optim.SGD(lr=0.1, momentum=0.9)
>>> FusedSGD.for_network(net, opt) is not None
True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from . import blas
from .compiled_step import CompiledBackprop
from .network import layer_views

if TYPE_CHECKING:
    from .network import Network

__all__ = ["FusedSGD"]


class FusedSGD:
    """SGD for one network: each layer's gradient goes into the momentum buffer inside its weight-gradient product,
    then one pass updates every weight (see the module's docstring)."""

    def __init__(self, net: Network, optimizer: Any) -> None:
        self.net = net
        self.optimizer = optimizer
        self.momentum = float(optimizer.momentum)
        self._buffer: np.ndarray | None = None  # the gradient or momentum buffer _targets are views of
        self._targets: list[tuple[np.ndarray, np.ndarray]] = []
        self._beta = 0.0
        self._lr = 0.0
        self._backprop = CompiledBackprop.for_network(net)
        #: True when :meth:`compiled_step` can make this network's steps
        self.compiled = self._backprop is not None

    @property
    def backprop(self) -> CompiledBackprop | None:
        """The compiled step :meth:`compiled_step` calls (None where it does not apply)."""
        return self._backprop

    @classmethod
    def for_network(cls, net: Network, optimizer: Any) -> FusedSGD | None:
        """A fused update for ``net`` trained by ``optimizer``, or None when the fused form does not apply."""
        from .optim import SGD

        if type(optimizer) is not SGD or optimizer.nesterov or optimizer.dampening != 0.0:
            return None
        if optimizer.weight_decay != 0.0:
            return None
        theta = net.theta
        if not isinstance(theta, np.ndarray) or not theta.flags.c_contiguous or not blas.available(theta.dtype):
            return None
        if not all(layer.bias_trainable for layer in net.layers):
            return None
        return cls(net, optimizer)

    def begin(self, state: dict[str, Any]) -> None:
        """Prepare one step: where each layer's gradient goes, and with which β."""
        self._lr = float(self.optimizer.lr)
        if self.momentum == 0.0:
            target = self.net.grad
            self._beta = 0.0
        else:
            target = state["b"]
            self._beta = 0.0 if state["step"] == 0 else self.momentum  # b ← g at the first step, μ·b + g after
            if not (isinstance(target, np.ndarray) and target.flags.c_contiguous and target.dtype == self.net.dtype):
                target = state["b"] = np.ascontiguousarray(target, dtype=self.net.dtype)  # e.g. a restored state
        if target is not self._buffer:  # a fresh or restored state: views of it, layer by layer
            self._buffer = target
            self._targets = layer_views(self.net.layer_sizes, target)

    def gradient_target(self, i: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(where ∂E/∂W goes, where ∂E/∂b goes, β): layer ``i`` adds its gradient to β times what is there."""
        W, b = self._targets[i]
        return W, b, self._beta

    def end(self, state: dict[str, Any]) -> None:
        """θ ← θ − lr·b for every layer at once (their δ·Wᵀ used the weights before the update)."""
        assert self._buffer is not None, "end() without begin()"
        blas.axpy(-self._lr, self._buffer, self.net.theta)
        state["step"] += 1

    def compiled_step(
        self,
        X: np.ndarray,
        rows: np.ndarray | None,
        T: np.ndarray,
        labels: np.ndarray | None,
        state: dict[str, Any],
        *,
        weights: np.ndarray | None = None,
        check_inputs: bool = False,
    ) -> tuple[float, int]:
        """One whole training step in the C extension; returns (E of the batch, its number of correct predictions).

        ``X`` holds the inputs and ``rows`` this batch's rows of it (int64; None: ``X`` is the batch), ``T`` the
        batch's targets, ``labels`` its class indices (None: the count is 0), ``weights`` its sample weights. The
        update is made when E is finite;
        otherwise the parameters stay as they were (the momentum buffer has taken the batch's gradient, as on the
        NumPy path, where the loop stops before the update). Only when :attr:`compiled` is True.
        """
        assert self._backprop is not None, "compiled_step() on a network it cannot train"
        self.begin(state)
        loss, correct = self._backprop.step(
            X,
            rows,
            T,
            labels,
            weights=weights,
            target=self._buffer,
            beta=self._beta,
            lr=self._lr,
            check_inputs=check_inputs,
        )
        if math.isfinite(loss):
            state["step"] += 1
        return loss, correct
