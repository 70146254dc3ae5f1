"""Data files and preprocessing for the command line (deltaprop.tabular)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from deltaprop import MLP
from deltaprop.tabular import (
    DataFileError,
    Preprocessor,
    Table,
    atomic_write,
    class_index,
    data_format,
    evaluate_table,
    format_csv,
    infer_task,
    predict_table,
    raw_input_network,
    read_table,
    resolve_targets,
    target_values,
    write_table,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CSV = "x1,x2,colour,label,price\n1.5,10,red,yes,3.25\n2.5,20,blue,no,4.5\n-1.0,30,red,yes,1.0\n0.0,,green,no,2.0\n"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def _table():
    return Table(
        {
            "x1": np.array([1.0, 2.0, 3.0, 4.0]),
            "n": np.array([10, 20, 30, 40]),
            "colour": np.array(["red", "blue", "red", "green"], dtype=object),
            "label": np.array(["a", "b", "a", "b"], dtype=object),
            "price": np.array([1.0, 2.5, 3.0, 7.5]),
        },
        "t.csv",
        "csv",
    )


# ------------------------------------------------------------------------------------------------ reading
def test_read_csv_types_and_missing_values(tmp_path):
    t = read_table(_write(tmp_path, "d.csv", CSV))
    assert t.names == ["x1", "x2", "colour", "label", "price"]
    assert t.n_rows == 4 and t.format == "csv"
    assert t["x1"].dtype == np.float64 and t["x1"].tolist() == [1.5, 2.5, -1.0, 0.0]
    assert t["x2"].dtype == np.float64 and np.isnan(t["x2"][3])  # an empty number is missing (NaN)
    assert t["colour"].dtype == object and t["colour"].tolist() == ["red", "blue", "red", "green"]
    assert "x1" in t and "nope" not in t


def test_read_integers_stay_integers(tmp_path):
    t = read_table(_write(tmp_path, "d.csv", "a,b\n1,2\n3,4\n"))
    assert t["a"].dtype == np.int64 and t["b"].tolist() == [2, 4]


def test_tsv_and_gzip(tmp_path):
    t = read_table(_write(tmp_path, "d.tsv", CSV.replace(",", "\t")))
    assert t.names[:3] == ["x1", "x2", "colour"] and t.format == "tsv"
    gz = tmp_path / "d.csv.gz"
    gz.write_bytes(gzip.compress(CSV.encode()))
    assert data_format(gz) == "csv"
    assert read_table(gz)["label"].tolist() == ["yes", "no", "yes", "no"]


def test_pandas_reads_the_same_as_pyarrow(tmp_path):
    pytest.importorskip("pandas")
    p = _write(tmp_path, "d.csv", CSV)
    a, b = read_table(p), read_table(p, engine="pandas")
    assert a.names == b.names
    for name in a.names:
        if a[name].dtype == object:
            assert a[name].tolist() == b[name].tolist()
        else:
            np.testing.assert_array_equal(a[name], b[name])


def test_parquet(tmp_path):
    p = tmp_path / "d.parquet"
    cats = pa.array(["s", "m", "s"]).dictionary_encode()
    pq.write_table(
        pa.table(
            {"a": [1, 2, 3], "b": [0.5, None, 1.5], "c": cats, "flag": [True, False, True], "s": ["x", None, "z"]}
        ),
        p,
    )
    t = read_table(p)
    assert t["a"].dtype == np.int64
    assert np.isnan(t["b"][1])
    assert t["c"].tolist() == ["s", "m", "s"]  # dictionary-encoded text is text
    assert t["flag"].dtype == bool
    assert t["s"].tolist() == ["x", None, "z"]


def test_parquet_unsupported_types_are_refused_only_when_used(tmp_path):
    import datetime

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"when": [datetime.date(2024, 1, d) for d in (1, 2)], "x": [1.0, 2.0], "y": [0, 1]}), p)
    t = read_table(p)
    assert "when" in t.unsupported
    Preprocessor.fit(t, ["x"], ["y"], "classification")  # fine without it
    with pytest.raises(DataFileError, match="'when'.*date32.*convert it"):
        Preprocessor.fit(t, ["when", "x"], ["y"], "classification")


def test_npy_columns_and_default_target(tmp_path):
    p = tmp_path / "d.npy"
    np.save(p, np.array([[0.0, 1.0, 0], [1.0, 0.0, 1], [1.0, 1.0, 0]]))
    t = read_table(p)
    assert t.names == ["0", "1", "2"]
    assert resolve_targets(t, None) == ["2"]
    assert resolve_targets(t, "0") == ["0"] and resolve_targets(t, "-1") == ["2"]
    with pytest.raises(DataFileError, match="no column '7'"):
        resolve_targets(t, "7")


def test_npy_structured_array_uses_field_names(tmp_path):
    p = tmp_path / "d.npy"
    arr = np.zeros(3, dtype=[("height", "f8"), ("kind", "U5")])
    arr["kind"] = ["a", "b", "a"]
    np.save(p, arr)
    t = read_table(p)
    assert t.names == ["height", "kind"] and t["kind"].tolist() == ["a", "b", "a"]


def test_npz_x_and_y(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 0]))
    t = read_table(p)
    assert t.names == ["0", "1", "y"] and resolve_targets(t, None) == ["y"]
    np.savez(p, X=np.arange(6.0).reshape(3, 2), y=np.ones((3, 2)))
    assert resolve_targets(read_table(p), None) == ["y0", "y1"]
    np.savez(p, X=np.arange(6.0).reshape(3, 2))
    with pytest.raises(DataFileError, match="no array 'y'"):
        resolve_targets(read_table(p), None)


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("d.xlsx", b"x", "cannot tell the format"),
        ("d.parquet", b"this is not parquet", "cannot read .* as PARQUET"),
        ("d.csv", b"", "cannot read|no data rows"),
        ("d.csv", b"a,b\n", "no data rows"),
        ("d.csv", b"a,b\n1,2,3\n", "cannot read .* as CSV"),
        ("d.csv", b"a,a\n1,2\n", "appears more than once"),
        ("d.npy", b"garbage", "cannot read .* .npy"),
        ("d.npz", b"garbage", "cannot read .* .npz"),
    ],
)
def test_unreadable_files_raise_data_file_error(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DataFileError, match=match):
        read_table(p)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataFileError, match="is a folder"):
        read_table(tmp_path / "dir.csv")


def test_npz_without_x_and_npy_3d(tmp_path):
    np.savez(tmp_path / "a.npz", A=np.zeros(3))
    with pytest.raises(DataFileError, match="needs an array named 'X'"):
        read_table(tmp_path / "a.npz")
    np.save(tmp_path / "b.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataFileError, match="2-D"):
        read_table(tmp_path / "b.npy")
    np.save(tmp_path / "c.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="cannot read"):  # never unpickles
        read_table(tmp_path / "c.npy")


# ------------------------------------------------------------------------------------------------ targets
def test_resolve_targets():
    t = _table()
    assert resolve_targets(t, "label") == ["label"]
    assert resolve_targets(t, "x1, price") == ["x1", "price"]
    with pytest.raises(DataFileError, match="name the column to predict with --target.*x1, n, colour"):
        resolve_targets(t, None)
    with pytest.raises(DataFileError, match="no column 'species'.*columns are: x1"):
        resolve_targets(t, "species")
    t2 = Table({"a": np.zeros(2), "target": np.array([0, 1])})
    assert resolve_targets(t2, None) == ["target"]


def test_infer_task():
    assert infer_task([np.array(["a", "b"], dtype=object)]) == "classification"
    assert infer_task([np.array([True, False])]) == "classification"
    assert infer_task([np.array([0, 1, 2, 1, 0, 2])]) == "classification"
    assert infer_task([np.array([1.0, 2.0, 1.0])]) == "classification"  # integer-valued floats
    assert infer_task([np.arange(100)]) == "regression"  # many distinct integers
    assert infer_task([np.array([980, 1250, 1540, 1890])]) == "regression"  # as many values as rows
    assert infer_task([np.array([0, 1, 1])]) == "classification"  # two values
    assert infer_task([np.array([0.5, 1.0, 2.0])]) == "regression"
    assert infer_task([np.zeros(3), np.ones(3)]) == "regression"


def test_target_values_and_their_errors():
    t = _table()
    assert target_values(t, ["label"], "classification").tolist() == ["a", "b", "a", "b"]
    assert target_values(t, ["price"], "regression").shape == (4, 1)
    one = Table({"x": np.zeros(3), "y": np.array(["same"] * 3, dtype=object)}, "one.csv")
    with pytest.raises(DataFileError, match="only one value.*'same'"):
        target_values(one, ["y"], "classification")
    with pytest.raises(DataFileError, match="only one value"):
        target_values(Table({"y": np.ones(3)}, "c.csv"), ["y"], "regression")
    gaps = Table({"y": np.array([1.0, np.nan, 2.0])}, "g.csv")
    with pytest.raises(DataFileError, match="1 missing value.*data row 2"):
        target_values(gaps, ["y"], "regression")
    with pytest.raises(DataFileError, match="fractional numbers.*--task regression"):
        target_values(t, ["price"], "classification")
    with pytest.raises(DataFileError, match="holds text.*--task classification"):
        target_values(t, ["label"], "regression")


# ------------------------------------------------------------------------------------------ preprocessing
def test_fit_transform_standardises_and_one_hot_encodes():
    t = _table()
    pre = Preprocessor.fit(t, ["x1", "n", "colour"], ["label"], "classification")
    assert pre.input_names == ["x1", "n", "colour=blue", "colour=green", "colour=red"]
    X = pre.transform(t)
    np.testing.assert_allclose(X[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X[:, :2].std(axis=0), 1, atol=1e-12)
    np.testing.assert_array_equal(X[:, 2:], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    raw = Preprocessor.fit(t, ["x1"], ["label"], "classification", scale=False)
    np.testing.assert_array_equal(raw.transform(t)[:, 0], t["x1"])


def test_constant_column_does_not_divide_by_zero():
    t = Table({"c": np.full(4, 3.0), "x": np.arange(4.0)})
    pre = Preprocessor.fit(t, ["c", "x"], [], "regression")
    assert np.all(np.isfinite(pre.transform(t))) and pre.std[0] == 1.0


def test_columns_are_matched_by_name_and_extras_ignored():
    t = _table()
    pre = Preprocessor.fit(t, ["x1", "colour"], ["label"], "classification")
    reordered = Table({"extra": np.zeros(4), "colour": t["colour"], "x1": t["x1"]}, "new.csv")
    np.testing.assert_array_equal(pre.transform(reordered), pre.transform(t))


def test_missing_columns_are_named():
    pre = Preprocessor.fit(_table(), ["x1", "n", "colour"], ["label"], "classification")
    with pytest.raises(DataFileError, match=r"new.csv lacks the column\(s\) the model was trained on: n, colour"):
        pre.transform(Table({"x1": np.zeros(2)}, "new.csv"))


def test_text_in_a_numeric_column_is_an_error():
    pre = Preprocessor.fit(_table(), ["x1"], ["label"], "classification")
    with pytest.raises(DataFileError, match="'x1'.*holds text.*'oops'.*trained on numbers"):
        pre.transform(Table({"x1": np.array(["oops"], dtype=object)}, "new.csv"))


def test_missing_feature_values_are_an_error():
    pre = Preprocessor.fit(_table(), ["x1", "colour"], ["label"], "classification")
    with pytest.raises(DataFileError, match="feature column 'colour'.*missing"):
        pre.transform(Table({"x1": np.zeros(2), "colour": np.array(["red", None], dtype=object)}, "new.csv"))


def test_unseen_categories_give_all_zero_one_hot():
    t = _table()
    pre = Preprocessor.fit(t, ["colour"], ["label"], "classification")
    new = Table({"colour": np.array(["purple", "red"], dtype=object)}, "new.csv")
    np.testing.assert_array_equal(pre.transform(new), [[0, 0, 0], [0, 0, 1]])
    assert pre.unseen_categories(new) == {"colour": ["purple"]}
    assert pre.unseen_categories(t) == {}


def test_categories_read_as_numbers_elsewhere_match_by_text():
    train = Table({"size": np.array(["1", "2", "L"], dtype=object)})
    pre = Preprocessor.fit(train, ["size"], [], "classification")
    new = Table({"size": np.array([2, 1])})  # this file had only numbers in the column
    np.testing.assert_array_equal(pre.transform(new), [[0, 1, 0], [1, 0, 0]])


def test_too_many_categories_is_refused():
    t = Table({"id": np.array([f"row{i}" for i in range(1500)], dtype=object)}, "ids.csv")
    with pytest.raises(DataFileError, match="1,500 distinct text values.*--ignore"):
        Preprocessor.fit(t, ["id"], [], "classification")


def test_transform_values_for_one_example():
    t = _table()
    pre = Preprocessor.fit(t, ["x1", "colour"], ["label"], "classification")
    x = pre.transform_values(["2.5", "blue"])
    np.testing.assert_allclose(x, pre.transform(Table({"x1": np.array([2.5]), "colour": np.array(["blue"], object)})))
    with pytest.raises(ValueError, match="expected 2 input value"):
        pre.transform_values(["1"])
    with pytest.raises(ValueError, match="'x1' must be a number"):
        pre.transform_values(["red", "blue"])


def test_regression_targets_are_standardised_and_restored():
    t = _table()
    y = target_values(t, ["price"], "regression")
    pre = Preprocessor.fit(t, ["x1"], ["price"], "regression", y=y)
    z = pre.scale_targets(y)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    np.testing.assert_allclose(pre.unscale_outputs(z), y)


def test_preprocessing_survives_save_and_load(tmp_path):
    import deltaprop

    t = _table()
    y = target_values(t, ["price"], "regression")
    pre = Preprocessor.fit(t, ["x1", "colour"], ["price"], "regression", y=y)
    net = MLP([pre.n_inputs, 3, 1], activation="tanh", output_activation="identity", loss="mse", seed=0)
    pre.to_model(net)
    net.save(tmp_path / "m.safetensors")
    back = Preprocessor.from_model(deltaprop.load(tmp_path / "m.safetensors"))
    assert back is not None
    assert back.input_names == pre.input_names and back.targets == ["price"] and back.task == "regression"
    np.testing.assert_array_equal(back.transform(t), pre.transform(t))
    np.testing.assert_array_equal(back.unscale_outputs(np.ones((1, 1))), pre.unscale_outputs(np.ones((1, 1))))
    assert Preprocessor.from_model(MLP([2, 1])) is None


def test_damaged_stored_preprocessing_is_reported():
    net = MLP([1, 1])
    net.metadata["preprocessing"] = {"version": 1, "features": [{"name": "a", "kind": "weird"}]}
    with pytest.raises(DataFileError, match="stored preprocessing is damaged"):
        Preprocessor.from_model(net)


def test_passthrough_for_models_saved_from_python():
    t = Table({"a": np.zeros(2), "b": np.ones(2), "y": np.array([0, 1])}, "p.csv")
    pre = Preprocessor.passthrough(t, 2, exclude=["y"])
    np.testing.assert_array_equal(pre.transform(t), [[0, 1], [0, 1]])
    with pytest.raises(DataFileError, match="saved without column names.*exactly its 3 input column.*besides y"):
        Preprocessor.passthrough(t, 3, exclude=["y"])


# ---------------------------------------------------------------------------------------- using a model
def _threshold_classifier():
    """1 input, softmax over classes a/b: class b exactly when x > 0."""
    t = Table({"x": np.array([-2.0, -1.0, 1.0, 2.0, 3.0]), "y": np.array(["a", "a", "a", "b", "b"], dtype=object)})
    pre = Preprocessor.fit(t, ["x"], ["y"], "classification", scale=False)
    net = MLP([1, 2], output_activation="softmax", loss="cross_entropy", init=[([[-1.0, 1.0]], [0.0, 0.0])])
    net.classes = np.array(["a", "b"])
    pre.to_model(net)
    return net, pre, t


def test_predict_table_labels_and_probabilities():
    net, pre, t = _threshold_classifier()
    cols = predict_table(net, pre, t, proba=True)
    assert list(cols) == ["prediction", "proba_a", "proba_b"]
    assert cols["prediction"].tolist() == ["a", "a", "b", "b", "b"]
    np.testing.assert_allclose(cols["proba_a"] + cols["proba_b"], 1, rtol=1e-6)


def test_evaluate_table_classification_metrics():
    net, pre, t = _threshold_classifier()
    r = evaluate_table(net, pre, t, ["y"])
    assert r["confusion_matrix"] == [[2, 1], [0, 2]]  # the third example (x = 1, class a) is called b
    assert r["accuracy"] == pytest.approx(0.8)
    a, b = r["per_class"]
    assert (a["precision"], a["recall"], a["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert (b["precision"], b["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert b["f1"] == pytest.approx(0.8)
    json.dumps(r)  # plain JSON data
    bad = Table({"x": np.zeros(1), "y": np.array(["zebra"], dtype=object)}, "bad.csv")
    with pytest.raises(DataFileError, match="not trained on: 'zebra'"):
        evaluate_table(net, pre, bad, ["y"])


def test_evaluate_table_regression_metrics():
    t = Table({"x": np.array([0.0, 1.0, 2.0, 3.0]), "y": np.array([1.0, 3.0, 5.0, 8.0])}, "r.csv")
    pre = Preprocessor.fit(t, ["x"], ["y"], "regression", scale=False)
    net = MLP([1, 1], output_activation="identity", loss="mse", init=[([[2.0]], [1.0])], dtype="float64")
    r = evaluate_table(net, pre, t, ["y"])  # predictions 1, 3, 5, 7
    assert r["mse"] == pytest.approx(0.25) and r["mae"] == pytest.approx(0.25)
    y = t["y"]
    assert r["r2"] == pytest.approx(1 - 1 / np.sum((y - y.mean()) ** 2))
    assert predict_table(net, pre, t)["prediction"].tolist() == [1.0, 3.0, 5.0, 7.0]


def test_class_index_matches_text_and_numbers():
    assert class_index(np.array([1, 2, 3]), np.array(["2", "3"], dtype=object)).tolist() == [1, 2]
    assert class_index(np.array(["1", "2"]), np.array([2.0, 1.0])).tolist() == [1, 0]
    with pytest.raises(DataFileError, match="not trained on: '9'"):
        class_index(np.array([1, 2]), np.array([9]))


def test_raw_input_network_folds_the_scaling_in():
    t = Table({"a": np.array([1.0, 5.0, 9.0]), "b": np.array([100.0, 300.0, 200.0])})
    pre = Preprocessor.fit(t, ["a", "b"], [], "regression")
    net = MLP([2, 4, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=1, dtype="float64")
    raw = raw_input_network(net, pre)
    X_raw = np.column_stack([t["a"], t["b"]])
    np.testing.assert_allclose(raw.forward(X_raw), net.forward(pre.transform(t)), rtol=1e-10)


# ------------------------------------------------------------------------------------------------ writing
def test_format_csv_prints_shortest_floats():
    text = format_csv({"p": np.array([0.1, 0.25], dtype=np.float32), "label": np.array(["a", "b,c"])})
    assert text == 'p,label\n0.1,a\n0.25,"b,c"\n'


def test_write_table_csv_and_parquet(tmp_path):
    cols = {"prediction": np.array(["a", "b"]), "proba_a": np.array([0.75, 0.5])}
    write_table(cols, tmp_path / "p.csv")
    assert read_table(tmp_path / "p.csv")["proba_a"].tolist() == [0.75, 0.5]
    write_table(cols, tmp_path / "p.parquet")
    back = pq.read_table(tmp_path / "p.parquet").to_pydict()
    assert back == {"prediction": ["a", "b"], "proba_a": [0.75, 0.5]}
    with pytest.raises(FileExistsError, match="--force"):
        write_table(cols, tmp_path / "p.csv")
    write_table({"x": np.array([1])}, tmp_path / "p.csv", overwrite=True)
    assert (tmp_path / "p.csv").read_text() == "x\n1\n"
    with pytest.raises(DataFileError, match="must end in"):
        write_table(cols, tmp_path / "p.json")


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("precious")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom, overwrite=True)
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
