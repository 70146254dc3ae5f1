"""Data files for the command line: read CSV, TSV, Parquet, NPY and NPZ, and the preprocessing a model keeps.

A data file becomes a :class:`Table`: named columns, each a NumPy array, numbers as numbers (int64, float64, bool)
and text as Python strings (missing cells are NaN or None). CSV, TSV and Parquet are read with pyarrow (extra
``[data]``), CSV and TSV also with pandas when pyarrow is missing; ``.npy`` and ``.npz`` files with NumPy alone:

* ``.npy``: a 2-D array, its columns named ``"0"``, ``"1"``, …; by default the last column is the target;
* ``.npz``: arrays ``X`` (columns ``"0"``, ``"1"``, …) and ``y`` (column ``"y"``; ``"y0"``, ``"y1"``, … when 2-D).

A :class:`Preprocessor` turns the feature columns into the network's inputs: each numeric column is standardised
with the mean and standard deviation of the training data, each text column is one-hot encoded over the categories
seen in training (a category never seen becomes an all-zero one-hot group). Regression targets are standardised
too, and predictions mapped back. :meth:`Preprocessor.to_model` stores all of it in the model
(``net.metadata["preprocessing"]`` and ``net.extra_arrays``), so a saved model takes raw data again.

>>> import numpy as np
>>> t = Table({"x": np.array([1.0, 2.0, 3.0]), "colour": np.array(["red", "blue", "red"], dtype=object)})
>>> pre = Preprocessor.fit(t, ["x", "colour"], ["colour"], "classification")
>>> pre.input_names
['x', 'colour=blue', 'colour=red']
>>> pre.transform(t).round(3).tolist()[0]
[-1.225, 0.0, 1.0]
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import MissingExtraError, require

if TYPE_CHECKING:
    from .network import Network

__all__ = [
    "DataFileError",
    "Table",
    "Feature",
    "Preprocessor",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "data_format",
    "read_table",
    "resolve_targets",
    "infer_task",
    "target_values",
    "predict_table",
    "evaluate_table",
    "format_csv",
    "write_table",
    "atomic_write",
    "category_text",
    "class_index",
    "raw_input_network",
    "MAX_CATEGORIES",
    "CLASSIFICATION_MAX_CLASSES",
    "STREAM_AUTO_BYTES",
    "STREAM_CHUNK_ROWS",
    "StreamScan",
    "iter_chunks",
    "scan_stream",
]

#: file suffixes :func:`read_table` understands, and the format of each (``.gz``/``.bz2`` may follow csv/tsv)
READ_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}
#: file suffixes :func:`write_table` can write
WRITE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSED = (".gz", ".bz2")
#: a text column with more distinct values than this is refused as a feature (it is likely an identifier)
MAX_CATEGORIES = 1000
#: an integer target with at most this many distinct values is read as class labels (unless a task is given)
CLASSIFICATION_MAX_CLASSES = 20
_METADATA_KEY = "preprocessing"
_METADATA_VERSION = 1


class DataFileError(ValueError):
    """A data file cannot be read or used: unknown format, damaged content, missing or mismatched columns."""


# ------------------------------------------------------------------------------------------------------ tables
@dataclass
class Table:
    """Named columns of equal length, in file order.

    Numeric columns are int64/float64/bool arrays (a missing number is NaN); text columns are object arrays of
    ``str`` (a missing cell is None). ``unsupported`` names columns of a type deltaprop cannot use (dates, lists…):
    they may be present, but not used as a feature or target.
    """

    columns: dict[str, np.ndarray]
    source: str = "<data>"
    format: str = "memory"
    unsupported: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {len(c) for c in self.columns.values()}
        if len(lengths) > 1:
            raise DataFileError(f"{self.source}: columns have different lengths {sorted(lengths)}")

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __repr__(self) -> str:
        return f"Table({self.source!r}, {self.n_rows} rows, columns={_name_list(self.names, 8)})"


def _is_numeric(col: np.ndarray) -> bool:
    return col.dtype.kind in "iufb"


def _name_list(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) if n == "" or n.strip() != n else n for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def data_format(path: str | os.PathLike[str]) -> str:
    """The format of a data file from its suffix: csv, tsv, parquet, npy or npz (DataFileError otherwise)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
        if suffixes and READ_FORMATS.get(suffixes[-1]) in ("csv", "tsv"):
            return READ_FORMATS[suffixes[-1]]
    elif suffixes and suffixes[-1] in READ_FORMATS:
        return READ_FORMATS[suffixes[-1]]
    known = ", ".join(READ_FORMATS) + " (csv/tsv also compressed .gz, .bz2)"
    raise DataFileError(f"cannot tell the format of {p}: its name must end in one of {known}")


