"""The fully connected layer: forward keeps what backward needs; backward turns δ into dW, db and δ for below.

Rows of ``X`` are examples. For one layer::

    net = X · W + b          out = f(net)                       (forward)
    ∂E/∂W = Xᵀ · δ           ∂E/∂b = Σ_examples δ               (δ = ∂E/∂net of this layer)
    ∂E/∂out_below = δ · Wᵀ   (times f′(net_below) in the layer below: the delta rule)

``W``, ``b``, ``dW``, ``db`` are *views* into the network's flat parameter and gradient buffers: write into them
(``layer.W[...] = new``), never rebind them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import blas
from .activations import Activation
from .backend import affine, matmul_into, sum_rows_into, xp_of

__all__ = ["Dense"]

Array = Any


class Dense:
    """One fully connected layer of ``n_in`` inputs and ``n_out`` units with activation ``f``.

    >>> import numpy as np
    >>> from deltaprop import MLP
    >>> layer = MLP([2, 3, 1], seed=0).layers[0]
    >>> layer.W.shape, layer.b.shape, layer.activation.name
    ((2, 3), (3,), 'sigmoid')
    """

    def __init__(
        self,
        W: Array,
        b: Array,
        dW: Array,
        db: Array,
        activation: Activation,
        *,
        bias_trainable: bool = True,
    ) -> None:
        self.W, self.b, self.dW, self.db = W, b, dW, db
        self.activation = activation
        #: when False, ``db`` stays 0 and the bias keeps its value through training (the seed's example does this)
        self.bias_trainable = bias_trainable
        # what forward keeps for backward (and for traces)
        self.inputs: Array | None = None
        self.net: Array | None = None
        self.out: Array | None = None
        # recorded only when the network is asked to (trace_step): ∂E/∂out and δ = ∂E/∂net of this layer
        self.dE_dout: Array | None = None
        self.delta: Array | None = None
        # the training hot path reuses these per batch size: net, out, and ∂E/∂out for the layer below
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._reusing = False
        # large enough that adding the bias inside the matrix product (one call more expensive than np.matmul)
        # beats a pass over net
        self._large = W.shape[0] * W.shape[1] >= 65536
        #: keep net apart from out even when the activation's backward does not need it (the output layer: fused
        #: losses compute E from net)
        self.keep_net = False

    @property
    def n_in(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.W.shape[1])

    def forward(self, X: Array, *, reuse: bool = False) -> Array:
        """out = f(X · W + b); keeps X, net and out for the backward pass.

        With ``reuse`` (the training loop), net and out are written into buffers kept for this batch size, so a
        step allocates nothing; the returned array is then overwritten by the next forward pass.
        """
        self.inputs = X
        self._reusing = reuse and isinstance(X, np.ndarray)
        if self._reusing:
            net, out, _ = self._buffers_for(X.shape[0])
            if self._large and X.dtype == self.W.dtype and blas.available(X.dtype):
                net[...] = self.b
                blas.gemm(X, self.W, net, beta=1.0)  # net = X·W + b, the bias added in the product
            else:
                np.matmul(X, self.W, out=net)
                net += self.b  # net = X·W + b
            self.net = net
            self.out = self.activation.forward_into(net, out)
            return self.out
        net = affine(X, self.W, self.b)  # net = X·W + b
        self.net = net
        self.out = self.activation.forward(net)
        return self.out

    def _buffers_for(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bufs = self._buffers.get(n)
        if bufs is None:
            if len(self._buffers) > 4:  # a few batch sizes at most (the last batch of an epoch is often shorter)
                self._buffers.clear()
            net = np.empty((n, self.n_out), dtype=self.W.dtype)
            out = np.empty_like(net) if self.activation.reads_net or self.keep_net else net  # f in place
            below = np.empty((n, self.n_in), dtype=self.W.dtype)
            bufs = self._buffers[n] = (net, out, below)
        return bufs

    def backward(
        self, delta: Array, *, input_grad: bool = True, into: tuple[Array, Array, float] | None = None
    ) -> Array | None:
        """Fill ``dW`` and ``db`` from δ = ∂E/∂net; return ∂E/∂out of the layer below (δ · Wᵀ) if ``input_grad``.

        ``into=(W_target, b_target, β)`` adds the gradient to β times those arrays instead (``target ← β·target +
        gradient``, in the matrix product itself: deltaprop.fused uses it for the momentum buffer); ``dW`` is then
        left alone (``db`` still receives ∂E/∂b when β ≠ 0).
        """
        assert self.inputs is not None, "backward called before forward"
        if into is not None:
            W_target, b_target, beta = into
            blas.gemm(self.inputs.T, delta, W_target, beta=beta)  # ← β·target + outᵀ_below · δ
            if beta == 0.0:
                np.add.reduce(delta, axis=0, out=b_target)
            else:
                np.add.reduce(delta, axis=0, out=self.db)  # ∂E/∂b = Σ δ over the batch
                b_target *= beta
                b_target += self.db  # ← β·target + ∂E/∂b
        elif isinstance(delta, np.ndarray) and isinstance(self.dW, np.ndarray):
            np.matmul(self.inputs.T, delta, out=self.dW)  # ∂E/∂W = outᵀ_below · δ
            if self.bias_trainable:
                np.add.reduce(delta, axis=0, out=self.db)  # ∂E/∂b = Σ δ over the batch
            else:
                self.db[...] = 0.0
        else:
            xp = xp_of(delta)
            matmul_into(xp.matrix_transpose(self.inputs), delta, self.dW)  # ∂E/∂W = outᵀ_below · δ
            if self.bias_trainable:
                sum_rows_into(delta, self.db)  # ∂E/∂b = Σ δ over the batch
            else:
                self.db[...] = 0.0
        if not input_grad:
            return None
        if self._reusing and delta.shape[0] in self._buffers:
            below = self._buffers[delta.shape[0]][2]
            return np.matmul(delta, self.W.T, out=below)  # ∂E/∂out_below = δ · Wᵀ
        return delta @ self.W.T

    def __repr__(self) -> str:
        return f"Dense({self.n_in} → {self.n_out}, {self.activation.name})"
