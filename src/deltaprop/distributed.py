"""Synchronous data parallelism over MPI: several processes (ranks) train one network as if they were one.

Every rank holds the same data, the same network and the same options. Each global batch is split between the
ranks (rank r takes rows ``m·r//size … m·(r+1)//size`` of a batch of ``m`` rows, so ``m`` need not divide by the
number of ranks); each rank runs forward and backward on its rows, then **one** ``Allreduce`` turns the local mean
gradients into the mean gradient of the whole batch, the same bits on every rank, and every rank takes the same
optimiser step. The result is the run one process would make with the same global batch, up to the rounding of
the sums (float64: about 1e-15; float32: about 1e-7 relative per step).

Start the ranks through ``python -m mpi4py`` so that an exception on one rank aborts the whole job instead of
leaving the others waiting in the next ``Allreduce`` for ever::

    mpiexec -n 4 python -m mpi4py train_script.py
    mpiexec -n 4 python -m mpi4py -m deltaprop train data.parquet --target y --distributed

In a script, call :func:`fit` where you would call :func:`deltaprop.train.fit` (needs the extra ``[mpi]``)::

    from deltaprop import MLP, distributed

    net = MLP([784, 512, 256, 10], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
    history = distributed.fit(net, X, y, epochs=10, batch_size=128, optimizer="sgd", lr=0.01, seed=0)
    if distributed.world().is_root:
        net.save("model.safetensors")

Only rank 0 prints progress and writes checkpoints; every rank ends with the same weights and the same
:class:`~deltaprop.train.History`. Before training, the ranks compare their data, network and options (a cheap
fingerprint) and fail together with a clear message when they differ; after every epoch they compare a checksum of
the weights, so that ranks can never silently diverge.
"""

from __future__ import annotations

import inspect
import json
import os
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .backend import require
from .callbacks import Callback
from .network import Network

__all__ = ["Distributed", "GradientAllreduce", "world", "fit", "launched_size", "DivergedRanksError"]

#: environment variables through which launchers tell each process the job's size: MPICH's Hydra and srun with PMI
#: (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE). Not SLURM_NTASKS, which a batch script sees before any srun.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


class DivergedRanksError(RuntimeError):
    """The ranks' weights differ after an epoch (a bug, or a rank that computed something else): training stops."""


def _mpi() -> Any:
    return require("mpi4py.MPI", "mpi", "Distributed training (deltaprop.distributed)")


def launched_size() -> int:
    """How many processes the launcher started (1 when not run by ``mpiexec``/``srun``); does not import MPI.

    The command line uses it to refuse a job of several ranks started without ``--distributed``, in which every
    rank would train alone and write the same files.
    """
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


# ------------------------------------------------------------------------------------------ the reductions
class GradientAllreduce:
    """``grad_reduce`` hook: the local mean gradient → the global batch's mean gradient, in place, by one Allreduce.

    Each rank packs ``[weight · grad…, weight]`` into one preallocated flat buffer (``weight`` is its number of rows
    in the batch, or their sum of sample weights), the buffer is summed over the ranks by a single buffer-based
    ``Allreduce`` (no pickling) and divided by the total weight.

    The buffer has the gradient's dtype unless ``dtype`` says otherwise. Packing, summing and unpacking are
    memory-bound work that every rank repeats at every step (and the sum is what crosses the network), so a float32
    network sums in float32: half the bytes of float64 (2 ranks on workload L, 2 cores: 2.31 s an epoch against
    2.85 s with a float64 sum, docs/distributed.md). The price is one float32 rounding per addition (relative
    error ≤ (ranks − 1)·2⁻²⁴ on top of the rounding already in each rank's float32 mean); the tests find the same
    ~1e-7 agreement with one process as with a float64 sum. ``dtype=np.float64`` makes the products
    ``weight · grad`` and their sum exact, rounding the result once to the network's dtype, for twice the bytes.

    Determinism: every rank must end with the same bits. MPI's ``Allreduce`` hands every rank the same result
    for the same inputs with MPICH (all ranks run the same reduction algorithm and IEEE addition is commutative, so
    a + b on one rank equals b + a on another); :func:`fit` checks this after every epoch all the same.
    """

    def __init__(self, comm: Any, n_params: int, dtype: Any = np.float32) -> None:
        buf_dtype = np.dtype(dtype)
        if buf_dtype not in (np.float32, np.float64):
            raise ValueError(f"reduce_dtype must be float32 or float64, got {dtype!r}")
        self.comm = comm
        self.size = int(comm.Get_size())
        self.buffer = np.zeros(n_params + 1 if self.size > 1 else 0, dtype=buf_dtype)
        self._in_place = _mpi().IN_PLACE

    def __call__(self, grad: np.ndarray, weight: float) -> float:
        if self.size == 1:  # one rank: its mean gradient is the batch's
            return float(weight)
        buf = self.buffer
        np.multiply(grad, weight, out=buf[:-1], casting="same_kind")
        buf[-1] = weight
        self.comm.Allreduce(self._in_place, buf)
        total = float(buf[-1])
        if total > 0:
            np.divide(buf[:-1], buf[-1], out=grad, casting="same_kind")
        else:  # every row of the batch has weight 0: it changes nothing
            grad[...] = 0.0
        return total


