"""Two BLAS routines that NumPy does not expose: ``C ← α·A·B + β·C`` (gemm with β) and ``y ← a·x + y`` (axpy); and
the number of threads of that BLAS library (:func:`threads`, :func:`single_threaded`).

NumPy's ``matmul`` always overwrites its output (β = 0), so an update such as the momentum rule
``b ← μ·b + Xᵀ·δ`` costs a matrix product plus two passes over ``b`` in NumPy; the BLAS routine does it in the
product. This module calls the BLAS library that NumPy itself loaded (the ``scipy-openblas`` of NumPy's wheels),
so it shares NumPy's threads and adds no dependency: through deltaprop's C extension where it was built (the
functions' addresses are handed to it once; a call then costs about a microsecond), else through :mod:`ctypes`
(about 8 µs of argument conversion per call). Where that library cannot be found
(another NumPy build, ``DELTAPROP_BLAS=0`` in the environment) or an array's layout does not suit BLAS, both
functions compute the same result with NumPy.

>>> import numpy as np
>>> from deltaprop import blas
>>> A, B = np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)
>>> C = np.full((2, 2), 10.0, np.float32)
>>> blas.gemm(A, B, C, alpha=1.0, beta=0.5); C.tolist()  # 1·A·B + 0.5·C
[[8.0, 8.0], [8.0, 8.0]]
>>> y = np.zeros(3); blas.axpy(-2.0, np.arange(3.0), y); y.tolist()
[0.0, -2.0, -4.0]
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

__all__ = ["available", "gemm", "axpy", "library_path", "threads", "single_threaded"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# symbol prefixes and suffixes of the CBLAS interface whose integer size the name tells: scipy-openblas with
# 64-bit integers (NumPy's wheels) and OpenBLAS's own 64-bit-integer naming. Unsuffixed names are not used: they
# may take 32- or 64-bit integers depending on the build, and a wrong guess cannot be detected safely.
_NAMINGS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64))


class _Routines(NamedTuple):
    path: str
    gemm: dict[Any, Any]  # dtype → the ctypes function
    axpy: dict[Any, Any]
    direct: Any = None  # deltaprop._ckernels with these functions' addresses, or None (ctypes calls them)
    get_threads: Any = None  # OpenBLAS's openblas_get_num_threads and openblas_set_num_threads, or None
    set_threads: Any = None


# OpenBLAS's thread-count functions under the namings of _NAMINGS (they take and return a C int in every build)
_THREAD_FUNCTIONS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


def _thread_functions(lib: Any) -> tuple[Any, Any]:
    """OpenBLAS's (get, set) number-of-threads functions of ``lib``, or (None, None)."""
    for get_name, set_name in _THREAD_FUNCTIONS:
        get, set_ = getattr(lib, get_name, None), getattr(lib, set_name, None)
        if get is not None and set_ is not None:
            get.argtypes, get.restype = [], ctypes.c_int
            set_.argtypes, set_.restype = [ctypes.c_int], None
            return get, set_
    return None, None


def _candidates() -> list[str]:
    """Shared libraries bundled with NumPy whose names say OpenBLAS (wheels keep them beside the package)."""
    root = os.path.dirname(os.path.abspath(np.__file__))
    places = [os.path.join(os.path.dirname(root), "numpy.libs"), os.path.join(root, ".dylibs"), root]
    found: list[str] = []
    for place in places:
        for path in sorted(glob.glob(os.path.join(place, "*openblas*"))):
            if path not in found and os.path.isfile(path) and not path.endswith((".py", ".pyc", ".pyi")):
                found.append(path)
    return found


