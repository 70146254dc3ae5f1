"""Tests of deltaprop.datasets: shapes, exact labels recomputed independently, geometry, determinism, the shipped
digits, export, and the argument checks."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
import os
import socket
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaprop import datasets as ds

NAMES = [
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
]
GENERATORS = {
    "two_spirals": {"noise": 0.2},
    "moons": {},
    "circles": {},
    "blobs": {},
}


# ------------------------------------------------------------------------------------------------ the catalogue


def test_available_lists_every_dataset_once_in_order():
    infos = ds.available()
    assert [info.name for info in infos] == NAMES
    for info in infos:
        assert isinstance(info, ds.DatasetInfo)
        assert info.description and "\n" not in info.description and len(info.description) < 100
        assert info.task in ("classification", "regression", "autoencoder")
        assert info.parameters == tuple(inspect.signature(getattr(ds, info.name)).parameters)
    assert set(NAMES) <= set(ds.__all__)


@pytest.mark.parametrize("name", NAMES)
def test_every_dataset_has_consistent_shapes_dtypes_and_labels(name):
    info = {i.name: i for i in ds.available()}[name]
    data = ds.load(name, **({"seed": 0} if "seed" in info.parameters else {}))
    X, y = data  # unpacks like a pair
    assert X is data.X and y is data.y
    assert data.name == name and data.task == info.task
    assert X.dtype == np.float64 and X.ndim == 2 and X.shape == info.shape
    assert np.isfinite(X).all()
    assert len(y) == len(X) == data.n_samples and data.n_features == X.shape[1]
    assert len(data.feature_names) == X.shape[1] and all(isinstance(f, str) for f in data.feature_names)
    assert data.description.strip()
    if data.task == "classification":
        assert y.dtype == np.int64 and y.shape == (len(X),)
        assert data.target_names is not None and data.n_classes == len(data.target_names)
        assert set(np.unique(y).tolist()) == set(range(data.n_classes)), "every class is present"
    else:
        assert y.dtype == np.float64 and y.ndim == 2 and np.isfinite(y).all()
        assert data.target_names is None and data.n_classes is None
    assert name in repr(data) and str(X.shape) in repr(data)


def test_load_accepts_hyphens_and_case():
    assert ds.load("Two-Spirals", n_samples=10).name == "two_spirals"


def test_load_rejects_an_unknown_name_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'spiralz'") as err:
        ds.load("spiralz")
    assert all(name in str(err.value) for name in NAMES)
    assert "two_spirals" in str(err.value)


def test_load_rejects_an_argument_the_dataset_does_not_take():
    with pytest.raises(ValueError, match="'xor' takes no arguments; got unknown argument"):
        ds.load("xor", n_bits=3)
    with pytest.raises(ValueError, match="takes n_samples, noise, seed, shuffle; got unknown argument.*n_bits"):
        ds.load("moons", n_bits=3)


def test_dataset_checks_what_it_is_given():
    with pytest.raises(ValueError, match="float64"):
        ds.Dataset(
            "bad", np.zeros((2, 1), dtype=np.float32), np.zeros(2, dtype=np.int64), "classification", "", ["x"], ["a"]
        )
    with pytest.raises(ValueError, match="one row per row"):
        ds.Dataset("bad", np.zeros((2, 1)), np.zeros(3, dtype=np.int64), "classification", "", ["x"], ["a"])
    with pytest.raises(ValueError, match="task"):
        ds.Dataset("bad", np.zeros((2, 1)), np.zeros((2, 1)), "ranking", "", ["x"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index target_names"):
        ds.Dataset("bad", np.zeros((2, 1)), np.array([0, 2]), "classification", "", ["x"], ["a", "b"])
    with pytest.raises(ValueError, match="2-D float64"):
        ds.Dataset("bad", np.zeros((2, 1)), np.zeros(2), "regression", "", ["x"])


# ------------------------------------------------------------------------------------------------ the exact problems


def test_worked_example_is_the_published_example():
    X, y = ds.worked_example()
    assert X.tolist() == [[0.05, 0.10]] and y.tolist() == [[0.01, 0.99]]
    assert ds.worked_example().feature_names == ["i1", "i2"]


def test_one_weight_error_is_least_at_w_equal_2():
    X, y = ds.one_weight()
    assert X.tolist() == [[0.0], [1.0], [2.0]] and y.tolist() == [[0.0], [2.0], [4.0]]
    ws = np.linspace(0.0, 4.0, 401)
    errors = [float(((w * X - y) ** 2).sum()) for w in ws]
    assert ws[int(np.argmin(errors))] == pytest.approx(2.0)
    assert errors[int(np.argmin(errors))] == 0.0


def test_xor_labels():
    X, y = ds.xor()
    assert X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y.tolist() == [int(a) ^ int(b) for a, b in X.tolist()]


@pytest.mark.parametrize("n_bits", [1, 2, 3, 5, 8])
def test_parity_is_every_pattern_labelled_by_its_parity(n_bits):
    X, y = ds.parity(n_bits)
    expected = list(itertools.product([0, 1], repeat=n_bits))  # binary counting order
    assert [tuple(int(v) for v in row) for row in X.tolist()] == expected
    assert y.tolist() == [sum(bits) % 2 for bits in expected]
    assert ds.parity(n_bits).target_names == ["even", "odd"]


@pytest.mark.parametrize("n_bits", [2, 3, 6, 7])
def test_mirror_symmetry_labels(n_bits):
    X, y = ds.mirror_symmetry(n_bits)
    patterns = [tuple(int(v) for v in row) for row in X.tolist()]
    assert sorted(patterns) == list(itertools.product([0, 1], repeat=n_bits))
    assert y.tolist() == [int(p == p[::-1]) for p in patterns]
    # a palindrome is fixed by its first ceil(n/2) bits
    assert int(y.sum()) == 2 ** math.ceil(n_bits / 2)


def test_mirror_symmetry_default_is_rumelhart_hinton_williams_64_patterns():
    X, y = ds.mirror_symmetry()
    assert X.shape == (64, 6) and int(y.sum()) == 8


@pytest.mark.parametrize("n", [2, 4, 8, 10])
def test_encoder_is_the_identity_both_ways(n):
    data = ds.encoder(n)
    assert data.task == "autoencoder"
    assert np.array_equal(data.X, np.eye(n)) and np.array_equal(data.y, np.eye(n))
    assert data.X is not data.y


# ------------------------------------------------------------------------------------------------ the generated ones


def _wieland_spirals():
    """The 1988 benchmark as mkspiral.c writes it: 97 points a spiral, spiral 1 then its mirror image."""
    rows = []
    for i in range(97):
        angle = i * math.pi / 16.0
        radius = 6.5 * (104 - i) / 104.0
        x, y = radius * math.sin(angle), radius * math.cos(angle)
        rows += [(x, y, 1), (-x, -y, 0)]
    return rows


def test_two_spirals_194_is_the_original_benchmark():
    X, y = ds.two_spirals(194)
    expected = _wieland_spirals()
    np.testing.assert_allclose(X, [[a, b] for a, b, _ in expected], rtol=0, atol=1e-12)
    assert y.tolist() == [c for _, _, c in expected]


@pytest.mark.parametrize("n", [2, 3, 10, 200, 301])
def test_two_spirals_geometry(n):
    X, y = ds.two_spirals(n)
    counts = np.bincount(y, minlength=2)
    assert counts.sum() == n and abs(int(counts[0]) - int(counts[1])) <= 1
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() == pytest.approx(6.5) and radius.min() >= 0.5 - 1e-12
    first = X[y == 1]
    # the radius shrinks along a spiral, and each point of spiral 0 mirrors one of spiral 1
    assert np.all(np.diff(np.hypot(first[:, 0], first[:, 1])) < 0) or len(first) == 1
    np.testing.assert_array_equal(X[y == 0], -first[: int(counts[0])])


def test_two_spirals_without_noise_needs_no_seed():
    a, b = ds.two_spirals(), ds.two_spirals(seed=5)
    assert np.array_equal(a.X, b.X)


def test_moons_geometry_without_noise():
    X, y = ds.moons(201, noise=0.0, seed=0)
    assert np.bincount(y).tolist() == [100, 101]
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert (upper[:, 1] >= -1e-12).all() and (lower[:, 1] <= 0.5 + 1e-12).all()


def test_moons_noise_has_the_requested_spread():
    clean = ds.moons(4000, noise=0.0, seed=3)
    noisy = ds.moons(4000, noise=0.1, seed=3)
    assert np.array_equal(clean.y, noisy.y)  # the same shuffle, then noise
    assert np.std(noisy.X - clean.X) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("factor", [0.0, 0.3, 0.5, 0.8])
def test_circles_radii_and_balance(factor):
    X, y = ds.circles(100, noise=0.0, factor=factor, seed=1)
    assert np.bincount(y).tolist() == [50, 50]
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], factor, atol=1e-12)


def test_circles_with_noise_keep_the_inner_radius_near_factor():
    X, y = ds.circles(2000, noise=0.05, factor=0.5, seed=2)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert np.median(radius[y == 1]) == pytest.approx(0.5, abs=0.02)
    assert np.median(radius[y == 0]) == pytest.approx(1.0, abs=0.02)


def test_blobs_share_out_the_samples_and_sit_on_their_centres():
    centres = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 2.0]])
    X, y = ds.blobs(2001, centers=centres, cluster_std=0.5, seed=4)
    assert X.shape == (2001, 3) and np.bincount(y).tolist() == [1001, 1000]
    for k, centre in enumerate(centres):
        np.testing.assert_allclose(X[y == k].mean(axis=0), centre, atol=0.1)
        assert X[y == k].std(axis=0) == pytest.approx([0.5] * 3, rel=0.1)


def test_blobs_default_centres_lie_in_the_box():
    X, y = ds.blobs(3000, centers=5, n_features=4, cluster_std=0.1, seed=0)
    assert X.shape == (3000, 4) and np.bincount(y).tolist() == [600] * 5
    means = np.array([X[y == k].mean(axis=0) for k in range(5)])
    assert (np.abs(means) < 10.0 + 0.05).all()
    assert ds.blobs(7, centers=3, seed=0).y.tolist().count(0) == 3  # the first n % k clusters get one more


@pytest.mark.parametrize("name", ["moons", "circles", "blobs"])
def test_shuffle_only_reorders(name):
    kwargs = {"noise": 0.0} if name != "blobs" else {"centers": [[0.0, 0.0], [3.0, 3.0]], "cluster_std": 0.0}
    ordered = ds.load(name, shuffle=False, seed=0, **kwargs)
    shuffled = ds.load(name, shuffle=True, seed=0, **kwargs)
    assert not np.array_equal(ordered.y, shuffled.y)
    key = np.lexsort
    a = np.column_stack([ordered.X, ordered.y])
    b = np.column_stack([shuffled.X, shuffled.y])
    assert np.array_equal(a[key(a.T)], b[key(b.T)])


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_bits_other_seed_other_data(name):
    kwargs = GENERATORS[name]
    a, b, c = (ds.load(name, seed=s, **kwargs) for s in (7, 7, 8))
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes()
    assert a.X.tobytes() != c.X.tobytes()
    assert ds.load(name, seed=None, **kwargs).X.shape == a.X.shape


def test_randomness_comes_only_from_the_seeded_generator():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    for name, kwargs in GENERATORS.items():
        ds.load(name, seed=1, **kwargs)
    assert np.array_equal(np.random.get_state()[1], before), "the global NumPy generator was used"
    gen = np.random.default_rng(11)
    assert np.array_equal(ds.moons(seed=gen).X, ds.moons(seed=np.random.default_rng(11)).X)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["two_spirals", "moons", "circles"]),
    n=st.integers(2, 400),
    noise=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_generated_sizes_are_exact_and_balanced(name, n, noise, seed):
    X, y = ds.load(name, n_samples=n, noise=noise, seed=seed)
    assert X.shape == (n, 2) and y.shape == (n,)
    counts = np.bincount(y, minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) <= 1 and np.isfinite(X).all()


# ------------------------------------------------------------------------------------------------ the digits

# Computed once from sklearn/datasets/data/digits.csv.gz in the scikit-learn 1.9.1 wheel (the file's sha256 is
# 09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22), read as sklearn's load_digits reads it:
# np.loadtxt(..., delimiter=","), the last column the label. The hashes are of the C-order uint8 bytes.
DIGITS_X_SUM = 561718
DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
DIGITS_X_SHA256 = "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
DIGITS_Y_SHA256 = "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0"
DIGITS_FIRST_ROW = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8]


def test_digits_shape_values_and_checksums():
    data = ds.digits()
    X, y = data
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and np.array_equal(X, np.round(X))
    assert int(X.sum()) == DIGITS_X_SUM
    assert np.bincount(y).tolist() == DIGITS_CLASS_COUNTS
    assert hashlib.sha256(X.astype(np.uint8).tobytes()).hexdigest() == DIGITS_X_SHA256
    assert hashlib.sha256(y.astype(np.uint8).tobytes()).hexdigest() == DIGITS_Y_SHA256
    assert X[0, :30].tolist() == DIGITS_FIRST_ROW and y[:10].tolist() == list(range(10))
    assert data.feature_names[:2] == ["pixel_0_0", "pixel_0_1"] and data.feature_names[-1] == "pixel_7_7"
    assert data.target_names == [str(k) for k in range(10)]
    assert "Alpaydin" in data.description and "CC BY 4.0" in data.description and "10.24432/C50P49" in data.description
    assert "CC BY 4.0" in (ds.digits.__doc__ or "")


def test_digits_file_is_plain_uint8_arrays():
    path = os.path.join(os.path.dirname(ds.__file__), "data", "digits.npz")
    assert os.path.getsize(path) < 100_000
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["X", "y"]
        assert npz["X"].dtype == np.uint8 and npz["y"].dtype == np.uint8


def test_digits_are_fresh_arrays_and_need_no_network(monkeypatch):
    first = ds.digits()
    first.X[:] = -1
    first.y[:] = 99

    def no_network(*args, **kwargs):
        raise AssertionError("datasets must never open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds._digits_arrays.cache_clear()
    again = ds.digits()
    assert int(again.X.sum()) == DIGITS_X_SUM and np.bincount(again.y).tolist() == DIGITS_CLASS_COUNTS


def test_digits_equal_scikit_learn_when_it_is_installed():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    theirs = sklearn_datasets.load_digits()
    ours = ds.digits()
    assert np.array_equal(ours.X, theirs.data) and np.array_equal(ours.y, theirs.target)
    assert ours.feature_names == list(theirs.feature_names)


@pytest.mark.parametrize("n", [2, 5, 200])
def test_moons_and_circles_equal_scikit_learn_when_it_is_installed(n):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = sklearn_datasets.make_moons(n, noise=None, shuffle=False)
    ours = ds.moons(n, noise=0.0, shuffle=False)
    assert np.array_equal(ours.X, X) and np.array_equal(ours.y, y)
    X, y = sklearn_datasets.make_circles(n, noise=None, factor=0.3, shuffle=False)
    ours = ds.circles(n, noise=0.0, factor=0.3, shuffle=False)
    assert np.array_equal(ours.X, X) and np.array_equal(ours.y, y)


# ------------------------------------------------------------------------------------------------ export


def _read_csv(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split(","), np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def test_export_csv_round_trip_classification(tmp_path):
    out = ds.export("moons", tmp_path / "moons.csv", n_samples=50, seed=3)
    assert out == tmp_path / "moons.csv"
    header, table = _read_csv(out)
    data = ds.moons(n_samples=50, seed=3)
    assert header == ["x1", "x2", "target"]
    assert np.array_equal(table[:, :2], data.X), "floats read back exactly"
    assert np.array_equal(table[:, 2].astype(np.int64), data.y)


def test_export_csv_multi_column_targets(tmp_path):
    out = ds.export("worked_example", tmp_path / "w.CSV")
    assert out.read_text() == "i1,i2,target_0,target_1\n0.05,0.1,0.01,0.99\n"
    header, table = _read_csv(ds.export("encoder", tmp_path / "e.csv", n=4))
    assert header == ["x1", "x2", "x3", "x4"] + [f"target_{k}" for k in range(4)]
    assert np.array_equal(table, np.hstack([np.eye(4), np.eye(4)]))


def test_export_digits_csv_writes_integers(tmp_path):
    out = ds.export("digits", tmp_path / "digits.csv")
    lines = out.read_text().splitlines()
    assert len(lines) == 1798 and lines[0].startswith("pixel_0_0,") and lines[0].endswith(",pixel_7_7,target")
    assert lines[1] == ",".join(str(v) for v in ds.digits().X[0].astype(int).tolist()) + ",0"


def test_export_npz_round_trip(tmp_path):
    out = ds.export("two_spirals", tmp_path / "s.npz", n_samples=31, noise=0.1, seed=9)
    data = ds.two_spirals(n_samples=31, noise=0.1, seed=9)
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["X", "y"]
        assert np.array_equal(npz["X"], data.X) and np.array_equal(npz["y"], data.y)
        assert npz["y"].dtype == np.int64
    given_dataset = ds.export(ds.worked_example(), tmp_path / "w.npz")
    with np.load(given_dataset, allow_pickle=False) as npz:
        assert npz["y"].tolist() == [[0.01, 0.99]]


def test_export_refuses_to_overwrite(tmp_path):
    path = tmp_path / "xor.csv"
    path.write_text("keep me\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ds.export("xor", path)
    assert path.read_text() == "keep me\n"
    ds.export("xor", path, overwrite=True)
    assert path.read_text().splitlines()[0] == "x1,x2,target"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xor.csv"], "no temporary file is left behind"


def test_export_does_not_clobber_a_file_that_appears_while_writing(tmp_path, monkeypatch):
    path = tmp_path / "xor.csv"
    real = ds._csv_bytes

    def racing_writer(data):
        path.write_text("written by someone else\n")  # another process wins the race
        return real(data)

    monkeypatch.setattr(ds, "_csv_bytes", racing_writer)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ds.export("xor", path)
    assert path.read_text() == "written by someone else\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xor.csv"]


def test_export_works_where_hard_links_are_not_supported(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError("hard links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    out = ds.export("xor", tmp_path / "x.npz")
    with np.load(out, allow_pickle=False) as npz:
        assert npz["y"].tolist() == [0, 1, 1, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_export_into_a_new_file_leaves_no_temporary_file(tmp_path):
    ds.export("xor", tmp_path / "a.npz")
    ds.export("parity", tmp_path / "b.csv", n_bits=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.csv"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_export_gives_the_file_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        out = ds.export("xor", tmp_path / "x.csv")
    finally:
        os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".json", ""])
def test_export_rejects_other_formats(tmp_path, suffix):
    with pytest.raises(ValueError, match=r"supported formats are \.csv, \.npz"):
        ds.export("xor", tmp_path / f"xor{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_export_passes_arguments_only_with_a_name(tmp_path):
    with pytest.raises(ValueError, match="only when a dataset is given by name"):
        ds.export(ds.xor(), tmp_path / "x.csv", seed=1)
    with pytest.raises(ValueError, match="unknown dataset"):
        ds.export("nope", tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ bad arguments

BAD_VALUES = [
    (ds.parity, {"n_bits": 0}, "n_bits"),
    (ds.parity, {"n_bits": 21}, "n_bits"),
    (ds.mirror_symmetry, {"n_bits": 1}, "n_bits"),
    (ds.encoder, {"n": 1}, "n must"),
    (ds.encoder, {"n": 5000}, "n must"),
    (ds.two_spirals, {"n_samples": 0}, "n_samples"),
    (ds.two_spirals, {"noise": -0.1}, "noise"),
    (ds.moons, {"n_samples": -5}, "n_samples"),
    (ds.moons, {"noise": -1.0}, "noise"),
    (ds.moons, {"noise": float("nan")}, "noise"),
    (ds.circles, {"n_samples": 1}, "n_samples"),
    (ds.circles, {"factor": 1.0}, "factor"),
    (ds.circles, {"factor": -0.1}, "factor"),
    (ds.circles, {"noise": float("inf")}, "noise"),
    (ds.blobs, {"n_samples": 0}, "n_samples"),
    (ds.blobs, {"centers": 0}, "centers"),
    (ds.blobs, {"n_features": 0}, "n_features"),
    (ds.blobs, {"cluster_std": -1.0}, "cluster_std"),
    (ds.blobs, {"n_samples": 2, "centers": 3}, "n_samples"),
    (ds.blobs, {"centers": [1.0, 2.0]}, "centers"),
]


@pytest.mark.parametrize(("function", "kwargs", "argument"), BAD_VALUES)
def test_bad_values_raise_value_error_naming_the_argument_and_range(function, kwargs, argument):
    with pytest.raises(ValueError, match=argument) as err:
        function(**kwargs)
    assert any(s in str(err.value) for s in (">=", "in [", "2-D")), "the message gives the expected range"


@pytest.mark.parametrize(
    ("function", "kwargs"),
    [
        (ds.moons, {"n_samples": 2.5}),
        (ds.moons, {"n_samples": True}),
        (ds.parity, {"n_bits": "3"}),
        (ds.circles, {"noise": "0.1"}),
        (ds.blobs, {"centers": "three"}),
    ],
)
def test_wrong_types_raise_type_error(function, kwargs):
    with pytest.raises(TypeError):
        function(**kwargs)


def test_numpy_integers_are_accepted():
    assert ds.parity(np.int64(4)).X.shape == (16, 4)
    assert ds.moons(np.int32(10), noise=np.float32(0.1), seed=0).X.shape == (10, 2)
