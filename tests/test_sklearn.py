"""deltaprop.sklearn: scikit-learn's estimator checks, scores against scikit-learn's MLP, and the sklearn API."""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_multilabel_classification,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from deltaprop.backend import MissingExtraError  # noqa: E402
from deltaprop.callbacks import Callback  # noqa: E402
from deltaprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from deltaprop.train import History  # noqa: E402


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with ConvergenceWarning silenced (short training budgets are on purpose here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------------------ scikit-learn's own checks
# scikit-learn's test suite runs these checks on its MLPs with max_iter=100 (and defaults otherwise): so do we.
CHECKED = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]

_FLOAT32_REASON = (
    "float32 training (the default dtype): a row weighted k times and k repeated rows give the same gradients only "
    "up to float32 rounding (~1e-7 relative), so after 100 epochs the predictions may miss the check's rtol=1e-7 "
    "depending on the platform's rounding; with dtype='float64' it passes (test_sample_weight_equivalence_float64)"
)


def _expected_failed_checks(estimator):
    if estimator.dtype == "float32":
        return {"check_sample_weight_equivalence_on_dense_data": _FLOAT32_REASON}
    return {}


_PWC_KWARGS = {}
if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters:
    _PWC_KWARGS["expected_failed_checks"] = _expected_failed_checks


@parametrize_with_checks(CHECKED, **_PWC_KWARGS)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize(
    "estimator", [MLPClassifier(max_iter=100, dtype="float64"), MLPRegressor(max_iter=100, dtype="float64")]
)
def test_sample_weight_equivalence_float64(estimator):
    quiet(check_sample_weight_equivalence_on_dense_data, type(estimator).__name__, estimator)


# ----------------------------------------------------------------------- scores against scikit-learn's MLP
def _mean_test_score(make_estimator, X, y, seeds=(0, 1, 2)):
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y if y.dtype.kind in "iu" else None
    )
    scores = [quiet(make_estimator(seed).fit, Xtr, ytr).score(Xte, yte) for seed in seeds]
    return float(np.mean(scores))


@pytest.mark.parametrize("loader", [load_digits, load_breast_cancer, load_wine, load_iris])
def test_classifier_matches_sklearn_accuracy(loader):
    X, y = loader(return_X_y=True)
    params = dict(hidden_layer_sizes=(64,), max_iter=200)
    ours = _mean_test_score(lambda s: make_pipeline(StandardScaler(), MLPClassifier(random_state=s, **params)), X, y)
    ref = _mean_test_score(
        lambda s: make_pipeline(StandardScaler(), neural_network.MLPClassifier(random_state=s, **params)), X, y
    )
    assert ours >= ref - 0.02, (ours, ref)
    assert ours > 0.9


def test_regressor_matches_sklearn_r2():
    X, y = load_diabetes(return_X_y=True)
    params = dict(hidden_layer_sizes=(32,), max_iter=300)

    def model(cls):
        return lambda s: TransformedTargetRegressor(
            make_pipeline(StandardScaler(), cls(random_state=s, **params)), transformer=StandardScaler()
        )

    ours = _mean_test_score(model(MLPRegressor), X, y)
    ref = _mean_test_score(model(neural_network.MLPRegressor), X, y)
    assert ours >= ref - 0.02, (ours, ref)
    assert ours > 0.25


# ----------------------------------------------- same arithmetic as scikit-learn's MLP (float64, no shuffling)
def _pair(cls_ours, cls_ref, **params):
    common = dict(random_state=0, shuffle=False, **params)
    return cls_ours(dtype="float64", **common), cls_ref(**common)


def _blobs(n=120, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    return centers[y] + rng.normal(size=(n, n_features)), y


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_sgd_reproduces_sklearn_exactly(n_classes, learning_rate):
    """Same initial weights, batches, L2 penalty, momentum, schedules and stopping rule as scikit-learn's sgd."""
    X, y = _blobs(n_classes=n_classes)
    params = dict(
        hidden_layer_sizes=(7, 5),
        solver="sgd",
        alpha=0.3,
        batch_size=50,
        learning_rate_init=0.05,
        learning_rate=learning_rate,
        max_iter=60,
        n_iter_no_change=3,
        tol=1e-3,
    )
    ours, ref = _pair(MLPClassifier, neural_network.MLPClassifier, **params)
    quiet(ours.fit, X, y)
    quiet(ref.fit, X, y)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-8, atol=1e-12)
    assert ours.out_activation_ == ref.out_activation_


