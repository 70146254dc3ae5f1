"""The compiled step shared by a team of threads (src/deltaprop/_team.h, the split in _sgd_step.h,
CompiledBackprop.sharing, blas.single_threaded): the same numbers as one thread, the same refusals, BLAS's thread
count held at one only while a run shares its steps, and no deadlock across fork() or two trainings at once."""

from __future__ import annotations

import multiprocessing
import sys
import threading

import numpy as np
import pytest
from c_step_calls import record_c_steps, threads_asked

from deltaprop import MLP, blas, compiled_step, native, optim
from deltaprop.callbacks import Callback
from deltaprop.compiled_step import CompiledBackprop, NonFiniteInputs

pytestmark = pytest.mark.skipif(
    not (native.available() and hasattr(native._c, "team_available") and blas.available() and blas._get().direct),
    reason="deltaprop._ckernels was not built (or found no BLAS): the NumPy paths train instead",
)
needs_team = pytest.mark.skipif(
    not (hasattr(native._c, "team_available") and native._c.team_available()),
    reason="no threads for the C step on this platform",
)


@pytest.fixture
def two_blas_threads():
    """BLAS on two threads for the test (the suite runs it on one: tests/conftest.py), as after a default start."""
    r = blas._get()
    if r is None or r.set_threads is None:
        pytest.skip("no OpenBLAS thread count to set here")
    before = blas.threads()
    r.set_threads(2)
    yield 2
    r.set_threads(before)


TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}
OUTPUTS = [  # (output activation, loss, outputs): every output the C step computes
    ("softmax", "cross_entropy", 3),
    ("sigmoid", "binary_cross_entropy", 1),
    ("sigmoid", "binary_cross_entropy", 3),
    ("identity", "squared_error", 2),
    ("tanh", "mse", 2),
]


def _problem(dtype, output, loss, k, m=37, seed=5):
    rng = np.random.default_rng(seed)
    net = MLP([6, 16, 9, k], activation="relu", output_activation=output, loss=loss, seed=3, dtype=dtype)
    X = rng.standard_normal((50, 6)).astype(dtype)
    rows = rng.permutation(50)[:m].astype(np.int64)
    if output == "softmax":
        labels = rng.integers(0, k, m).astype(np.int64)
        T = np.eye(k, dtype=dtype)[labels]
    elif output == "sigmoid":
        labels = None
        T = (rng.random((m, k)) < 0.5).astype(dtype)
    else:
        labels = None
        T = rng.standard_normal((m, k)).astype(dtype)
    return net, X, rows, T, labels


def _steps(net, X, rows, T, labels, threads, *, update, weights=None, n=3):
    """n steps from the same start on a copy of net; returns (θ, buffer, losses, correct counts)."""
    copy = MLP(net.layer_sizes, activation=net.activations[:-1], output_activation=net.activations[-1],
               loss=net.loss_function, dtype=net.dtype)  # fmt: skip
    copy.theta[...] = net.theta
    step = CompiledBackprop.for_network(copy)
    assert step is not None
    buffer = np.zeros_like(copy.theta)
    losses, counts = [], []
    with blas.single_threaded():
        for i in range(n):
            beta = 0.0 if i == 0 else 0.9
            E, correct = step.step(X, rows, T, labels, weights=weights, target=buffer, beta=beta,
                                   lr=0.05 if update else None, threads=threads)  # fmt: skip
            losses.append(E)
            counts.append(correct)
    return copy.theta.copy(), buffer, losses, counts


