"""Initial weights: where gradient descent starts.

Each initialiser draws ``W`` (n_in × n_out) and ``b`` (n_out,) from one seeded ``numpy.random.Generator``, so the
same seed gives the same network. Values are drawn in float64 and then cast, so a float32 and a float64 network with
the same seed start from the same numbers (rounded).

>>> import numpy as np
>>> W, b = initialize("glorot_uniform", 3, 2, np.random.default_rng(0))
>>> W.shape, b.shape
((3, 2), (2,))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["INITIALIZERS", "initialize"]

Init = Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def uniform(n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Small random values, as the seed's pseudo-code: W, b ~ U(−1/√n_in, 1/√n_in) (PyTorch's Linear default)."""
    r = 1.0 / np.sqrt(n_in)
    return rng.uniform(-r, r, size=(n_in, n_out)), rng.uniform(-r, r, size=n_out)


def glorot_uniform(n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Glorot & Bengio (2010): W ~ U(−√(6/(n_in+n_out)), +√(6/(n_in+n_out))), b = 0. Suits sigmoid and tanh."""
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_in, n_out)), np.zeros(n_out)


def he_normal(n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """He et al. (2015): W ~ N(0, 2/n_in), b = 0. Suits ReLU and its relatives."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out)), np.zeros(n_out)


def he_uniform(n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """He et al. (2015), uniform form: W ~ U(−√(6/n_in), +√(6/n_in)), b = 0 (scikit-learn's MLP is similar)."""
    r = np.sqrt(6.0 / n_in)
    return rng.uniform(-r, r, size=(n_in, n_out)), np.zeros(n_out)


INITIALIZERS: dict[str, Init] = {
    "uniform": uniform,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}
_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier": "glorot_uniform", "glorot": "glorot_uniform"}


def initialize(name: str, n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (W, b) for one layer with the initialiser called ``name`` (float64 arrays)."""
    if not isinstance(name, str):
        raise TypeError(f"init must be a name or a list of (W, b) arrays, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in INITIALIZERS:
        raise ValueError(
            f"unknown init {name!r}; choose one of: {', '.join(sorted(INITIALIZERS))}, or pass explicit arrays"
        )
    return INITIALIZERS[key](n_in, n_out, rng)
