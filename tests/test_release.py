"""After ``fit`` returns, the memory of the run comes back at once, not at Python's next full garbage collection.

Each callback holds the trainer and the trainer holds its callbacks; ``Trainer.release`` breaks that cycle and drops the
run's data. These tests run with the garbage collector off, so that only reference counting can free anything.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from deltaprop import MLP
from deltaprop.callbacks import Callback


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Reference counting only: a reference cycle left behind stays alive for the rest of the test."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Watcher(Callback):
    """Keeps weak references to the run's trainer and data, taken while training."""

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.trainer_ref = weakref.ref(self.trainer)
        self.X_ref = weakref.ref(self.trainer.X)
        self.X_dtype = self.trainer.X.dtype
        self.T_ref = weakref.ref(self.trainer.T)


def _data(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(dtype)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def _net() -> Any:
    return MLP([6, 8, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)


@pytest.mark.parametrize(
    "options",
    [
        {},  # the compiled step (or the fused NumPy step where the extension is missing)
        {"trainer_options": {"compiled_step": False, "fused_update": False}},  # the plain NumPy loop
        {"optimizer": "adam", "validation_split": 0.2},
    ],
    ids=["default", "numpy-loop", "adam-validation"],
)
def test_a_network_fit_then_deleted_is_freed_without_garbage_collection(no_gc: None, options: dict) -> None:
    X, y = _data()
    net = _net()
    watcher = Watcher()
    history = net.fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[watcher], **options)
    assert len(history.loss) == 2
    assert watcher.trainer_ref() is not None  # the caller's callback keeps the (emptied) trainer ...
    assert watcher.T_ref() is None  # ... but not the run's one-hot targets
    trainer_ref = watcher.trainer_ref
    del watcher
    assert trainer_ref() is None, "the trainer outlived fit and its callbacks: a reference cycle holds it"
    net_ref = weakref.ref(net)
    del net
    assert net_ref() is None, "the network outlived fit: a reference cycle holds it"


def test_a_callback_the_caller_keeps_still_reads_the_results(no_gc: None) -> None:
    X, y = _data()
    net = _net()
    watcher = Watcher()
    history = net.fit(X, y, epochs=3, batch_size=50, verbose=0, callbacks=[watcher])
    trainer = watcher.trainer
    assert trainer.net is net
    assert trainer.history is history and trainer.epoch == 3
    assert trainer.X is None and trainer.T is None and trainer.callbacks == []


def test_fit_converts_x_and_the_copy_goes_with_the_run(no_gc: None) -> None:
    X, y = _data(np.float64)  # float64 rows for a float32 network: fit trains on a converted copy
    net = _net()
    watcher = Watcher()
    net.fit(X, y, epochs=1, batch_size=32, verbose=0, callbacks=[watcher], trainer_options={"compiled_step": False})
    assert watcher.X_dtype == np.float32  # fit trained on a float32 copy ...
    assert watcher.X_ref() is None  # ... and it is gone


def test_sklearn_fit_drops_its_copy_of_x_and_its_trainer(no_gc: None) -> None:
    pytest.importorskip("sklearn")
    from deltaprop.sklearn import MLPClassifier

    X, y = _data(np.float64)
    watcher = Watcher()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, callbacks=[watcher])
    with pytest.warns(Warning):  # (ConvergenceWarning: 3 epochs)
        clf.fit(X, y)
    assert watcher.X_dtype == np.float32
    assert watcher.X_ref() is None, "the float32 copy of X outlived fit"
    assert watcher.T_ref() is None
    assert watcher.trainer.callbacks == []
    assert clf.predict(X).shape == (300,)
    assert all(layer.inputs is None and layer.out is None for layer in clf.network_.layers)
    clf.partial_fit(X, y)  # training carries on from the kept optimiser state
    assert len(clf.loss_curve_) == 4 and clf.t_ == 4 * 300