def test_regressor_sgd_with_sample_weight_reproduces_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 4))
    y = np.c_[X @ [1.0, -2.0, 0.5, 0.0], np.sin(X[:, 0])]
    w = rng.uniform(0.2, 3.0, size=90)
    params = dict(hidden_layer_sizes=(6,), solver="sgd", alpha=0.1, batch_size=32, learning_rate_init=0.02, max_iter=25)
    ours, ref = _pair(MLPRegressor, neural_network.MLPRegressor, **params)
    quiet(ours.fit, X, y, sample_weight=w)
    quiet(ref.fit, X, y, sample_weight=w)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)
    assert ours.predict(X).shape == (90, 2)


def test_adam_close_to_sklearn():
    """Adam differs from scikit-learn's only in where epsilon sits, so the weights agree closely."""
    X, y = _blobs()
    params = dict(hidden_layer_sizes=(8,), alpha=1e-3, batch_size=40, learning_rate_init=0.01, max_iter=30)
    ours, ref = _pair(MLPClassifier, neural_network.MLPClassifier, **params)
    quiet(ours.fit, X, y)
    quiet(ref.fit, X, y)
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_partial_fit_keeps_optimizer_state_like_sklearn():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] - X[:, 1] ** 2
    params = dict(hidden_layer_sizes=(5,), solver="sgd", batch_size=20, learning_rate_init=0.01)
    ours, ref = _pair(MLPRegressor, neural_network.MLPRegressor, **params)
    for lo in (0, 30, 0, 30, 0):
        ours.partial_fit(X[lo : lo + 30], y[lo : lo + 30])
        ref.partial_fit(X[lo : lo + 30], y[lo : lo + 30])
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9)
    assert ours.t_ == ref.t_ == 150
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)


def test_partial_fit_epochs_equal_fit_epochs():
    """n calls of partial_fit on the same data are n epochs of one fit: the optimiser state carries over."""
    X, y = _blobs()
    params = dict(hidden_layer_sizes=(8,), shuffle=False, random_state=3, n_iter_no_change=1000, batch_size=50)
    streamed = MLPClassifier(**params)
    for _ in range(6):
        streamed.partial_fit(X, y, classes=[0, 1, 2])
    full = quiet(MLPClassifier(max_iter=6, **params).fit, X, y)
    np.testing.assert_array_equal(streamed.network_.theta, full.network_.theta)
    assert streamed.loss_curve_ == full.loss_curve_
    assert streamed.history_.epochs_run == 6


# --------------------------------------------------------------------------------- scikit-learn tooling
def test_pipeline_gridsearch_cross_val_score_clone():
    X, y = load_iris(return_X_y=True)
    pipe = Pipeline(
        [("scale", StandardScaler()), ("mlp", MLPClassifier(learning_rate_init=0.01, max_iter=150, random_state=0))]
    )
    grid = GridSearchCV(pipe, {"mlp__hidden_layer_sizes": [(4,), (16,)], "mlp__alpha": [1e-4, 1e-2]}, cv=3)
    quiet(grid.fit, X, y)
    assert grid.best_score_ > 0.85
    assert grid.best_estimator_.named_steps["mlp"].classes_.tolist() == [0, 1, 2]
    scores = quiet(cross_val_score, pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    fitted = grid.best_estimator_.named_steps["mlp"]
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not hasattr(fresh, "network_")


def test_feature_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = quiet(MLPClassifier((8,), max_iter=20, random_state=0).fit, X, y)
    assert clf.feature_names_in_.tolist() == list(X.columns)
    assert clf.n_features_in_ == 4
    renamed = X.rename(columns={X.columns[0]: "something else"})
    with pytest.raises(ValueError, match="feature names should match those that were passed during fit"):
        clf.predict(renamed)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict(X.to_numpy())
    reg = quiet(
        MLPRegressor((4,), max_iter=5, random_state=0).fit,
        pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 1, 0]}),
        [0.0, 1, 2, 3],
    )
    assert reg.feature_names_in_.tolist() == ["a", "b"]