def read_table(path: str | os.PathLike[str], *, engine: str | None = None) -> Table:
    """Read a CSV, TSV, Parquet, NPY or NPZ file (the format follows the suffix) into a :class:`Table`.

    ``engine`` chooses the CSV/TSV reader: ``"pyarrow"`` (the default when installed) or ``"pandas"``.
    Raises FileNotFoundError for a missing file, :class:`DataFileError` for anything unreadable or empty, and
    :class:`~deltaprop.backend.MissingExtraError` naming ``deltaprop[data]`` when no reader is installed.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise DataFileError(f"{p} is a folder, not a data file")
    fmt = data_format(p)
    if engine not in (None, "pyarrow", "pandas"):
        raise ValueError(f"engine must be 'pyarrow' or 'pandas', got {engine!r}")
    if fmt == "npy":
        table = _read_npy(p)
    elif fmt == "npz":
        table = _read_npz(p)
    elif fmt == "parquet":
        if engine == "pandas":
            table = _read_pandas(p, fmt)
        else:
            require("pyarrow", "data", "Reading Parquet files")
            table = _read_arrow(p, fmt)
    else:
        if engine is None:
            try:
                require("pyarrow", "data", f"Reading {fmt.upper()} files")
                engine = "pyarrow"
            except MissingExtraError:
                try:
                    require("pandas", "data", f"Reading {fmt.upper()} files")
                except MissingExtraError:
                    raise MissingExtraError(
                        f"Reading {fmt.upper()} files needs pyarrow (or pandas), which is not installed; "
                        'install it with: pip install "deltaprop[data]"'
                    ) from None
                engine = "pandas"
        table = _read_arrow(p, fmt) if engine == "pyarrow" else _read_pandas(p, fmt)
    if not table.columns:
        raise DataFileError(f"{p} has no columns")
    if table.n_rows == 0:
        raise DataFileError(f"{p} has no data rows (only a header, or nothing)")
    return table


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _check_unique(names: Sequence[str], p: Path) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataFileError(f"{p}: the column name {name!r} appears more than once; column names must be unique")
        seen.add(name)


def _read_arrow(p: Path, fmt: str) -> Table:
    pa = require("pyarrow", "data", f"Reading {fmt.upper()} files")
    try:
        if fmt == "parquet":
            pq = require("pyarrow.parquet", "data", "Reading Parquet files")
            tbl = pq.read_table(str(p))
        else:
            pacsv = require("pyarrow.csv", "data", f"Reading {fmt.upper()} files")
            tbl = pacsv.read_csv(
                str(p),
                parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            )
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataFileError(f"cannot read {p} as {fmt.upper()}: {_first_line(exc)}") from None
    names = [str(n) for n in tbl.column_names]
    _check_unique(names, p)
    return _table_from_arrow(pa, names, tbl.columns, str(p), fmt)


def _table_from_arrow(pa: Any, names: list[str], arrow_columns: Any, path: str, fmt: str) -> Table:
    """A Table of the named Arrow columns (NumPy arrays; columns of unsupported types noted, not dropped)."""
    columns: dict[str, np.ndarray] = {}
    unsupported: dict[str, str] = {}
    for name, col in zip(names, arrow_columns):
        arr, problem = _from_arrow(pa, col)
        columns[name] = arr
        if problem:
            unsupported[name] = problem
    return Table(columns, path, fmt, unsupported)


def _from_arrow(pa: Any, col: Any) -> tuple[np.ndarray, str | None]:
    """One pyarrow column as a NumPy array (numbers) or object array of str/None (text); a problem for others."""
    import pyarrow.types as pat

    t = col.type
    if pat.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    n = len(col)
    if pat.is_null(t):
        return np.full(n, np.nan), None
    if pat.is_boolean(t):
        if col.null_count == 0:
            return np.array(col.to_pylist(), dtype=bool), None
        return np.array([np.nan if v is None else float(v) for v in col.to_pylist()]), None
    if pat.is_integer(t):
        if col.null_count == 0:
            return np.asarray(col.to_numpy()).astype(np.int64 if pat.is_signed_integer(t) else np.uint64), None
        return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), None
    if pat.is_floating(t) or pat.is_decimal(t):
        return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), None
    if pat.is_string(t) or pat.is_large_string(t):
        return np.array(col.to_pylist(), dtype=object), None
    # dates, times, binary, lists, structs: kept as text for reference, refused as a feature or target
    return np.array([None if v is None else str(v) for v in col.to_pylist()], dtype=object), str(t)


def _read_pandas(p: Path, fmt: str) -> Table:
    pd = require("pandas", "data", f"Reading {fmt.upper()} files")
    try:
        if fmt == "parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, sep="\t" if fmt == "tsv" else ",")
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{p} has no data rows (only a header, or nothing)") from None
    except (pd.errors.ParserError, OSError, UnicodeDecodeError, ValueError, ImportError) as exc:
        raise DataFileError(f"cannot read {p} as {fmt.upper()}: {_first_line(exc)}") from None
    names = [str(n) for n in df.columns]
    _check_unique(names, p)
    columns: dict[str, np.ndarray] = {}
    unsupported: dict[str, str] = {}
    api = pd.api.types
    for name, key in zip(names, df.columns):
        s = df[key]
        if api.is_bool_dtype(s.dtype) and not s.isna().any():
            columns[name] = s.to_numpy(dtype=bool)
        elif api.is_integer_dtype(s.dtype) and not s.isna().any():
            columns[name] = s.to_numpy(dtype=np.int64)
        elif api.is_numeric_dtype(s.dtype) or api.is_bool_dtype(s.dtype):
            columns[name] = s.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        elif api.is_string_dtype(s.dtype) or api.is_object_dtype(s.dtype):
            values = [None if _is_missing(v) else str(v) for v in s.tolist()]
            columns[name] = np.array(values, dtype=object)
        else:
            columns[name] = np.array([None if _is_missing(v) else str(v) for v in s.tolist()], dtype=object)
            unsupported[name] = str(s.dtype)
    return Table(columns, str(p), fmt, unsupported)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN, pandas.NA raise or compare unequal
    except TypeError:
        return True


def _numpy_column(arr: np.ndarray, what: str, p: Path) -> np.ndarray:
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64 if arr.dtype.kind == "i" else np.uint64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    if arr.dtype.kind == "b":
        return arr.astype(bool)
    if arr.dtype.kind in "US":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in arr.tolist()], dtype=object)
    raise DataFileError(f"{p}: {what} has dtype {arr.dtype}; deltaprop reads numbers, booleans and text")


def _read_npy(p: Path) -> Table:
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"cannot read {p} as a NumPy .npy file: {_first_line(exc)}") from None
    if not isinstance(arr, np.ndarray):
        raise DataFileError(f"{p} is not a single NumPy array (an .npz archive? name it .npz)")
    if arr.dtype.names:  # a structured array: one column per field
        if arr.ndim != 1:
            raise DataFileError(f"{p}: a structured array must be 1-D, got shape {arr.shape}")
        cols = {str(n): _numpy_column(arr[n], f"field {n!r}", p) for n in arr.dtype.names}
        return Table(cols, str(p), "npy")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataFileError(f"{p}: expected a 2-D array (rows = examples, columns = features), got shape {arr.shape}")
    cols = {str(j): _numpy_column(arr[:, j], "the array", p) for j in range(arr.shape[1])}
    return Table(cols, str(p), "npy")


def _read_npz(p: Path) -> Table:
    try:
        with np.load(p, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DataFileError(f"{p} is a single array, not an .npz archive (name it .npy)")
            arrays = {k: archive[k] for k in archive.files}
    except DataFileError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"cannot read {p} as a NumPy .npz archive: {_first_line(exc)}") from None
    if "X" not in arrays:
        raise DataFileError(f"{p} needs an array named 'X' (and 'y' for training); it holds {sorted(arrays) or 'none'}")
    X = arrays["X"]
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise DataFileError(f"{p}: X must be 2-D (rows = examples), got shape {X.shape}")
    cols = {str(j): _numpy_column(X[:, j], "X", p) for j in range(X.shape[1])}
    if "y" in arrays:
        y = arrays["y"]
        if y.shape[:1] != X.shape[:1] or y.ndim > 2:
            raise DataFileError(f"{p}: y (shape {y.shape}) must have one row per row of X ({X.shape[0]})")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 1:
            cols["y"] = _numpy_column(y, "y", p)
        else:
            for k in range(y.shape[1]):
                cols[f"y{k}"] = _numpy_column(y[:, k], "y", p)
    return Table(cols, str(p), "npz")


# ------------------------------------------------------------------------------------------------------ targets
def resolve_targets(table: Table, target: str | None) -> list[str]:
    """The target column name(s) for ``--target``: a column name, a comma-separated list, or (``.npy``) an index.

    Without ``target``: the last column of a ``.npy`` file, ``y`` of an ``.npz`` file, or a column named
    ``target`` (``target_0``, ``target_1``… as ``deltaprop datasets export`` writes them); otherwise an error
    asks for ``--target``.
    """
    names = table.names
    if target is None:
        if table.format == "npy":
            return [names[-1]]
        if table.format == "npz":
            ys = [n for n in names if n == "y" or (n[:1] == "y" and n[1:].isdigit())]
            if not ys:
                raise DataFileError(f"{table.source} has no array 'y' to train on; an .npz file needs arrays X and y")
            return ys
        if "target" in table:
            return ["target"]
        numbered = [n for n in names if n.startswith("target_") and n[7:].isdigit()]
        if numbered:
            return numbered
        raise DataFileError(
            f"name the column to predict with --target COLUMN; {table.source} has columns: {_name_list(names)}"
        )
    if target in table:
        return [target]
    resolved, missing = [], []
    for part in (s.strip() for s in target.split(",")):
        if part in table:
            resolved.append(part)
        elif table.format == "npy" and _is_int(part) and -len(names) <= int(part) < len(names):
            resolved.append(names[int(part)])
        else:
            missing.append(part)
    if missing:
        raise DataFileError(
            f"{table.source} has no column {', '.join(repr(m) for m in missing)} to use as the target; "
            f"its columns are: {_name_list(names)}"
        )
    if len(set(resolved)) != len(resolved):
        raise DataFileError(f"the target column(s) {target!r} name the same column twice")
    return resolved


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _check_usable(table: Table, name: str, role: str) -> np.ndarray:
    if name in table.unsupported:
        raise DataFileError(
            f"column {name!r} of {table.source} has type {table.unsupported[name]}, which cannot be a {role}; "
            "convert it to numbers or text first"
        )
    return table[name]


def _missing_rows(col: np.ndarray) -> np.ndarray:
    if col.dtype == object:
        return np.flatnonzero(np.array([v is None for v in col], dtype=bool))
    if col.dtype.kind == "f":
        return np.flatnonzero(np.isnan(col))
    return np.zeros(0, dtype=np.intp)


def _check_complete(col: np.ndarray, name: str, source: str, role: str, first_row: int = 0) -> None:
    rows = _missing_rows(col)
    if rows.size:
        raise DataFileError(
            f"{role} column {name!r} of {source} has {rows.size} missing value(s) (first in data row "
            f"{first_row + rows[0] + 1}); fill in or drop those rows first"
        )
    if col.dtype.kind == "f" and not np.all(np.isfinite(col)):
        row = int(np.flatnonzero(~np.isfinite(col))[0])
        raise DataFileError(
            f"{role} column {name!r} of {source} has an infinite value (data row {first_row + row + 1})"
        )


def infer_task(columns: Sequence[np.ndarray]) -> str:
    """``classification`` for a text or boolean target, or whole numbers with few distinct values (two, or at
    most 20 that each occur twice on average); otherwise ``regression``. Several target columns are regression.

    >>> infer_task([np.array([1, 2, 3, 1, 2, 3])]), infer_task([np.array([980, 1250, 1540])])
    ('classification', 'regression')
    """
    if len(columns) != 1:
        return "regression"
    col = columns[0]
    if col.dtype == object or col.dtype.kind == "b":
        return "classification"
    values = col[~np.isnan(col)] if col.dtype.kind == "f" else col
    if col.dtype.kind == "f" and not np.all(values == np.round(values)):
        return "regression"
    distinct = np.unique(values).size
    few = distinct <= 2 or (distinct <= CLASSIFICATION_MAX_CLASSES and 2 * distinct <= values.size)
    return "classification" if few else "regression"


def target_values(table: Table, targets: Sequence[str], task: str) -> np.ndarray:
    """The targets of ``table``: class labels (1-D; str, int or bool) or regression values (float64, (n, k)).

    Raises :class:`DataFileError` for missing values, text regression targets and a target with only one value.
    """
    cols = [_check_usable(table, t, "target") for t in targets]
    for name, col in zip(targets, cols):
        _check_complete(col, name, table.source, "target")
    if task == "classification":
        if len(cols) != 1:
            raise DataFileError(f"a classifier predicts one target column, got {len(cols)}: {', '.join(targets)}")
        col = cols[0]
        if col.dtype.kind == "f":
            if not np.all(col == np.round(col)):
                raise DataFileError(
                    f"target column {targets[0]!r} holds fractional numbers, which are not class labels; "
                    "use --task regression"
                )
            col = col.astype(np.int64)
        labels = col.astype(str) if col.dtype == object else col
        distinct = np.unique(labels)
        if distinct.size < 2:
            raise DataFileError(
                f"target column {targets[0]!r} of {table.source} has only one value ({category_text(distinct[0])!r}); "
                "a classifier needs examples of at least two classes"
            )
        return labels
    if task != "regression":
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    out = np.empty((table.n_rows, len(cols)), dtype=np.float64)
    for k, (name, col) in enumerate(zip(targets, cols)):
        if col.dtype == object:
            raise DataFileError(
                f"target column {name!r} of {table.source} holds text, which regression cannot predict; "
                "use --task classification"
            )
        out[:, k] = col.astype(np.float64)
        if np.all(out[:, k] == out[0, k]):
            raise DataFileError(
                f"target column {name!r} of {table.source} has only one value ({out[0, k]:g}); there is nothing "
                "to learn"
            )
    return out


# ------------------------------------------------------------------------------------------------ preprocessing
@dataclass
class Feature:
    """One input column: numeric (one standardised input) or categorical (a one-hot group over ``categories``)."""

    name: str
    kind: str  # "numeric" or "categorical"
    categories: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories)

    @property
    def input_names(self) -> list[str]:
        return [self.name] if self.kind == "numeric" else [f"{self.name}={c}" for c in self.categories]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            d["categories"] = list(self.categories)
        return d


def category_text(value: Any) -> str:
    """A cell as category text: numbers of a column read as numbers in another file compare by their text form."""
    if isinstance(value, str):
        return str(value)  # a plain str, also for numpy.str_
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(float(value)) and float(value) == int(value):
        return str(int(value))
    return str(value)


def _usable_std(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``std``, with 1 where a column is constant (a standard deviation negligible next to its mean)."""
    return np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)


