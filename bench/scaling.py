"""Data-parallel scaling of deltaprop.distributed: 1 vs 2 (or more) MPI ranks on workload L.

    python bench/scaling.py                      # 1 and 2 ranks, 3 timed epochs each, plus one process without MPI
    python bench/scaling.py --ranks 1,2,4 --repeats 5
    python bench/scaling.py --quick              # 4,096 rows: a smoke run
    python bench/scaling.py --batch-size 1024    # a larger global batch: more compute per Allreduce
    python bench/scaling.py --ranks 1,2,4,8 --bind none --mpiexec-args "-f hosts -ppn 1"   # one rank per node

Workload L (deltaprop.benchmark.WORKLOADS["L"]): 60,000 x 784 synthetic float32, 784-512-256-10 ReLU, softmax
cross-entropy, SGD momentum 0.9, lr 0.01, global batch 128, 1 epoch. Every rank holds the whole data set and
computes its share of every batch (64 rows of 128 with 2 ranks); one Allreduce per step sums the gradients
(535,040 parameters + 1, in the network's float32: 2.1 MB). Each rank's BLAS runs on ONE thread
(OMP/OPENBLAS/MKL_NUM_THREADS=1), so that the ranks are the only parallelism and 1 rank uses exactly one core.

Reported per rank count: median (and best) seconds of the epoch (the slowest rank's), samples/s, speed-up and scaling
efficiency (speed-up / ranks) against 1 rank, the share of the time spent in the gradient Allreduce (waiting for
the other ranks included), and the final training loss (the same whatever the rank count, up to rounding).
Needs the extra [mpi] (mpi4py, and mpiexec from the mpich wheel or a system MPI).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def _worker(args: argparse.Namespace) -> None:
    """One rank (or, with --plain, one process without MPI): time ``repeats`` epochs of workload L."""
    from deltaprop import MLP
    from deltaprop.benchmark import WORKLOADS, initial_weights, synthetic_data
    from deltaprop.optim import SGD
    from deltaprop.train import fit as plain_fit

    w = WORKLOADS["L"]
    X, y = synthetic_data(args.n, w.sizes[0], w.sizes[-1])
    init = initial_weights(w)

    def network() -> Any:
        return MLP(
            list(w.sizes), activation="relu", output_activation="softmax", loss="cross_entropy", init=init, seed=0
        )

    def options() -> dict[str, Any]:
        sgd = SGD(lr=w.lr, momentum=w.momentum)
        return dict(epochs=w.epochs, batch_size=args.batch_size, optimizer=sgd, seed=0, verbose=0)

    if args.plain:
        comm, rank, size, fit = None, 0, 1, plain_fit
        allreduce_time = [0.0]
    else:
        from mpi4py import MPI

        from deltaprop import distributed

        comm = MPI.COMM_WORLD
        rank, size = comm.Get_rank(), comm.Get_size()
        allreduce_time = [0.0]
        reduce_call = distributed.GradientAllreduce.__call__

        def timed(self: Any, grad: Any, weight: float) -> float:
            t0 = time.perf_counter()
            total = reduce_call(self, grad, weight)
            allreduce_time[0] += time.perf_counter() - t0
            return total

        distributed.GradientAllreduce.__call__ = timed  # type: ignore[method-assign]

        def fit(net: Any, X: Any, y: Any, **kwargs: Any) -> Any:
            reduce_dtype = None if args.reduce_dtype == "auto" else args.reduce_dtype
            return distributed.fit(net, X, y, comm=comm, reduce_dtype=reduce_dtype, **kwargs)

    fit(network(), X[: min(4096, args.n)], y[: min(4096, args.n)], **options())  # warm-up: caches, buffers, BLAS
    times, shares, loss = [], [], None
    for _ in range(args.repeats):
        net = network()
        if comm is not None:
            comm.Barrier()
        allreduce_time[0] = 0.0
        start = time.perf_counter()
        history = fit(net, X, y, **options())
        elapsed = time.perf_counter() - start
        if comm is not None:
            elapsed = comm.allreduce(elapsed, op=MPI.MAX)  # the epoch ends when the slowest rank is done
        times.append(elapsed)
        shares.append(allreduce_time[0] / elapsed)
        loss = float(history.loss[-1])
    if rank == 0:
        result = {
            "ranks": size,
            "plain": bool(args.plain),
            "n": args.n,
            "times": times,
            "allreduce_share": statistics.median(shares),
            "reduce_dtype": None if args.plain else args.reduce_dtype,
            "loss": loss,
            "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        }
        Path(args.json).write_text(json.dumps(result))


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("no mpiexec: pip install 'deltaprop[mpi]' (the mpich wheel brings one) or load your MPI")
    return found


def _run(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="1,2", help="rank counts to compare, e.g. 1,2,4 (default 1,2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per rank count (median reported)")
    parser.add_argument("--n", type=int, default=60_000, help="rows (workload L: 60,000)")
    parser.add_argument("--quick", action="store_true", help="4,096 rows, 1 repeat: a smoke run")
    parser.add_argument("--reduce-dtype", default="auto", help="gradient sum: auto (the network's), float32, float64")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (workload L: 128)")
    parser.add_argument("--bind", default="core", help="mpiexec -bind-to value (MPICH Hydra); 'none' to not bind")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per rank (default 1)")
    parser.add_argument("--mpiexec-args", default="", help="more mpiexec options, e.g. '-f hosts -ppn 1' on a cluster")
    parser.add_argument("--json", help="write the measurements here (with --worker: where a worker reports)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    if args.quick:
        args.n, args.repeats = 4096, 1
    env = dict(os.environ)
    env.update({name: str(args.threads) for name in THREAD_VARIABLES})  # BLAS threads per rank (workload L: 1)
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--worker", "--n", str(args.n), "--repeats", str(args.repeats), "--reduce-dtype", args.reduce_dtype]
    common += ["--batch-size", str(args.batch_size)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        results.append(_run([*me, *common, "--plain", "--json", str(out)], env, out))
        for ranks in [int(r) for r in args.ranks.split(",")]:
            bind = [] if args.bind == "none" else ["-bind-to", args.bind]
            extra = shlex.split(args.mpiexec_args)
            cmd = [_mpiexec(), "-n", str(ranks), *bind, *extra, sys.executable, "-m", "mpi4py", *me[1:], *common]
            results.append(_run([*cmd, "--json", str(out)], env, out))
    base = next((r for r in results if not r["plain"] and r["ranks"] == 1), results[0])
    base_time = statistics.median(base["times"])
    print(
        f"workload L, {args.n:,} rows, global batch {args.batch_size}, 1 epoch; BLAS threads per rank: {args.threads}; "
        f"cpus: {os.cpu_count()}; gradient sum: {args.reduce_dtype}; median (best) of {args.repeats}"
    )
    columns = [("run", 20), ("epoch s (best)", 16), ("samples/s", 11), ("speed-up", 10), ("efficiency", 12)]
    columns += [("allreduce", 11), ("loss", 9)]
    print("".join(f"{name:<{width}}" if name == "run" else f"{name:>{width}}" for name, width in columns))
    for r in results:
        t = statistics.median(r["times"])
        label = "1 process, no MPI" if r["plain"] else f"{r['ranks']} rank(s), MPI"
        speedup = base_time / t
        eff = speedup / r["ranks"]
        times = f"{t:.3f} ({min(r['times']):.3f})"
        print(
            f"{label:<20}{times:>16}{args.n / t:>11,.0f}{speedup:>9.2f}x{eff:>11.0%}{r['allreduce_share']:>11.1%}"
            f"{r['loss']:>9.4f}"
        )
        r.update(epoch_s=t, samples_per_s=args.n / t, speedup=speedup, efficiency=eff)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
