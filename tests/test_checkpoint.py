"""Checkpoint and resume lose nothing: a run killed with SIGKILL and resumed ends bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deltaprop
from deltaprop import MLP
from deltaprop.io import ModelFileError, load_checkpoint

TRAIN = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from deltaprop import MLP, optim
    from deltaprop.callbacks import Callback
    from deltaprop.datasets import moons

    X, y = moons(n_samples=300, noise=0.2, seed=0)
    kill_at = int(sys.argv[2])

    class KillAt(Callback):
        def on_batch_end(self, batch, logs):
            self.n = getattr(self, "n", 0) + 1
            if self.n == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, no atexit: as hard a stop as there is

    net = MLP([2, 16, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=1)
    fused = sys.argv[3] == "sgd-momentum-fused"  # SGD made inside the backward pass (deltaprop.fused)
    numpy_only = sys.argv[3].endswith("-numpy")  # not the compiled step (deltaprop.compiled_step)
    optimizer = optim.SGD(lr=0.01, momentum=0.9) if fused else sys.argv[3].removesuffix("-numpy")
    history = net.fit(
        X, y, epochs=6, batch_size=16, optimizer=optimizer, lr=0.01, seed=5, validation_split=0.2,
        patience=50, schedule=None if sys.argv[3].startswith("adam") else "step", checkpoint=sys.argv[1],
        checkpoint_every=7, callbacks=[KillAt()] if kill_at else [], verbose=0,
        trainer_options={"fused_update": fused, "compiled_step": False if numpy_only else None},
    )
    np.save(sys.argv[1] + ".theta.npy", net.theta)
    """
)


def _train(tmp_path, ckpt, kill_at, optimizer):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(ckpt), str(kill_at), optimizer],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "sgd-momentum-fused", "adam-numpy"])
def test_resume_after_sigkill_mid_epoch_is_bit_identical(tmp_path, optimizer):
    full = _train(tmp_path, tmp_path / "full.ckpt", 0, optimizer)
    assert full.returncode == 0, full.stderr
    reference = np.load(str(tmp_path / "full.ckpt") + ".theta.npy")

    killed = _train(tmp_path, tmp_path / "run.ckpt", 40, optimizer)  # 15 batches an epoch: killed inside epoch 3
    assert killed.returncode == -signal.SIGKILL
    arrays, state = load_checkpoint(tmp_path / "run.ckpt")
    assert state["epoch"] == 2 and 0 < state["batch"] < 15  # the last checkpoint was made mid-epoch

    resume_script = (tmp_path / "train.py").read_text().replace("checkpoint=sys.argv[1],", "resume=sys.argv[1],")
    (tmp_path / "train.py").write_text(resume_script)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run(
        [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "run.ckpt"), "0", optimizer],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    final = np.load(str(tmp_path / "run.ckpt") + ".theta.npy")
    assert final.tobytes() == reference.tobytes()


def test_checkpoint_holds_history_and_model(tmp_path):
    X, y = deltaprop.datasets.moons(n_samples=100, seed=0)
    net = MLP([2, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    history = net.fit(X, y, epochs=3, checkpoint=tmp_path / "c", verbose=0)
    arrays, state = load_checkpoint(tmp_path / "c")
    assert state["epoch"] == 3 and state["batch"] == 0
    assert state["history"]["loss"] == history.loss
    assert arrays["theta"].tobytes() == net.theta.tobytes()
    with pytest.raises(ModelFileError, match="not a deltaprop-model file"):
        deltaprop.load(tmp_path / "c")  # a checkpoint is not a model file: say so


def test_resume_with_other_data_is_refused(tmp_path):
    X, y = deltaprop.datasets.moons(n_samples=100, seed=0)
    net = MLP([2, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=1, checkpoint=tmp_path / "c", verbose=0)
    with pytest.raises(ValueError, match="resume with the same data"):
        net.fit(X[:50], y[:50], epochs=2, resume=tmp_path / "c", verbose=0)


def test_resume_from_a_missing_file_says_so(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        MLP([2, 1], seed=0).fit([[0.0, 1.0], [1.0, 0.0]], [0.0, 1.0], resume=tmp_path / "nope", verbose=0)


def test_early_stopping_state_survives_a_resume(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (rng.random(80) < 0.5).astype(int)  # noise: validation loss soon stops improving

    def make():
        return MLP([4, 32, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)

    kwargs = dict(lr=0.02, seed=3, validation_split=0.25, patience=4, verbose=0)
    full = make().fit(X, y, epochs=200, **kwargs)
    stopped_at = full.epochs_run
    assert full.stop_reason.startswith("early stopping") and stopped_at >= 4
    part = make()
    part.fit(X, y, epochs=stopped_at - 2, checkpoint=tmp_path / "c", **kwargs)  # the wait counter is > 0 here
    resumed = part.fit(X, y, epochs=200, resume=tmp_path / "c", **kwargs)
    assert resumed.epochs_run == stopped_at and resumed.stop_reason == full.stop_reason