class Preprocessor:
    """What turns raw feature columns into network inputs, and network outputs back into target units.

    Build one from training data with :meth:`fit`; keep it in a model with :meth:`to_model`; get it back with
    :meth:`from_model`. ``mean`` and ``std`` have one entry per network input (one-hot inputs: 0 and 1).
    """

    def __init__(
        self,
        features: Sequence[Feature],
        mean: np.ndarray,
        std: np.ndarray,
        targets: Sequence[str],
        task: str,
        target_mean: np.ndarray | None = None,
        target_std: np.ndarray | None = None,
        *,
        scaled: bool = True,
    ) -> None:
        self.features = list(features)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.targets = list(targets)
        self.task = task
        self.target_mean = None if target_mean is None else np.asarray(target_mean, dtype=np.float64)
        self.target_std = None if target_std is None else np.asarray(target_std, dtype=np.float64)
        self.scaled = scaled
        if self.mean.shape != (self.n_inputs,) or self.std.shape != (self.n_inputs,):
            raise ValueError(f"mean and std need {self.n_inputs} entries, got {self.mean.shape} and {self.std.shape}")

    # ---------------------------------------------------------------------------------------------- describing
    @property
    def n_inputs(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def input_names(self) -> list[str]:
        return [n for f in self.features for n in f.input_names]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{f.name}:{'cat' if f.kind == 'categorical' else 'num'}" for f in self.features[:6])
        more = ", …" if len(self.features) > 6 else ""
        return f"Preprocessor([{kinds}{more}] → {self.n_inputs} inputs, targets={self.targets}, task={self.task!r})"

    # -------------------------------------------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        table: Table,
        features: Sequence[str],
        targets: Sequence[str],
        task: str,
        *,
        scale: bool = True,
        y: np.ndarray | None = None,
    ) -> Preprocessor:
        """Learn the encoding of ``features`` from ``table``: kinds, categories, and (``scale``) means and stds.

        ``y`` (regression targets, (n, k)) also fits the target standardisation when ``scale`` is on.
        """
        if not features:
            raise DataFileError(f"{table.source} has no feature columns left besides the target")
        specs: list[Feature] = []
        for name in features:
            col = _check_usable(table, name, "feature")
            _check_complete(col, name, table.source, "feature")
            if _is_numeric(col):
                specs.append(Feature(name, "numeric"))
            else:
                categories = sorted(set(col.tolist()))
                if len(categories) > MAX_CATEGORIES:
                    raise DataFileError(
                        f"feature column {name!r} of {table.source} has {len(categories):,} distinct text values; "
                        f"one-hot encoding would add that many inputs (the limit is {MAX_CATEGORIES:,}). Leave it out "
                        "with --ignore, or convert it to numbers"
                    )
                specs.append(Feature(name, "categorical", categories))
        n_in = sum(f.width for f in specs)
        pre = cls(specs, np.zeros(n_in), np.ones(n_in), targets, task, scaled=scale)
        X = pre.encode(table)
        if scale:
            numeric = pre._numeric_mask()
            mean = X.mean(axis=0)
            std = X.std(axis=0)
            std = _usable_std(mean, std)
            pre.mean = np.where(numeric, mean, 0.0)
            pre.std = np.where(numeric, std, 1.0)
            if task == "regression" and y is not None:
                y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
                t_mean, t_std = y2.mean(axis=0), y2.std(axis=0)
                pre.target_mean = t_mean
                pre.target_std = _usable_std(t_mean, t_std)
        return pre

    @classmethod
    def passthrough(
        cls, table: Table, n_inputs: int, exclude: Sequence[str] = (), *, task: str = "regression"
    ) -> Preprocessor:
        """For a model saved without preprocessing (built in Python): use ``table``'s numeric columns as they are.

        The columns other than ``exclude`` must be exactly ``n_inputs`` numeric ones.
        """
        names = [n for n in table.names if n not in exclude]
        numeric = [n for n in names if _is_numeric(table[n]) and n not in table.unsupported]
        if len(numeric) != n_inputs or len(names) != n_inputs:
            besides = f" besides {_name_list(list(exclude))}" if exclude else ""
            raise DataFileError(
                f"this model was saved without column names (not by 'deltaprop train'), so {table.source} must hold "
                f"exactly its {n_inputs} input column(s){besides}, all numbers, in order; it has {len(names)} "
                f"({len(numeric)} numeric): {_name_list(names)}"
            )
        return cls(
            [Feature(n, "numeric") for n in numeric], np.zeros(n_inputs), np.ones(n_inputs), [], task, scaled=False
        )

    def _numeric_mask(self) -> np.ndarray:
        return np.concatenate([np.full(f.width, f.kind == "numeric") for f in self.features])

    # ------------------------------------------------------------------------------------------------ applying
    def check_columns(self, table: Table) -> None:
        """Raise :class:`DataFileError` naming every feature column that ``table`` lacks."""
        missing = [n for n in self.feature_names if n not in table]
        if missing:
            raise DataFileError(
                f"{table.source} lacks the column(s) the model was trained on: {_name_list(missing)}; "
                f"the model needs: {_name_list(self.feature_names)}"
            )

    def encode(self, table: Table) -> np.ndarray:
        """The features of ``table`` as numbers, one-hot groups filled in, before scaling: (n, n_inputs) float64."""
        self.check_columns(table)
        X = np.zeros((table.n_rows, self.n_inputs), dtype=np.float64)
        j = 0
        for f in self.features:
            col = _check_usable(table, f.name, "feature")
            _check_complete(col, f.name, table.source, "feature")
            if f.kind == "numeric":
                if not _is_numeric(col):
                    example = next(v for v in col if v is not None)
                    raise DataFileError(
                        f"column {f.name!r} of {table.source} holds text (e.g. {example!r}) but the model was trained "
                        "on numbers in it"
                    )
                X[:, j] = col.astype(np.float64)
            else:
                index = {c: k for k, c in enumerate(f.categories)}
                texts = col if col.dtype == object else [category_text(v) for v in col]
                hot = np.fromiter((index.get(v, -1) for v in texts), dtype=np.intp, count=table.n_rows)
                rows = np.flatnonzero(hot >= 0)  # an unseen category leaves its group all zero
                X[rows, j + hot[rows]] = 1.0
            j += f.width
        return X

    def transform(self, table: Table) -> np.ndarray:
        """The network's inputs for ``table``: encoded and standardised, (n, n_inputs) float64.

        Columns are found by name (others, such as the target, are ignored); a category not seen in training gives
        an all-zero one-hot group (see :meth:`unseen_categories`).
        """
        return (self.encode(table) - self.mean) / self.std

    def unseen_categories(self, table: Table) -> dict[str, list[str]]:
        """For each categorical feature, the values in ``table`` that training never saw (sorted)."""
        out: dict[str, list[str]] = {}
        for f in self.features:
            if f.kind != "categorical" or f.name not in table:
                continue
            known = set(f.categories)
            seen = {category_text(v) for v in table[f.name] if v is not None}
            new = sorted(seen - known)
            if new:
                out[f.name] = new
        return out

    def transform_values(self, values: Sequence[str]) -> np.ndarray:
        """One example given as text, one value per feature column in training order → the inputs, (1, n_inputs)."""
        if len(values) != len(self.features):
            raise ValueError(
                f"expected {len(self.features)} input value(s), one per feature column "
                f"({_name_list(self.feature_names)}), got {len(values)}"
            )
        cols: dict[str, np.ndarray] = {}
        for f, v in zip(self.features, values):
            v = v.strip()
            if f.kind == "numeric":
                try:
                    number = float(v)
                except ValueError:
                    raise ValueError(f"the value for {f.name!r} must be a number, got {v!r}") from None
                if not math.isfinite(number):
                    raise ValueError(f"the value for {f.name!r} must be finite, got {v!r}")
                cols[f.name] = np.array([number])
            else:
                cols[f.name] = np.array([v], dtype=object)
        return self.transform(Table(cols, "--input", "memory"))

    def scale_targets(self, y: np.ndarray) -> np.ndarray:
        """Regression targets (n, k) in their units → what the network is trained on."""
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if self.target_mean is None or self.target_std is None:
            return y2
        return (y2 - self.target_mean) / self.target_std

    def unscale_outputs(self, out: np.ndarray) -> np.ndarray:
        """Network outputs of a regressor → the target's units (float64, (n, k))."""
        o = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
        if self.target_mean is None or self.target_std is None:
            return o
        return o * self.target_std + self.target_mean

    # ------------------------------------------------------------------------------------------------- storing
    def to_model(self, net: Network) -> None:
        """Store this preprocessing in ``net`` (``metadata["preprocessing"]``, ``extra_arrays``) for saving."""
        if net.n_inputs != self.n_inputs:
            raise ValueError(f"the network has {net.n_inputs} inputs but the preprocessing makes {self.n_inputs}")
        net.metadata[_METADATA_KEY] = {
            "version": _METADATA_VERSION,
            "features": [f.to_dict() for f in self.features],
            "targets": list(self.targets),
            "task": self.task,
            "scaled": self.scaled,
        }
        net.extra_arrays["input_mean"] = self.mean.copy()
        net.extra_arrays["input_std"] = self.std.copy()
        if self.target_mean is not None and self.target_std is not None:
            net.extra_arrays["target_mean"] = self.target_mean.copy()
            net.extra_arrays["target_std"] = self.target_std.copy()

    @classmethod
    def from_model(cls, net: Network) -> Preprocessor | None:
        """The preprocessing stored in ``net`` by :meth:`to_model`, or None for a model saved without one."""
        spec = net.metadata.get(_METADATA_KEY)
        if spec is None:
            return None

        def bad(what: str) -> DataFileError:
            return DataFileError(f"the model's stored preprocessing is damaged: {what}")

        if not isinstance(spec, dict) or not isinstance(spec.get("features"), list):
            raise bad("no feature list")
        if spec.get("version") != _METADATA_VERSION:
            raise bad(f"unknown version {spec.get('version')!r} (a newer deltaprop wrote it?)")
        features = []
        for f in spec["features"]:
            kind = f.get("kind") if isinstance(f, dict) else None
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or kind not in ("numeric", "categorical"):
                raise bad(f"feature {f!r}")
            cats = f.get("categories", [])
            if f["kind"] == "categorical" and (not isinstance(cats, list) or not all(isinstance(c, str) for c in cats)):
                raise bad(f"categories of {f['name']!r}")
            features.append(Feature(f["name"], f["kind"], list(cats) if f["kind"] == "categorical" else []))
        arrays = net.extra_arrays
        if "input_mean" not in arrays or "input_std" not in arrays:
            raise bad("no input_mean/input_std arrays")
        task = spec.get("task")
        if task not in ("classification", "regression"):
            raise bad(f"task {task!r}")
        targets = spec.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise bad("targets")
        try:
            pre = cls(
                features,
                arrays["input_mean"],
                arrays["input_std"],
                targets,
                task,
                arrays.get("target_mean"),
                arrays.get("target_std"),
                scaled=bool(spec.get("scaled", True)),
            )
        except ValueError as exc:
            raise bad(str(exc)) from None
        if pre.n_inputs != net.n_inputs:
            raise bad(f"it makes {pre.n_inputs} inputs but the network has {net.n_inputs}")
        if not (np.all(np.isfinite(pre.mean)) and np.all(np.isfinite(pre.std)) and np.all(pre.std > 0)):
            raise bad("input_mean/input_std must be finite, with std > 0")
        return pre


