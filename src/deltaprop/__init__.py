"""deltaprop: train multi-layer perceptrons by backpropagation, and see every number of a step.

>>> import deltaprop
>>> net = deltaprop.MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=0)
>>> net.forward([[0.0, 1.0]]).shape
(1, 1)
"""

from __future__ import annotations

from typing import Any

from .activations import get_activation
from .gradcheck import GradcheckResult, gradcheck
from .layers import Dense
from .losses import get_loss
from .network import MLP, Network
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
    "gradcheck",
    "safefile",
}


def load(path: Any) -> Any:
    """Load a model saved with ``Network.save`` (never runs code from the file)."""
    from .io import load as _load

    return _load(path)


def __getattr__(name: str) -> Any:
    # submodules with optional or heavier imports are loaded on first use: `import deltaprop` stays fast
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
