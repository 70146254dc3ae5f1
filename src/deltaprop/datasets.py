"""Small datasets for training and inspecting multi-layer perceptrons, from one example to 1,797 digits.

Every dataset is a function that returns a :class:`Dataset`: the inputs ``X`` (float64, one row per example),
the targets ``y``, the task and a description. The classic back-propagation problems (the worked 2-2-2
example, XOR, parity, the 8-3-8 encoder, mirror symmetry, Lang and Witbrock's two spirals) are exact; the
generated ones (moons, circles, blobs, noisy spirals) draw all their randomness from
``np.random.default_rng(seed)``, so the same seed gives the same bits. The handwritten digits ship with the
package: nothing is ever downloaded.

Targets follow the task:

* ``"classification"``: integer class labels of shape ``(n,)``, and ``target_names`` names the classes;
* ``"regression"``: float64 targets of shape ``(n, k)``, ``target_names`` is None;
* ``"autoencoder"``: float64 targets of shape ``(n, k)`` equal to the inputs, ``target_names`` is None.

>>> X, y = xor()
>>> X.tolist(), y.tolist()
([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
>>> ds = load("moons", n_samples=10, seed=0)
>>> ds.X.shape, ds.task
((10, 2), 'classification')
>>> [info.name for info in available()][:3]
['worked_example', 'one_weight', 'xor']
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Dataset",
    "DatasetInfo",
    "Task",
    "worked_example",
    "one_weight",
    "xor",
    "parity",
    "encoder",
    "mirror_symmetry",
    "two_spirals",
    "moons",
    "circles",
    "blobs",
    "digits",
    "load",
    "available",
    "export",
    "EXPORT_FORMATS",
]

Task = Literal["classification", "regression", "autoencoder"]
_TASKS = ("classification", "regression", "autoencoder")

#: the file suffixes :func:`export` can write
EXPORT_FORMATS = (".csv", ".npz")

# the most bits (2**20 rows) and encoder units (a 1024 x 1024 identity) a function will build
_MAX_BITS = 20
_MAX_ENCODER = 1024


# --------------------------------------------------------------------------------------------------------------
# the containers


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A dataset: inputs ``X``, targets ``y``, the task, and what the columns mean.

    ``X`` is float64 of shape ``(n, d)``. For classification ``y`` holds integer labels of shape ``(n,)``
    and ``target_names[k]`` names class ``k``; for regression and autoencoder tasks ``y`` is float64 of
    shape ``(n, k)`` and ``target_names`` is None. A dataset unpacks like a pair, ``X, y = ds``. Each call of a
    dataset function builds fresh arrays, so changing them in place affects no other dataset.

    >>> X, y = Dataset("tiny", np.zeros((2, 1)), np.array([0, 1]), "classification", "Two points.", ["x"], ["a", "b"])
    >>> X.shape, y.tolist()
    ((2, 1), [0, 1])
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: Task
    description: str
    feature_names: list[str]
    target_names: list[str] | None = None

    def __post_init__(self) -> None:
        X, y = self.X, self.y
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype != np.float64:
            raise ValueError(f"Dataset {self.name!r}: X must be a 2-D float64 array")
        if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or len(y) != len(X):
            raise ValueError(f"Dataset {self.name!r}: y must be a 1-D or 2-D array with one row per row of X")
        if self.task not in _TASKS:
            raise ValueError(f"Dataset {self.name!r}: task must be one of {', '.join(_TASKS)}, got {self.task!r}")
        if len(self.feature_names) != X.shape[1]:
            raise ValueError(f"Dataset {self.name!r}: {X.shape[1]} columns but {len(self.feature_names)} names")
        if self.task == "classification":
            if y.ndim != 1 or y.dtype.kind not in "iu":
                raise ValueError(f"Dataset {self.name!r}: class labels must be a 1-D integer array")
            if self.target_names is None or (y.size and (y.min() < 0 or y.max() >= len(self.target_names))):
                raise ValueError(f"Dataset {self.name!r}: every label must index target_names")
        elif y.ndim != 2 or y.dtype != np.float64:
            raise ValueError(f"Dataset {self.name!r}: {self.task} targets must be a 2-D float64 array")

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield ``X`` then ``y``, so that ``X, y = dataset`` works."""
        yield self.X
        yield self.y

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, X={self.X.shape} {self.X.dtype}, "
            f"y={self.y.shape} {self.y.dtype})"
        )

    @property
    def n_samples(self) -> int:
        """The number of examples (rows of ``X``)."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """The number of inputs (columns of ``X``)."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        """The number of classes of a classification dataset, else None."""
        return len(self.target_names) if self.task == "classification" and self.target_names else None


@dataclass(frozen=True)
class DatasetInfo:
    """One line of the catalogue: a dataset's name, what it is, its task, the shape of its default ``X``.

    ``parameters`` lists the keyword arguments that :func:`load` accepts for it.

    >>> info = available()[2]
    >>> info.name, info.task, info.shape
    ('xor', 'classification', (4, 2))
    """

    name: str
    description: str
    task: Task
    shape: tuple[int, int]
    parameters: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------------------------
# argument checks


def _int_arg(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        expected = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {expected}, got {v}")
    return v


def _float_arg(name: str, value: Any, low: float = 0.0, high: float | None = None) -> float:
    """A finite real number in [low, high) (high excluded), or >= low when high is None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < low or (high is not None and v >= high):
        expected = f"in [{low:g}, {high:g})" if high is not None else f">= {low:g} and finite"
        raise ValueError(f"{name} must be a number {expected}, got {value!r}")
    return v


