"""Per-step times of workload L's compiled step, each step timed alone, against the step's matrix products alone.

``bench/l_ablation.py`` rebuilds the step in NumPy; this script calls deltaprop's own C step
(``CompiledBackprop.step``, the call ``fit`` makes once per batch) on L's batches, in these variants:

* ``floor``: the step's matrix products with ``np.matmul`` on OpenBLAS's own threads (the benchmark's GEMM floor),
* ``team``: the C step shared by deltaprop's team of threads, with SGD's momentum update (what ``fit`` runs),
* ``team-noupdate``: the same without the update θ ← θ − lr·b (the buffer b ← μ·b + g is still computed),
* ``one``: the C step on one thread, BLAS single-threaded.

Variants run in alternating rounds (the order rotated each round, the weights reset and 0.3 s idle before each, so
that OpenBLAS's threads have stopped spinning after the floor's products), each step is timed alone, and the script
prints the percentiles of every variant's step times: p10 is the least disturbed by other processes on a shared
machine. Run: ``python bench/l_steps.py [--rounds 8] [--steps 100] [--variants floor,team]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from deltaprop import MLP
from deltaprop.benchmark import WORKLOADS, initial_weights, make_data
from deltaprop.compiled_step import CompiledBackprop

VARIANTS = ("floor", "team", "team-noupdate", "one")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="steps per round and variant")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    args = parser.parse_args(argv)
    chosen = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or not chosen:
        parser.error(f"unknown variant(s) {unknown}: choose among {', '.join(VARIANTS)}")
    w = WORKLOADS["L"]
    data = make_data(w)
    X, y = data.X, data.y
    sizes, bs = list(w.sizes), w.batch_size
    n_batches = X.shape[0] // bs
    if not 0 < args.steps <= n_batches:
        parser.error(f"--steps must be 1 to {n_batches}")
    perm = np.random.default_rng(0).permutation(X.shape[0]).astype(np.int64)
    onehot = np.eye(sizes[-1], dtype=np.float32)[y]
    init = initial_weights(w)
    net = MLP(sizes, activation="relu", output_activation="softmax", loss="cross_entropy", init=init)
    backprop = CompiledBackprop.for_network(net)
    if backprop is None:
        raise SystemExit("the compiled step is not available here (no C extension or no BLAS functions)")
    theta0, buffer = net.theta.copy(), np.zeros_like(net.theta)

    def compiled(update: bool, threads: int | None) -> Callable[[int, list[float]], None]:
        def run(first: int, times: list[float]) -> None:
            with backprop.sharing(bs):
                for k in range(first, first + args.steps):
                    rows = perm[k * bs : (k + 1) * bs]
                    T, labels = onehot[rows], y[rows]
                    t = time.perf_counter()
                    backprop.step(X, rows, T, labels, target=buffer, beta=w.momentum,
                                  lr=w.lr if update else None, threads=threads)  # fmt: skip
                    times.append(time.perf_counter() - t)

        return run

    Ws = [np.array(W) for W, _ in init]
    out = [np.empty((bs, n), np.float32) for n in sizes[1:]]
    grads = [np.empty_like(W) for W in Ws]
    deltas = [np.random.default_rng(1).standard_normal((bs, n), dtype=np.float32) for n in sizes[1:]]
    below = [np.empty((bs, n), np.float32) for n in sizes[1:-1]]  # δ of the hidden layers
    batch = np.empty((bs, sizes[0]), np.float32)

    def floor(first: int, times: list[float]) -> None:
        for k in range(first, first + args.steps):
            rows = perm[k * bs : (k + 1) * bs]
            t = time.perf_counter()
            np.take(X, rows, axis=0, out=batch)
            a = batch
            for i, W in enumerate(Ws):  # forward: out_i = out_{i-1}·W_i
                np.matmul(a, W, out=out[i])
                a = out[i]
            for i in range(len(Ws) - 1, -1, -1):  # backward: out_{i-1}ᵀ·δ_i, and δ_i·W_iᵀ below the first layer
                np.matmul((batch if i == 0 else out[i - 1]).T, deltas[i], out=grads[i])
                if i > 0:
                    np.matmul(deltas[i], Ws[i].T, out=below[i - 1])
            times.append(time.perf_counter() - t)

    runs = {"floor": floor, "team": compiled(True, None), "team-noupdate": compiled(False, None),
            "one": compiled(True, 1)}  # fmt: skip
    times: dict[str, list[float]] = {v: [] for v in chosen}
    for r in range(args.rounds):
        order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]
        for v in order:
            net.theta[...] = theta0
            buffer[...] = 0.0
            time.sleep(0.3)  # OpenBLAS's threads, busy in the floor, spin ~0.1 s after (bench/after_product.py)
            runs[v]((r * 37) % (n_batches - args.steps + 1), times[v])
    print(f"workload L, per step (batch {bs}), {args.rounds} rounds of {args.steps} steps, each step timed alone")
    floor_p50 = float(np.median(times["floor"])) if "floor" in times else None
    for v, ts in times.items():
        us = np.array(ts) * 1e6
        p10, p50, p90 = np.percentile(us, [10, 50, 90])
        vs = f"   the floor's p50 / this p50: {floor_p50 * 1e6 / p50:.1%}" if floor_p50 else ""
        print(f"  {v:14s} p10 {p10:7.1f} µs   p50 {p50:7.1f} µs   p90 {p90:7.1f} µs{vs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
