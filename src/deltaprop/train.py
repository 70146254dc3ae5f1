"""Training: the seed's loop — for each batch, forward, error, backward, update — until a stopping criterion holds.

>>> import numpy as np
>>> from deltaprop import MLP
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]); y = np.array([0, 1, 1, 0])
>>> net = MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=1)
>>> history = net.fit(X, y, epochs=2000, batch_size=None, optimizer="sgd", lr=1.0, task="classification",
...                   stop_when_all_correct=True, verbose=0)
>>> history.stop_reason
'all training examples classified correctly'
>>> net.predict(X).tolist()
[0, 1, 1, 0]
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import native
from .backend import device_of, is_foreign_array, to_host, xp_of
from .callbacks import Callback, EarlyStopping, StopAtLoss, StopWhenAllCorrect, TerminateOnNaN, TimeBudget
from .compiled_step import CompiledBackprop, NonFiniteInputs
from .fused import FusedSGD
from .network import Network, NonFiniteInputError, _check_finite, check_inputs

__all__ = ["History", "Trainer", "fit", "encode_targets", "score"]

#: rows per window when shuffling data read from a memory-mapped file
STREAM_WINDOW_ROWS = 65536
#: networks with at least this many parameters take SGD's fused update by default (Trainer's fused_update)
FUSED_MIN_PARAMS = 10_000


@dataclass
class History:
    """What happened during ``fit``: one entry per epoch, and why training stopped."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    #: seconds of training since the start, at the end of each epoch
    time: list[float] = field(default_factory=list)
    stop_reason: str = ""
    #: epoch whose weights the network holds when a callback restored the best ones
    best_epoch: int | None = None

    KEYS = ("loss", "val_loss", "accuracy", "val_accuracy", "lr", "time")

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        self.epoch.append(epoch)
        for key in self.KEYS:
            getattr(self, key).append(logs.get(key))

    @property
    def history(self) -> dict[str, list[Any]]:
        """Keras-style dict of per-epoch lists (only the metrics that were measured)."""
        out = {"epoch": list(self.epoch)}
        for key in self.KEYS:
            values = getattr(self, key)
            if any(v is not None for v in values):
                out[key] = list(values)
        return out

    @property
    def epochs_run(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict[str, Any]:
        return {**self.history, "stop_reason": self.stop_reason, "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls(stop_reason=d.get("stop_reason", ""), best_epoch=d.get("best_epoch"))
        h.epoch = list(d.get("epoch", []))
        for key in cls.KEYS:
            setattr(h, key, list(d.get(key, [None] * len(h.epoch))))
        return h

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        last = f", loss={self.loss[-1]:.6g}" if self.loss else ""
        return f"History(epochs={self.epochs_run}{last}, stop_reason={self.stop_reason!r})"


# --------------------------------------------------------------------------------------------------- targets
def encode_targets(
    net: Network, y: Any, task: str, *, name: str = "y"
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Turn ``y`` into what the output layer is trained on: (targets, classes, class index of each example).

    Classification: ``y`` holds one label per example (integers, strings, booleans). Integer labels that all lie in
    0..n_outputs−1 keep their meaning as output indices; other labels are sorted and numbered. Softmax / several
    outputs are trained on one-hot rows, one sigmoid output on 0/1.
    Regression: numbers, shape (n,) for one output or (n, n_outputs).
    """
    if task == "regression":
        T = net.loss_function.targets(y, net.n_outputs, net.dtype)
        return np.ascontiguousarray(T), None, None
    labels = _label_array(y, name)
    classes, index = _classes_of(labels, net.n_outputs, name)
    return one_hot_targets(index, net.n_outputs, net.dtype), classes, index


def one_hot_targets(index: np.ndarray, n_outputs: int, dtype: Any) -> np.ndarray:
    """Class indices → training targets: a 0/1 column for one output, one-hot rows for several."""
    if n_outputs == 1:
        return index.astype(dtype).reshape(-1, 1)
    T = np.zeros((index.shape[0], n_outputs), dtype=dtype)
    T[np.arange(index.shape[0]), index] = 1.0
    return T


def _label_array(y: Any, name: str) -> np.ndarray:
    try:
        labels = np.asarray(y)
    except ValueError as exc:
        raise ValueError(f"{name} must be a 1-D array of class labels: {exc}") from None
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"{name} must hold one class label per example (1-D), got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{name} contains NaN or infinite labels")
        if not np.all(labels == np.round(labels)):
            raise ValueError(
                f"{name} has non-integer numbers but classification needs class labels; use task='regression'"
            )
        labels = labels.astype(np.int64)
    if labels.dtype == object:
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in labels):
            raise ValueError(f"{name} contains missing labels (None/NaN)")
        labels = labels.astype(str)
    return labels


def _classes_of(labels: np.ndarray, n_outputs: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    present = np.unique(labels)
    if present.size < 2:
        raise ValueError(
            f"{name} has only one class ({present[0]!r}); a classifier needs examples of at least two classes"
        )
    n_classes_max = 2 if n_outputs == 1 else n_outputs
    if labels.dtype.kind in "iu" and n_outputs > 1 and present.min() >= 0 and present.max() < n_outputs:
        classes = np.arange(n_outputs)  # integer labels are output indices
    else:
        classes = present
    if classes.size > n_classes_max:
        raise ValueError(
            f"{name} has {classes.size} classes but the output layer has {n_outputs} unit(s), which can tell apart at "
            f"most {n_classes_max}; use layer_sizes[-1] = {classes.size} with a softmax output"
        )
    if n_outputs > 1 and classes.size < n_outputs:
        raise ValueError(
            f"{name} has {classes.size} classes but the output layer has {n_outputs} units; "
            f"use layer_sizes[-1] = {classes.size}"
        )
    return classes, np.searchsorted(classes, labels)


def _index_of(classes: np.ndarray, y: Any, name: str) -> np.ndarray:
    """Position of each label of ``y`` in ``classes``; unknown labels raise ValueError."""
    labels = _label_array(y, name)
    if (classes.dtype.kind == "U") != (labels.dtype.kind == "U"):
        labels = labels.astype(classes.dtype)  # e.g. integer labels of a model trained on their string form
    index = np.searchsorted(classes, labels)
    index = np.minimum(index, classes.size - 1)
    unknown = classes[index] != labels
    if np.any(unknown):
        raise ValueError(
            f"{name} has labels the network was not trained on: {sorted(set(labels[unknown].tolist()))[:5]}; "
            f"known classes: {classes.tolist()}"
        )
    return index


def _infer_task(net: Network, y: Any) -> str:
    if net.loss_function.name in ("cross_entropy", "binary_cross_entropy"):
        y_arr = np.asarray(y)
        if net.loss_function.name == "binary_cross_entropy" and y_arr.ndim == 2 and y_arr.shape[1] > 1:
            return "regression"  # multi-label 0/1 targets, trained as given
        return "classification"
    y_arr = np.asarray(y)
    if y_arr.dtype.kind in "USbO":
        return "classification"
    if y_arr.dtype.kind in "iu" and y_arr.ndim == 1 and net.activations[-1].name in ("sigmoid", "softmax"):
        return "classification"
    return "regression"


# --------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """The state of one training run: data, optimiser, schedule, random generator, position, history, callbacks.

    ``fit`` builds one and calls :meth:`run`. Everything needed to continue a run exactly lives here.
    """

    def __init__(
        self,
        net: Network,
        X: np.ndarray,
        T: np.ndarray,
        *,
        labels: np.ndarray | None,
        optimizer: Any,
        batch_size: int,
        shuffle: bool,
        rng: np.random.Generator,
        validation: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None,
        callbacks: Sequence[Callback],
        schedule: Any = None,
        clip_norm: float | None = None,
        sample_weight: np.ndarray | None = None,
        track_all_correct: bool = False,
        seed: Any = None,
        checkpoint_path: Any = None,
        checkpoint_every_batches: int = 0,
        checkpoint_every_epochs: int = 1,
        shard: tuple[int, int] | None = None,
        grad_reduce: Any = None,
        metric_reduce: Any = None,
        stop_sync: Any = None,
        is_root: bool = True,
        fused_update: bool | None = None,
        compiled_step: bool | None = None,
        unchecked_inputs: np.ndarray | None = None,
        step_threads: int | None = None,
    ) -> None:
        if step_threads is not None and (isinstance(step_threads, bool) or not isinstance(step_threads, int)):
            raise TypeError(f"step_threads must be None or a whole number, got {step_threads!r}")
        if step_threads is not None and step_threads < 1:
            raise ValueError(f"step_threads must be at least 1 (1: no team of threads), got {step_threads}")
        self.step_threads = step_threads
        self.net = net
        self.X, self.T, self.labels = X, T, labels
        self.optimizer = optimizer
        self.opt_state = optimizer.init(net.theta)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = rng
        self.validation = validation
        self.callbacks = list(callbacks)
        self.schedule = schedule
        self.clip_norm = clip_norm
        self.sample_weight = sample_weight
        self.track_all_correct = track_all_correct
        self.history = History()
        self.epoch = 0  # epochs completed
        self.batch = 0  # next batch of the current epoch
        self.step_count = 0  # updates made
        self.perm: np.ndarray | None = None  # this epoch's order of the examples
        self._epoch_loss = 0.0
        self._epoch_correct = 0
        self.stop_training = False
        self.stop_reason = ""
        #: True once restore() put back a checkpoint (callbacks then keep their restored state at train begin)
        self.resumed = False
        self.seed = seed
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every_batches = checkpoint_every_batches
        self.checkpoint_every_epochs = checkpoint_every_epochs
        # data parallelism (deltaprop.distributed sets these): this process's (rank, size) share of every global
        # batch; grad_reduce(grad, weight) turns the local mean gradient into the global one in place, where weight
        # is this process's number of rows (or their sum of sample weights), and returns the global total weight;
        # metric_reduce(array) sums epoch sums over processes; stop_sync(flag) → True if any process stops
        self.shard = shard
        self.grad_reduce = grad_reduce
        self.metric_reduce = metric_reduce
        self.stop_sync = stop_sync
        self.is_root = is_root
        for cb in self.callbacks:
            cb.set_trainer(self)
        self._batch_callbacks = [cb for cb in self.callbacks if cb.uses_batch_hooks()]
        self._frozen = net.frozen_mask()
        self._has_frozen = bool(self._frozen.any())
        n = X.shape[0]
        # Each batch's rows are gathered, in this epoch's order, into one preallocated buffer (np.take into it
        # allocates nothing). Measured on workload L this beats copying the whole shuffled epoch first (×1.3, see
        # bench/RESULTS.md) and needs no second copy of the data. Targets and labels are small: they are copied
        # in epoch order once. Data larger than memory (a memory-mapped file) is read the same way, in an order
        # shuffled within windows of consecutive rows and across windows, so that reads stay local on disk.
        self.streaming = isinstance(X, np.memmap)
        # arrays of another library (PyTorch, CuPy…): batches are gathered with xp.take, no buffers are reused
        self._foreign = not isinstance(X, np.ndarray)
        self._perm_xp: Any = None
        self._T_epoch: Any
        self._L_epoch: Any
        self._W_epoch: Any
        self._X_batch: Any
        if self._foreign:
            self._T_epoch, self._L_epoch, self._W_epoch = T, labels, sample_weight
            self._X_batch, self._gather = None, False
        else:
            self._init_numpy_buffers(X, T, labels, sample_weight, shuffle, batch_size)
        self.window = max(batch_size, STREAM_WINDOW_ROWS)
        # online learning (batch_size=1) on a supported network runs whole epochs in a compiled kernel when numba
        # is installed (deltaprop.kernels): the same updates in the same order, without ~25 NumPy calls a step
        self._compiled_epoch = (
            batch_size == 1
            and not self._foreign
            and isinstance(net.theta, np.ndarray)
            and not self.streaming
            and shard is None
            and grad_reduce is None
            and metric_reduce is None
            and not self._batch_callbacks
            and sample_weight is None
            and clip_norm is None
            and not checkpoint_every_batches
            and _kernels_support(net, optimizer)
        )
        self.n_batches = max(1, math.ceil(n / batch_size))
        # SGD's momentum made inside the backward pass's products, then one update pass (deltaprop.fused): None
        # chooses it for networks large enough that the update's passes over memory matter (bench/RESULTS.md), and
        # for any network the compiled step (the whole step in one C call) can train; True whenever it applies
        self.fused: FusedSGD | None = None
        self._compiled_step = False
        if fused_update is not False and not self._foreign and not self._compiled_epoch:
            if clip_norm is None and grad_reduce is None:
                fused = FusedSGD.for_network(net, optimizer)
                # the whole step in the C extension (deltaprop.fused): None when it applies, False never
                compiled = fused is not None and fused.compiled and compiled_step is not False and shard is None
                # the compiled step (one C call a batch) pays at every size; the NumPy form from FUSED_MIN_PARAMS
                if fused is not None and (fused_update or compiled or net.n_params >= FUSED_MIN_PARAMS):
                    self.fused = fused
                    self._compiled_step = compiled
        # any other optimiser (or a distributed run: grad_reduce then averages net.grad over the processes): the
        # forward and backward pass in one C call into net.grad, then the optimiser's own step
        self._backprop: CompiledBackprop | None = None
        if self.fused is None and compiled_step is not False and not self._foreign and not self._compiled_epoch:
            self._backprop = CompiledBackprop.for_network(net)
            self._compiled_step = self._backprop is not None
        # X not yet checked for NaN/±inf (fit passes it so when nothing but the training loop sees the run): the
        # compiled step checks each batch of the first epoch as it gathers it, instead of one more pass over all of
        # X before training (3-4 % of a fit of L, all of a memory-bound pass); any other step checks it here
        self._unchecked = unchecked_inputs
        self._theta0: np.ndarray | None = None
        self.inputs_refused = False  # True once X was refused during training (NaN/±inf found by the first epoch)
        if unchecked_inputs is not None and not (self._compiled_step and shard is None):
            _check_finite(unchecked_inputs, "X")
            self._unchecked = None

    def _init_numpy_buffers(
        self,
        X: np.ndarray,
        T: np.ndarray,
        labels: np.ndarray | None,
        sample_weight: np.ndarray | None,
        shuffle: bool,
        batch_size: int,
    ) -> None:
        net = self.net
        self._T_epoch = np.empty_like(T) if shuffle else T
        self._L_epoch = (np.empty_like(labels) if shuffle else labels) if labels is not None else None
        self._W_epoch = (
            (np.empty_like(sample_weight) if shuffle else sample_weight) if sample_weight is not None else None
        )
        # the batch buffer (allocated at its first use: the compiled step gathers into its own)
        self._gather = shuffle or self.streaming or X.dtype != net.dtype
        self._X_batch = None

    def release(self) -> None:
        """End the run: let go of everything only training needed, so that its memory comes back at once.

        Each callback holds the trainer (``cb.trainer``) and the trainer holds its callbacks: without this the data,
        the epoch buffers, the one-hot targets, the optimiser's copies and the layers' last batch would live on, with
        the network, until Python's next full garbage collection (13 MB for each fit of workload L, far more when
        ``fit`` had to convert X). The trainer keeps the network, the optimiser state and the history (a callback the
        caller keeps can still read them); it cannot run again.
        """
        self.callbacks, self._batch_callbacks = [], []  # breaks the cycle trainer → callback → trainer
        self.X = self.T = self.labels = self.sample_weight = self.perm = None  # type: ignore[assignment]
        self.validation = self._unchecked = self._theta0 = None
        self._perm_xp = None
        self._T_epoch = self._L_epoch = self._W_epoch = self._X_batch = None  # type: ignore[assignment]
        for layer in self.net.layers:
            layer.inputs = layer.net = layer.out = None
            layer._buffers.clear()
            if getattr(layer.activation, "kept", None) is not None:
                layer.activation.kept = None  # type: ignore[attr-defined]

    def stop(self, reason: str) -> None:
        """Ask training to stop at the end of the current batch or epoch; ``reason`` goes to ``History``."""
        if not self.stop_training:
            self.stop_training = True
            self.stop_reason = reason

    # ----------------------------------------------------------------------------------------- one epoch
    def _shuffle_epoch(self) -> None:
        """Draw this epoch's order and copy the data into it once; batches are then contiguous slices."""
        if not self.shuffle:
            return
        n = self.X.shape[0]
        if self.streaming:  # shuffle the windows, then the rows inside each window
            starts = self.rng.permutation(np.arange(0, n, self.window))
            self.perm = np.concatenate([s + self.rng.permutation(min(self.window, n - s)) for s in starts])
        else:
            self.perm = self.rng.permutation(n)
        self._gather_epoch()

    def _gather_epoch(self) -> None:
        assert self.perm is not None
        if self._foreign:  # another library: xp.take of this epoch's order (new arrays, on the data's device)
            xp, dev = xp_of(self.X), device_of(self.X)
            self._perm_xp = perm = xp.asarray(self.perm.astype(np.int64), device=dev)
            self._T_epoch = xp.take(self.T, perm, axis=0)
            if self.labels is not None:
                self._L_epoch = xp.take(self.labels, perm, axis=0)
            if self.sample_weight is not None:
                self._W_epoch = xp.take(self.sample_weight, perm, axis=0)
            return
        # mode="clip": np.take with out= and the default mode="raise" buffers the whole result first
        np.take(self.T, self.perm, axis=0, out=self._T_epoch, mode="clip")
        if self.labels is not None and self._L_epoch is not None:
            np.take(self.labels, self.perm, axis=0, out=self._L_epoch, mode="clip")
        if self.sample_weight is not None and self._W_epoch is not None:
            np.take(self.sample_weight, self.perm, axis=0, out=self._W_epoch, mode="clip")

    def _run_epoch(self) -> dict[str, Any]:
        """Batches ``self.batch`` … end of the epoch: forward, loss, backward, update (the seed's inner loop)."""
        if self._compiled_epoch:
            return self._run_epoch_compiled()
        net, opt, state = self.net, self.optimizer, self.opt_state
        loss_fn = net.loss_function
        X, T, L, W = self.X, self._T_epoch, self._L_epoch, self._W_epoch
        n, bs = X.shape[0], self.batch_size
        check = self._unchecked is not None  # the first epoch of a run whose X is checked batch by batch
        # arrays of another library (a GPU): the epoch's loss and correct count are summed where they are and read
        # once, at the end of the epoch, so that the host does not wait for the device after every batch. Not when
        # anything reads them per batch as floats (batch callbacks that want floats, checkpoints within an epoch,
        # several processes); a progress bar gets each batch's loss as a 0-d array and reads a few a second
        deferred = (
            self._foreign
            and all(cb.accepts_array_loss for cb in self._batch_callbacks)
            and not self.checkpoint_every_batches
            and self.grad_reduce is None
            and self.metric_reduce is None
        )
        while self.batch < self.n_batches:
            b = self.batch
            lo, hi = b * bs, min(n, (b + 1) * bs)
            m = hi - lo  # rows of the (global) batch
            if self.shard is not None:  # this process's share of the global batch
                rank, size = self.shard
                lo, hi = lo + m * rank // size, lo + m * (rank + 1) // size
            if self._batch_callbacks:
                for cb in self._batch_callbacks:
                    cb.on_batch_begin(b, {"size": hi - lo})
            batch_loss, loss_sum = 0.0, None
            weight = float(hi - lo)  # these rows' weight in the batch mean: their number, or their sample weights
            compiled = self._compiled_step and hi > lo and not net._record
            if compiled:  # one C call: forward, loss, backward (and SGD's update)
                source, rows = self._compiled_inputs(X, lo, hi)
                Lb = None if L is None else L[lo:hi]
                wb = None if W is None else W[lo:hi]
                if wb is not None:
                    weight = _total(wb)
                if self.fused is not None:
                    batch_loss, correct = self.fused.compiled_step(
                        source, rows, T[lo:hi], Lb, state, weights=wb, check_inputs=check
                    )
                else:  # the gradient into net.grad; the optimiser updates below
                    assert self._backprop is not None
                    batch_loss, correct = self._backprop.step(
                        source, rows, T[lo:hi], Lb, weights=wb, check_inputs=check
                    )
                self._epoch_correct += correct
            elif hi > lo:
                Xb = self._batch_inputs(X, lo, hi)
                if check and native.first_nonfinite(Xb) >= 0:
                    raise NonFiniteInputs("this batch's inputs hold a NaN or an infinite value")
                Tb = T[lo:hi] if not self._foreign else T[lo:hi, ...]
                out = net._forward(Xb)  # forward pass
                wb = None if W is None else W[lo:hi]
                if wb is None and deferred:  # E·m of this batch, a 0-d array left on the device
                    loss_sum = net._batch_loss_sum_array(out, Tb)
                    batch_loss = loss_sum / (hi - lo) if self._batch_callbacks else math.nan  # (for the callbacks)
                elif wb is None:
                    batch_loss = net._batch_loss(out, Tb)
                else:
                    batch_loss = _weighted_loss(loss_fn, out, Tb, wb)
                    weight = _total(wb)
                if L is not None:
                    self._epoch_correct += _count_equal(net._class_index(out), L[lo:hi], as_int=not deferred)
                if self.fused is not None:  # backward pass, each layer's gradient into the momentum buffer
                    self.fused.begin(state)
                    net._backward(Tb, sample_weight=wb, fused=self.fused)
                else:
                    net._backward(Tb, sample_weight=wb)  # backward pass: every dW, db
            else:
                net.grad[...] = 0.0  # no rows for this process in this batch: it adds nothing to the sum
            contribution = batch_loss * (hi - lo) if loss_sum is None else loss_sum  # these rows' share of the sum
            if self.grad_reduce is not None:
                # the global batch's mean gradient, the same on every process; total: the batch's whole weight
                total = self.grad_reduce(net.grad, weight)
                if W is not None:  # the batch adds m × its weighted mean loss; these rows hold Σ w·loss / total of it
                    contribution = batch_loss * weight * m / total if total > 0 else 0.0
            self._epoch_loss += contribution
            if self.grad_reduce is None and not deferred and not math.isfinite(batch_loss):
                self.batch = self.n_batches  # diverged: end the epoch; TerminateOnNaN stops and restores weights
                break
            if self.clip_norm is not None:
                _clip(net.grad, self.clip_norm)
            if self.fused is not None and hi > lo:
                if not compiled:  # (the compiled step has made the update itself)
                    self.fused.end(state)  # updated during the backward pass
            else:
                opt.step(net.theta, net.grad, state)  # update
            self.batch += 1
            self.step_count += 1
            if self._batch_callbacks:
                for cb in self._batch_callbacks:
                    cb.on_batch_end(b, {"size": hi - lo, "loss": batch_loss})
            if self.checkpoint_path is not None and self.checkpoint_every_batches:
                if self.step_count % self.checkpoint_every_batches == 0 and self.batch < self.n_batches:
                    self.save_checkpoint(self.checkpoint_path)
            if self.stop_training:
                break
        else:
            if check:  # every row of X was in a checked batch of this first epoch
                self._unchecked = self._theta0 = None
        if deferred:  # the one read of the epoch's sums (a non-finite loss is found here, TerminateOnNaN acts)
            self._epoch_loss, self._epoch_correct = float(self._epoch_loss), int(self._epoch_correct)
        epoch_loss, epoch_correct = self._epoch_loss, self._epoch_correct
        if self.metric_reduce is not None:
            sums = self.metric_reduce(np.array([epoch_loss, float(epoch_correct)]))  # over every process
            epoch_loss, epoch_correct = float(sums[0]), int(round(float(sums[1])))
        logs: dict[str, Any] = {"loss": epoch_loss / n, "lr": float(opt.lr)}
        if L is not None:
            logs["accuracy"] = epoch_correct / n
        return logs

    def _run_epoch_compiled(self) -> dict[str, Any]:
        """The epoch's online updates in deltaprop.kernels (one example at a time, in this epoch's order)."""
        from . import kernels

        net, opt, state = self.net, self.optimizer, self.opt_state
        n = self.X.shape[0]
        order = self.perm if self.perm is not None and self.shuffle else np.arange(n)
        info: dict[str, int] = {}
        loss_sum, correct = kernels.online_sgd_epoch(
            net,
            self.X,
            self.T,
            order[self.batch :],  # one example per batch: a resumed epoch continues where it stopped
            opt.lr,
            labels=self.labels,
            info=info,
            **kernels.optimizer_kwargs(opt, state),
        )
        state["step"] += info["steps"]
        self.step_count += info["steps"]
        self._epoch_loss += loss_sum
        self._epoch_correct += correct
        self.batch = self.n_batches
        logs: dict[str, Any] = {"loss": self._epoch_loss / n, "lr": float(opt.lr)}
        if self.labels is not None:
            logs["accuracy"] = self._epoch_correct / n
        return logs

    def _batch_inputs(self, X: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Rows lo..hi of this epoch's order, gathered into the batch buffer (a plain slice when not shuffled)."""
        if not self._foreign and self._X_batch is None and self._gather:
            self._X_batch = np.empty((self.batch_size, X.shape[1]), dtype=self.net.dtype)
        buf = self._X_batch
        if self._foreign:  # another library: a slice, or xp.take of this epoch's rows
            if self.perm is None or not self.shuffle:
                return X[lo:hi, ...]
            return xp_of(X).take(X, self._perm_xp[lo:hi], axis=0)
        if self.perm is None or not self.shuffle:
            if buf is None:
                return X[lo:hi]
            buf[: hi - lo] = X[lo:hi]  # read (and cast) these rows
            return buf[: hi - lo]
        assert buf is not None
        rows = self.perm[lo:hi]
        if self.streaming or X.dtype != buf.dtype:
            buf[: hi - lo] = X[rows]  # read (and cast) these rows
        else:
            np.take(X, rows, axis=0, out=buf[: hi - lo], mode="clip")
        return buf[: hi - lo]

    def _compiled_inputs(self, X: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(inputs, rows) for the compiled step: all of X and this batch's rows when the C code can gather them
        itself (X in memory, of the network's dtype, C-contiguous), else the batch gathered here and None."""
        if (
            self.perm is not None
            and self.shuffle
            and not self.streaming
            and X.dtype == self.net.dtype
            and X.flags.c_contiguous
            and self.perm.dtype == np.int64
        ):
            return X, self.perm[lo:hi]
        return np.ascontiguousarray(self._batch_inputs(X, lo, hi)), None

    def _evaluate(self, X: np.ndarray, T: np.ndarray, labels: np.ndarray | None) -> tuple[float, float | None]:
        """Loss and accuracy of the current weights on (X, T), in chunks that bound memory."""
        net = self.net
        total, correct = 0.0, 0
        for lo in range(0, X.shape[0], 8192):
            hi = min(X.shape[0], lo + 8192)
            foreign = not isinstance(X, np.ndarray)
            Xc = X[lo:hi, ...] if foreign else np.asarray(X[lo:hi], dtype=net.dtype)
            out = net.layers[0].forward(Xc)
            for layer in net.layers[1:]:
                out = layer.forward(out)  # no buffer reuse: chunks may be large and are evaluated once
            total += net.loss_function.value(out, T[lo:hi, ...] if foreign else T[lo:hi], net.layers[-1].net) * (
                hi - lo
            )
            if labels is not None:
                correct += _count_equal(net._class_index(out), labels[lo:hi])
        return total / X.shape[0], (None if labels is None else correct / X.shape[0])

    # ------------------------------------------------------------------------------------------ the loop
    def run(self, epochs: int) -> History:
        """Train until epoch number ``epochs`` (counting epochs already run) or until a stopping criterion holds."""
        self.net._reuse_buffers = True
        if self._unchecked is not None:
            self._theta0 = np.array(self.net.theta, copy=True)  # put back if X turns out to hold a NaN or ±inf
        try:
            # divergence is reported, not warned; the compiled step may share each step among threads
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"), self._sharing():
                try:
                    history = self._run(epochs)
                except NonFiniteInputs as exc:
                    self._refuse_inputs(found=exc)
                if self._unchecked is not None:  # training ended within the first epoch: check the rows it skipped
                    self._refuse_inputs()
                return history
        finally:
            self.net._reuse_buffers = False
            self._theta0 = None  # (a callback its caller keeps keeps the trainer: see release())

    def _sharing(self) -> contextlib.AbstractContextManager[int]:
        """The team of threads of the compiled step for this run's batches (CompiledBackprop.sharing: BLAS is
        single-threaded meanwhile), or nothing where the compiled step does not train."""
        backprop = self.fused.backprop if self.fused is not None else self._backprop
        if not self._compiled_step or backprop is None:
            return contextlib.nullcontext(1)
        rows = self.batch_size if self.shard is None else max(1, self.batch_size // self.shard[1])
        return backprop.sharing(rows, at_most=self.step_threads)

    def _refuse_inputs(self, found: Exception | None = None) -> None:
        """Raise the NonFiniteInputError of a NaN or ±inf in X (naming the first, in row order) with the weights put
        back as they were before training, as when X is checked before the first step. Return if X is finite after
        all, unless a batch ``found`` one (X then changed during training: still refused)."""
        X, self._unchecked = self._unchecked, None
        assert X is not None
        try:
            _check_finite(X, "X")
            if found is not None:
                raise NonFiniteInputError("X contains NaN or infinite values; remove or impute them first") from found
        except NonFiniteInputError:
            if self._theta0 is not None:
                self.net.theta[...] = self._theta0
            self.inputs_refused = True
            raise

    def _run(self, epochs: int) -> History:
        start = time.perf_counter() - (self.history.time[-1] if self.history.time else 0.0)
        for cb in self.callbacks:
            cb.on_train_begin({"resumed": self.resumed})
        while self.epoch < epochs and not self.stop_training:
            epoch = self.epoch
            if self.batch == 0:  # a fresh epoch (a resumed run may start in the middle of one)
                for cb in self.callbacks:
                    cb.on_epoch_begin(epoch, {})
                self._shuffle_epoch()
                self._epoch_loss, self._epoch_correct = 0.0, 0
            logs = self._run_epoch()
            if self.stop_training and self.batch < self.n_batches:
                break  # stopped in the middle of an epoch: no epoch metrics
            if self.validation is not None and math.isfinite(logs["loss"]):
                logs["val_loss"], logs["val_accuracy"] = self._evaluate(*self.validation)
            if self.track_all_correct and self.labels is not None and math.isfinite(logs["loss"]):
                _, acc = self._evaluate(self.X, self.T, self.labels)
                logs["train_all_correct"] = acc == 1.0
            logs["time"] = time.perf_counter() - start
            self.history.append(epoch, logs)
            self.epoch += 1
            self.batch = 0
            for cb in self.callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.stop_sync is not None and self.stop_sync(self.stop_training) and not self.stop_training:
                self.stop("another process stopped training")
            if self.schedule is not None and not self.stop_training:
                self.schedule.step(logs.get("val_loss") if logs.get("val_loss") is not None else logs["loss"])
            if self.checkpoint_path is not None and not self.checkpoint_every_batches:
                if self.epoch % self.checkpoint_every_epochs == 0 or self.stop_training or self.epoch == epochs:
                    self.save_checkpoint(self.checkpoint_path)
        if not self.stop_training:
            self.stop_reason = f"reached the maximum number of epochs ({epochs})"
        self.history.stop_reason = self.stop_reason
        for cb in self.callbacks:
            cb.on_train_end({"stop_reason": self.stop_reason})
        return self.history

    # ------------------------------------------------------------------------------------ checkpointing
    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything needed to continue this run bit for bit: (named arrays, JSON data)."""
        arrays: dict[str, np.ndarray] = {"theta": np.array(to_host(self.net.theta), copy=True)}
        scalars: dict[str, Any] = {}
        for key, value in self.opt_state.items():
            if isinstance(value, np.ndarray) or is_foreign_array(value):  # saved as NumPy arrays
                arrays[f"opt.{key}"] = np.array(to_host(value), copy=True)
            else:
                scalars[key] = value
        if self.perm is not None:
            arrays["perm"] = self.perm.astype(np.int64)
        meta = {
            "epoch": self.epoch,
            "batch": self.batch,
            "step_count": self.step_count,
            "epoch_loss": self._epoch_loss,
            "epoch_correct": self._epoch_correct,
            "optimizer": self.optimizer.get_config(),
            "optimizer_scalars": scalars,
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "rng": self.rng.bit_generator.state,
            "seed": self.seed,
            "history": self.history.to_dict(),
            "callbacks": [[key, cb.get_state()] for key, cb in zip(self._callback_keys(), self.callbacks)],
            "n_examples": int(self.X.shape[0]),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
        }
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Put back a state made by :meth:`checkpoint_state` (the data and options must be the same)."""
        if meta["n_examples"] != self.X.shape[0] or meta["batch_size"] != self.batch_size:
            raise ValueError(
                f"the checkpoint was made training on {meta['n_examples']} examples in batches of "
                f"{meta['batch_size']}, but this run has {self.X.shape[0]} and {self.batch_size}: resume with the "
                "same data and options"
            )
        if arrays["theta"].shape != self.net.theta.shape:
            raise ValueError("the checkpoint's network has a different number of parameters than this one")
        _put(self.net.theta, arrays["theta"])
        for key in list(self.opt_state):
            if isinstance(self.opt_state[key], np.ndarray) or is_foreign_array(self.opt_state[key]):
                _put(self.opt_state[key], arrays[f"opt.{key}"])
        self.opt_state.update(meta["optimizer_scalars"])
        self.optimizer.lr = meta["optimizer"].get("lr", self.optimizer.lr)
        if self.schedule is not None and meta["schedule"] is not None:
            self.schedule.load_state_dict(meta["schedule"])
        self.rng.bit_generator.state = meta["rng"]
        self.epoch, self.batch, self.step_count = int(meta["epoch"]), int(meta["batch"]), int(meta["step_count"])
        self._epoch_loss, self._epoch_correct = float(meta["epoch_loss"]), int(meta["epoch_correct"])
        if self.shard is not None:  # the checkpoint holds the epoch's sums over all processes, and each one's part
            rank, size = self.shard
            parts = meta.get("epoch_sums")
            if parts is not None and len(parts) == size:  # as many processes as wrote it: each takes back its own
                self._epoch_loss, self._epoch_correct = float(parts[rank][0]), int(round(parts[rank][1]))
            elif rank != 0:  # another number of processes: rank 0 carries the sums
                self._epoch_loss, self._epoch_correct = 0.0, 0
        self.history = History.from_dict(meta["history"])
        saved = dict(meta["callbacks"])
        for key, cb in zip(self._callback_keys(), self.callbacks):
            if key in saved:
                cb.set_state(saved[key])
        self.resumed = True
        if "perm" in arrays and self.shuffle:
            self.perm = arrays["perm"].astype(np.intp)
            if self.batch > 0:
                self._gather_epoch()

    def _callback_keys(self) -> list[str]:
        """'EarlyStopping#0', … : a callback's class and its rank among callbacks of that class."""
        seen: dict[str, int] = {}
        keys = []
        for cb in self.callbacks:
            name = type(cb).__name__
            keys.append(f"{name}#{seen.get(name, 0)}")
            seen[name] = seen.get(name, 0) + 1
        return keys

    def save_checkpoint(self, path: Any) -> None:
        """Write the checkpoint (only the root process writes files; with several, every one must call this)."""
        parts = None
        if self.metric_reduce is not None and self.shard is not None:
            # every process's partial sums of this epoch (zeros elsewhere, so that the sum is exact): resumed on as
            # many processes a run continues bit for bit; on another number of processes, from their total
            rank, size = self.shard
            mine = np.zeros((size, 2))
            mine[rank] = self._epoch_loss, self._epoch_correct
            parts = np.asarray(self.metric_reduce(mine.ravel()), dtype=np.float64).reshape(size, 2)
        if not self.is_root:
            return
        from .io import save_checkpoint

        arrays, meta = self.checkpoint_state()
        if parts is not None:
            meta["epoch_loss"], meta["epoch_correct"] = float(parts[:, 0].sum()), int(round(float(parts[:, 1].sum())))
            meta["epoch_sums"] = parts.tolist()
        save_checkpoint(path, self.net, arrays, meta)


def _kernels_support(net: Network, optimizer: Any) -> bool:
    """Whether deltaprop.kernels can run this network's online epochs (numba installed, a supported network)."""
    import importlib.util

    if importlib.util.find_spec("numba") is None:  # checked without importing numba (slow to import)
        return False
    from . import kernels

    return bool(kernels.supports(net, optimizer, 1))


def _clip(grad: np.ndarray, max_norm: float) -> None:
    from .optim import clip_grad_norm

    clip_grad_norm(grad, max_norm)


def _weighted_loss(loss_fn: Any, out: np.ndarray, T: np.ndarray, w: np.ndarray) -> float:
    total = _total(w)
    if total == 0.0:
        return 0.0  # every example of this batch has weight 0: it adds nothing
    if isinstance(out, np.ndarray):
        per_example = loss_fn.elementwise(out, T).sum(axis=1)
        return float((per_example * w).sum() / total)
    xp = xp_of(out)
    per_example = xp.sum(loss_fn.elementwise(out, T), axis=1)
    return float(xp.sum(per_example * xp.astype(w, per_example.dtype))) / total


# ------------------------------------------------------------------------------------ other array libraries
def _total(w: Any) -> float:
    """Sum of a 1-D array of any library, as a float."""
    if isinstance(w, np.ndarray):
        return float(w.sum())
    return float(xp_of(w).sum(w))


def _count_equal(a: Any, b: Any, as_int: bool = True) -> Any:
    """How many entries of ``a`` and ``b`` (same library) are equal: an int, or (``as_int=False``, another
    library) a 0-d array of that library, left on its device."""
    if isinstance(a, np.ndarray):
        return int(np.count_nonzero(a == b))
    xp = xp_of(a)
    if hasattr(xp, "count_nonzero"):  # array API 2023.12: one kernel on a GPU
        count = xp.count_nonzero(a == b)
    else:
        count = xp.sum(xp.astype(a == b, xp.int64))
    return int(count) if as_int else count


def _put(target: Any, values: np.ndarray) -> None:
    """``target[...] = values`` for a target of any library (NumPy values are copied to its device)."""
    if isinstance(target, np.ndarray):
        target[...] = values
        return
    xp, dev = xp_of(target), device_of(target)
    target[...] = xp.asarray(np.ascontiguousarray(values), dtype=target.dtype, device=dev)


def _to_library(a: Any, like: Any, dtype: Any = None) -> Any:
    """NumPy array ``a`` as an array of ``like``'s library on its device (None stays None)."""
    if a is None or isinstance(like, np.ndarray):
        return a
    from .backend import dtype_in

    xp, dev = xp_of(like), device_of(like)
    arr = np.ascontiguousarray(a if dtype is None else a.astype(dtype))
    return xp.asarray(arr, dtype=dtype_in(xp, arr.dtype), device=dev)


def _rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` (NumPy integers) of ``X``, of any library."""
    if isinstance(X, np.ndarray):
        return X[idx]
    xp, dev = xp_of(X), device_of(X)
    return xp.take(X, xp.asarray(idx.astype(np.int64), device=dev), axis=0)


def _move_network(net: Network, X: Any) -> None:
    """Put ``net``'s parameters in the library and on the device of ``X`` (an array of another library)."""
    xp, dev = xp_of(X), device_of(X)
    if not isinstance(net.theta, np.ndarray):
        txp, tdev = xp_of(net.theta), device_of(net.theta)
        if txp is xp and tdev == dev:
            return
    net.to(xp, dev)


class _XpTerminateOnNaN(TerminateOnNaN):
    """TerminateOnNaN for parameters of another library (copies and finiteness checks with the array API)."""

    def on_train_begin(self, logs: Any) -> None:
        self._last_good = _copy_theta(self.trainer.net.theta)

    def on_epoch_end(self, epoch: int, logs: Any) -> None:
        theta = self.trainer.net.theta
        xp = xp_of(theta)
        if not math.isfinite(logs.get("loss", 0.0)) or not bool(xp.all(xp.isfinite(theta))):
            self._diverged(f"the loss or the weights became NaN/infinite in epoch {epoch + 1}")
        else:
            self._last_good = _copy_theta(theta)


class _XpEarlyStopping(EarlyStopping):
    """EarlyStopping whose best weights (restore_best_weights) are copied with the array API."""

    def on_epoch_end(self, epoch: int, logs: Any) -> None:
        keep = self.restore_best_weights
        self.restore_best_weights = False
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.restore_best_weights = keep
        if keep and self.best_epoch == epoch:
            self.best_theta = _copy_theta(self.trainer.net.theta)


def _copy_theta(theta: Any) -> Any:
    return xp_of(theta).asarray(theta, copy=True)


# ----------------------------------------------------------------------------------------------------- fit
def fit(
    net: Network,
    X: Any,
    y: Any,
    *,
    epochs: int = 100,
    batch_size: int | None = 32,
    optimizer: Any = "adam",
    lr: float | None = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    validation_split: float | None = None,
    validation_data: tuple[Any, Any] | None = None,
    callbacks: Sequence[Callback] | Callback | None = (),
    stop_at_loss: float | None = None,
    stop_when_all_correct: bool = False,
    patience: int | None = None,
    tol: float = 1e-4,
    monitor: str = "val_loss",
    restore_best_weights: bool = False,
    time_limit: float | None = None,
    schedule: Any = None,
    clip_norm: float | None = None,
    sample_weight: Any = None,
    task: str | None = None,
    checkpoint: Any = None,
    checkpoint_every: int | str = "epoch",
    resume: Any = None,
    verbose: int = 1,
    trainer_options: dict[str, Any] | None = None,
) -> History:
    """Train ``net`` on (X, y) by backpropagation; return the :class:`History`.

    Args:
        X: inputs, shape (n_examples, n_inputs). NaN or ±inf in X is a ValueError naming the first such value, with
            the network left as it was (checked before training, or, when no callbacks, checkpoint or other process
            watch the run, batch by batch in the first epoch as the compiled step reads X).
        y: class labels (integers or strings) for a classifier; numbers, shape (n,) or (n, n_outputs), for
            regression.
        epochs: the most passes over the data.
        batch_size: 1 is the seed's online learning (an update after every example), an integer is mini-batch,
            None is full batch (one update per epoch).
        optimizer: a name (``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``) or an optimiser from
            :mod:`deltaprop.optim`; ``lr`` sets the learning rate of a named one.
        shuffle, seed: shuffle the examples every epoch with a generator seeded by ``seed`` (same seed, same bits).
        validation_split: fraction of (X, y), drawn at random with ``seed``, held out to measure ``val_loss`` (for
            a memory-mapped X, the last rows, so that nothing is copied into memory).
        validation_data: (X_val, y_val) instead.
        callbacks: extra :class:`~deltaprop.callbacks.Callback` objects (a list; one alone or None also do).
        stop_at_loss: stop once the epoch's training loss is at or below this.
        stop_when_all_correct: stop once every training example is classified correctly.
        patience, tol, monitor, restore_best_weights: early stopping when ``monitor`` (``val_loss`` by default)
            has not improved by more than ``tol`` for ``patience`` epochs.
        time_limit: seconds of training after which to stop (checked at the end of each epoch).
        schedule: a learning-rate schedule (name or object from :mod:`deltaprop.optim`), stepped once per epoch.
        clip_norm: rescale the gradient when its global L2 norm exceeds this.
        sample_weight: one non-negative weight per example; the loss becomes their weighted mean.
        task: ``classification`` or ``regression``; inferred when None (cross-entropy losses, string/boolean
            labels, or integer labels with a sigmoid/softmax output mean classification).
        checkpoint: a file to save, atomically, everything needed to continue the run (weights, optimiser and
            schedule state, random generator, epoch and batch position, callbacks' state, history).
        checkpoint_every: ``"epoch"`` (after every epoch) or a number of updates (so also mid-epoch).
        resume: a checkpoint file written by an earlier run with the same data and options: training continues
            from it and ends bit-identical to a run that was never interrupted. ``epochs`` counts from the start
            of the original run.
        verbose: 0 silent; 1 a progress bar when the output is a terminal; 2 one line per epoch.
        trainer_options: extra keyword arguments of :class:`Trainer`: ``fused_update`` (None: SGD's update is made
            inside the backward pass for networks of ``FUSED_MIN_PARAMS`` parameters or more, or of any size when
            the compiled step applies, see :mod:`deltaprop.fused`; True: whenever it applies; False: never),
            ``compiled_step`` (None: the forward and backward pass in one C call, with SGD's update too, when
            it applies, see :mod:`deltaprop.compiled_step`; False: never), ``step_threads`` (None: large
            batches' steps are shared by a team of as many threads as BLAS has, with BLAS on one thread for the
            process meanwhile, see :mod:`deltaprop.compiled_step`; n: at most n threads; 1: no team, BLAS keeps
            its own threads), and ``shard``, ``grad_reduce``,
            ``metric_reduce``, ``stop_sync``, ``is_root``, which :func:`deltaprop.distributed.fit` sets.
    """
    from .optim import get_optimizer, get_schedule

    # arrays of another library (PyTorch, CuPy, array-api-strict): the network moves to X's library and device;
    # targets, labels and weights are prepared with NumPy and then copied there
    foreign = is_foreign_array(X) or not isinstance(net.theta, np.ndarray)
    if foreign:
        if is_foreign_array(X):
            _move_network(net, X)
        y = to_host(y) if is_foreign_array(y) else y
        if sample_weight is not None and is_foreign_array(sample_weight):
            sample_weight = to_host(sample_weight)
        if validation_data is not None and isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            yv = validation_data[1]
            validation_data = (validation_data[0], to_host(yv) if is_foreign_array(yv) else yv)

    _check_positive_int(epochs, "epochs")
    if batch_size is not None:
        _check_positive_int(batch_size, "batch_size")
    if lr is not None and (
        isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0 or not math.isfinite(lr)
    ):
        raise ValueError(f"lr must be a finite non-negative number, got {lr!r}")
    if task is None:
        task = _infer_task(net, y)
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and clip_norm > 0):
        raise ValueError(f"clip_norm must be a positive number, got {clip_norm!r}")

    options = trainer_options or {}
    # when only the training loop sees the run (no callbacks of the caller, no checkpoint, one process), X's values
    # are checked for NaN/±inf by the first epoch as it reads them (Trainer), not in one more pass before training
    defer_check = (
        not foreign
        and not isinstance(X, np.memmap)
        and not callbacks
        and checkpoint is None
        and resume is None
        and options.get("shard") is None
        and options.get("grad_reduce") is None
    )
    X_arr, _ = check_inputs(X, net.n_inputs, net.dtype, name="X", check_finite=not defer_check)  # a memmap stays
    X_unchecked = X_arr if defer_check else None
    if foreign:
        X_arr = net._in_own_library(X_arr)
    n_y = len(y) if hasattr(y, "__len__") else None
    if n_y != X_arr.shape[0]:
        raise ValueError(f"X has {X_arr.shape[0]} examples but y has {n_y}; they must have the same length")
    T, classes, labels = encode_targets(net, y, task)
    weights = _check_sample_weight(sample_weight, X_arr.shape[0])

    if checkpoint_every != "epoch" and (
        isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1
    ):
        raise ValueError(f"checkpoint_every must be 'epoch' or a positive number of updates, got {checkpoint_every!r}")
    resume_state = None
    if resume is not None:
        from .io import load_checkpoint

        resume_state = load_checkpoint(resume)
        seed = resume_state[1]["seed"]
    elif seed is None and checkpoint is not None:
        seed = int(np.random.SeedSequence().generate_state(2, np.uint64)[0] % 2**63)  # a resume redraws the same split
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    validation = None
    if validation_split is not None and validation_data is not None:
        raise ValueError("give validation_split or validation_data, not both")
    if validation_split is not None:
        if (
            isinstance(validation_split, bool)
            or not isinstance(validation_split, (int, float))
            or not 0 < validation_split < 1
        ):
            raise ValueError(f"validation_split must be a fraction strictly between 0 and 1, got {validation_split!r}")
        n = X_arr.shape[0]
        n_val = int(math.floor(n * validation_split))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"validation_split={validation_split} of {n} examples leaves {n_val} for validation and {n - n_val} "
                "for training; both need at least one"
            )
        if isinstance(X_arr, np.memmap):  # data on disk: hold out the last rows (a view) rather than copy
            val_idx, train_idx = np.arange(n - n_val, n), np.arange(n - n_val)
            validation = (X_arr[n - n_val :], T[val_idx], None if labels is None else labels[val_idx])
            X_arr, T = X_arr[: n - n_val], T[train_idx]
        else:
            perm = rng.permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            validation = (_rows(X_arr, val_idx), T[val_idx], None if labels is None else labels[val_idx])
            X_arr, T = _rows(X_arr, train_idx), T[train_idx]
        labels = None if labels is None else labels[train_idx]
        weights = None if weights is None else weights[train_idx]
        if X_unchecked is not None and native.first_nonfinite(validation[0]) >= 0:  # (training rows: Trainer)
            _check_finite(X_unchecked, "X")
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        Xv, _ = check_inputs(validation_data[0], net.n_inputs, net.dtype, name="validation_data X")
        if foreign:
            Xv = net._in_own_library(Xv)
        yv = validation_data[1]
        if len(yv) != Xv.shape[0]:
            raise ValueError(f"validation_data X has {Xv.shape[0]} examples but y has {len(yv)}")
        if classes is not None:
            idx = _index_of(classes, yv, "validation_data y")
            validation = (Xv, one_hot_targets(idx, net.n_outputs, net.dtype), idx)
        else:
            validation = (Xv, encode_targets(net, yv, "regression", name="validation_data y")[0], None)

    if foreign:  # targets, labels, weights (prepared with NumPy) into the data's library and device
        T = _to_library(np.ascontiguousarray(T), X_arr)
        labels = _to_library(labels, X_arr, np.int64)
        weights = _to_library(weights, X_arr)
        if validation is not None:
            Xv, Tv, Lv = validation
            validation = (Xv, _to_library(np.ascontiguousarray(Tv), X_arr), _to_library(Lv, X_arr, np.int64))

    opt = get_optimizer(optimizer, lr=lr)
    sched = get_schedule(schedule, opt) if schedule is not None else None
    cbs: list[Callback] = [_XpTerminateOnNaN() if foreign else TerminateOnNaN()]
    if patience is not None:
        stopping = _XpEarlyStopping if foreign else EarlyStopping
        cbs.append(stopping(monitor, patience=patience, tol=tol, restore_best_weights=restore_best_weights))
    if stop_at_loss is not None:
        cbs.append(StopAtLoss(stop_at_loss))
    if stop_when_all_correct:
        if labels is None:
            raise ValueError("stop_when_all_correct needs a classifier: pass class labels (or task='classification')")
        cbs.append(StopWhenAllCorrect())
    if time_limit is not None:
        cbs.append(TimeBudget(time_limit))
    if verbose:
        from .progress import progress_callback

        cb = progress_callback(verbose, epochs)
        if cb is not None:
            cbs.append(cb)
    cbs.extend(_check_callbacks(callbacks))

    trainer = Trainer(
        net,
        X_arr if isinstance(X_arr, np.memmap) or foreign else np.ascontiguousarray(X_arr),
        T if foreign else np.ascontiguousarray(T),
        labels=labels,
        optimizer=opt,
        batch_size=X_arr.shape[0] if batch_size is None else min(batch_size, X_arr.shape[0]),
        shuffle=shuffle,
        rng=rng,
        validation=validation,
        callbacks=cbs,
        schedule=sched,
        clip_norm=clip_norm,
        sample_weight=weights,
        track_all_correct=stop_when_all_correct,
        seed=None if isinstance(seed, np.random.Generator) else seed,
        checkpoint_path=checkpoint,
        checkpoint_every_batches=0 if checkpoint_every == "epoch" else int(checkpoint_every),
        unchecked_inputs=X_unchecked,
        **options,
    )
    if resume_state is not None:
        trainer.restore(*resume_state)
    previous_classes, net.classes = net.classes, classes  # (put back if X is refused: the network stays as it was)
    try:
        return trainer.run(epochs)
    except NonFiniteInputError:
        if trainer.inputs_refused:  # (weights put back by the trainer)
            net.classes = previous_classes
        raise
    finally:
        trainer.release()


def score(net: Network, X: Any, y: Any) -> float:
    """Accuracy for a classifier, R² (averaged over outputs, as scikit-learn) for a regressor."""
    y = to_host(y) if is_foreign_array(y) else y
    if net.classes is not None:
        index = _index_of(net.classes, y, "y")
        out = net.forward(X)
        return float(np.mean(to_host(net._class_index(out)) == index))
    out = to_host(net.forward(X))
    out = out.reshape(-1, net.n_outputs)
    T = net.loss_function.targets(y, net.n_outputs, np.float64)
    ss_res = ((T - out) ** 2).sum(axis=0)
    ss_tot = ((T - T.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return float(r2.mean())


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_sample_weight(w: Any, n: int) -> np.ndarray | None:
    if w is None:
        return None
    arr = np.asarray(w, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"sample_weight must have one weight per example, shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or arr.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return arr


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):  # one callback given alone
        return [callbacks]
    try:
        cbs = list(callbacks)
    except TypeError:
        raise TypeError(
            f"callbacks must be a list of deltaprop.callbacks.Callback objects, got {type(callbacks).__name__}"
        ) from None
    for cb in cbs:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be deltaprop.callbacks.Callback objects, got {type(cb).__name__}")
    return cbs
