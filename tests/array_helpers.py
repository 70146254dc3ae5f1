"""Helpers shared by the tests that run deltaprop on arrays of other libraries (PyTorch, array-api-strict, CuPy).

``BACKENDS`` always holds ``torch`` (CPU tensors) and ``strict`` (array-api-strict). Where a CUDA GPU is present it
also holds ``torch-cuda`` (PyTorch tensors on the GPU) and ``cupy`` (when CuPy is installed); ``DELTAPROP_TEST_GPU=1``
adds them even where none is found, so that a GPU machine that lost its GPU fails instead of skipping quietly.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import pytest


class OnDevice:
    """A library's namespace whose ``asarray`` puts arrays on one device (``torch`` with ``device="cuda"``)."""

    def __init__(self, module: Any, device: str) -> None:
        self.module, self.device = module, device
        self.__name__ = module.__name__

    def asarray(self, a: Any, **kwargs: Any) -> Any:
        return self.module.asarray(a, device=self.device, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)


def _torch_has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _cupy_has_gpu() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # CuPy installed without a driver or a device
        return False


def gpu_backends() -> list[str]:
    """The GPU backends to test here: those that can run, or all of them under ``DELTAPROP_TEST_GPU=1``."""
    if os.environ.get("DELTAPROP_TEST_GPU") == "1":
        return ["torch-cuda", "cupy"]
    return [name for name, present in (("torch-cuda", _torch_has_cuda), ("cupy", _cupy_has_gpu)) if present()]


BACKENDS = ["torch", "strict", *gpu_backends()]


def namespace(backend: str) -> Any:
    """The array library of a test backend, or skip the test when it is not installed."""
    if backend == "torch":
        return pytest.importorskip("torch")
    if backend == "torch-cuda":
        return OnDevice(pytest.importorskip("torch"), "cuda")
    if backend == "cupy":
        return pytest.importorskip("cupy")
    return pytest.importorskip("array_api_strict", reason="array-api-strict is a test dependency")


def to_np(a: Any) -> np.ndarray:
    """A NumPy copy of an array of any of the test backends."""
    module = type(a).__module__
    if module.startswith("torch"):
        return a.detach().cpu().numpy()
    if module.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def is_of(xp: Any, a: Any) -> bool:
    """True when ``a`` is an array of the namespace ``xp`` (not NumPy) and, for a GPU backend, on the GPU."""
    if isinstance(a, np.ndarray) or type(a).__module__.split(".")[0] != xp.__name__.split(".")[0]:
        return False
    return not isinstance(xp, OnDevice) or a.device.type == xp.device
