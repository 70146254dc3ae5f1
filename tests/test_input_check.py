"""NaN and ±inf in X: fit refuses them with the same error whether it checks X before training or as it reads it.

When nothing but the training loop sees a run (no callbacks of the caller, no checkpoint, one process), ``fit``
does not read all of X once more before training: the compiled step checks each batch of the first epoch as it
gathers it. A bad value then stops training at its batch, the weights are put back as they were, and the error names
the first bad value of X in row order, exactly as the check before training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import deltaprop
from deltaprop import MLP, native, train
from deltaprop.callbacks import Callback
from deltaprop.compiled_step import CompiledBackprop

needs_compiled = pytest.mark.skipif(
    CompiledBackprop.for_network(MLP([2, 2], output_activation="softmax", loss="cross_entropy")) is None,
    reason="the compiled step needs deltaprop's C extension with BLAS",
)


def data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)


def classifier() -> deltaprop.Network:
    return MLP([6, 8, 3], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the compiled steps made (each call of CompiledBackprop.step that returned)."""
    made: list[int] = []
    real = CompiledBackprop.step

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = real(self, *args, **kwargs)
        made.append(1)
        return out

    monkeypatch.setattr(CompiledBackprop, "step", counted)
    return made


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the passes over a whole X that look for NaN/±inf (deltaprop.network._check_finite on X)."""
    calls: list[int] = []
    real = train._check_finite

    def counted(rows: np.ndarray, name: str, first_row: int = 0) -> None:
        calls.append(rows.shape[0])
        real(rows, name, first_row)

    monkeypatch.setattr(train, "_check_finite", counted)
    monkeypatch.setattr(deltaprop.network, "_check_finite", counted)
    return calls


@needs_compiled
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_bad_value_late_in_the_first_epoch_stops_there_and_puts_the_weights_back(
    optimizer: str, steps: list[int]
) -> None:
    X, y = data()
    X[390, 4] = np.inf  # in the last batch (not shuffled: rows in order)
    X[395, 0] = np.nan
    net = classifier()
    before = net.theta.copy()
    with pytest.raises(ValueError, match=r"X contains NaN or infinite values \(the first at row 390, column 4: inf\)"):
        net.fit(X, y, epochs=3, batch_size=40, optimizer=optimizer, shuffle=False, verbose=0)
    assert len(steps) == 9  # nine batches were trained before the tenth was refused
    np.testing.assert_array_equal(net.theta, before)


@needs_compiled
def test_shuffled_batches_name_the_first_bad_value_in_row_order(steps: list[int]) -> None:
    X, y = data()
    X[[17, 211, 388], [1, 2, 3]] = [np.nan, -np.inf, np.nan]
    net = classifier()
    before = net.theta.copy()
    with pytest.raises(ValueError, match=r"the first at row 17, column 1: nan\)"):
        net.fit(X, y, epochs=2, batch_size=16, seed=3, verbose=0)
    np.testing.assert_array_equal(net.theta, before)


@needs_compiled
def test_no_pass_over_x_before_training_when_the_loop_checks_it(full_checks: list[int], steps: list[int]) -> None:
    X, y = data()
    ref, net = classifier(), classifier()
    net.fit(X, y, epochs=2, batch_size=32, seed=0, verbose=0)
    assert full_checks == [] and len(steps) == 26
    ref.fit(X, y, epochs=2, batch_size=32, seed=0, verbose=0, callbacks=[Callback()])  # checked before training
    assert full_checks == [400]
    np.testing.assert_array_equal(net.theta, ref.theta)  # the same training either way


def test_the_numpy_step_checks_x_before_training(full_checks: list[int], steps: list[int]) -> None:
    X, y = data()
    options = {"compiled_step": False}
    classifier().fit(X, y, epochs=1, batch_size=32, verbose=0, trainer_options=options)
    assert full_checks == [400] and steps == []  # one pass over X, before the first step
    X[250, 2] = np.nan
    net = classifier()
    before = net.theta.copy()
    with pytest.raises(ValueError, match=r"the first at row 250, column 2: nan\)"):
        net.fit(X, y, epochs=1, batch_size=32, verbose=0, trainer_options=options)
    np.testing.assert_array_equal(net.theta, before)


@needs_compiled
def test_a_run_that_ends_within_the_first_epoch_still_refuses_bad_rows_it_never_read(steps: list[int]) -> None:
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(200, 3)).astype(np.float32), rng.normal(size=(200, 1)).astype(np.float32)
    X[199, 1] = np.nan  # the last row; training diverges long before it (lr far too large)
    net = MLP([3, 16, 1], activation="relu", output_activation="identity", loss="mse", seed=0)
    before = net.theta.copy()
    with pytest.raises(ValueError, match=r"the first at row 199, column 1: nan\)"):
        with pytest.warns(RuntimeWarning, match="diverged"):  # (the warning comes first, then the error)
            net.fit(X, Y, epochs=5, batch_size=10, optimizer="sgd", lr=50.0, shuffle=False, verbose=0)
    assert 0 < len(steps) < 19  # it stopped (diverged) before the batch that holds row 199
    np.testing.assert_array_equal(net.theta, before)
    X[199, 1] = 0.0  # the same run on finite data: it diverges, as it should
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = net.fit(X, Y, epochs=5, batch_size=10, optimizer="sgd", lr=50.0, shuffle=False, verbose=0)
    assert history.stop_reason.startswith("diverged")


@needs_compiled
def test_bad_values_in_the_validation_split_are_refused_before_training(steps: list[int]) -> None:
    X, y = data()
    net = classifier()
    before = net.theta.copy()
    validation_rows = np.sort(np.random.default_rng(5).permutation(400)[:80])  # fit's split with seed=5
    X[validation_rows[3], 0] = np.nan
    with pytest.raises(ValueError, match=rf"the first at row {validation_rows[3]}, column 0: nan\)"):
        net.fit(X, y, epochs=1, batch_size=32, seed=5, validation_split=0.2, verbose=0)
    assert steps == []
    np.testing.assert_array_equal(net.theta, before)


@needs_compiled
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("gather", [True, False])
def test_the_c_step_refuses_a_batch_with_a_bad_input_and_writes_nothing(dtype: str, gather: bool) -> None:
    c = native._c
    net = MLP([4, 5, 3], activation="relu", output_activation="softmax", loss="cross_entropy", dtype=dtype, seed=0)
    step = CompiledBackprop.for_network(net)
    assert c is not None and step is not None
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4)).astype(dtype)
    rows = np.array([7, 2, 9], dtype=np.int64) if gather else None
    batch = X[rows] if gather else X[:3]
    T = np.eye(3, dtype=dtype)[[0, 2, 1]]
    labels = np.array([0, 2, 1], dtype=np.int64)
    (X if gather else batch)[2 if gather else 1, 3] = np.inf  # row 2 of X is in the gathered batch
    source = X if gather else np.ascontiguousarray(batch)
    theta, buffer = net.theta.copy(), rng.standard_normal(net.n_params).astype(dtype)
    scratch = np.empty(1000, dtype=dtype)
    args = [source, rows, T, labels, theta, buffer, scratch, net.layer_sizes, step.codes, step.loss, 0.1, 0.9, True]
    kept_theta, kept_buffer = theta.copy(), buffer.copy()
    E, correct = c.sgd_step(*args, None, step.alphas, True)
    assert np.isnan(E) and correct == -2
    np.testing.assert_array_equal(theta, kept_theta)
    np.testing.assert_array_equal(buffer, kept_buffer)
    E, correct = c.sgd_step(*args, None, step.alphas, False)  # unchecked: the step is made (and E is not finite)
    assert not np.isfinite(E) and correct >= 0
    assert not np.array_equal(buffer, kept_buffer)
    with pytest.raises(deltaprop.compiled_step.NonFiniteInputs):
        step.step(source, rows, T, labels, check_inputs=True)


@needs_compiled
def test_a_refused_fit_leaves_the_network_as_it_was_classes_included(steps: list[int]) -> None:
    X, y = data()
    net = classifier()
    net.fit(X, np.array(["no", "some", "many"])[y], epochs=1, batch_size=50, verbose=0)
    before, classes = net.theta.copy(), net.classes.copy()
    X[399, 5] = np.nan  # the last row: found after seven steps of the next fit
    steps.clear()
    with pytest.raises(deltaprop.network.NonFiniteInputError, match=r"the first at row 399, column 5: nan\)"):
        net.fit(X, y, epochs=1, batch_size=50, shuffle=False, verbose=0)  # integer labels this time
    assert len(steps) == 7
    np.testing.assert_array_equal(net.theta, before)
    np.testing.assert_array_equal(net.classes, classes)
    assert issubclass(deltaprop.network.NonFiniteInputError, ValueError)
