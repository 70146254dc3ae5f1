"""``deltaprop bench``: train the same network with the same hyperparameters in deltaprop, PyTorch, scikit-learn
and a plain NumPy loop, and report medians, speed ratios, GFLOP/s, the share of the measured matrix-multiply
peak, peak memory and the final training loss.

Every system runs in its own worker process (so that each one's peak memory is its own), and the workers take
turns: after a warm-up, repeat ``r`` runs every system once, in an order rotated by ``r``. A fifth "system",
``gemm``, times nothing but the matrix products one training step needs (forward X·W, weight gradients outᵀ·δ,
input gradients δ·Wᵀ) with ``np.matmul`` on preallocated arrays, for the same batches: the floor that any
NumPy-based trainer can reach on this machine, measured in the same run on the same shapes.

FLOPs are counted exactly and per example, with P the number of *weights* (biases are not counted, nor
activations, the loss or the update, which are O(units), not O(weights), per example): forward 2·P, weight
gradients 2·P, input gradients 2·(P − P₁) where P₁ is the first layer's weights (no δ is sent to the inputs).

>>> flops_per_example([784, 512, 256, 10])
2407424

PyTorch and scikit-learn are imported only in their own workers; a peer that is not installed is skipped with a
note. ``main(argv)`` is the entry point (``deltaprop bench``, ``python -m deltaprop.benchmark``,
``bench/run.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "WORKLOADS",
    "SYSTEMS",
    "Workload",
    "flops_per_example",
    "workload_flops",
    "run_benchmark",
    "format_report",
    "machine_info",
    "import_times",
    "main",
]

# ---------------------------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One training task, the same for every system."""

    key: str
    title: str
    sizes: tuple[int, ...]
    hidden: str  # "relu" or "sigmoid"
    output: str  # "softmax_ce" (softmax + cross-entropy, class labels) or "sigmoid_se" (sigmoid + ½Σ(t−o)²)
    optimizer: str  # "sgd" or "adam"
    lr: float
    momentum: float
    batch_size: int
    epochs: int  # passes over the data (S: steps on its one example)
    n: int  # examples used (0: the whole data set)
    repeats: int
    warmup_n: int  # examples for the warm-up run (0: all)
    warmup_epochs: int
    systems: tuple[str, ...]
    data: str  # "synthetic", "digits" or "worked"

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(max(self.n, 1) / self.batch_size)


WORKLOADS: dict[str, Workload] = {
    "L": Workload(
        key="L",
        title="L: 60,000 x 784 synthetic, 784-512-256-10 ReLU, softmax CE, SGD momentum 0.9, lr 0.01, batch 128, "
        "1 epoch",
        sizes=(784, 512, 256, 10),
        hidden="relu",
        output="softmax_ce",
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        batch_size=128,
        epochs=1,
        n=60_000,
        repeats=7,  # L varies most from run to run on a shared machine (3 repeats once gave 94 % and 81 % by minima)
        warmup_n=4096,
        warmup_epochs=1,
        systems=("deltaprop", "torch", "sklearn", "numpy", "gemm"),
        data="synthetic",
    ),
    "M": Workload(
        key="M",
        title="M: digits 1,797 x 64 standardised, 64-128-10 ReLU, softmax CE, Adam lr 1e-3, batch 32, 20 epochs",
        sizes=(64, 128, 10),
        hidden="relu",
        output="softmax_ce",
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        batch_size=32,
        epochs=20,
        n=1797,
        repeats=5,
        warmup_n=0,
        warmup_epochs=1,
        systems=("deltaprop", "torch", "sklearn", "numpy", "gemm"),
        data="digits",
    ),
    "S": Workload(
        key="S",
        title="S: the seed's 2-2-2 sigmoid worked example, biases trained, squared error, GD lr 0.5, 10,000 steps",
        sizes=(2, 2, 2),
        hidden="sigmoid",
        output="sigmoid_se",
        optimizer="sgd",
        lr=0.5,
        momentum=0.0,
        batch_size=1,
        epochs=10_000,
        n=1,
        repeats=5,
        warmup_n=0,
        warmup_epochs=500,
        systems=("deltaprop", "deltaprop-fit", "torch", "numpy", "gemm"),
        data="worked",
    ),
    "O": Workload(
        key="O",
        title="O: online (batch 1) on digits, 64-32-10 sigmoid hidden, softmax CE, SGD lr 0.1, 1 epoch",
        sizes=(64, 32, 10),
        hidden="sigmoid",
        output="softmax_ce",
        optimizer="sgd",
        lr=0.1,
        momentum=0.0,
        batch_size=1,
        epochs=1,
        n=1797,
        repeats=5,
        warmup_n=200,
        warmup_epochs=1,
        systems=("deltaprop", "deltaprop-engine", "torch", "sklearn", "numpy", "gemm"),
        data="digits",
    ),
}

QUICK = {
    "L": {"n": 2048, "repeats": 2, "warmup_n": 256},
    "M": {"epochs": 2, "repeats": 2, "warmup_n": 256},
    "S": {"epochs": 300, "repeats": 2, "warmup_epochs": 50},
    "O": {"n": 300, "repeats": 2, "warmup_n": 50},
}

SYSTEMS: dict[str, str] = {
    "deltaprop": "deltaprop Network.fit (S: the seed's loop, compiled by deltaprop.kernels when numba is installed)",
    "deltaprop-fit": "deltaprop Network.fit(batch_size=1, optimizer='sgd'), one epoch per step",
    "deltaprop-engine": "deltaprop engine loop: _forward/_backward/step per example (plain SGD)",
    "torch": "PyTorch eager, CPU, torch.optim, threads = cores",
    "sklearn": "scikit-learn MLPClassifier (alpha=0, tol=0)",
    "numpy": "plain NumPy loop (bench/peers.py: numpy_train)",
    "gemm": "np.matmul of exactly the step's GEMMs on preallocated arrays (the floor)",
}

#: module each peer needs; a system whose module is missing is skipped with a note
PEER_MODULES: dict[str, str] = {"torch": "torch", "sklearn": "sklearn"}
_PEER_INSTALL = {"torch": "pip install torch", "sklearn": "pip install scikit-learn"}


# ---------------------------------------------------------------------------------------------- FLOPs


