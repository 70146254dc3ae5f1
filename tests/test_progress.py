"""Progress output: a rich bar with epoch, loss, val loss and ETA; one line per epoch at verbose=2."""

from __future__ import annotations

import io

import pytest

from deltaprop import MLP
from deltaprop.datasets import moons
from deltaprop.progress import EpochLogger, ProgressBar, progress_callback

pytest.importorskip("rich", reason="the progress bar needs rich: pip install 'deltaprop[progress]'")


def _fit(callbacks):
    X, y = moons(n_samples=100, seed=0)
    net = MLP([2, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    return net.fit(X, y, epochs=5, callbacks=callbacks, validation_split=0.2, verbose=0)


def test_progress_bar_shows_epoch_loss_and_validation():
    buf = io.StringIO()
    history = _fit([ProgressBar(5, stream=buf, force=True)])
    text = buf.getvalue()
    assert "epoch 5/5" in text
    assert f"loss {history.loss[-1]:.4g}" in text and f"val_loss {history.val_loss[-1]:.4g}" in text


def test_progress_bar_is_silent_when_not_a_terminal():
    buf = io.StringIO()  # not a tty
    bar = ProgressBar(5, stream=buf)
    _fit([bar])
    assert buf.getvalue() == "" and not bar.enabled
    assert progress_callback(1, 5) is None or progress_callback(1, 5).enabled  # pytest's output is not a terminal


def test_epoch_logger_writes_one_line_per_epoch_and_the_reason():
    buf = io.StringIO()
    _fit([EpochLogger(stream=buf)])
    lines = buf.getvalue().splitlines()
    assert len(lines) == 6 and lines[0].startswith("epoch 1: loss") and lines[-1].startswith("stopped: reached")