class _MetricAllreduce:
    """``metric_reduce`` hook: sums of the epoch (loss·rows, correct) over every rank."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def __call__(self, values: np.ndarray) -> np.ndarray:
        buf = np.ascontiguousarray(values, dtype=np.float64).copy()
        self.comm.Allreduce(_mpi().IN_PLACE, buf)
        return buf


class _EpochSync(Callback):
    """``stop_sync`` hook, plus a check that the ranks' weights agree: one small ``allgather`` per epoch.

    When any rank stops (early stopping, a time budget that ran out on one rank first, a diverged loss), every rank
    stops after the same epoch, and with the reason of the lowest rank that stopped, so that every rank ends with
    the same history.
    """

    def __init__(self, comm: Any, check_weights: bool) -> None:
        self.comm = comm
        self.check_weights = check_weights

    def __call__(self, stopping: bool) -> bool:
        trainer = self.trainer
        checksum = zlib.crc32(np.ascontiguousarray(trainer.net.theta).data) if self.check_weights else 0
        everyone = self.comm.allgather((trainer.stop_reason if stopping else None, checksum))
        if len({c for _, c in everyone}) > 1:
            ranks = [r for r, (_, c) in enumerate(everyone) if c != everyone[0][1]]
            raise DivergedRanksError(
                f"after epoch {trainer.epoch} the weights of rank(s) {ranks} differ from rank 0's: the ranks must "
                "hold the same data, network and options (this is a bug if they do)"
            )
        reasons = [reason for reason, _ in everyone if reason is not None]
        if not reasons:
            return False
        trainer.stop(reasons[0])
        trainer.stop_reason = reasons[0]  # the same reason on every rank
        return True


# ------------------------------------------------------------------------------------------ consistency
def _crc(*parts: Any) -> int:
    crc = 0
    for part in parts:
        crc = zlib.crc32(
            np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode(), crc
        )
    return crc


def _array_fingerprint(a: Any, sample: int = 64) -> str:
    """Shape, dtype and a checksum of up to ``sample`` evenly spaced rows (whole when small): cheap for any size."""
    if a is None:
        return "None"
    if hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, np.ndarray):
        a = np.asarray(a)  # e.g. a pandas Series
    arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    if arr.ndim == 0 or arr.shape[0] <= 4 * sample:
        rows = arr
    else:
        rows = arr[np.linspace(0, arr.shape[0] - 1, sample).astype(np.intp)]
    if rows.dtype == object:
        return f"{arr.shape}|object|{_crc([repr(v) for v in rows.tolist()])}"
    return f"{arr.shape}|{arr.dtype.str}|{_crc(np.asarray(rows))}"


def _describe(value: Any) -> Any:
    """An option's value as data that is equal on every rank when the option is (no object addresses)."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.Generator):
        return _crc(json.dumps(value.bit_generator.state, sort_keys=True, default=str))
    if isinstance(value, (np.ndarray, list)) and not (isinstance(value, list) and len(value) < 16):
        return _array_fingerprint(value)
    if isinstance(value, (tuple, list)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "get_config"):
        return [type(value).__name__, _describe(value.get_config())]
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    return type(value).__name__


def _check_same_everywhere(comm: Any, net: Network, X: Any, y: Any, options: dict[str, Any]) -> None:
    """Raise the same ValueError on every rank when the ranks' data, network or options differ."""
    mine = {
        "X": _array_fingerprint(X),
        "y": _array_fingerprint(y),
        "network": json.dumps(net.get_config(), sort_keys=True, default=str),
        "options": json.dumps(
            {k: _describe(v) for k, v in sorted(options.items()) if k not in ("callbacks", "verbose")},
            sort_keys=True,
            default=str,
        ),
    }
    everyone = comm.allgather(mine)
    for what, label in (("X", "data X"), ("y", "targets y"), ("network", "network"), ("options", "fit options")):
        ranks = [r for r, theirs in enumerate(everyone) if theirs[what] != everyone[0][what]]
        if ranks:
            raise ValueError(
                f"distributed training needs the same {label} on every rank, but rank(s) {ranks} differ from rank "
                f"0 ({everyone[ranks[0]][what][:200]} vs {everyone[0][what][:200]}); load the same data and pass the "
                "same options on every rank"
            )