def n_weights(sizes: Sequence[int]) -> int:
    """P, the number of weights (biases excluded)."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def flops_per_example(sizes: Sequence[int]) -> int:
    """Exact GEMM FLOPs of one training step per example: forward 2P, weight grads 2P, input grads 2(P − P₁)."""
    P = n_weights(sizes)
    P1 = sizes[0] * sizes[1]
    return 2 * P + 2 * P + 2 * (P - P1)


def workload_flops(w: Workload) -> int:
    """FLOPs of one whole run of workload ``w`` (every example of every epoch)."""
    return flops_per_example(w.sizes) * w.n * w.epochs


# ---------------------------------------------------------------------------------------------- data


@dataclass
class Data:
    X: np.ndarray  # float32 (n, n_in)
    T: np.ndarray  # float32 targets (n, n_out): one-hot rows, or the regression targets of S
    y: np.ndarray | None  # int64 class labels, or None (S)
    epochs: int

    def head(self, n: int, epochs: int) -> Data:
        n = self.X.shape[0] if n <= 0 else min(n, self.X.shape[0])
        return Data(self.X[:n], self.T[:n], None if self.y is None else self.y[:n], epochs)


def synthetic_data(n: int, n_in: int = 784, n_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal float32 inputs, labels from a fixed random linear teacher (argmax of X·W_teacher).

    Made without a float64 copy of X, so that the dataset costs exactly its float32 bytes.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in), dtype=np.float32)
    teacher = rng.standard_normal((n_in, n_classes))
    y = np.empty(n, dtype=np.int64)
    for lo in range(0, n, 4096):
        y[lo : lo + 4096] = np.argmax(X[lo : lo + 4096].astype(np.float64) @ teacher, axis=1)
    return X, y


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """deltaprop's shipped digits (the same as scikit-learn's load_digits), standardised per column, float32."""
    from .datasets import digits

    ds = digits()
    X = ds.X
    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    return ((X - X.mean(axis=0)) / sd).astype(np.float32), ds.y.astype(np.int64)


WORKED_X = [[0.05, 0.10]]
WORKED_T = [[0.01, 0.99]]
WORKED_INIT = [([[0.15, 0.25], [0.20, 0.30]], [0.35, 0.35]), ([[0.40, 0.50], [0.45, 0.55]], [0.60, 0.60])]


def make_data(w: Workload) -> Data:
    if w.data == "synthetic":
        X, y = synthetic_data(w.n, w.sizes[0], w.sizes[-1])
    elif w.data == "digits":
        X, y = digits_data()
        X, y = X[: w.n], y[: w.n]
    else:
        X = np.array(WORKED_X, dtype=np.float32)
        return Data(X, np.array(WORKED_T, dtype=np.float32), None, w.epochs)
    T = np.zeros((X.shape[0], w.sizes[-1]), dtype=np.float32)
    T[np.arange(X.shape[0]), y] = 1.0
    return Data(X, T, y, w.epochs)


def initial_weights(w: Workload, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same starting point for every system: PyTorch's nn.Linear default, U(±1/√n_in) for W and b.

    S starts from the worked example's published weights. W has shape (n_in, n_out).
    """
    if w.data == "worked":
        return [(np.array(W, dtype=np.float32), np.array(b, dtype=np.float32)) for W, b in WORKED_INIT]
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(w.sizes[:-1], w.sizes[1:]):
        bound = 1.0 / math.sqrt(a)
        out.append(
            (
                rng.uniform(-bound, bound, (a, b)).astype(np.float32),
                rng.uniform(-bound, bound, b).astype(np.float32),
            )
        )
    return out


def evaluate(w: Workload, weights: Sequence[tuple[np.ndarray, np.ndarray]], data: Data) -> dict[str, float]:
    """Training loss (and accuracy) of final ``weights`` on the whole training set, in float64, the same for all."""
    total, correct, n = 0.0, 0, data.X.shape[0]
    for lo in range(0, n, 4096):
        a = data.X[lo : lo + 4096].astype(np.float64)
        for i, (W, b) in enumerate(weights):
            z = a @ np.asarray(W, dtype=np.float64) + np.asarray(b, dtype=np.float64)
            if i < len(weights) - 1:
                a = np.maximum(z, 0.0) if w.hidden == "relu" else 1.0 / (1.0 + np.exp(-z))
            else:
                a = z
        t = data.T[lo : lo + 4096]
        if w.output == "softmax_ce":
            m = a.max(axis=1, keepdims=True)
            logp = a - m - np.log(np.exp(a - m).sum(axis=1, keepdims=True))
            total += float(-(t * logp).sum())
            assert data.y is not None
            correct += int((a.argmax(axis=1) == data.y[lo : lo + 4096]).sum())
        else:
            o = 1.0 / (1.0 + np.exp(-a))
            total += float(0.5 * ((t - o) ** 2).sum())
    result = {"loss": total / n}
    if w.output == "softmax_ce":
        result["accuracy"] = correct / n
    return result


# ---------------------------------------------------------------------------------------------- systems
# Each system is (setup, train, weights): setup(init) builds the model with the initial weights (not timed),
# train(state, data) trains it (timed) and returns the system's own running loss of the last epoch (or None),
# weights(state) returns the final [(W, b), ...] with W of shape (n_in, n_out).

SystemImpl = tuple[Callable[[Any], Any], Callable[[Any, Data], Any], Callable[[Any], Any]]


