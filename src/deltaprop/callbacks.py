"""Callbacks: code that runs at fixed points of training, and may stop it.

A callback subclasses :class:`Callback` and overrides the hooks it needs (the rest do nothing). Before training,
``fit`` hands every callback the :class:`~deltaprop.train.Trainer` (``self.trainer``), through which it can read the
network, the optimiser and the history, and stop training with ``self.trainer.stop(reason)``. When ``fit`` returns, the
trainer lets go of the training data and of its callbacks (:meth:`~deltaprop.train.Trainer.release`): a callback
kept afterwards still reads the network, the optimiser state and the history through it, not ``trainer.X``.

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

import csv
import math
import os
import string
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .train import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "TerminateOnNaN",
    "StopAtLoss",
    "StopWhenAllCorrect",
    "TimeBudget",
    "ModelCheckpoint",
    "CSVLogger",
]

Logs = dict[str, Any]


class Callback:
    """Base class of every callback: hooks that do nothing until overridden."""

    trainer: Trainer
    #: True when ``on_batch_end`` can take ``logs["loss"]`` as a 0-d array of the training data's library (a number
    #: still on a GPU, read with ``float()`` only when needed): the training loop then need not wait for the device
    #: after every batch. False: always a Python float.
    accepts_array_loss: bool = False

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
        if not logs.get("resumed"):  # a resumed run keeps the state restored from the checkpoint
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


#: the per-epoch metrics, in the order :class:`CSVLogger` writes them (after ``epoch``)
_EPOCH_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "lr", "time")


class ModelCheckpoint(Callback):
    """Save the network (``net.save``, atomically) at the end of every ``every``-th epoch, or only when it improved.

    Args:
        path: the model file. It may hold placeholders filled in at each save: ``{epoch}`` (counted from 1, so
            ``{epoch:03d}`` for epoch 7 gives ``007``) and the epoch's metrics ``{loss}``, ``{val_loss}``,
            ``{accuracy}``, ``{val_accuracy}``, ``{lr}``, ``{time}`` with any format spec (``{val_loss:.4f}``).
            Missing folders are created. Without placeholders the same file is replaced each time.
        monitor: the metric that decides what "better" is with ``save_best_only``: ``val_loss`` (default; falls
            back to ``loss`` without validation data), ``loss``, ``val_accuracy`` (falls back to ``accuracy``),
            ``accuracy``. Lower is better for losses, higher for accuracies.
        save_best_only: save only when ``monitor`` is strictly better than at every earlier save, so the file
            always holds the best network seen so far.
        every: look at (and save) only every ``every``-th epoch (epochs ``every``, ``2·every``, … counted from 1).

    Read a saved network back with ``deltaprop.load(path)``. An epoch whose loss is NaN or infinite is never saved
    (training has diverged; the file keeps the last good network). The best value so far is kept in a training
    checkpoint (``fit(checkpoint=…)``), so a resumed run goes on comparing against it. ``best`` and
    ``best_epoch`` (counted from 0, as ``History.epoch``) hold the best value seen, ``last_saved`` the file last
    written.

    >>> best = ModelCheckpoint("best.safetensors", save_best_only=True)
    >>> every10 = ModelCheckpoint("run/epoch{epoch:04d}-loss{loss:.4f}.safetensors", every=10)
    """

    _FIELDS = ("epoch", *_EPOCH_METRICS)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        every: int = 1,
    ) -> None:
        if monitor not in ("val_loss", "loss", "val_accuracy", "accuracy"):
            raise ValueError(f"monitor must be val_loss, loss, val_accuracy or accuracy, got {monitor!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer (a number of epochs), got {every!r}")
        if not isinstance(save_best_only, bool):
            raise TypeError(f"save_best_only must be True or False, got {save_best_only!r}")
        template = os.fspath(path)
        if isinstance(template, bytes):
            template = os.fsdecode(template)
        self.fields = self._placeholders(template)
        self.path = template
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.every = every
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.last_saved: str | None = None
        self._key = monitor
        self._restored = False

    @classmethod
    def _placeholders(cls, template: str) -> set[str]:
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(
                f"ModelCheckpoint path {template!r} is not a valid template ({exc}); "
                "write a literal brace as {{ or }}"
            ) from None
        fields: set[str] = set()
        for _, field, _, _ in parsed:
            if field is None:
                continue
            name = field.split(".")[0].split("[")[0]
            if name not in cls._FIELDS:
                raise ValueError(
                    f"ModelCheckpoint path {template!r} has the placeholder {{{field}}}; use named placeholders among "
                    f"{', '.join('{' + f + '}' for f in cls._FIELDS)}"
                )
            fields.add(name)
        return fields

    def on_train_begin(self, logs: Logs) -> None:
        trainer = self.trainer
        has_val = trainer.validation is not None
        has_acc = trainer.labels is not None
        key = self.monitor
        if key.startswith("val_") and not has_val:
            key = key[4:]  # no validation data: watch the training metric
        if self.save_best_only and key.endswith("accuracy") and not has_acc:
            raise ValueError(
                f"ModelCheckpoint monitors {self.monitor}, but a regressor has no accuracy; monitor a loss"
            )
        unmeasured = sorted(
            f for f in self.fields if (f.startswith("val_") and not has_val) or (f.endswith("accuracy") and not has_acc)
        )
        if unmeasured:
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} uses {', '.join(unmeasured)}, which this run does not measure "
                "(no validation data or not a classifier)"
            )
        self._key = key
        if not self._restored:  # a fresh run; a resumed one keeps the best value from its checkpoint
            self.best, self.best_epoch, self.last_saved = None, None, None
        self._restored = False

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self._key.endswith("accuracy") else value < self.best

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if (epoch + 1) % self.every != 0:
            return
        loss = logs.get("loss")
        if loss is None or not math.isfinite(loss):
            return  # diverged: keep the last good file
        raw = logs.get(self._key)
        value = None if raw is None else float(raw)
        if value is not None and math.isfinite(value) and self._better(value):
            self.best, self.best_epoch = value, epoch
        elif self.save_best_only:
            return
        self.save(epoch, logs)

    def filename(self, epoch: int, logs: Logs) -> str:
        """The file for ``epoch`` (counted from 0) with metrics ``logs``: the path with its placeholders filled."""
        values: dict[str, Any] = {key: math.nan if logs.get(key) is None else logs[key] for key in _EPOCH_METRICS}
        return self.path.format(epoch=epoch + 1, **values)

    def save(self, epoch: int, logs: Logs) -> None:
        """Write the network now, to the file for ``epoch`` (counted from 0)."""
        target = self.filename(epoch, logs)
        folder = os.path.dirname(os.path.abspath(target))
        os.makedirs(folder, exist_ok=True)
        self.trainer.net.save(target)
        self.last_saved = target

    def get_state(self) -> dict[str, Any]:
        return {"path": self.path, "monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("path") != self.path or state.get("monitor") != self.monitor:
            return  # the state of another ModelCheckpoint of the run (checkpoints keep one per callback type)
        self.best = None if state.get("best") is None else float(state["best"])
        self.best_epoch = None if state.get("best_epoch") is None else int(state["best_epoch"])
        self._restored = True


class CSVLogger(Callback):
    """Write one row per epoch to a CSV file: ``epoch,loss,val_loss,accuracy,val_accuracy,lr,time``.

    The first line is that header; ``epoch`` counts from 0 as ``History.epoch`` does, numbers are written in full
    precision (reading the file back gives the ``History`` values exactly) and unmeasured metrics (no validation
    data, a regressor's accuracy) are empty. Each row is flushed as soon as it is written, so a run that is killed
    keeps every finished epoch's row.

    Args:
        path: the CSV file; its folder must exist.
        append: continue an existing file instead of starting a new one: rows are added below the ones there,
            without a second header (a missing or empty file gets the header first).

    A run resumed from a training checkpoint (``fit(resume=…)``) carries on the same table: with ``append=False``
    the new file starts with the rows of the epochs the checkpoint holds; with ``append=True`` the rows the
    interrupted run wrote after the checkpoint (the epochs the resumed run trains again) are dropped first.

    >>> logger = CSVLogger("training.csv")
    """

    COLUMNS = ("epoch", *_EPOCH_METRICS)

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        path = os.fspath(path)
        self.path = os.fsdecode(path) if isinstance(path, bytes) else path
        if not isinstance(append, bool):
            raise TypeError(f"append must be True or False, got {append!r}")
        self.append = append
        self._file: Any = None
        self._writer: Any = None

    @classmethod
    def _row(cls, epoch: int, logs: Logs) -> list[Any]:
        # float() first: a NumPy float32 would print its short float32 digits, not the value History holds
        return [int(epoch), *("" if logs.get(key) is None else repr(float(logs[key])) for key in _EPOCH_METRICS)]

    def on_train_begin(self, logs: Logs) -> None:
        self.close()
        trainer = self.trainer
        resumed_at = trainer.epoch if (trainer.epoch > 0 or trainer.history.epoch) else None
        has_rows = self.append and os.path.isfile(self.path) and os.path.getsize(self.path) > 0
        if has_rows and resumed_at is not None:
            self._drop_rows_from(resumed_at)
        fh = open(self.path, "a" if has_rows else "w", newline="", encoding="utf-8")  # closed at the end of training
        self._file, self._writer = fh, csv.writer(fh)
        if has_rows:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0 and not self._ends_with_newline():
                fh.write("\r\n")  # the file's last row was cut short: start ours on a line of its own
        else:
            self._writer.writerow(self.COLUMNS)
            if resumed_at is not None:  # a fresh file for a resumed run: the epochs before the checkpoint first
                history = trainer.history
                for i, epoch in enumerate(history.epoch):
                    self._writer.writerow(self._row(epoch, {k: getattr(history, k)[i] for k in _EPOCH_METRICS}))
        fh.flush()

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) in (b"\n", b"\r")

    def _drop_rows_from(self, epoch: int) -> None:
        """Remove the trailing rows whose epoch is ``epoch`` or later (written after the checkpoint we resume)."""
        with open(self.path, newline="", encoding="utf-8") as fh:
            lines = fh.read().splitlines(keepends=True)
        keep = len(lines)
        while keep > 1:
            first = lines[keep - 1].split(",", 1)[0].strip()
            try:
                row_epoch = int(first)
            except ValueError:
                break  # the header or a row we did not write: stop there
            if row_epoch < epoch:
                break
            keep -= 1
        if keep < len(lines):
            from .safefile import atomic_write_bytes

            atomic_write_bytes(self.path, "".join(lines[:keep]).encode("utf-8"))

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self._writer is None:
            return
        self._writer.writerow(self._row(epoch, logs))
        self._file.flush()

    def on_train_end(self, logs: Logs) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (training's end does this)."""
        if self._file is not None:
            self._file.close()
        self._file, self._writer = None, None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
