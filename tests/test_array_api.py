"""The numeric core on arrays of other libraries than NumPy: PyTorch CPU tensors and array-api-strict arrays.

Where a GPU is, also PyTorch CUDA tensors and CuPy arrays (``array_helpers.BACKENDS``).

The core (activations, losses, Dense, Network's forward/backward/loss/step) is written against the Python array API
(``xp = xp_of(array)``), with NumPy as the fast path. Here a network built by ``MLP`` in NumPy is copied into another
namespace (its flat ``theta``/``grad`` buffers become tensors of that library, every layer's W, b, dW, db views into
them, as ``Network.__init__`` lays them out), and every result is compared with NumPy's. array-api-strict allows
nothing beyond the standard, so it finds every NumPy-only idiom; PyTorch is the library a GPU run would use.

A case that fails is marked ``xfail(strict=True)`` with the place and the reason in ``KNOWN_FAILURES`` (empty now:
the 23 failures the first version found were fixed in the library).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from array_helpers import BACKENDS, is_of, namespace, to_np

from deltaprop import MLP, Network
from deltaprop.activations import ACTIVATIONS, get_activation
from deltaprop.losses import LOSSES, get_loss

pytest.importorskip("array_api_compat", reason="non-NumPy arrays go through array-api-compat (extra [gpu])")

# (backend, case) → why it fails today (the library function at fault); delete an entry once its fix is in.
# Every entry found by the first version of this file has been fixed in the library.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def case(backend: str, name: str) -> Any:
    reason = KNOWN_FAILURES.get((backend, name))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(backend, name, marks=marks, id=f"{backend}-{name}")


def to_xp(xp: Any, a: Any) -> Any:
    return xp.asarray(np.array(a, copy=True))


def port(net: Network, xp: Any) -> Network:
    """``net`` with its parameters moved into ``xp``: theta and grad there, every W, b, dW, db a view into them.

    This is what a ``Network.to(xp, device)`` / ``MLP(..., device=...)`` would do.
    """
    theta = to_xp(xp, net.theta)
    grad = xp.zeros_like(theta)
    net.theta, net.grad = theta, grad
    offset = 0
    for layer in net.layers:
        n_in, n_out = layer.W.shape
        w_end = offset + n_in * n_out
        b_end = w_end + n_out
        layer.W, layer.b = xp.reshape(theta[offset:w_end], (n_in, n_out)), theta[w_end:b_end]
        layer.dW, layer.db = xp.reshape(grad[offset:w_end], (n_in, n_out)), grad[w_end:b_end]
        layer._buffers = {}
        offset = b_end
    return net


CONFIGS = {  # hidden activation / output activation / loss, and the number of outputs
    "sigmoid/sigmoid/squared_error": ("sigmoid", "sigmoid", "squared_error", 3),
    "relu/softmax/cross_entropy": ("relu", "softmax", "cross_entropy", 3),
    "tanh/sigmoid/binary_cross_entropy": ("tanh", "sigmoid", "binary_cross_entropy", 1),
    "elu/identity/mse": ("elu", "identity", "mse", 2),
    "leaky_relu/identity/mse": ("leaky_relu", "identity", "mse", 2),
    "softplus/identity/squared_error": ("softplus", "identity", "squared_error", 2),
}


def make(config: str, dtype: str = "float64") -> Network:
    act, out_act, loss, n_out = CONFIGS[config]
    return MLP([4, 6, 5, n_out], activation=act, output_activation=out_act, loss=loss, dtype=dtype, seed=0)


def batch(config: str, n: int = 7, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    n_out = CONFIGS[config][3]
    X = rng.standard_normal((n, 4)).astype(dtype)
    if CONFIGS[config][2] in ("cross_entropy", "binary_cross_entropy"):
        k = max(n_out, 2)
        T = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
        T = T[:, 1:] if n_out == 1 else T
    else:
        T = rng.uniform(0.1, 0.9, (n, n_out)).astype(dtype)
    return X, T


TOL = {"rtol": 1e-12, "atol": 1e-13}


# ------------------------------------------------------------------------------------------------ pieces
@pytest.mark.parametrize(("backend", "name"), [case(b, f"activation-{a}") for b in BACKENDS for a in ACTIVATIONS])
def test_activation(backend: str, name: str) -> None:
    xp = namespace(backend)
    act = get_activation(name.split("-", 1)[1])
    rng = np.random.default_rng(0)
    net, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    out = act.forward(to_xp(xp, net))
    assert is_of(xp, out)
    np.testing.assert_allclose(to_np(out), act.forward(net.copy()), **TOL)
    np.testing.assert_allclose(to_np(act.derivative(to_xp(xp, net), out)), act.derivative(net, to_np(out)), **TOL)
    delta = act.backward(to_xp(xp, g), to_xp(xp, net), out)
    assert is_of(xp, delta)
    np.testing.assert_allclose(to_np(delta), act.backward(g.copy(), net, act.forward(net.copy())), **TOL)


@pytest.mark.parametrize(("backend", "name"), [case(b, f"loss-fn-{name}") for b in BACKENDS for name in LOSSES])
def test_loss_function(backend: str, name: str) -> None:
    xp = namespace(backend)
    loss = get_loss(name.split("-", 2)[2])
    rng = np.random.default_rng(0)
    net = rng.standard_normal((6, 3))
    out = np.exp(net) / np.exp(net).sum(axis=1, keepdims=True) if name.endswith("cross_entropy") else np.tanh(net)
    if name.endswith("binary_cross_entropy"):
        out = 1 / (1 + np.exp(-net))
    t = np.eye(3)[rng.integers(0, 3, 6)]
    o_, t_, n_ = to_xp(xp, out), to_xp(xp, t), to_xp(xp, net)
    assert loss.value(o_, t_) == pytest.approx(loss.value(out, t), rel=1e-12)
    assert loss.value(o_, t_, n_) == pytest.approx(loss.value(out, t, net), rel=1e-12)
    np.testing.assert_allclose(to_np(loss.elementwise(o_, t_)), loss.elementwise(out, t), **TOL)
    np.testing.assert_allclose(to_np(loss.dE_dout(o_, t_)), loss.dE_dout(out, t), **TOL)


@pytest.mark.parametrize(("backend", "name"), [case(b, "targets-float") for b in BACKENDS])
def test_float_targets_stay_in_their_namespace(backend: str, name: str) -> None:
    xp = namespace(backend)
    T = np.random.default_rng(0).uniform(size=(5, 2))
    got = get_loss("mse").targets(to_xp(xp, T), 2, np.float64)
    assert is_of(xp, got)
    np.testing.assert_array_equal(to_np(got), T)


@pytest.mark.parametrize(("backend", "name"), [case(b, "targets-class-index") for b in BACKENDS])
def test_class_index_targets_become_one_hot_rows(backend: str, name: str) -> None:
    xp = namespace(backend)
    labels = np.array([2, 0, 1, 2])
    got = get_loss("cross_entropy").targets(to_xp(xp, labels), 3, np.float64)
    assert is_of(xp, got)
    np.testing.assert_array_equal(to_np(got), np.eye(3)[labels])


# ------------------------------------------------------------------------------------------ the network
@pytest.mark.parametrize(("backend", "name"), [case(b, f"forward-{c}") for b in BACKENDS for c in CONFIGS])
def test_forward(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = name.split("-", 1)[1]
    ref, net = make(config), port(make(config), xp)
    X, _ = batch(config)
    out = net.forward(to_xp(xp, X))
    assert is_of(xp, out)
    np.testing.assert_allclose(to_np(out), ref.forward(X), **TOL)


@pytest.mark.parametrize(("backend", "name"), [case(b, f"loss-{c}") for b in BACKENDS for c in CONFIGS])
def test_loss(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = name.split("-", 1)[1]
    ref, net = make(config), port(make(config), xp)
    X, T = batch(config)
    assert net.loss(to_xp(xp, X), to_xp(xp, T)) == pytest.approx(ref.loss(X, T), rel=1e-12)


@pytest.mark.parametrize(("backend", "name"), [case(b, f"backward-{c}") for b in BACKENDS for c in CONFIGS])
def test_backward(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = name.split("-", 1)[1]
    ref, net = make(config), port(make(config), xp)
    X, T = batch(config)
    ref.forward(X)
    ref.backward(T)
    net.forward(to_xp(xp, X))
    net.backward(to_xp(xp, T))
    assert is_of(xp, net.grad)
    np.testing.assert_allclose(to_np(net.grad), ref.grad, **TOL)
    for layer, ref_layer in zip(net.layers, ref.layers):  # dW, db are views into grad
        np.testing.assert_allclose(to_np(layer.dW), ref_layer.dW, **TOL)


@pytest.mark.parametrize(("backend", "name"), [case(b, "backward-float32") for b in BACKENDS])
def test_backward_float32(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = "relu/softmax/cross_entropy"
    ref, net = make(config, "float32"), port(make(config, "float32"), xp)
    X, T = batch(config, dtype=np.float32)
    ref.forward(X)
    ref.backward(T)
    net.forward(to_xp(xp, X))
    net.backward(to_xp(xp, T))
    np.testing.assert_allclose(to_np(net.grad), ref.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("backend", "name"), [case(b, "targets-stay-on-device") for b in BACKENDS])
def test_backward_keeps_targets_in_the_namespace(backend: str, name: str) -> None:
    """With a GPU the targets must not be copied to NumPy (the host) on their way to the output δ."""
    xp = namespace(backend)
    net = port(make("elu/identity/mse"), xp)
    _, T = batch("elu/identity/mse")
    assert is_of(xp, net._targets(to_xp(xp, T), n_examples=T.shape[0]))


@pytest.mark.parametrize(("backend", "name"), [case(b, "forward-single-example") for b in BACKENDS])
def test_forward_of_one_example(backend: str, name: str) -> None:
    xp = namespace(backend)
    ref, net = make("relu/softmax/cross_entropy"), port(make("relu/softmax/cross_entropy"), xp)
    x = batch("relu/softmax/cross_entropy")[0][0]
    out = net.forward(to_xp(xp, x))
    assert out.shape == (3,)
    np.testing.assert_allclose(to_np(out), ref.forward(x), **TOL)


@pytest.mark.parametrize(("backend", "name"), [case(b, "sample-weight") for b in BACKENDS])
def test_backward_with_sample_weights(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = "tanh/sigmoid/binary_cross_entropy"
    ref, net = make(config), port(make(config), xp)
    X, T = batch(config)
    w = np.random.default_rng(2).uniform(0, 2, X.shape[0])
    ref.forward(X)
    ref._backward(T, sample_weight=w)
    net.forward(to_xp(xp, X))
    net._backward(to_xp(xp, T), sample_weight=to_xp(xp, w))
    np.testing.assert_allclose(to_np(net.grad), ref.grad, **TOL)


@pytest.mark.parametrize(("backend", "name"), [case(b, "step") for b in BACKENDS])
def test_gradient_descent_step(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = "sigmoid/sigmoid/squared_error"
    ref, net = make(config), port(make(config), xp)
    X, T = batch(config)
    for _ in range(3):
        ref.forward(X)
        ref.backward(T)
        ref.step(0.5)
        net.forward(to_xp(xp, X))
        net.backward(to_xp(xp, T))
        net.step(0.5)
    assert is_of(xp, net.theta)
    np.testing.assert_allclose(to_np(net.theta), ref.theta, **TOL)
    np.testing.assert_allclose(to_np(net.layers[0].W), ref.layers[0].W, **TOL)  # still views of theta


@pytest.mark.parametrize(("backend", "name"), [case(b, "get-weights") for b in BACKENDS])
def test_get_weights(backend: str, name: str) -> None:
    xp = namespace(backend)
    ref, net = make("elu/identity/mse"), port(make("elu/identity/mse"), xp)
    for (W, b), (W_ref, b_ref) in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(to_np(W), W_ref)
        np.testing.assert_array_equal(to_np(b), b_ref)


@pytest.mark.parametrize(("backend", "name"), [case(b, "set-weights") for b in BACKENDS])
def test_set_weights_across_libraries(backend: str, name: str) -> None:
    """NumPy weights into a network of another library (on its device), and that network's weights into NumPy."""
    xp = namespace(backend)
    ref, net = make("elu/identity/mse"), port(make("elu/identity/mse"), xp)
    other = MLP([4, 6, 5, 2], activation="elu", output_activation="identity", loss="mse", dtype="float64", seed=7)
    net.set_weights(other.get_weights())
    assert is_of(xp, net.theta)
    np.testing.assert_array_equal(to_np(net.theta), other.theta)
    np.testing.assert_array_equal(to_np(net.layers[1].W), other.layers[1].W)  # the views see the new values
    ref.set_weights(net.get_weights())
    np.testing.assert_array_equal(ref.theta, other.theta)


@pytest.mark.parametrize(("backend", "name"), [case(b, "class-index") for b in BACKENDS])
def test_class_index(backend: str, name: str) -> None:
    xp = namespace(backend)
    for config in ("relu/softmax/cross_entropy", "tanh/sigmoid/binary_cross_entropy"):
        ref, net = make(config), port(make(config), xp)
        X, _ = batch(config)
        got = net._class_index(net.forward(to_xp(xp, X)))
        np.testing.assert_array_equal(to_np(got), ref._class_index(ref.forward(X)))


@pytest.mark.parametrize(("backend", "name"), [case(b, "float32-net-float64-input") for b in BACKENDS])
def test_float32_network_casts_float64_inputs(backend: str, name: str) -> None:
    xp = namespace(backend)
    config = "relu/softmax/cross_entropy"
    ref, net = make(config, "float32"), port(make(config, "float32"), xp)
    X, _ = batch(config)  # float64, as NumPy users pass them; NumPy inputs are cast to the network's dtype
    out = net.forward(to_xp(xp, X))
    assert to_np(out).dtype == np.float32
    np.testing.assert_allclose(to_np(out), ref.forward(X), rtol=1e-5, atol=1e-6)