def _deltaprop_system(w: Workload, name: str) -> SystemImpl:
    import deltaprop

    def setup(init: Any) -> Any:
        if w.output == "softmax_ce":
            net = deltaprop.MLP(
                list(w.sizes),
                activation=w.hidden,
                output_activation="softmax",
                loss="cross_entropy",
                dtype="float32",
                seed=0,
            )
        else:
            net = deltaprop.MLP(list(w.sizes), activation="sigmoid", loss="squared_error", dtype="float32", seed=0)
        net.set_weights(init)
        return net

    def optimizer() -> Any:
        from deltaprop import optim

        if w.optimizer == "adam":
            return optim.Adam(lr=w.lr)
        return optim.SGD(lr=w.lr, momentum=w.momentum) if w.momentum else optim.SGD(lr=w.lr)

    def train_fit(net: Any, d: Data) -> Any:
        if w.output == "softmax_ce":
            hist = net.fit(
                d.X,
                d.y,
                epochs=d.epochs,
                batch_size=w.batch_size,
                optimizer=optimizer(),
                shuffle=True,
                seed=0,
                verbose=0,
            )
        else:  # S: one example, one update per epoch
            hist = net.fit(
                d.X,
                d.T,
                epochs=d.epochs,
                batch_size=1,
                optimizer="sgd",
                lr=w.lr,
                shuffle=False,
                task="regression",
                verbose=0,
            )
        return hist.loss[-1]

    def train_kernel_worked(net: Any, d: Data) -> Any:
        from deltaprop import kernels

        # the seed's loop compiled (numba): the same forward/backward/update per step as the engine
        kernels.repeat_steps(net, d.X[0], d.T[0], w.lr, d.epochs + 1)
        return None

    def train_engine_worked(net: Any, d: Data) -> Any:
        X, T, lr = d.X, d.T, w.lr
        fwd, bwd, step = net._forward, net._backward, net.step
        for _ in range(d.epochs):
            fwd(X)
            bwd(T)
            step(lr)
        return None

    def train_engine_online(net: Any, d: Data) -> Any:
        X, T, lr = d.X, d.T, w.lr
        rng = np.random.default_rng(0)
        fwd, bwd, step = net._forward, net._backward, net.step
        for _ in range(d.epochs):
            for i in rng.permutation(X.shape[0]).tolist():
                fwd(X[i : i + 1])
                bwd(T[i : i + 1])
                step(lr)
        return None

    def weights(net: Any) -> Any:
        return net.get_weights()

    if name == "deltaprop-fit" or (name == "deltaprop" and w.data != "worked"):
        return setup, train_fit, weights
    if w.data == "worked":
        if name == "deltaprop":
            from deltaprop import kernels

            if kernels.available():
                return setup, train_kernel_worked, weights
        return setup, train_engine_worked, weights
    return setup, train_engine_online, weights


def _torch_system(w: Workload) -> SystemImpl:
    import torch

    torch.set_num_threads(int(os.environ.get("DELTAPROP_BENCH_THREADS") or os.cpu_count() or 1))
    F = torch.nn.functional

    def setup(init: Any) -> Any:
        mods: list[Any] = []
        for i, (W, b) in enumerate(init):
            lin = torch.nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if i < len(init) - 1:
                mods.append(torch.nn.ReLU() if w.hidden == "relu" else torch.nn.Sigmoid())
        if w.output == "sigmoid_se":
            mods.append(torch.nn.Sigmoid())
        model = torch.nn.Sequential(*mods)
        if w.optimizer == "adam":
            opt: Any = torch.optim.Adam(model.parameters(), lr=w.lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=w.lr, momentum=w.momentum)
        return model, opt

    def train(state: Any, d: Data) -> Any:
        model, opt = state
        X = torch.from_numpy(d.X)
        n, bs = X.shape[0], w.batch_size
        if w.output == "sigmoid_se":  # S: one example, the same batch every step
            T = torch.from_numpy(d.T)
            loss = None
            for _ in range(d.epochs):
                opt.zero_grad()
                out = model(X)
                loss = 0.5 * ((out - T) ** 2).sum() / n
                loss.backward()
                opt.step()
            return None if loss is None else float(loss.item())
        assert d.y is not None
        y = torch.from_numpy(d.y)
        rng = np.random.default_rng(0)  # the same batches as deltaprop and the plain loop (not torch.randperm)
        running = 0.0
        for _ in range(d.epochs):
            perm = torch.from_numpy(rng.permutation(n))
            running = 0.0
            for lo in range(0, n, bs):
                idx = perm[lo : lo + bs]
                xb, yb = X[idx], y[idx]
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                running += loss.item() * xb.shape[0]
        return running / n

    def weights(state: Any) -> Any:
        model = state[0]
        lins = [m for m in model if isinstance(m, torch.nn.Linear)]
        return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lins]

    return setup, train, weights


def _sklearn_system(w: Workload) -> SystemImpl:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def setup(init: Any) -> Any:
        clf = MLPClassifier(
            hidden_layer_sizes=tuple(w.sizes[1:-1]),
            activation="relu" if w.hidden == "relu" else "logistic",
            solver=w.optimizer,
            alpha=0.0,
            batch_size=w.batch_size,
            learning_rate="constant",
            learning_rate_init=w.lr,
            momentum=w.momentum,
            nesterovs_momentum=False,
            max_iter=1,
            shuffle=True,
            random_state=0,
            tol=0.0,
            n_iter_no_change=1_000_000_000,
            warm_start=True,
        )
        # one tiny fit sets every attribute (classes, layer count); then the common initial weights replace its own
        k = w.sizes[-1]
        Xs = np.zeros((k, w.sizes[0]), dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Xs, np.arange(k))
        clf.coefs_ = [np.array(W, dtype=np.float32) for W, _ in init]
        clf.intercepts_ = [np.array(b, dtype=np.float32) for _, b in init]
        return clf

    def train(clf: Any, d: Data) -> Any:
        clf.max_iter = d.epochs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(d.X, d.y)
        return float(clf.loss_curve_[-1])

    def weights(clf: Any) -> Any:
        return list(zip(clf.coefs_, clf.intercepts_))

    return setup, train, weights


def _numpy_system(w: Workload) -> SystemImpl:
    def setup(init: Any) -> Any:
        return [(W.copy(), b.copy()) for W, b in init]

    def train(params: Any, d: Data) -> Any:
        new, loss = numpy_train(
            d.X,
            d.T,
            params,
            hidden=w.hidden,
            output=w.output,
            optimizer=w.optimizer,
            lr=w.lr,
            momentum=w.momentum,
            batch_size=w.batch_size,
            epochs=d.epochs,
            shuffle=w.data != "worked",
        )
        params[:] = new
        return loss

    def weights(params: Any) -> Any:
        return params

    return setup, train, weights


