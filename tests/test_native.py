"""The optional C kernels (deltaprop._ckernels, through deltaprop.native) give NumPy's numbers.

Every comparison runs the same inputs through the compiled path and through the NumPy fallback (``native._c`` set
to None), so the tests check the C code against the expressions the rest of deltaprop used before it existed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from deltaprop import MLP, native, optim

needs_c = pytest.mark.skipif(not native.available(), reason="deltaprop._ckernels was not built (no C compiler)")


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the body of a test with the NumPy fallback only."""

    def run(fn, *args):
        with monkeypatch.context() as m:
            m.setattr(native, "_c", None)
            return fn(*args)

    return run


def test_built_where_ci_runs():
    # CI installs with a C compiler: a broken build must fail here rather than fall back to NumPy unnoticed
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip("only required in CI")
    assert native.available()


def _relu_inputs(dtype, shape=(37, 129)):
    rng = np.random.default_rng(0)
    net = rng.standard_normal(shape).astype(dtype)
    net.flat[::17] = 0.0
    net.flat[5] = -0.0
    net.flat[7] = np.nan
    net.flat[11] = np.inf
    net.flat[13] = -np.inf
    return net


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_forward_and_backward_equal_numpy_bit_for_bit(dtype, numpy_only):
    net = _relu_inputs(dtype)
    out_c, out_np = np.empty_like(net), np.empty_like(net)
    assert native.relu(net, out_c) is out_c
    numpy_only(native.relu, net, out_np)
    np.testing.assert_array_equal(out_c, out_np)  # NaN where NaN, 0 for negatives, inf kept
    assert np.isnan(out_c.flat[7]) and out_c.flat[11] == np.inf and out_c.flat[13] == 0.0

    g = np.random.default_rng(1).standard_normal(net.shape).astype(dtype)
    g.flat[3] = np.nan  # a NaN gradient where the unit is off stays NaN (NaN · 0), as NumPy has it
    out_c.flat[3] = -1.0
    g_c, g_np = g.copy(), g.copy()
    assert native.relu_backward(g_c, out_c) is g_c
    numpy_only(native.relu_backward, g_np, out_c)
    np.testing.assert_array_equal(g_c, g_np)
    assert (g_c[out_c <= 0] == 0).sum() > 100  # the check above compared something


@needs_c
def test_relu_in_place():
    net = _relu_inputs(np.float32)
    expected = np.maximum(net, 0.0)
    native.relu(net, net)
    np.testing.assert_array_equal(net, expected)


@needs_c
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-6), (np.float64, 1e-14)])
def test_softmax_and_cross_entropy_match_numpy(dtype, rtol, numpy_only):
    rng = np.random.default_rng(2)
    net = (rng.standard_normal((65, 10)) * 30).astype(dtype)  # large values: the row max shift matters
    labels = rng.integers(0, 10, 65)
    t = np.eye(10, dtype=dtype)[labels]
    out_c, m_c, s_c = native.softmax(net, np.empty_like(net))
    out_np, m_np, s_np = numpy_only(native.softmax, net, np.empty_like(net))
    np.testing.assert_array_equal(m_c, m_np)  # the row max is exact
    np.testing.assert_allclose(s_c, s_np, rtol=rtol)
    np.testing.assert_allclose(out_c, out_np, rtol=rtol, atol=np.finfo(dtype).tiny)
    np.testing.assert_allclose(out_c.sum(axis=1), 1.0, rtol=10 * rtol)
    ce_c = native.cross_entropy_sum(net, m_c, s_c, t)
    ce_np = numpy_only(native.cross_entropy_sum, net, m_np, s_np, t)
    assert ce_c == pytest.approx(ce_np, rel=10 * rtol)
    # against the definition: Σ t · ln softmax(net), in float64
    n64 = net.astype(np.float64)
    log_o = n64 - n64.max(axis=1, keepdims=True)
    log_o -= np.log(np.exp(log_o).sum(axis=1, keepdims=True))
    assert ce_c == pytest.approx(float((t * log_o).sum()), rel=10 * rtol)


