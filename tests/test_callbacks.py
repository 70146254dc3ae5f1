"""ModelCheckpoint and CSVLogger, on real training runs: the files they leave are what History says happened."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deltaprop
from deltaprop import MLP
from deltaprop.callbacks import Callback, CSVLogger, ModelCheckpoint

COLUMNS = ["epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "time"]


@pytest.fixture(scope="module")
def moons():
    return deltaprop.datasets.moons(n_samples=120, noise=0.25, seed=0)


def _classifier(seed=0):
    return MLP([2, 8, 1], activation="tanh", output_activation="sigmoid", loss="binary_cross_entropy", seed=seed)


class Recorder(Callback):
    """Keeps a copy of the weights at the end of every epoch."""

    def __init__(self):
        self.thetas = []

    def on_epoch_end(self, epoch, logs):
        self.thetas.append(self.trainer.net.theta.copy())


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _assert_csv_equals_history(path, history):
    rows = _read_csv(path)
    assert rows[0] == COLUMNS
    assert len(rows) == 1 + history.epochs_run
    for i, row in enumerate(rows[1:]):
        assert int(row[0]) == history.epoch[i]
        for key, cell in zip(COLUMNS[1:], row[1:]):
            expected = getattr(history, key)[i]
            assert (cell == "") if expected is None else (float(cell) == expected), (i, key, cell, expected)


# ------------------------------------------------------------------------------------------ ModelCheckpoint
def test_checkpoint_every_epoch_with_placeholders(tmp_path, moons):
    X, y = moons
    net, rec = _classifier(), Recorder()
    template = str(tmp_path / "run" / "e{epoch:02d}-loss{loss:.4f}-acc{accuracy:.2f}.safetensors")
    cb = ModelCheckpoint(template)
    history = net.fit(X, y, epochs=4, lr=0.05, seed=0, callbacks=[cb, rec], verbose=0)
    expected = [f"e{e + 1:02d}-loss{history.loss[e]:.4f}-acc{history.accuracy[e]:.2f}.safetensors" for e in range(4)]
    assert sorted(os.listdir(tmp_path / "run")) == sorted(expected)  # the folder was created
    for e, name in enumerate(expected):
        loaded = deltaprop.load(tmp_path / "run" / name)
        np.testing.assert_array_equal(loaded.theta, rec.thetas[e])
        assert loaded.classes.tolist() == [0, 1]
    assert cb.last_saved == str(tmp_path / "run" / expected[-1])


def test_checkpoint_every_n_epochs_one_file_replaced(tmp_path, moons):
    X, y = moons
    net, rec = _classifier(), Recorder()
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, epoch, logs):
            seen.append(os.path.exists(tmp_path / "m.safetensors"))

    cb = ModelCheckpoint(tmp_path / "m.safetensors", every=3)
    net.fit(X, y, epochs=7, lr=0.05, seed=0, callbacks=[cb, rec, Watch()], verbose=0)
    assert seen == [False, False, True, True, True, True, True]
    np.testing.assert_array_equal(deltaprop.load(tmp_path / "m.safetensors").theta, rec.thetas[5])  # epoch 6, not 7
    assert os.listdir(tmp_path) == ["m.safetensors"]  # atomic writes leave no temporaries


def test_save_best_only_holds_the_best_epoch(tmp_path, moons):
    X, y = moons
    net, rec = _classifier(), Recorder()
    cb = ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    # a learning rate too high for SGD on single examples: the validation loss goes up and down
    history = net.fit(
        X, y, epochs=12, optimizer="sgd", lr=0.5, batch_size=1, validation_split=0.3, seed=2, callbacks=[cb, rec],
        verbose=0,
    )  # fmt: skip
    best = int(np.argmin(history.val_loss))
    assert best != history.epochs_run - 1, "the test wants a run whose best epoch is not the last"
    assert cb.best == history.val_loss[best] and cb.best_epoch == best
    np.testing.assert_array_equal(deltaprop.load(tmp_path / "best.safetensors").theta, rec.thetas[best])
    assert not np.array_equal(rec.thetas[best], net.theta)


def test_best_only_falls_back_to_loss_without_validation(tmp_path, moons):
    X, y = moons
    net, rec = _classifier(), Recorder()
    cb = ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)  # monitor="val_loss"
    history = net.fit(X, y, epochs=10, optimizer="sgd", lr=2.0, batch_size=1, seed=1, callbacks=[cb, rec], verbose=0)
    best = int(np.argmin(history.loss))
    assert cb.best == history.loss[best] and cb.best_epoch == best
    np.testing.assert_array_equal(deltaprop.load(tmp_path / "best.safetensors").theta, rec.thetas[best])


def test_accuracy_monitor_higher_is_better(tmp_path, moons):
    X, y = moons
    net, rec = _classifier(), Recorder()
    cb = ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_accuracy", save_best_only=True)
    history = net.fit(
        X, y, epochs=12, optimizer="sgd", lr=0.5, batch_size=1, validation_split=0.3, seed=2, callbacks=[cb, rec],
        verbose=0,
    )  # fmt: skip
    best = int(np.argmax(history.val_accuracy))  # the first epoch that reached the maximum: later ties do not save
    assert cb.best == max(history.val_accuracy) and cb.best_epoch == best
    np.testing.assert_array_equal(deltaprop.load(tmp_path / "best.safetensors").theta, rec.thetas[best])


def test_best_value_survives_resume(tmp_path, moons):
    X, y = moons
    kwargs = dict(epochs=10, optimizer="sgd", lr=2.0, batch_size=8, validation_split=0.3, seed=3, verbose=0)
    straight = ModelCheckpoint(tmp_path / "straight.safetensors", save_best_only=True)
    h_straight = _classifier().fit(X, y, callbacks=[straight], **kwargs)

    first = ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    _classifier().fit(X, y, callbacks=[first], checkpoint=tmp_path / "ck", **{**kwargs, "epochs": 5})
    second = ModelCheckpoint(tmp_path / "best.safetensors", save_best_only=True)
    h = _classifier().fit(X, y, callbacks=[second], resume=tmp_path / "ck", **kwargs)
    assert h.val_loss == h_straight.val_loss
    assert (second.best, second.best_epoch) == (straight.best, straight.best_epoch)
    assert second.best == min(h.val_loss)
    np.testing.assert_array_equal(
        deltaprop.load(tmp_path / "best.safetensors").theta, deltaprop.load(tmp_path / "straight.safetensors").theta
    )


def test_checkpoint_never_saves_a_diverged_epoch(tmp_path, moons):
    X, y = moons
    net, rec = _classifier(), Recorder()

    class Blowup(Callback):  # weights so large that epoch 4's loss is not finite
        def on_epoch_begin(self, epoch, logs):
            if epoch == 3:
                self.trainer.net.theta[:] = np.inf

    cb = ModelCheckpoint(str(tmp_path / "m{epoch}.safetensors"))
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = net.fit(X, y, epochs=6, seed=0, callbacks=[Blowup(), cb, rec], verbose=0)
    assert history.stop_reason.startswith("diverged") and history.epochs_run == 4
    assert sorted(os.listdir(tmp_path)) == ["m1.safetensors", "m2.safetensors", "m3.safetensors"]
    np.testing.assert_array_equal(deltaprop.load(tmp_path / "m3.safetensors").theta, rec.thetas[2])


def test_checkpoint_arguments_are_checked(tmp_path, moons):
    with pytest.raises(ValueError, match="monitor"):
        ModelCheckpoint(tmp_path / "m", monitor="acc")
    for every in (0, 1.5, True):
        with pytest.raises(ValueError, match="every"):
            ModelCheckpoint(tmp_path / "m", every=every)
    with pytest.raises(ValueError, match="placeholder"):
        ModelCheckpoint(str(tmp_path / "m{step}"))
    with pytest.raises(ValueError, match="placeholder"):
        ModelCheckpoint(str(tmp_path / "m{}"))
    with pytest.raises(ValueError, match="template"):
        ModelCheckpoint(str(tmp_path / "m{epoch"))
    X, y = moons
    with pytest.raises(ValueError, match="val_loss"):  # refused before the first epoch: no validation data
        _classifier().fit(X, y, epochs=2, callbacks=[ModelCheckpoint(str(tmp_path / "{val_loss}"))], verbose=0)
    regressor = MLP([2, 3, 1], activation="tanh", output_activation="identity", seed=0)
    with pytest.raises(ValueError, match="accuracy"):
        regressor.fit(
            X, y.astype(float), epochs=2, task="regression", verbose=0,
            callbacks=[ModelCheckpoint(tmp_path / "m", monitor="accuracy", save_best_only=True)],
        )  # fmt: skip
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------------------------ CSVLogger
def test_csv_equals_history(tmp_path, moons):
    X, y = moons
    history = _classifier().fit(
        X, y, epochs=6, lr=0.05, validation_split=0.25, seed=0, callbacks=[CSVLogger(tmp_path / "log.csv")], verbose=0
    )
    _assert_csv_equals_history(tmp_path / "log.csv", history)


def test_csv_leaves_unmeasured_metrics_empty(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = X.sum(axis=1)
    net = MLP([2, 4, 1], activation="tanh", output_activation="identity", dtype="float32", seed=0)
    history = net.fit(X, y, epochs=4, seed=0, callbacks=[CSVLogger(tmp_path / "log.csv")], verbose=0)
    rows = _read_csv(tmp_path / "log.csv")
    assert all(row[2] == row[3] == row[4] == "" for row in rows[1:])
    _assert_csv_equals_history(tmp_path / "log.csv", history)


def test_csv_rows_are_on_disk_at_each_epoch_end(tmp_path, moons):
    X, y = moons
    counts = []

    class Count(Callback):
        def on_epoch_end(self, epoch, logs):
            counts.append(len(_read_csv(tmp_path / "log.csv")))

    _classifier().fit(X, y, epochs=4, callbacks=[CSVLogger(tmp_path / "log.csv"), Count()], verbose=0)
    assert counts == [2, 3, 4, 5]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_csv_keeps_its_rows_when_the_process_is_killed(tmp_path):
    script = textwrap.dedent(
        """
        import os, signal, sys
        import deltaprop
        from deltaprop.callbacks import Callback, CSVLogger

        class Kill(Callback):
            def on_epoch_end(self, epoch, logs):
                if epoch == 2:
                    os.kill(os.getpid(), signal.SIGKILL)

        X, y = deltaprop.datasets.moons(n_samples=60, seed=0)
        net = deltaprop.MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
        net.fit(X, y, epochs=10, callbacks=[CSVLogger(sys.argv[1]), Kill()], verbose=0)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "log.csv")], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    rows = _read_csv(tmp_path / "log.csv")
    assert rows[0] == COLUMNS and [r[0] for r in rows[1:]] == ["0", "1", "2"]


