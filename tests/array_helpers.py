"""Helpers shared by the tests that run deltaprop on arrays of other libraries (PyTorch, array-api-strict)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def namespace(backend: str) -> Any:
    """The array library of a test backend, or skip the test when it is not installed."""
    if backend == "torch":
        return pytest.importorskip("torch")
    return pytest.importorskip("array_api_strict", reason="array-api-strict is a test dependency")


def to_np(a: Any) -> np.ndarray:
    """A NumPy copy of an array of any of the test backends."""
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def is_of(xp: Any, a: Any) -> bool:
    """True when ``a`` is an array of the namespace ``xp`` (not NumPy)."""
    return not isinstance(a, np.ndarray) and type(a).__module__.split(".")[0] == xp.__name__.split(".")[0]
