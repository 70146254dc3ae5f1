"""deltaprop.kernels: the compiled online step trains exactly as the NumPy engine does, one example at a time."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from deltaprop import MLP, kernels  # noqa: E402
from deltaprop.activations import Sigmoid  # noqa: E402
from deltaprop.examples import WORKED_LR, WORKED_T, WORKED_X, train_worked_example, worked_example_network  # noqa: E402
from deltaprop.optim import SGD, Adam  # noqa: E402

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"]
# (output activation, loss): every output activation with both squared losses, and the two fused losses
OUTPUTS = [(act, loss) for loss in ("squared_error", "mse") for act in [*HIDDEN, "softmax"]] + [
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
]
TOL = {"float64": dict(rtol=1e-12, atol=1e-13), "float32": dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    assert kernels.warmup()  # compile both dtypes once (or load them from numba's cache)


def _hidden(name):
    return {"name": "leaky_relu", "alpha": 0.1} if name == "leaky_relu" else name


def _problem(hidden, out_act, loss, dtype, *, n=12, n_out=3, seed=0):
    """A small network (two hidden layers, the second's biases frozen) and data fitting its output and loss."""
    rng = np.random.default_rng(seed)
    net = MLP(
        [3, 5, 4, n_out], activation=_hidden(hidden), output_activation=out_act, loss=loss, dtype=dtype, seed=seed
    )
    net.freeze_biases([1])
    X = rng.normal(size=(n, 3)).astype(dtype)
    labels = rng.integers(0, n_out, size=n)
    if loss == "binary_cross_entropy" or out_act in ("sigmoid", "softmax"):
        T = np.zeros((n, n_out), dtype=dtype)
        T[np.arange(n), labels] = 1.0
        if n_out == 1:
            T[:, 0] = labels = rng.integers(0, 2, size=n)
    else:
        T = rng.normal(size=(n, n_out)).astype(dtype)
    return net, X, T, labels


def _engine_epoch(net, X, T, order, lr, labels=None, optimizer=None, state=None):
    """The NumPy engine with batch size 1, as the training loop runs it."""
    loss_sum, correct = 0.0, 0
    for i in order:
        out = net._forward(X[i : i + 1])
        E = net.loss_function.value(out, T[i : i + 1], net.layers[-1].net)
        loss_sum += E
        if labels is not None:
            correct += int(net._class_index(out)[0] == labels[i])
        net._backward(T[i : i + 1])
        if not np.isfinite(E):
            break
        if optimizer is None:
            net.step(lr)
        else:
            optimizer.step(net.theta, net.grad, state)
    return loss_sum, correct


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("out_act,loss", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_three_epochs_match_the_engine(hidden, out_act, loss, dtype):
    net, X, T, labels = _problem(hidden, out_act, loss, dtype)
    twin, _, _, _ = _problem(hidden, out_act, loss, dtype)
    assert kernels.supports(net, SGD(lr=0.1), 1)
    frozen = net.layers[1].b.copy()
    rng = np.random.default_rng(1)
    for _ in range(3):
        order = rng.permutation(X.shape[0])
        got = kernels.online_sgd_epoch(net, X, T, order, 0.1, labels=labels)
        want = _engine_epoch(twin, X, T, order, 0.1, labels)
        np.testing.assert_allclose(net.theta, twin.theta, **TOL[dtype])
        assert got[0] == pytest.approx(want[0], rel=TOL[dtype]["rtol"], abs=TOL[dtype]["atol"])
        assert got[1] == want[1]
    np.testing.assert_allclose(net.grad, twin.grad, **TOL[dtype])  # the last example's gradient
    np.testing.assert_array_equal(net.layers[1].b, frozen)
    assert not np.array_equal(net.theta, _problem(hidden, out_act, loss, dtype)[0].theta)  # it did train


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_computes_in_the_network_dtype(dtype):
    net, X, T, _ = _problem("sigmoid", "softmax", "cross_entropy", dtype)
    kernels.online_sgd_epoch(net, X, T, np.arange(X.shape[0]), 0.5)
    assert net.theta.dtype == np.dtype(dtype) and net.grad.dtype == np.dtype(dtype)


@pytest.mark.parametrize("n_out", [1, 2])
def test_labels_counted_as_the_engine_predicts(n_out):
    out_act, loss = ("sigmoid", "binary_cross_entropy") if n_out == 1 else ("softmax", "cross_entropy")
    net, X, _, _ = _problem("tanh", out_act, loss, "float64", n=40, n_out=n_out)
    twin = _problem("tanh", out_act, loss, "float64", n=40, n_out=n_out)[0]
    labels = (X[:, 0] + X[:, 1] > 0).astype(np.int64)  # a class the network can learn
    T = labels.reshape(-1, 1).astype(float) if n_out == 1 else np.eye(2)[labels]
    order = np.arange(40)
    counts = [kernels.online_sgd_epoch(net, X, T, order, 0.5, labels=labels)[1] for _ in range(8)]
    want = [_engine_epoch(twin, X, T, order, 0.5, labels)[1] for _ in range(8)]
    assert counts == want and counts[-1] > counts[0]
    assert kernels.online_sgd_epoch(net, X, T, order, 0.5)[1] == 0  # no labels: nothing counted


def test_order_may_repeat_and_skip_rows():
    net, X, T, _ = _problem("relu", "identity", "squared_error", "float64")
    twin = _problem("relu", "identity", "squared_error", "float64")[0]
    order = np.array([3, 3, 0, 11, 3])
    got = kernels.online_sgd_epoch(net, X, T, order, 0.05)
    assert got[0] == pytest.approx(_engine_epoch(twin, X, T, order, 0.05)[0], rel=1e-12)
    np.testing.assert_allclose(net.theta, twin.theta, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_frozen_biases_stay_fixed(dtype):
    net, X, T, _ = _problem("sigmoid", "sigmoid", "squared_error", dtype)
    net.freeze_biases()
    before = [layer.b.copy() for layer in net.layers]
    W_before = net.layers[0].W.copy()
    kernels.online_sgd_epoch(net, X, T, np.arange(X.shape[0]), 0.5)
    for layer, b in zip(net.layers, before):
        np.testing.assert_array_equal(layer.b, b)
    assert not np.array_equal(net.layers[0].W, W_before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("momentum,dampening,nesterov", [(0.9, 0.0, False), (0.5, 0.25, False), (0.9, 0.0, True)])
def test_momentum_sgd_matches_the_optimiser(momentum, dampening, nesterov, dtype):
    net, X, T, _ = _problem("tanh", "softmax", "cross_entropy", dtype)
    twin = _problem("tanh", "softmax", "cross_entropy", dtype)[0]
    opt = SGD(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov)
    twin_opt = SGD(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov)
    state, twin_state = opt.init(net.theta), twin_opt.init(twin.theta)
    assert kernels.supports(net, opt, 1)
    rng = np.random.default_rng(2)
    for _ in range(3):
        order = rng.permutation(X.shape[0])
        info: dict = {}
        got = kernels.online_sgd_epoch(net, X, T, order, opt.lr, **kernels.optimizer_kwargs(opt, state), info=info)
        state["step"] += info["steps"]
        want = _engine_epoch(twin, X, T, order, None, optimizer=twin_opt, state=twin_state)
        assert info == {"steps": X.shape[0], "examples": X.shape[0]}
        assert got[0] == pytest.approx(want[0], rel=TOL[dtype]["rtol"])
        np.testing.assert_allclose(net.theta, twin.theta, **TOL[dtype])
        np.testing.assert_allclose(state["b"], twin_state["b"], **TOL[dtype])
    assert state["step"] == twin_state["step"]


def test_divergence_ends_the_epoch_before_the_update_as_the_engine_does():
    net, X, T, _ = _problem("identity", "identity", "squared_error", "float64")
    twin = _problem("identity", "identity", "squared_error", "float64")[0]
    order = np.arange(X.shape[0])
    info: dict = {}
    with np.errstate(all="ignore"):
        got = kernels.online_sgd_epoch(net, X * 1e3, T, order, 1e3, info=info)
        want = _engine_epoch(twin, X * 1e3, T, order, 1e3)
    assert not np.isfinite(got[0]) and not np.isfinite(want[0])
    assert 0 < info["steps"] < X.shape[0] and info["examples"] == info["steps"] + 1
    np.testing.assert_array_equal(np.isfinite(net.theta), np.isfinite(twin.theta))
    np.testing.assert_allclose(net.theta, twin.theta, rtol=1e-12)


def test_repeat_steps_reproduces_the_published_worked_example():
    net = worked_example_network()
    curve = kernels.repeat_steps(net, WORKED_X[0], WORKED_T[0], WORKED_LR, 10_000)
    assert curve.shape == (10_000,) and curve.dtype == np.float64
    assert curve[0] == pytest.approx(0.298371109, abs=5e-10)
    assert curve[1] == pytest.approx(0.291027774, abs=5e-10)  # E after the first update
    assert curve[-1] == pytest.approx(0.0000351085, abs=5e-11)  # E_total at the 10,000th forward pass
    np.testing.assert_allclose(curve, train_worked_example(10_000).curve, rtol=1e-12)
    np.testing.assert_array_equal([layer.b for layer in net.layers], [[0.35, 0.35], [0.60, 0.60]])


@pytest.mark.parametrize("train_biases", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_repeat_steps_matches_the_engine_loop(train_biases, dtype):
    net = worked_example_network(train_biases=train_biases, dtype=dtype)
    twin = worked_example_network(train_biases=train_biases, dtype=dtype)
    curve = kernels.repeat_steps(net, WORKED_X[0], WORKED_T[0], WORKED_LR, 300)
    want = []
    for n in range(300):
        out = twin._forward(WORKED_X.astype(dtype))
        want.append(twin.loss_function.value(out, WORKED_T.astype(dtype)))
        if n < 299:
            twin._backward(WORKED_T.astype(dtype))
            twin.step(WORKED_LR)
    np.testing.assert_allclose(curve, want, rtol=TOL[dtype]["rtol"])
    np.testing.assert_allclose(net.theta, twin.theta, **TOL[dtype])
    np.testing.assert_allclose(net.grad, twin.grad, **TOL[dtype])  # the gradient of the last update


def test_supports():
    net = MLP([4, 3, 2], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
    assert kernels.supports(net, SGD(lr=0.1), 1)
    assert kernels.supports(net, None, 1)
    assert kernels.supports(net, SGD(lr=0.1, momentum=0.9, nesterov=True), 1)
    assert not kernels.supports(net, SGD(lr=0.1), 2)
    assert not kernels.supports(net, Adam(), 1)
    assert not kernels.supports(net, SGD(lr=0.1, weight_decay=1e-4), 1)

    class MySigmoid(Sigmoid):  # a subclass may change the maths: left to the engine
        pass

    other = MLP([4, 3, 1], activation=MySigmoid(), seed=0)
    assert not kernels.supports(other, None, 1)
    with pytest.raises(ValueError, match="cannot run"):
        kernels.online_sgd_epoch(other, np.zeros((1, 4)), np.zeros((1, 1)), np.arange(1), 0.1)


def test_switched_off_by_the_environment(monkeypatch):
    net = MLP([2, 2, 1], seed=0)
    monkeypatch.setenv("DELTAPROP_NUMBA", "0")
    assert not kernels.available() and not kernels.supports(net, None, 1)
    monkeypatch.delenv("DELTAPROP_NUMBA")
    assert kernels.available() and kernels.supports(net, None, 1)


def test_checks_its_arguments():
    net = MLP([2, 2, 1], dtype="float64", seed=0)
    X, T = np.zeros((3, 2)), np.zeros((3, 1))
    with pytest.raises(ValueError, match="outside"):
        kernels.online_sgd_epoch(net, X, T, np.array([0, 3]), 0.1)
    with pytest.raises(ValueError, match="shape"):
        kernels.online_sgd_epoch(net, X, np.zeros((3, 2)), np.arange(3), 0.1)
    with pytest.raises(ValueError, match="labels"):
        kernels.online_sgd_epoch(net, X, T, np.arange(3), 0.1, labels=np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="momentum_buffer"):
        kernels.online_sgd_epoch(net, X, T, np.arange(3), 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="lr"):
        kernels.online_sgd_epoch(net, X, T, np.arange(3), -1.0)
    with pytest.raises(ValueError, match="steps"):
        kernels.repeat_steps(net, X[0], T[0], 0.1, 0)
    readonly = X.copy()
    readonly.flags.writeable = False
    assert kernels.online_sgd_epoch(net, readonly, T, np.arange(3), 0.1)[0] > 0  # copied, not rejected


def test_import_deltaprop_does_not_import_numba():
    code = "import sys, deltaprop, deltaprop.kernels, deltaprop.train; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
