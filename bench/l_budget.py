"""What a training step of workload L must do besides its matrix products, each part timed alone.

The L targets (≥ 90 % of the GEMM floor, ≥ 1.3x PyTorch) leave everything that is not a matrix product about a
tenth of the floor's time. This script times, per step of L (batch 128, 784-512-256-10, ReLU, softmax
cross-entropy, SGD momentum 0.9), the parts no trainer can skip, each in a loop by itself on warm buffers:

* ``gemm``: the step's matrix products with np.matmul (the floor, as in bench/run.py);
* ``update``: θ ← θ − lr·b over all 535,818 parameters (one BLAS axpy: the least any momentum SGD must do once the
  momentum is folded into the weight-gradient products);
* ``gather``: the shuffled batch, 128 random rows of the 60,000 × 784 inputs, into a buffer (np.take);
* ``relu``: max(net, 0) and δ ⊙ (out > 0) on the two hidden layers (NumPy);
* ``softmax_ce``: softmax, the batch's cross-entropy, δ = (o − t)/n and the accuracy count on the 128 × 10 outputs.

Run: ``python bench/l_budget.py [--steps 400]``. It prints each part per step and as a percentage of the floor,
and the best fraction of the floor a trainer could reach if it did only these and nothing else.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from deltaprop import blas
from deltaprop.benchmark import WORKLOADS, initial_weights, make_data


def _per_step(fn: Callable[[int], None], steps: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of ``fn(step)`` over ``steps`` steps (seconds)."""
    fn(0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for k in range(steps):
            fn(k)
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    w = WORKLOADS["L"]
    data = make_data(w)
    X, y = data.X, data.y
    bs, sizes = w.batch_size, w.sizes
    Ws = [np.array(W, dtype=np.float32) for W, _ in initial_weights(w)]
    n_batches = X.shape[0] // bs
    perm = np.random.default_rng(0).permutation(X.shape[0])
    rng = np.random.default_rng(1)
    Z = [np.empty((bs, n), np.float32) for n in sizes[1:]]
    D = [rng.standard_normal((bs, n), dtype=np.float32) * 0.01 for n in sizes[1:]]
    dW = [np.empty_like(W) for W in Ws]
    n_params = sum(W.size + W.shape[1] for W in Ws)
    theta = rng.standard_normal(n_params, dtype=np.float32)
    velocity = rng.standard_normal(n_params, dtype=np.float32)
    batch = np.empty((bs, X.shape[1]), np.float32)
    hidden = [rng.standard_normal((bs, n), dtype=np.float32) for n in sizes[1:-1]]
    deltas = [rng.standard_normal((bs, n), dtype=np.float32) for n in sizes[1:-1]]
    logits = rng.standard_normal((bs, sizes[-1]), dtype=np.float32)
    onehot = np.eye(sizes[-1], dtype=np.float32)[y]

    def gemm(k: int) -> None:
        x = X[(k % n_batches) * bs : (k % n_batches + 1) * bs]
        a = x
        for i, W in enumerate(Ws):
            np.matmul(a, W, out=Z[i])
            a = Z[i]
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul((x if i == 0 else Z[i - 1]).T, D[i], out=dW[i])
            if i:
                np.matmul(D[i], Ws[i].T, out=D[i - 1])

    def update(k: int) -> None:
        blas.axpy(-0.01, velocity, theta)

    def gather(k: int) -> None:
        lo = (k % n_batches) * bs
        np.take(X, perm[lo : lo + bs], axis=0, out=batch, mode="clip")

    def relu(k: int) -> None:
        for h, d in zip(hidden, deltas):
            np.maximum(h, 0.0, out=h)
            d *= h > 0

    def softmax_ce(k: int) -> None:
        lo = (k % n_batches) * bs
        t = onehot[perm[lo : lo + bs]]
        m = np.maximum.reduce(logits, axis=1, keepdims=True)
        o = np.exp(logits - m)
        s = np.add.reduce(o, axis=1, keepdims=True)
        o /= s
        z = logits - m
        z -= np.log(s)
        z *= t
        float(-z.sum() / bs)
        np.count_nonzero(o.argmax(axis=1) == y[perm[lo : lo + bs]])
        (o - t) / bs

    parts = {"gemm": gemm, "update": update, "gather": gather, "relu": relu, "softmax_ce": softmax_ce}
    measured = {name: _per_step(fn, args.steps) for name, fn in parts.items()}
    floor = measured["gemm"]
    print(f"workload L, per step (batch {bs}); BLAS: {blas.library_path() or 'NumPy only'}")
    for name, t in measured.items():
        print(f"  {name:11s} {t * 1e6:8.1f} µs   {t / floor:6.1%} of the GEMM floor")
    extra = sum(t for name, t in measured.items() if name != "gemm")
    print(f"  a trainer doing only these parts reaches at most {floor / (floor + extra):.1%} of the floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
