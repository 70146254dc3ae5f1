"""A training step's forward and backward pass in one call of the C extension (``deltaprop._ckernels.sgd_step``).

A step of a NumPy MLP is some hundred Python-level calls: per layer a product, the bias, the activation, then the
loss, δ, and per layer again the gradient products and f′. For an MLP whose layers use ReLU, LeakyReLU, ELU,
softplus, sigmoid, tanh or the identity, with softmax + cross-entropy, sigmoid + binary cross-entropy, or squared
error / mse on the output, the C function does all of it in one call with the GIL released (its maths is in
``src/deltaprop/_sgd_step.h``):

    gather the batch's rows of X (by this epoch's order)
    forward       net_i = out_{i-1}·W_i + b_i,  out_i = f_i(net_i)                          (BLAS gemm)
    error         E of the batch, δ_L = ∂E/∂net_L (softmax/sigmoid with cross-entropy: (o − t)/m), and how many
                  rows name their label (largest output; o > 0.5 for one output)
    backward      g_W = out_{i-1}ᵀ·δ_i,  g_b = Σ_rows δ_i,  δ_{i-1} = (δ_i·W_iᵀ) ⊙ f′_{i-1}

and writes the gradient where it is told: ``net.grad`` (then any optimiser updates the weights, as after
``net._backward``), or, for SGD, β·b + g into the momentum buffer and ``θ ← θ − lr·b`` in the same call
(:class:`deltaprop.fused.FusedSGD`). The numbers are those of the NumPy path up to float rounding (for ReLU and
linear layers they came out bit-identical when measured: the same products, sums and order; softplus′ is computed
from the output, σ(net) = 1 − e^−f, as the C step does not keep net).

It applies where the extension was built with BLAS (``deltaprop.blas`` found NumPy's OpenBLAS), for float32 and
float64 networks of at most 64 layers with those activations and losses; :class:`deltaprop.train.Trainer` uses it
by default (with sample weights too: each row's δ times w·m/Σw, E the weighted mean; frozen biases get ∂E/∂b = 0),
``trainer_options={"compiled_step": False}`` turns it off. Asked to (``check_inputs``), it also refuses a batch
whose inputs hold a NaN or ±inf before writing anything (:class:`NonFiniteInputs`): the trainer checks X's values
this way during the first epoch of a run that nothing else watches, instead of one more pass over X before training.

**A team of threads.** For large batches (:data:`MIN_TEAM_WORK` multiply-adds of the forward pass or more per
thread) the trainer runs inside :meth:`CompiledBackprop.sharing`: each step is then shared by as many threads as
BLAS has, each calling a single-threaded BLAS on its part of every product (the batch's rows for the gather and the
output layer, the units of each hidden layer, the rows of each W in the backward pass, where each thread also
updates the rows of W it computed), with BLAS set to one thread for the whole process meanwhile. At a batch's sizes
OpenBLAS's own threads spend much of their time handing work to each other; the team splits each product once and
shares the elementwise work too (L: about 6 % faster per fit on an AVX2 machine, 2.5 % on an AVX-512 one:
bench/RESULTS.md). The numbers are those of one thread up to float rounding.

>>> from deltaprop import MLP, blas, native
>>> net = MLP([3, 4, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
>>> (CompiledBackprop.for_network(net) is not None) == (native.available() and blas.available())
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from . import blas, native
from .activations import ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .losses import MSE, BinaryCrossEntropy, CrossEntropy, SquaredError
from .network import NonFiniteInputError

if TYPE_CHECKING:
    from .network import Network

__all__ = ["CompiledBackprop", "NonFiniteInputs"]

#: activations the C step computes, and their codes in deltaprop._ckernels
ACTIVATION_CODES = {Identity: 0, ReLU: 1, Sigmoid: 2, Tanh: 3, LeakyReLU: 4, ELU: 5, Softplus: 6}
#: losses (with the output activation they need, or None: any of ACTIVATION_CODES) and their codes
LOSS_CODES = {CrossEntropy: (0, Softmax), BinaryCrossEntropy: (1, Sigmoid), SquaredError: (2, None), MSE: (3, None)}
MAX_LAYERS = 64
#: the fewest multiply-adds of a batch's forward pass (rows × weights) per thread for the steps of a run to be
#: shared among threads (measured: bench/RESULTS.md)
MIN_TEAM_WORK = 2_000_000


class NonFiniteInputs(NonFiniteInputError):
    """A batch's inputs hold a NaN or ±inf (the step was not made); the trainer turns it into the error that names
    the first such value of X."""


class CompiledBackprop:
    """The forward and backward pass of one network in the C extension (see the module's docstring)."""

    def __init__(self, net: Network, codes: list[int], loss: int) -> None:
        self.net = net
        self.codes = codes  # every layer's activation (the output's: see LOSS_CODES)
        self.loss = loss
        self.alphas = [float(getattr(layer.activation, "alpha", 0.0)) for layer in net.layers]  # LeakyReLU, ELU
        sizes = net.layer_sizes
        # the scratch a batch of m rows needs, less the gathered batch: m·per_row + widest (see _sgd_step.h)
        self._per_row, self._widest = 2 * sum(sizes[1:]), max(sizes[1:])
        #: ∂E/∂b of the layers whose biases are frozen: 0, as on the NumPy path
        self._frozen_db = [layer.db for layer in net.layers if not layer.bias_trainable]
        self._scratch: np.ndarray | None = None  # the gathered batch, out and δ of every layer
        self._weights_count = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))  # multiply-adds a row, forward
        c = native._c
        self._team_possible = c is not None and hasattr(c, "team_available") and bool(c.team_available())
        self._team = 1  # threads sharing each step (more only inside sharing())

    @classmethod
    def for_network(cls, net: Network) -> CompiledBackprop | None:
        """The compiled step for ``net``, or None where it does not apply (see the module's docstring)."""
        c = native._c
        routines = blas._get()
        if c is None or not hasattr(c, "sgd_step") or routines is None or routines.direct is None:
            return None  # no C extension, or it has no BLAS functions to call
        theta = net.theta
        if not isinstance(theta, np.ndarray) or not theta.flags.c_contiguous or not isinstance(net.grad, np.ndarray):
            return None
        if net.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) or len(net.layers) > MAX_LAYERS:
            return None
        loss, output = LOSS_CODES.get(type(net.loss_function), (None, None))
        last = type(net.layers[-1].activation)
        if loss is None or (output is not None and last is not output):
            return None  # another loss, or cross-entropy on another output than its own
        if last is Softmax and net.n_outputs < 2:
            return None
        codes = [ACTIVATION_CODES.get(type(layer.activation)) for layer in net.layers[:-1]]
        codes.append(0 if last is Softmax else ACTIVATION_CODES.get(last))
        if None in codes:
            return None
        return cls(net, [int(code) for code in codes if code is not None], loss)

    def team_size(self, batch_size: int) -> int:
        """How many threads would share steps of ``batch_size`` rows: as many as BLAS uses now (threadpoolctl's
        and ``OPENBLAS_NUM_THREADS``'s limits included), at most one per row, and fewer for small products, where
        the threads would wait on each other longer than they work (``MIN_TEAM_WORK`` multiply-adds of the
        forward pass per thread). 1: the step runs on the calling thread, with BLAS's own threads."""
        if not self._team_possible:
            return 1
        return max(1, min(blas.threads(), batch_size, batch_size * self._weights_count // MIN_TEAM_WORK))

    @contextmanager
    def sharing(self, batch_size: int, *, at_most: int | None = None) -> Iterator[int]:
        """Inside the block, each step is shared by a team of :meth:`team_size` threads (yielded; ``at_most``
        caps it), each calling BLAS on its part of the products with BLAS single-threaded for the whole process
        (:func:`deltaprop.blas.single_threaded`): BLAS's own threads wait on each other too long for products of
        a batch's size (bench/RESULTS.md). The trainer holds it around a run. Where the team is 1, nothing
        changes."""
        size = self.team_size(batch_size)
        if at_most is not None:
            size = min(size, at_most)
        if size < 2:
            yield 1
            return
        with blas.single_threaded():
            self._team = size
            try:
                yield size
            finally:
                self._team = 1

    def step(
        self,
        X: np.ndarray,
        rows: np.ndarray | None,
        T: np.ndarray,
        labels: np.ndarray | None,
        *,
        weights: np.ndarray | None = None,
        target: np.ndarray | None = None,
        beta: float = 0.0,
        lr: float | None = None,
        check_inputs: bool = False,
        threads: int | None = None,
    ) -> tuple[float, int]:
        """Forward and backward pass of one batch; returns (E of the batch, its number of correct predictions).

        ``X`` holds the inputs and ``rows`` this batch's rows of it (int64; None: ``X`` is the batch), ``T`` the
        batch's targets, ``labels`` its class indices (None: the count is 0), ``weights`` its sample weights (E and
        the gradient are then weighted means, as on the NumPy path). The gradient goes into ``target``
        (default ``net.grad``) as ``target ← β·target + ∂E/∂θ``; with ``lr``, ``θ ← θ − lr·target`` follows when E
        is finite (SGD; otherwise the weights stay as they were). With ``check_inputs``, a batch whose inputs hold a
        NaN or ±inf raises :class:`NonFiniteInputs` before anything is written (the trainer checks the first epoch's
        rows this way, as it gathers them, instead of reading all of X once more before training). ``threads``:
        how many threads share the step (default: the team of :meth:`sharing`, else 1); more than 1 outside
        :meth:`sharing` gives the same numbers, but each thread's products then start BLAS's own threads too.
        """
        c = native._c
        assert c is not None, "the C extension went away"
        net = self.net
        m = X.shape[0] if rows is None else rows.shape[0]
        sizes = net.layer_sizes
        needed = (0 if rows is None else m * sizes[0]) + self._widest + m * self._per_row  # (with the gathered X)
        if self._scratch is None or self._scratch.shape[0] < needed:
            self._scratch = np.empty(needed, dtype=net.dtype)
        if labels is not None and labels.dtype != np.int64:
            labels = labels.astype(np.int64)
        loss, correct = c.sgd_step(
            X,
            rows,
            np.ascontiguousarray(T),
            labels,
            net.theta,
            net.grad if target is None else target,
            self._scratch,
            sizes,
            self.codes,
            self.loss,
            0.0 if lr is None else lr,
            beta,
            lr is not None,
            None if weights is None else np.ascontiguousarray(weights, dtype=np.float64),
            self.alphas,
            check_inputs,
            self._team if threads is None else threads,  # (the C code takes at most one thread per row)
        )
        if correct == -2:
            raise NonFiniteInputs("this batch's inputs hold a NaN or an infinite value")
        if self._frozen_db:
            assert target is None, "SGD's fused update needs every bias trainable"
            for db in self._frozen_db:
                db[...] = 0.0
        return loss, max(correct, 0)
