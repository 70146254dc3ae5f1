"""Which array library a computation runs in.

NumPy is the default and the fast path. The numeric core is written against the Python array API standard
(``xp.exp``, ``xp.matmul``, ``xp.sum(x, axis=…)``), so arrays of another library (CuPy, PyTorch) are handled by the
same code through `array-api-compat <https://data-apis.org/array-api-compat/>`_ (extra ``[gpu]``).

>>> import numpy as np
>>> xp_of(np.zeros(3)) is np
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["xp_of", "is_numpy", "is_foreign_array", "dtype_in", "MissingExtraError", "require"]


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
    """True for an array of another library than NumPy: one with ``__array_namespace__``, or a PyTorch tensor."""
    return not is_numpy(a) and (hasattr(a, "__array_namespace__") or type(a).__module__.startswith("torch"))


def dtype_in(xp: Any, dtype: Any) -> Any:
    """The dtype of namespace ``xp`` that the NumPy ``dtype`` names (``float32`` → ``torch.float32``)."""
    if xp is np:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return dtype  # already a dtype of xp
    return getattr(xp, name)


def xp_of(*arrays: Any) -> Any:
    """The array namespace of ``arrays``: ``numpy`` itself for NumPy arrays, else the array-api-compat namespace."""
    if type(arrays[0]) is np.ndarray and len(arrays) == 1:  # the common case, without the generic checks
        return np
    if all(is_numpy(a) for a in arrays):
        return np
    compat = require("array_api_compat", "gpu", "Training on non-NumPy arrays (CuPy, PyTorch)")
    return compat.array_namespace(*[a for a in arrays if not is_numpy(a)])
