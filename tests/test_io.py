"""Model files: round trips, atomic saves, and one clear error for every kind of bad file."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaprop
from deltaprop import MLP, safefile
from deltaprop.io import ModelFileError, model_payload


@pytest.fixture
def classifier():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "pos", "neg")
    net = MLP([3, 5, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=3, verbose=0)
    net.metadata = {"columns": ["a", "b", "c"]}
    net.extra_arrays = {"scale": np.array([1.0, 2.0, 3.0])}
    return net, X


def test_round_trip_keeps_everything_needed_to_predict(tmp_path, classifier):
    net, X = classifier
    net.layers[0].bias_trainable = False
    path = tmp_path / "m.safetensors"
    net.save(path)
    back = deltaprop.load(path)
    assert back.get_config() == net.get_config()
    assert np.array_equal(back.theta, net.theta) and back.dtype == net.dtype
    assert back.classes.tolist() == ["neg", "pos"]
    assert back.predict(X).tolist() == net.predict(X).tolist()
    assert back.metadata == {"columns": ["a", "b", "c"]}
    assert np.array_equal(back.extra_arrays["scale"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "identity"])
def test_round_trip_every_activation(tmp_path, dtype, act):
    net = MLP([4, 3, 2], activation=act, output_activation="identity", loss="mse", dtype=dtype, seed=1)
    net.save(tmp_path / "m")
    back = deltaprop.load(tmp_path / "m")
    X = np.random.default_rng(0).normal(size=(5, 4))
    assert np.array_equal(back.forward(X), net.forward(X))


def test_integer_labels_round_trip(tmp_path):
    net = MLP([2, 3, 3], output_activation="softmax", loss="cross_entropy", seed=0)
    net.fit(np.random.default_rng(0).normal(size=(9, 2)), [0, 1, 2] * 3, epochs=1, verbose=0)
    net.save(tmp_path / "m")
    assert deltaprop.load(tmp_path / "m").classes.tolist() == [0, 1, 2]


def test_weights_are_readable_by_plain_safetensors_readers(tmp_path):
    net = MLP([2, 2, 2], seed=0)
    net.save(tmp_path / "m")
    raw = (tmp_path / "m").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["layers.0.W"]["dtype"] == "F32" and header["layers.0.W"]["shape"] == [2, 2]
    assert json.loads(header["__metadata__"]["deltaprop"])["format"] == "deltaprop-model"


# ----------------------------------------------------------------------------------------- bad files
def _write(path, net, mutate_meta=None, mutate_tensors=None):
    tensors, meta = model_payload(net)
    if mutate_meta:
        mutate_meta(meta)
    if mutate_tensors:
        mutate_tensors(tensors)
    safefile.write(path, tensors, meta)


def _set(d, key, value):
    d[key] = value


BAD_MODELS = {
    "missing key": (lambda m: m.pop("classes"), None, "metadata keys missing"),
    "unknown key": (lambda m: _set(m, "surprise", 1), None, "unknown"),
    "not a model": (lambda m: _set(m, "format", "something-else"), None, "not a deltaprop-model file"),
    "newer version": (lambda m: _set(m, "format_version", 99), None, "newer deltaprop"),
    "bad sizes": (lambda m: _set(m["architecture"], "layer_sizes", [2, -1]), None, "layer_sizes"),
    "bad activation": (lambda m: _set(m["architecture"], "activations", [{"name": "x"}] * 2), None, "activation"),
    "bad loss": (lambda m: _set(m["architecture"], "loss", {"name": "hinge"}), None, "unknown loss"),
    "shapes do not chain": (None, lambda t: _set(t, "layers.1.W", np.zeros((3, 2), np.float32)), "layer 1 has W"),
    "integer weights": (None, lambda t: _set(t, "layers.0.b", np.zeros(2, np.int64)), "float32 or float64"),
    "NaN weights": (None, lambda t: _set(t, "layers.0.W", np.full((2, 2), np.nan, np.float32)), "NaN"),
    "missing tensor": (None, lambda t: t.pop("layers.1.b"), "tensors missing"),
    "unknown tensor": (None, lambda t: _set(t, "oops", np.zeros(1)), "unknown"),
    "too many classes": (
        lambda m: _set(m, "classes", {"kind": "str", "values": ["a", "b", "c"]}),
        None,
        "do not fit",
    ),
    "metadata not an object": (lambda m: _set(m, "metadata", [1]), None, "metadata must be an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_each_bad_model_file_raises_model_file_error(tmp_path, case):
    mutate_meta, mutate_tensors, match = BAD_MODELS[case]
    path = tmp_path / "bad"
    _write(path, MLP([2, 2, 2], seed=0), mutate_meta, mutate_tensors)
    with pytest.raises(ModelFileError, match=match):
        deltaprop.load(path)


def test_bad_bytes_raise_model_file_error(tmp_path):
    good = tmp_path / "good"
    MLP([2, 2, 2], seed=0).save(good)
    raw = good.read_bytes()
    cases = {
        "missing": None,
        "empty": b"",
        "truncated": raw[: len(raw) // 2],
        "wrong magic": b"PK\x03\x04" + raw[4:],
        "absurd header size": struct.pack("<Q", 2**62) + raw[8:],
        "json not an object": struct.pack("<Q", 2) + b"[]",
    }
    for name, data in cases.items():
        path = tmp_path / name.replace(" ", "_")
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ModelFileError):
            deltaprop.load(path)
    assert isinstance(ModelFileError("x"), ValueError)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_model_files_load_or_raise_model_file_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "m"
    MLP([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0).save(path)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 16))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    path.write_bytes(bytes(raw))
    try:
        net = deltaprop.load(path)
    except ModelFileError:
        return
    assert np.all(np.isfinite(net.theta)) and net.layer_sizes[0] == 3
