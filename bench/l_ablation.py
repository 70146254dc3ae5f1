"""Where an L step's time goes *inside* the step: the matrix products alone, then each other part added to them.

``bench/l_budget.py`` times each part of an L step alone on warm buffers; inside a real step every part costs more,
because the products between them evict the caches. This script builds an L step in NumPy the way deltaprop's
fused SGD path does it (gather, forward with the bias in the product, softmax/loss/δ/accuracy, weight gradients
into the momentum buffer by BLAS gemm with β = μ, ReLU′, one axpy update) and times it per step

* with only its matrix products (``np.matmul``; the same products as the benchmark's GEMM floor),
* with the products plus one part ("+gather", "+update", "+relu", "+bias", "+softmax", "+beta"),
* whole.

Variants run in alternating rounds (the order rotated each round); the weights are reset before each round.
Run: ``python bench/l_ablation.py [--rounds 15] [--steps 100]``. It prints each variant's median time per step and
what the part adds to the products alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from deltaprop import blas
from deltaprop.benchmark import WORKLOADS, initial_weights, make_data

PARTS = ("gather", "update", "relu", "bias", "softmax", "beta")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    w = WORKLOADS["L"]
    data = make_data(w)
    X, y = data.X, data.y
    sizes, bs, lr, mu = w.sizes, w.batch_size, w.lr, w.momentum
    n_batches = X.shape[0] // bs
    perm = np.random.default_rng(0).permutation(X.shape[0])
    labels = y[perm]
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    init = initial_weights(w)
    theta0 = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in init]).astype(np.float32)
    theta, velocity = theta0.copy(), np.zeros_like(theta0)
    W_, b_, vW, vb = [], [], [], []  # views of theta and of the momentum buffer, layer by layer
    at = 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W_.append(theta[at : at + n_in * n_out].reshape(n_in, n_out))
        vW.append(velocity[at : at + n_in * n_out].reshape(n_in, n_out))
        at += n_in * n_out
        b_.append(theta[at : at + n_out])
        vb.append(velocity[at : at + n_out])
        at += n_out
    Z = [np.empty((bs, n), np.float32) for n in sizes[1:]]  # net = out of each layer (ReLU in place)
    D = [np.empty((bs, n), np.float32) for n in sizes[1:]]  # δ of each layer
    D0 = [np.random.default_rng(1).standard_normal(d.shape, dtype=np.float32) * 0.01 for d in D]
    db = [np.empty(n, np.float32) for n in sizes[1:]]
    batch = np.empty((bs, X.shape[1]), np.float32)
    L = len(W_)

    def step(k: int, skip: tuple[str, ...]) -> None:
        lo = (k % n_batches) * bs
        if "gather" in skip:
            x = X[lo : lo + bs]
        else:
            np.take(X, perm[lo : lo + bs], axis=0, out=batch, mode="clip")
            x = batch
        a = x
        for i in range(L):
            if "bias" in skip:
                np.matmul(a, W_[i], out=Z[i])
            elif i < L - 1:  # large layers: net ← b, then net ← X·W + net in the product
                Z[i][...] = b_[i]
                blas.gemm(a, W_[i], Z[i], beta=1.0)
            else:
                np.matmul(a, W_[i], out=Z[i])
                Z[i] += b_[i]
            if i < L - 1 and "relu" not in skip:
                np.maximum(Z[i], 0.0, out=Z[i])
            a = Z[i]
        if "softmax" not in skip:
            z, t = Z[-1], onehot[lo : lo + bs]
            m = np.maximum.reduce(z, axis=1, keepdims=True)
            z -= m
            o = np.exp(z)
            s = np.add.reduce(o, axis=1, keepdims=True)
            o /= s
            float(np.vdot(t, z - np.log(s)))  # Σ t·ln o
            np.count_nonzero(o.argmax(axis=1) == labels[lo : lo + bs])
            np.subtract(o, t, out=D[-1])
            D[-1] *= 1.0 / bs  # δ = (o − t)/n
        for i in range(L - 1, -1, -1):
            below = x if i == 0 else Z[i - 1]
            if "beta" in skip:
                np.matmul(below.T, D[i], out=vW[i])
            else:
                blas.gemm(below.T, D[i], vW[i], beta=mu)  # b ← μ·b + outᵀ·δ
            if "bias" not in skip:
                np.add.reduce(D[i], axis=0, out=db[i])
                vb[i] *= mu
                vb[i] += db[i]
            if i:
                np.matmul(D[i], W_[i].T, out=D[i - 1])
                if "relu" not in skip:
                    D[i - 1] *= Z[i - 1] > 0
        if "update" not in skip:
            blas.axpy(-lr, velocity, theta)  # θ ← θ − lr·b

    variants: dict[str, tuple[str, ...]] = {"products only": PARTS}
    for part in PARTS:
        variants["+" + part] = tuple(p for p in PARTS if p != part)
    variants["whole step"] = ()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for d, d0 in zip(D, D0):
                d[...] = d0
            theta[...] = theta0
            velocity[...] = 0.0
            for k in range(5):
                step(k, variants[name])
            t0 = time.perf_counter()
            for k in range(args.steps):
                step(k, variants[name])
            times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times["products only"])
    print(f"workload L, per step (batch {bs}), medians of {args.rounds} rounds of {args.steps} steps")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:14s} {t * 1e6:8.1f} µs   {(t - base) * 1e6:+8.1f} µs over the products alone")
    print(f"  the products alone are {base / statistics.median(times['whole step']):.1%} of the whole step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
