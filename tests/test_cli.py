"""The ``deltaprop`` command end to end: each test runs it in a subprocess on files it writes itself."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from deltaprop import __version__

pytest.importorskip("click")
pytest.importorskip("rich")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def run(*args, cwd, ok=True):
    proc = subprocess.run(
        [sys.executable, "-m", "deltaprop", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, f"deltaprop {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_user_error(proc, *fragments):
    """Exit status 2, one line 'deltaprop: error: …' on stderr, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("deltaprop: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def read_csv_text(text):
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------------------------- the data
def _classification_rows(n, seed):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n) * 10 + 50
    colour = rng.choice(["red", "green", "blue"], size=n)
    score = x1 + (x2 - 50) / 10 + np.where(colour == "red", 1.5, -0.5)
    label = np.where(score > 0.5, "yes", "no")
    price = 3 * x1 - 0.2 * (x2 - 50) + np.where(colour == "red", 2.0, 0.0) + 100
    return {"id": np.arange(n), "x1": x1, "x2": x2, "colour": colour, "label": label, "price": price}


def _write_csv(path, cols):
    names = list(cols)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(len(cols[names[0]])):
            w.writerow([cols[n][i] for n in names])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    train = _classification_rows(240, seed=0)
    test = _classification_rows(60, seed=1)
    _write_csv(d / "train.csv", train)
    _write_csv(d / "test.csv", test)
    pq.write_table(pa.table({k: list(v) for k, v in train.items()}), d / "train.parquet")
    pq.write_table(pa.table({k: list(v) for k, v in test.items()}), d / "test.parquet")
    # a classifier trained once, used by the predict / evaluate / trace tests
    run(
        "train", "train.csv", "--target", "label", "--ignore", "id,price", "--epochs", "40", "--quiet",
        "--out", "cls.safetensors", cwd=d,
    )  # fmt: skip
    return d


# ----------------------------------------------------------------------------------------------- basics
def test_version_and_help(work):
    assert run("--version", cwd=work).stdout.strip() == f"deltaprop {__version__}"
    top = run("--help", cwd=work).stdout
    for command in ("train", "predict", "evaluate", "trace", "datasets", "plot", "demo"):
        assert command in top
    assert "Examples" in run(cwd=work).stdout  # no command: the help


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["predict"],
        ["evaluate"],
        ["trace"],
        ["datasets"],
        ["datasets", "export"],
        ["demo"],
        ["plot"],
        ["plot", "network"],
        ["plot", "regions"],
        ["plot", "loss"],
        ["plot", "one-weight"],
        ["plot", "worked-example"],
    ],
)
def test_every_command_has_help(command, capsys):
    from deltaprop.cli import main

    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: deltaprop" in out and "--help" in out and "Example" in out


# ---------------------------------------------------------------------------------------- round trips
def test_classification_round_trip_csv(work):
    preds = read_csv_text(run("predict", "cls.safetensors", "test.csv", cwd=work).stdout)
    assert len(preds) == 60 and {p["prediction"] for p in preds} <= {"yes", "no"}
    truth = list(csv.DictReader(open(work / "test.csv")))
    accuracy = np.mean([p["prediction"] == t["label"] for p, t in zip(preds, truth)])
    assert accuracy > 0.85

    proc = run("predict", "cls.safetensors", "test.csv", "--proba", "--out", "p.csv", cwd=work)
    assert proc.stdout == "" and "wrote 60" in proc.stderr
    rows = read_csv_text((work / "p.csv").read_text())
    assert list(rows[0]) == ["prediction", "proba_no", "proba_yes"]
    for r in rows:
        p_no, p_yes = float(r["proba_no"]), float(r["proba_yes"])
        assert abs(p_no + p_yes - 1) < 1e-5
        assert r["prediction"] == ("yes" if p_yes > p_no else "no")

    report = json.loads(run("evaluate", "cls.safetensors", "test.csv", "--json", cwd=work).stdout)
    assert report["task"] == "classification" and report["targets"] == ["label"]
    assert report["accuracy"] == pytest.approx(accuracy)
    assert report["classes"] == ["no", "yes"]
    assert np.sum(report["confusion_matrix"]) == 60
    assert {r["class"] for r in report["per_class"]} == {"no", "yes"}

    text = run("evaluate", "cls.safetensors", "test.csv", "--target", "label", cwd=work).stdout
    assert "accuracy" in text and "precision" in text and "Confusion matrix" in text


