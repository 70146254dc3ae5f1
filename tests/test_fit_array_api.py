"""Optimisers, ``fit``, ``predict`` and ``MLP(..., device=...)`` on arrays of other libraries than NumPy.

Every result on PyTorch CPU tensors and on array-api-strict arrays (and, where a GPU is, on PyTorch CUDA tensors and
CuPy arrays) is compared with NumPy's (the fast path).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from array_helpers import BACKENDS, is_of, namespace, to_np

from deltaprop.callbacks import Callback
from deltaprop.optim import OPTIMIZERS, clip_grad_norm, get_optimizer

pytest.importorskip("array_api_compat", reason="non-NumPy arrays go through array-api-compat (extra [gpu])")


OPTIMIZER_CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "mask": True}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.1, "mask": True}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,options", OPTIMIZER_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZER_CASES)])
def test_optimizer_steps_match_numpy(backend: str, dtype: str, name: str, options: dict[str, Any]) -> None:
    xp = namespace(backend)
    rng = np.random.default_rng(0)
    n = 37
    options = dict(options)
    if options.pop("mask", False):
        options["weight_decay_mask"] = rng.random(n) < 0.5
    theta_np = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(20)]
    opt_np, opt_xp = get_optimizer({"name": name, **options}), get_optimizer({"name": name, **options})
    theta_xp = xp.asarray(theta_np.copy())
    state_np, state_xp = opt_np.init(theta_np), opt_xp.init(theta_xp)
    view = theta_xp[3:10]  # a view (as a layer's W) sees the updates
    for g in grads:
        opt_np.step(theta_np, g, state_np)
        g_xp = xp.asarray(g.copy())
        opt_xp.step(theta_xp, g_xp, state_xp)
        np.testing.assert_array_equal(to_np(g_xp), g)  # grad is never written
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(to_np(theta_xp), theta_np, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_np(view), theta_np[3:10], rtol=tol, atol=tol)
    assert state_xp["step"] == state_np["step"] == 20
    for key, value in state_np.items():
        if key != "step":
            assert is_of(xp, state_xp[key])
            np.testing.assert_allclose(to_np(state_xp[key]), value, rtol=tol, atol=tol)


def test_every_optimizer_is_covered() -> None:
    assert {name for name, _ in OPTIMIZER_CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_grad_norm_matches_numpy(backend: str) -> None:
    xp = namespace(backend)
    g = np.array([3.0, 4.0, 0.0])
    g_xp = xp.asarray(g.copy())
    assert clip_grad_norm(g_xp, 1.0) == clip_grad_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(to_np(g_xp), g, rtol=1e-15)
    small = xp.asarray(np.array([0.1, 0.2]))
    clip_grad_norm(small, 1.0)
    np.testing.assert_array_equal(to_np(small), [0.1, 0.2])


# ------------------------------------------------------------------------------------------------ fit
def data(seed: int = 0, n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    labels = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    return X, labels, Y


def weights_np(net: Any) -> np.ndarray:
    return to_np(net.theta)


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_batch_sgd_regression_matches_numpy(backend: str) -> None:
    from deltaprop import MLP

    xp = namespace(backend)
    X, _, Y = data()
    kwargs = dict(epochs=30, batch_size=None, optimizer="sgd", lr=0.5, shuffle=False, verbose=0)
    ref = MLP([3, 5, 2], activation="tanh", output_activation="identity", dtype="float64", seed=1)
    ref.fit(X, Y, **kwargs)
    net = MLP([3, 5, 2], activation="tanh", output_activation="identity", dtype="float64", seed=1)
    hist = net.fit(xp.asarray(X), xp.asarray(Y), **kwargs)
    assert is_of(xp, net.theta) and is_of(xp, net.layers[0].W)
    np.testing.assert_allclose(weights_np(net), ref.theta, rtol=1e-10, atol=1e-10)
    assert len(hist.loss) == 30
    out = net.predict(xp.asarray(X))
    assert is_of(xp, out)
    np.testing.assert_allclose(to_np(out), ref.predict(X), rtol=1e-10, atol=1e-10)
    assert net.score(xp.asarray(X), Y) == pytest.approx(ref.score(X, Y), abs=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("y_kind", ["numpy", "xp"])
def test_shuffled_minibatch_adam_classifier_matches_numpy(backend: str, y_kind: str) -> None:
    from deltaprop import MLP

    xp = namespace(backend)
    X, labels, _ = data(n=50)
    kwargs = dict(epochs=8, batch_size=7, optimizer="adam", lr=0.01, seed=3, verbose=0, validation_split=0.2)
    ref = MLP([3, 6, 3], activation="relu", output_activation="softmax", loss="cross_entropy", dtype="float64", seed=2)
    h_ref = ref.fit(X, labels, **kwargs)
    net = MLP([3, 6, 3], activation="relu", output_activation="softmax", loss="cross_entropy", dtype="float64", seed=2)
    y = labels if y_kind == "numpy" else xp.asarray(labels)
    h = net.fit(xp.asarray(X), y, **kwargs)
    np.testing.assert_allclose(weights_np(net), ref.theta, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-9)
    assert h.accuracy == h_ref.accuracy and h.val_accuracy == h_ref.val_accuracy
    pred = net.predict(xp.asarray(X))
    assert isinstance(pred, np.ndarray)  # class labels stay NumPy
    np.testing.assert_array_equal(pred, ref.predict(X))
    proba = net.predict_proba(xp.asarray(X))
    assert is_of(xp, proba)
    np.testing.assert_allclose(to_np(proba), ref.predict_proba(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_options_match_numpy(backend: str) -> None:
    """float32, online updates, string labels, sample weights, clipping, a schedule and early stopping."""
    from deltaprop import MLP

    xp = namespace(backend)
    X, labels, _ = data(n=30)
    names = np.array(["a", "b", "c"])[labels]
    w = np.linspace(0.5, 1.5, 30)
    kwargs = dict(
        epochs=5, batch_size=1, optimizer="sgd", lr=0.05, seed=0, verbose=0, sample_weight=w, clip_norm=1.0,
        schedule="exponential", patience=2, validation_data=(X[:10], names[:10]), restore_best_weights=True,
    )  # fmt: skip
    ref = MLP([3, 4, 3], output_activation="softmax", loss="cross_entropy", seed=5)
    ref.fit(X, names, **kwargs)
    net = MLP([3, 4, 3], output_activation="softmax", loss="cross_entropy", seed=5)
    net.fit(xp.asarray(X.astype(np.float32)), names, **kwargs)
    np.testing.assert_allclose(weights_np(net), ref.theta, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(net.predict(xp.asarray(X)), ref.predict(X))


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoint_and_resume_on_other_library(backend: str, tmp_path: Any) -> None:
    from deltaprop import MLP

    xp = namespace(backend)
    X, _, Y = data()
    path = tmp_path / "run.ckpt"
    kwargs = dict(batch_size=8, optimizer="adam", lr=0.01, seed=4, verbose=0)
    full = MLP([3, 4, 2], output_activation="identity", dtype="float64", seed=0)
    full.fit(xp.asarray(X), xp.asarray(Y), epochs=4, **kwargs)
    part = MLP([3, 4, 2], output_activation="identity", dtype="float64", seed=0)
    part.fit(xp.asarray(X), xp.asarray(Y), epochs=2, checkpoint=path, **kwargs)
    again = MLP([3, 4, 2], output_activation="identity", dtype="float64", seed=0)
    again.fit(xp.asarray(X), xp.asarray(Y), epochs=4, resume=path, **kwargs)
    np.testing.assert_allclose(to_np(again.theta), to_np(full.theta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_stops_as_on_numpy(backend: str) -> None:
    """The loss is read once per epoch on other libraries; a run that diverges mid-epoch still stops after that
    epoch with the last finite weights (those of the epoch before), as the NumPy path does."""
    from deltaprop import MLP

    xp = namespace(backend)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 1))
    kwargs = dict(epochs=50, batch_size=10, optimizer="sgd", lr=0.8, shuffle=False, verbose=0)  # inf in epoch 3
    runs = []
    for X_in, Y_in in ((X, Y), (xp.asarray(X), xp.asarray(Y))):
        net = MLP([3, 16, 1], activation="relu", output_activation="identity", loss="mse", dtype="float64", seed=0)
        with pytest.warns(RuntimeWarning, match="diverged"):
            history = net.fit(X_in, Y_in, **kwargs)
        runs.append((history, to_np(net.theta)))
    (h_ref, theta_ref), (h, theta) = runs
    assert h.stop_reason.startswith("diverged") and h.stop_reason == h_ref.stop_reason
    assert len(h.loss) == len(h_ref.loss) == 3 and not math.isfinite(h.loss[-1])
    np.testing.assert_allclose(h.loss[:1], h_ref.loss[:1], rtol=1e-10)  # epoch 2's 1e271 amplifies rounding
    assert np.all(np.isfinite(theta))
    np.testing.assert_allclose(theta, theta_ref, rtol=1e-10, atol=1e-12)


@pytest.fixture
def float_losses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the batch losses turned into Python floats (Network._batch_loss: a GPU must finish the batch first)."""
    from deltaprop import Network

    floats: list[int] = []
    real_batch_loss = Network._batch_loss

    def counted(self: Any, *args: Any, **kwargs: Any) -> float:
        floats.append(1)
        return real_batch_loss(self, *args, **kwargs)

    monkeypatch.setattr(Network, "_batch_loss", counted)
    return floats


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_losses_stay_on_the_device_until_the_epoch_ends(backend: str, float_losses: list[int]) -> None:
    """Without batch callbacks no batch's loss is turned into a Python float (which would wait for a GPU)."""
    from deltaprop import MLP

    xp = namespace(backend)
    X, labels, _ = data(n=40)
    floats = float_losses
    net = MLP([3, 4, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=0)
    ref = MLP([3, 4, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=0)
    kwargs = dict(epochs=3, batch_size=8, optimizer="adam", lr=0.01, seed=0, verbose=0)
    h = net.fit(xp.asarray(X), labels, **kwargs)
    assert floats == []  # 15 batches, no float per batch
    h_ref = ref.fit(X, labels, **kwargs)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    assert h.accuracy == h_ref.accuracy and all(isinstance(a, float) for a in h.accuracy + h.loss)
    floats.clear()
    spy = _BatchLosses()
    net.fit(xp.asarray(X), labels, epochs=1, batch_size=8, verbose=0, callbacks=[spy])
    assert len(floats) == len(spy.losses) == 5  # a batch callback reads every batch's loss


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_progress_bar_reads_batch_losses_without_a_float_per_batch(
    backend: str, monkeypatch: pytest.MonkeyPatch, float_losses: list[int]
) -> None:
    """The progress bar takes each batch's loss as a 0-d array and reads it a few times a second, so a run on a GPU
    with the bar (verbose=1 on a terminal) still does not wait for the device after every batch."""
    import io

    from deltaprop import MLP
    from deltaprop.progress import ProgressBar

    pytest.importorskip("rich")
    xp = namespace(backend)
    X, labels, _ = data(n=40)
    floats = float_losses
    stream = io.StringIO()
    bar = ProgressBar(2, stream=stream, force=True)
    seen: list[Any] = []
    real_on_batch_end = ProgressBar.on_batch_end

    def spy(self: Any, batch: int, logs: dict[str, Any]) -> None:
        seen.append(logs["loss"])
        real_on_batch_end(self, batch, logs)

    monkeypatch.setattr(ProgressBar, "on_batch_end", spy)
    net = MLP([3, 4, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=0)
    ref = MLP([3, 4, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=0)
    kwargs = dict(epochs=2, batch_size=8, optimizer="sgd", lr=0.1, seed=0, verbose=0)
    h = net.fit(xp.asarray(X), labels, callbacks=[bar], **kwargs)
    assert floats == [] and len(seen) == 10 and all(is_of(xp, loss) for loss in seen)
    h_ref = ref.fit(X, labels, **kwargs)  # (NumPy: without the C extension, its loop asks for floats)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    assert "loss" in stream.getvalue()


class _BatchLosses(Callback):
    """A callback that reads each batch's loss (so the training loop must give it as a float)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        assert isinstance(logs["loss"], float)
        self.losses.append(logs["loss"])


def test_mlp_device_cpu_is_torch_and_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    from deltaprop import MLP

    X, _, Y = data()
    ref = MLP([3, 4, 2], output_activation="identity", dtype="float64", seed=0)
    net = MLP([3, 4, 2], output_activation="identity", dtype="float64", seed=0, device="cpu")
    assert isinstance(net.theta, torch.Tensor) and str(net.device) == "cpu"
    np.testing.assert_array_equal(to_np(net.theta), ref.theta)
    out = net.predict(X)  # NumPy inputs to a torch network: tensors out
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(to_np(out), ref.predict(X), rtol=1e-12)
    kwargs = dict(epochs=3, batch_size=16, optimizer="rmsprop", lr=0.01, seed=1, verbose=0)
    ref.fit(X, Y, **kwargs)
    net.fit(X, Y, **kwargs)  # NumPy data, torch network: trains in torch
    assert isinstance(net.theta, torch.Tensor)
    np.testing.assert_allclose(to_np(net.theta), ref.theta, rtol=1e-10, atol=1e-12)
    net32 = MLP([3, 2], device=torch.device("cpu"))
    assert net32.theta.dtype == torch.float32
    back = net.to(np)
    assert isinstance(back.theta, np.ndarray) and isinstance(back.layers[0].W, np.ndarray)
    np.testing.assert_allclose(back.predict(X), ref.predict(X), rtol=1e-10)


def test_mlp_device_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from deltaprop import MLP
    from deltaprop.backend import MissingExtraError

    pytest.importorskip("torch")
    with pytest.raises(TypeError, match="device must be None"):
        MLP([2, 1], device=3)
    with pytest.raises(ValueError, match="not a device PyTorch knows"):
        MLP([2, 1], device="nonsense")
    real_import = builtins.__import__

    def no_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    import importlib

    real_import_module = importlib.import_module

    def no_torch_module(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import_module(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_torch_module)
    with pytest.raises(MissingExtraError, match=r'pip install "deltaprop\[gpu\]"'):
        MLP([2, 1], device="cuda")


def test_mlp_device_cuda_trains_on_the_gpu_and_matches_numpy(tmp_path: Any) -> None:
    """``MLP(..., device="cuda")`` with NumPy data: parameters, batches and outputs on the GPU; NumPy's results."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    import deltaprop
    from deltaprop import MLP

    X, labels, _ = data(n=64)
    kwargs = dict(epochs=4, batch_size=16, optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9}, seed=2, verbose=0)
    ref = MLP([3, 8, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=0)
    net = MLP([3, 8, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=0, device="cuda")
    assert net.theta.device.type == "cuda" and net.layers[1].W.device.type == "cuda"
    h_ref, h = ref.fit(X, labels, **kwargs), net.fit(X, labels, **kwargs)
    assert net.theta.device.type == "cuda"
    np.testing.assert_allclose(to_np(net.theta), ref.theta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-10)
    proba = net.predict_proba(X)
    assert proba.device.type == "cuda"
    np.testing.assert_allclose(to_np(proba), ref.predict_proba(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(net.predict(X), ref.predict(X))
    copy = MLP([3, 8, 3], output_activation="softmax", loss="cross_entropy", dtype="float64", seed=9)
    copy.set_weights(net.get_weights())  # CUDA tensors into a NumPy network
    np.testing.assert_array_equal(copy.theta, to_np(net.theta))
    net.set_weights(ref.get_weights())  # NumPy arrays into a CUDA network
    np.testing.assert_array_equal(to_np(net.theta), ref.theta)
    net.save(tmp_path / "m")  # a GPU network saves as NumPy and loads on the CPU
    np.testing.assert_array_equal(deltaprop.load(tmp_path / "m").theta, to_np(net.theta))


def test_cuda_device_without_gpu_is_a_clear_error() -> None:
    torch = pytest.importorskip("torch")
    from deltaprop import MLP

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        MLP([2, 1], device="cuda")


def test_numpy_network_never_takes_foreign_path() -> None:
    from deltaprop import MLP

    X, _, Y = data()
    net = MLP([3, 2], output_activation="identity", seed=0)
    net.fit(X, Y, epochs=1, batch_size=1, optimizer="sgd", verbose=0)
    assert isinstance(net.theta, np.ndarray)


def test_a_torch_backed_network_saves_and_loads_as_numpy(tmp_path):
    pytest.importorskip("torch")
    import deltaprop

    net = deltaprop.MLP([3, 4, 2], device="cpu", seed=0)
    net.save(tmp_path / "m")
    back = deltaprop.load(tmp_path / "m")
    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(X), net.forward(X).numpy())