def _gemm_system(w: Workload) -> SystemImpl:
    """Only the matrix products of each training step, into preallocated arrays (values are irrelevant)."""
    sizes, bs, L = w.sizes, w.batch_size, len(w.sizes) - 1

    def setup(init: Any) -> Any:
        rng = np.random.default_rng(1)
        Ws = [np.array(W, dtype=np.float32) for W, _ in init]
        Z = [np.empty((bs, b), dtype=np.float32) for b in sizes[1:]]  # X·W of each layer
        dW = [np.empty_like(W) for W in Ws]
        D = [rng.standard_normal((bs, b), dtype=np.float32) * 0.01 for b in sizes[1:]]  # δ of each layer
        return Ws, Z, dW, D

    def train(state: Any, d: Data) -> Any:
        Ws, Z, dW, D = state
        X, n, mm = d.X, d.X.shape[0], np.matmul
        for _ in range(d.epochs):
            for lo in range(0, n, bs):
                x = X[lo : lo + bs]
                m = x.shape[0]
                a = x
                for i in range(L):  # forward: X·W
                    mm(a, Ws[i], out=Z[i][:m])
                    a = Z[i][:m]
                for i in range(L - 1, -1, -1):
                    inp = x if i == 0 else Z[i - 1][:m]
                    mm(inp.T, D[i][:m], out=dW[i])  # weight gradients: outᵀ·δ
                    if i > 0:
                        mm(D[i][:m], Ws[i].T, out=D[i - 1][:m])  # input gradients: δ·Wᵀ
        return None

    return setup, train, lambda state: None


def make_system(w: Workload, name: str) -> SystemImpl:
    if name.startswith("deltaprop"):
        return _deltaprop_system(w, name)
    if name == "torch":
        return _torch_system(w)
    if name == "sklearn":
        return _sklearn_system(w)
    if name == "numpy":
        return _numpy_system(w)
    if name == "gemm":
        return _gemm_system(w)
    raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")


# ---------------------------------------------------------------------------------------------- the plain loop


def numpy_train(
    X: np.ndarray,
    T: np.ndarray,
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    hidden: str = "relu",
    output: str = "softmax_ce",
    optimizer: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.0,
    batch_size: int = 32,
    epochs: int = 1,
    shuffle: bool = True,
    seed: int = 0,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """The plain loop: a straightforward mini-batch MLP trainer in NumPy, as one would write it by hand.

    Returns the trained [(W, b), ...] and the mean loss over the last epoch's batches.
    """
    P = [p.copy() for W, b in params for p in (W, b)]  # W0, b0, W1, b1, ...
    m1 = [np.zeros_like(p) for p in P]  # momentum / Adam first moment
    m2 = [np.zeros_like(p) for p in P] if optimizer == "adam" else []
    L, n, t, rng, total = len(P) // 2, X.shape[0], 0, np.random.default_rng(seed), 0.0
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        total = 0.0
        for lo in range(0, n, batch_size):
            idx = order[lo : lo + batch_size]
            acts = [X[idx]]
            tb, m = T[idx], idx.shape[0]
            for i in range(L):
                z = acts[-1] @ P[2 * i] + P[2 * i + 1]
                if i < L - 1:
                    acts.append(np.maximum(z, 0.0) if hidden == "relu" else 1.0 / (1.0 + np.exp(-z)))
                elif output == "softmax_ce":
                    z -= z.max(axis=1, keepdims=True)
                    e = np.exp(z)
                    s = e.sum(axis=1, keepdims=True)
                    total += float(-(tb * (z - np.log(s))).sum())
                    acts.append(e / s)
                else:
                    acts.append(1.0 / (1.0 + np.exp(-z)))
            out = acts[-1]
            if output == "softmax_ce":
                delta = (out - tb) / m
            else:
                diff = out - tb
                total += float(0.5 * (diff * diff).sum())
                delta = diff * out * (1.0 - out) / m
            grads: list[np.ndarray] = [np.empty(0)] * len(P)
            for i in range(L - 1, -1, -1):
                grads[2 * i] = acts[i].T @ delta
                grads[2 * i + 1] = delta.sum(axis=0)
                if i > 0:
                    a = acts[i]
                    delta = (delta @ P[2 * i].T) * ((a > 0) if hidden == "relu" else a * (1.0 - a))
            t += 1
            for p, g, v, k in zip(P, grads, m1, range(len(P))):
                if optimizer == "adam":
                    v *= beta1
                    v += (1.0 - beta1) * g
                    s2 = m2[k]
                    s2 *= beta2
                    s2 += (1.0 - beta2) * g * g
                    step = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
                    p -= step * v / (np.sqrt(s2) + eps * math.sqrt(1.0 - beta2**t))
                elif momentum:
                    v *= momentum
                    v += g
                    p -= lr * v
                else:
                    p -= lr * g
    return [(P[2 * i], P[2 * i + 1]) for i in range(L)], total / n


# ---------------------------------------------------------------------------------------------- worker


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _maxrss_bytes() -> int:
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(r) if sys.platform == "darwin" else int(r) * 1024
    except ImportError:  # Windows
        return 0


def _threadpools() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "num_threads", "version", "architecture", "threading_layer", "prefix")
    return [{k: v for k, v in info.items() if k in keep} for info in threadpool_info()]