def test_classification_round_trip_parquet_with_json_summary(work):
    proc = run(
        "train", "train.parquet", "--target", "label", "--ignore", "id,price", "--hidden", "16,8", "--epochs", "30",
        "--json", "--out", "pq.safetensors", cwd=work,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["layer_sizes"] == [5, 16, 8, 2] and summary["epochs"] == 30
    assert summary["inputs"] == ["x1", "x2", "colour=blue", "colour=green", "colour=red"]
    assert summary["classes"] == ["no", "yes"] and summary["val_accuracy"] > 0.8
    assert summary["model"] == "pq.safetensors" and (work / "pq.safetensors").exists()
    run("predict", "pq.safetensors", "test.parquet", "--proba", "--out", "p.parquet", cwd=work)
    table = pq.read_table(work / "p.parquet").to_pydict()
    assert set(table) == {"prediction", "proba_no", "proba_yes"} and len(table["prediction"]) == 60
    report = json.loads(run("evaluate", "pq.safetensors", "test.parquet", "--json", cwd=work).stdout)
    assert report["accuracy"] > 0.8


def test_regression_round_trip(work):
    proc = run(
        "train", "train.parquet", "--target", "price", "--ignore", "id,label", "--epochs", "60", "--json",
        "--out", "reg.safetensors", cwd=work,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["task"] == "regression" and summary["classes"] is None and summary["accuracy"] is None
    preds = read_csv_text(run("predict", "reg.safetensors", "test.csv", cwd=work).stdout)
    truth = [float(r["price"]) for r in csv.DictReader(open(work / "test.csv"))]
    err = np.abs(np.array([float(p["prediction"]) for p in preds]) - truth)
    assert np.mean(err) < 1.0  # in the target's units: the model undoes its target scaling
    report = json.loads(run("evaluate", "reg.safetensors", "test.parquet", "--json", cwd=work).stdout)
    assert report["task"] == "regression" and report["r2"] > 0.9
    assert report["mae"] == pytest.approx(np.mean(err), rel=1e-3)
    text = run("evaluate", "reg.safetensors", "test.csv", cwd=work).stdout
    assert "MSE" in text and "R²" in text
    proc = run("predict", "reg.safetensors", "test.csv", "--proba", cwd=work, ok=False)
    assert_user_error(proc, "--proba needs a classifier")


def test_predict_matches_columns_by_name(work):
    cols = _classification_rows(60, seed=1)
    shuffled = {"colour": cols["colour"], "note": ["x"] * 60, "x2": cols["x2"], "x1": cols["x1"]}
    _write_csv(work / "shuffled.csv", shuffled)
    a = run("predict", "cls.safetensors", "test.csv", cwd=work).stdout
    b = run("predict", "cls.safetensors", "shuffled.csv", cwd=work).stdout
    assert a == b


def test_unseen_category_is_all_zero_with_a_note(work):
    cols = _classification_rows(5, seed=2)
    cols["colour"] = np.array(["purple"] * 5)
    _write_csv(work / "purple.csv", cols)
    proc = run("predict", "cls.safetensors", "purple.csv", cwd=work)
    assert len(read_csv_text(proc.stdout)) == 5
    assert "'purple'" in proc.stderr and "all zero" in proc.stderr


def test_npy_and_npz(work):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    np.save(work / "xor.npy", np.column_stack([X, y]))  # the target is the last column
    np.savez(work / "xor.npz", X=X, y=y)
    s1 = json.loads(run("train", "xor.npy", "--epochs", "5", "--json", "--out", "npy.safetensors", cwd=work).stdout)
    assert s1["targets"] == ["2"] and s1["task"] == "classification" and s1["inputs"] == ["0", "1"]
    s2 = json.loads(run("train", "xor.npz", "--epochs", "5", "--json", "--out", "npz.safetensors", cwd=work).stdout)
    assert s2["targets"] == ["y"] and s2["classes"] == [0, 1]
    preds = read_csv_text(run("predict", "npz.safetensors", "xor.npz", cwd=work).stdout)
    assert len(preds) == 120 and {p["prediction"] for p in preds} <= {"0", "1"}
    report = json.loads(run("evaluate", "npy.safetensors", "xor.npy", "--json", cwd=work).stdout)
    assert report["n_examples"] == 120


def test_models_saved_from_python_take_their_columns_in_order(tmp_path):
    import deltaprop

    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 2))
    y = (X.sum(axis=1) > 0).astype(np.int64)
    net = deltaprop.MLP([2, 4, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=30, verbose=0)
    net.save(tmp_path / "py.safetensors")
    _write_csv(tmp_path / "xy.csv", {"a": X[:, 0], "b": X[:, 1], "y": y})
    _write_csv(tmp_path / "x.csv", {"a": X[:, 0], "b": X[:, 1]})
    preds = read_csv_text(run("predict", "py.safetensors", "x.csv", cwd=tmp_path).stdout)
    assert [int(p["prediction"]) for p in preds] == net.predict(X).tolist()
    report = json.loads(run("evaluate", "py.safetensors", "xy.csv", "--target", "y", "--json", cwd=tmp_path).stdout)
    assert report["accuracy"] == pytest.approx(net.score(X, y))
    proc = run("predict", "py.safetensors", "xy.csv", cwd=tmp_path, ok=False)
    assert_user_error(proc, "saved without column names", "exactly its 2 input column(s)")
    text = run("trace", "py.safetensors", "--input", "0.5,-0.2", "--target", "1", cwd=tmp_path).stdout
    assert "target: class '1'" in text and "inputs: i1 = 0.5, i2 = -0.2" in text


# ----------------------------------------------------------------------------------------- the digits
def test_no_data_trains_on_the_built_in_digits(tmp_path):
    proc = run("train", "--epochs", "3", "--json", cwd=tmp_path)
    summary = json.loads(proc.stdout)
    assert summary["data"] == "built-in dataset 'digits'" and summary["layer_sizes"] == [64, 64, 10]
    assert summary["val_accuracy"] > 0.85
    assert summary["model"] == "model.safetensors" and (tmp_path / "model.safetensors").exists()
    assert "epoch 3" in proc.stderr  # a line per epoch on stderr when it is not a terminal
    text = run("train", "--dataset", "moons", "--epochs", "2", "--out", "moons.safetensors", cwd=tmp_path).stdout
    for field in ("Training summary", "epochs", "stopped", "loss", "val loss", "val accuracy", "time", "model"):
        assert field in text


def test_early_stopping_batch_and_optimizer_options(work):
    proc = run(
        "train", "train.csv", "--target", "label", "--ignore", "id,price", "--epochs", "200", "--patience", "3",
        "--batch-size", "full", "--optimizer", "sgd", "--lr", "0.05", "--validation-split", "0.25", "--json",
        "--out", "early.safetensors", cwd=work,
    )  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["epochs"] <= 200 and summary["stop_reason"]


def test_checkpoint_and_resume_continue_the_same_run(work):
    common = ["train", "train.csv", "--target", "label", "--ignore", "id,price", "--quiet", "--json"]
    straight = json.loads(run(*common, "--epochs", "6", "--out", "straight.safetensors", cwd=work).stdout)
    run(*common, "--epochs", "3", "--checkpoint", "run.ckpt", "--out", "half.safetensors", cwd=work)
    assert (work / "run.ckpt").exists()
    proc = run(*common, "--checkpoint", "run.ckpt", cwd=work, ok=False)
    assert_user_error(proc, "run.ckpt already exists", "--force")
    resumed = json.loads(
        run(
            *common, "--epochs", "6", "--resume", "run.ckpt", "--checkpoint", "run.ckpt",
            "--out", "resumed.safetensors", cwd=work,
        ).stdout
    )  # fmt: skip
    assert resumed["epochs"] == 6
    assert resumed["loss"] == straight["loss"] and resumed["val_loss"] == straight["val_loss"]


# ------------------------------------------------------------------------------------------------ trace
def test_trace_of_the_users_own_network(work):
    text = run("trace", "cls.safetensors", "--input", "0.5,51,red", "--target", "yes", cwd=work).stdout
    assert "i1 = x1: (0.5" in text and "colour one-hot" in text
    assert "target: class 'yes'" in text
    for part in ("Step 1", "Step 2", "Step 3", "E_total"):
        assert part in text
    payload = json.loads(
        run("trace", "cls.safetensors", "--input", "0.5,51,red", "--target", "yes", "--json", cwd=work).stdout
    )
    assert payload["raw_input"] == {"x1": "0.5", "x2": "51", "colour": "red"}
    assert payload["target_o1"] == 0.0 and payload["target_o2"] == 1.0
    assert payload["lr"] == 0.5 and payload["E_total_new"] < payload["E_total"]
    full = run("trace", "cls.safetensors", "--input", "0.5,51,red", "--target", "yes", "--full", cwd=work).stdout
    assert "w1" in full and len(full) > len(text)


def test_trace_regression_and_the_tiny_worked_network(tmp_path):
    # the seed's 2-2-2 example as data: trace of a small regression network shows every weight
    rows = {"i1": [0.05, 0.10, 0.2, 0.3], "i2": [0.10, 0.05, 0.4, 0.1], "t1": [0.01, 0.2, 0.3, 0.5]}
    _write_csv(tmp_path / "tiny.csv", rows)
    run("train", "tiny.csv", "--target", "t1", "--hidden", "2", "--activation", "sigmoid", "--epochs", "2",
        "--quiet", cwd=tmp_path)  # fmt: skip
    text = run("trace", "model.safetensors", "--input", "0.05,0.10", "--target", "0.01", cwd=tmp_path).stdout
    assert "standardised as in training" in text and "w1" in text and "w6" in text


# ----------------------------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def bad_files(work):
    (work / "notes.txt").write_text("hello")
    (work / "broken.parquet").write_bytes(b"not a parquet file")
    (work / "fake.safetensors").write_text("this is not a model")
    _write_csv(work / "one.csv", {"x": [1, 2, 3], "y": ["a", "a", "a"]})
    _write_csv(work / "wrong.csv", {"x1": [1.0], "colour": ["red"]})
    return work


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["train", "missing.csv", "--target", "y"], ["no such file: missing.csv"]),
        (["train", "notes.txt", "--target", "y"], ["cannot tell the format of notes.txt"]),
        (["train", "broken.parquet", "--target", "y"], ["cannot read broken.parquet as PARQUET"]),
        (["train", "train.csv", "--target", "species"], ["no column 'species'", "x1"]),
        (["train", "train.csv"], ["--target"]),
        (["train", "one.csv", "--target", "y"], ["only one value", "'a'"]),
        (["train", "train.csv", "--target", "label", "--hidden", "abc"], ["--hidden"]),
        (["train", "train.csv", "--target", "label", "--batch-size", "0"], ["--batch-size"]),
        (["train", "train.csv", "--target", "label", "--epochs", "0"], ["--epochs"]),
        (["train", "train.csv", "--target", "label", "--epochs", "many"], ["'many' is not a valid integer"]),
        (["train", "train.csv", "--target", "label", "--optimizer", "adamm"], ["unknown optimizer 'adamm'"]),
        (["train", "train.csv", "--target", "label", "--activation", "sigmod"], ["unknown activation 'sigmod'"]),
        (["train", "train.csv", "--target", "label", "--task", "clustering"], ["clustering"]),
        (["train", "train.csv", "--target", "label", "--ignore", "nope"], ["--ignore", "'nope'"]),
        (["train", "--dataset", "mnist"], ["unknown dataset 'mnist'"]),
        (["predict", "fake.safetensors", "test.csv"], ["fake.safetensors"]),
        (["predict", "missing.safetensors", "test.csv"], ["no such file: missing.safetensors"]),
        (["predict", "cls.safetensors", "wrong.csv"], ["lacks the column(s)", "x2"]),
        (["predict", "cls.safetensors", "test.csv", "--out", "p.json"], ["p.json"]),
        (["evaluate", "cls.safetensors", "test.csv", "--target", "nope"], ["no column 'nope'"]),
        (["evaluate", "cls.safetensors", "wrong.csv"], ["lacks the target column(s) 'label'", "--target"]),
        (["trace", "cls.safetensors", "--input", "1,2,red"], ["--target is required", "no, yes"]),
        (["trace", "cls.safetensors", "--input", "1,2", "--target", "yes"], ["expected 3 input value(s)"]),
        (["trace", "cls.safetensors", "--input", "1,2,red", "--target", "maybe"], ["one of the classes"]),
        (["datasets", "export", "nope", "x.csv"], ["unknown dataset 'nope'"]),
        (["demo", "three-layer"], ["three-layer"]),
        (["frobnicate"], ["No such command 'frobnicate'"]),
    ],
)
def test_errors_are_one_line_with_exit_status_2(bad_files, args, fragments):
    assert_user_error(run(*args, cwd=bad_files, ok=False), *fragments)


