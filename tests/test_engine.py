"""The engine: layers, the flat parameter buffer, activations, losses, and gradients checked by finite differences."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from deltaprop import MLP, gradcheck
from deltaprop.activations import ACTIVATIONS, get_activation

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"]
# every output activation × loss pair that makes sense
PAIRS = [(act, "squared_error") for act in [*HIDDEN, "softmax"]]
PAIRS += [(act, "mse") for act in [*HIDDEN, "softmax"]]
PAIRS += [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")]


def _targets(loss, n, k, rng):
    if loss == "cross_entropy":
        return rng.integers(0, k, size=n)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(n, k)).astype(float)
    return rng.normal(size=(n, k))


def _net_and_inputs_away_from_kinks(make_net, rng, n, margin=0.05):
    """A network and inputs for which no relu/leaky_relu unit has |net| < margin, and none is dead for every
    example: finite differences are only valid off a kink, and a dead layer makes every gradient 0."""
    for seed in range(1000):
        net = make_net(seed)
        X = rng.normal(size=(n, net.n_inputs))
        net.forward(X)
        kinked = [layer for layer in net.layers if layer.activation.name in ("relu", "leaky_relu")]
        alive = all((layer.net > 0).any(axis=0).all() for layer in kinked if layer.activation.name == "relu")
        if alive and all(np.abs(layer.net).min() > margin for layer in kinked):
            return net, X
    raise AssertionError("could not draw a network and inputs away from the kinks")


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", PAIRS)
def test_gradients_match_finite_differences(hidden, output, loss):
    rng = np.random.default_rng(zlib.crc32(f"{hidden}-{output}-{loss}".encode()))
    sizes = [int(rng.integers(1, 5))] + [int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 3)))]
    sizes.append(int(rng.integers(2, 4)))
    net, X = _net_and_inputs_away_from_kinks(
        lambda seed: MLP(sizes, activation=hidden, output_activation=output, loss=loss, dtype="float64", seed=seed),
        rng,
        5,
    )
    result = gradcheck(net, X, _targets(loss, 5, sizes[-1], rng))
    assert result.max_rel_error < 1e-6, (sizes, result.worst_index, result.max_rel_error)


@pytest.mark.parametrize("seed", range(6))
def test_gradients_of_random_deep_networks(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 7, size=int(rng.integers(2, 6)))]
    acts = [str(a) for a in rng.choice(["sigmoid", "tanh", "softplus", "elu"], size=len(sizes) - 2)]
    net = MLP(sizes, activation=acts, output_activation="identity", dtype="float64", seed=seed)
    X = rng.normal(size=(7, sizes[0]))
    assert gradcheck(net, X, rng.normal(size=(7, sizes[-1]))).max_rel_error < 1e-6


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    net = MLP([3, 4, 2], activation="tanh", dtype="float64", seed=0)
    X, Y = np.ones((2, 3)), np.zeros((2, 2))
    assert gradcheck(net, X, Y).max_rel_error < 1e-6
    sig = get_activation("tanh")
    # a wrong derivative in the backward pass: 1 − o instead of 1 − o²
    monkeypatch.setattr(type(sig), "backward", lambda self, g, net_, out: g * (1.0 - out))
    net_bad = MLP([3, 4, 2], activation="tanh", dtype="float64", seed=0)
    assert gradcheck(net_bad, X, Y).max_rel_error > 1e-3


def test_gradcheck_leaves_the_network_unchanged():
    net = MLP([2, 3, 1], seed=0)
    before = net.theta.copy()
    gradcheck(net, np.ones((2, 2)), np.zeros((2, 1)))
    assert np.array_equal(net.theta, before) and net.dtype == np.float32


def test_layer_shapes_and_views_into_one_flat_buffer():
    net = MLP([4, 3, 2], seed=0)
    l1, l2 = net.layers
    assert l1.W.shape == (4, 3) and l1.b.shape == (3,) and l2.W.shape == (3, 2) and l2.b.shape == (2,)
    assert net.theta.size == 4 * 3 + 3 + 3 * 2 + 2 == net.n_params
    for layer in net.layers:
        for view in (layer.W, layer.b):
            assert np.shares_memory(view, net.theta)
        for view in (layer.dW, layer.db):
            assert np.shares_memory(view, net.grad)
    net.theta[:] = 0.0
    assert not l1.W.any()


def test_backward_fills_dW_db_of_the_mean_loss():
    rng = np.random.default_rng(0)
    net = MLP([3, 2], activation="identity", loss="squared_error", dtype="float64", seed=0)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    out = net.forward(X)
    net.backward(Y)
    delta = (out - Y) / 4  # δ of the batch-mean of Σ ½(t − o)², identity output
    np.testing.assert_allclose(net.layers[0].dW, X.T @ delta, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].db, delta.sum(axis=0), rtol=1e-12)


def test_step_is_plain_gradient_descent():
    net = MLP([2, 2], seed=0, dtype="float64")
    net.forward([[1.0, 2.0]])
    net.backward([[0.0, 1.0]])
    before, grad = net.theta.copy(), net.grad.copy()
    net.step(0.1)
    np.testing.assert_array_equal(net.theta, before - 0.1 * grad)


def test_float32_by_default_float64_on_request():
    assert MLP([2, 1]).theta.dtype == np.float32
    assert MLP([2, 1]).forward([[1, 2]]).dtype == np.float32
    assert MLP([2, 1], dtype="float64").forward([[1, 2]]).dtype == np.float64


@pytest.mark.parametrize("init", ["uniform", "glorot_uniform", "he_normal", "he_uniform"])
def test_same_seed_same_network(init):
    a, b, c = (MLP([5, 4, 3], init=init, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a.theta, b.theta) and not np.array_equal(a.theta, c.theta)


def test_initialiser_scales():
    rng_net = MLP([400, 300], init="he_normal", seed=0, dtype="float64")
    assert rng_net.layers[0].W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert not rng_net.layers[0].b.any()
    glorot = MLP([400, 300], init="glorot_uniform", seed=0, dtype="float64")
    assert np.abs(glorot.layers[0].W).max() <= np.sqrt(6 / 700)
    uni = MLP([400, 300], init="uniform", seed=0, dtype="float64")
    assert np.abs(uni.layers[0].W).max() <= 1 / 20


def test_explicit_initial_arrays_and_get_set_weights():
    net = MLP([2, 1], init=[([[1.0], [2.0]], [3.0])], dtype="float64")
    assert net.forward([1.0, 1.0]).tolist() == pytest.approx([1 / (1 + np.exp(-6.0))])
    weights = net.get_weights()
    weights[0][0][0, 0] = 99.0  # a copy: the network is unchanged
    assert net.layers[0].W[0, 0] == 1.0
    net.set_weights(weights)
    assert net.layers[0].W[0, 0] == 99.0


def test_one_example_as_a_1d_sequence():
    net = MLP([2, 3, 2], seed=0)
    assert net.forward([0.1, 0.2]).shape == (2,)
    assert net.loss([0.1, 0.2], [0.0, 1.0]) == pytest.approx(net.loss([[0.1, 0.2]], [[0.0, 1.0]]))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    act = get_activation(name)
    net = np.linspace(-3, 3, 13).reshape(1, -1) + 0.05
    h = 1e-6
    out = act.forward(net)
    if act.elementwise:
        numeric = (act.forward(net + h) - act.forward(net - h)) / (2 * h)
        np.testing.assert_allclose(act.derivative(net, out), numeric, rtol=1e-6, atol=1e-9)
    g = np.random.default_rng(0).normal(size=net.shape)  # backward is the Jacobian applied to ∂E/∂out
    jac = np.empty((net.shape[1], net.shape[1]))
    for k in range(net.shape[1]):
        e = np.zeros_like(net)
        e[0, k] = h
        jac[:, k] = ((act.forward(net + e) - act.forward(net - e)) / (2 * h))[0]
    np.testing.assert_allclose(act.backward(g.copy(), net, out)[0], jac.T @ g[0], rtol=1e-5, atol=1e-9)


def test_sigmoid_and_softmax_do_not_overflow():
    big = np.array([[-1000.0, 0.0, 1000.0]])
    assert np.all(np.isfinite(get_activation("sigmoid").forward(big)))
    soft = get_activation("softmax").forward(big)
    assert np.all(np.isfinite(soft)) and soft.sum() == pytest.approx(1.0)


def test_fused_cross_entropy_delta_and_stable_loss():
    net = MLP([2, 3], activation="identity", output_activation="softmax", loss="cross_entropy", dtype="float64")
    net.set_weights([(np.array([[500.0, -500.0, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3))])
    E = net.loss([[1.0, 0.0]], [1])  # the true class gets probability e^-1000: a finite, huge loss
    assert np.isfinite(E) and E == pytest.approx(1000.0)
    out = net.forward([[1.0, 0.0]])
    net.backward(np.array([1]))
    assert np.all(np.isfinite(net.grad))
    np.testing.assert_allclose(net.layers[0].db, out[0] - [0, 1, 0])  # δ = o − t


def test_binary_cross_entropy_is_stable_for_saturated_outputs():
    net = MLP([1, 1], output_activation="sigmoid", loss="binary_cross_entropy", init=[([[800.0]], [0.0])])
    assert net.loss([[1.0]], [[0.0]]) == pytest.approx(800.0, rel=1e-6)


def test_cross_entropy_accepts_one_hot_or_indices():
    net = MLP([2, 3], output_activation="softmax", loss="cross_entropy", seed=0, dtype="float64")
    X = np.array([[0.1, 0.2], [0.3, -0.1]])
    assert net.loss(X, [2, 0]) == pytest.approx(net.loss(X, [[0, 0, 1], [1, 0, 0]]))


def test_frozen_biases_do_not_move():
    net = MLP([2, 2, 1], seed=0)
    net.freeze_biases([0])
    b0, b1 = net.layers[0].b.copy(), net.layers[1].b.copy()
    net.forward([[1.0, 1.0]])
    net.backward([[0.0]])
    net.step(1.0)
    assert np.array_equal(net.layers[0].b, b0) and not np.array_equal(net.layers[1].b, b1)
    assert net.frozen_mask().sum() == 2


def test_summary_and_config():
    net = MLP([3, 5, 2], activation="relu", output_activation="softmax", loss="cross_entropy")
    assert "total 32 parameters" in net.summary()
    cfg = net.get_config()
    assert cfg["layer_sizes"] == [3, 5, 2] and cfg["activations"][-1] == {"name": "softmax"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_loss_from_the_softmax_equals_the_loss_from_probabilities(dtype):
    # the training loop's cross-entropy reuses the softmax's row max and row sum (Network._batch_loss)
    rng = np.random.default_rng(0)
    net = MLP([5, 7, 4], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0, dtype=dtype)
    X = rng.standard_normal((9, 5)).astype(dtype) * 30  # large net inputs: some probabilities underflow to 0
    soft = rng.uniform(0.0, 1.0, (9, 4)).astype(dtype)  # probability rows that do not sum to 1 count as given
    net._reuse_buffers = True
    out = net._forward(X)
    kept = net.layers[-1].activation.kept
    assert kept is not None and kept[0] is out
    out64 = out.astype(np.float64)
    net64 = net.layers[-1].net.astype(np.float64)
    log_softmax = net64 - net64.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    expected = float(-(soft * log_softmax).sum() / 9)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert net._batch_loss(out, soft) == pytest.approx(expected, rel=rtol)
    assert net.loss_function.value(out, soft, net.layers[-1].net) == pytest.approx(expected, rel=rtol)
    assert np.all(np.isfinite(out64))
    other = out.copy()  # not the array the softmax kept: computed from net again, same value
    assert net._batch_loss(other, soft) == pytest.approx(expected, rel=rtol)