@needs_c
def test_softmax_in_place_and_nan_rows():
    net = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    expected = np.exp(net[0] - 3.0) / np.exp(net[0] - 3.0).sum()
    out, m, s = native.softmax(net, net)
    assert out is net
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    assert np.isnan(out[1]).all() and np.isnan(m[1, 0])  # NaN in, NaN out (np.maximum.reduce propagates it too)
    np.testing.assert_allclose(out[2], 1 / 3, rtol=1e-6)


def test_fallbacks_for_arrays_the_kernels_do_not_take():
    # other dtypes, non-contiguous views, mixed dtypes: NumPy computes, with the same results
    net = _relu_inputs(np.float32)
    view = net[:, ::2]
    out = np.empty(view.shape, np.float32)
    np.testing.assert_array_equal(native.relu(view, out), np.maximum(view, 0.0))
    half = net.astype(np.float16)
    np.testing.assert_array_equal(native.relu(half, np.empty_like(half)), np.maximum(half, 0))
    g = np.ones(view.shape, np.float64)
    native.relu_backward(g, np.ascontiguousarray(view))
    np.testing.assert_array_equal(g, (view > 0).astype(np.float64))
    z = np.random.default_rng(3).standard_normal((4, 5))[:, ::-1]  # a reversed view: not C-contiguous
    out, m, s = native.softmax(z, np.empty((4, 5)))
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(m[:, 0], z.max(axis=1))


@needs_c
def test_kernels_refuse_bad_arrays_with_clear_errors():
    from deltaprop import _ckernels

    a = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        _ckernels.relu(np.zeros((2, 3), np.int32), a)
    with pytest.raises(TypeError, match="C-contiguous"):
        _ckernels.relu(np.zeros((3, 4), np.float32)[:, ::2], a)
    with pytest.raises(TypeError, match="writable"):
        ro = np.zeros((2, 3), np.float32)
        ro.flags.writeable = False
        _ckernels.relu(a, ro)
    with pytest.raises(ValueError, match="dtype and size"):
        _ckernels.relu(a, np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError, match="dtype and size"):
        _ckernels.relu_backward(a, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="one number per row"):
        _ckernels.softmax(a, a, np.zeros(3, np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="one number per row"):
        _ckernels.cross_entropy_sum(a, np.zeros(2, np.float32), np.zeros(2, np.float32), np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="takes 2 arrays"):
        _ckernels.relu(a)
    with pytest.raises(TypeError, match="float32 or float64"):
        _ckernels.first_nonfinite(np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="takes 1 array"):
        _ckernels.first_nonfinite(a, a)
    with pytest.raises(TypeError, match="adam takes theta, g, m, v"):
        _ckernels.adam(a, a, a, a)
    with pytest.raises(ValueError, match="dtype and size"):
        _ckernels.adam(a, a, a, np.zeros(5, np.float32), 0.9, 0.999, 1e-8, 0.1)
    with pytest.raises(TypeError):
        _ckernels.adam(a, a, a, a, "beta", 0.999, 1e-8, 0.1)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (0.01, False), (0.01, True)])
def test_adam_update_equals_numpy_bit_for_bit(dtype, weight_decay, decoupled, numpy_only):
    rng = np.random.default_rng(5)
    theta0 = rng.standard_normal(1001).astype(dtype)
    grads = [rng.standard_normal(1001).astype(dtype) * 10.0 ** rng.integers(-6, 2) for _ in range(30)]
    grads[3][::7] = 0.0  # zero gradients: m and v only decay there

    def train():
        opt = (optim.AdamW if decoupled else optim.Adam)(lr=1e-2, weight_decay=weight_decay)
        theta = theta0.copy()
        state = opt.init(theta)
        for g in grads:
            opt.step(theta, g, state)
        return theta, state["m"], state["v"]

    for c_result, np_result in zip(train(), numpy_only(train)):
        np.testing.assert_array_equal(c_result, np_result)  # the same operations in the same order and rounding