def test_debug_shows_the_traceback(bad_files):
    proc = run("--debug", "predict", "fake.safetensors", "test.csv", cwd=bad_files, ok=False)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "deltaprop: error:" in proc.stderr
    proc = run("predict", "fake.safetensors", "test.csv", "--debug", cwd=bad_files, ok=False)
    assert "Traceback" in proc.stderr


def test_main_without_click_names_the_extra(monkeypatch, capsys):
    from deltaprop.cli import main

    monkeypatch.setitem(sys.modules, "click", None)  # import click now raises ImportError
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "deltaprop[cli]"' in err


# -------------------------------------------------------------------------------------------- --force
def test_nothing_is_overwritten_without_force(work):
    (work / "keep.safetensors").write_text("precious")
    proc = run("train", "train.csv", "--target", "label", "--out", "keep.safetensors", cwd=work, ok=False)
    assert_user_error(proc, "keep.safetensors already exists", "--force")
    assert (work / "keep.safetensors").read_text() == "precious"
    run("train", "train.csv", "--target", "label", "--epochs", "1", "--quiet", "--out", "keep.safetensors",
        "--force", cwd=work)  # fmt: skip
    assert (work / "keep.safetensors").read_bytes()[:8] != b"precious"

    (work / "keep.csv").write_text("precious")
    proc = run("predict", "cls.safetensors", "test.csv", "--out", "keep.csv", cwd=work, ok=False)
    assert_user_error(proc, "keep.csv already exists", "--force")
    assert (work / "keep.csv").read_text() == "precious"
    run("predict", "cls.safetensors", "test.csv", "--out", "keep.csv", "--force", cwd=work)
    assert (work / "keep.csv").read_text().startswith("prediction\n")
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]  # no temporary files left behind