def test_csv_overwrites_by_default_and_appends_on_request(tmp_path, moons):
    X, y = moons
    path = tmp_path / "log.csv"
    path.write_text("old content\n")
    h1 = _classifier().fit(X, y, epochs=3, seed=0, callbacks=[CSVLogger(path)], verbose=0)
    _assert_csv_equals_history(path, h1)
    h2 = _classifier(1).fit(X, y, epochs=2, seed=1, callbacks=[CSVLogger(path, append=True)], verbose=0)
    rows = _read_csv(path)
    assert [r[0] for r in rows] == ["epoch", "0", "1", "2", "0", "1"]  # one header
    assert [float(r[1]) for r in rows[4:]] == h2.loss


def test_csv_append_to_a_missing_or_cut_file(tmp_path, moons):
    X, y = moons
    path = tmp_path / "new.csv"
    history = _classifier().fit(X, y, epochs=2, callbacks=[CSVLogger(path, append=True)], verbose=0)
    _assert_csv_equals_history(path, history)  # a missing file gets its header
    with open(path, "rb+") as fh:  # the last row lost its line end
        fh.seek(-2, os.SEEK_END)
        fh.truncate()
    _classifier().fit(X, y, epochs=2, callbacks=[CSVLogger(path, append=True)], verbose=0)
    rows = _read_csv(path)
    assert [r[0] for r in rows] == ["epoch", "0", "1", "0", "1"] and all(len(r) == 7 for r in rows)