# ---------------------------------------------------------------------------------------------- the API
class Distributed:
    """A group of ranks (an MPI communicator) and how to train on it. Get one with :func:`world`."""

    def __init__(self, comm: Any = None) -> None:
        self.comm = _mpi().COMM_WORLD if comm is None else comm

    @property
    def rank(self) -> int:
        return int(self.comm.Get_rank())

    @property
    def size(self) -> int:
        return int(self.comm.Get_size())

    @property
    def is_root(self) -> bool:
        """True on rank 0, the one that prints and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        self.comm.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """``obj`` of rank ``root`` on every rank (pickled: for small things)."""
        return self.comm.bcast(obj, root=root)

    def broadcast_parameters(self, net: Network, root: int = 0) -> None:
        """Copy rank ``root``'s weights into ``net`` on every rank (one buffer-based ``Bcast``)."""
        self.comm.Bcast(net.theta, root=root)

    def fit(self, net: Network, X: Any, y: Any, **kwargs: Any) -> Any:
        """:func:`fit` on this group of ranks."""
        return fit(net, X, y, comm=self.comm, **kwargs)

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, size={self.size})"


def world(comm: Any = None) -> Distributed:
    """The ranks of this job (``MPI.COMM_WORLD``, or ``comm``); raises MissingExtraError without ``[mpi]``."""
    return Distributed(comm)


def fit(
    net: Network,
    X: Any,
    y: Any,
    *,
    comm: Any = None,
    reduce_dtype: Any = None,
    broadcast_parameters: bool = True,
    check_weights: bool = True,
    **kwargs: Any,
) -> Any:
    """Train ``net`` on (X, y) with every rank of ``comm`` (default ``MPI.COMM_WORLD``); return the History.

    Call it on every rank, with the same X and y (or the same memory-mapped file), the same network and the same
    options — keyword arguments as :func:`deltaprop.train.fit`. ``batch_size`` is the **global** batch, split
    between the ranks, so the run matches one process with the same batch size whatever the number of ranks.

    Args:
        comm: an mpi4py communicator; None means ``MPI.COMM_WORLD``.
        reduce_dtype: dtype of the gradient sum over ranks; None: the network's (see :class:`GradientAllreduce`).
        broadcast_parameters: start from rank 0's weights on every rank (a network built with ``seed=None``
            differs between ranks); a resumed run takes its weights from the checkpoint.
        check_weights: after every epoch compare a checksum of the weights across ranks and raise
            :class:`DivergedRanksError` if they differ.
        **kwargs: options of :func:`deltaprop.train.fit`. ``seed=None`` draws one seed on rank 0 for every rank;
            ``verbose`` applies to rank 0 only; ``checkpoint`` is written by rank 0 only; ``resume`` is read by
            every rank (put it where every rank can read it).
    """
    from .train import fit as train_fit

    if "trainer_options" in kwargs:
        raise TypeError("distributed.fit sets trainer_options itself")
    if "trainer_options" not in inspect.signature(train_fit).parameters:
        raise RuntimeError("this deltaprop's train.fit takes no trainer_options, which distributed training needs")
    group = world(comm)
    comm = group.comm
    rank, size = group.rank, group.size
    if kwargs.get("resume") is None:
        seed = kwargs.get("seed")
        if seed is None:  # one seed for every rank, so that shuffles and validation splits agree
            drawn = int(np.random.SeedSequence().generate_state(2, np.uint64)[0] % 2**63) if rank == 0 else None
            kwargs["seed"] = comm.bcast(drawn, root=0)
    _check_same_everywhere(comm, net, X, y, kwargs)
    if broadcast_parameters and kwargs.get("resume") is None:
        group.broadcast_parameters(net)
    if rank != 0:
        kwargs["verbose"] = 0
    sync = _EpochSync(comm, check_weights)
    kwargs["callbacks"] = [*kwargs.get("callbacks", ()), sync]
    hooks: dict[str, Any] = {
        "shard": (rank, size),
        "grad_reduce": GradientAllreduce(comm, net.n_params, net.dtype if reduce_dtype is None else reduce_dtype),
        "metric_reduce": _MetricAllreduce(comm),
        "stop_sync": sync,
        "is_root": rank == 0,
    }
    options: dict[str, Any] = {**kwargs, "trainer_options": hooks}
    return train_fit(net, X, y, **options)


def on_root(fn: Callable[..., Any], *args: Any, comm: Any = None, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` on rank 0 only (e.g. ``net.save``); other ranks get None."""
    return fn(*args, **kwargs) if world(comm).is_root else None