# ------------------------------------------------------------------------------------------- datasets
def test_datasets_list_and_export(tmp_path):
    text = run("datasets", cwd=tmp_path).stdout
    for name in ("digits", "moons", "xor", "two_spirals"):
        assert name in text
    listed = json.loads(run("datasets", "--json", cwd=tmp_path).stdout)
    assert {"name": "xor", "task": "classification", "shape": [4, 2]}.items() <= next(
        d for d in listed if d["name"] == "xor"
    ).items()

    run("datasets", "export", "moons", "moons.csv", cwd=tmp_path)
    assert (tmp_path / "moons.csv").read_text().splitlines()[0] == "x1,x2,target"
    assert_user_error(run("datasets", "export", "moons", "moons.csv", cwd=tmp_path, ok=False), "--force")
    run("datasets", "export", "moons", "moons.csv", "--force", cwd=tmp_path)
    run("datasets", "export", "xor", "xor.parquet", cwd=tmp_path)
    assert pq.read_table(tmp_path / "xor.parquet").column_names == ["x1", "x2", "target"]
    # an exported file trains with no --target: the column is called 'target'
    summary = json.loads(run("train", "moons.csv", "--epochs", "2", "--json", cwd=tmp_path).stdout)
    assert summary["targets"] == ["target"] and summary["task"] == "classification"


