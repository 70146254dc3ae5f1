"""Which array library a computation runs in.

NumPy is the default and the fast path. The numeric core is written against the Python array API standard
(``xp.exp``, ``xp.matmul``, ``xp.sum(x, axis=…)``), so arrays of another library (CuPy, PyTorch) are handled by the
same code through `array-api-compat <https://data-apis.org/array-api-compat/>`_ (extra ``[gpu]``).

>>> import numpy as np
>>> xp_of(np.zeros(3)) is np
True
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "xp_of",
    "is_numpy",
    "is_foreign_array",
    "to_host",
    "device_of",
    "constant_like",
    "affine",
    "matmul_into",
    "sum_rows_into",
    "dtype_in",
    "MissingExtraError",
    "require",
]

#: Libraries whose arrays are recognised by their type's module (CuPy's ``ndarray`` has no ``__array_namespace__``:
#: array-api-compat wraps its namespace).
_ARRAY_LIBRARIES = ("torch", "cupy")


def _library(a: Any) -> str:
    """The top-level package of ``a``'s type (``"numpy"``, ``"torch"``, ``"cupy"``, …)."""
    return type(a).__module__.split(".")[0]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def require(module: str, extra: str, purpose: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install "deltaprop[extra]"``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the optional package '{module.split('.')[0]}', which is not installed; "
            f'install it with: pip install "deltaprop[{extra}]"'
        ) from exc


def is_numpy(a: Any) -> bool:
    """True for NumPy arrays and NumPy scalars (the fast path)."""
    return isinstance(a, (np.ndarray, np.generic, float, int))


def is_foreign_array(a: Any) -> bool:
    """True for an array of another library than NumPy: one with ``__array_namespace__``, a PyTorch tensor or a
    CuPy array."""
    if is_numpy(a):
        return False
    return hasattr(a, "__array_namespace__") or _library(a) in _ARRAY_LIBRARIES


def to_host(a: Any) -> np.ndarray:
    """A NumPy array with the values of ``a``: a NumPy array itself, else a copy in host memory (from a GPU too).

    >>> to_host(np.arange(3)).tolist()
    [0, 1, 2]
    """
    if isinstance(a, np.ndarray):
        return a
    library = _library(a)
    if library == "torch":
        return a.detach().cpu().numpy()
    if library == "cupy":
        return a.get()
    if hasattr(a, "__dlpack__") and not is_numpy(a):
        try:
            return np.from_dlpack(a)
        except Exception:  # noqa: BLE001 - an array on another device: convert through the library instead
            pass
    return np.asarray(a)


def device_of(a: Any) -> Any:
    """The device of an array of any library (``"cpu"`` for NumPy), to create new arrays beside it.

    >>> device_of(np.zeros(2))
    'cpu'
    """
    if is_numpy(a):
        return "cpu"
    from array_api_compat import device

    return device(a)


#: 0-d constants made by constant_like, by (array type, dtype, device, value)
_CONSTANTS: dict[tuple[Any, ...], Any] = {}


def constant_like(value: float, a: Any) -> Any:
    """``value`` as a 0-d array of ``a``'s library, dtype and device, made once and kept.

    For ``xp.maximum(x, constant_like(0.0, x))``: array-api-compat turns a Python number given to ``maximum`` into a
    new tensor on the GPU on every call, a synchronous copy from the host each time.

    >>> constant_like(0.0, np.ones(3))  # NumPy takes Python numbers as they are
    0.0
    """
    if is_numpy(a):
        return value
    try:
        key: tuple[Any, ...] = (type(a), a.dtype, a.device, value)
        c = _CONSTANTS.get(key)
    except (TypeError, AttributeError):  # a dtype or device that cannot be hashed, or no .device attribute
        key = (type(a), str(a.dtype), str(device_of(a)), value)
        c = _CONSTANTS.get(key)
    if c is None:
        c = _CONSTANTS[key] = xp_of(a).asarray(value, dtype=a.dtype, device=device_of(a))
    return c


def affine(X: Any, W: Any, b: Any) -> Any:
    """X·W + b as a new array: one ``addmm`` for PyTorch tensors (the bias added in the product: one GPU kernel),
    else the product and an in-place add.

    >>> affine(np.ones((1, 2)), np.ones((2, 3)), np.arange(3.0)).tolist()
    [[2.0, 3.0, 4.0]]
    """
    if _library(X) == "torch" and X.ndim == 2:
        import torch

        return torch.addmm(b, X, W)
    net = X @ W
    net += b
    return net


def matmul_into(a: Any, b: Any, out: Any) -> None:
    """``out[...] = a @ b`` with the product written into ``out`` where the library can (PyTorch, CuPy: ``out=``),
    so that a GPU runs one kernel instead of a product and a copy.

    >>> out = np.empty((1, 1)); matmul_into(np.ones((1, 2)), np.ones((2, 1)), out); out.tolist()
    [[2.0]]
    """
    library = _library(out)
    if library in _ARRAY_LIBRARIES:
        sys.modules[library].matmul(a, b, out=out)
    else:
        out[...] = a @ b


def sum_rows_into(a: Any, out: Any) -> None:
    """``out[...] = Σ_rows a`` (the sum over axis 0), written into ``out`` where the library can (PyTorch, CuPy).

    >>> out = np.empty(2); sum_rows_into(np.ones((3, 2)), out); out.tolist()
    [3.0, 3.0]
    """
    library = _library(out)
    if library in _ARRAY_LIBRARIES:
        sys.modules[library].sum(a, axis=0, out=out)
    else:
        out[...] = xp_of(a).sum(a, axis=0)


def dtype_in(xp: Any, dtype: Any) -> Any:
    """The dtype of namespace ``xp`` that the NumPy ``dtype`` names (``float32`` → ``torch.float32``)."""
    if xp is np:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # already a dtype of xp
    return getattr(xp, name)


#: array-api-compat's namespace of each array type seen (it depends on the type alone): a step on GPU arrays asks
#: for namespaces ~10 times, and array_api_compat.array_namespace costs ~4 µs each time.
_NAMESPACES: dict[type, Any] = {}


def xp_of(*arrays: Any) -> Any:
    """The array namespace of ``arrays``: ``numpy`` itself for NumPy arrays, else the array-api-compat namespace."""
    first = type(arrays[0])
    if first is np.ndarray and len(arrays) == 1:  # the common case, without the generic checks
        return np
    if len(arrays) == 1 and first in _NAMESPACES:
        return _NAMESPACES[first]
    foreign = [a for a in arrays if not is_numpy(a)]
    if not foreign:
        return np
    compat = require("array_api_compat", "gpu", "Training on non-NumPy arrays (CuPy, PyTorch)")
    xp = compat.array_namespace(*foreign)
    if len(arrays) == 1:
        _NAMESPACES[first] = xp
    return xp
