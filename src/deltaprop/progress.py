"""Progress display during training: a rich progress bar on a terminal, plain lines on request, nothing otherwise.

The library never prints except through callbacks; this module holds the callbacks that print.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .callbacks import Callback

__all__ = ["ProgressBar", "EpochLogger", "progress_callback"]


def _fmt(logs: dict[str, Any]) -> str:
    parts = [f"loss {logs['loss']:.4g}"]
    for key, label in (("val_loss", "val_loss"), ("accuracy", "acc"), ("val_accuracy", "val_acc")):
        if logs.get(key) is not None:
            parts.append(f"{label} {logs[key]:.4g}")
    return ", ".join(parts)


class EpochLogger(Callback):
    """One line per epoch (``verbose=2``): epoch, loss, validation loss, accuracy, time."""

    def __init__(self, every: int = 1, stream: IO[str] | None = None) -> None:
        self.every = every
        self.stream = stream

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if (epoch + 1) % self.every == 0:
            print(f"epoch {epoch + 1}: {_fmt(logs)} ({logs['time']:.2f} s)", file=self.stream or sys.stdout)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        print(f"stopped: {logs['stop_reason']}", file=self.stream or sys.stdout)


class ProgressBar(Callback):
    """A live bar (rich, extra ``[progress]``): epoch, batch, loss, val loss, ETA. Silent when not on a terminal."""

    accepts_array_loss = True  # read (float()) at most 10 times a second, not after every batch

    def __init__(self, epochs: int, *, stream: IO[str] | None = None, force: bool = False) -> None:
        self.epochs = epochs
        self.stream = stream or sys.stderr
        self.enabled = force or bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress: Any = None
        self._task: Any = None
        self._last_refresh = 0.0

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        except ImportError:  # no rich: fall back to one line per epoch
            self._fallback = EpochLogger(stream=self.stream)
            return
        self._progress = Progress(
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.epochs, metrics="")

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last_refresh > 0.1:  # at most 10 refreshes a second, whatever the batch rate
            self._last_refresh = now
            n = self.trainer.n_batches
            self._progress.update(self._task, metrics=f"batch {batch + 1}/{n}  loss {float(logs['loss']):.4g}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=epoch + 1, metrics=_fmt(logs))
        elif getattr(self, "_fallback", None) is not None:
            self._fallback.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def uses_batch_hooks(self) -> bool:
        return self.enabled


def progress_callback(verbose: int, epochs: int) -> Callback | None:
    """The callback ``fit(verbose=…)`` adds: 1 → a progress bar on a terminal, 2 → a line per epoch, 0 → none."""
    if verbose >= 2:
        return EpochLogger()
    if verbose == 1:
        bar = ProgressBar(epochs)
        return bar if bar.enabled else None
    return None