@needs_team
@pytest.mark.parametrize("output,loss,k", OUTPUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("update", [True, False])
def test_a_team_computes_what_one_thread_computes(dtype, output, loss, k, update):
    net, X, rows, T, labels = _problem(dtype, output, loss, k)
    theta1, buffer1, losses1, counts1 = _steps(net, X, rows, T, labels, 1, update=update)
    assert np.any(buffer1 != 0) and (not update or not np.array_equal(theta1, net.theta))  # it did work
    for threads in (2, 3, 5):
        theta, buffer, losses, counts = _steps(net, X, rows, T, labels, threads, update=update)
        np.testing.assert_allclose(theta, theta1, **TOL[dtype])
        np.testing.assert_allclose(buffer, buffer1, **TOL[dtype])
        np.testing.assert_allclose(losses, losses1, **TOL[dtype])
        assert counts == counts1


@needs_team
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_team_with_sample_weights_inputs_without_rows_and_more_threads_than_rows(dtype):
    net, X, rows, T, labels = _problem(dtype, "softmax", "cross_entropy", 3)
    w = np.random.default_rng(2).uniform(0.0, 2.0, rows.shape[0])
    reference = _steps(net, X, rows, T, labels, 1, update=True, weights=w)
    team = _steps(net, X, rows, T, labels, 4, update=True, weights=w)
    for a, b in zip(team[:3], reference[:3]):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    assert team[3] == reference[3]
    batch = np.ascontiguousarray(X[rows])  # X is the batch itself (rows=None)
    np.testing.assert_allclose(
        _steps(net, batch, None, T, labels, 3, update=True)[0],
        _steps(net, batch, None, T, labels, 1, update=True)[0],
        **TOL[dtype],
    )
    two = rows[:2]  # 2 rows, 6 threads asked: the C code uses at most one thread per row
    one_thread = _steps(net, X, two, T[:2], labels[:2], 1, update=True)
    six = _steps(net, X, two, T[:2], labels[:2], 6, update=True)
    np.testing.assert_allclose(six[0], one_thread[0], **TOL[dtype])


@needs_team
def test_a_teams_gradient_matches_finite_differences():
    net, X, rows, T, labels = _problem(np.float64, "softmax", "cross_entropy", 3, m=23)
    _, gradient, _, _ = _steps(net, X, rows, T, labels, 3, update=False, n=1)  # β = 0 on the first step: ∂E/∂θ
    theta0 = net.theta.copy()
    numeric = np.empty_like(theta0)
    h = 1e-6
    batch = X[rows]
    for j in range(theta0.size):
        net.theta[...] = theta0
        net.theta[j] += h
        up = net.loss(batch, T)
        net.theta[j] -= 2 * h
        numeric[j] = (up - net.loss(batch, T)) / (2 * h)
    net.theta[...] = theta0
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


@needs_team
def test_a_team_refuses_a_batch_with_a_nan_and_writes_nothing():
    net, X, rows, T, labels = _problem(np.float64, "softmax", "cross_entropy", 3)
    X[rows[-1], 2] = np.nan  # in the last thread's share of the rows
    step = CompiledBackprop.for_network(net)
    theta0, buffer = net.theta.copy(), np.full_like(net.theta, 0.5)
    with blas.single_threaded(), pytest.raises(NonFiniteInputs):
        step.step(X, rows, T, labels, target=buffer, beta=0.9, lr=0.1, check_inputs=True, threads=3)
    np.testing.assert_array_equal(net.theta, theta0)
    assert np.all(buffer == 0.5)


def _big_enough(monkeypatch):
    """Make every network share its steps (the threshold is for speed; the tests' networks are small)."""
    monkeypatch.setattr(compiled_step, "MIN_TEAM_WORK", 1)


class _BlasThreads(Callback):
    def __init__(self, fail_at=None):
        self.seen, self.fail_at = [], fail_at

    def on_epoch_end(self, epoch, logs):
        self.seen.append(blas.threads())
        if epoch == self.fail_at:
            raise RuntimeError("a callback failed")


def _fit(X, y, threads_seen=None, **kw):
    net = MLP([20, 32, 16, 4], activation="relu", output_activation="softmax", loss="cross_entropy", seed=1,
              dtype=np.float64)  # fmt: skip
    callbacks = [threads_seen] if threads_seen is not None else []
    h = net.fit(X, y, epochs=3, batch_size=32, seed=0, verbose=0, callbacks=callbacks, **kw)
    return net, h


@needs_team
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])  # SGD's whole step, or the gradient then Adam's update
def test_a_fit_shares_its_steps_and_gives_back_blas_threads(monkeypatch, two_blas_threads, optimizer):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 20)), rng.integers(0, 4, 300)
    opt = optim.SGD(lr=0.05, momentum=0.9) if optimizer == "sgd" else optim.Adam(lr=0.01)
    before = blas.threads()
    alone, h_alone = _fit(X, y, optimizer=opt)  # these networks are below the threshold: one thread
    assert blas.threads() == before
    _big_enough(monkeypatch)
    calls = record_c_steps(monkeypatch)
    seen = _BlasThreads()
    opt = optim.SGD(lr=0.05, momentum=0.9) if optimizer == "sgd" else optim.Adam(lr=0.01)
    shared, h_shared = _fit(X, y, seen, optimizer=opt)
    assert threads_asked(calls) == {min(before, 32), min(before, 300 - 9 * 32)}  # the last batch of 12 rows too
    assert seen.seen == [1, 1, 1] and blas.threads() == before  # BLAS on one thread during the run only
    np.testing.assert_allclose(shared.theta, alone.theta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_shared.loss, h_alone.loss, rtol=1e-12)


@needs_team
def test_blas_threads_come_back_when_a_run_fails(monkeypatch, two_blas_threads):
    _big_enough(monkeypatch)
    before = blas.threads()
    rng = np.random.default_rng(0)
    seen = _BlasThreads(fail_at=1)
    with pytest.raises(RuntimeError, match="a callback failed"):
        _fit(rng.standard_normal((100, 20)), rng.integers(0, 4, 100), seen)
    assert seen.seen == [1, 1] and blas.threads() == before