# ----------------------------------------------------------------------------------------------- plots
def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    run("datasets", "export", "moons", "moons.csv", cwd=tmp_path)
    proc = run("train", "moons.csv", "--epochs", "3", "--quiet", "--plot", "run.png", cwd=tmp_path)
    assert "run.png" in proc.stdout
    assert (tmp_path / "run.png").stat().st_size > 0 and (tmp_path / "run-regions.png").stat().st_size > 0
    run("plot", "regions", "model.safetensors", "moons.csv", "regions.png", cwd=tmp_path)
    run("plot", "loss", "model.safetensors", "loss.svg", cwd=tmp_path)
    run("plot", "network", "model.safetensors", "net.png", "--trace-input", "0.5,0.2", "--trace-target", "1",
        cwd=tmp_path)  # fmt: skip
    run("plot", "worked-example", "worked.png", cwd=tmp_path)
    run("plot", "one-weight", "descent.pdf", cwd=tmp_path)
    for name in ("regions.png", "loss.svg", "net.png", "worked.png", "descent.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    assert_user_error(run("plot", "one-weight", "descent.pdf", cwd=tmp_path, ok=False), "--force")
    # the second figure of --plot is checked before training too
    (tmp_path / "new-regions.png").write_text("precious")
    proc = run("train", "moons.csv", "--plot", "new.png", "--out", "m2.safetensors", cwd=tmp_path, ok=False)
    assert_user_error(proc, "new-regions.png already exists")
    assert not (tmp_path / "m2.safetensors").exists() and not (tmp_path / "new.png").exists()
    assert_user_error(run("plot", "one-weight", "descent.gif", cwd=tmp_path, ok=False), "image format")