def _bind(lib: Any) -> tuple[dict[Any, Any], dict[Any, Any]] | None:
    for prefix, suffix, integer in _NAMINGS:
        try:
            fns = {
                t: (getattr(lib, f"{prefix}{t}gemm{suffix}"), getattr(lib, f"{prefix}{t}axpy{suffix}")) for t in "sd"
            }
        except AttributeError:
            continue
        gemms, axpys = {}, {}
        for t, dtype, real in (("s", np.float32, ctypes.c_float), ("d", np.float64, ctypes.c_double)):
            g, a = fns[t]
            # order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
            g.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real, ctypes.c_void_p]
            g.argtypes += [integer, ctypes.c_void_p, integer, real, ctypes.c_void_p, integer]
            g.restype = None
            a.argtypes = [integer, real, ctypes.c_void_p, integer, ctypes.c_void_p, integer]  # n, a, x, incx, y, incy
            a.restype = None
            gemms[np.dtype(dtype)], axpys[np.dtype(dtype)] = g, a
        return gemms, axpys
    return None


def _load() -> _Routines | None:
    if os.environ.get("DELTAPROP_BLAS", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same library, the same thread pool
        except OSError:
            continue
        bound = _bind(lib)
        if bound is not None and _works(*bound):
            return _Routines(path, *bound, _direct(*bound), *_thread_functions(lib))
    return None


def _direct(gemms: dict[Any, Any], axpys: dict[Any, Any]) -> Any:
    """The C extension, told where the functions are (None without it): it calls them without ctypes' overhead."""
    from . import native

    c = native._c
    if c is None or not hasattr(c, "set_blas"):
        return None
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    fns = (gemms[f32], gemms[f64], axpys[f32], axpys[f64])
    c.set_blas(*(ctypes.cast(fn, ctypes.c_void_p).value for fn in fns))
    return c


def _works(gemms: dict[Any, Any], axpys: dict[Any, Any]) -> bool:
    """A small product and axpy in both dtypes give NumPy's results (guards against a library of another ABI)."""
    for dtype, g in gemms.items():
        A = np.arange(6, dtype=dtype).reshape(2, 3)
        B = np.arange(12, dtype=dtype).reshape(3, 4)
        C = np.ones((2, 4), dtype=dtype)
        g(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, 2, 4, 3, 2.0, A.ctypes.data, 3, B.ctypes.data, 4, 0.5, C.ctypes.data, 4)
        x, y = np.arange(5, dtype=dtype), np.ones(5, dtype=dtype)
        axpys[dtype](5, -3.0, x.ctypes.data, 1, y.ctypes.data, 1)
        if not (np.array_equal(C, 2.0 * (A @ B) + 0.5) and np.array_equal(y, 1.0 - 3.0 * x)):
            return False
    return True


_routines: _Routines | None = None
_loaded = False
_NONE = _Routines("", {}, {})  # what the functions look up when there is no library


def _get() -> _Routines | None:
    global _routines, _loaded
    if not _loaded:
        _routines, _loaded = _load(), True
    return _routines


def available(dtype: Any = np.float32) -> bool:
    """True when :func:`gemm` and :func:`axpy` call BLAS directly for arrays of ``dtype`` (float32 or float64)."""
    r = _get()
    return r is not None and np.dtype(dtype) in r.gemm


def threads() -> int:
    """How many threads BLAS uses now (the limits of threadpoolctl and ``OPENBLAS_NUM_THREADS`` included); 0 when
    unknown (no OpenBLAS found).

    >>> from deltaprop import blas
    >>> blas.threads() >= 0
    True
    """
    r = _get()
    return 0 if r is None or r.get_threads is None else int(r.get_threads())


_hold_lock = threading.Lock()
_holders = 0  # how many single_threaded() blocks are open, in every thread of the process
_held_from = 0  # BLAS's number of threads before the first of them


@contextmanager
def single_threaded() -> Iterator[int]:
    """BLAS on one thread inside the block, for the whole process (OpenBLAS's thread count is one number per
    process, as for threadpoolctl); yields the number of threads it had before (0: unknown, nothing changed).
    Blocks may nest and overlap across threads: the count comes back when the last one ends.

    deltaprop's compiled training step uses it while a team of its own threads shares each step
    (:mod:`deltaprop.compiled_step`), each thread calling BLAS on its share.

    >>> from deltaprop import blas
    >>> before = blas.threads()
    >>> with blas.single_threaded() as had:
    ...     inside = blas.threads()
    >>> had == before and blas.threads() == before and inside == min(before, 1)
    True
    """
    global _holders, _held_from
    r = _get()
    if r is None or r.get_threads is None:
        yield 0
        return
    with _hold_lock:
        if _holders == 0:
            _held_from = int(r.get_threads())
            r.set_threads(1)
        _holders += 1
        had = _held_from
    try:
        yield had
    finally:
        with _hold_lock:
            _holders -= 1
            if _holders == 0:
                r.set_threads(_held_from)


def library_path() -> str | None:
    """The file of the BLAS library in use, or None when NumPy computes instead."""
    r = _get()
    return None if r is None else r.path


def _operand(M: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a row-major matrix or of the transpose of one; None if neither."""
    rows, cols = M.shape
    s0, s1 = M.strides
    size = M.itemsize
    if s1 == size and s0 >= size * max(1, cols) and s0 % size == 0:
        return _NO_TRANS, s0 // size
    if s0 == size and s1 >= size * max(1, rows) and s1 % size == 0:
        return _TRANS, s1 // size
    return None


def gemm(A: np.ndarray, B: np.ndarray, C: np.ndarray, *, alpha: float = 1.0, beta: float = 0.0) -> None:
    """C ← α·A·B + β·C in place, for 2-D float arrays of one dtype (C row-major; A, B row-major or transposed).

    With β = 0 the old contents of C are not read (NaN there does not matter), as in BLAS. C must not overlap A
    or B. The call costs a few microseconds more than ``np.matmul``: worth it for products of more than ~10⁵
    multiply-adds or where β saves passes over C.
    """
    m, k = A.shape
    n = B.shape[1]
    if B.shape[0] != k or C.shape != (m, n):
        raise ValueError(f"gemm: shapes {A.shape} · {B.shape} do not give {C.shape}")
    r = (_routines if _loaded else _get()) or _NONE
    if r.direct is not None and r.direct.gemm(A, B, C, alpha, beta):
        return
    fn = r.gemm.get(C.dtype)
    if fn is not None and A.dtype == C.dtype and B.dtype == C.dtype and m and n and k:
        a, b, c = _operand(A), _operand(B), _operand(C)
        if a is not None and b is not None and c is not None and c[0] == _NO_TRANS and C.flags.writeable:
            fn(
                _ROW_MAJOR,
                a[0],
                b[0],
                m,
                n,
                k,
                alpha,
                A.ctypes.data,
                a[1],
                B.ctypes.data,
                b[1],
                beta,
                C.ctypes.data,
                c[1],
            )
            return
    # NumPy: the same result in more passes
    if beta == 0.0:
        np.matmul(A, B, out=C)
        if alpha != 1.0:
            C *= alpha
    else:
        product = np.matmul(A, B)
        if alpha != 1.0:
            product *= alpha
        if beta != 1.0:
            C *= beta
        C += product


def axpy(a: float, x: np.ndarray, y: np.ndarray) -> None:
    """y ← a·x + y in place, for 1-D contiguous float arrays of one dtype and length."""
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"axpy: x {x.shape} and y {y.shape} must be 1-D arrays of one length")
    r = (_routines if _loaded else _get()) or _NONE
    if r.direct is not None and r.direct.axpy(a, x, y):
        return
    fn = r.axpy.get(y.dtype)
    if (
        fn is not None
        and x.dtype == y.dtype
        and x.flags.c_contiguous
        and y.flags.c_contiguous
        and y.flags.writeable
        and y.shape[0]
    ):
        fn(y.shape[0], a, x.ctypes.data, 1, y.ctypes.data, 1)
        return
    y += y.dtype.type(a) * x