def _worker(spec: dict[str, Any]) -> int:
    """One system on one workload: warm up, then one timed run per 'run' line on stdin, answers on stdout."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answers
    sys.stdout = sys.stderr

    def send(msg: dict[str, Any]) -> None:
        channel.write(json.dumps(msg) + "\n")
        channel.flush()

    w = Workload(**{**spec["workload"], "sizes": tuple(spec["workload"]["sizes"])})
    name = spec["system"]
    try:
        impl = make_system(w, name)  # imports the system's library
        setup, train, get_weights = impl
        if name == "torch":
            import torch

            extra = {"torch_threads": torch.get_num_threads(), "torch_config": _torch_blas(torch)}
        else:
            extra = {}
        rss_base = _rss_bytes()
        data = make_data(w)
        init = initial_weights(w)
        with np.errstate(all="ignore"):
            train(setup(init), data.head(w.warmup_n, w.warmup_epochs))  # warm-up on a slice
        send({"ready": True, "rss_base": rss_base, "threadpools": _threadpools(), **extra})
    except Exception as exc:  # report, don't hang the parent
        import traceback

        send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return 1
    state: Any = None
    own_loss: Any = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            try:
                state = setup(init)
                with np.errstate(all="ignore"):
                    t0 = time.perf_counter()
                    own_loss = train(state, data)
                    seconds = time.perf_counter() - t0
                send({"seconds": seconds})
            except Exception as exc:
                import traceback

                send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
                return 1
        elif cmd["op"] == "finish":
            result: dict[str, Any] = {"maxrss": _maxrss_bytes(), "data_bytes": int(data.X.nbytes + data.T.nbytes)}
            if data.y is not None:
                result["data_bytes"] += int(data.y.nbytes)
            result["data_bytes_x"] = int(data.X.nbytes)
            weights = get_weights(state) if state is not None else None
            if weights is not None:
                result.update({f"eval_{k}": v for k, v in evaluate(w, weights, data).items()})
            result["own_loss"] = None if own_loss is None or not math.isfinite(own_loss) else float(own_loss)
            if cmd.get("tracemalloc") and name not in ("torch", "gemm"):
                import tracemalloc

                st = setup(init)
                tracemalloc.start()
                tracemalloc.reset_peak()
                with np.errstate(all="ignore"):
                    train(st, data)
                result["traced_peak"] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            send(result)
            return 0
    return 0


def _torch_blas(torch: Any) -> str:
    cfg = torch.__config__.show()
    for part in cfg.replace("\n", ",").split(","):
        if "BLAS_INFO=" in part:
            return "BLAS " + part.split("BLAS_INFO=", 1)[1].strip()
    return ""


class _WorkerHandle:
    def __init__(self, w: Workload, system: str, threads: int | None = None) -> None:
        self.system = system
        self.err = tempfile.TemporaryFile(mode="w+")
        spec = {"workload": {**w.__dict__, "sizes": list(w.sizes)}, "system": system}
        env = dict(os.environ)
        if threads:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "DELTAPROP_BENCH_THREADS"):
                env[var] = str(threads)
        else:  # threads = cores for every library, whatever the calling environment says
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "DELTAPROP_BENCH_THREADS"):
                env.pop(var, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deltaprop.benchmark", "--worker", json.dumps(spec)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            bufsize=1,
        )

    def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            return {"error": f"worker exited with code {self.proc.returncode}", "traceback": self.stderr_tail()}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"error": "worker died", "traceback": self.stderr_tail()}
        return self.recv()

    def stderr_tail(self, n: int = 2000) -> str:
        self.err.seek(0)
        return self.err.read()[-n:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.err.close()


# ---------------------------------------------------------------------------------------------- the run


@dataclass
class SystemResult:
    system: str
    times: list[float] = field(default_factory=list)
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def _missing_peer(system: str) -> str | None:
    import importlib.util

    module = PEER_MODULES.get(system)
    if module is None:
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f"skipped: {module} is not installed ({_PEER_INSTALL.get(system, 'pip install ' + module)})"


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


#: Seconds of idle time before each timed run: after a run, its library's idle threads keep spinning for a while
#: (OpenBLAS's about 0.1 s, bench/after_product.py; Intel OpenMP's 0.2 s by default), and a run that starts meanwhile
#: shares the cores with them. Every system gets the same quiet start.
IDLE_BEFORE_RUN = 0.5


def run_workload(
    w: Workload,
    systems: Sequence[str] | None = None,
    *,
    threads: int | None = None,
    quiet: bool = False,
    idle: float = IDLE_BEFORE_RUN,
) -> dict[str, Any]:
    """Run every system of ``w`` in its own worker, alternating, and collect times, losses and memory; ``idle``
    seconds pass before each timed run (see IDLE_BEFORE_RUN)."""
    names = [s for s in (systems or w.systems) if s in w.systems]
    results = {s: SystemResult(s) for s in names}
    handles: dict[str, _WorkerHandle] = {}
    try:
        for s in names:
            missing = _missing_peer(s)
            if missing:
                results[s].note = missing
                _log(f"  [{w.key}] {s}: {missing}", quiet)
                continue
            _log(f"  [{w.key}] {s}: starting, warming up", quiet)
            h = _WorkerHandle(w, s, threads)
            ready = h.recv()
            if "error" in ready:
                results[s].note = f"failed: {ready['error']}"
                results[s].info["traceback"] = ready.get("traceback", "")
                _log(f"  [{w.key}] {s}: {results[s].note}", quiet)
                h.close()
                continue
            results[s].info.update({k: v for k, v in ready.items() if k != "ready"})
            handles[s] = h
        live = list(handles)
        for r in range(w.repeats):
            order = live[r % len(live) :] + live[: r % len(live)] if live else []
            for s in order:
                if s not in handles:
                    continue
                time.sleep(idle)  # the previous run's threads have stopped spinning
                ans = handles[s].send({"op": "run"})
                if "error" in ans:
                    results[s].note = f"failed: {ans['error']}"
                    results[s].info["traceback"] = ans.get("traceback", "")
                    handles.pop(s).close()
                    continue
                results[s].times.append(ans["seconds"])
                _log(f"  [{w.key}] repeat {r + 1}/{w.repeats} {s}: {ans['seconds']:.4f} s", quiet)
        for s, h in list(handles.items()):
            ans = h.send({"op": "finish", "tracemalloc": True})
            if "error" in ans:
                results[s].note = f"failed at the end: {ans['error']}"
            else:
                results[s].info.update(ans)
    finally:
        for h in handles.values():
            h.close()
    return {
        "workload": {**w.__dict__, "sizes": list(w.sizes)},
        "flops_per_example": flops_per_example(w.sizes),
        "flops": workload_flops(w),
        "systems": {s: {"times": r.times, "median": r.median, "note": r.note, **r.info} for s, r in results.items()},
    }


def machine_info() -> dict[str, Any]:
    """CPU model, SIMD flags, cores, library versions and BLAS of this machine."""
    from importlib import metadata

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu_model"] = fields.get("Model name", "")
        flags = set(fields.get("Flags", "").split())
        info["simd"] = [f for f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
        info["cores_per_socket"] = fields.get("Core(s) per socket", "")
        info["sockets"] = fields.get("Socket(s)", "")
        info["threads_per_core"] = fields.get("Thread(s) per core", "")
        info["l2"] = fields.get("L2 cache", "")
        info["l3"] = fields.get("L3 cache", "")
        info["hypervisor"] = fields.get("Hypervisor vendor", "")
    except (OSError, subprocess.SubprocessError, ValueError):
        info["cpu_model"] = platform.processor()
    versions: dict[str, str | None] = {}
    for pkg in ("deltaprop", "numpy", "torch", "scikit-learn", "threadpoolctl"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    info["versions"] = versions
    try:
        cfg = np.show_config(mode="dicts")  # type: ignore[call-arg]
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        info["numpy_blas_config"] = blas.get("openblas configuration", "")
    except Exception:  # older NumPy
        info["numpy_blas"] = "unknown"
    info["threadpools"] = _threadpools()
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def square_sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of one large square np.matmul (a reference for the machine's peak)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def import_times(repeats: int = 7) -> dict[str, Any]:
    """Wall time of ``python -c "import X"`` in fresh processes (median), and the in-process import time."""
    cmds = {
        "python -c pass": "pass",
        "python -c 'import numpy'": "import numpy",
        "python -c 'import deltaprop'": "import deltaprop",
    }
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    inproc: list[float] = []
    probe = "import time; t = time.perf_counter(); import deltaprop; print(time.perf_counter() - t)"
    for _ in range(repeats):
        for label, code in cmds.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            walls[label].append(time.perf_counter() - t0)
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        inproc.append(float(out.strip()))
    return {
        "wall_median": {k: statistics.median(v) for k, v in walls.items()},
        "deltaprop_in_process_median": statistics.median(inproc),
        "repeats": repeats,
    }


def run_benchmark(
    workloads: Sequence[str] = ("L", "M", "S", "O"),
    *,
    quick: bool = False,
    repeats: int | None = None,
    systems: Sequence[str] | None = None,
    measure_import: bool = True,
    threads: int | None = None,
    quiet: bool = False,
    idle: float | None = None,
) -> dict[str, Any]:
    """Run the benchmark; return everything measured as plain data (see :func:`format_report`). ``idle``: seconds
    before each timed run (default IDLE_BEFORE_RUN, 0.05 for ``quick``)."""
    if idle is None:
        idle = 0.05 if quick else IDLE_BEFORE_RUN
    if idle < 0:
        raise ValueError(f"idle must be 0 or more seconds, got {idle}")
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "quick": quick,
        "threads": threads,
        "idle_before_run": idle,
        "machine": machine_info(),
        "workloads": {},
        "load": [_loadavg()],
    }
    _log("measuring the square sgemm reference", quiet)
    report["machine"]["sgemm_square"] = {
        "n": 512 if quick else 2048,
        "gflops": square_sgemm_gflops(512 if quick else 2048, 3 if quick else 5),
    }
    if measure_import:
        _log("measuring import times", quiet)
        report["import"] = import_times(3 if quick else 7)
    for key in workloads:
        if key not in WORKLOADS:
            raise ValueError(f"unknown workload {key!r}; choose from {', '.join(WORKLOADS)}")
        w = WORKLOADS[key]
        if quick:
            w = replace(w, **QUICK[key])  # type: ignore[arg-type]
        if repeats is not None:
            w = replace(w, repeats=repeats)
        _log(f"workload {w.title}", quiet)
        report["workloads"][key] = run_workload(w, systems, threads=threads, quiet=quiet, idle=idle)
    report["seconds"] = time.perf_counter() - t_start
    report["load"].append(_loadavg())
    report["targets"] = check_targets(report)
    return report


# ---------------------------------------------------------------------------------------------- targets and report

TARGETS: list[tuple[str, str, str, float]] = [
    # (workload, peer, kind, value): kind "speedup" = peer time / deltaprop time >= value
    ("L", "torch", "speedup", 1.3),
    ("L", "gemm", "peak", 0.90),
    ("M", "torch", "speedup", 5.0),
    ("M", "sklearn", "speedup", 3.0),
    ("S", "torch", "speedup", 25.0),
    ("O", "torch", "speedup", 10.0),
]


def _sys(report: dict[str, Any], key: str, name: str) -> dict[str, Any] | None:
    s = report.get("workloads", {}).get(key, {}).get("systems", {}).get(name)
    return s if s and s.get("median") else None


def per_round_ratio(peer_times: Sequence[float], times: Sequence[float]) -> float | None:
    """Median over repeats of peer time / deltaprop time within the same repeat (None unless both ran every repeat).

    The systems of one repeat run one after the other, so a slow spell of the shared machine slows both; the ratio
    of the medians mixes repeats taken under different loads.

    >>> per_round_ratio([2.0, 3.0, 9.0], [1.0, 2.0, 3.0])
    2.0
    """
    if not times or len(peer_times) != len(times):
        return None
    return float(statistics.median(p / t for p, t in zip(peer_times, times)))


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met (None: not measured)."""
    out: list[dict[str, Any]] = []
    for key, peer, kind, value in TARGETS:
        d, p = _sys(report, key, "deltaprop"), _sys(report, key, peer)
        measured = p["median"] / d["median"] if d and p else None
        by_min = min(p["times"]) / min(d["times"]) if d and p else None
        by_round = per_round_ratio(p["times"], d["times"]) if d and p else None
        if kind == "speedup":
            what = f"{key}: deltaprop >= {value:g}x {peer} throughput"
        else:
            what = f"{key}: deltaprop >= {value:.0%} of measured GEMM peak"
        out.append(
            {
                "target": what,
                "measured": measured,
                "by_min": by_min,
                "by_round": by_round,
                "met": None if measured is None else measured >= value,
                # the other two statistics whose verdict differs from the medians' (a disturbed run)
                "disagree": [
                    name
                    for name, ratio in (("with minima", by_min), ("per repeat", by_round))
                    if measured is not None and ratio is not None and (ratio >= value) != (measured >= value)
                ],
            }
        )
    imp = report.get("import")
    if imp:
        v = imp["wall_median"]["python -c 'import deltaprop'"]
        out.append({"target": "python -c 'import deltaprop' <= 0.25 s", "measured": v, "met": v <= 0.25})
    d = _sys(report, "L", "deltaprop")
    if d and d.get("maxrss") and d.get("rss_base") is not None:
        extra = d["maxrss"] - d["rss_base"] - d["data_bytes_x"]
        out.append(
            {
                "target": "L: deltaprop peak memory <= dataset + 100 MB (peak RSS - RSS after imports - X bytes)",
                "measured": extra / 1e6,
                "met": extra <= 100e6,
            }
        )
    for key in ("L", "M"):
        d, p = _sys(report, key, "deltaprop"), _sys(report, key, "torch")
        if d and p and d.get("eval_loss") is not None and p.get("eval_loss"):
            rel = d["eval_loss"] / p["eval_loss"] - 1.0
            out.append(
                {
                    "target": f"{key}: final training loss within 2% of PyTorch's",
                    "measured": rel,
                    "met": abs(rel) <= 0.02,
                }
            )
    return out


