"""The optional C kernels of the training step (``deltaprop._ckernels``) and when they are used.

A training step of an MLP is mostly matrix products; what is left is elementwise work — ReLU and its derivative,
softmax, the batch's cross-entropy, the Adam update — done once per layer or once per batch; and before training,
one pass over the whole input to find NaN or infinite values (:func:`first_nonfinite`). NumPy does each operator
in its own call, often with a temporary array (``g *= out > 0`` makes a boolean array, then casts it); the C
versions make one pass and no temporary. They compute the same numbers (ReLU and Adam exactly; softmax and
cross-entropy to float rounding, as their exponentials and sums are ordered differently).

The module is built when deltaprop is installed with a C compiler at hand (``setup.py`` marks it optional).
Without it, or with ``DELTAPROP_NATIVE=0`` in the environment, or for arrays it does not take (other dtypes than
float32/float64, arrays that are not C-contiguous, other array libraries), NumPy computes instead.

>>> import numpy as np
>>> from deltaprop import native
>>> net = np.array([[-1.0, 2.0]], dtype=np.float32)
>>> out = np.empty_like(net)
>>> native.relu(net, out).tolist()
[[0.0, 2.0]]
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["available", "relu", "relu_backward", "softmax", "cross_entropy_sum", "adam", "first_nonfinite"]


def _load() -> ModuleType | None:
    if os.environ.get("DELTAPROP_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from . import _ckernels
    except ImportError:
        return None
    return _ckernels


_c = _load()
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def available() -> bool:
    """True when the C kernels were built and are in use."""
    return _c is not None


def _takes(*arrays: Any) -> bool:
    """True when the C kernels take these arrays: NumPy, one float dtype, C-contiguous."""
    if _c is None:
        return False
    dtype = getattr(arrays[0], "dtype", None)
    if dtype not in _FLOATS:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True


def relu(net: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = max(net, 0) (``out`` may be ``net``); returns ``out``."""
    if _c is not None and net.shape == out.shape and _takes(net, out) and out.flags.writeable:
        _c.relu(net, out)
        return out
    return np.maximum(net, 0.0, out=out)


def relu_backward(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """g ← g ⊙ [out > 0] in place: the ReLU's δ from ∂E/∂out (``out`` = the layer's output); returns ``g``."""
    if _c is not None and g.shape == out.shape and g is not out and _takes(g, out) and g.flags.writeable:
        _c.relu_backward(g, out)
        return g
    g *= out > 0
    return g


def softmax(net: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise softmax of a 2-D ``net`` into ``out``: returns (out, m, s) with m the row maxima and s the row sums
    of e^(net − m), each of shape (rows, 1) — what :func:`cross_entropy_sum` needs."""
    rows = net.shape[0]
    if (
        _c is not None
        and net.ndim == 2
        and net.shape == out.shape
        and net.shape[1] > 0
        and _takes(net, out)
        and out.flags.writeable
    ):
        m = np.empty((rows, 1), dtype=net.dtype)
        s = np.empty((rows, 1), dtype=net.dtype)
        _c.softmax(net, out, m, s)
        return out, m, s
    m = np.maximum.reduce(net, axis=-1, keepdims=True)  # shifting net changes no o, and avoids overflow
    np.subtract(net, m, out=out)
    np.exp(out, out=out)
    s = np.add.reduce(out, axis=-1, keepdims=True)
    out /= s  # o = e^(net − m) / s
    return out, m, s


def cross_entropy_sum(net: np.ndarray, m: np.ndarray, s: np.ndarray, t: np.ndarray) -> float:
    """Σ t · ln o over every row and unit, with ln o = (net − m) − ln s from the softmax's own ``m`` and ``s``
    (nothing is exponentiated again). The batch's cross-entropy is minus this over the number of rows."""
    if _c is not None and net.ndim == 2 and t.shape == net.shape and _takes(net, m, s, t):
        return float(_c.cross_entropy_sum(net, m, s, t))
    z = np.subtract(net, m)
    z -= np.log(s)  # log-softmax: ln o = (net − m) − ln s
    z *= t
    return float(np.add.reduce(z, axis=None))


def adam(
    theta: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: float,
    beta2: float,
    eps_hat: float,
    step_size: float,
) -> bool:
    """One Adam update in one pass, if the C kernels take these arrays; False (nothing done) otherwise.

    ``m ← m + (1 − β1)(g − m)``, ``v ← β2·v + (1 − β2)·g²``, ``θ ← θ − step_size·m/(√v + eps_hat)``, in the order and
    rounding of :class:`deltaprop.optim.Adam`'s NumPy code (which the caller runs when this returns False).
    """
    if (
        _c is None
        or not (theta.shape == g.shape == m.shape == v.shape)
        or not _takes(theta, g, m, v)
        or not (theta.flags.writeable and m.flags.writeable and v.flags.writeable)
    ):
        return False
    _c.adam(theta, g, m, v, beta1, beta2, eps_hat, step_size)
    return True


_SPLIT = 1 << 22  # numbers (16 MB of float32) from which first_nonfinite checks the two halves in two threads


def first_nonfinite(a: np.ndarray) -> int:
    """The flat (C-order) index of the first NaN or ±inf in a float array, or -1 when every number is finite.

    The C kernel tests the bits without a temporary array and releases the GIL: from 2²² numbers on, with more
    than one core, the second half is checked in a second thread (the pass is bound by memory bandwidth, which
    one core does not fill). NumPy computes the same otherwise (a finite sum proves every number finite).

    >>> import numpy as np
    >>> from deltaprop import native
    >>> native.first_nonfinite(np.array([[1.0, 2.0], [np.nan, np.inf]]))
    2
    """
    if _c is not None and _takes(a):
        flat = a.reshape(-1)  # a view: a is C-contiguous
        n = flat.shape[0]
        if n < _SPLIT or (os.cpu_count() or 1) < 2:
            return int(_c.first_nonfinite(flat))
        half = n // 2
        found_upper = [-1]

        def check_upper() -> None:  # in a second thread: the kernel releases the GIL
            found_upper[0] = int(_c.first_nonfinite(flat[half:]))

        thread = threading.Thread(target=check_upper)
        thread.start()
        lower = int(_c.first_nonfinite(flat[:half]))
        thread.join()
        if lower >= 0:
            return lower
        return half + found_upper[0] if found_upper[0] >= 0 else -1
    if np.isfinite(np.add.reduce(a, axis=None)):
        return -1
    bad = np.flatnonzero(~np.isfinite(a))  # the sum may overflow with finite numbers: look at each
    return int(bad[0]) if bad.size else -1