def test_small_steps_keep_blas_threads(monkeypatch, two_blas_threads):
    calls = record_c_steps(monkeypatch)
    seen = _BlasThreads()
    rng = np.random.default_rng(0)
    _fit(rng.standard_normal((100, 20)), rng.integers(0, 4, 100), seen)  # 32 × 1,216 weights: below the threshold
    assert threads_asked(calls) == {1} and seen.seen == [blas.threads()] * 3


@needs_team
def test_team_size_follows_blas_threads_and_the_work(two_blas_threads):
    step = CompiledBackprop.for_network(MLP([784, 512, 256, 10], seed=0))  # L's network: 535,040 per row
    assert step.team_size(128) == 2  # 68.5 M multiply-adds a batch: as many threads as BLAS has
    assert step.team_size(3) == 1  # 1.6 M: too little work to share
    small = CompiledBackprop.for_network(MLP([64, 32, 10], seed=0))  # 2,368 per row
    assert small.team_size(32) == 1 and small.team_size(2048) == 2  # 0.08 M and 4.8 M
    with blas.single_threaded():
        assert step.team_size(128) == 1  # BLAS limited to one thread: no team either


def test_single_threaded_nests_and_overlaps_across_threads():
    before = blas.threads()
    if before == 0:
        with blas.single_threaded() as had:
            assert had == 0
        return
    entered, release = threading.Event(), threading.Event()

    def other():
        with blas.single_threaded() as had:
            assert had == before
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=other)
    with blas.single_threaded() as had:
        assert had == before and blas.threads() == 1
        worker.start()
        assert entered.wait(10)
        with blas.single_threaded():
            assert blas.threads() == 1
        assert blas.threads() == 1
    assert blas.threads() == 1  # the other thread's block is still open
    release.set()
    worker.join(10)
    assert blas.threads() == before


def _team_step_in_child(queue):
    net, X, rows, T, labels = _problem(np.float64, "softmax", "cross_entropy", 3)
    queue.put(_steps(net, X, rows, T, labels, 2, update=True)[0])


@needs_team
@pytest.mark.skipif(sys.platform != "linux", reason="fork() is the default start method on Linux only")
def test_a_forked_child_starts_its_own_team():
    net, X, rows, T, labels = _problem(np.float64, "softmax", "cross_entropy", 3)
    parent = _steps(net, X, rows, T, labels, 2, update=True)[0]  # the parent's workers exist now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_team_step_in_child, args=(queue,))
    child.start()
    result = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_allclose(result, parent, rtol=1e-12)


@needs_team
def test_two_trainings_at_once_both_finish(monkeypatch, two_blas_threads):
    _big_enough(monkeypatch)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((400, 20)), rng.integers(0, 4, 400)
    before = blas.threads()
    reference = _fit(X, y)[0].theta
    results = {}

    def train(name):
        results[name] = _fit(X, y)[0].theta

    workers = [threading.Thread(target=train, args=(name,)) for name in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not any(worker.is_alive() for worker in workers)
    for theta in results.values():  # one of them may have run alone while the other held the team
        np.testing.assert_allclose(theta, reference, rtol=1e-10, atol=1e-12)
    assert blas.threads() == before


@needs_team
def test_step_threads_caps_or_turns_off_the_team(monkeypatch, two_blas_threads):
    _big_enough(monkeypatch)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 20)), rng.integers(0, 4, 100)
    calls = record_c_steps(monkeypatch)
    seen = _BlasThreads()
    _fit(X, y, seen, trainer_options={"step_threads": 1})
    assert threads_asked(calls) == {1} and seen.seen == [2, 2, 2]  # no team: BLAS keeps its two threads
    calls.clear()
    _fit(X, y, trainer_options={"step_threads": 2})
    assert threads_asked(calls) == {2}
    for bad, error in ((0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="step_threads must be"):
            _fit(X, y, trainer_options={"step_threads": bad})


@needs_team
@pytest.mark.parametrize("sizes", [[6, 3], [6, 5, 3], [6, 12, 10, 8, 7, 3]])  # no hidden layer, one, four
def test_a_team_trains_networks_of_any_depth(sizes):
    rng = np.random.default_rng(8)
    net = MLP(sizes, activation="tanh", output_activation="softmax", loss="cross_entropy", seed=4, dtype=np.float64)
    X = rng.standard_normal((40, 6))
    rows = rng.permutation(40)[:29].astype(np.int64)
    labels = rng.integers(0, 3, 29).astype(np.int64)
    T = np.eye(3)[labels]
    one = _steps(net, X, rows, T, labels, 1, update=True)
    for threads in (2, 4):
        team = _steps(net, X, rows, T, labels, threads, update=True)
        for a, b in zip(team[:3], one[:3]):
            np.testing.assert_allclose(a, b, **TOL[np.float64])
        assert team[3] == one[3]
