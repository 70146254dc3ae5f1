"""Workload L on a CUDA GPU: deltaprop on PyTorch CUDA tensors and on CuPy arrays against PyTorch CUDA eager.

The same network, data, initial weights, hyperparameters and batches as ``bench/run.py``'s workload L
(784-512-256-10 ReLU, softmax cross-entropy, SGD momentum 0.9, lr 0.01, batch 128, 60,000 x 784, 1 epoch), with
the data resident on the GPU before the clock starts (copying it there is not timed for any system):

* ``deltaprop (torch)``: ``MLP(..., device="cuda").fit(X_cuda_tensor, y)``: the numeric core through the array API.
* ``deltaprop (cupy)``: ``MLP(...).fit(X_cupy_array, y)``: the network moves to CuPy on the first fit.
* ``torch``: ``nn.Sequential`` + ``F.cross_entropy`` + ``torch.optim.SGD`` in eager mode, the running loss summed on
  the GPU (one synchronisation per epoch, as a careful PyTorch user writes it).
* ``gemm``: only the step's matrix products (``torch.matmul`` into preallocated tensors): the floor.

Each system warms up on 4,096 rows, then the systems take turns, repeat after repeat, in one process; every timed
run ends with ``torch.cuda.synchronize()`` (and CuPy's). Final loss and accuracy are computed from the final
weights on the CPU in float64, as in ``bench/run.py``. ::

    python bench/gpu.py                      # 5 repeats, prints a Markdown table
    python bench/gpu.py --repeats 3 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from deltaprop.backend import to_host
from deltaprop.benchmark import (
    WORKLOADS,
    Data,
    _torch_system,
    evaluate,
    flops_per_example,
    initial_weights,
    make_data,
)

W = WORKLOADS["L"]


def _sync() -> None:
    import torch

    torch.cuda.synchronize()
    try:
        import cupy

        cupy.cuda.Device().synchronize()
    except ImportError:
        pass


def deltaprop_system(library: str) -> tuple[Callable[[Any], Any], Callable[[Any, Any, np.ndarray], Any], Any]:
    import deltaprop

    def setup(init: Any) -> Any:
        device = "cuda" if library == "torch" else None
        net = deltaprop.MLP(
            list(W.sizes), activation="relu", output_activation="softmax", loss="cross_entropy", seed=0, device=device
        )
        net.set_weights(init)
        return net

    def train(net: Any, X: Any, y: np.ndarray) -> Any:
        from deltaprop import optim

        opt = optim.SGD(lr=W.lr, momentum=W.momentum)
        return net.fit(X, y, epochs=1, batch_size=W.batch_size, optimizer=opt, shuffle=True, seed=0, verbose=0).loss[-1]

    def weights(net: Any) -> Any:
        return [(to_host(Wt), to_host(b)) for Wt, b in net.get_weights()]

    return setup, train, weights


def torch_system() -> tuple[Callable[[Any], Any], Callable[[Any, Any, np.ndarray], Any], Any]:
    import torch

    F = torch.nn.functional

    cpu_setup = _torch_system(W)[0]  # bench/run.py's PyTorch model and optimiser, from the same initial weights

    def setup(init: Any) -> Any:
        model, _ = cpu_setup(init)
        model = model.cuda()
        return model, torch.optim.SGD(model.parameters(), lr=W.lr, momentum=W.momentum)

    def train(state: Any, X: Any, y: np.ndarray) -> Any:
        model, opt = state
        y_dev = torch.from_numpy(y).cuda()
        n, bs = X.shape[0], W.batch_size
        perm = torch.from_numpy(np.random.default_rng(0).permutation(n)).cuda()  # the same batches as deltaprop
        running = torch.zeros((), device="cuda")
        for lo in range(0, n, bs):
            idx = perm[lo : lo + bs]
            opt.zero_grad()
            loss = F.cross_entropy(model(X[idx]), y_dev[idx])
            loss.backward()
            opt.step()
            running += loss.detach() * idx.shape[0]
        return float(running) / n

    def weights(state: Any) -> Any:
        lins = [m for m in state[0] if isinstance(m, torch.nn.Linear)]
        return [(to_host(m.weight).T.copy(), to_host(m.bias)) for m in lins]

    return setup, train, weights


def gemm_system() -> tuple[Callable[[Any], Any], Callable[[Any, Any, np.ndarray], Any], Any]:
    import torch

    sizes, bs, L = W.sizes, W.batch_size, len(W.sizes) - 1

    def setup(init: Any) -> Any:
        Ws = [torch.from_numpy(Wt).cuda() for Wt, _ in init]
        Z = [torch.empty((bs, b), device="cuda") for b in sizes[1:]]
        dW = [torch.empty_like(Wt) for Wt in Ws]
        D = [torch.randn((bs, b), device="cuda") * 0.01 for b in sizes[1:]]
        return Ws, Z, dW, D

    def train(state: Any, X: Any, y: np.ndarray) -> Any:
        Ws, Z, dW, D = state
        n, mm = X.shape[0], torch.matmul
        for lo in range(0, n, bs):
            x = X[lo : lo + bs]
            m = x.shape[0]
            a = x
            for i in range(L):
                mm(a, Ws[i], out=Z[i][:m])
                a = Z[i][:m]
            for i in range(L - 1, -1, -1):
                inp = x if i == 0 else Z[i - 1][:m]
                mm(inp.T, D[i][:m], out=dW[i])
                if i > 0:
                    mm(D[i][:m], Ws[i].T, out=D[i - 1][:m])
        return None

    return setup, train, lambda state: None


def _on_gpu(library: str, a: np.ndarray) -> Any:
    if library == "cupy":
        import cupy

        return cupy.asarray(a)
    import torch

    return torch.from_numpy(a).cuda()


SYSTEMS: dict[str, tuple[str, Callable[[], Any]]] = {  # name → (library of the data, system)
    "deltaprop (torch)": ("torch", lambda: deltaprop_system("torch")),
    "deltaprop (cupy)": ("cupy", lambda: deltaprop_system("cupy")),
    "torch": ("torch", torch_system),
    "gemm": ("torch", gemm_system),
}


def run(repeats: int, n: int, systems: list[str]) -> dict[str, Any]:
    import torch

    data = make_data(W)
    data = Data(data.X[:n], data.T[:n], None if data.y is None else data.y[:n], 1)
    assert data.y is not None
    init = initial_weights(W)
    states, impls, inputs = {}, {}, {}
    for name in systems:
        library, make = SYSTEMS[name]
        impls[name] = make()
        inputs[name] = (_on_gpu(library, data.X), _on_gpu(library, data.X[:4096]))
        warm = impls[name][0](init)
        impls[name][1](warm, inputs[name][1], data.y[:4096])  # warm-up: kernels, cuBLAS handles, memory pools
        _sync()
        states[name] = None
    times: dict[str, list[float]] = {name: [] for name in systems}
    losses: dict[str, Any] = {}
    for r in range(repeats):
        order = systems[r % len(systems) :] + systems[: r % len(systems)]
        for name in order:
            setup, train, weights = impls[name]
            state = setup(init)
            _sync()
            t0 = time.perf_counter()
            own = train(state, inputs[name][0], data.y)
            _sync()
            times[name].append(time.perf_counter() - t0)
            if r == repeats - 1 and name != "gemm":
                losses[name] = {"own_loss": own, **evaluate(W, weights(state), data)}
    flops = flops_per_example(W.sizes) * n
    floor = statistics.median(times["gemm"]) if "gemm" in times else None
    return {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "n": n,
        "repeats": repeats,
        "flops": flops,
        "times": times,
        "median": {k: statistics.median(v) for k, v in times.items()},
        "min": {k: min(v) for k, v in times.items()},
        "floor": floor,
        "final": losses,
    }


def profile(name: str, n: int, top: int = 30) -> int:
    """One timed run of system ``name`` under cProfile: the Python functions that take the time (by own time)."""
    import cProfile
    import pstats

    library, make = SYSTEMS[name]
    setup, train, _ = make()
    data = make_data(W)
    assert data.y is not None
    X, y, init = _on_gpu(library, data.X[:n]), data.y[:n], initial_weights(W)
    train(setup(init), X[:4096], y[:4096])
    state = setup(init)
    _sync()
    prof = cProfile.Profile()
    prof.enable()
    train(state, X, y)
    _sync()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)
    return 0


def _vs_torch(times: dict[str, list[float]], name: str) -> str:
    """PyTorch's time / this system's: of the medians, of the minima, and the median of the ratios within a repeat."""
    mine, peer = times[name], times["torch"]
    per_repeat = statistics.median(p / m for p, m in zip(peer, mine))
    return f"{statistics.median(peer) / statistics.median(mine):.2f} / {min(peer) / min(mine):.2f} / {per_repeat:.2f}x"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def format_table(rep: dict[str, Any]) -> str:
    med, mins, floor, flops = rep["median"], rep["min"], rep["floor"], rep["flops"]
    torch_t = med.get("torch")
    lines = [
        f"GPU: {rep['gpu']}; PyTorch {rep['torch']}; {rep['n']:,} rows, {rep['repeats']} repeats (median, min)",
        "",
        "| system | time (median) | min | GFLOP/s | % of GEMM floor | vs PyTorch CUDA (medians / minima / per repeat) "
        "| final loss | accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    times = rep["times"]
    for name, t in med.items():
        fin = rep["final"].get(name, {})
        lines.append(
            f"| {name} | {t * 1e3:.1f} ms | {mins[name] * 1e3:.1f} ms | {flops / t / 1e9:,.0f} | "
            f"{'' if floor is None else f'{floor / t:.0%}'} | "
            f"{'' if torch_t is None or name == 'gemm' else _vs_torch(times, name)} | "
            f"{_num(fin.get('loss'))} | {_num(fin.get('accuracy'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=W.n, help="rows of L's data (default 60,000)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {list(SYSTEMS)}")
    parser.add_argument("--json", default=None, help="write every measurement to this file")
    parser.add_argument("--profile", default=None, help="run this one system once under cProfile (after a warm-up)")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("bench/gpu.py needs a CUDA GPU that PyTorch sees (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        print(f"unknown system(s) {unknown}; choose from {list(SYSTEMS)}", file=sys.stderr)
        return 2
    if args.profile:
        return profile(args.profile, args.n)
    rep = run(args.repeats, args.n, systems)
    print(format_table(rep))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
