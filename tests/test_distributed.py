"""Data parallelism over MPI (deltaprop.distributed): real ranks started by ``mpiexec -n N python -m mpi4py``.

Each MPI test writes the worker script below to a temporary folder, launches it with ``mpiexec`` and compares what
every rank saved with a run of one process. Skipped (with the reason) without mpi4py or ``mpiexec`` (extra
``[mpi]``: ``pip install "deltaprop[mpi]"`` brings both, MPICH included).
"""

from __future__ import annotations

import inspect
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deltaprop import distributed
from deltaprop.train import fit

pytest.importorskip("mpi4py", reason="distributed training needs mpi4py (extra [mpi])")


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"  # the mpich wheel installs it next to python
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH (the mpich wheel of [mpi] has one)")
needs_hooks = pytest.mark.skipif(
    "trainer_options" not in inspect.signature(fit).parameters,
    reason="train.fit has no trainer_options yet (the train.py patch for deltaprop.distributed is not applied)",
)

WORKER = r'''
"""One rank of a distributed test: python -m mpi4py worker.py MODE OUT_DIR"""
import json
import sys

import numpy as np

from deltaprop import MLP, distributed
from deltaprop.callbacks import Callback
from deltaprop.optim import SGD


def data(n=203, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8)
    flip = rng.random(n) < noise
    y[flip] = rng.integers(0, 3, int(flip.sum()))
    return X, y


def make(dtype="float64"):
    return MLP([5, 8, 3], activation="tanh", output_activation="softmax", loss="cross_entropy", dtype=dtype, seed=1)


def options(**changes):
    # global batch 15 (odd): 2 ranks split every batch 7 + 8, 3 ranks 5 + 5 + 5 and the last batch unevenly
    opts = dict(epochs=3, batch_size=15, optimizer=SGD(lr=0.05, momentum=0.9), seed=3, validation_split=0.2,
                verbose=0)
    opts.update(changes)
    return opts


def weights(n=203):
    w = np.random.default_rng(7).uniform(0.0, 2.0, n)
    w[::9] = 0.0
    return w


def early_options():
    return options(epochs=200, optimizer=SGD(lr=0.5, momentum=0.9), patience=3, restore_best_weights=True)


class StopOnRank(Callback):
    """Stops training on one rank only, as a time budget that runs out there first would."""

    def __init__(self, rank, epoch):
        self.rank, self.epoch = rank, epoch

    def on_epoch_end(self, epoch, logs):
        if distributed.world().rank == self.rank and epoch == self.epoch:
            self.trainer.stop(f"rank {self.rank} ran out of time")


class Boom(Callback):
    def on_epoch_end(self, epoch, logs):
        if distributed.world().rank == 1 and epoch == 1:
            raise RuntimeError("boom on rank 1")


def main(mode, out):
    world = distributed.world()
    rank = world.rank

    def dump(name, net, history):
        np.save(f"{out}/{name}.{rank}.npy", net.theta)
        with open(f"{out}/{name}.{rank}.json", "w") as f:
            json.dump(history.to_dict(), f)

    X, y = data()
    if mode == "equal":
        for dtype in ("float64", "float32"):
            net = make(dtype)
            dump(dtype, net, distributed.fit(net, X, y, **options()))
        net = make()
        dump("weighted", net, distributed.fit(net, X, y, sample_weight=weights(), **options()))
    elif mode == "early":
        Xn, yn = data(noise=0.3)
        net = make()
        dump("early", net, distributed.fit(net, Xn, yn, **early_options()))
        net = make()
        dump("one_stops", net, distributed.fit(net, X, y, **options(epochs=10, callbacks=[StopOnRank(1, 2)])))
    elif mode == "crash":
        distributed.fit(make(), X, y, **options(epochs=1000, callbacks=[Boom()]))
    elif mode == "mismatch":
        distributed.fit(make(), X + rank, y, **options())
    elif mode == "checkpoint":
        import deltaprop.io

        save = deltaprop.io.save_checkpoint

        def spy(path, *args, **kwargs):  # records which rank writes checkpoints
            with open(f"{out}/saved_by.{rank}", "a") as f:
                f.write(f"{path}\n")
            return save(path, *args, **kwargs)

        deltaprop.io.save_checkpoint = spy
        Xc, yc = data(n=101)  # batches of 10: 11 per epoch, the last one row (none for rank 0)
        opts = dict(batch_size=10, optimizer=SGD(lr=0.05, momentum=0.9), seed=5, verbose=0)
        net = make()
        dump("full", net, distributed.fit(net, Xc, yc, epochs=4, **opts))
        ckpt = f"{out}/run.ckpt"
        net = make()  # "interrupted" after 2 epochs; the last checkpoint is from the middle of epoch 2 (update 20)
        distributed.fit(net, Xc, yc, epochs=2, checkpoint=ckpt, checkpoint_every=4,
                        **{**opts, "optimizer": SGD(lr=0.05, momentum=0.9)})
        world.barrier()
        net = make()
        dump("resumed", net, distributed.fit(net, Xc, yc, epochs=4, resume=ckpt,
                                             **{**opts, "optimizer": SGD(lr=0.05, momentum=0.9)}))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("distributed") / "worker.py"
    path.write_text(WORKER)
    return path


@pytest.fixture(scope="module")
def W(worker: Path) -> dict[str, Any]:
    """The worker's functions (data, networks, options) for the one-process reference runs."""
    return runpy.run_path(str(worker), run_name="worker")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"  # one BLAS thread per rank: the ranks are the parallelism
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Open MPI's mpiexec refuses root (containers) unless told
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def launch(worker: Path, mode: str, out: Path, n: int = 2, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert MPIEXEC is not None
    cmd = [MPIEXEC, "-n", str(n), sys.executable, "-m", "mpi4py", str(worker), mode, str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=out)


def run_ok(worker: Path, mode: str, out: Path, n: int = 2) -> None:
    proc = launch(worker, mode, out, n)
    assert proc.returncode == 0, f"mpiexec failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def load(out: Path, name: str, n: int) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    thetas = [np.load(out / f"{name}.{r}.npy") for r in range(n)]
    histories = [json.loads((out / f"{name}.{r}.json").read_text()) for r in range(n)]
    return thetas, histories


def assert_ranks_identical(thetas: list[np.ndarray], histories: list[dict[str, Any]]) -> None:
    for r in range(1, len(thetas)):
        assert thetas[r].tobytes() == thetas[0].tobytes(), f"rank {r}'s weights differ from rank 0's"
        same = {k: v for k, v in histories[r].items() if k != "time"} == {
            k: v for k, v in histories[0].items() if k != "time"
        }
        assert same, f"rank {r}'s history differs from rank 0's"


# --------------------------------------------------------------------------------------------- with ranks
@needs_mpiexec
@needs_hooks
@pytest.mark.parametrize("n", [2, 3])
def test_ranks_train_as_one_process(worker: Path, W: dict[str, Any], tmp_path: Path, n: int) -> None:
    run_ok(worker, "equal", tmp_path, n)
    X, y = W["data"]()
    for name, dtype, extra, tol in (
        ("float64", "float64", {}, 1e-12),
        ("float32", "float32", {}, 1e-5),
        ("weighted", "float64", {"sample_weight": W["weights"]()}, 1e-12),
    ):
        thetas, histories = load(tmp_path, name, n)
        assert_ranks_identical(thetas, histories)  # ranks never diverge: the same bits everywhere
        ref = W["make"](dtype)
        h = fit(ref, X, y, **W["options"](), **extra)
        assert thetas[0].dtype == ref.theta.dtype
        assert np.abs(thetas[0] - ref.theta).max() <= (1e-6 if dtype == "float32" else tol), name
        # the epoch metrics are those of the whole data set, not of one rank's share
        np.testing.assert_allclose(histories[0]["loss"], h.loss, rtol=tol, atol=tol)
        np.testing.assert_allclose(histories[0]["accuracy"], h.accuracy, rtol=0, atol=1e-12)
        np.testing.assert_allclose(histories[0]["val_loss"], h.val_loss, rtol=tol, atol=tol)


@needs_mpiexec
@needs_hooks
def test_early_stopping_stops_every_rank_at_the_same_epoch(worker: Path, W: dict[str, Any], tmp_path: Path) -> None:
    run_ok(worker, "early", tmp_path)
    thetas, histories = load(tmp_path, "early", 2)
    assert_ranks_identical(thetas, histories)
    Xn, yn = W["data"](noise=0.3)
    ref = W["make"]()
    h = fit(ref, Xn, yn, **W["early_options"]())
    assert h.stop_reason.startswith("early stopping") and h.epochs_run < 200
    assert histories[0]["stop_reason"] == h.stop_reason
    assert len(histories[0]["epoch"]) == h.epochs_run and histories[0]["best_epoch"] == h.best_epoch
    np.testing.assert_allclose(thetas[0], ref.theta, rtol=0, atol=1e-10)  # the best epoch's weights restored
    # one rank alone decides to stop (a time budget used up there first): both stop after that epoch
    thetas, histories = load(tmp_path, "one_stops", 2)
    assert_ranks_identical(thetas, histories)
    assert histories[0]["epoch"] == [0, 1, 2] and histories[0]["stop_reason"] == "rank 1 ran out of time"


@needs_mpiexec
@needs_hooks
def test_an_exception_on_one_rank_ends_the_job(worker: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = launch(worker, "crash", tmp_path, timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert elapsed < 30, f"the job took {elapsed:.1f} s to end after one rank failed"
    assert "boom on rank 1" in proc.stdout + proc.stderr


@needs_mpiexec
@needs_hooks
def test_ranks_with_different_data_fail_together_with_a_clear_message(worker: Path, tmp_path: Path) -> None:
    proc = launch(worker, "mismatch", tmp_path, timeout=60)
    assert proc.returncode != 0
    message = " ".join((proc.stdout + proc.stderr).split())
    assert "needs the same data X on every rank, but rank(s) [1] differ" in message


@needs_mpiexec
@needs_hooks
def test_checkpoint_by_rank_0_only_and_resume_across_ranks(worker: Path, W: dict[str, Any], tmp_path: Path) -> None:
    run_ok(worker, "checkpoint", tmp_path)
    assert (tmp_path / "saved_by.0").read_text().splitlines() == [str(tmp_path / "run.ckpt")] * 5  # updates 4…20
    assert not (tmp_path / "saved_by.1").exists(), "rank 1 wrote a checkpoint"
    full, full_h = load(tmp_path, "full", 2)
    resumed, resumed_h = load(tmp_path, "resumed", 2)
    assert_ranks_identical(full + resumed, full_h + resumed_h)  # bit-identical to the run never interrupted
    # the checkpoint does not depend on the number of processes: one process finishes the 2-rank run too
    from deltaprop.optim import SGD

    Xc, yc = W["data"](n=101)
    net = W["make"]()
    h = fit(net, Xc, yc, epochs=4, resume=tmp_path / "run.ckpt", batch_size=10, optimizer=SGD(lr=0.05, momentum=0.9))
    np.testing.assert_allclose(net.theta, full[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h.loss, full_h[0]["loss"], rtol=1e-12)  # epoch 2's loss spans the resume point
    assert h.accuracy == full_h[0]["accuracy"]


@needs_mpiexec
@needs_hooks
def test_command_line_distributed(tmp_path: Path) -> None:
    pytest.importorskip("click")
    help_text = subprocess.run(
        [sys.executable, "-m", "deltaprop", "train", "--help"], capture_output=True, text=True, env=_env()
    ).stdout
    if "--distributed" not in help_text:
        pytest.skip("the deltaprop command has no --distributed option yet (cli.py wiring not applied)")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((301, 3))
    lines = ["a,b,c,y"] + [f"{a},{b},{c},{int(a + b > 0)}" for a, b, c in X]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    assert MPIEXEC is not None
    common = ["train", "data.csv", "--target", "y", "--epochs", "3", "--hidden", "8", "--json"]
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", "-m", "deltaprop", *common, "--distributed"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # one summary: only rank 0 prints
    single = subprocess.run(
        [sys.executable, "-m", "deltaprop", *common, "--out", "single.safetensors"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=tmp_path,
    )
    assert single.returncode == 0, single.stderr
    np.testing.assert_allclose(summary["loss"], json.loads(single.stdout)["loss"], rtol=1e-5)
    assert (tmp_path / "model.safetensors").exists()


# --------------------------------------------------------------------------------------- in this process
class _FakeComm:
    """A communicator of ranks whose values are given: allgather returns them; Allreduce adds ``size`` equal shares.

    (The tests in this process never initialise MPI: real ranks run in the mpiexec jobs above.)
    """

    def __init__(self, gathered: list[Any] | None = None, size: int = 1) -> None:
        self.gathered = gathered
        self.size = size if gathered is None else len(gathered)

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return self.size

    def allgather(self, obj: Any) -> list[Any]:
        return [obj] if self.gathered is None else [obj, *self.gathered[1:]]

    def Allreduce(self, send: Any, recv: Any) -> None:
        recv *= self.size  # every rank sent the same buffer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_allreduce_is_the_weighted_mean(monkeypatch: pytest.MonkeyPatch, dtype: Any) -> None:
    monkeypatch.setattr(distributed, "_mpi", lambda: types.SimpleNamespace(IN_PLACE=None))  # MPI stays uninitialised
    grad = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    reduce = distributed.GradientAllreduce(_FakeComm(size=3), grad.size, dtype)
    assert reduce.buffer.dtype == dtype and reduce.buffer.size == 4
    assert reduce(grad, 7.0) == 21.0  # three ranks of 7 rows each
    np.testing.assert_array_equal(grad, [0.5, -1.0, 2.0])  # the mean of three equal means
    assert reduce(grad, 0.0) == 0.0 and not grad.any()  # a batch of weight 0 changes nothing
    alone = distributed.GradientAllreduce(_FakeComm(), 3)
    grad[...] = 1.5
    assert alone(grad, 5.0) == 5.0 and alone.buffer.size == 0 and (grad == 1.5).all()  # one rank: nothing to do
    with pytest.raises(ValueError, match="reduce_dtype"):
        distributed.GradientAllreduce(_FakeComm(), 3, np.int32)


def test_consistency_check_names_the_rank_that_differs(W: dict[str, Any]) -> None:
    X, y = W["data"]()
    net = W["make"]()
    mine = {
        "X": distributed._array_fingerprint(X),
        "y": distributed._array_fingerprint(y),
        "network": json.dumps(net.get_config(), sort_keys=True, default=str),
        "options": "{}",
    }
    distributed._check_same_everywhere(_FakeComm([mine, mine]), net, X, y, {})
    with pytest.raises(ValueError, match=r"same fit options on every rank, but rank\(s\) \[1\] differ"):
        distributed._check_same_everywhere(_FakeComm([mine, {**mine, "options": '{"epochs": 3}'}]), net, X, y, {})
    assert distributed._array_fingerprint(X) != distributed._array_fingerprint(X + 1e-9)


def test_launched_size_reads_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in distributed._SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_size() == 1
    monkeypatch.setenv("PMI_SIZE", "4")
    assert distributed.launched_size() == 4
