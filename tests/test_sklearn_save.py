"""Saving scikit-learn estimators: MLPClassifier.save / MLPRegressor.save and deltaprop.load, without pickle."""

from __future__ import annotations

import copy
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402

import deltaprop  # noqa: E402
from deltaprop import MLP, Network, safefile  # noqa: E402
from deltaprop.activations import get_activation  # noqa: E402
from deltaprop.backend import MissingExtraError  # noqa: E402
from deltaprop.callbacks import Callback  # noqa: E402
from deltaprop.io import ModelFileError  # noqa: E402
from deltaprop.optim import Adam  # noqa: E402
from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

KEY = "sklearn_estimator"


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def round_trip(est, tmp_path, name="m.safetensors"):
    path = tmp_path / name
    est.save(path)
    return deltaprop.load(path)


def data(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d))


def assert_same_fitted(a, b, *, same_times=True):
    assert type(a) is type(b)
    for attr in ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_", "n_iter_", "t_", "best_loss_"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.loss_curve_ == b.loss_curve_
    assert a.validation_scores_ == b.validation_scores_
    assert a.best_validation_score_ == b.best_validation_score_
    if same_times:
        assert a.history_ == b.history_
    else:  # epochs run after loading took their own wall-clock time
        assert {**a.history_.to_dict(), "time": None} == {**b.history_.to_dict(), "time": None}
    assert a.network_.get_config() == b.network_.get_config()
    assert np.array_equal(a.network_.theta, b.network_.theta)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(x, y) and x.dtype == y.dtype
    assert a.get_params() == b.get_params()


# --------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "eel"]),  # strings, multiclass
        np.array([3, 7, 11]),  # integers
        np.array(["no", "yes"]),  # binary: one sigmoid output
        np.array([False, True]),  # booleans
        np.array([-1.0, 2.0]),  # floats
    ],
)
def test_classifier_round_trip(tmp_path, labels):
    X = data()
    y = labels[np.arange(len(X)) % len(labels)]
    clf = quiet(MLPClassifier((8, 5), activation="tanh", max_iter=5, random_state=0).fit, X, y)
    back = round_trip(clf, tmp_path)
    assert_same_fitted(clf, back)
    assert back.classes_.tolist() == clf.classes_.tolist() and back.classes_.dtype == clf.classes_.dtype
    assert np.array_equal(back.predict(X), clf.predict(X))
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.score(X, y) == clf.score(X, y)
    assert back.get_params()["hidden_layer_sizes"] == (8, 5)  # tuples stay tuples


def test_binary_softmax_and_multilabel_round_trip(tmp_path):
    X = data()
    y = np.array(["a", "b"])[np.arange(60) % 2]
    clf = quiet(MLPClassifier((6,), output_activation="softmax", max_iter=3, random_state=1).fit, X, y)
    assert clf.n_outputs_ == 2
    back = round_trip(clf, tmp_path)
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))

    Y = (data(seed=1)[:, :3] > 0).astype(int)
    ml = quiet(MLPClassifier((6,), max_iter=3, random_state=0).fit, X, Y)
    back = round_trip(ml, tmp_path, "ml")
    assert back._multilabel and back.classes_.tolist() == [0, 1, 2]
    assert np.array_equal(back.predict(X), ml.predict(X))
    assert np.array_equal(back.predict_proba(X), ml.predict_proba(X))
    assert back.score(X, Y) == ml.score(X, Y)


@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_round_trip(tmp_path, n_targets):
    X = data()
    y = X[:, :n_targets] * 2.0 - 1.0
    y = y.ravel() if n_targets == 1 else y
    reg = quiet(MLPRegressor((7,), max_iter=4, random_state=0, dtype="float64").fit, X, y)
    back = round_trip(reg, tmp_path)
    assert_same_fitted(reg, back)
    assert np.array_equal(back.predict(X), reg.predict(X))
    assert back.score(X, y) == reg.score(X, y)
    assert back.network_.classes is None


