"""deltaprop: train multi-layer perceptrons by backpropagation, and see every number of a step.

>>> import deltaprop
>>> net = deltaprop.MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=0)
>>> net.forward([[0.0, 1.0]]).shape
(1, 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .activations import get_activation
from .gradcheck import GradcheckResult, gradcheck  # eager: the function shadows its module's name
from .layers import Dense
from .losses import get_loss
from .network import MLP, Network

if TYPE_CHECKING:
    from .trace import Trace, trace_step

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Network",
    "Dense",
    "Trace",
    "trace_step",
    "gradcheck",
    "GradcheckResult",
    "get_activation",
    "get_loss",
    "load",
    "__version__",
]

_LAZY = {
    "optim",
    "datasets",
    "examples",
    "callbacks",
    "train",
    "sklearn",
    "plot",
    "io",
    "distributed",
    "tabular",
    "safefile",
}


def load(path: Any) -> Any:
    """Load a model saved with ``Network.save`` (never runs code from the file)."""
    from .io import load as _load

    return _load(path)


_LAZY_NAMES = {"trace_step": "trace", "Trace": "trace"}


def __getattr__(name: str) -> Any:
    # submodules with optional or heavier imports are loaded on first use: `import deltaprop` stays fast
    if name in _LAZY_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