@pytest.mark.parametrize("append", [False, True])
def test_csv_continues_a_resumed_run(tmp_path, moons, append):
    X, y = moons
    kwargs = dict(epochs=6, lr=0.05, batch_size=16, validation_split=0.2, seed=4, verbose=0)
    path, ck, ck_at_3 = tmp_path / "log.csv", tmp_path / "ck", tmp_path / "ck3"

    class KeepCheckpointAfter3(Callback):  # the checkpoint as it stood after epoch 3 (written after the hooks)
        def on_epoch_begin(self, epoch, logs):
            if epoch == 3:
                ck_at_3.write_bytes(ck.read_bytes())

    # the interrupted run got to epoch 5 of 6, but its last checkpoint we keep is from epoch 3
    _classifier().fit(
        X, y, callbacks=[CSVLogger(path), KeepCheckpointAfter3()], checkpoint=ck, **{**kwargs, "epochs": 5}
    )
    assert len(_read_csv(path)) == 6
    history = _classifier().fit(X, y, callbacks=[CSVLogger(path, append=append)], resume=ck_at_3, **kwargs)
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    _assert_csv_equals_history(path, history)


def test_csv_logger_arguments(tmp_path):
    with pytest.raises(TypeError, match="append"):
        CSVLogger(tmp_path / "x.csv", append="yes")


# ------------------------------------------------------------------------------------------ the callbacks argument
def test_callbacks_none_or_one_alone_are_accepted(moons):
    """``callbacks=None`` trains as with no callbacks; one callback given without a list runs as ``[cb]``."""
    X, y = moons
    plain = _classifier().fit(X, y, epochs=3, lr=0.05, seed=0, verbose=0)
    with_none = _classifier().fit(X, y, epochs=3, lr=0.05, seed=0, verbose=0, callbacks=None)
    assert with_none.loss == plain.loss
    rec = Recorder()
    _classifier().fit(X, y, epochs=3, lr=0.05, seed=0, verbose=0, callbacks=rec)
    assert len(rec.thetas) == 3


@pytest.mark.parametrize("bad, name", [(3, "int"), ([Recorder(), "log"], "str")])
def test_callbacks_that_are_not_callbacks_are_refused(moons, bad, name):
    X, y = moons
    with pytest.raises(TypeError, match=f"callbacks must be .*Callback objects, got {name}"):
        _classifier().fit(X, y, epochs=1, verbose=0, callbacks=bad)


def test_sklearn_estimator_takes_callbacks_none_or_one_alone(moons):
    pytest.importorskip("sklearn")
    from deltaprop.sklearn import MLPClassifier

    X, y = moons
    rec = Recorder()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, callbacks=rec).fit(X, y)
    assert len(rec.thetas) == 2
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, callbacks=None).fit(X, y)
    with pytest.raises(TypeError, match="got int"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, callbacks=3).fit(X, y)