def test_dataframe_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(data(), columns=["alpha", "beta", "gamma", "delta"])
    y = np.where(X["alpha"] > 0, "hi", "lo")
    clf = quiet(MLPClassifier((5,), max_iter=3, random_state=0).fit, X, y)
    back = round_trip(clf, tmp_path)
    assert back.feature_names_in_.tolist() == ["alpha", "beta", "gamma", "delta"]
    assert back.feature_names_in_.dtype == object
    assert np.array_equal(back.predict(X), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):  # scikit-learn's own check still applies
        back.predict(X[["beta", "alpha", "gamma", "delta"]])


def test_early_stopping_state_round_trip(tmp_path):
    X = data(80)
    y = (X[:, 0] > 0).astype(int)
    clf = quiet(MLPClassifier((5,), early_stopping=True, max_iter=6, random_state=0).fit, X, y)
    back = round_trip(clf, tmp_path)
    assert_same_fitted(clf, back)
    assert back.best_loss_ is None and back.validation_scores_ == clf.validation_scores_
    assert np.array_equal(back._best_theta, clf._best_theta)


# ------------------------------------------------------------------------------------------ continuing
@pytest.mark.parametrize(
    "params",
    [
        {},  # adam
        {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.5},
        {"optimizer": "rmsprop"},
        {"optimizer": {"name": "adamw", "lr": 0.01, "betas": (0.8, 0.9)}},
    ],
)
def test_partial_fit_continues_identically(tmp_path, params):
    X = data()
    y = np.array(["a", "b", "c"])[np.arange(60) % 3]
    clf = MLPClassifier((6,), random_state=0, **params)
    for _ in range(3):
        clf.partial_fit(X, y, classes=["a", "b", "c"])
    back = round_trip(clf, tmp_path)
    assert back.get_params() == clf.get_params()
    for _ in range(2):
        clf.partial_fit(X, y)
        back.partial_fit(X, y)
    assert_same_fitted(clf, back, same_times=False)
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_regressor_continues_after_fit(tmp_path):
    X = data()
    y = X @ np.array([1.0, -1.0, 0.5, 0.0])
    reg = quiet(MLPRegressor((5,), max_iter=3, random_state=0).fit, X, y)
    back = round_trip(reg, tmp_path)
    reg.partial_fit(X, y)
    back.partial_fit(X, y)
    assert_same_fitted(reg, back, same_times=False)


def test_objects_are_dropped_or_converted(tmp_path):
    X = data()
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier(
        (4,),
        activation=get_activation("tanh"),
        optimizer=Adam(lr=0.01),
        callbacks=[Callback()],
        random_state=np.random.RandomState(0),
        dtype=np.float64,
    )
    clf.partial_fit(X, y, classes=[0, 1])
    path = tmp_path / "m"
    clf.save(path)
    saved = safefile.read(path)[1]["metadata"][KEY]
    assert sorted(saved["dropped_params"]) == ["callbacks", "optimizer", "random_state"]
    assert sorted(saved["converted_params"]) == ["activation", "dtype"]
    back = deltaprop.load(path)
    params = back.get_params()
    assert params["callbacks"] is None and params["optimizer"] is None and params["random_state"] is None
    assert params["activation"] == {"name": "tanh"} and params["dtype"] == "float64"
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))
    # partial_fit continues with the saved optimiser (Adam, lr=0.01, and its moments), not the solver's
    assert back._optimizer.inner.get_config() == clf._optimizer.inner.get_config()
    for key in ("m", "v"):
        assert np.array_equal(back._opt_state[key], clf._opt_state[key])
    back.partial_fit(X, y)