def _xy_names(d: int) -> list[str]:
    return [f"x{j + 1}" for j in range(d)]


def _all_patterns(n_bits: int) -> np.ndarray:
    """Every n-bit pattern as a row of 0/1 integers, row k holding k in binary, most significant bit first."""
    k = np.arange(2**n_bits, dtype=np.int64)[:, None]
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.int64)[None, :]
    return (k >> shifts) & 1


def _shuffled(rng: np.random.Generator, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(X))
    return X[order], y[order]


def _two_classes_with_noise(
    X: np.ndarray, n_first: int, seed: int | None, shuffle: bool, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Label the first ``n_first`` rows 0 and the rest 1, shuffle (unless told not to), then add Gaussian noise."""
    y = np.hstack([np.zeros(n_first, dtype=np.int64), np.ones(len(X) - n_first, dtype=np.int64)])
    rng = np.random.default_rng(seed)
    if shuffle:
        X, y = _shuffled(rng, X, y)
    if noise > 0:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X, y


# --------------------------------------------------------------------------------------------------------------
# the classic back-propagation problems


def worked_example() -> Dataset:
    """The single example of the step-by-step 2-2-2 worked example: inputs 0.05, 0.10 and targets 0.01, 0.99.

    The targets are real numbers for two sigmoid outputs trained on squared error, so the task is
    ``"regression"``. :func:`deltaprop.examples.worked_example_network` builds the network with its published
    starting weights.

    >>> X, y = worked_example()
    >>> X.tolist(), y.tolist()
    ([[0.05, 0.1]], [[0.01, 0.99]])
    """
    return Dataset(
        name="worked_example",
        X=np.array([[0.05, 0.10]]),
        y=np.array([[0.01, 0.99]]),
        task="regression",
        description=(
            "The one training example of the step-by-step 2-2-2 back-propagation example: inputs 0.05 and 0.10, "
            "targets 0.01 and 0.99 for two sigmoid outputs trained on squared error."
        ),
        feature_names=["i1", "i2"],
    )


def one_weight() -> Dataset:
    """Three points on the line y = 2x, for the one-weight model y = W·x whose error is least at W = 2.

    With the squared error summed over the points, the error is 5 (W - 2)**2: a parabola whose slope says which
    way to move W.

    >>> X, y = one_weight()
    >>> X.ravel().tolist(), y.ravel().tolist()
    ([0.0, 1.0, 2.0], [0.0, 2.0, 4.0])
    """
    x = np.array([[0.0], [1.0], [2.0]])
    return Dataset(
        name="one_weight",
        X=x,
        y=2.0 * x,
        task="regression",
        description=(
            "Inputs 0, 1, 2 with desired outputs 0, 2, 4: the one-weight model y = W*x fits them exactly at W = 2, "
            "where the squared error is least."
        ),
        feature_names=["x"],
    )


def xor() -> Dataset:
    """The four points of exclusive or, labelled 1 where exactly one input is on.

    No single-layer perceptron can separate them; one hidden layer of two units can (Minsky and Papert 1969;
    Rumelhart, Hinton and Williams 1986).

    >>> X, y = xor()
    >>> X.shape, y.tolist()
    ((4, 2), [0, 1, 1, 0])
    """
    X = _all_patterns(2)
    return Dataset(
        name="xor",
        X=X.astype(np.float64),
        y=(X[:, 0] ^ X[:, 1]).astype(np.int64),
        task="classification",
        description="Exclusive or: the four 2-bit patterns, class 1 where exactly one input is on.",
        feature_names=["x1", "x2"],
        target_names=["0", "1"],
    )


def parity(n_bits: int = 3) -> Dataset:
    """Every ``n_bits``-bit pattern, labelled 1 where an odd number of bits are on.

    Row ``k`` is ``k`` written in binary, most significant bit first. Flipping any one bit flips the label,
    which makes parity a hard problem for back-propagation (Rumelhart, Hinton and Williams 1986 solve it with
    ``n_bits`` hidden units). ``n_bits`` must be in [1, 20].

    >>> X, y = parity(3)
    >>> X.shape, y.tolist()
    ((8, 3), [0, 1, 1, 0, 1, 0, 0, 1])
    """
    n_bits = _int_arg("n_bits", n_bits, 1, _MAX_BITS)
    bits = _all_patterns(n_bits)
    return Dataset(
        name="parity",
        X=bits.astype(np.float64),
        y=(bits.sum(axis=1) % 2).astype(np.int64),
        task="classification",
        description=(
            f"{n_bits}-bit parity: all {2**n_bits} patterns of {n_bits} bits, class 1 (odd) where an odd number "
            "of bits are on (Rumelhart, Hinton and Williams 1986)."
        ),
        feature_names=[f"bit_{j}" for j in range(n_bits)],
        target_names=["even", "odd"],
    )


def encoder(n: int = 8) -> Dataset:
    """The n-log2(n)-n encoder problem: reproduce each of ``n`` one-hot patterns through a narrow hidden layer.

    ``X`` and ``y`` are both the ``n`` x ``n`` identity; with 8 inputs and 3 hidden units the network has to
    invent a binary-like code (Ackley, Hinton and Sejnowski 1985; Rumelhart, Hinton and Williams 1986).
    ``n`` must be in [2, 1024].

    >>> X, y = encoder(4)
    >>> X.shape, bool((X == y).all()), encoder().task
    ((4, 4), True, 'autoencoder')
    """
    n = _int_arg("n", n, 2, _MAX_ENCODER)
    return Dataset(
        name="encoder",
        X=np.eye(n),
        y=np.eye(n),
        task="autoencoder",
        description=(
            f"The {n}-unit encoder problem: the {n} one-hot patterns, each to be reproduced at the output through "
            "a narrow hidden layer (8-3-8 in Rumelhart, Hinton and Williams 1986)."
        ),
        feature_names=[f"x{j + 1}" for j in range(n)],
    )


def mirror_symmetry(n_bits: int = 6) -> Dataset:
    """Every ``n_bits``-bit pattern, labelled 1 where the pattern reads the same backwards.

    Rumelhart, Hinton and Williams (1986, Nature 323, 533-536) trained a 6-2-1 network on these 64 patterns,
    8 of them symmetric; its two hidden units learned weights that are equal and opposite about the centre.
    Row ``k`` is ``k`` in binary, most significant bit first. ``n_bits`` must be in [2, 20].

    >>> X, y = mirror_symmetry()
    >>> X.shape, int(y.sum())
    ((64, 6), 8)
    """
    n_bits = _int_arg("n_bits", n_bits, 2, _MAX_BITS)
    bits = _all_patterns(n_bits)
    symmetric = (bits == bits[:, ::-1]).all(axis=1)
    return Dataset(
        name="mirror_symmetry",
        X=bits.astype(np.float64),
        y=symmetric.astype(np.int64),
        task="classification",
        description=(
            f"Mirror symmetry: all {2**n_bits} patterns of {n_bits} bits, class 1 where the pattern is its own "
            "mirror image about the centre (Rumelhart, Hinton and Williams 1986)."
        ),
        feature_names=[f"bit_{j}" for j in range(n_bits)],
        target_names=["asymmetric", "symmetric"],
    )


def two_spirals(n_samples: int = 200, noise: float = 0.0, seed: int | None = None) -> Dataset:
    """Lang and Witbrock's two interlocking spirals, three turns each, one spiral a class.

    The points follow Wieland's generator of the 1988 benchmark: point ``i`` of the first spiral (class 1) lies
    at angle ``i*pi/16`` and radius ``6.5*(104 - i)/104`` as ``(r sin a, r cos a)``, for ``i`` from 0 to 96; the
    second spiral (class 0) is its mirror image through the origin. For other sizes ``i`` runs evenly over
    [0, 96], so ``two_spirals(194)`` is exactly the original 194 points. The rows alternate between the spirals
    (for an odd ``n_samples`` class 1 has one point more). ``noise`` is the standard deviation of Gaussian
    noise added to each coordinate. Lang, K. J. and Witbrock, M. J. (1988), "Learning to tell two spirals
    apart", Proceedings of the 1988 Connectionist Models Summer School.

    >>> X, y = two_spirals(194)
    >>> X.shape, int(y.sum()), X[0].tolist()
    ((194, 2), 97, [0.0, 6.5])
    """
    n_samples = _int_arg("n_samples", n_samples, 2)
    noise = _float_arg("noise", noise)
    per_spiral = (n_samples + 1) // 2
    i = np.linspace(0.0, 96.0, per_spiral)  # with 97 points per spiral, exactly 0, 1, ..., 96
    angle = i * np.pi / 16.0
    radius = 6.5 * (104.0 - i) / 104.0
    first = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    X = np.empty((2 * per_spiral, 2))
    X[0::2] = first
    X[1::2] = -first
    y = np.tile(np.array([1, 0], dtype=np.int64), per_spiral)
    X, y = X[:n_samples], y[:n_samples]
    if noise > 0:
        X = X + np.random.default_rng(seed).normal(scale=noise, size=X.shape)
    return Dataset(
        name="two_spirals",
        X=X,
        y=y,
        task="classification",
        description=(
            f"Two spirals: {n_samples} points on two interlocking three-turn spirals, one class each "
            f"(Lang and Witbrock 1988), Gaussian noise sd {noise:g}."
        ),
        feature_names=_xy_names(2),
        target_names=["0", "1"],
    )


# --------------------------------------------------------------------------------------------------------------
# the scikit-learn style generators


def moons(n_samples: int = 200, noise: float = 0.1, seed: int | None = None, *, shuffle: bool = True) -> Dataset:
    """Two interleaving half circles, the geometry of scikit-learn's ``make_moons``.

    Class 0 (``n_samples // 2`` points) lies evenly on the upper unit half circle, class 1 (the rest) on the
    lower half circle centred at (1, 0.5); then the rows are shuffled (unless ``shuffle=False``) and Gaussian
    noise of standard deviation ``noise`` is added to every coordinate.

    >>> X, y = moons(n_samples=6, noise=0.0, shuffle=False)
    >>> X[:3].round(3).tolist(), y.tolist()
    ([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], [0, 0, 0, 1, 1, 1])
    """
    n_samples = _int_arg("n_samples", n_samples, 2)
    noise = _float_arg("noise", noise)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    X = np.vstack(
        [
            np.append(np.cos(t_out), 1.0 - np.cos(t_in)),
            np.append(np.sin(t_out), 1.0 - np.sin(t_in) - 0.5),
        ]
    ).T
    X, y = _two_classes_with_noise(X, n_out, seed, shuffle, noise)
    return Dataset(
        name="moons",
        X=X,
        y=y,
        task="classification",
        description=f"Two moons: {n_samples} points on two interleaving half circles, Gaussian noise sd {noise:g}.",
        feature_names=_xy_names(2),
        target_names=["0", "1"],
    )


def circles(
    n_samples: int = 200,
    noise: float = 0.05,
    factor: float = 0.5,
    seed: int | None = None,
    *,
    shuffle: bool = True,
) -> Dataset:
    """A circle inside a larger one, the geometry of scikit-learn's ``make_circles``.

    Class 0 (``n_samples // 2`` points) lies evenly on the unit circle, class 1 (the rest) on the circle of
    radius ``factor``, in [0, 1); then the rows are shuffled (unless ``shuffle=False``) and Gaussian noise of
    standard deviation ``noise`` is added to every coordinate.

    >>> X, y = circles(n_samples=8, noise=0.0, factor=0.5)
    >>> sorted(set(np.hypot(X[:, 0], X[:, 1]).round(6).tolist())), int(y.sum())
    ([0.5, 1.0], 4)
    """
    n_samples = _int_arg("n_samples", n_samples, 2)
    noise = _float_arg("noise", noise)
    factor = _float_arg("factor", factor, 0.0, 1.0)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    # endpoint=False, so that the first point of a circle is not also its last
    t_out = np.linspace(0.0, 2.0 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2.0 * np.pi, n_in, endpoint=False)
    X = np.vstack(
        [
            np.append(np.cos(t_out), np.cos(t_in) * factor),
            np.append(np.sin(t_out), np.sin(t_in) * factor),
        ]
    ).T
    X, y = _two_classes_with_noise(X, n_out, seed, shuffle, noise)
    return Dataset(
        name="circles",
        X=X,
        y=y,
        task="classification",
        description=(
            f"Two circles: {n_samples} points, class 1 on a circle of radius {factor:g} inside the unit circle, "
            f"Gaussian noise sd {noise:g}."
        ),
        feature_names=_xy_names(2),
        target_names=["0", "1"],
    )


def blobs(
    n_samples: int = 300,
    centers: int | npt.ArrayLike = 3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    seed: int | None = None,
    *,
    shuffle: bool = True,
) -> Dataset:
    """Isotropic Gaussian clusters, one class each, the geometry of scikit-learn's ``make_blobs``.

    ``centers`` is a number of clusters, whose centres are drawn uniformly from the box [-10, 10] in each of the
    ``n_features`` dimensions, or an array of shape ``(k, n_features)`` of given centres (``n_features`` is
    then taken from it). The samples are shared out evenly, the first ``n_samples % k`` clusters getting one
    more, and each cluster is Gaussian with standard deviation ``cluster_std`` about its centre; then the rows
    are shuffled unless ``shuffle=False``. ``n_samples`` must be at least the number of clusters.

    >>> X, y = blobs(n_samples=7, centers=[[0.0, 0.0], [5.0, 5.0]], cluster_std=0.0, shuffle=False)
    >>> X[[0, -1]].tolist(), y.tolist()
    ([[0.0, 0.0], [5.0, 5.0]], [0, 0, 0, 0, 1, 1, 1])
    """
    n_samples = _int_arg("n_samples", n_samples, 1)
    cluster_std = _float_arg("cluster_std", cluster_std)
    rng = np.random.default_rng(seed)
    if isinstance(centers, numbers.Integral) and not isinstance(centers, bool):
        n_centers = _int_arg("centers", centers, 1)
        n_features = _int_arg("n_features", n_features, 1)
        centre_points = rng.uniform(-10.0, 10.0, size=(n_centers, n_features))
    else:
        try:
            centre_points = np.array(centers, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"centers must be an integer or an array of centres, got {centers!r}") from None
        if centre_points.ndim != 2 or centre_points.shape[0] < 1 or centre_points.shape[1] < 1:
            raise ValueError(f"centers must be an integer >= 1 or a 2-D array (k, n_features), got {centers!r}")
        if not np.isfinite(centre_points).all():
            raise ValueError("centers must be finite")
        n_centers, n_features = centre_points.shape
    if n_samples < n_centers:
        raise ValueError(f"n_samples must be an integer >= the number of centers ({n_centers}), got {n_samples}")
    counts = np.full(n_centers, n_samples // n_centers)
    counts[: n_samples % n_centers] += 1
    X = np.vstack(
        [
            rng.normal(loc=centre, scale=cluster_std, size=(int(c), n_features))
            for centre, c in zip(centre_points, counts)
        ]
    )
    y = np.repeat(np.arange(n_centers, dtype=np.int64), counts)
    if shuffle:
        X, y = _shuffled(rng, X, y)
    return Dataset(
        name="blobs",
        X=X,
        y=y,
        task="classification",
        description=(
            f"Gaussian blobs: {n_samples} points in {n_features} dimensions around {n_centers} centres, "
            f"one class each, standard deviation {cluster_std:g}."
        ),
        feature_names=_xy_names(n_features),
        target_names=[str(k) for k in range(n_centers)],
    )


# --------------------------------------------------------------------------------------------------------------
# the handwritten digits, shipped with the package

_DIGITS_CITATION = (
    "Alpaydin, E. and Kaynak, C. (1998). Optical Recognition of Handwritten Digits [Dataset]. "
    "UCI Machine Learning Repository. https://doi.org/10.24432/C50P49. Licensed under CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/)."
)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The shipped uint8 pixels and labels, read once and kept read-only."""
    resource = importlib.resources.files(__package__ or "deltaprop") / "data" / "digits.npz"
    try:
        with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            X, y = npz["X"], npz["y"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the digits data file is missing from this installation of deltaprop ({resource}); reinstall the package"
        ) from None
    if X.shape != (1797, 64) or y.shape != (1797,) or X.dtype != np.uint8 or y.dtype != np.uint8:
        raise ValueError(f"the digits data file {resource} is damaged: reinstall the package")
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def digits() -> Dataset:
    """The 1,797 8x8 handwritten digits of the UCI test set: 64 pixel counts from 0 to 16, labels 0 to 9.

    Each 32x32 bitmap was divided into 4x4 blocks and the on-pixels of each block counted; the 64 counts are
    the row of ``X`` in reading order (``pixel_r_c`` is row ``r``, column ``c``). This is the test set of the
    UCI "Optical Recognition of Handwritten Digits" data, written by 13 people, the same data scikit-learn's
    ``load_digits`` returns; it ships inside deltaprop, so nothing is downloaded. Scale it (``X / 16``) before
    training. Source: Alpaydin, E. and Kaynak, C. (1998), Optical Recognition of Handwritten Digits, UCI Machine
    Learning Repository, https://doi.org/10.24432/C50P49, licensed under CC BY 4.0.

    >>> X, y = digits()
    >>> X.shape, int(X.max()), sorted(set(y.tolist())) == list(range(10))
    ((1797, 64), 16, True)
    """
    X, y = _digits_arrays()
    return Dataset(
        name="digits",
        X=X.astype(np.float64),
        y=y.astype(np.int64),
        task="classification",
        description=(
            "Handwritten digits: 1,797 8x8 images, 64 pixel counts from 0 to 16, 10 classes (the test set of the "
            "UCI Optical Recognition of Handwritten Digits data). " + _DIGITS_CITATION
        ),
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        target_names=[str(k) for k in range(10)],
    )


# --------------------------------------------------------------------------------------------------------------
# the catalogue


@dataclass(frozen=True)
class _Entry:
    function: Callable[..., Dataset]
    summary: str
    task: Task
    shape: tuple[int, int]


_REGISTRY: dict[str, _Entry] = {
    "worked_example": _Entry(
        worked_example, "the 2-2-2 worked example: inputs 0.05, 0.10, targets 0.01, 0.99", "regression", (1, 2)
    ),
    "one_weight": _Entry(one_weight, "inputs 0, 1, 2 and outputs 0, 2, 4 for the model y = W*x", "regression", (3, 1)),
    "xor": _Entry(xor, "exclusive or: the four 2-bit patterns", "classification", (4, 2)),
    "parity": _Entry(
        parity, "all n-bit patterns, class 1 where an odd number of bits are on", "classification", (8, 3)
    ),
    "encoder": _Entry(encoder, "the 8-3-8 encoder: reproduce 8 one-hot patterns", "autoencoder", (8, 8)),
    "mirror_symmetry": _Entry(
        mirror_symmetry,
        "all 6-bit patterns, class 1 where the pattern is its own mirror image",
        "classification",
        (64, 6),
    ),
    "two_spirals": _Entry(two_spirals, "Lang and Witbrock's two interlocking spirals", "classification", (200, 2)),
    "moons": _Entry(moons, "two interleaving half circles with Gaussian noise", "classification", (200, 2)),
    "circles": _Entry(circles, "a small circle inside a large one, with Gaussian noise", "classification", (200, 2)),
    "blobs": _Entry(blobs, "isotropic Gaussian clusters, one class each", "classification", (300, 2)),
    "digits": _Entry(
        digits, "1,797 8x8 handwritten digits, pixels 0..16, 10 classes (UCI, CC BY 4.0)", "classification", (1797, 64)
    ),
}


def _parameters(function: Callable[..., Dataset]) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def _entry(name: str) -> tuple[str, _Entry]:
    if not isinstance(name, str):
        raise TypeError(f"a dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; known datasets: {', '.join(_REGISTRY)}")
    return key, _REGISTRY[key]


def available() -> list[DatasetInfo]:
    """Every dataset :func:`load` knows: its name, a one-line description, its task and default shape.

    >>> for info in available()[:2]:
    ...     print(info.name, info.task, info.shape)
    worked_example regression (1, 2)
    one_weight regression (3, 1)
    """
    return [
        DatasetInfo(name, entry.summary, entry.task, entry.shape, _parameters(entry.function))
        for name, entry in _REGISTRY.items()
    ]


def load(name: str, **kwargs: Any) -> Dataset:
    """Build a dataset by name, passing ``kwargs`` on to its function.

    Names are those of :func:`available` (``-`` may stand for ``_``, case is ignored). An unknown name, or an
    argument the dataset does not take, raises ValueError listing what is known.

    >>> X, y = load("parity", n_bits=4)
    >>> X.shape, int(y.sum())
    ((16, 4), 8)
    """
    key, entry = _entry(name)
    accepted = _parameters(entry.function)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        takes = f"takes {', '.join(accepted)}" if accepted else "takes no arguments"
        raise ValueError(f"dataset {key!r} {takes}; got unknown argument(s) {', '.join(unknown)}")
    return entry.function(**kwargs)


# --------------------------------------------------------------------------------------------------------------
# export


def _csv_number(value: float | int) -> str:
    text = repr(value)  # the shortest text that reads back as the same float
    return text[:-2] if text.endswith(".0") else text


def _csv_bytes(ds: Dataset) -> bytes:
    y2 = ds.y.reshape(len(ds.y), -1)
    target_columns = ["target"] if y2.shape[1] == 1 else [f"target_{k}" for k in range(y2.shape[1])]
    lines = [",".join(ds.feature_names + target_columns)]
    for x_row, y_row in zip(ds.X.tolist(), y2.tolist()):
        lines.append(",".join(_csv_number(v) for v in x_row + y_row))
    return ("\n".join(lines) + "\n").encode("utf-8")


def export(name: str | Dataset, path: str | os.PathLike[str], *, overwrite: bool = False, **kwargs: Any) -> Path:
    """Write a dataset to a ``.csv`` or ``.npz`` file and return the path written.

    ``name`` is a dataset name for :func:`load` (``kwargs`` go to it) or a :class:`Dataset`. A ``.csv`` file has
    a header row, the feature names then ``target`` (``target_0``, ``target_1``, ... for several target
    columns), and one row per example, every number in the shortest form that reads back exactly. A ``.npz``
    file holds the arrays ``X`` and ``y`` (read it with ``np.load(path)``). An existing file is kept unless
    ``overwrite=True``; the file is written to a temporary file in the same folder and then moved into place,
    so a reader never sees half a file.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = export("xor", pathlib.Path(d) / "xor.csv")
    ...     print(out.read_text().splitlines()[:2])
    ['x1,x2,target', '0,0,0']
    """
    dest = Path(path)
    suffix = dest.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"cannot export to {dest.name!r}: supported formats are {', '.join(EXPORT_FORMATS)}")
    if not overwrite and dest.exists():
        raise FileExistsError(f"{dest} already exists; pass overwrite=True to replace it")
    if isinstance(name, Dataset):
        if kwargs:
            raise ValueError(f"arguments {', '.join(sorted(kwargs))} apply only when a dataset is given by name")
        ds = name
    else:
        ds = load(name, **kwargs)

    def write(fh: IO[bytes]) -> None:
        if suffix == ".csv":
            fh.write(_csv_bytes(ds))
        else:
            np.savez_compressed(fh, X=ds.X, y=ds.y)

    from .safefile import atomic_write

    atomic_write(dest, write, overwrite=overwrite)  # a reader never sees half a file
    return dest
