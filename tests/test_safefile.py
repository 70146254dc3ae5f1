"""deltaprop.safefile: safetensors files written atomically and read defensively, byte-compatible with safetensors."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaprop import safefile
from deltaprop.safefile import ModelFileError

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]
SHAPES = [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 1, 1, 2)]


def _sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype is np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.asarray(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _file(header, data=b"", pad=True):
    """Bytes of a safetensors file with this header (a dict, or raw bytes) and data."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        head += b" " * (-(8 + len(head)) % 8)
    return struct.pack("<Q", len(head)) + head + data


def _entry(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _tmp_files(folder):
    return [p.name for p in folder.iterdir() if ".deltaprop-tmp-" in p.name]


# ------------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_every_dtype_and_shape(tmp_path, dtype):
    tensors = {f"t{i}": _sample(dtype, shape, seed=i) for i, shape in enumerate(SHAPES)}
    path = tmp_path / "f.safetensors"
    safefile.write(path, tensors, {"k": 1})
    back, meta = safefile.read(path)
    assert meta == {"k": 1}
    assert set(back) == set(tensors)
    for name, arr in tensors.items():
        got = back[name]
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        assert got.shape == arr.shape
        assert got.tobytes() == arr.tobytes()
        assert got.flags.writeable and got.flags.c_contiguous and got.flags.owndata


def test_round_trip_of_mixed_tensors_metadata_and_odd_layouts(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    tensors = {
        "fortran": np.asfortranarray(base),
        "strided": base[::2, ::3],
        "big_endian": np.arange(5, dtype=">f4"),
        "big_int": np.array([1, -2, 2**40], dtype=">i8"),
        "scalar": np.array(3.5, dtype=np.float32),
        "naïve/ünïcode name": np.ones(2, dtype=np.uint8),
        "": np.zeros(0, dtype=np.int32),
    }
    meta = {"nested": {"list": [1, 2.5, None, True, "é"]}, "empty": {}, "nan": float("nan")}
    path = tmp_path / "m"
    safefile.write(path, tensors, meta)
    back, meta_back = safefile.read(path)
    for name, arr in tensors.items():
        np.testing.assert_array_equal(back[name], arr)
        assert back[name].dtype.isnative and back[name].shape == arr.shape
    assert meta_back["nested"] == meta["nested"] and meta_back["empty"] == {} and np.isnan(meta_back["nan"])
    back["fortran"][0, 0] = 99.0  # independent, writeable copies
    assert back["strided"][0, 0] == 0.0 and base[0, 0] == 0.0


def test_empty_tensor_dict_and_empty_metadata(tmp_path):
    safefile.write(tmp_path / "e", {}, {})
    assert safefile.read(tmp_path / "e") == ({}, {})


def test_layout_is_aligned_and_follows_the_safetensors_conventions(tmp_path):
    tensors = {"b": np.ones(3, np.bool_), "a": np.ones(3, np.float32), "c": np.ones(1, np.int64), "d": np.ones(2)}
    safefile.write(tmp_path / "f", tensors, {"x": "y"})
    raw = (tmp_path / "f").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    assert list(header) == ["__metadata__", "c", "d", "a", "b"]  # by dtype (widest first), then by name
    assert json.loads(header["__metadata__"]["deltaprop"]) == {"x": "y"}
    for name, arr in tensors.items():
        begin, end = header[name]["data_offsets"]
        assert begin % arr.itemsize == 0 and end - begin == arr.nbytes


def test_write_rejects_bad_arguments_before_touching_the_disk(tmp_path):
    path = tmp_path / "f"
    safefile.write(path, {"w": np.ones(2)}, {})
    before = path.read_bytes()
    bad_tensors = {
        "float16": np.ones(2, np.float16),
        "complex": np.ones(2, np.complex128),
        "object": np.array([None]),
        "uint16": np.ones(2, np.uint16),
        "text": np.array(["a"]),
    }
    for name, arr in bad_tensors.items():
        with pytest.raises(TypeError, match=f"tensor '{name}'"):
            safefile.write(path, {"ok": np.ones(1), name: arr}, {})
    with pytest.raises(TypeError, match="tensor 'list' must be a numpy array"):
        safefile.write(path, {"list": [1.0, 2.0]}, {})
    with pytest.raises(TypeError, match="tensor names must be strings"):
        safefile.write(path, {1: np.ones(1)}, {})
    with pytest.raises(ValueError, match="reserved"):
        safefile.write(path, {"__metadata__": np.ones(1)}, {})
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        safefile.write(path, {}, {"x": object()})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        safefile.write(path, {}, [1, 2])
    assert path.read_bytes() == before and _tmp_files(tmp_path) == []


def test_write_to_a_folder_or_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match="folder"):
        safefile.write(tmp_path, {}, {})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        safefile.write(tmp_path / "nope" / "f", {}, {})


# ------------------------------------------------------------------------------------- safetensors package
def test_files_from_the_safetensors_package_read_back(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    tensors = {f"{np.dtype(d).name}_{i}": _sample(d, s, seed=i) for i, s in enumerate(SHAPES) for d in DTYPES}
    meta = {"format": "x", "values": [1, 2.5, "é"]}
    path = tmp_path / "theirs.safetensors"
    st_numpy.save_file(tensors, str(path), metadata={"deltaprop": json.dumps(meta), "other": "ignored"})
    back, meta_back = safefile.read(path)
    assert meta_back == meta
    assert set(back) == set(tensors)
    for name, arr in tensors.items():
        assert back[name].dtype == arr.dtype and back[name].shape == arr.shape
        assert back[name].tobytes() == arr.tobytes()
    st_numpy.save_file({"w": np.ones(2, np.float32)}, str(path))  # no metadata at all
    assert safefile.read(path)[1] == {}


def test_our_files_read_with_the_safetensors_package_and_match_its_bytes(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    tensors = {f"{np.dtype(d).name}_{i}": _sample(d, s, seed=i) for i, s in enumerate(SHAPES) for d in DTYPES}
    tensors["ünï"] = np.arange(3, dtype=np.float32)
    meta = {"format": "deltaprop-model", "classes": ["a", "é"]}
    path = tmp_path / "ours.safetensors"
    safefile.write(path, tensors, meta)
    loaded = st_numpy.load_file(str(path))
    assert set(loaded) == set(tensors)
    for name, arr in tensors.items():
        assert loaded[name].dtype == arr.dtype and loaded[name].shape == arr.shape
        np.testing.assert_array_equal(loaded[name], arr)
    meta_str = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
    assert path.read_bytes() == st_numpy.save(tensors, metadata={"deltaprop": meta_str})


# ------------------------------------------------------------------------------------------------ bad files
GOOD_DATA = np.arange(3, dtype="<f4").tobytes()  # one F32 tensor of shape [3]: 12 bytes
LONG_HEADER = struct.pack("<Q", 2**60) + b'{"a":1}'

BAD_FILES = {
    "empty file": (b"", "truncated"),
    "shorter than the length field": (b"\x10\x00\x00", "truncated"),
    "header longer than the file": (struct.pack("<Q", 500) + b'{"a": 1}', "truncated"),
    "header length 2**60": (LONG_HEADER, "more than the limit"),
    "wrong magic (zip)": (b"PK\x03\x04\x14\x00\x00\x00" + b"\x00" * 64, "more than the limit"),
    "wrong magic (no brace)": (_file(b"[1, 2]"), "wrong magic"),
    "empty header": (_file(b"", pad=False), "wrong magic"),
    "header not UTF-8": (_file(b'{"\xff\xfe": 1}'), "UTF-8"),
    "header not JSON": (_file(b'{"a": '), "not valid JSON"),
    "header with NaN": (_file(b'{"a": NaN}'), "not valid JSON"),
    "header with extra JSON": (_file(b'{"a": 1} {}'), "not valid JSON"),
    "deep nesting": (_file(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "not valid JSON"),
    "duplicate tensor": (_file(b'{"a": {}, "a": {}}'), "names 'a' twice"),
    "entry not an object": (_file({"a": [1, 2]}), "must be an object"),
    "entry missing a key": (_file({"a": {"dtype": "F32", "shape": [3]}}, GOOD_DATA), "missing ['data_offsets']"),
    "entry with unknown key": (_file({"a": {**_entry("F32", [3], [0, 12]), "x": 1}}, GOOD_DATA), "unknown ['x']"),
    "unknown dtype": (_file({"a": _entry("Q7", [3], [0, 12])}, GOOD_DATA), "unknown dtype 'Q7'"),
    "dtype not a string": (_file({"a": _entry(4, [3], [0, 12])}, GOOD_DATA), "unknown dtype 4"),
    "unsupported dtype": (_file({"a": _entry("BF16", [6], [0, 12])}, GOOD_DATA), "BF16 is not one deltaprop reads"),
    "shape not a list": (_file({"a": {**_entry(), "shape": 3}}, GOOD_DATA), "shape must be a list"),
    "negative dimension": (_file({"a": _entry("F32", [-3], [0, 12])}, GOOD_DATA), "shape must be a list"),
    "float dimension": (_file({"a": _entry("F32", [3.0], [0, 12])}, GOOD_DATA), "non-negative integers"),
    "bool dimension": (_file({"a": _entry("F32", [True], [0, 4])}, GOOD_DATA[:4]), "non-negative integers"),
    "too many dimensions": (_file({"a": _entry("F32", [1] * 40, [0, 4])}, GOOD_DATA[:4]), "dimensions"),
    "offsets not two": (_file({"a": _entry("F32", [3], [0, 6, 12])}, GOOD_DATA), "data_offsets must be two"),
    "offsets not ints": (_file({"a": _entry("F32", [3], ["0", 12])}, GOOD_DATA), "data_offsets must be two"),
    "offsets negative": (_file({"a": _entry("F32", [3], [-4, 8])}, GOOD_DATA), "data_offsets must be two"),
    "begin after end": (_file({"a": _entry("F32", [0], [12, 0])}, GOOD_DATA), "after their end"),
    "end beyond data": (_file({"a": _entry("F32", [3], [0, 12])}, GOOD_DATA[:8]), "truncated"),
    "end far beyond data": (_file({"a": _entry("F32", [2**58], [0, 2**60])}, GOOD_DATA), "truncated"),
    "size does not match shape": (_file({"a": _entry("F32", [2], [0, 12])}, GOOD_DATA), "needs 8 bytes"),
    "empty shape with huge dims": (_file({"a": _entry("F64", [0, 2**62, 4], [0, 0])}), "too large"),
    "overlapping tensors": (
        _file({"a": _entry("F32", [2], [0, 8]), "b": _entry("F32", [2], [4, 12])}, GOOD_DATA),
        "overlaps",
    ),
    "hole between tensors": (
        _file({"a": _entry("F32", [1], [0, 4]), "b": _entry("F32", [1], [8, 12])}, GOOD_DATA),
        "belong to no tensor",
    ),
    "hole at the start": (_file({"a": _entry("F32", [2], [4, 12])}, GOOD_DATA), "belong to no tensor"),
    "trailing bytes": (_file({"a": _entry("F32", [3], [0, 12])}, GOOD_DATA + b"junk"), "trailing"),
    "metadata not an object": (_file({"__metadata__": ["x"]}), "__metadata__ must be an object"),
    "metadata null": (_file({"__metadata__": None}), "__metadata__ must be an object"),
    "metadata value not a string": (_file({"__metadata__": {"n": 1}}), "__metadata__['n'] must be a string"),
    "deltaprop metadata not JSON": (_file({"__metadata__": {"deltaprop": "{oops"}}), "metadata is not valid JSON"),
    "deltaprop metadata not an object": (_file({"__metadata__": {"deltaprop": "[1]"}}), "must be a JSON object"),
    "deltaprop metadata duplicate": (_file({"__metadata__": {"deltaprop": '{"a":1,"a":2}'}}), "twice"),
    "bool not 0 or 1": (_file({"a": _entry("BOOL", [3], [0, 3])}, b"\x00\x01\x02"), "BOOL"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_each_bad_file_raises_model_file_error_with_a_helpful_message(tmp_path, case):
    data, match = BAD_FILES[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=re.escape(match)) as info:
        safefile.read(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")  # which file
    assert ";" in message and len(message.split(";")[-1].strip()) > 10  # and what to do
    assert isinstance(info.value, ValueError)


def test_the_good_file_behind_the_bad_cases_reads(tmp_path):
    path = tmp_path / "good"
    path.write_bytes(_file({"a": _entry("F32", [3], [0, 12])}, GOOD_DATA))
    tensors, meta = safefile.read(path)
    assert tensors["a"].tolist() == [0.0, 1.0, 2.0] and meta == {}
    path.write_bytes(_file({"a": _entry("F32", [3], [0, 12])}, GOOD_DATA, pad=False))  # padding is optional
    assert safefile.read(path)[0]["a"].tolist() == [0.0, 1.0, 2.0]
    path.write_bytes(_file({"z": _entry("F32", [0], [0, 0]), "a": _entry("F32", [3], [0, 12])}, GOOD_DATA))
    assert list(safefile.read(path)[0]) == ["z", "a"]  # header order kept; empty tensors share offsets


def test_max_header_bytes_is_checked_before_the_header_is_read(tmp_path):
    path = tmp_path / "f"
    safefile.write(path, {"a": np.ones(3)}, {"padding": "x" * 1000})
    with pytest.raises(ModelFileError, match="more than the limit of 100 bytes.*raise max_header_bytes"):
        safefile.read(path, max_header_bytes=100)
    assert safefile.read(path, max_header_bytes=2000)[0]["a"].tolist() == [1.0, 1.0, 1.0]


def test_a_missing_file_a_folder_and_an_unreadable_file_say_so(tmp_path, monkeypatch):
    with pytest.raises(ModelFileError, match="no such file"):
        safefile.read(tmp_path / "nope")
    with pytest.raises(ModelFileError, match="is a folder"):
        safefile.read(tmp_path)
    with pytest.raises(ModelFileError, match="cannot be read"):
        safefile.read(str(tmp_path / "nul\0byte"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(ModelFileError, match="not a regular file"):
            safefile.read(tmp_path / "fifo")
    path = tmp_path / "secret"
    safefile.write(path, {}, {})
    monkeypatch.setattr(safefile, "open", _failing(PermissionError(13, "Permission denied")), raising=False)
    with pytest.raises(ModelFileError, match="permission denied"):
        safefile.read(path)
    monkeypatch.setattr(safefile, "open", _failing(OSError(5, "Input/output error")), raising=False)
    with pytest.raises(ModelFileError, match=r"cannot be read \(Input/output error\)"):
        safefile.read(path)


def test_check_finite_names_the_first_bad_tensor(tmp_path):
    ok = {"a": np.ones(2), "i": np.array([2**62]), "b": np.zeros((0, 3), np.float32)}
    safefile.check_finite(ok, tmp_path / "f")
    bad = {**ok, "w": np.array([1.0, np.nan, np.inf], np.float32), "v": np.array([np.inf])}
    with pytest.raises(ModelFileError, match=r"f: tensor 'w' holds 1 NaN and 1 infinite"):
        safefile.check_finite(bad, tmp_path / "f")


# ------------------------------------------------------------------------------------------------ atomicity
def _failing(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


class _DiskFullAfter:
    """A file that takes ``limit`` bytes, then fails: a save that dies halfway through its data."""

    def __init__(self, fh, limit, exc):
        self._fh, self._left, self._exc = fh, limit, exc

    def write(self, data):
        size = memoryview(data).nbytes
        if size > self._left:
            self._fh.write(bytes(memoryview(data).cast("B")[: self._left]))
            raise self._exc
        self._left -= size
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._fh.close()


@pytest.mark.parametrize("where", ["replace", "fsync", "write"])
@pytest.mark.parametrize("exc", [OSError("disk on fire"), KeyboardInterrupt()], ids=["OSError", "interrupt"])
def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, where, exc):
    path = tmp_path / "model.safetensors"
    safefile.write(path, {"w": np.arange(4.0)}, {"version": 1})
    before = path.read_bytes()
    if where == "write":
        fdopen = os.fdopen
        monkeypatch.setattr(safefile.os, "fdopen", lambda *a, **k: _DiskFullAfter(fdopen(*a, **k), 500, exc))
    else:
        monkeypatch.setattr(safefile.os, where, _failing(exc))
    with pytest.raises(type(exc)):
        safefile.write(path, {"w": np.zeros(1000)}, {"version": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _tmp_files(tmp_path) == []
    assert safefile.read(path)[1] == {"version": 1}


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(safefile.os, "replace", _failing(OSError("no")))
    with pytest.raises(OSError):
        safefile.write(tmp_path / "new", {"a": np.ones(1)}, {})
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def _dead_pid():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def test_stale_temporaries_of_crashed_saves_are_removed_on_the_next_save(tmp_path):
    path = tmp_path / "model.safetensors"
    prefix = ".model.safetensors.deltaprop-tmp-"
    crashed = tmp_path / f"{prefix}{_dead_pid()}-0123456789abcdef"
    old_own = tmp_path / f"{prefix}{os.getpid()}-00000000000000ff"
    live = tmp_path / f"{prefix}{os.getpid()}-fedcba9876543210"  # a save under way in another thread
    other_target = tmp_path / f".other.deltaprop-tmp-{_dead_pid()}-0123456789abcdef"
    not_ours = tmp_path / f"{prefix}notours"
    for p in (crashed, old_own, live, other_target, not_ours):
        p.write_bytes(b"half a file")
    hour_ago = time.time() - 2 * 3600
    os.utime(old_own, (hour_ago, hour_ago))
    safefile.write(path, {"a": np.ones(1)}, {})
    assert not crashed.exists() and not old_own.exists()
    assert live.exists() and other_target.exists() and not_ours.exists()
    assert safefile.read(path)[0]["a"].tolist() == [1.0]


def test_atomic_write_bytes(tmp_path):
    path = tmp_path / "notes.txt"
    safefile.atomic_write_bytes(path, b"first")
    safefile.atomic_write_bytes(path, bytearray(b"second"))
    assert path.read_bytes() == b"second" and _tmp_files(tmp_path) == []
    if os.name == "posix":
        mask = os.umask(0o022)
        os.umask(mask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # like any new file, not mkstemp's 0600


def test_a_very_long_file_name_still_saves(tmp_path):
    path = tmp_path / ("m" * 240)
    safefile.write(path, {"a": np.ones(1)}, {})
    assert safefile.read(path)[0]["a"].tolist() == [1.0] and _tmp_files(tmp_path) == []


# ------------------------------------------------------------------------------------------------ fuzzing
@functools.cache
def _good_file():
    """A good file's bytes, made once (atomic saves sync the disk: slow to repeat 300 times)."""
    with tempfile.TemporaryDirectory() as folder:
        return _make_good_file(pathlib.Path(folder))


def _make_good_file(tmp_path):
    tensors = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([0.5, -1.0]),
        "n": np.array(7, dtype=np.int64),
        "e": np.zeros((0, 2), np.int32),
        "m": np.array([True, False]),
        "u": np.arange(3, dtype=np.uint8),
    }
    path = tmp_path / "good"
    safefile.write(path, tensors, {"format": "x", "sizes": [2, 3]})
    return path.read_bytes()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2, 3, 4, 8, 12, 24, 2**31, 2**60, 2**64])
    | st.floats(allow_nan=False)
    | st.sampled_from(["F32", "F64", "I64", "I32", "U8", "BOOL", "BF16", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


def _mutate(raw, data):
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        ops = ["field", "flip", "field", "cut", "insert", "field", "truncate", "length", "tail"]
        op = data.draw(st.sampled_from(ops))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "tail":  # a byte of the tensor data (the last 64 bytes), where most changes are harmless
            pos = max(0, len(raw) - data.draw(st.integers(1, 64)))
        if op in ("flip", "tail") and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 16))]
        elif op == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del raw[pos:]
        elif op == "length" and len(raw) >= 8:
            raw[:8] = struct.pack(
                "<Q", data.draw(st.sampled_from([0, 1, 7, 2**31, 2**60, 2**64 - 1]) | st.integers(0, 600))
            )
        elif op == "field":  # a well-formed file with one header field replaced: reaches the deeper checks
            try:
                (n,) = struct.unpack("<Q", raw[:8])
                header = json.loads(raw[8 : 8 + n])
                name = data.draw(st.sampled_from(sorted(header)))
                if isinstance(header[name], dict) and header[name]:
                    key = data.draw(st.sampled_from(sorted(header[name]) + ["extra"]))
                    header[name][key] = data.draw(JSON_VALUES)
                else:
                    header[name] = data.draw(JSON_VALUES)
            except (ValueError, struct.error, UnicodeDecodeError):
                continue
            head = json.dumps(header).encode()
            raw[:] = struct.pack("<Q", len(head)) + head + raw[8 + n :]
    return bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_read_or_raise_model_file_error_and_nothing_else(tmp_path, data):
    mutated = _mutate(bytearray(_good_file()), data)
    path = tmp_path / "fuzzed"
    path.write_bytes(mutated)
    tracemalloc.start()
    try:
        tensors, meta = safefile.read(path)
    except ModelFileError as e:
        assert str(e).startswith(str(path))
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**20 + 20 * len(mutated), f"reading a {len(mutated)}-byte file allocated {peak} bytes"
    (n,) = struct.unpack("<Q", mutated[:8])
    header = json.loads(mutated[8 : 8 + n])
    header.pop("__metadata__", None)
    assert list(tensors) == list(header)
    for name, arr in tensors.items():
        assert list(arr.shape) == header[name]["shape"]
        assert arr.dtype == safefile.DTYPES[header[name]["dtype"]] and arr.dtype.isnative
        begin, end = header[name]["data_offsets"]
        assert arr.tobytes() == mutated[8 + n + begin : 8 + n + end]
    assert isinstance(meta, dict)
