"""The compiled step (deltaprop.compiled_step, deltaprop.fused.FusedSGD.compiled_step, deltaprop._ckernels.sgd_step):
one C call a batch for the forward and backward pass (and SGD's update) that must train exactly as the NumPy paths
do, and refuse what it cannot take."""

from __future__ import annotations

import numpy as np
import pytest
from c_step_calls import record_c_steps

from deltaprop import MLP, blas, native, optim
from deltaprop.callbacks import TerminateOnNaN
from deltaprop.compiled_step import CompiledBackprop
from deltaprop.fused import FusedSGD
from deltaprop.train import Trainer

needs_compiled = pytest.mark.skipif(
    not (native.available() and hasattr(native._c, "sgd_step") and blas.available() and blas._get().direct),
    reason="deltaprop._ckernels was not built (or found no BLAS): the NumPy paths train instead",
)
pytestmark = needs_compiled

DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 3e-5, "atol": 3e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _net(activation="relu", dtype=np.float64, sizes=(6, 16, 8, 3), seed=3):
    return MLP(list(sizes), activation=activation, output_activation="softmax", loss="cross_entropy", seed=seed,
               dtype=dtype)  # fmt: skip


def _data(dtype=np.float64, n=203, d=6, k=3, seed=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, k, n)  # 203 = 12 batches of 16 and one of 11


def _fit(path, activation="relu", dtype=np.float64, momentum=0.9, X=None, y=None, optimizer=None, **kw):
    """Train with the compiled SGD step (compiled), the compiled forward/backward then the optimiser's step (grad),
    SGD fused in NumPy (fused), or NumPy's backward then step (plain)."""
    if X is None:
        X, y = _data(dtype)
    net = _net(activation, dtype, sizes=(X.shape[1], 16, 8, 3))
    options = {
        "compiled": {"fused_update": True},
        "grad": {"fused_update": False},
        "fused": {"fused_update": True, "compiled_step": False},
        "plain": {"fused_update": False, "compiled_step": False},
    }[path]
    kw.setdefault("epochs", 3)
    optimizer = optimizer or optim.SGD(lr=0.05, momentum=momentum)
    history = net.fit(X, y, batch_size=16, optimizer=optimizer, seed=1, verbose=0, trainer_options=options, **kw)
    return net, history


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_step_trains_as_the_numpy_paths(monkeypatch, dtype, activation, momentum):
    calls = record_c_steps(monkeypatch)
    compiled, h_compiled = _fit("compiled", activation, dtype, momentum)
    assert len(calls) == 3 * 13  # every batch of the 3 epochs, the last short one too
    monkeypatch.undo()
    for path in ("grad", "fused", "plain"):
        other, h_other = _fit(path, activation, dtype, momentum)
        np.testing.assert_allclose(compiled.theta, other.theta, **TOL[dtype])
        np.testing.assert_allclose(h_compiled.loss, h_other.loss, **TOL[dtype])
        assert h_compiled.history["accuracy"] == h_other.history["accuracy"]
    assert not np.array_equal(compiled.theta, _net(activation, dtype).theta)  # it trained


def _compiled_and_numpy_agree(monkeypatch, net, X, y, make_optimizer, **kw):
    """Train a copy of ``net`` with the compiled step and one with NumPy's loop: the same weights, losses and
    accuracies to float rounding. Returns the compiled run's history and its C calls."""
    results = []
    for compiled in (None, False):
        calls = record_c_steps(monkeypatch)
        copy = MLP(net.layer_sizes, activation=net.activations[:-1], output_activation=net.activations[-1],
                   loss=net.loss_function, dtype=net.dtype)  # fmt: skip
        copy.theta[...] = net.theta
        for layer, original in zip(copy.layers, net.layers):
            layer.bias_trainable = original.bias_trainable
        h = copy.fit(X, y, epochs=3, batch_size=16, optimizer=make_optimizer(lr=0.01), seed=1, verbose=0,
                     trainer_options={"compiled_step": compiled}, **kw)  # fmt: skip
        assert len(calls) == (3 * 13 if compiled is None else 0)
        monkeypatch.undo()
        results.append((copy.theta.copy(), h, calls))
    (theta_c, h_c, calls), (theta_n, h_n, _) = results
    tol = TOL[net.dtype.type]
    assert not np.array_equal(theta_c, net.theta)  # it trained
    np.testing.assert_allclose(theta_c, theta_n, **tol)
    np.testing.assert_allclose(h_c.loss, h_n.loss, **tol)
    assert h_c.history.get("accuracy") == h_n.history.get("accuracy")
    return h_c, calls


