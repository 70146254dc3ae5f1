"""deltaprop.blas (gemm with β, axpy through NumPy's BLAS) and deltaprop.fused (SGD inside the backward pass)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from deltaprop import MLP, blas, optim
from deltaprop.fused import FusedSGD
from deltaprop.train import FUSED_MIN_PARAMS, Trainer

DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}


@pytest.fixture(params=["direct", "ctypes", "numpy"])
def engine(request, monkeypatch):
    """Run a test with the BLAS library called from the C extension, through ctypes (as where the extension was
    not built), and with NumPy computing instead (as where no library is found)."""
    routines = blas._get()
    if request.param == "direct" and (routines is None or routines.direct is None):
        pytest.skip("deltaprop._ckernels was not built: BLAS is called through ctypes")
    if request.param == "ctypes":
        assert routines is not None
        monkeypatch.setattr(blas, "_routines", routines._replace(direct=None))
    if request.param == "numpy":
        monkeypatch.setattr(blas, "_routines", None)
        monkeypatch.setattr(blas, "_loaded", True)
        assert not blas.available()
    return request.param


def _layouts(rng, rows, cols, dtype):
    """The same matrix as row-major, as the transpose of a row-major array, and as row slices of a wider array."""
    M = rng.standard_normal((rows, cols)).astype(dtype)
    transposed = np.ascontiguousarray(M.T).T
    wide = np.zeros((rows, cols + 3), dtype=dtype)
    wide[:, :cols] = M
    return {"row-major": M, "transposed": transposed, "padded": wide[:, :cols]}


def test_numpy_wheels_bring_a_blas_that_is_found():
    # NumPy's wheels bundle scipy-openblas; this environment installs NumPy from a wheel
    assert blas.available(np.float32) and blas.available(np.float64)
    assert blas.library_path() is not None and os.path.isfile(blas.library_path())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 0.9), (-0.5, 1.0), (2.0, -1.5)])
def test_gemm_is_alpha_AB_plus_beta_C_for_every_layout(engine, dtype, alpha, beta):
    rng = np.random.default_rng(0)
    for a_name, A in _layouts(rng, 7, 5, dtype).items():
        for b_name, B in _layouts(rng, 5, 4, dtype).items():
            for c_name, C in _layouts(rng, 7, 4, dtype).items():
                if c_name == "transposed":
                    continue  # C must be row-major (checked below)
                before = C.astype(np.float64)
                expected = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * before
                blas.gemm(A, B, C, alpha=alpha, beta=beta)
                np.testing.assert_allclose(C, expected, **TOL[dtype], err_msg=f"{a_name} · {b_name} → {c_name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_with_beta_zero_ignores_nan_in_C(engine, dtype):
    A, B = np.ones((3, 2), dtype), np.ones((2, 4), dtype)
    C = np.full((3, 4), np.nan, dtype)
    blas.gemm(A, B, C, alpha=0.5, beta=0.0)
    assert np.all(C == 1.0)


def test_gemm_falls_back_for_layouts_blas_cannot_take(engine):
    rng = np.random.default_rng(1)
    big = rng.standard_normal((8, 10))
    A = big[::2, ::2]  # strided both ways: neither row-major nor a transpose
    B = rng.standard_normal((5, 3))
    C = np.zeros((4, 6))[:, ::2]  # C not row-major
    blas.gemm(A, B, C, beta=1.0)
    np.testing.assert_allclose(C, A @ B, rtol=1e-12)
    C32 = np.zeros((4, 3), np.float32)
    blas.gemm(A, B, C32)  # mixed dtypes: NumPy computes
    np.testing.assert_allclose(C32, A @ B, rtol=1e-6)


def test_the_c_extension_declines_what_blas_cannot_take():
    # deltaprop._ckernels.gemm/axpy answer False (nothing done) for arrays BLAS cannot take; blas then uses NumPy
    routines = blas._get()
    if routines is None or routines.direct is None:
        pytest.skip("deltaprop._ckernels was not built")
    c = routines.direct
    A, B, C = np.ones((2, 3)), np.ones((3, 4)), np.full((2, 4), 7.0)
    assert c.gemm(A, B, C, 1.0, 0.0) is True and np.all(C == 3.0)
    for args in [
        (A.astype(np.float32), B, C),  # mixed dtypes
        (A.astype(np.int64), B.astype(np.int64), C.astype(np.int64)),  # not float
        (np.ones((4, 6))[::2, ::2], B, C),  # strided both ways
        (A, B, np.ones((2, 8))[:, ::2]),  # C not row-major
        (A, B, np.ones((4, 2)).T),  # C a transpose
        (np.ones((2, 0)), np.ones((0, 4)), C),  # empty product: NumPy's job
        ([[1.0]], [[1.0]], [[1.0]]),  # not arrays
    ]:
        before = np.array(args[2], copy=True)
        assert c.gemm(*args, 1.0, 0.0) is False
        np.testing.assert_array_equal(np.asarray(args[2]), before)  # untouched
    read_only = np.zeros((2, 4))
    read_only.flags.writeable = False
    assert c.gemm(A, B, read_only, 1.0, 0.0) is False
    with pytest.raises(ValueError, match="shapes of A, B and C"):
        c.gemm(A, np.ones((4, 4)), np.ones((2, 4)), 1.0, 0.0)
    with pytest.raises(TypeError, match="gemm takes A, B, C, alpha, beta"):
        c.gemm(A, B, C)
    with pytest.raises(TypeError):
        c.gemm(A, B, C, "one", 0.0)
    x, y = np.ones(5), np.zeros(5)
    assert c.axpy(2.0, x, y) is True and np.all(y == 2.0)
    assert c.axpy(2.0, x, np.zeros(10)[::2]) is False  # strided y
    assert c.axpy(2.0, x.astype(np.float32), y) is False  # mixed dtypes
    assert c.axpy(2.0, x, np.zeros(6)) is False  # lengths differ
    assert c.axpy(2.0, np.ones((1, 5)), y) is False  # 2-D
    with pytest.raises(TypeError, match="axpy takes a, x, y"):
        c.axpy(x, y)
    with pytest.raises(TypeError, match="set_blas takes 4 addresses"):
        c.set_blas(0)
    with pytest.raises(ValueError, match="address is 0"):
        c.set_blas(0, 0, 0, 0)


def test_gemm_refuses_shapes_that_do_not_match():
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) · \(4, 2\)"):
        blas.gemm(np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="do not give"):
        blas.gemm(np.ones((2, 3)), np.ones((3, 2)), np.ones((3, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_axpy(engine, dtype):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(100_001).astype(dtype), rng.standard_normal(100_001).astype(dtype)
    expected = -0.3 * x.astype(np.float64) + y
    blas.axpy(-0.3, x, y)
    np.testing.assert_allclose(y, expected, **TOL[dtype])
    y2 = np.zeros(200, dtype)[::2]  # not contiguous: NumPy computes
    blas.axpy(2.0, np.ones(100, dtype), y2)
    assert np.all(y2 == 2.0)
    with pytest.raises(ValueError, match="one length"):
        blas.axpy(1.0, np.ones(3, dtype), np.ones(4, dtype))


def test_environment_variable_turns_blas_off():
    code = "from deltaprop import blas; print(blas.available(), blas.library_path())"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "DELTAPROP_BLAS": "0"}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "None"]


# ------------------------------------------------------------------------------------------------ fused SGD


def _net(dtype=np.float64, sizes=(6, 16, 8, 3), frozen=False):
    net = MLP(list(sizes), activation="relu", output_activation="softmax", loss="cross_entropy", seed=3, dtype=dtype)
    if frozen:
        net.freeze_biases()
    return net


@pytest.mark.parametrize(
    "opt,applies",
    [
        (optim.SGD(lr=0.1), True),
        (optim.SGD(lr=0.1, momentum=0.9), True),
        (optim.SGD(lr=0.1, momentum=0.9, nesterov=True), False),
        (optim.SGD(lr=0.1, momentum=0.9, dampening=0.1), False),
        (optim.SGD(lr=0.1, weight_decay=1e-4), False),
        (optim.Adam(), False),
    ],
)
def test_fused_update_applies_to_plain_and_momentum_sgd_only(opt, applies):
    assert (FusedSGD.for_network(_net(), opt) is not None) == applies


def test_fused_update_needs_trainable_biases():
    assert FusedSGD.for_network(_net(frozen=True), optim.SGD(lr=0.1)) is None


def _fit(fused, dtype, momentum, sample_weight=None, epochs=3):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((203, 6)).astype(dtype)  # 203 = 12 batches of 16 and one of 11
    y = rng.integers(0, 3, 203)
    net = _net(dtype)
    history = net.fit(
        X, y, epochs=epochs, batch_size=16, optimizer=optim.SGD(lr=0.05, momentum=momentum), seed=1, verbose=0,
        sample_weight=sample_weight,
        trainer_options={"fused_update": fused, "compiled_step": None if fused else False},  # plain: NumPy's loop
    )  # fmt: skip
    return net, history


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_training_equals_backward_then_step(engine, dtype, momentum):
    fused, h_fused = _fit(True, dtype, momentum)
    plain, h_plain = _fit(False, dtype, momentum)
    assert not np.array_equal(fused.theta, _net(dtype).theta)  # it trained
    np.testing.assert_allclose(fused.theta, plain.theta, **TOL[dtype])
    np.testing.assert_allclose(h_fused.loss, h_plain.loss, **TOL[dtype])


def test_fused_training_with_sample_weights_equals_backward_then_step():
    weights = np.random.default_rng(5).uniform(0.1, 3.0, 203)
    fused, _ = _fit(True, np.float64, 0.9, sample_weight=weights)
    plain, _ = _fit(False, np.float64, 0.9, sample_weight=weights)
    np.testing.assert_allclose(fused.theta, plain.theta, rtol=1e-12, atol=1e-12)


def test_fused_momentum_buffer_is_pytorchs_after_training():
    # the optimiser state is the same buffer b as the unfused SGD keeps (so checkpoints and resumes mix freely)
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((64, 6)), rng.integers(0, 3, 64)
    states = []
    for fused in (True, False):
        net = _net()
        trainer = Trainer(
            net, X, np.eye(3)[y], labels=y, optimizer=optim.SGD(lr=0.05, momentum=0.9), batch_size=16,
            shuffle=False, rng=np.random.default_rng(0), validation=None, callbacks=[], fused_update=fused,
        )  # fmt: skip
        assert (trainer.fused is not None) == fused
        trainer.run(2)
        states.append(trainer.opt_state)
    assert states[0]["step"] == states[1]["step"] == 8
    np.testing.assert_allclose(states[0]["b"], states[1]["b"], rtol=1e-12, atol=1e-14)


def test_trainer_fuses_large_networks_by_default_and_not_with_clipping():
    X = np.zeros((8, 100))
    y = np.arange(8) % 10
    T = np.eye(10)[y]
    large = _net(sizes=(100, 100, 10))
    small = _net(sizes=(100, 20, 10))
    assert large.n_params >= FUSED_MIN_PARAMS > small.n_params

    def trainer(net, **kw):
        return Trainer(
            net, X, T, labels=y, optimizer=optim.SGD(lr=0.1, momentum=0.9), batch_size=4, shuffle=True,
            rng=np.random.default_rng(0), validation=None, callbacks=[], **kw,
        )  # fmt: skip

    assert trainer(large).fused is not None
    # a small network takes it only as the compiled step (one C call a batch), where the C extension was built
    assert (trainer(small).fused is not None) == FusedSGD.for_network(small, optim.SGD(lr=0.1)).compiled
    assert trainer(small, compiled_step=False).fused is None
    assert trainer(small, fused_update=True).fused is not None
    assert trainer(large, fused_update=False).fused is None
    assert trainer(large, clip_norm=1.0).fused is None


def test_a_library_that_computes_wrongly_is_not_used():
    def noop(*args):
        return None

    assert not blas._works({np.dtype(np.float32): noop}, {np.dtype(np.float32): noop})
