"""Callbacks: code that runs at fixed points of training, and may stop it.

A callback subclasses :class:`Callback` and overrides the hooks it needs (the rest do nothing). Before training,
``fit`` hands every callback the :class:`~deltaprop.train.Trainer` (``self.trainer``), through which it can read the
network, the optimiser and the history, and stop training with ``self.trainer.stop(reason)``.

Hooks, in order: ``on_train_begin(logs)``, then per epoch ``on_epoch_begin(epoch, logs)``, per batch
``on_batch_begin(batch, logs)`` / ``on_batch_end(batch, logs)`` (``logs["loss"]`` is the batch's loss), then
``on_epoch_end(epoch, logs)`` with the epoch's ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``, ``lr``,
``time``; finally ``on_train_end(logs)``. Epochs and batches count from 0.

A callback whose state must survive a checkpoint returns it from ``get_state()`` (plain JSON data) and takes it
back in ``set_state(state)``.

>>> class PrintLoss(Callback):
...     def on_epoch_end(self, epoch, logs):
...         print(f"epoch {epoch}: loss {logs['loss']:.3f}")
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .train import Trainer

__all__ = ["Callback", "EarlyStopping", "TerminateOnNaN", "StopAtLoss", "StopWhenAllCorrect", "TimeBudget"]

Logs = dict[str, Any]


class Callback:
    """Base class of every callback: hooks that do nothing until overridden."""

    trainer: Trainer

    def set_trainer(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: Logs) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        """Called at the start of every epoch."""

    def on_batch_begin(self, batch: int, logs: Logs) -> None:
        """Called before every batch (only if overridden: batch hooks cost time on the hot path)."""

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        """Called after every batch's update, with ``logs["loss"]`` the batch's loss before the update."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """Called after every epoch, with the epoch's metrics."""

    def on_train_end(self, logs: Logs) -> None:
        """Called once when training stops, for whatever reason (``logs["stop_reason"]``)."""

    def get_state(self) -> dict[str, Any]:
        """State to keep in a checkpoint (JSON data)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned."""

    def uses_batch_hooks(self) -> bool:
        cls = type(self)
        return cls.on_batch_begin is not Callback.on_batch_begin or cls.on_batch_end is not Callback.on_batch_end


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``tol`` for ``patience`` epochs in a row.

    Args:
        monitor: the epoch metric to watch: ``val_loss`` (default; falls back to ``loss`` without validation data),
            ``loss``, ``val_accuracy``, ``accuracy``.
        patience: epochs without improvement before stopping.
        tol: an improvement smaller than this does not count (scikit-learn's ``tol``; Keras's ``min_delta``).
        restore_best_weights: when stopping, put back the weights of the best epoch.

    >>> stopper = EarlyStopping(patience=5, restore_best_weights=True)
    """

    def __init__(
        self, monitor: str = "val_loss", *, patience: int = 10, tol: float = 1e-4, restore_best_weights: bool = False
    ) -> None:
        if monitor not in ("val_loss", "loss", "val_accuracy", "accuracy"):
            raise ValueError(f"monitor must be val_loss, loss, val_accuracy or accuracy, got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if not isinstance(tol, (int, float)) or tol < 0:
            raise ValueError(f"tol must be a non-negative number, got {tol!r}")
        self.monitor = monitor
        self.patience = patience
        self.tol = float(tol)
        self.restore_best_weights = restore_best_weights
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0
        self.best_theta: np.ndarray | None = None

    def _value(self, logs: Logs) -> float | None:
        key = self.monitor
        if logs.get(key) is None and key.startswith("val_"):
            key = key[4:]  # no validation data: watch the training metric
        value = logs.get(key)
        if value is None:
            return None
        return -float(value) if key.endswith("accuracy") else float(value)  # lower is better

    def on_train_begin(self, logs: Logs) -> None:
        self.best, self.best_epoch, self.wait, self.best_theta = math.inf, -1, 0, None

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        value = self._value(logs)
        if value is None:
            return
        if value < self.best - self.tol:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_theta = self.trainer.net.theta.copy()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.trainer.stop(
                f"early stopping: {self.monitor} did not improve by more than {self.tol:g} for {self.patience} epochs"
            )

    def on_train_end(self, logs: Logs) -> None:
        if self.restore_best_weights and self.best_theta is not None:
            self.trainer.net.theta[...] = self.best_theta
            self.trainer.history.best_epoch = self.best_epoch

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = float(state["best"]), int(state["best_epoch"]), int(state["wait"])


class TerminateOnNaN(Callback):
    """Stop as soon as the loss or any weight is NaN or infinite, warn, and put back the last finite weights.

    Divergence is never silent: ``History.stop_reason`` says what happened and the network keeps the weights of the
    last epoch that ended finite.
    """

    def __init__(self) -> None:
        self._last_good: np.ndarray | None = None

    def on_train_begin(self, logs: Logs) -> None:
        self._last_good = self.trainer.net.theta.copy()

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        theta = self.trainer.net.theta
        if not math.isfinite(logs.get("loss", 0.0)) or not np.all(np.isfinite(theta)):
            self._diverged(f"the loss or the weights became NaN/infinite in epoch {epoch + 1}")
        else:
            self._last_good = theta.copy()

    def _diverged(self, what: str) -> None:
        if self.trainer.stop_training:
            return
        reason = f"diverged: {what}; try a smaller learning rate (weights restored to the last finite epoch)"
        if self._last_good is not None:
            self.trainer.net.theta[...] = self._last_good
        warnings.warn(reason, RuntimeWarning, stacklevel=4)
        self.trainer.stop(reason)


class StopAtLoss(Callback):
    """Stop once the epoch's training loss is at or below ``target``."""

    def __init__(self, target: float) -> None:
        if not isinstance(target, (int, float)) or isinstance(target, bool) or not math.isfinite(target):
            raise ValueError(f"stop_at_loss must be a finite number, got {target!r}")
        self.target = float(target)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if logs["loss"] <= self.target:
            self.trainer.stop(f"loss {logs['loss']:.6g} reached the target {self.target:g}")


class StopWhenAllCorrect(Callback):
    """Stop once every training example is classified correctly (the seed's criterion)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if logs.get("train_all_correct"):
            self.trainer.stop("all training examples classified correctly")


class TimeBudget(Callback):
    """Stop after the epoch during which ``seconds`` of training time have passed."""

    def __init__(self, seconds: float) -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0:
            raise ValueError(f"time_limit must be a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if logs["time"] >= self.seconds:
            self.trainer.stop(f"time budget of {self.seconds:g} s used up")