def test_wrong_number_of_features_at_predict():
    X, y = _blobs()
    clf = quiet(MLPClassifier((4,), max_iter=5, random_state=0).fit, X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 5 features as input"):
        clf.predict(X[:, :3])


def test_partial_fit_streaming_digits():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    clf = MLPClassifier((64,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        clf.partial_fit(Xtr[:100], ytr[:100])
    classes = np.arange(10)
    for _ in range(5):
        for lo in range(0, Xtr.shape[0], 100):
            clf.partial_fit(Xtr[lo : lo + 100], ytr[lo : lo + 100], classes=classes)
    assert clf.score(Xte, yte) > 0.93
    assert clf.n_iter_ == 1
    assert clf.t_ == 5 * Xtr.shape[0]
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(Xtr[:10], np.full(10, 11))


def test_zero_sample_weight_equals_dropping_rows():
    X, y = _blobs(n=90)
    w = np.ones(90)
    w[::3] = 0.0
    params = dict(hidden_layer_sizes=(6,), solver="sgd", shuffle=False, max_iter=40, random_state=0)
    weighted = quiet(MLPClassifier(**params).fit, X, y, sample_weight=w)
    dropped = quiet(MLPClassifier(**params).fit, X[w > 0], y[w > 0])
    np.testing.assert_array_equal(weighted.network_.theta, dropped.network_.theta)
    # with minibatches and shuffling too: zero-weight rows are left out before anything else
    params.update(batch_size=16, shuffle=True, solver="adam")
    weighted = quiet(MLPClassifier(**params).fit, X, y, sample_weight=w)
    dropped = quiet(MLPClassifier(**params).fit, X[w > 0], y[w > 0])
    np.testing.assert_array_equal(weighted.network_.theta, dropped.network_.theta)


def test_sample_weight_integer_equals_repeating_rows():
    X, y = _blobs(n=40)
    w = np.random.default_rng(0).integers(1, 4, size=40)
    params = dict(hidden_layer_sizes=(6,), solver="sgd", max_iter=30, alpha=0.1, random_state=0)
    weighted = quiet(MLPClassifier(dtype="float64", **params).fit, X, y, sample_weight=w)
    repeated = quiet(MLPClassifier(dtype="float64", **params).fit, np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9)


def test_sample_weight_errors():
    X, y = _blobs(n=20)
    with pytest.raises(ValueError, match="non-zero"):
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=np.zeros(20))
    with pytest.raises(ValueError, match="Negative values"):
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=-np.ones(20))


def test_string_labels():
    X, y = _blobs(n_classes=3)
    names = np.array(["cat", "dog", "emu"])[y]
    clf = quiet(MLPClassifier((16,), learning_rate_init=0.01, max_iter=100, random_state=0).fit, X, names)
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert set(clf.predict(X)) <= {"cat", "dog", "emu"}
    assert clf.score(X, names) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3
    # two classes: one logistic output, as scikit-learn
    binary = quiet(MLPClassifier((8,), max_iter=50, random_state=0).fit, X[y < 2], names[y < 2])
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    assert binary.predict_proba(X[:3]).shape == (3, 2)
    assert binary.classes_.tolist() == ["cat", "dog"]
    # or two softmax outputs, on request
    two = quiet(
        MLPClassifier((8,), output_activation="softmax", max_iter=50, random_state=0).fit, X[y < 2], names[y < 2]
    )
    assert two.n_outputs_ == 2 and two.network_.loss_function.name == "cross_entropy"


def test_warm_start_continues():
    X, y = _blobs()
    clf = MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0)
    quiet(clf.fit, X, y)
    theta = clf.network_.theta.copy()
    network = clf.network_
    quiet(clf.fit, X, y)
    assert clf.network_ is network  # the same network, trained further
    assert len(clf.loss_curve_) == 10 and clf.n_iter_ == 5
    assert clf.history_.epochs_run == 10 and clf.history_.epoch == list(range(10))
    assert not np.array_equal(clf.network_.theta, theta)
    assert clf.loss_curve_[5] < clf.loss_curve_[0]
    cold = clone(clf).set_params(warm_start=False)
    quiet(cold.fit, X, y)
    quiet(cold.fit, X, y)
    assert len(cold.loss_curve_) == 5
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        clf.fit(X[y < 2], y[y < 2])