def test_adam_falls_back_where_the_kernel_does_not_apply():
    theta = np.ones(6, np.float32)
    g = np.full(6, 0.5, np.float32)
    m, v = np.zeros(6, np.float32), np.zeros(6, np.float32)
    assert native.adam(theta[::2], g[::2], m[::2], v[::2], 0.9, 0.999, 1e-8, 0.1) is False  # strided
    assert native.adam(theta, g.astype(np.float64), m, v, 0.9, 0.999, 1e-8, 0.1) is False  # mixed dtypes
    assert native.adam(theta, g[:3], m, v, 0.9, 0.999, 1e-8, 0.1) is False  # shapes differ
    np.testing.assert_array_equal(theta, 1.0)  # nothing done
    if native.available():
        assert native.adam(theta, g, m, v, 0.9, 0.999, 1e-8, 0.1) is True
        np.testing.assert_allclose(m, 0.05, rtol=1e-6)
        np.testing.assert_allclose(v, 0.00025, rtol=1e-5)
        assert np.all(theta < 1.0)
    opt = optim.Adam(lr=0.1, amsgrad=True)  # amsgrad: NumPy's code (v_max), same result as the rule reads
    theta = np.array([1.0, -1.0])
    state = opt.init(theta)
    opt.step(theta, np.array([3.0, -0.5]), state)
    np.testing.assert_allclose(theta, [0.9, -0.9], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 10_000, (1 << 22) + 3])  # blocks' edges; two threads
def test_first_nonfinite_finds_the_first_nan_or_inf(dtype, size, numpy_only):
    rng = np.random.default_rng(size)
    a = rng.standard_normal(size).astype(dtype)
    info = np.finfo(dtype)
    a[:: max(1, size // 7)] = info.max  # huge finite numbers: their sum overflows, yet none is bad
    a[1 % size] = -info.max
    a[size // 2] = info.tiny / 2  # subnormal: finite
    for impl in (native.first_nonfinite, lambda x: numpy_only(native.first_nonfinite, x)):
        assert impl(a) == -1
        assert impl(a.reshape(1, -1)) == -1  # any shape: the index is into the flattened (C-order) array
    positions = sorted({0, size // 2, size - 1, min(size - 1, 4096), min(size - 1, (1 << 21) + 5)})
    for pos in positions:
        for bad in (np.nan, np.inf, -np.inf):
            b = a.copy()
            b[pos] = bad
            if pos + 1 < size:
                b[-1] = np.nan  # a later one: the first is reported
            assert native.first_nonfinite(b) == pos
            assert numpy_only(native.first_nonfinite, b) == pos


def test_first_nonfinite_in_the_upper_half_only():
    a = np.zeros((1 << 22) + 10, np.float32)
    a[-1] = np.inf
    assert native.first_nonfinite(a) == a.size - 1  # the second thread's half, reported as an index into a
    assert native.first_nonfinite(a[::2]) == -1  # a strided view (NumPy looks): the last is not in it
    f = np.zeros((5, 4), order="F")
    f[3, 1] = np.nan
    assert native.first_nonfinite(f) == 3 * 4 + 1  # Fortran order: still the C-order index
    h = np.zeros((3, 3), np.float16)
    h[0, :2] = 60000.0  # their float16 sum overflows
    assert native.first_nonfinite(h) == -1
    h[2, 2] = np.inf
    assert native.first_nonfinite(h) == 8


def test_bad_input_is_reported_by_row_and_column():
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    X[31, 2] = -np.inf
    X[40, 0] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or infinite values \(the first at row 31, column 2: -inf\)"):
        MLP([4, 3, 1], dtype="float32").fit(X, np.zeros(50), verbose=0)
    with pytest.raises(ValueError, match=r"row 31, column 2"):
        MLP([4, 3, 1]).predict(X)  # float64 network: X cast, then checked


@needs_c
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_with_and_without_the_kernels_agrees(optimizer, numpy_only):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)

    def train():
        net = MLP([12, 32, 16, 3], activation="relu", output_activation="softmax", loss="cross_entropy", seed=1)
        opt = optim.SGD(lr=0.05, momentum=0.9) if optimizer == "sgd" else optim.Adam(lr=1e-2)
        hist = net.fit(X, y, epochs=5, batch_size=32, optimizer=opt, seed=0, verbose=0)
        return net, hist

    net_c, hist_c = train()
    net_np, hist_np = numpy_only(train)
    np.testing.assert_allclose(hist_c.loss, hist_np.loss, rtol=1e-4)
    np.testing.assert_allclose(net_c.theta, net_np.theta, rtol=1e-3, atol=1e-5)
    assert hist_c.loss[-1] < hist_c.loss[0]


def test_environment_variable_turns_the_kernels_off():
    code = "from deltaprop import native; print(native.available())"
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "DELTAPROP_NATIVE": "0"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
