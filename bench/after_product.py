"""How a NumPy product made just before ``fit`` slows the first steps of workload L (OpenBLAS's idle threads).

After a multi-threaded product, OpenBLAS's worker threads spin until their timeout (``OPENBLAS_THREAD_TIMEOUT``); a
training run that starts meanwhile shares the cores with them. This script trains L whole, in one process, after
each of: nothing, a 512 x 512 float32 product, ``predict`` on 10,000 rows, and a product followed by 0.3 s of idle
time (each after 0.3 s idle; the order rotated every round), times every compiled step, and prints per case the
median over rounds of its first 30 steps' time and of 30 later steps (their mean).
Run: ``python bench/after_product.py [--rounds 6]``; compare with ``OPENBLAS_THREAD_TIMEOUT=20 python bench/...``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from deltaprop import MLP, optim
from deltaprop.benchmark import WORKLOADS, initial_weights, make_data
from deltaprop.compiled_step import CompiledBackprop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rows", type=int, default=None, help="train on the first ROWS rows (default: all 60,000)")
    args = parser.parse_args(argv)
    w = WORKLOADS["L"]
    data = make_data(w)
    steps: list[float] = []
    timed = CompiledBackprop.step

    def step(self: CompiledBackprop, *a: object, **k: object) -> tuple[float, int]:
        t = time.perf_counter()
        result = timed(self, *a, **k)  # type: ignore[arg-type]
        steps.append(time.perf_counter() - t)
        return result

    CompiledBackprop.step = step  # type: ignore[method-assign]

    def fit(n: int | None = None) -> None:
        net = MLP(list(w.sizes), activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
        net.set_weights(initial_weights(w))
        X, y = (data.X, data.y) if n is None else (data.X[:n], data.y[:n])
        net.fit(X, y, epochs=1, batch_size=w.batch_size, optimizer=optim.SGD(lr=w.lr, momentum=w.momentum),
                shuffle=True, seed=0, verbose=0)  # fmt: skip

    fit(4096)  # warm-up
    a = np.ones((512, 512), np.float32)
    other = MLP(list(w.sizes), activation="relu", output_activation="softmax", loss="cross_entropy", seed=1)
    rows = data.X[:10_000]
    cases: dict[str, Callable[[], object]] = {
        "nothing": lambda: None,
        "a 512 x 512 product": lambda: a @ a,
        "predict on 10,000 rows": lambda: other.predict(rows),
        "a product, then 0.3 s idle": lambda: (a @ a, time.sleep(0.3)),
    }
    names = list(cases)
    first: dict[str, list[float]] = {c: [] for c in names}
    later: dict[str, list[float]] = {c: [] for c in names}
    for r in range(args.rounds):
        for c in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(0.3)
            cases[c]()
            steps.clear()
            fit(args.rows)
            first[c].append(sum(steps[:30]))
            later[c].append(float(np.mean(steps[30:])) * 30)
    print(f"workload L, {args.rounds} rounds: medians of the first 30 steps' time and of 30 later steps")
    for c in names:
        head, tail = np.median(first[c]) * 1e3, np.median(later[c]) * 1e3
        print(f"  {c:28s} first 30 steps {head:6.1f} ms   later {tail:6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