OUTPUTS = [  # (output activation, loss, outputs, targets): every output the C step computes
    ("sigmoid", "binary_cross_entropy", 1, "labels"),
    ("sigmoid", "binary_cross_entropy", 3, "multi-label"),
    ("identity", "squared_error", 2, "values"),
    ("tanh", "mse", 2, "values"),
    ("relu", "mse", 2, "values"),
    ("sigmoid", "squared_error", 3, "labels"),  # the seed's classifier: sigmoid outputs, ½Σ(t − o)²
]


@pytest.mark.parametrize("output,loss,k,targets", OUTPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_output_and_loss_trains_as_numpys_loop(monkeypatch, dtype, output, loss, k, targets):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((203, 6)).astype(dtype)
    y = {
        "labels": rng.integers(0, max(k, 2), 203),
        "multi-label": (rng.random((203, k)) < 0.4).astype(dtype),
        "values": rng.standard_normal((203, k)).astype(dtype),
    }[targets]
    task = "classification" if targets == "labels" else "regression"
    net = MLP([6, 16, 8, k], activation="tanh", output_activation=output, loss=loss, seed=3, dtype=dtype)
    h, _ = _compiled_and_numpy_agree(monkeypatch, net, X, y, optim.Adam, task=task)
    assert (targets == "labels") == ("accuracy" in h.history)


@pytest.mark.parametrize("output,loss,k,targets", OUTPUTS[:3] + [("softmax", "cross_entropy", 3, "labels")])
@pytest.mark.parametrize("momentum", [None, 0.9])  # Adam (forward/backward compiled), or SGD's whole step
@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_weights_train_as_numpys_loop(monkeypatch, dtype, momentum, output, loss, k, targets):
    rng = np.random.default_rng(12)
    X = rng.standard_normal((203, 6)).astype(dtype)
    y = rng.integers(0, max(k, 2), 203) if targets == "labels" else rng.random((203, k)).astype(dtype)
    w = rng.uniform(0.0, 3.0, 203)
    w[:16] = 0.0  # the first batch (unshuffled) weighs nothing at all
    net = MLP([6, 16, 8, k], activation="relu", output_activation=output, loss=loss, seed=3, dtype=dtype)
    opt = optim.Adam if momentum is None else (lambda lr: optim.SGD(lr=lr, momentum=momentum))
    task = "classification" if targets == "labels" else "regression"
    _, calls = _compiled_and_numpy_agree(monkeypatch, net, X, y, opt, task=task, sample_weight=w, shuffle=False)
    assert all(args[13] is not None for args in calls)  # the weights reached the C code


def test_a_saturated_float32_classifier_has_a_finite_weighted_loss():
    # o = 0 exactly for the classes with t = 0: ln 0 must not give 0·(−inf) = NaN (a false divergence)
    from deltaprop.losses import BinaryCrossEntropy, CrossEntropy

    o = np.array([[1.0, 0.0]], dtype=np.float32)
    t = np.array([[1.0, 0.0]], dtype=np.float32)
    assert np.all(np.isfinite(CrossEntropy().elementwise(o, t))) and np.isfinite(CrossEntropy().value(o, t))
    assert np.all(np.isfinite(BinaryCrossEntropy().elementwise(o, t))) and np.isfinite(BinaryCrossEntropy().value(o, t))
    X = np.array([[30.0], [-30.0]] * 8, dtype=np.float32)
    y = np.array([1, 0] * 8)
    for compiled in (None, False):
        net = MLP([1, 2], activation="identity", output_activation="softmax", loss="cross_entropy", seed=0)
        net.set_weights([(np.array([[-10.0, 10.0]]), np.zeros(2))])  # net gap 600: o = 0 in float32
        h = net.fit(X, y, epochs=2, batch_size=8, optimizer=optim.SGD(lr=0.0), seed=0, verbose=0,
                    sample_weight=np.ones(16), trainer_options={"compiled_step": compiled})  # fmt: skip
        assert h.loss == [0.0, 0.0] and "diverged" not in h.stop_reason


def test_activations_and_losses_the_c_step_does_not_know_stay_in_numpy():
    from deltaprop.activations import ReLU
    from deltaprop.losses import MSE

    class Capped(ReLU):  # a user's own activation (even one derived from a known one): the C code cannot know it
        def forward(self, net):
            return np.minimum(np.maximum(net, 0.0), 6.0)

    class Huberish(MSE):  # likewise a user's own loss
        pass

    assert CompiledBackprop.for_network(MLP([4, 5, 3], activation=Capped(), output_activation="softmax",
                                            loss="cross_entropy", seed=0)) is None  # fmt: skip
    assert CompiledBackprop.for_network(MLP([4, 5, 3], activation="relu", loss=Huberish(), seed=0)) is None
    assert CompiledBackprop.for_network(MLP([4, 5, 3], activation="relu", loss="mse", seed=0)) is not None


@pytest.mark.parametrize(
    "activation", ["leaky_relu", {"name": "leaky_relu", "alpha": 0.2}, "elu", {"name": "elu", "alpha": 0.5}, "softplus"]
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu_elu_and_softplus_layers(monkeypatch, dtype, activation):
    X, y = _data(dtype)
    net = MLP([6, 16, 8, 3], activation=activation, output_activation="softmax", loss="cross_entropy", seed=3,
              dtype=dtype)  # fmt: skip
    _compiled_and_numpy_agree(monkeypatch, net, X, y, optim.Adam)
    out_net = MLP([6, 16, 2], activation="tanh", output_activation=activation, loss="squared_error", seed=3,
                  dtype=dtype)  # fmt: skip
    _compiled_and_numpy_agree(monkeypatch, out_net, X, np.stack([X[:, 0], X[:, 1] ** 2], axis=1), optim.Adam,
                              task="regression")  # fmt: skip


def test_frozen_biases_stay_as_they_were(monkeypatch):
    X, y = _data()
    net = _net("sigmoid")
    net.freeze_biases([0])
    biases = net.layers[0].b.copy()
    h, calls = _compiled_and_numpy_agree(monkeypatch, net, X, y, optim.Adam)
    assert calls
    trained = _net("sigmoid")
    trained.freeze_biases([0])
    trained.fit(X, y, epochs=2, batch_size=16, optimizer=optim.Adam(lr=0.01), seed=1, verbose=0)
    np.testing.assert_array_equal(trained.layers[0].b, biases)
    assert not np.array_equal(trained.layers[1].b, net.layers[1].b)  # the others trained


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: optim.Adam(lr=0.01),
        lambda: optim.RMSprop(lr=0.01),
        lambda: optim.SGD(lr=0.05, nesterov=True, momentum=0.9),
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_other_optimisers_step_after_the_compiled_backward(monkeypatch, dtype, make_optimizer):
    calls = record_c_steps(monkeypatch)
    compiled, h_compiled = _fit("grad", dtype=dtype, optimizer=make_optimizer(), clip_norm=0.5)
    assert len(calls) == 3 * 13 and not any(args[11] for args in calls)  # update=False: the optimiser updates
    monkeypatch.undo()
    plain, h_plain = _fit("plain", dtype=dtype, optimizer=make_optimizer(), clip_norm=0.5)
    np.testing.assert_allclose(compiled.theta, plain.theta, **TOL[dtype])
    np.testing.assert_allclose(h_compiled.loss, h_plain.loss, **TOL[dtype])
    assert h_compiled.history["accuracy"] == h_plain.history["accuracy"]


@pytest.mark.parametrize("fused_update", [None, False])
def test_compiled_gradient_matches_finite_differences(fused_update):
    # both forms leave ∂E/∂θ of the batch in net.grad: the SGD step without momentum (b = g, β = 0), and the
    # forward/backward pass alone (fused_update=False: the optimiser's own step follows)
    X, y = _data(n=16)
    net = _net("tanh")
    theta0 = net.theta.copy()
    trainer = Trainer(
        net, X, np.eye(3)[y], labels=y, optimizer=optim.SGD(lr=0.0), batch_size=16, shuffle=False,
        rng=np.random.default_rng(0), validation=None, callbacks=[], fused_update=fused_update,
    )  # fmt: skip
    assert trainer._compiled_step and (trainer.fused is None) == (fused_update is False)
    trainer.run(1)
    np.testing.assert_array_equal(net.theta, theta0)  # lr = 0
    T = np.eye(3)[y]
    numeric = np.empty_like(theta0)
    h = 1e-6
    for j in range(theta0.size):
        for sign in (1, -1):
            net.theta[...] = theta0
            net.theta[j] += sign * h
            numeric[j] = (numeric[j] if sign == -1 else 0.0) + sign * net.loss(X, T) / (2 * h)
    net.theta[...] = theta0
    np.testing.assert_allclose(net.grad, numeric, rtol=1e-6, atol=1e-9)


def test_compiled_momentum_buffer_is_pytorchs_and_checkpoints_mix():
    # b ← μ·b + g, θ ← θ − lr·b: the optimiser state equals the NumPy path's, so checkpoints move between them
    X, y = _data(n=64)
    states = []
    for compiled in (True, False):
        net = _net()
        trainer = Trainer(
            net, X, np.eye(3)[y], labels=y, optimizer=optim.SGD(lr=0.05, momentum=0.9), batch_size=16,
            shuffle=True, rng=np.random.default_rng(0), validation=None, callbacks=[], fused_update=True,
            compiled_step=compiled,
        )  # fmt: skip
        assert trainer._compiled_step == compiled
        trainer.run(2)
        states.append((trainer.opt_state, net.theta))
    assert states[0][0]["step"] == states[1][0]["step"] == 8
    np.testing.assert_allclose(states[0][0]["b"], states[1][0]["b"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(states[0][1], states[1][1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shuffle", [True, False])
def test_inputs_of_another_dtype_or_order_train_the_same(monkeypatch, shuffle):
    # fit makes float32 or Fortran-ordered X the network's C-contiguous dtype; unshuffled batches are slices of X
    X, y = _data()
    reference, _ = _fit("plain", X=X, y=y, shuffle=shuffle)
    for variant in (X.astype(np.float32).astype(np.float64), np.asfortranarray(X)):
        calls = record_c_steps(monkeypatch)
        net, _ = _fit("compiled", X=variant, y=y, shuffle=shuffle)
        assert len(calls) == 3 * 13
        assert all((args[1] is None) == (not shuffle) for args in calls)  # rows None: X is the batch itself
        monkeypatch.undo()
        expected = reference if variant is not X and variant.flags.f_contiguous else None
        expected = expected or _fit("plain", X=variant, y=y, shuffle=shuffle)[0]
        np.testing.assert_allclose(net.theta, expected.theta, rtol=1e-12, atol=1e-13)


def test_memory_mapped_inputs_are_gathered_by_the_trainer(monkeypatch, tmp_path):
    X, y = _data()
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    calls = record_c_steps(monkeypatch)
    net, h = _fit("compiled", X=mapped, y=y)
    assert len(calls) == 3 * 13 and all(args[1] is None for args in calls)
    monkeypatch.undo()
    plain, h_plain = _fit("plain", X=mapped, y=y)
    np.testing.assert_allclose(net.theta, plain.theta, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h.loss, h_plain.loss, rtol=1e-12)


def test_probability_targets_train_without_accuracy(monkeypatch):
    X, y = _data()
    P = np.random.default_rng(9).dirichlet(np.ones(3), size=X.shape[0])
    calls = record_c_steps(monkeypatch)
    net = _net()
    h = net.fit(X, P, batch_size=16, optimizer=optim.SGD(lr=0.05, momentum=0.9), epochs=2, seed=1, verbose=0,
                task="regression", trainer_options={"fused_update": True})  # fmt: skip
    assert calls and all(args[3] is None for args in calls)  # no labels
    monkeypatch.undo()
    plain = _net()
    h_plain = plain.fit(X, P, batch_size=16, optimizer=optim.SGD(lr=0.05, momentum=0.9), epochs=2, seed=1,
                        verbose=0, task="regression", trainer_options={"fused_update": False})  # fmt: skip
    assert "accuracy" not in h.history
    np.testing.assert_allclose(net.theta, plain.theta, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h.loss, h_plain.loss, rtol=1e-12)


def test_divergence_stops_as_on_the_numpy_path():
    # an absurd learning rate overflows the output: the epoch ends at the first non-finite loss, without updating
    X, y = _data()
    X = X * 1e3
    results = []
    for path in ("compiled", "fused"):
        net = _net()
        h = net.fit(X, y, batch_size=16, optimizer=optim.SGD(lr=1e30, momentum=0.9), epochs=3, seed=1, verbose=0,
                    callbacks=[TerminateOnNaN()],
                    trainer_options={"fused_update": True, "compiled_step": path == "compiled"})  # fmt: skip
        results.append((net.theta.copy(), h))
    (theta_c, h_c), (theta_f, h_f) = results
    assert h_c.stop_reason == h_f.stop_reason != ""
    assert len(h_c.loss) == len(h_f.loss)
    np.testing.assert_array_equal(np.isfinite(theta_c), np.isfinite(theta_f))
    np.testing.assert_allclose(theta_c, theta_f, rtol=1e-12, atol=1e-13)


def test_which_networks_and_runs_take_the_compiled_step():
    sgd = optim.SGD(lr=0.1, momentum=0.9)
    assert FusedSGD.for_network(_net(), sgd).compiled
    assert FusedSGD.for_network(_net("sigmoid", np.float32), sgd).compiled
    assert FusedSGD.for_network(_net("elu"), sgd).compiled
    squared = MLP([4, 5, 3], activation="relu", loss="squared_error", seed=0)
    assert FusedSGD.for_network(squared, sgd).compiled
    X, y = _data(n=32)

    def trainer(**kw):
        return Trainer(
            _net(), X, np.eye(3)[y], labels=y, **{"optimizer": sgd, **kw}, batch_size=8, shuffle=True,
            rng=np.random.default_rng(0), validation=None, callbacks=[],
        )  # fmt: skip

    assert trainer()._compiled_step and trainer().fused is not None  # small networks too: it pays at every size
    assert not trainer(compiled_step=False)._compiled_step
    assert trainer(sample_weight=np.ones(32))._compiled_step  # sample weights too
    for kw in ({"fused_update": False}, {"clip_norm": 1.0}, {"optimizer": optim.Adam()}):
        forward_backward = trainer(**kw)  # forward and backward compiled, the optimiser's own step after
        assert forward_backward._compiled_step and forward_backward.fused is None
    assert not trainer(optimizer=optim.Adam(), compiled_step=False)._compiled_step
    # a process of a distributed run: its share of each batch, compiled; grad_reduce then averages net.grad
    distributed = trainer(shard=(1, 2), grad_reduce=lambda grad, weight: weight)
    assert distributed._compiled_step and distributed.fused is None
    frozen = _net()
    frozen.freeze_biases()
    assert CompiledBackprop.for_network(frozen) is not None and FusedSGD.for_network(frozen, sgd) is None


def test_the_c_function_checks_its_arguments():
    c = native._c
    X = np.zeros((10, 4))
    T = np.zeros((3, 2))
    theta, buffer = np.zeros(4 * 3 + 3 + 3 * 2 + 2), np.zeros(4 * 3 + 3 + 3 * 2 + 2)
    scratch = np.zeros(1000)
    rows = np.array([0, 5, 9], dtype=np.int64)
    good = [X, rows, T, None, theta, buffer, scratch, [4, 3, 2], [1, 0], 0, 0.1, 0.0, True, None, [0.0, 0.0]]
    loss, correct = c.sgd_step(*good)
    assert loss == 0.0 and correct == -1  # T = 0: E = −Σ t·ln o = 0; no labels: no count

    def call(**changes):
        args = list(good)
        names = [
            "X",
            "rows",
            "T",
            "labels",
            "theta",
            "buffer",
            "scratch",
            "sizes",
            "acts",
            "loss",
            "lr",
            "beta",
            "update",
            "weights",
            "alphas",
        ]
        for name, value in changes.items():
            args[names.index(name)] = value
        return c.sgd_step(*args)

    with pytest.raises(IndexError, match="row 10 is outside X's 10 rows"):
        call(rows=np.array([0, 10, 1], dtype=np.int64))
    with pytest.raises(IndexError, match="outside"):
        call(rows=np.array([0, -1, 1], dtype=np.int64))
    with pytest.raises(TypeError, match="rows must be a 1-D C-contiguous int64 array"):
        call(rows=rows.astype(np.int32))
    with pytest.raises(TypeError, match="labels must be"):
        call(labels=np.zeros(3, dtype=np.float64))
    with pytest.raises(TypeError, match="T must have the dtype of X"):
        call(T=T.astype(np.float32))
    with pytest.raises(ValueError, match="X must be 2-D with 4 columns"):
        call(X=np.zeros((10, 5)))
    with pytest.raises(ValueError, match="T must hold one row of targets per example"):
        call(T=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="every parameter"):
        call(theta=np.zeros(5))
    with pytest.raises(ValueError, match="scratch must hold at least"):
        call(scratch=np.zeros(10))
    with pytest.raises(ValueError, match="one per layer"):
        call(acts=[1])
    with pytest.raises(ValueError, match="unknown activation code 7"):
        call(acts=[7, 0])
    with pytest.raises(ValueError, match="unknown loss code 4"):
        call(loss=4)
    with pytest.raises(ValueError, match="non-negative integers"):
        call(sizes=[4, -3, 2])
    with pytest.raises(ValueError, match="at least 1"):
        call(sizes=[4, 0, 2])
    with pytest.raises(TypeError, match="writable"):
        ro = theta.copy()
        ro.flags.writeable = False
        call(theta=ro)
    with pytest.raises(TypeError, match="weights must be None or a 1-D float64 array, one per example"):
        call(weights=np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="one per example"):
        call(weights=np.ones(4))
    with pytest.raises(ValueError, match="alphas must hold one number per layer"):
        call(alphas=[0.0])
    with pytest.raises(TypeError, match="alphas must be a sequence"):
        call(alphas=0.0)
    with pytest.raises(TypeError, match="15 to 17 arguments"):
        c.sgd_step(X)
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        c.sgd_step(*good, False, 0)


def test_the_compiled_step_keeps_one_copy_of_the_batch():
    # the C code gathers the shuffled batch into its own scratch: the trainer's batch buffer is never allocated
    # (with a full batch that would be a second copy of X)
    X, y = _data(n=64)
    for compiled in (None, False):
        trainer = Trainer(
            _net(), X, np.eye(3)[y], labels=y, optimizer=optim.Adam(), batch_size=64, shuffle=True,
            rng=np.random.default_rng(0), validation=None, callbacks=[], compiled_step=compiled,
        )  # fmt: skip
        trainer.run(1)
        assert (trainer._X_batch is None) == (compiled is None)
        if compiled is None:
            scratch = trainer._backprop._scratch
            assert scratch.size == 64 * 6 + 16 + 2 * 64 * (16 + 8 + 3)  # the batch, Σδ of the widest layer, out and δ