def test_save_leaves_the_network_alone_and_load_strips_the_estimator(tmp_path):
    X = data()
    clf = quiet(MLPClassifier((4,), max_iter=2, random_state=0).fit, X, X[:, 0] > 0)
    clf.network_.metadata = {"note": "mine"}
    clf.network_.extra_arrays = {"scale": np.arange(3.0)}
    path = tmp_path / "m"
    clf.save(path)
    assert clf.network_.metadata == {"note": "mine"} and list(clf.network_.extra_arrays) == ["scale"]
    back = deltaprop.load(path)
    assert back.network_.metadata == {"note": "mine"} and list(back.network_.extra_arrays) == ["scale"]
    net = deltaprop.io.load(path, as_network=True)  # the network, as stored, for code that only predicts
    assert isinstance(net, Network) and KEY in net.metadata
    assert np.array_equal(net.predict(X), clf.predict(X))


def test_saving_unfitted_raises(tmp_path):
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError):
            est.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_plain_network_still_loads_as_a_network(tmp_path):
    net = MLP([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    net.save(tmp_path / "n")
    back = deltaprop.load(tmp_path / "n")
    assert type(back) is Network or isinstance(back, Network)
    assert np.array_equal(back.theta, net.theta)


def test_missing_sklearn_names_the_extra(tmp_path, monkeypatch):
    clf = quiet(MLPClassifier((3,), max_iter=1, random_state=0).fit, data(), np.arange(60) % 2)
    clf.save(tmp_path / "est")
    MLP([2, 2], seed=0).save(tmp_path / "net")
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingExtraError, match=r'pip install "deltaprop\[sklearn\]"'):
        deltaprop.load(tmp_path / "est")
    assert isinstance(deltaprop.load(tmp_path / "net"), Network)  # plain networks never need scikit-learn
    assert isinstance(deltaprop.io.load(tmp_path / "est", as_network=True), Network)


# ----------------------------------------------------------------------------------------- bad files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(tensors, metadata) of a saved classifier, continued by partial_fit (so it has optimiser state)."""
    X = data()
    clf = MLPClassifier((4,), random_state=0)
    clf.partial_fit(X, np.array(["x", "y", "z"])[np.arange(60) % 3], classes=["x", "y", "z"])
    path = tmp_path_factory.mktemp("saved") / "m"
    clf.save(path)
    return safefile.read(path)


def _set(path_keys, value):
    def edit(tensors, meta):
        d = meta["metadata"][KEY]
        for k in path_keys[:-1]:
            d = d[k]
        d[path_keys[-1]] = value

    return edit


def _delete(*path_keys):
    def edit(tensors, meta):
        d = meta["metadata"][KEY]
        for k in path_keys[:-1]:
            d = d[k]
        del d[path_keys[-1]]

    return edit


def _tensor(name, fn):
    def edit(tensors, meta):
        tensors[name] = fn(tensors[name])

    return edit


TAMPERED = {
    "not an object": lambda t, m: m["metadata"].__setitem__(KEY, [1, 2]),
    "unknown class": _set(["class"], "os.system"),
    "class of wrong type": _set(["class"], ["MLPClassifier"]),
    "newer format": _set(["format_version"], 99),
    "format not an int": _set(["format_version"], "1"),
    "missing params key": _delete("params", "alpha"),
    "unknown param": _set(["params", "evil"], 1),
    "params not an object": _set(["params"], "alpha=1"),
    "rejected alpha": _set(["params", "alpha"], -1.0),
    "alpha of wrong type": _set(["params", "alpha"], "big"),
    "rejected solver": _set(["params", "solver"], "lbfgs"),
    "hidden sizes of wrong type": _set(["params", "hidden_layer_sizes"], "abc"),
    "unknown activation": _set(["params", "activation"], "nope"),
    "unknown loss": _set(["params", "loss"], "nope"),
    "unknown optimizer": _set(["params", "optimizer"], "nope"),
    "bad tuple tag": _set(["params", "hidden_layer_sizes"], {"__tuple__": 4, "x": 1}),
    "dropped param not null": _set(["dropped_params"], ["alpha"]),
    "dropped params not names": _set(["dropped_params"], ["nope"]),
    "missing fitted key": _delete("fitted", "t_"),
    "n_features wrong": _set(["fitted", "n_features_in_"], 5),
    "n_iter negative": _set(["fitted", "n_iter_"], -1),
    "n_iter a bool": _set(["fitted", "n_iter_"], True),
    "out activation wrong": _set(["fitted", "out_activation_"], "identity"),
    "feature names wrong length": _set(["fitted", "feature_names_in_"], ["a"]),
    "feature names not strings": _set(["fitted", "feature_names_in_"], [1, 2, 3, 4]),
    "loss curve not numbers": _set(["fitted", "loss_curve_"], ["x"]),
    "history wrong": _set(["fitted", "history_"], {"epoch": [0], "loss": [], "stop_reason": "", "best_epoch": None}),
    "classes wrong kind": _set(["fitted", "classes_"], {"kind": "int", "values": ["x", "y", "z"]}),
    "classes differ from network": _set(["fitted", "classes_"], {"kind": "str", "values": ["p", "q", "r"]}),
    "classes unsorted": _set(["fitted", "classes_"], {"kind": "str", "values": ["z", "y", "x"]}),
    "too few classes": _set(["fitted", "classes_"], {"kind": "str", "values": ["x"]}),
    "multilabel not bool": _set(["fitted", "multilabel"], 1),
    "multilabel mismatch": _set(["fitted", "multilabel"], True),
    "optimizer config bad": _set(["fitted", "optimizer", "config"], {"name": "evil"}),
    "optimizer sgd config bad": _set(["fitted", "optimizer", "config"], {"name": "sklearn_sgd", "lr": -1}),
    "optimizer scalars wrong": _set(["fitted", "optimizer", "scalars"], {"step": "3"}),
    "optimizer arrays listed wrong": _set(["fitted", "optimizer", "arrays"], ["m"]),
    "optimizer lost": _set(["fitted", "optimizer"], None),
    "optimizer state wrong shape": _tensor("extra.sklearn.optimizer.m", lambda a: a[:-1]),
    "optimizer state wrong dtype": _tensor("extra.sklearn.optimizer.v", lambda a: a.astype(np.float64)),
    "optimizer state not finite": _tensor("extra.sklearn.optimizer.v", lambda a: np.full_like(a, np.nan)),
    "unknown estimator array": lambda t, m: t.__setitem__("extra.sklearn.payload", np.zeros(2)),
    "regressor with class labels": _set(["class"], "MLPRegressor"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_estimator_metadata_raises_model_file_error(tmp_path, saved, case):
    tensors, meta = copy.deepcopy(saved)
    TAMPERED[case](tensors, meta)
    path = tmp_path / "bad"
    safefile.write(path, tensors, meta)
    with pytest.raises(ModelFileError, match="bad"):
        deltaprop.load(path)


def test_untampered_fixture_loads(tmp_path, saved):
    safefile.write(tmp_path / "ok", *copy.deepcopy(saved))
    assert isinstance(deltaprop.load(tmp_path / "ok"), MLPClassifier)


def _leaves(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*prefix, k))
    elif isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from _leaves(v, (*prefix, i))
    yield prefix


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_the_metadata_loads_or_raises_model_file_error(tmp_path, saved, data):
    tensors, meta = copy.deepcopy(saved)
    spec = meta["metadata"][KEY]
    where = data.draw(st.sampled_from(list(_leaves(spec))))
    value = data.draw(_JSON)
    if not where:
        meta["metadata"][KEY] = value
    else:
        d = spec
        for k in where[:-1]:
            d = d[k]
        d[where[-1]] = value
    safefile.write(tmp_path / "fuzz", tensors, meta)
    try:
        est = deltaprop.load(tmp_path / "fuzz")
    except ModelFileError:
        return
    assert isinstance(est, MLPClassifier)
