"""ONNX export: onnxruntime runs the exported graph and gets what ``Network.forward`` gets."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import deltaprop
from deltaprop import MLP
from deltaprop.activations import Activation
from deltaprop.backend import MissingExtraError

HIDDEN = ["sigmoid", "tanh", "relu", {"name": "leaky_relu", "alpha": 0.2}, {"name": "elu", "alpha": 0.7}, "softplus"]
HIDDEN += ["identity"]
OUTPUT = [*HIDDEN, "softmax"]
TOL = {"float32": 1e-5, "float64": 1e-12}


def _id(spec):
    return spec if isinstance(spec, str) else spec["name"]


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _session(ort, path):
    return ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])


def _random_net(hidden, output, dtype, seed):
    rng = np.random.default_rng(seed)
    sizes = [3, 6, 5, 4]
    net = MLP(sizes, activation=hidden, output_activation=output, dtype=dtype, seed=seed)
    net.set_weights([(rng.normal(scale=1.2, size=(a, b)), rng.normal(size=b)) for a, b in zip(sizes[:-1], sizes[1:])])
    return net


def _inputs(dtype, seed, n=33):
    X = np.random.default_rng(seed + 100).normal(scale=2.0, size=(n, 3))
    X[0] = [40.0, -40.0, 25.0]  # far out on both sides: saturation, overflow-safe softplus/sigmoid/elu
    X[1] = 0.0
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUT, ids=_id)
@pytest.mark.parametrize("hidden", HIDDEN, ids=_id)
def test_onnxruntime_matches_forward(ort, tmp_path, hidden, output, dtype):
    seed = (HIDDEN.index(hidden) * 10 + OUTPUT.index(output)) * 2 + (dtype == "float64")
    net = _random_net(hidden, output, dtype, seed)
    path = tmp_path / "net.onnx"
    net.to_onnx(path)
    session = _session(ort, path)
    X = _inputs(dtype, seed)
    (got,) = session.run(None, {"X": X})
    assert got.dtype == np.dtype(dtype) and got.shape == (X.shape[0], 4)
    np.testing.assert_allclose(got, net.forward(X), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graph_is_gemm_plus_standard_activation_ops(tmp_path, dtype):
    onnx = pytest.importorskip("onnx")
    net = MLP([2, 3, 3, 2], activation=["elu", "softplus"], output_activation="softmax", dtype=dtype, seed=0)
    path = tmp_path / "m.onnx"
    net.to_onnx(path)
    model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gemm") == 3 and ops[-1] == "Softmax"
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm":
            assert attrs.get("transB", 0) == 0
        if node.op_type == "Softmax":
            assert attrs["axis"] == -1
    if dtype == "float32":
        assert "Elu" in ops and "Softplus" in ops
    else:
        assert "Elu" not in ops and "Softplus" not in ops and "Where" in ops
    elem = onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE
    (inp,) = model.graph.input
    assert inp.type.tensor_type.elem_type == elem
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value and dims[1].dim_value == 2  # dynamic batch
    assert model.opset_import[0].version == deltaprop.onnx_export.DEFAULT_OPSET
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(inits["layer0.W"], net.layers[0].W)
    np.testing.assert_array_equal(inits["layer2.b"], net.layers[2].b)


def test_dynamic_batch_names_and_opset(ort, tmp_path):
    from deltaprop.onnx_export import to_onnx

    net = MLP([4, 5, 2], activation="tanh", output_activation="identity", dtype="float64", seed=3)
    path = tmp_path / "named.onnx"
    to_onnx(net, path, opset=13, input_name="features", output_name="y")
    session = _session(ort, path)
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["y"]
    for n in (1, 17):
        X = np.random.default_rng(n).normal(size=(n, 4))
        (got,) = session.run(["y"], {"features": X})
        np.testing.assert_allclose(got, net.forward(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_out, labels", [(1, [0, 1]), (2, ["no", "yes"]), (3, ["a", "b", "c"])])
def test_classifier_argmax_matches_predict(ort, tmp_path, n_out, labels):
    X, y = deltaprop.datasets.blobs(n_samples=90, centers=len(labels), seed=1) if len(labels) > 2 else (None, None)
    if X is None:
        X, y = deltaprop.datasets.moons(n_samples=90, noise=0.2, seed=1)
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[y]
    out_act = "sigmoid" if n_out == 1 else "softmax"
    loss = "binary_cross_entropy" if n_out == 1 else "cross_entropy"
    net = MLP([2, 8, n_out], activation="tanh", output_activation=out_act, loss=loss, seed=0)
    net.fit(X, y, epochs=15, lr=0.05, seed=0, verbose=0)
    path = tmp_path / "clf.onnx"
    net.to_onnx(path)
    session = _session(ort, path)
    (probs,) = session.run(None, {"X": X.astype(np.float32)})
    np.testing.assert_allclose(probs, net.predict_proba(X)[:, 1:] if n_out == 1 else net.predict_proba(X), atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["classes"])
    assert classes == np.asarray(net.classes).tolist()
    if n_out == 1:
        assert meta["decision"] == "threshold_0.5"
        index = (probs[:, 0] > 0.5).astype(int)
    else:
        assert meta["decision"] == "argmax"
        index = probs.argmax(axis=1)
    assert np.asarray(classes, dtype=object)[index].tolist() == net.predict(X).tolist()


def test_regressor_has_no_classes(tmp_path):
    onnx = pytest.importorskip("onnx")
    net = MLP([2, 2, 1], activation="relu", output_activation="identity", seed=0)
    path = tmp_path / "r.onnx"
    net.to_onnx(path)
    props = {p.key: p.value for p in onnx.load(os.fspath(path)).metadata_props}
    assert "classes" not in props
    assert json.loads(props["deltaprop_architecture"])["layer_sizes"] == [2, 2, 1]


def test_missing_extra_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    net = MLP([2, 2, 1], seed=0)
    path = tmp_path / "m.onnx"
    with pytest.raises(MissingExtraError, match=r'pip install "deltaprop\[onnx\]"'):
        net.to_onnx(path)
    assert not path.exists()


def _existing(tmp_path):
    path = tmp_path / "keep.onnx"
    path.write_bytes(b"the old model")
    return path


def _unchanged(path):
    assert path.read_bytes() == b"the old model"
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("opset", [12, 10_000, 17.0, True])
def test_bad_opset_refused_and_file_kept(tmp_path, opset):
    pytest.importorskip("onnx")
    from deltaprop.onnx_export import to_onnx

    path = _existing(tmp_path)
    with pytest.raises(ValueError, match="opset"):
        to_onnx(MLP([2, 2, 1], seed=0), path, opset=opset)
    _unchanged(path)


@pytest.mark.parametrize("kwargs", [{"input_name": ""}, {"input_name": "o", "output_name": "o"}, {"input_name": 3}])
def test_bad_names_refused(tmp_path, kwargs):
    pytest.importorskip("onnx")
    from deltaprop.onnx_export import to_onnx

    path = _existing(tmp_path)
    with pytest.raises(ValueError, match="name"):
        to_onnx(MLP([2, 2, 1], seed=0), path, **kwargs)
    _unchanged(path)


def test_name_clashing_with_an_internal_value_refused(tmp_path):
    pytest.importorskip("onnx")
    from deltaprop.onnx_export import to_onnx

    path = _existing(tmp_path)
    with pytest.raises(ValueError, match="inside the graph"):
        to_onnx(MLP([2, 2, 2, 1], seed=0), path, input_name="layer0.out")
    _unchanged(path)


def test_nonfinite_weights_refused_and_file_kept(tmp_path):
    pytest.importorskip("onnx")
    net = MLP([2, 2, 1], seed=0)
    net.layers[1].W[0, 0] = np.nan
    path = _existing(tmp_path)
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.to_onnx(path)
    _unchanged(path)


def test_unknown_activation_refused(tmp_path):
    pytest.importorskip("onnx")

    class Cube(Activation):
        name = "cube"

        def forward(self, net):
            return net**3

    net = MLP([2, 2, 1], activation=Cube(), output_activation="identity", seed=0)
    path = _existing(tmp_path)
    with pytest.raises(ValueError, match="cube"):
        net.to_onnx(path)
    _unchanged(path)


def test_failure_while_writing_keeps_old_file(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    import deltaprop.safefile

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(deltaprop.safefile.os, "replace", broken_replace)
    path = _existing(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        MLP([2, 2, 1], seed=0).to_onnx(path)
    monkeypatch.undo()
    _unchanged(path)


def test_failed_check_writes_nothing(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")

    def reject(model, full_check=False):
        raise onnx.checker.ValidationError("bad model")

    monkeypatch.setattr(onnx.checker, "check_model", reject)
    path = _existing(tmp_path)
    with pytest.raises(onnx.checker.ValidationError):
        MLP([2, 2, 1], seed=0).to_onnx(path)
    _unchanged(path)
