"""The reference implementations the benchmark compares deltaprop with: PyTorch, scikit-learn, a plain NumPy loop.

They live in :mod:`deltaprop.benchmark` (so that ``deltaprop bench`` has them in an installed package, where
``bench/`` does not exist); this file names them and runs one system on one workload by itself, which is handy
for profiling::

    python bench/peers.py torch M          # time PyTorch on workload M once (after a warm-up)
    python bench/peers.py numpy L --repeats 3

Each system is a triple ``(setup, train, weights)``: ``setup(init)`` builds the model from the common initial
weights (not timed), ``train(state, data)`` trains it (timed) and returns the system's own running loss,
``weights(state)`` gives the final ``[(W, b), ...]`` with ``W`` of shape (n_in, n_out).

* ``torch``: ``nn.Sequential`` of ``nn.Linear`` + ReLU/Sigmoid, ``F.cross_entropy`` on the logits (softmax +
  cross-entropy), ``torch.optim.SGD(momentum=…)`` / ``torch.optim.Adam``; each batch is an index gather by the same
  permutation deltaprop and the plain loop draw (``numpy.random.default_rng(0).permutation`` per epoch), so that
  the three see identical batches and their final losses differ only by rounding; eager mode on the CPU with
  ``torch.set_num_threads(os.cpu_count())``.
* ``sklearn``: ``MLPClassifier(solver='sgd'|'adam', alpha=0, nesterovs_momentum=False, tol=0, warm_start=True)``
  started from the same weights (a one-epoch fit on a dummy set creates its attributes, then ``coefs_`` and
  ``intercepts_`` are replaced); it keeps float32 inputs in float32.
* ``numpy``: :func:`numpy_train`, the "plain loop" of the design notes: fancy-index the batch, ``@`` forward,
  fused softmax/cross-entropy δ = (o − t)/n, backward, in-place SGD (PyTorch's momentum rule) or Adam.
* ``gemm``: only the matrix products of each step into preallocated arrays: the floor for a NumPy trainer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from deltaprop.benchmark import (
    WORKLOADS,
    _gemm_system,
    _numpy_system,
    _sklearn_system,
    _torch_system,
    evaluate,
    initial_weights,
    make_data,
    make_system,
    numpy_train,
)

__all__ = ["numpy_train", "torch_system", "sklearn_system", "numpy_system", "gemm_system", "make_system"]

torch_system = _torch_system
sklearn_system = _sklearn_system
numpy_system = _numpy_system
gemm_system = _gemm_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one system on one workload in this process.")
    parser.add_argument("system", help="deltaprop, deltaprop-fit, deltaprop-engine, torch, sklearn, numpy, gemm")
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    w = WORKLOADS[args.workload]
    setup, train, weights = make_system(w, args.system)
    data, init = make_data(w), initial_weights(w)
    train(setup(init), data.head(w.warmup_n, w.warmup_epochs))
    times = []
    state = None
    for _ in range(args.repeats):
        state = setup(init)
        t0 = time.perf_counter()
        train(state, data)
        times.append(time.perf_counter() - t0)
    final = weights(state)
    result = evaluate(w, final, data) if final is not None else {}
    print(f"{args.system} on {args.workload}: median {statistics.median(times):.4f} s of {times}; {result}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
