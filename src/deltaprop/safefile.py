"""The file layer under model files and checkpoints: safetensors files, written atomically, read defensively.

A safetensors file is 8 bytes holding N, the header's length (a little-endian unsigned 64-bit integer), then N
bytes of UTF-8 JSON, then the tensors' bytes (little-endian, C order) packed one after another. The header maps
each tensor's name to ``{"dtype": ..., "shape": [...], "data_offsets": [begin, end]}`` (offsets counted from the
first byte after the header) and may hold ``"__metadata__"``, an object of strings. This module writes and reads
that format with NumPy and the standard library only; the bytes it writes are the bytes the ``safetensors``
package writes for the same tensors and metadata, so any safetensors reader reads our files and we read theirs.

deltaprop keeps its own metadata, any JSON object, as one JSON string under ``__metadata__["deltaprop"]``; this
module stores it and gives it back but does not interpret it (``deltaprop.io`` does).

* :func:`write` writes atomically: a temporary file in the target's folder, flushed and synced to disk, then
  moved over the target in one step, so a crash leaves either the old file or the new one, never half a file.
* :func:`read` never runs code from the file (no pickle, no ``eval``), bounds every size before it reads or
  allocates anything, checks every field, and raises :class:`ModelFileError` - one error type, a
  :class:`ValueError` - for every kind of bad file, with a message that names the file, what is wrong and what
  to do.

>>> import os, tempfile, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
>>> write(path, {"w": np.arange(3, dtype=np.float32)}, {"note": "hello"})
>>> tensors, meta = read(path)
>>> tensors["w"].tolist(), meta
([0.0, 1.0, 2.0], {'note': 'hello'})
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import stat
import struct
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

import numpy as np

__all__ = [
    "ModelFileError",
    "write",
    "read",
    "atomic_write_bytes",
    "check_finite",
    "METADATA_KEY",
    "MAX_HEADER_BYTES",
    "DTYPES",
]

#: The ``__metadata__`` key under which deltaprop keeps its metadata, as a JSON string.
METADATA_KEY = "deltaprop"
#: The default limit on a header's size, the same as the safetensors package's.
MAX_HEADER_BYTES = 100 * 2**20
#: The safetensors dtype names this module writes and reads, and the NumPy dtypes they stand for.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
}
# The order of these dtypes in the safetensors package's Dtype enum (it lists dtypes by increasing alignment).
# The package stores tensors by decreasing rank, then by name, so that every tensor is aligned; we do the same,
# which makes our files byte for byte the package's files.
_RANK = {"BOOL": 0, "U8": 1, "I32": 2, "F32": 3, "F64": 4, "I64": 5}
_BY_KIND = {("b", 1): "BOOL", ("u", 1): "U8", ("i", 4): "I32", ("f", 4): "F32", ("f", 8): "F64", ("i", 8): "I64"}
_OTHER_SAFETENSORS_DTYPES = {"I8", "I16", "U16", "U32", "U64", "F16", "BF16", "F8_E5M2", "F8_E4M3", "C64"}
_ENTRY_KEYS = ("dtype", "shape", "data_offsets")
_MAX_NDIM = 32  # NumPy 1.x's limit (2.x allows 64)
_MAX_BYTES = int(np.iinfo(np.intp).max)
_TMP_MARK = ".deltaprop-tmp-"
_TMP_TAIL = re.compile(r"(\d{1,12})-[0-9a-f]{16}")
_STALE_AFTER_S = 3600.0  # a temporary file this old is stale even if its process id is in use again
_DAMAGED = "the file is damaged or is not a safetensors file; save it again or use another copy"


class ModelFileError(ValueError):
    """A file that is missing, unreadable, damaged or not what it should be: the one error for every bad file.

    The message names the file, says what is wrong and what to do about it.
    """


# ------------------------------------------------------------------------------------------------- writing
def write(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
    """Write ``tensors`` and the JSON object ``metadata`` to the safetensors file ``path``, atomically.

    ``metadata`` is stored as a JSON string under ``__metadata__["deltaprop"]`` (safetensors metadata must map
    strings to strings); it must be JSON-serialisable (tuples come back as lists, non-string keys as strings;
    NaN and infinities are written as JSON's common ``NaN``/``Infinity`` extension). Tensors must be NumPy
    arrays of dtype float32, float64, int64, int32, uint8 or bool, any byte order and memory layout; they are
    stored little-endian in C order, in the safetensors package's order (by dtype, then by name).

    Everything is checked before the disk is touched: a bad argument raises ``TypeError`` or ``ValueError`` and
    leaves ``path`` as it was. The data goes to a temporary file ``.{name}.deltaprop-tmp-{pid}-{random}`` in
    the same folder, is synced to disk and then moved over ``path`` in one step; whatever goes wrong, the old
    file is left untouched and the temporary file removed. Temporary files left for ``path`` by a process that
    crashed are removed.
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a dict of name -> numpy array, got {type(tensors).__name__}")
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict (a JSON object), got {type(metadata).__name__}")
    try:
        meta_json = json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise TypeError(f"the metadata cannot be stored as JSON: {e}") from e

    entries: list[tuple[str, str, np.ndarray]] = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved by the safetensors format and cannot name a tensor")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"tensor name {name!r} cannot be written as UTF-8") from None
        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(f"tensor {name!r} must be a numpy array, got {type(value).__name__}")
        code = _BY_KIND.get((value.dtype.kind, value.dtype.itemsize)) if value.dtype.fields is None else None
        if code is None:
            raise TypeError(
                f"tensor {name!r} has dtype {value.dtype}, which cannot be saved; "
                "use float32, float64, int64, int32, uint8 or bool"
            )
        little = np.asarray(value, dtype=DTYPES[code], order="C")  # little-endian, C order, 0-d kept 0-d
        entries.append((name, code, little))
    entries.sort(key=lambda e: (-_RANK[e[1]], e[0]))

    header: dict[str, Any] = {"__metadata__": {METADATA_KEY: meta_json}}
    offset = 0
    for name, code, arr in entries:
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    head += b" " * (-(8 + len(head)) % 8)  # pad with spaces so the data starts 8-byte aligned

    def emit(fh: IO[bytes]) -> None:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for _, _, arr in entries:
            if arr.nbytes:
                fh.write(arr.reshape(-1).view(np.uint8).data)

    atomic_write(path, emit)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, the way :func:`write` writes: all of it, or the old file unchanged."""
    view = memoryview(data)

    def emit(fh: IO[bytes]) -> None:
        fh.write(view)

    atomic_write(path, emit)


def atomic_write(
    path: str | os.PathLike[str],
    emit: Callable[[IO[bytes]], Any],
    *,
    overwrite: bool = True,
    exists_hint: str = "pass overwrite=True to replace it",
) -> None:
    """Write a file through ``emit(fh)`` into a temporary file beside it, fsync, then move it into place in one step.

    A reader (or a crash) never sees half a file. With ``overwrite=False`` an existing file is never replaced,
    even one that appears while writing: FileExistsError ending with ``exists_hint``.
    """
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not overwrite and os.path.lexists(target) and not os.path.isdir(target):
        raise FileExistsError(f"{target} already exists; {exists_hint}")
    folder, name = os.path.split(os.path.abspath(target))
    if not name or os.path.isdir(target):
        raise IsADirectoryError(f"cannot save to {target}: it is a folder; give a file name")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {target}: the folder {folder} does not exist")
    prefix = _tmp_prefix(name)
    _remove_stale_temporaries(folder, prefix)
    tmp = os.path.join(folder, f"{prefix}{os.getpid()}-{secrets.token_hex(8)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o666)  # 0o666 less the umask: the permissions any new file gets
    try:
        with os.fdopen(fd, "wb") as fh:
            emit(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # unlike os.replace, fails if the target appeared meanwhile
            except FileExistsError:
                raise FileExistsError(f"{target} already exists; {exists_hint}") from None
            except OSError:  # a filesystem without hard links
                if os.path.lexists(target):
                    raise FileExistsError(f"{target} already exists; {exists_hint}") from None
                os.replace(tmp, target)
            else:
                os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _tmp_prefix(name: str) -> str:
    """The start of the names of our temporary files for a target called ``name``, short enough for any disk."""
    while len(os.fsencode(name)) > 160:  # file names are limited to 255 bytes on most disks
        name = name[:-1]
    return f".{name}{_TMP_MARK}"


def _remove_stale_temporaries(folder: str, prefix: str) -> None:
    """Remove our temporary files for this target that no running writer owns: crashed saves leave them."""
    try:
        with os.scandir(folder) as it:
            candidates = [e for e in it if e.name.startswith(prefix) and _TMP_TAIL.fullmatch(e.name[len(prefix) :])]
    except OSError:
        return
    now = time.time()
    for entry in candidates:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            pid = int(entry.name[len(prefix) :].split("-", 1)[0])
            if now - entry.stat(follow_symlinks=False).st_mtime < _STALE_AFTER_S and _process_alive(pid):
                continue  # another save of the same file is under way right now: leave its file alone
            os.unlink(entry.path)
        except OSError:
            continue


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there; rely on the file's age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True  # PermissionError: it runs, as someone else
    return True


def _fsync_folder(folder: str) -> None:
    """Sync the folder so the rename itself survives a crash; some platforms refuse to open folders: fine."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------- reading
def read(
    path: str | os.PathLike[str], *, max_header_bytes: int = MAX_HEADER_BYTES
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a safetensors file: ``(tensors, metadata)``, or :class:`ModelFileError` for any bad file.

    ``tensors`` maps each name, in the file's order, to a new writeable NumPy array in native byte order.
    ``metadata`` is the JSON object stored under ``__metadata__["deltaprop"]`` ({} when there is none; other
    ``__metadata__`` entries are checked, then ignored). Nothing in the file is executed, and nothing is read or
    allocated before its size has been checked against the file's size; a header longer than
    ``max_header_bytes`` is refused before it is read. Every field is checked: the dtypes (those :data:`DTYPES`
    lists), shapes, offsets, that the tensors fill the data exactly with no gap, overlap or trailing bytes, that
    booleans are 0 or 1, and that the metadata is well formed.
    """
    where = os.fspath(path)
    if isinstance(where, bytes):
        where = os.fsdecode(where)

    def bad(what: str, advice: str = _DAMAGED) -> ModelFileError:
        return ModelFileError(f"{where}: {what}; {advice}")

    try:
        st = os.stat(where)
    except FileNotFoundError:
        raise bad("no such file", "check the path") from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise bad(f"the file cannot be read ({reason})", "check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise bad("this is a folder, not a file", "give the path of a model or checkpoint file") from None
    if not stat.S_ISREG(st.st_mode):
        raise bad("this is not a regular file", "give the path of a model or checkpoint file")
    try:
        with open(where, "rb") as fh:
            return _read_open(fh, os.fstat(fh.fileno()).st_size, max_header_bytes, bad)
    except ModelFileError:
        raise
    except PermissionError:
        raise bad("the file cannot be read (permission denied)", "check its permissions") from None
    except OSError as e:
        raise bad(f"the file cannot be read ({e.strerror or e})", "check the path and the disk") from None


def _read_open(
    fh: IO[bytes], size: int, max_header_bytes: int, bad: Callable[..., ModelFileError]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if size < 8:
        raise bad(f"the file is truncated: it holds {size} bytes, fewer than the 8 that give the header's length")
    (n,) = struct.unpack("<Q", _read_exactly(fh, 8, bad))
    if n > max_header_bytes:
        raise bad(
            f"the header claims to be {n} bytes long, more than the limit of {max_header_bytes} bytes",
            "the file is damaged or is not a safetensors file (if you trust it, raise max_header_bytes)",
        )
    if n > size - 8:
        raise bad(f"the file is truncated: the header claims {n} bytes but only {size - 8} follow its length")
    raw = _read_exactly(fh, n, bad)
    if not raw.startswith(b"{"):
        raise bad(f"the header does not start with '{{' (it starts with {raw[:8]!r}): wrong magic")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad(f"the header is not valid UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _Duplicate as e:
        raise bad(f"the header names {_short(e.args[0])} twice") from None
    except (ValueError, RecursionError) as e:
        raise bad(f"the header is not valid JSON ({_short(str(e), 120)})") from None
    if not isinstance(header, dict):
        raise bad(f"the header must be a JSON object, got {type(header).__name__}")

    metadata = _parse_metadata(header.pop("__metadata__", {}), bad)
    data_size = size - 8 - n
    layout: list[tuple[int, int, str, np.dtype[Any], tuple[int, ...]]] = []
    for name, entry in header.items():
        begin, end, dtype, shape = _parse_entry(name, entry, data_size, bad)
        layout.append((begin, end, name, dtype, shape))

    # The tensors must tile the data: sorted by offset, each starts where the one before ends, no gap, no overlap.
    ordered = sorted(layout, key=lambda t: (t[0], t[1]))
    expected, previous = 0, None
    for begin, end, name, _, _ in ordered:
        if begin < expected:
            raise bad(f"tensor {_short(name)} overlaps tensor {_short(previous)} (bytes {begin}..{expected})")
        if begin > expected:
            raise bad(f"bytes {expected}..{begin} of the data belong to no tensor (a hole before {_short(name)})")
        expected, previous = end, name
    if expected < data_size:
        raise bad(f"{data_size - expected} unexpected bytes follow the last tensor (trailing data)")

    tensors: dict[str, np.ndarray] = {}
    for begin, end, name, dtype, shape in ordered:
        arr = np.empty(shape, dtype=dtype.newbyteorder("="))
        if end > begin:
            got = _read_into(fh, arr.reshape(-1).view(np.uint8))
            if got < end - begin:
                raise bad(f"the file is truncated: tensor {_short(name)} ends {end - begin - got} bytes early")
            if dtype.kind == "b" and (arr.view(np.uint8) > 1).any():
                raise bad(f"tensor {_short(name)} is BOOL but holds bytes other than 0 and 1")
            if dtype.byteorder == "<" and sys.byteorder == "big":
                arr.byteswap(inplace=True)
        tensors[name] = arr
    return {name: tensors[name] for name in header}, metadata


def _parse_metadata(value: Any, bad: Callable[..., ModelFileError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"__metadata__ must be an object of strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad(f"__metadata__[{_short(key)}] must be a string, got {type(item).__name__}")
    if METADATA_KEY not in value:
        return {}
    try:
        metadata = json.loads(value[METADATA_KEY], object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        raise bad(f"the deltaprop metadata names {_short(e.args[0])} twice") from None
    except (ValueError, RecursionError) as e:
        raise bad(f"the deltaprop metadata is not valid JSON ({_short(str(e), 120)})") from None
    if not isinstance(metadata, dict):
        raise bad(f"the deltaprop metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata


def _parse_entry(
    name: str, entry: Any, data_size: int, bad: Callable[..., ModelFileError]
) -> tuple[int, int, np.dtype[Any], tuple[int, ...]]:
    label = f"tensor {_short(name)}"
    if not isinstance(entry, dict):
        raise bad(f"{label}: its header entry must be an object with dtype, shape and data_offsets")
    missing = [k for k in _ENTRY_KEYS if k not in entry]
    unknown = [k for k in entry if k not in _ENTRY_KEYS]
    if missing or unknown:
        problems = ([f"missing {missing}"] if missing else []) + ([f"unknown {_short(unknown)}"] if unknown else [])
        raise bad(f"{label}: its header entry has keys {' and '.join(problems)} (it needs {list(_ENTRY_KEYS)})")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        known = ", ".join(DTYPES)
        if isinstance(code, str) and code in _OTHER_SAFETENSORS_DTYPES:
            raise bad(f"{label}: dtype {code} is not one deltaprop reads ({known})", "convert the tensor first")
        raise bad(f"{label}: unknown dtype {_short(code)} (deltaprop reads {known})")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise bad(f"{label}: shape must be a list of non-negative integers, got {_short(shape)}")
    if len(shape) > _MAX_NDIM:
        raise bad(f"{label}: shape has {len(shape)} dimensions, more than {_MAX_NDIM}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise bad(f"{label}: data_offsets must be two non-negative integers [begin, end], got {_short(offsets)}")
    begin, end = offsets
    if begin > end:
        raise bad(f"{label}: data_offsets begin at {begin}, after their end {end}")
    if end > data_size:
        raise bad(f"the file is truncated: {label} ends at byte {end} of the data, which holds only {data_size}")
    dtype = DTYPES[code]
    if math.prod(d for d in shape if d) * dtype.itemsize > _MAX_BYTES:
        raise bad(f"{label}: shape {_short(shape)} is too large for any array")
    need = math.prod(shape) * dtype.itemsize
    if need != end - begin:
        raise bad(f"{label}: shape {shape} of {code} needs {need} bytes but data_offsets span {end - begin}")
    return begin, end, dtype, tuple(shape)


def _is_count(x: Any) -> bool:
    return type(x) is int and x >= 0


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_exactly(fh: IO[bytes], n: int, bad: Callable[..., ModelFileError]) -> bytes:
    buf = bytearray(n)
    got = _read_into(fh, memoryview(buf))
    if got < n:
        raise bad(f"the file is truncated: it ended {n - got} bytes early (was it changed while being read?)")
    return bytes(buf)


def _read_into(fh: IO[bytes], target: Any) -> int:
    view = memoryview(target).cast("B")
    got = 0
    while got < len(view):
        k = fh.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            break
        got += k
    return got


# ------------------------------------------------------------------------------------------------- checks
def check_finite(tensors: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelFileError` naming the first tensor that holds NaN or an infinity."""
    for name, arr in tensors.items():
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            nan, inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
            raise ModelFileError(
                f"{os.fspath(path)!s}: tensor {name!r} holds {nan} NaN and {inf} infinite values; "
                "the model was saved after training diverged or the file is damaged; use another copy"
            )