# ------------------------------------------------------------------------------------------------ streaming
#: the formats :func:`iter_chunks` streams
STREAM_FORMATS = ("csv", "tsv", "parquet")
#: rows per chunk when streaming a Parquet file (a row group is read in chunks of at most this many rows)
STREAM_CHUNK_ROWS = 65_536
#: bytes of CSV/TSV text parsed per chunk when streaming
STREAM_CSV_BLOCK_BYTES = 4 << 20
#: ``deltaprop train`` streams a CSV, TSV or Parquet file larger than this on disk without being asked (1 GiB)
STREAM_AUTO_BYTES = 1 << 30
_MAX_LABELS = 10_000  # distinct target values a streaming scan keeps track of


def iter_chunks(path: str | os.PathLike[str], *, rows: int = STREAM_CHUNK_ROWS) -> Iterator[Table]:
    """Read a CSV, TSV or Parquet file piece by piece, each piece a :class:`Table` of consecutive rows.

    Parquet is read row group by row group (at most ``rows`` rows a piece), CSV/TSV with pyarrow's streaming
    reader (about :data:`STREAM_CSV_BLOCK_BYTES` of text a piece; column types are guessed from the first piece).
    Memory stays bounded by the size of a piece, whatever the size of the file.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise DataFileError(f"{p} is a folder, not a data file")
    fmt = data_format(p)
    if fmt not in STREAM_FORMATS:
        raise DataFileError(f"{p}: only CSV, TSV and Parquet files can be streamed, not {fmt.upper()}")
    pa = require("pyarrow", "data", f"Streaming {fmt.upper()} files")
    try:
        batches: Iterator[Any]
        if fmt == "parquet":
            pq = require("pyarrow.parquet", "data", "Streaming Parquet files")
            pf = pq.ParquetFile(str(p))
            names = [str(n) for n in pf.schema_arrow.names]
            batches = (
                b
                for g in range(pf.num_row_groups)
                for b in pf.iter_batches(batch_size=rows, row_groups=[g], use_threads=False)
            )
        else:
            pacsv = require("pyarrow.csv", "data", f"Streaming {fmt.upper()} files")
            reader = pacsv.open_csv(
                str(p),
                read_options=pacsv.ReadOptions(block_size=STREAM_CSV_BLOCK_BYTES, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            )
            names = [str(n) for n in reader.schema.names]
            batches = iter(reader)
        _check_unique(names, p)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            yield _table_from_arrow(pa, names, batch.columns, str(p), fmt)
    except DataFileError:
        raise
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        hint = ""
        if fmt != "parquet" and "conversion error" in str(exc).lower():
            hint = (
                " (streaming guesses each column's type from the first rows; a column that changes type further "
                "down cannot be streamed: fix the file, or convert it to Parquet)"
            )
        raise DataFileError(f"cannot read {p} as {fmt.upper()}: {_first_line(exc)}{hint}") from None


class _Moments:
    """Count, mean and sum of squared deviations of columns, merged chunk by chunk (Chan et al.) in float64."""

    def __init__(self, k: int) -> None:
        self.n = 0
        self.mean = np.zeros(k)
        self.m2 = np.zeros(k)
        self.lo = np.full(k, np.inf)
        self.hi = np.full(k, -np.inf)

    def add(self, x: np.ndarray) -> None:
        m = x.shape[0]
        if m == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.n + m
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (m / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * m / n)
        self.n = n
        self.lo = np.minimum(self.lo, x.min(axis=0))
        self.hi = np.maximum(self.hi, x.max(axis=0))

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


def _chunk_labels(col: np.ndarray) -> np.ndarray:
    """Class labels of one chunk of a target column, as :func:`target_values` makes them."""
    if col.dtype.kind == "f":
        return col.astype(np.int64)
    return col.astype(str) if col.dtype == object else col


@dataclass
class StreamScan:
    """What a first pass over a streamed file learnt: rows, columns, task, and the statistics preprocessing needs.

    Made by :func:`scan_stream`; :meth:`preprocessor` gives the same :class:`Preprocessor` that
    :meth:`Preprocessor.fit` gives on the whole file in memory, and :meth:`write_arrays` the training arrays.
    """

    path: str
    source: str
    n_rows: int
    features: list[str]
    targets: list[str]
    task: str
    sample: Table  #: the first chunk: column names and types, and a sample for figures
    kinds: dict[str, str]
    categories: dict[str, list[str]]
    numeric: _Moments
    target_moments: _Moments | None
    classes: np.ndarray | None

    def preprocessor(self, *, scale: bool = True) -> Preprocessor:
        """The preprocessing of the whole file, as :meth:`Preprocessor.fit` would make it."""
        if not self.features:
            raise DataFileError(f"{self.source} has no feature columns left besides the target")
        specs = [
            Feature(n, "numeric") if self.kinds[n] == "numeric" else Feature(n, "categorical", self.categories[n])
            for n in self.features
        ]
        n_in = sum(f.width for f in specs)
        pre = Preprocessor(specs, np.zeros(n_in), np.ones(n_in), self.targets, self.task, scaled=scale)
        if scale:
            numeric = pre._numeric_mask()
            mean, std = np.zeros(n_in), np.ones(n_in)
            mean[numeric] = self.numeric.mean
            std[numeric] = _usable_std(self.numeric.mean, self.numeric.std)
            pre.mean, pre.std = mean, std
            if self.task == "regression" and self.target_moments is not None:
                pre.target_mean = self.target_moments.mean.copy()
                pre.target_std = _usable_std(self.target_moments.mean, self.target_moments.std)
        return pre

    def label_dtype(self) -> np.dtype[Any]:
        assert self.classes is not None
        return self.classes.dtype

    def sample_targets(self) -> np.ndarray:
        """The targets of :attr:`sample` (the first chunk): class labels, or regression values (n, k) float64."""
        if self.task == "classification":
            return _chunk_labels(self.sample[self.targets[0]])
        return np.column_stack([self.sample[t].astype(np.float64) for t in self.targets])

    def write_arrays(
        self, pre: Preprocessor, folder: str | os.PathLike[str], dtype: Any = np.float32
    ) -> tuple[np.memmap[Any, Any], np.ndarray]:
        """Second pass: the network inputs as a memory-mapped ``.npy`` file in ``folder``, and the targets.

        Each chunk is transformed by ``pre`` exactly as ``deltaprop predict`` transforms data. The targets are
        class labels (1-D) for a classifier, scaled values ((n, k) float64) for a regressor: one value per row.
        """
        path = Path(folder) / "inputs.npy"
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(self.n_rows, pre.n_inputs))
        if self.task == "classification":
            y = np.empty(self.n_rows, dtype=self.label_dtype())
        else:
            y = np.empty((self.n_rows, len(self.targets)), dtype=np.float64)
        row = 0
        changed = DataFileError(f"{self.source} changed while it was being read twice; train again")
        for chunk in iter_chunks(self.path):
            m = chunk.n_rows
            if row + m > self.n_rows:
                raise changed
            X[row : row + m] = pre.transform(chunk)
            if self.task == "classification":
                y[row : row + m] = _chunk_labels(chunk[self.targets[0]])
            else:
                values = np.column_stack([chunk[t].astype(np.float64) for t in self.targets])
                y[row : row + m] = pre.scale_targets(values)
            row += m
        if row != self.n_rows:
            raise changed
        X.flush()
        del X
        return np.load(path, mmap_mode="r"), y


def scan_stream(
    path: str | os.PathLike[str], target: str | None = None, ignore: Sequence[str] = (), task: str | None = None
) -> StreamScan:
    """First pass over a CSV, TSV or Parquet file, chunk by chunk, with memory bounded by a chunk.

    Finds the target(s) (:func:`resolve_targets` on the first chunk), the task (:func:`infer_task`'s rule, unless
    ``task`` is given), each feature's kind and categories, and the mean and standard deviation of each numeric
    feature and regression target: everything :meth:`StreamScan.preprocessor` needs. Raises :class:`DataFileError`
    as the in-memory path does (missing values, too many categories, a single class…).
    """
    chunks = iter_chunks(path)
    first = next(chunks, None)
    if first is None or not first.columns:
        raise DataFileError(f"{path} has no data rows (only a header, or nothing)")
    source = first.source
    targets = resolve_targets(first, target)
    unknown = [c for c in ignore if c not in first]
    if unknown:
        raise DataFileError(f"--ignore names column(s) {', '.join(map(repr, unknown))} that {source} does not have")
    features = [n for n in first.names if n not in targets and n not in ignore]
    kinds = {n: "numeric" if _is_numeric(_check_usable(first, n, "feature")) else "categorical" for n in features}
    numeric_names = [n for n in features if kinds[n] == "numeric"]
    cat_sets: dict[str, set[str]] = {n: set() for n in features if kinds[n] == "categorical"}
    numeric = _Moments(len(numeric_names))
    for t in targets:
        _check_usable(first, t, "target")
    text_target = len(targets) == 1 and first[targets[0]].dtype == object
    bool_target = len(targets) == 1 and first[targets[0]].dtype.kind == "b"
    target_moments = None if text_target else _Moments(len(targets))
    labels: set[Any] | None = set()
    whole = True
    n_rows = 0
    for chunk in itertools.chain([first], chunks):
        for name in features:
            col = _check_usable(chunk, name, "feature")
            _check_complete(col, name, source, "feature", n_rows)
            if _is_numeric(col) != (kinds[name] == "numeric"):
                raise DataFileError(
                    f"column {name!r} of {source} holds {kinds[name] == 'numeric' and 'numbers' or 'text'} in its "
                    f"first rows but not from data row {n_rows + 1} on; streaming needs one type per column"
                )
            if kinds[name] == "categorical":
                cats = cat_sets[name]
                cats.update(col.tolist() if col.dtype == object else [category_text(v) for v in col.tolist()])
                if len(cats) > MAX_CATEGORIES:
                    raise DataFileError(
                        f"feature column {name!r} of {source} has more than {MAX_CATEGORIES:,} distinct text values; "
                        f"one-hot encoding would add that many inputs (the limit is {MAX_CATEGORIES:,}). Leave it out "
                        "with --ignore, or convert it to numbers"
                    )
        if numeric_names:
            numeric.add(np.column_stack([chunk[n].astype(np.float64) for n in numeric_names]))
        cols = [_check_usable(chunk, t, "target") for t in targets]
        for name, col in zip(targets, cols):
            _check_complete(col, name, source, "target", n_rows)
            if (col.dtype == object) != text_target:
                raise DataFileError(
                    f"target column {name!r} of {source} changes between text and numbers at data row "
                    f"{n_rows + 1}; streaming needs one type per column"
                )
        if target_moments is not None:
            target_moments.add(np.column_stack([c.astype(np.float64) for c in cols]))
        if len(cols) == 1:
            col = cols[0]
            if col.dtype.kind == "f" and not np.all(col == np.round(col)):
                whole = False
            if labels is not None and whole:
                labels.update(np.unique(_chunk_labels(col)).tolist())
                if len(labels) > _MAX_LABELS:
                    labels = None
        n_rows += chunk.n_rows
    if task is None:
        if len(targets) != 1:
            task = "regression"
        elif text_target or bool_target:
            task = "classification"
        elif not whole or labels is None:
            task = "regression"
        else:
            distinct = len(labels)
            few = distinct <= 2 or (distinct <= CLASSIFICATION_MAX_CLASSES and 2 * distinct <= n_rows)
            task = "classification" if few else "regression"
    classes = None
    if task == "classification":
        if len(targets) != 1:
            raise DataFileError(f"a classifier predicts one target column, got {len(targets)}: {', '.join(targets)}")
        if not whole:
            raise DataFileError(
                f"target column {targets[0]!r} holds fractional numbers, which are not class labels; "
                "use --task regression"
            )
        if labels is None:
            raise DataFileError(
                f"target column {targets[0]!r} of {source} has more than {_MAX_LABELS:,} distinct values, too many "
                "classes; use --task regression"
            )
        classes = np.unique(np.array(sorted(labels)) if text_target else np.array(list(labels)))
        if bool_target:
            classes = classes.astype(bool)
        elif not text_target:
            classes = classes.astype(np.int64)
        if classes.size < 2:
            raise DataFileError(
                f"target column {targets[0]!r} of {source} has only one value ({category_text(classes[0])!r}); "
                "a classifier needs examples of at least two classes"
            )
    elif task == "regression":
        if text_target or target_moments is None:
            raise DataFileError(
                f"target column {targets[0]!r} of {source} holds text, which regression cannot predict; "
                "use --task classification"
            )
        for k, name in enumerate(targets):
            if target_moments.lo[k] == target_moments.hi[k]:
                raise DataFileError(
                    f"target column {name!r} of {source} has only one value ({target_moments.lo[k]:g}); there is "
                    "nothing to learn"
                )
    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return StreamScan(
        str(path),
        source,
        n_rows,
        features,
        targets,
        task,
        first,
        kinds,
        {n: sorted(c) for n, c in cat_sets.items()},
        numeric,
        target_moments,
        classes,
    )


# -------------------------------------------------------------------------------------------- using a model
def _output_name(prefix: str, label: Any) -> str:
    return f"{prefix}_{category_text(label)}"


def predict_table(net: Network, pre: Preprocessor, table: Table, *, proba: bool = False) -> dict[str, np.ndarray]:
    """Predictions for every row of ``table`` as output columns (in row order).

    A classifier gives ``prediction`` (the label) and, with ``proba``, ``proba_<class>`` for each class; a regressor
    ``prediction`` (``prediction_<target>`` for several targets), in the target's units.
    """
    X = pre.transform(table)
    out = np.asarray(net.forward(X))
    if net.classes is not None:
        index = net._class_index(out)
        cols: dict[str, np.ndarray] = {"prediction": net.classes[index]}
        if proba:
            P = np.asarray(net.predict_proba(X))
            for k, c in enumerate(net.classes):
                cols[_output_name("proba", c)] = P[:, k]
        return cols
    if proba:
        raise ValueError("--proba needs a classifier; this model is a regressor (it predicts numbers)")
    values = pre.unscale_outputs(out).astype(net.dtype)
    if values.shape[1] == 1:
        return {"prediction": values[:, 0]}
    names = pre.targets if len(pre.targets) == values.shape[1] else [str(k) for k in range(values.shape[1])]
    return {_output_name("prediction", n): values[:, k] for k, n in enumerate(names)}


def class_index(classes: np.ndarray, labels: np.ndarray, what: str = "the target column") -> np.ndarray:
    """Position of each label in ``classes`` (matching by text when the kinds differ); unknown labels raise."""
    classes = np.asarray(classes)
    lab = np.asarray(labels)
    if lab.dtype.kind == "f" and np.all(lab == np.round(lab)):
        lab = lab.astype(np.int64)
    if classes.dtype.kind != lab.dtype.kind or lab.dtype == object:
        keys = [category_text(c) for c in classes.tolist()]
        lookup = {k: i for i, k in enumerate(keys)}
        texts = [category_text(v) for v in lab.tolist()]
        index = np.array([lookup.get(t, -1) for t in texts], dtype=np.intp)
        unknown = sorted({t for t, i in zip(texts, index) if i < 0})
    else:
        pos = np.minimum(np.searchsorted(classes, lab), classes.size - 1)
        ok = classes[pos] == lab
        index = np.where(ok, pos, -1)
        unknown = sorted({category_text(v) for v in lab[~ok].tolist()})
    if unknown:
        raise DataFileError(
            f"{what} has label(s) the model was not trained on: {', '.join(map(repr, unknown[:5]))}"
            f"{' …' if len(unknown) > 5 else ''}; its classes are "
            f"{', '.join(category_text(c) for c in classes.tolist())}"
        )
    return index


def evaluate_table(net: Network, pre: Preprocessor, table: Table, targets: Sequence[str]) -> dict[str, Any]:
    """Metrics of ``net`` on ``table`` as JSON-ready data.

    Classifier: accuracy, per-class precision, recall, F1 and support, macro averages, and the confusion matrix
    (rows: true class, columns: predicted class). Regressor: MSE, MAE and R² (per target and averaged), in the
    target's units.
    """
    X = pre.transform(table)
    out = np.asarray(net.forward(X))
    n = table.n_rows
    if net.classes is not None:
        if len(targets) != 1:
            raise DataFileError(f"a classifier is evaluated on one target column, got {len(targets)}")
        col = _check_usable(table, targets[0], "target")
        _check_complete(col, targets[0], table.source, "target")
        true = class_index(net.classes, col, f"target column {targets[0]!r}")
        pred = np.asarray(net._class_index(out))
        k = net.classes.size
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (true, pred), 1)
        per_class = []
        for c in range(k):
            tp = int(cm[c, c])
            predicted, actual = int(cm[:, c].sum()), int(cm[c, :].sum())
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_class.append(
                {
                    "class": net.classes[c].item(),
                    "precision": precision,
                    "recall": recall,
                    "f1": f1,
                    "support": actual,
                }
            )
        present = [r for r in per_class if r["support"] > 0] or per_class
        return {
            "task": "classification",
            "n_examples": n,
            "accuracy": float(np.mean(true == pred)),
            "classes": [c.item() for c in net.classes],
            "per_class": per_class,
            "macro_precision": float(np.mean([r["precision"] for r in present])),
            "macro_recall": float(np.mean([r["recall"] for r in present])),
            "macro_f1": float(np.mean([r["f1"] for r in present])),
            "confusion_matrix": cm.tolist(),
        }
    y = target_values_for_eval(table, targets)
    pred = pre.unscale_outputs(out)
    if y.shape[1] != pred.shape[1]:
        raise DataFileError(
            f"the model predicts {pred.shape[1]} value(s) but {len(targets)} target column(s) were given"
        )
    err = pred - y
    mse = np.mean(err**2, axis=0)
    mae = np.mean(np.abs(err), axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    ss_res = np.sum(err**2, axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    result: dict[str, Any] = {
        "task": "regression",
        "n_examples": n,
        "mse": float(mse.mean()),
        "mae": float(mae.mean()),
        "r2": float(r2.mean()),
    }
    if len(targets) > 1:
        result["per_target"] = [
            {"target": t, "mse": float(a), "mae": float(b), "r2": float(c)} for t, a, b, c in zip(targets, mse, mae, r2)
        ]
    return result


def target_values_for_eval(table: Table, targets: Sequence[str]) -> np.ndarray:
    """Regression targets of ``table`` as float64 (n, k), checked (a constant column is fine here)."""
    out = np.empty((table.n_rows, len(targets)), dtype=np.float64)
    for k, name in enumerate(targets):
        col = _check_usable(table, name, "target")
        _check_complete(col, name, table.source, "target")
        if col.dtype == object:
            raise DataFileError(f"target column {name!r} of {table.source} holds text, but this model predicts numbers")
        out[:, k] = col.astype(np.float64)
    return out


def raw_input_network(net: Network, pre: Preprocessor) -> Network:
    """A copy of ``net`` that takes the raw (unscaled) feature values: the scaling folded into the first layer.

    Only for models whose features are all numeric (a one-hot group is not a linear function of its column).
    """
    from .network import MLP

    if any(f.kind != "numeric" for f in pre.features):
        raise ValueError("raw_input_network needs numeric features only")
    weights = net.get_weights()
    W, b = weights[0]
    W64 = W.astype(np.float64) / pre.std[:, None]
    b64 = b.astype(np.float64) - (pre.mean @ W64)
    weights[0] = (W64, b64)
    copy = MLP(
        net.layer_sizes,
        activation=net.activations[:-1],
        output_activation=net.activations[-1],
        loss=net.loss_function,
        init=weights,
        dtype=net.dtype.name,
    )
    copy.classes = None if net.classes is None else net.classes.copy()
    return copy


# -------------------------------------------------------------------------------------------------- writing
def _cell(v: Any) -> str:
    if isinstance(v, (np.floating, float)):
        return str(v)  # NumPy prints the shortest text that reads back as the same float32/float64
    if isinstance(v, (np.bool_, bool)):
        return str(bool(v))
    if isinstance(v, np.generic):
        return str(v.item())
    return "" if v is None else str(v)


def format_csv(columns: dict[str, np.ndarray], *, delimiter: str = ",") -> str:
    """Columns as CSV text (header row, then one row per entry; floats in their shortest exact form)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(list(columns))
    cols = list(columns.values())
    n = len(cols[0]) if cols else 0
    for i in range(n):
        writer.writerow([_cell(c[i]) for c in cols])
    return buf.getvalue()