def test_multi_output_regression_and_multilabel():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.c_[X[:, 0] + X[:, 1], X[:, 2] - X[:, 0]]
    reg = quiet(MLPRegressor((16,), learning_rate_init=0.01, max_iter=200, random_state=0).fit, X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.9
    Xm, Ym = make_multilabel_classification(n_samples=150, n_classes=4, random_state=0)
    clf = quiet(MLPClassifier((16,), max_iter=100, random_state=0).fit, Xm, Ym)
    ref = quiet(neural_network.MLPClassifier((16,), max_iter=100, random_state=0).fit, Xm, Ym)
    assert clf.predict(Xm).shape == Ym.shape and clf.predict(Xm).dtype.kind == "i"
    assert clf.out_activation_ == "logistic" and clf.network_.loss_function.name == "binary_cross_entropy"
    np.testing.assert_allclose(clf.predict_proba(Xm), ref.predict_proba(Xm), atol=1e-3)
    assert clf.score(Xm, Ym) >= ref.score(Xm, Ym) - 0.02  # subset accuracy


# ------------------------------------------------------------------------ stopping, warnings, parameters
def test_convergence_warning_and_stopping_rule():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier((4,), max_iter=500, tol=10.0, n_iter_no_change=2, random_state=0).fit(X, y)
    # sklearn's rule: stop once the loss failed to improve on the best by tol more than n_iter_no_change times
    assert clf.n_iter_ == 4
    assert neural_network.MLPClassifier((4,), max_iter=500, tol=10.0, n_iter_no_change=2).fit(X, y).n_iter_ == 4
    assert "did not improve more than tol" in clf.history_.stop_reason
    assert clf.best_loss_ == min(clf.loss_curve_)


def test_early_stopping():
    X, y = _blobs(n=300)
    clf = quiet(MLPClassifier((8,), early_stopping=True, max_iter=100, n_iter_no_change=5, random_state=0).fit, X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.history_.val_loss[0] is not None
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        clf.partial_fit(X, y)
    reg = quiet(MLPRegressor((8,), early_stopping=True, max_iter=30, random_state=0).fit, X, y.astype(float))
    assert len(reg.validation_scores_) == reg.n_iter_


def test_lbfgs_is_refused_clearly():
    X, y = _blobs()
    clf = MLPClassifier(solver="lbfgs")
    with pytest.raises(ValueError, match="lbfgs.*not supported.*adam.*sgd"):
        clf.fit(X, y)
    assert not hasattr(clf, "partial_fit")  # as in scikit-learn: partial_fit only for stochastic solvers
    assert hasattr(MLPRegressor(), "partial_fit")


@pytest.mark.parametrize(
    "params",
    [
        {"hidden_layer_sizes": (0,)},
        {"activation": "softmax"},
        {"activation": "nope"},
        {"solver": "newton"},
        {"alpha": -1.0},
        {"batch_size": 0},
        {"learning_rate": "fast"},
        {"learning_rate_init": 0.0},
        {"max_iter": 0},
        {"validation_fraction": 1.0},
        {"beta_1": 1.0},
        {"n_iter_no_change": 0},
        {"dtype": "float16"},
    ],
)
def test_bad_parameters_raise_at_fit(params):
    X, y = _blobs(n=20)
    clf = MLPClassifier(**{"max_iter": 2, **params})  # nothing is checked before fit, as scikit-learn requires
    with pytest.raises(ValueError):
        clf.fit(X, y)


def test_one_class_is_an_error():
    X, _ = _blobs(n=20)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier(max_iter=2).fit(X, np.zeros(20))


def test_hidden_activation_names_and_initialisation():
    X, y = _blobs()
    for name, deltaprop_name in [("logistic", "sigmoid"), ("tanh", "tanh"), ("identity", "identity"), ("elu", "elu")]:
        clf = quiet(MLPClassifier((5,), activation=name, max_iter=2, random_state=0).fit, X, y)
        assert clf.network_.activations[0].name == deltaprop_name
    # the initial weights are scikit-learn's: same random_state, same draws
    ours = quiet(
        MLPClassifier((5,), activation="logistic", learning_rate_init=1e-12, max_iter=1, random_state=4).fit, X, y
    )
    ref = quiet(
        neural_network.MLPClassifier(
            (5,), activation="logistic", learning_rate_init=1e-12, max_iter=1, random_state=4
        ).fit,
        X,
        y,
    )
    np.testing.assert_allclose(ours.coefs_[0], ref.coefs_[0], rtol=1e-6)
    no_hidden = quiet(MLPClassifier((), max_iter=50, random_state=0).fit, X, y)
    assert [c.shape for c in no_hidden.coefs_] == [(5, 3)]


def test_deltaprop_options_optimizer_callbacks_verbose(capsys):
    from deltaprop.optim import Adam

    X, y = _blobs()

    class CountEpochs(Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, epoch, logs):
            self.epochs += 1

    counter = CountEpochs()
    opt = Adam(lr=0.01)
    clf = quiet(
        MLPClassifier((8,), optimizer=opt, callbacks=(counter,), max_iter=7, verbose=True, random_state=0).fit, X, y
    )
    assert counter.epochs == 7
    assert isinstance(clf.history_, History) and clf.history_.epochs_run == 7
    assert "Iteration 7, loss = " in capsys.readouterr().out
    assert clf.optimizer is opt and clf._optimizer.inner is not opt  # the parameter itself is never trained
    named = quiet(MLPRegressor((8,), optimizer="rmsprop", max_iter=3, random_state=0).fit, X, y.astype(float))
    assert np.all(np.isfinite(named.predict(X)))
    sq = quiet(MLPClassifier((8,), loss="squared_error", max_iter=20, random_state=0).fit, X, y)
    assert sq.network_.loss_function.name == "squared_error" and sq.out_activation_ == "softmax"


def test_pickle_roundtrip():
    X, y = _blobs()
    clf = quiet(MLPClassifier((8,), max_iter=10, random_state=0).fit, X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)  # the optimiser state survives the pickle too


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.delitem(sys.modules, "deltaprop.sklearn")
    with pytest.raises(MissingExtraError, match=r'pip install "deltaprop\[sklearn\]"'):
        importlib.import_module("deltaprop.sklearn")