def _spreads(systems: dict[str, Any]) -> dict[str, float]:
    """Slowest run / fastest run of every system that ran at least twice."""
    return {
        name: max(s["times"]) / min(s["times"])
        for name, s in systems.items()
        if len(s.get("times") or ()) >= 2 and min(s["times"]) > 0
    }


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.3f}"
    if x >= 1e-3:
        return f"{x * 1e3:.2f} ms"
    return f"{x * 1e6:.1f} µs"


def _ratio(x: float | None, as_percent: bool) -> str:
    if x is None:
        return "-"
    return f"{x:.0%}" if as_percent else f"{x:.2f}x"


def _mb(x: Any) -> str:
    return "-" if x is None else f"{x / 1e6:.0f}"


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown: machine, import time, one table per workload, the targets."""
    m = report["machine"]
    v = m.get("versions", {})
    lines = ["## Machine", ""]
    lines.append(
        f"- CPU: {m.get('cpu_model', '?')} ({m.get('sockets', '?')} socket(s) x {m.get('cores_per_socket', '?')} "
        f"core(s), {m.get('threads_per_core', '?')} thread(s)/core, os.cpu_count() = {m.get('cpu_count')}; "
        f"L2 {m.get('l2', '?')}, L3 {m.get('l3', '?')}; hypervisor: {m.get('hypervisor') or 'none'})"
    )
    lines.append(f"- SIMD flags: {', '.join(m.get('simd', [])) or '?'}")
    lines.append(f"- Python {m.get('python')} on {m.get('platform')}")
    lines.append("- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val))
    lines.append(f"- NumPy BLAS: {m.get('numpy_blas', '?')} ({m.get('numpy_blas_config', '')})")
    pools = m.get("threadpools", [])
    if pools:
        lines.append(
            "- threadpoolctl (benchmark process): "
            + "; ".join(
                f"{p.get('internal_api')} {p.get('version') or ''} {p.get('architecture') or ''} "
                f"{p.get('num_threads')} threads".replace("  ", " ")
                for p in pools
            )
        )
    torch_runs = [wl["systems"].get("torch", {}) for wl in report["workloads"].values()]
    torch_info = next((t for t in torch_runs if t.get("torch_threads")), None)
    if torch_info:
        pools = "; ".join(
            f"{p.get('internal_api')} {p.get('num_threads')} threads" for p in torch_info.get("threadpools", [])
        )
        lines.append(
            f"- PyTorch worker: torch.get_num_threads() = {torch_info.get('torch_threads')}, "
            f"{torch_info.get('torch_config', '')}; threadpoolctl: {pools or '?'}"
        )
    sq = m.get("sgemm_square")
    if sq:
        lines.append(f"- Square sgemm reference (np.matmul {sq['n']}^3, float32): {sq['gflops']:.1f} GFLOP/s")
    mode = "quick (small sizes)" if report.get("quick") else "full"
    threads = report.get("threads") or f"as many as cores ({m.get('cpu_count')})"
    lines.append(f"- Mode: {mode}; threads of every library: {threads}; the run took {report.get('seconds', 0):.0f} s")
    if report.get("idle_before_run") is not None:
        idle = report["idle_before_run"]
        lines.append(f"- Idle time before each timed run: {idle:g} s (no run starts while the last run's threads spin)")
    load = report.get("load") or []
    if load and load[0]:
        lines.append(
            "- Load average (1/5/15 min) at the start: "
            + " / ".join(map(str, load[0]))
            + (f"; at the end: {' / '.join(map(str, load[-1]))}" if len(load) > 1 and load[-1] else "")
            + " (other processes on the machine disturb the timings: compare within one run)"
        )
    imp = report.get("import")
    if imp:
        lines += ["", "## Import time", "", "| command (fresh process) | median wall time |", "| --- | --- |"]
        for k, val in imp["wall_median"].items():
            lines.append(f"| `{k}` | {val * 1e3:.0f} ms |")
        lines.append(
            f"| `import deltaprop` inside the process (numpy included) | "
            f"{imp['deltaprop_in_process_median'] * 1e3:.0f} ms |"
        )
        lines.append(f"\nMedian of {imp['repeats']} runs each, interleaved.")
    lines += ["", "## Results", ""]
    lines.append(
        "Times are medians of the repeats (each system in its own process, alternating, after a warm-up). "
        "*Speed-up* is this system's time / deltaprop's time: deltaprop's throughput ratio against it. "
        "GFLOP/s counts the GEMM FLOPs of the workload (weights only: forward 2P, weight gradients 2P, input "
        "gradients 2(P - P1) per example); *% GEMM* is the gemm floor's time / this system's time. Loss and accuracy "
        "are of the final weights on the whole training set, computed the same way (float64) for every system; "
        "*own loss* is what the system itself reports for its last epoch (running batch mean). Peak RSS is "
        "ru_maxrss of the system's worker; *over base* is peak RSS - RSS after imports - dataset bytes; *traced* is "
        "tracemalloc's peak during one training run (NumPy allocations; not PyTorch's)."
    )
    for wl in report["workloads"].values():
        w = wl["workload"]
        lines += ["", f"### {w['title']}", ""]
        lines.append(
            f"{w['n']:,} example(s) x {w['epochs']:,} epoch(s)/step(s), {wl['flops_per_example']:,} FLOP per example "
            f"({wl['flops'] / 1e9:.3f} GFLOP per run); {w['repeats']} repeats after a warm-up."
        )
        lines += [
            "",
            "| system | median | min | speed-up vs it | GFLOP/s | % GEMM | loss | acc | own loss | peak RSS MB "
            "| over base MB | traced MB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        systems = wl["systems"]
        d = systems.get("deltaprop", {}).get("median")
        g = systems.get("gemm", {}).get("median")
        for name, s in systems.items():
            med = s.get("median")
            if not med:
                lines.append(f"| {name} | {s.get('note') or 'no result'} |" + " |" * 10)
                continue
            speed = f"{med / d:.2f}x" if d and name != "deltaprop" else ("1" if name == "deltaprop" else "-")
            gflops = wl["flops"] / med / 1e9
            pct = f"{g / med:.0%}" if g else "-"
            loss = f"{s['eval_loss']:.4g}" if s.get("eval_loss") is not None else "-"
            acc = f"{s['eval_accuracy']:.4f}" if s.get("eval_accuracy") is not None else "-"
            own = f"{s['own_loss']:.4g}" if s.get("own_loss") is not None else "-"
            over = None
            if s.get("maxrss") and s.get("rss_base") is not None:
                over = s["maxrss"] - s["rss_base"] - s.get("data_bytes", 0)
            lines.append(
                f"| {name} | {_fmt_s(med)} | {_fmt_s(min(s['times']))} | {speed} | {gflops:.2f} | {pct} | {loss} | "
                f"{acc} | {own} | {_mb(s.get('maxrss'))} | {_mb(over)} | {_mb(s.get('traced_peak'))} |"
            )
        spreads = [f"{name} {spread:.2f}x" for name, spread in _spreads(systems).items()]
        if spreads:
            lines += ["", "Spread of each system's runs (slowest / fastest): " + ", ".join(spreads) + "."]
        notes = [f"{n}: {s['note']}" for n, s in systems.items() if s.get("note")]
        if notes:
            lines += [""] + [f"- {t}" for t in notes]
    targets = report.get("targets") or []
    if targets:
        lines += ["", "## Targets", ""]
        lines.append(
            "*Met* compares the ratio of the medians with the target; *with minima* is the ratio of the fastest runs, "
            "*per repeat* the median over repeats of the ratio within one repeat (the systems of a repeat run back "
            "to back, so a slow spell of the machine weighs on both sides). Where the other two disagree with the "
            "medians, *met* says so: the machine was disturbed during the run, and the verdict depends on the "
            "statistic (the spread of each system's runs is under its table)."
        )
        lines += ["", "| target | measured (medians) | with minima | per repeat (median) | met |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for t in targets:
            val = t["measured"]
            if val is None:
                shown = "not measured"
            elif "MB" in t["target"]:
                shown = f"{val:.0f} MB"
            elif "within" in t["target"]:
                shown = f"{val:+.2%}"
            elif "<= 0.25 s" in t["target"]:
                shown = f"{val:.3f} s"
            elif "peak" in t["target"]:
                shown = f"{val:.0%}"
            else:
                shown = f"{val:.2f}x"
            met = "-" if t["met"] is None else ("yes" if t["met"] else "**no**")
            if t.get("disagree"):  # the verdict depends on the statistic: the machine was disturbed
                met += f" ({'not' if t['met'] else 'met'} {' or '.join(t['disagree'])})"
            by_min, by_round = (_ratio(t.get(k), "peak" in t["target"]) for k in ("by_min", "by_round"))
            lines.append(f"| {t['target']} | {shown} | {by_min} | {by_round} | {met} |")
    lines += ["", "Systems: " + "; ".join(f"`{k}` = {val}" for k, val in SYSTEMS.items())]
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- deltaprop-bench:begin -->", "<!-- deltaprop-bench:end -->"


def write_report(path: str, text: str) -> None:
    """Write ``text`` into ``path`` between the BEGIN/END markers (the rest of an existing file is kept)."""
    block = f"{BEGIN}\n{text}{END}\n"
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + tail
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "") + block
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(new)


# ---------------------------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``deltaprop bench`` (for a CLI that adds the command as a subparser)."""
    parser.add_argument("--workloads", default="L,M,S,O", help="comma-separated subset of L,M,S,O (default all)")
    parser.add_argument("--systems", default=None, help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 repeats: a smoke run (under a minute)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per system (after a warm-up)")
    parser.add_argument("--output", default=None, help="write the Markdown report into this file (between markers)")
    parser.add_argument("--json", default=None, help="write every measurement as JSON to this file")
    parser.add_argument("--no-import-time", action="store_true", help="skip measuring `import deltaprop`")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads of every library (default: as many as cores)"
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=None,
        help=f"seconds of idle time before each timed run (default {IDLE_BEFORE_RUN}; 0.05 with --quick)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_from_args(args: argparse.Namespace) -> int:
    workloads = [k.strip().upper() for k in args.workloads.split(",") if k.strip()]
    unknown = [k for k in workloads if k not in WORKLOADS]
    if unknown:
        print(f"deltaprop bench: unknown workload(s) {unknown}; choose from {','.join(WORKLOADS)}", file=sys.stderr)
        return 2
    systems = [s.strip() for s in args.systems.split(",")] if args.systems else None
    if systems and any(s not in SYSTEMS for s in systems):
        print(f"deltaprop bench: unknown system in {systems}; choose from {','.join(SYSTEMS)}", file=sys.stderr)
        return 2
    if args.repeats is not None and args.repeats < 1:
        print("deltaprop bench: --repeats must be at least 1", file=sys.stderr)
        return 2
    if args.idle is not None and not args.idle >= 0:
        print("deltaprop bench: --idle must be 0 or more seconds", file=sys.stderr)
        return 2
    report = run_benchmark(
        workloads,
        quick=args.quick,
        repeats=args.repeats,
        systems=systems,
        measure_import=not args.no_import_time,
        threads=args.threads,
        quiet=args.quiet,
        idle=args.idle,
    )
    text = format_report(report)
    print(text)
    if args.output:
        write_report(args.output, text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, default=str)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``deltaprop bench [--quick] [--workloads L,M] ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return _worker(json.loads(argv[1]))
    parser = argparse.ArgumentParser(
        prog="deltaprop bench",
        description="Train the same networks in deltaprop, PyTorch, scikit-learn and plain NumPy; compare speed, "
        "memory and final loss.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