def _parquet_bytes(columns: dict[str, np.ndarray]) -> bytes:
    pa = require("pyarrow", "data", "Writing Parquet files")
    pq = require("pyarrow.parquet", "data", "Writing Parquet files")
    arrays = {}
    for name, col in columns.items():
        if col.dtype == object or col.dtype.kind in "US":
            arrays[name] = pa.array([None if v is None else str(v) for v in col.tolist()], type=pa.string())
        else:
            arrays[name] = pa.array(col)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(arrays), sink)
    return bytes(sink.getvalue().to_pybytes())


def write_table(columns: dict[str, np.ndarray], path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write columns to a ``.csv``, ``.tsv`` or ``.parquet`` file (by suffix), atomically; keep an existing file
    unless ``overwrite``."""
    p = Path(path)
    fmt = WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DataFileError(f"cannot write {p}: its name must end in one of {', '.join(WRITE_FORMATS)}")
    if fmt == "parquet":
        data = _parquet_bytes(columns)
    else:
        data = format_csv(columns, delimiter="\t" if fmt == "tsv" else ",").encode("utf-8")
    atomic_write(p, lambda fh: fh.write(data), overwrite=overwrite)
    return p


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], Any], *, overwrite: bool = False) -> None:
    """Write a file through a temporary file beside it, then move it into place in one step.

    A reader never sees half a file; an existing file is replaced only with ``overwrite`` (FileExistsError
    otherwise, even if it appears while writing). The command line's wording of :func:`safefile.atomic_write`.
    """
    from . import safefile

    safefile.atomic_write(path, write, overwrite=overwrite, exists_hint="pass --force to replace it")
