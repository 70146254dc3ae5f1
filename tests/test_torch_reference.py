"""Gradients agree with PyTorch autograd (an independent reference, test-only) in float64 to 1e-10."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import MLP

torch = pytest.importorskip("torch", reason="PyTorch (test-only reference) is not installed: pip install torch==2.13.0")

TORCH_ACT = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "elu": torch.nn.functional.elu,
    "softplus": torch.nn.functional.softplus,
    "identity": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


def torch_loss(name, out, net, t):
    n = out.shape[0]
    if name == "squared_error":
        return 0.5 * ((t - out) ** 2).sum() / n
    if name == "mse":
        return ((t - out) ** 2).mean()
    if name == "cross_entropy":
        return torch.nn.functional.cross_entropy(net, t, reduction="sum") / n
    if name == "binary_cross_entropy":
        return torch.nn.functional.binary_cross_entropy_with_logits(net, t, reduction="sum") / n
    raise AssertionError(name)


CASES = [
    ("sigmoid", "sigmoid", "squared_error"),
    ("tanh", "identity", "mse"),
    ("relu", "softmax", "cross_entropy"),
    ("leaky_relu", "sigmoid", "binary_cross_entropy"),
    ("elu", "softmax", "squared_error"),
    ("softplus", "tanh", "squared_error"),
    ("identity", "relu", "mse"),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("hidden,output,loss", CASES)
def test_gradients_match_torch_autograd(hidden, output, loss, seed):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(2, 9, size=int(rng.integers(3, 6)))]
    net = MLP(sizes, activation=hidden, output_activation=output, loss=loss, dtype="float64", seed=seed)
    n = 16
    X = rng.normal(size=(n, sizes[0]))
    if loss == "cross_entropy":
        Y = rng.integers(0, sizes[-1], size=n)
        t = torch.from_numpy(Y)
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, size=(n, sizes[-1])).astype(float)
        t = torch.from_numpy(Y)
    else:
        Y = rng.normal(size=(n, sizes[-1]))
        t = torch.from_numpy(Y)
    net.forward(X)
    net.backward(Y)

    params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in net.get_weights()]
    out = torch.from_numpy(X)
    acts = [hidden] * (len(sizes) - 2) + [output]
    z = out
    for (W, b), act in zip(params, acts):
        z = out @ W + b
        out = TORCH_ACT[act](z)
    torch_loss(loss, out, z, t).backward()
    for layer, (W, b) in zip(net.layers, params):
        np.testing.assert_allclose(layer.dW, W.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.db, b.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert net.loss(X, Y) == pytest.approx(float(torch_loss(loss, out, z, t)), rel=1e-12)
