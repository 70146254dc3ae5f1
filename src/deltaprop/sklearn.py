"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`, trained by deltaprop.

They take the parameters of :class:`sklearn.neural_network.MLPClassifier` / ``MLPRegressor`` that mean the same here
(``hidden_layer_sizes``, ``activation``, ``solver``, ``alpha``, ``batch_size``, ``learning_rate_init``, ``max_iter``,
``tol``, ``n_iter_no_change``, ``early_stopping``, ``warm_start``…) plus deltaprop's own (``optimizer``, ``loss``,
``output_activation``, ``callbacks``, ``dtype``), and work wherever a scikit-learn estimator does: ``Pipeline``,
``GridSearchCV``, ``cross_val_score``, ``clone``. The fitted network is ``network_`` (a
:class:`deltaprop.Network`) and the training record ``history_`` (a :class:`deltaprop.train.History`).
``save(path)`` writes a fitted estimator to a model file and ``deltaprop.load(path)`` gives it back, without pickle.

Needs the optional dependency scikit-learn: ``pip install "deltaprop[sklearn]"``.

>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> X, y = load_iris(return_X_y=True)
>>> model = make_pipeline(StandardScaler(), MLPClassifier((16,), learning_rate_init=0.02, random_state=0))
>>> model.fit(X, y).score(X, y) > 0.95
True

How training follows scikit-learn's MLP:

* weights and biases start as scikit-learn's do: U(±√(6/(fan_in + fan_out))), or √(2/…) for ``logistic``;
* each epoch shuffles the data (``shuffle``) and takes mini-batches of ``batch_size`` (``"auto"``: min(200, n));
* ``alpha`` is scikit-learn's L2 penalty: the objective of a batch is (Σᵢ wᵢ·ℓᵢ + ½·alpha·Σ‖W‖²) / Σᵢ wᵢ (wᵢ the
  sample weights, 1 without ``sample_weight``), so alpha·W / Σᵢ wᵢ — alpha·W / n_batch without weights — is added to
  the gradient of every weight matrix, never to a bias, before the optimiser's step; ``loss_curve_`` includes the
  penalty;
* stopping: without ``early_stopping``, once the epoch's training loss has failed ``n_iter_no_change`` epochs in a
  row to improve on the best loss so far by more than ``tol``; with it, the same rule on the validation score
  (accuracy / R² on ``validation_fraction`` of the data, stratified for classifiers), and the weights of the best
  validation score are restored at the end. Reaching ``max_iter`` first emits a ``ConvergenceWarning``.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backend import require

require("sklearn", "sklearn", "deltaprop.sklearn estimators")

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.metaestimators import available_if  # noqa: E402
from sklearn.utils.multiclass import (  # noqa: E402
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d  # noqa: E402

from .activations import get_activation  # noqa: E402
from .callbacks import Callback, TerminateOnNaN  # noqa: E402
from .io import SKLEARN_ESTIMATOR_KEY, labels_from_json, labels_to_json  # noqa: E402
from .network import MLP, Network  # noqa: E402
from .safefile import ModelFileError  # noqa: E402
from .train import History, Trainer, _check_callbacks  # noqa: E402

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = ["MLPClassifier", "MLPRegressor"]

_SOLVERS = ("sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: scikit-learn's activation names and deltaprop's (the same functions where both have one)
_SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _act_spec(spec: Any) -> Any:
    """scikit-learn's activation names mapped to deltaprop's; anything else is passed on as it is."""
    return _SKLEARN_ACTIVATIONS.get(spec, spec) if isinstance(spec, str) else spec


def _sklearn_act_name(spec: Any) -> str:
    name = get_activation(_act_spec(spec)).name
    return "logistic" if name == "sigmoid" else name


def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)  # pragma: no cover - scikit-learn < 1.6


# --------------------------------------------------------------------------------------- training helpers
class _L2Optimizer:
    """Wraps a deltaprop optimiser and adds scikit-learn's L2 penalty to the weight gradients before each step.

    ``denominator`` (Σ sample weights of the batch, or its size) is set before every batch by :class:`_SklearnLoop`;
    the step adds alpha·W/denominator to the gradient of each weight matrix (biases are left alone) and accumulates
    the penalty's share of the epoch loss, ½·alpha·Σ‖W‖²/denominator · n_batch.
    """

    def __init__(self, inner: Any, alpha: float, weight_slices: list[tuple[int, int]]) -> None:
        self.inner = inner
        self.alpha = float(alpha)
        self.weight_slices = weight_slices
        self.denominator = 1.0
        self.batch_size = 0
        self.penalty_sum = 0.0

    @property
    def lr(self) -> float:
        return float(self.inner.lr)

    @lr.setter
    def lr(self, value: float) -> None:
        self.inner.lr = value

    def init(self, theta: np.ndarray) -> Any:
        return self.inner.init(theta)

    def step(self, theta: np.ndarray, grad: np.ndarray, state: Any) -> None:
        if self.alpha > 0.0 and self.denominator > 0.0:
            scale = self.alpha / self.denominator
            squares = 0.0
            for lo, hi in self.weight_slices:
                w = theta[lo:hi]
                squares += float(np.dot(w, w))
                grad[lo:hi] += grad.dtype.type(scale) * w
            self.penalty_sum += 0.5 * scale * squares * self.batch_size
        self.inner.step(theta, grad, state)

    def get_config(self) -> dict[str, Any]:
        config = dict(self.inner.get_config()) if hasattr(self.inner, "get_config") else {}
        config["sklearn_alpha"] = self.alpha
        return config

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)


class _SklearnSGD:
    """scikit-learn's sgd solver: velocity v ← momentum·v − lr·g, then w ← w + v (Nesterov: w ← w + momentum·v − lr·g).

    With a constant learning rate this is PyTorch's (and :class:`deltaprop.optim.SGD`'s) momentum update exactly;
    when ``invscaling`` or ``adaptive`` change ``lr`` it keeps scikit-learn's semantics, where the velocity carries
    the earlier learning rates.
    """

    def __init__(self, lr: float, momentum: float, nesterov: bool) -> None:
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def init(self, theta: np.ndarray) -> dict[str, Any]:
        return {"velocity": np.zeros_like(theta)}

    def step(self, theta: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        lr, mu = theta.dtype.type(self.lr), theta.dtype.type(self.momentum)
        v = state["velocity"]
        v *= mu
        v -= lr * grad
        if self.nesterov:
            theta += mu * v - lr * grad
        else:
            theta += v

    def get_config(self) -> dict[str, Any]:
        return {"name": "sklearn_sgd", "lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}


class _SklearnLoop(Callback):
    """scikit-learn's bookkeeping around deltaprop's training loop.

    Before each batch it hands the L2 wrapper the batch's weight sum; after each epoch it records ``loss_curve_``
    (loss plus penalty), ``n_iter_``, ``t_`` and the validation score, applies scikit-learn's stopping rule and the
    ``invscaling`` / ``adaptive`` learning rates of the sgd solver, and keeps the best weights for early stopping.
    """

    def __init__(self, estimator: _BaseMLP, optimizer: _L2Optimizer, validation: tuple[Any, Any, Any] | None) -> None:
        self.estimator = estimator
        self.optimizer = optimizer
        self.validation = validation

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self.optimizer.penalty_sum = 0.0

    def on_batch_begin(self, batch: int, logs: dict[str, Any]) -> None:
        trainer, opt = self.trainer, self.optimizer
        size = int(logs["size"])
        opt.batch_size = size
        if trainer.sample_weight is None:
            opt.denominator = float(size)
            return
        weights = getattr(trainer, "_W_epoch", None)
        if weights is None:  # pragma: no cover - a Trainer without the epoch's weight buffer
            weights = trainer.sample_weight
        lo = batch * trainer.batch_size
        opt.denominator = float(np.sum(weights[lo : lo + size]))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        est, trainer = self.estimator, self.trainer
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            return  # TerminateOnNaN stops training and restores the last finite weights
        loss += self.optimizer.penalty_sum / trainer.X.shape[0]
        est.loss_ = loss
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ += int(trainer.X.shape[0])
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.validation is not None:
            X_val, y_val, w_val = self.validation
            score = est._score_encoded(X_val, y_val, w_val)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_theta = trainer.net.theta.copy()
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if loss < est.best_loss_:
                est.best_loss_ = loss
        sgd = est._uses_sklearn_sgd()
        if sgd and est.learning_rate == "invscaling":
            self.optimizer.lr = est.learning_rate_init / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            if sgd and est.learning_rate == "adaptive" and self.optimizer.lr > 1e-6:
                self.optimizer.lr = self.optimizer.lr / 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"Setting learning rate to {self.optimizer.lr:f}")
                return
            what = "Validation score" if self.validation is not None else "Training loss"
            trainer.stop(
                f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
            )


def _weight_slices(net: Network) -> list[tuple[int, int]]:
    """Where each layer's W lies in ``net.theta``."""
    slices, offset = [], 0
    for layer in net.layers:
        slices.append((offset, offset + layer.W.size))
        offset += layer.W.size + layer.b.size
    return slices


def _extend_history(old: History, new: History) -> History:
    """``old`` followed by ``new`` (epochs renumbered to continue), for warm starts and ``partial_fit``."""
    start = (old.epoch[-1] + 1) if old.epoch else 0
    old.epoch.extend(start + e for e in new.epoch)
    for key in History.KEYS:
        getattr(old, key).extend(getattr(new, key))
    old.stop_reason = new.stop_reason
    old.best_epoch = None if new.best_epoch is None else start + new.best_epoch
    return old


def _check_number(value: Any, name: str, *, low: float, high: float = math.inf, low_open: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        side = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {side}{low}, {high}], got {value!r}")


def _check_int(value: Any, name: str, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


# ------------------------------------------------------------------------------------------- the base
class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks, the training loop, the forward pass."""

    _task: str = ""
    # fitted state, set by fit (declared for type checkers only: nothing is set before fit)
    network_: Network
    loss_curve_: list[float]
    validation_scores_: Any
    best_validation_score_: Any
    best_loss_: Any
    _optimizer: Any
    _opt_state: Any

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: Any = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        optimizer: Any = None,
        loss: Any = None,
        output_activation: Any = None,
        callbacks: Sequence[Callback] | Callback | None = (),
        dtype: str = "float32",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.optimizer = optimizer
        self.loss = loss
        self.output_activation = output_activation
        self.callbacks = callbacks
        self.dtype = dtype

    # ------------------------------------------------------------------------------------ checks
    def _check_solver(self) -> bool:
        """partial_fit exists only for stochastic solvers (as in scikit-learn)."""
        if self.optimizer is None and self.solver not in _SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    def _uses_sklearn_sgd(self) -> bool:
        return self.optimizer is None and self.solver == "sgd"

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [int(sizes)]
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}")
        out = list(sizes)  # type: ignore[arg-type]
        for n in out:
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
                raise ValueError(f"hidden_layer_sizes must be > 0, got {out}.")
        return [int(n) for n in out]

    def _check_params(self) -> None:
        if self.optimizer is None:
            if self.solver == "lbfgs":
                raise ValueError(
                    "solver='lbfgs' is not supported by deltaprop, which trains by backpropagation with stochastic "
                    "gradient methods; use solver='adam' or solver='sgd' (or optimizer=… for any deltaprop optimiser)"
                )
            if self.solver not in _SOLVERS:
                raise ValueError(f"solver must be 'adam' or 'sgd', got {self.solver!r}")
        self._hidden_sizes()
        _check_number(self.alpha, "alpha", low=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int(self.batch_size, "batch_size", low=1)
        if self.learning_rate not in _LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {', '.join(_LEARNING_RATES)}, got {self.learning_rate!r}")
        _check_number(self.learning_rate_init, "learning_rate_init", low=0.0, low_open=True)
        _check_number(self.power_t, "power_t", low=0.0)
        _check_int(self.max_iter, "max_iter", low=1)
        _check_number(self.tol, "tol", low=0.0)
        _check_number(self.momentum, "momentum", low=0.0, high=1.0)
        _check_number(self.validation_fraction, "validation_fraction", low=0.0, high=1.0, low_open=True)
        if not self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be < 1, got {self.validation_fraction!r}")
        _check_number(self.beta_1, "beta_1", low=0.0)
        _check_number(self.beta_2, "beta_2", low=0.0)
        if not (self.beta_1 < 1 and self.beta_2 < 1):
            raise ValueError(f"beta_1 and beta_2 must be in [0, 1), got {self.beta_1!r} and {self.beta_2!r}")
        _check_number(self.epsilon, "epsilon", low=0.0, low_open=True)
        _check_int(self.n_iter_no_change, "n_iter_no_change", low=1)
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        act = get_activation(_act_spec(self.activation))
        if act.output_only:
            raise ValueError(f"activation={self.activation!r} can only be an output activation")
        _check_callbacks(self.callbacks)

    def _validate_input(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = _validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=self._task == "regression",
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # ------------------------------------------------------------------------------- the network
    def _output_spec(self, n_targets: int) -> tuple[int, Any, Any]:
        """(n_outputs, output activation, loss) for ``n_targets`` encoded target columns."""
        raise NotImplementedError

    def _build_network(self, n_features: int, n_out: int, out_act: Any, loss: Any, rs: np.random.RandomState) -> None:
        sizes = [n_features, *self._hidden_sizes(), n_out]
        factor = 2.0 if _sklearn_act_name(self.activation) == "logistic" else 6.0
        init = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):  # scikit-learn's initialisation, same draws
            bound = math.sqrt(factor / (fan_in + fan_out))
            W = rs.uniform(-bound, bound, (fan_in, fan_out))
            b = rs.uniform(-bound, bound, fan_out)
            init.append((W, b))
        self.network_ = MLP(
            sizes,
            activation=copy.deepcopy(_act_spec(self.activation)),
            output_activation=copy.deepcopy(_act_spec(out_act)),
            loss=loss,
            init=init,
            dtype=str(np.dtype(self.dtype)),
        )
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_out
        self.out_activation_ = _sklearn_act_name(out_act)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_theta = self.network_.theta.copy()
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        self.history_ = History()
        for attr in ("_optimizer", "_opt_state"):
            if hasattr(self, attr):
                delattr(self, attr)

    def _make_optimizer(self) -> Any:
        from .optim import Adam, get_optimizer

        if self.optimizer is not None:
            if isinstance(self.optimizer, str):
                return get_optimizer(self.optimizer, lr=self.learning_rate_init)
            return get_optimizer(copy.deepcopy(self.optimizer))  # never train the parameter object itself
        if self.solver == "sgd":
            return _SklearnSGD(self.learning_rate_init, self.momentum, self.nesterovs_momentum)
        return Adam(self.learning_rate_init, betas=(float(self.beta_1), float(self.beta_2)), eps=float(self.epsilon))

    # --------------------------------------------------------------------------------- training
    def _train(
        self,
        X: np.ndarray,
        T: np.ndarray,
        labels: np.ndarray | None,
        y_score: np.ndarray,
        sample_weight: np.ndarray | None,
        rs: np.random.RandomState,
        *,
        incremental: bool,
    ) -> None:
        """Run epochs over (X, T) — targets as the network is trained on them — with scikit-learn's rules."""
        net = self.network_
        if sample_weight is not None:
            keep = sample_weight > 0  # a zero weight is exactly a row left out
            if not keep.all():
                X, T, y_score, sample_weight = X[keep], T[keep], y_score[keep], sample_weight[keep]
                labels = None if labels is None else labels[keep]
            if np.all(sample_weight == 1.0):
                sample_weight = None  # the plain mean, bit for bit the same as no weights
        validation = None
        trainer_validation = None
        if self.early_stopping and not incremental:
            stratify = y_score if self._task == "classification" and y_score.ndim == 1 else None
            arrays = (
                [X, T, y_score]
                + ([] if labels is None else [labels])
                + ([] if sample_weight is None else [sample_weight])
            )
            parts = train_test_split(*arrays, random_state=rs, test_size=self.validation_fraction, stratify=stratify)
            X, X_val, T, T_val, y_score, y_val = parts[:6]
            rest = parts[6:]
            L_val = None
            if labels is not None:
                labels, L_val = rest[0], rest[1]
                rest = rest[2:]
            w_val = None
            if sample_weight is not None:
                sample_weight, w_val = rest[0], rest[1]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
                )
            validation = (X_val, y_val, w_val)
            trainer_validation = (
                np.ascontiguousarray(X_val, dtype=net.dtype),
                np.ascontiguousarray(T_val, dtype=net.dtype),
                None if L_val is None else np.ascontiguousarray(L_val, dtype=np.intp),
            )
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped", stacklevel=4
                )
            batch_size = int(np.clip(self.batch_size, 1, n))

        if incremental and hasattr(self, "_optimizer"):
            opt, state = self._optimizer, self._opt_state
        else:
            opt, state = _L2Optimizer(self._make_optimizer(), self.alpha, _weight_slices(net)), None
        opt.alpha = float(self.alpha)
        loop = _SklearnLoop(self, opt, validation)
        trainer = Trainer(
            net,
            np.ascontiguousarray(X, dtype=net.dtype),
            np.ascontiguousarray(T, dtype=net.dtype),
            labels=None if labels is None else np.ascontiguousarray(labels, dtype=np.intp),
            optimizer=opt,
            batch_size=batch_size,
            shuffle=bool(self.shuffle),
            rng=np.random.default_rng(rs.randint(np.iinfo(np.int32).max)),
            validation=trainer_validation,
            callbacks=[TerminateOnNaN(), loop, *_check_callbacks(self.callbacks)],
            sample_weight=None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64),
        )
        if state is not None:
            trainer.opt_state = state  # partial_fit: the optimiser carries on where it stopped
        self.n_iter_ = 0
        try:
            history = trainer.run(1 if incremental else int(self.max_iter))
            self._optimizer, self._opt_state = opt, trainer.opt_state
        finally:
            # X's copy, the targets, the epoch buffers and the layers' last batch (smaller pickles) go now, not at
            # the next garbage collection
            trainer.release()
        self.history_ = _extend_history(self.history_, history)
        if self.early_stopping and not incremental:
            net.theta[...] = self._best_theta  # the weights of the best validation score
        if not np.all(np.isfinite(net.theta)):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need to "
                "be preprocessed."
            )
        self.coefs_ = [layer.W.copy() for layer in net.layers]
        self.intercepts_ = [layer.b.copy() for layer in net.layers]
        if not incremental and not trainer.stop_training and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization hasn't "
                "converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, incremental: bool, classes: Any = None) -> Any:
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            if not np.any(sample_weight > 0):
                raise ValueError("Sample weights must contain at least one non-zero number.")
        T, labels, y_score = self._encode_targets(y, first_pass=first_pass, incremental=incremental, classes=classes)
        rs = check_random_state(self.random_state)
        if first_pass:
            n_out, out_act, loss = self._output_spec(T.shape[1])
            self._build_network(X.shape[1], n_out, out_act, loss, rs)
            if self._task == "classification" and not getattr(self, "_multilabel", False):
                self.network_.classes = np.asarray(self.classes_)  # network_.predict gives labels too
        elif self.network_.layer_sizes[1:-1] != self._hidden_sizes():
            raise ValueError(
                "warm_start / partial_fit continue the fitted network of hidden layers "
                f"{self.network_.layer_sizes[1:-1]}, but hidden_layer_sizes is now {self._hidden_sizes()}; "
                "fit without warm_start to start afresh"
            )
        self._train(X, T, labels, y_score, sample_weight, rs, incremental=incremental)
        return self

    def _encode_targets(
        self, y: np.ndarray, *, first_pass: bool, incremental: bool, classes: Any
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(targets T as the network is trained on them, class indices or None, y as the score function wants it)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ prediction
    def _forward(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X`` (validated like scikit-learn does), as float64."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self._forward_array(X)

    def _forward_array(self, X: np.ndarray) -> np.ndarray:
        # A forward pass that keeps nothing on the layers (prediction never changes the network), in float64 from
        # the trained weights whatever the training dtype: a row's prediction then does not depend on which other rows
        # share its matrix product (float32 BLAS kernels round differently by batch shape, by ~1e-7).
        out = np.asarray(X, dtype=np.float64)
        for layer in self.network_.layers:
            out = layer.activation.forward(out @ layer.W.astype(np.float64) + layer.b.astype(np.float64))
        return np.asarray(out, dtype=np.float64)

    def _score_encoded(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        raise NotImplementedError

    # ---------------------------------------------------------------------------- saving
    def save(self, path: Any) -> None:
        """Write the fitted estimator to a model file; ``deltaprop.load(path)`` gives it back (no pickle).

        The file is the network's model file (safetensors + JSON, written atomically; ``deltaprop.io.load(path,
        as_network=True)`` and any safetensors reader read the network) with, in its metadata under
        ``"sklearn_estimator"``, the class, the constructor parameters and every fitted attribute that ``predict``,
        ``predict_proba``, ``score`` and ``partial_fit`` use - the optimiser's state included, so that the loaded
        estimator predicts exactly the same and ``partial_fit`` continues exactly as this one would.

        Parameters are stored as JSON data (tuples stay tuples). Some that are not JSON are stored as their JSON
        equivalent (listed in ``converted_params``): activation and loss objects as their config dicts, a NumPy
        ``dtype`` as its name, ``hidden_layer_sizes`` as a list. Any other that is not JSON data - ``callbacks``,
        an ``optimizer`` instance, a ``RandomState`` - is stored as null and named in ``dropped_params``: the loaded
        estimator has None there (no callbacks; a new ``fit`` uses ``solver``, though ``partial_fit`` continues with
        the saved optimiser and its state; ``random_state=None``). A subclass is saved as (and loads as) the
        deltaprop class it derives from. Raises scikit-learn's ``NotFittedError`` before ``fit``.
        """
        check_is_fitted(self)
        from .io import save

        if any(name.startswith(_SAVED_PREFIX) for name in self.network_.extra_arrays):
            raise ValueError(f"network_.extra_arrays names starting with {_SAVED_PREFIX!r} are reserved for save()")
        state, arrays = self._saved_state()
        net = copy.copy(self.network_)  # the fitted network itself is left as it is
        net.metadata = {**self.network_.metadata, SKLEARN_ESTIMATOR_KEY: state}
        net.extra_arrays = {**self.network_.extra_arrays, **{_SAVED_PREFIX + k: v for k, v in arrays.items()}}
        if net.classes is not None and net.classes.dtype.kind == "O":
            net.classes = labels_from_json(labels_to_json(net.classes), "classes")
        save(net, path)

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(the JSON stored under ``"sklearn_estimator"``, the arrays stored with it)."""
        cls = MLPClassifier if isinstance(self, MLPClassifier) else MLPRegressor
        params, dropped, converted = _params_to_json(self)
        try:  # a file that save writes always loads: check now that the stored parameters are accepted
            stored = cls(**{k: _from_json(v) for k, v in params.items()})
            stored._check_params()
            _check_specs(stored)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"cannot save this {cls.__name__}: its parameters {dropped} are not JSON data and are stored as None, "
                f"which the estimator rejects ({exc})"
            ) from None
        names = getattr(self, "feature_names_in_", None)
        loss = getattr(self, "loss_", None)
        fitted: dict[str, Any] = {
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": None if names is None else [str(n) for n in names],
            "n_outputs_": int(self.n_outputs_),
            "n_layers_": int(self.n_layers_),
            "out_activation_": str(self.out_activation_),
            "loss_": None if loss is None else float(loss),
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "best_loss_": None if self.best_loss_ is None else float(self.best_loss_),
            "validation_scores_": None
            if self.validation_scores_ is None
            else [float(v) for v in self.validation_scores_],
            "best_validation_score_": None
            if self.best_validation_score_ is None
            else float(self.best_validation_score_),
            "n_iter_": int(self.n_iter_),
            "t_": int(self.t_),
            "no_improvement_count": int(getattr(self, "_no_improvement_count", 0)),
            "history_": _plain(self.history_.to_dict()),
            **self._saved_labels(),
        }
        arrays: dict[str, np.ndarray] = {}
        best = getattr(self, "_best_theta", None)
        if self.validation_scores_ is not None and best is not None:  # early stopping restores these weights
            arrays["best_theta"] = np.array(best)
        fitted["optimizer"], opt_arrays = _optimizer_to_json(self)
        arrays.update({f"optimizer.{k}": v for k, v in opt_arrays.items()})
        state = {
            "format_version": _SAVE_FORMAT_VERSION,
            "class": cls.__name__,
            "params": params,
            "dropped_params": dropped,
            "converted_params": converted,
            "fitted": fitted,
        }
        return state, arrays

    def _saved_labels(self) -> dict[str, Any]:
        return {}

    def _restore_labels(self, fitted: dict[str, Any], net: Network, bad: _Bad) -> None:
        if net.classes is not None:
            raise bad("a regressor's network has no class labels")

    def _restore(self, fitted: Any, net: Network, bad: _Bad) -> None:
        """Check the saved fitted state against ``net`` and make this (new) estimator the fitted one."""
        keys = _FITTED_KEYS | self._label_keys
        if not isinstance(fitted, dict) or set(fitted) != keys:
            got = sorted(fitted) if isinstance(fitted, dict) else type(fitted).__name__
            raise bad(f"'fitted' must be an object with keys {sorted(keys)}, got {got}")
        sizes = net.layer_sizes
        n_features = _json_int(fitted, "n_features_in_", bad, low=1)
        n_outputs = _json_int(fitted, "n_outputs_", bad, low=1)
        n_layers = _json_int(fitted, "n_layers_", bad, low=2)
        if (n_features, n_outputs, n_layers) != (sizes[0], sizes[-1], len(sizes)):
            raise bad(
                f"n_features_in_={n_features}, n_outputs_={n_outputs}, n_layers_={n_layers} do not match the network "
                f"of layer sizes {list(sizes)}"
            )
        out_act = fitted["out_activation_"]
        if out_act != _sklearn_act_name(net.layers[-1].activation):
            raise bad(f"out_activation_={out_act!r} is not the network's output activation")
        names = fitted["feature_names_in_"]
        if names is not None and (
            not isinstance(names, list) or len(names) != n_features or not all(isinstance(n, str) for n in names)
        ):
            raise bad(f"feature_names_in_ must be null or a list of {n_features} strings")
        loss = _json_number(fitted["loss_"], "loss_", bad, optional=True)
        loss_curve = _json_numbers(fitted["loss_curve_"], "loss_curve_", bad)
        best_loss = _json_number(fitted["best_loss_"], "best_loss_", bad, optional=True)
        val_scores = _json_numbers(fitted["validation_scores_"], "validation_scores_", bad, optional=True)
        best_val = _json_number(fitted["best_validation_score_"], "best_validation_score_", bad, optional=True)
        if not (val_scores is None) == (best_val is None) == (best_loss is not None):
            raise bad(
                "validation_scores_ and best_validation_score_ (early stopping) or best_loss_ must be set, not both"
            )
        n_iter = _json_int(fitted, "n_iter_", bad)
        t = _json_int(fitted, "t_", bad)
        no_improvement = _json_int(fitted, "no_improvement_count", bad)
        history = _history_from_json(fitted["history_"], bad)
        self._restore_labels(fitted, net, bad)

        saved = {k[len(_SAVED_PREFIX) :]: v for k, v in net.extra_arrays.items() if k.startswith(_SAVED_PREFIX)}
        best_theta = saved.pop("best_theta", None)
        if best_theta is not None:
            _check_like_theta(best_theta, net, "best_theta", bad)
        opt_arrays = {k[len("optimizer.") :]: saved.pop(k) for k in list(saved) if k.startswith("optimizer.")}
        if saved:
            raise bad(f"unknown arrays {sorted(_SAVED_PREFIX + k for k in saved)}")
        optimizer = None
        if fitted["optimizer"] is not None:
            optimizer = _optimizer_from_json(fitted["optimizer"], opt_arrays, net, float(self.alpha), bad)
        elif opt_arrays:
            raise bad("optimizer arrays are stored but no optimizer")

        # everything checked: the fitted state
        net.metadata = {k: v for k, v in net.metadata.items() if k != SKLEARN_ESTIMATOR_KEY}
        net.extra_arrays = {k: v for k, v in net.extra_arrays.items() if not k.startswith(_SAVED_PREFIX)}
        self.network_ = net
        self.n_features_in_ = n_features
        if names is not None:
            self.feature_names_in_ = np.array(names, dtype=object)
        self.n_outputs_ = n_outputs
        self.n_layers_ = n_layers
        self.out_activation_ = out_act
        if loss is not None:
            self.loss_ = loss
        self.loss_curve_ = loss_curve or []
        self.best_loss_ = best_loss
        self.validation_scores_ = val_scores
        self.best_validation_score_ = best_val
        self.n_iter_ = n_iter
        self.t_ = t
        self._no_improvement_count = no_improvement
        self.history_ = history
        self._best_theta = net.theta.copy() if best_theta is None else np.array(best_theta)
        self.coefs_ = [layer.W.copy() for layer in net.layers]
        self.intercepts_ = [layer.b.copy() for layer in net.layers]
        if optimizer is not None:
            self._optimizer, self._opt_state = optimizer

    _label_keys: frozenset[str] = frozenset()

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    def __sklearn_tags__(self) -> Any:
        return super().__sklearn_tags__()

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {}


# ----------------------------------------------------------------------------------------- classifier
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by deltaprop's backpropagation (scikit-learn API).

    Parameters mean what they mean in :class:`sklearn.neural_network.MLPClassifier` (see the module docstring for
    how training follows it); ``solver`` is ``"adam"`` or ``"sgd"`` (``"lbfgs"`` is not supported).

    Args:
        hidden_layer_sizes: units of each hidden layer, e.g. ``(100,)``; ``()`` for none (logistic regression).
        activation: hidden activation: scikit-learn's ``identity``, ``logistic``, ``tanh``, ``relu``, or a deltaprop
            name (``sigmoid``, ``leaky_relu``, ``elu``, ``softplus``…).
        solver: ``adam`` (with ``beta_1``, ``beta_2``, ``epsilon``) or ``sgd`` (with ``momentum``,
            ``nesterovs_momentum``, ``learning_rate``, ``power_t``).
        alpha: L2 penalty on the weights (not the biases), scikit-learn's scaling: alpha·W / n_batch is added to
            the gradient.
        batch_size: examples per update; ``"auto"`` is min(200, n_samples).
        learning_rate: sgd only: ``constant``, ``invscaling`` (lr = learning_rate_init / (t + 1)^power_t, t the
            examples seen) or ``adaptive`` (divide by 5 when the stopping rule fires, stop below 1e-6).
        learning_rate_init: the step size.
        max_iter: the most epochs of one ``fit``.
        shuffle: shuffle the examples every epoch.
        random_state: seeds the initial weights, the shuffling and the validation split.
        tol, n_iter_no_change: stop when the loss (or validation score) has not improved by more than ``tol`` for
            more than ``n_iter_no_change`` epochs.
        verbose: print the loss of every epoch.
        warm_start: ``fit`` continues from the fitted weights (with a fresh optimiser, as scikit-learn).
        early_stopping, validation_fraction: hold out this fraction (stratified) and stop on its accuracy.
        optimizer: a deltaprop optimiser (name such as ``"adamw"``, ``"rmsprop"``, or an instance from
            :mod:`deltaprop.optim`); overrides ``solver`` and its options. A name gets ``learning_rate_init``.
        loss: None is cross-entropy (softmax output; one sigmoid output with binary cross-entropy for two classes
            and for multilabel targets); ``"squared_error"`` / ``"mse"`` also work.
        output_activation: None as above; ``"softmax"`` for a two-class problem gives two softmax outputs.
        callbacks: deltaprop :class:`~deltaprop.callbacks.Callback` objects run during training.
        dtype: ``"float32"`` (fast) or ``"float64"`` arithmetic.

    Fitted attributes: ``classes_``, ``coefs_``, ``intercepts_`` (copies of each layer's W (n_in, n_out) and b),
    ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``, ``best_validation_score_``, ``n_iter_``
    (epochs of the last call), ``t_`` (examples seen), ``n_features_in_``, ``feature_names_in_``, ``n_layers_``,
    ``n_outputs_``, ``out_activation_``, ``network_`` (the :class:`deltaprop.Network`), ``history_``.

    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 25)
    >>> y = np.array(["no", "yes", "yes", "no"] * 25)
    >>> clf = MLPClassifier((16,), activation="tanh", learning_rate_init=0.05, max_iter=300, random_state=0)
    >>> clf.fit(X, y).predict([[0.0, 1.0], [1.0, 1.0]]).tolist()
    ['yes', 'no']
    """

    _task = "classification"

    def _encode_targets(
        self, y: np.ndarray, *, first_pass: bool, incremental: bool, classes: Any
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multiclass-multioutput":
            raise ValueError("Multioutput target data is not supported with label binarization")
        multilabel = kind == "multilabel-indicator"
        if incremental and (first_pass or classes is not None):
            _check_partial_fit_first_call(self, classes)
        if first_pass:
            present = unique_labels(y)
            if not incremental:
                self.classes_ = present
            if multilabel:
                self.classes_ = np.arange(y.shape[1])
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes to train, but y contains only one "
                    f"class: {self.classes_[0]!r}"
                )
            self._multilabel = multilabel
            if incremental and len(np.setdiff1d(present, self.classes_)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {present}."
                )
        else:
            present = unique_labels(y)
            if self._multilabel != multilabel:
                raise ValueError("y must be of the same kind (multilabel or not) as in the previous call to fit")
            if self.warm_start and not incremental:
                if set(present) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                        f"Previously got {self.classes_}, `y` has {present}"
                    )
            elif len(np.setdiff1d(present, self.classes_)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {present}."
                )
        if multilabel:
            T = np.asarray(y, dtype=np.float64)
            return T, None, np.asarray(y)
        index = np.searchsorted(self.classes_, y)
        n_classes = len(self.classes_)
        out_act = self._output_activation_name(n_classes)
        n_out = 1 if n_classes == 2 and out_act != "softmax" else n_classes
        if n_out == 1:
            T = index.astype(np.float64).reshape(-1, 1)
        else:
            T = np.zeros((index.shape[0], n_out))
            T[np.arange(index.shape[0]), index] = 1.0
        return T, index, index

    def _output_activation_name(self, n_classes: int) -> str:
        if self.output_activation is not None:
            return get_activation(_act_spec(self.output_activation)).name
        if n_classes == 2 or getattr(self, "_multilabel", False):
            return "sigmoid"
        return "softmax"

    def _output_spec(self, n_targets: int) -> tuple[int, Any, Any]:
        out_name = self._output_activation_name(len(self.classes_))
        out_act = out_name if self.output_activation is None else self.output_activation
        loss = self.loss
        if loss is None or loss in ("cross_entropy", "log_loss", "binary_cross_entropy", "binary_log_loss"):
            if out_name == "softmax":
                loss = "cross_entropy"
            elif out_name == "sigmoid":
                loss = "binary_cross_entropy"
            else:
                raise ValueError(
                    "cross-entropy needs a softmax or logistic output, got "
                    f"output_activation={self.output_activation!r}; "
                    "use loss='squared_error' with other output activations"
                )
        return n_targets, out_act, loss

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train on ``X`` (n_samples, n_features) and class labels ``y`` (or a multilabel indicator matrix).

        ``sample_weight`` (n_samples,) weights each example's loss: the gradient of a batch is the weighted mean;
        examples of weight 0 are left out. Returns ``self``.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, classes: Any = None, *, sample_weight: Any = None) -> MLPClassifier:
        """One epoch over (X, y), continuing the weights and the optimiser's state of the previous calls.

        ``classes`` (every label that will ever occur) is required on the first call, as in scikit-learn.
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels (a 0/1 indicator matrix for multilabel targets)."""
        out = self._forward(X)
        if self._multilabel:
            return (out > 0.5).astype(int)
        if out.shape[1] == 1:
            return self.classes_[(out[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[np.argmax(out, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        out = self._forward(X)
        if out.shape[1] == 1 and not self._multilabel:
            return np.hstack([1.0 - out, out])
        return out

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def _score_encoded(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        out = self._forward_array(X)
        if self._multilabel:
            pred: np.ndarray = (out > 0.5).astype(int)
        elif out.shape[1] == 1:
            pred = (out[:, 0] > 0.5).astype(np.intp)
        else:
            pred = np.argmax(out, axis=1)
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    _label_keys = frozenset({"classes_", "multilabel"})

    def _saved_labels(self) -> dict[str, Any]:
        return {"classes_": labels_to_json(self.classes_), "multilabel": bool(self._multilabel)}

    def _restore_labels(self, fitted: dict[str, Any], net: Network, bad: _Bad) -> None:
        try:
            classes = labels_from_json(fitted["classes_"], "classes_")
        except ValueError as exc:
            raise bad(str(exc)) from None
        multilabel = fitted["multilabel"]
        if not isinstance(multilabel, bool):
            raise bad(f"multilabel must be true or false, got {multilabel!r}")
        values = classes.tolist()
        if len(values) < 2 or len(set(values)) != len(values) or not np.all(classes[:-1] < classes[1:]):
            raise bad("classes_ must be at least two distinct labels, sorted")
        n_out = net.n_outputs
        if multilabel:
            if values != list(range(n_out)) or classes.dtype.kind != "i" or net.classes is not None:
                raise bad(f"a multilabel classifier's classes_ are 0..{n_out - 1} and its network has no labels")
        else:
            if not (len(values) == n_out or (len(values) == 2 and n_out == 1)):
                raise bad(f"{len(values)} classes do not fit a network with {n_out} output(s)")
            if net.classes is None or net.classes.tolist() != values:
                raise bad("classes_ differ from the network's class labels")
            net.classes = classes
        self.classes_ = classes
        self._multilabel = multilabel

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multilabel": True}


# ----------------------------------------------------------------------------------------- regressor
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by deltaprop's backpropagation (scikit-learn API).

    The parameters are those of :class:`MLPClassifier`, except that ``loss`` None is squared error — per example
    Σₖ ½(yₖ − ŷₖ)², averaged over the batch, whose gradient is scikit-learn's (for several outputs scikit-learn's
    ``loss_curve_`` is this divided by the number of outputs) — and ``output_activation`` None is the identity.
    ``y`` may have several columns (multi-output regression).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(200, 2)); y = X[:, 0] - 2 * X[:, 1]
    >>> reg = MLPRegressor((16,), learning_rate_init=0.01, max_iter=300, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    _task = "regression"

    def _encode_targets(
        self, y: np.ndarray, *, first_pass: bool, incremental: bool, classes: Any
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        T = np.asarray(y, dtype=np.float64)
        if T.ndim == 1:
            T = T.reshape(-1, 1)
        if not first_pass and T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} output column(s) but the fitted network has {self.n_outputs_}")
        return T, None, np.asarray(y)

    def _output_spec(self, n_targets: int) -> tuple[int, Any, Any]:
        out_act = "identity" if self.output_activation is None else self.output_activation
        loss = "squared_error" if self.loss is None else self.loss
        return n_targets, out_act, loss

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or (n_samples, n_outputs).

        ``sample_weight`` (n_samples,) weights each example's loss; examples of weight 0 are left out. Returns ``self``.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, *, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y), continuing the weights and the optimiser's state of the previous calls."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    def _score_encoded(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        out = self._forward_array(X)
        pred = out.ravel() if out.shape[1] == 1 else out
        if not np.all(np.isfinite(pred)):
            return float("nan")
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multioutput": True}


# ------------------------------------------------------------------------------------- saving and loading
#: the version of the ``"sklearn_estimator"`` metadata that :meth:`MLPClassifier.save` writes
_SAVE_FORMAT_VERSION = 1
#: names of the estimator's arrays in the model file (``extra.sklearn.…`` tensors)
_SAVED_PREFIX = "sklearn."
_STATE_KEYS = {"format_version", "class", "params", "dropped_params", "converted_params", "fitted"}
_FITTED_KEYS = frozenset(
    {
        "n_features_in_",
        "feature_names_in_",
        "n_outputs_",
        "n_layers_",
        "out_activation_",
        "loss_",
        "loss_curve_",
        "best_loss_",
        "validation_scores_",
        "best_validation_score_",
        "n_iter_",
        "t_",
        "no_improvement_count",
        "history_",
        "optimizer",
    }
)
_ESTIMATORS: dict[str, type[_BaseMLP]] = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
#: a tuple stored as JSON: ``{"__tuple__": [...]}``
_TUPLE_TAG = "__tuple__"
_Bad = Callable[[str], ModelFileError]


class _NotJSON(Exception):
    pass


def _to_json(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data (tuples tagged so that they come back as tuples); :class:`_NotJSON` if it is not."""
    if depth > 32:
        raise _NotJSON
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, tuple):
        return {_TUPLE_TAG: [_to_json(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, depth + 1) for v in value]
    if isinstance(value, dict) and _TUPLE_TAG not in value and all(isinstance(k, str) for k in value):
        return {k: _to_json(v, depth + 1) for k, v in value.items()}
    raise _NotJSON


def _from_json(value: Any) -> Any:
    """The value that :func:`_to_json` stored; ``ValueError`` for a badly tagged tuple."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if _TUPLE_TAG in value:
            if len(value) != 1 or not isinstance(value[_TUPLE_TAG], list):
                raise ValueError(f"a tuple is stored as {{{_TUPLE_TAG!r}: [...]}}, got {value!r}")
            return tuple(_from_json(v) for v in value[_TUPLE_TAG])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _json_equivalent(est: _BaseMLP, name: str, value: Any) -> Any:
    """The JSON data that stands for a parameter ``value`` that is not JSON data itself, or None."""
    try:
        if name in ("activation", "output_activation", "loss") and callable(getattr(value, "get_config", None)):
            return _to_json(value.get_config())
        if name == "dtype":
            return str(np.dtype(value))
        if name == "hidden_layer_sizes":
            return est._hidden_sizes()
    except (_NotJSON, ValueError, TypeError):
        pass
    return None


def _params_to_json(est: _BaseMLP) -> tuple[dict[str, Any], list[str], list[str]]:
    """(the parameters as JSON, the names stored as null, the names stored as a JSON equivalent)."""
    params: dict[str, Any] = {}
    dropped: list[str] = []
    converted: list[str] = []
    for name, value in est.get_params(deep=False).items():
        try:
            params[name] = _to_json(value)
            continue
        except _NotJSON:
            pass
        params[name] = _json_equivalent(est, name, value)
        (dropped if params[name] is None else converted).append(name)
    return params, dropped, converted


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars turned into Python ones (JSON data)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _optimizer_to_json(est: _BaseMLP) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """The optimiser that ``partial_fit`` continues with, and its state: (JSON, arrays), or (None, {})."""
    from .optim import OPTIMIZERS

    opt, state = getattr(est, "_optimizer", None), getattr(est, "_opt_state", None)
    if not isinstance(opt, _L2Optimizer) or not isinstance(state, dict):
        return None, {}
    inner = opt.inner
    if type(inner) is not _SklearnSGD and type(inner) not in OPTIMIZERS.values():
        return None, {}  # an optimiser deltaprop cannot rebuild from its config: partial_fit starts a fresh one
    theta = est.network_.theta
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            return None, {}
        if isinstance(value, np.ndarray):
            if value.shape != theta.shape or value.dtype != theta.dtype:
                return None, {}
            arrays[key] = value.copy()
        elif value is None or isinstance(value, (bool, np.bool_, numbers.Real)):
            scalars[key] = _plain(value)
        else:
            return None, {}
    try:
        config = json.loads(json.dumps(_plain(inner.get_config())))
    except (TypeError, ValueError):
        return None, {}
    return {"config": config, "scalars": scalars, "arrays": sorted(arrays)}, arrays


def _optimizer_from_json(
    spec: Any, arrays: dict[str, np.ndarray], net: Network, alpha: float, bad: _Bad
) -> tuple[_L2Optimizer, dict[str, Any]]:
    """The optimiser and state that :func:`_optimizer_to_json` stored, checked against ``net``."""
    from .optim import optimizer_from_config

    if not isinstance(spec, dict) or set(spec) != {"config", "scalars", "arrays"}:
        raise bad("optimizer must be null or an object with keys ['arrays', 'config', 'scalars']")
    config, scalars, names = spec["config"], spec["scalars"], spec["arrays"]
    if not isinstance(config, dict) or not isinstance(scalars, dict) or not isinstance(names, list):
        raise bad("the optimizer's config and scalars must be objects and its arrays a list")
    inner: Any
    if config.get("name") == "sklearn_sgd":
        if set(config) != {"name", "lr", "momentum", "nesterov"} or not isinstance(config["nesterov"], bool):
            raise bad(f"bad sgd optimizer config {config!r}")
        lr = _json_number(config["lr"], "the optimizer's lr", bad)
        momentum = _json_number(config["momentum"], "the optimizer's momentum", bad)
        if not (math.isfinite(lr) and lr >= 0.0 and 0.0 <= momentum <= 1.0):
            raise bad(f"bad sgd optimizer config {config!r}")
        inner = _SklearnSGD(lr, momentum, config["nesterov"])
    else:
        try:
            inner = optimizer_from_config(config)
            if not math.isfinite(float(inner.lr)):
                raise ValueError("lr must be finite")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            raise bad(f"bad optimizer config {config!r} ({type(exc).__name__}: {exc})") from None
    try:
        state = inner.init(net.theta)
    except (ValueError, TypeError) as exc:
        raise bad(f"the optimizer does not fit the network ({exc})") from None
    if not all(isinstance(n, str) for n in names) or set(names) != set(arrays) or set(names) & set(scalars):
        raise bad(f"the optimizer's arrays {names!r} are not the arrays stored ({sorted(arrays)})")
    if set(state) != set(scalars) | set(names):
        raise bad(
            f"the optimizer's state has {sorted(set(scalars) | set(names))}; this optimizer needs {sorted(state)}"
        )
    for key in names:
        if not isinstance(state[key], np.ndarray):
            raise bad(f"the optimizer's state {key!r} is not an array")
        _check_like_theta(arrays[key], net, f"optimizer.{key}", bad)
        state[key][...] = arrays[key]
    for key, value in scalars.items():
        fresh = state[key]
        if isinstance(fresh, bool) or isinstance(fresh, np.ndarray):
            ok = isinstance(value, bool) and not isinstance(fresh, np.ndarray)
        elif isinstance(fresh, numbers.Integral):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif isinstance(fresh, numbers.Real):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = value is None and fresh is None
        if not ok:
            raise bad(f"the optimizer's state {key!r} has the wrong type ({value!r})")
        state[key] = value
    return _L2Optimizer(inner, alpha, _weight_slices(net)), state


def _check_like_theta(arr: np.ndarray, net: Network, name: str, bad: _Bad) -> None:
    if arr.shape != net.theta.shape or arr.dtype != net.theta.dtype:
        raise bad(f"array {name!r} must have the shape {net.theta.shape} and dtype {net.theta.dtype} of the weights")
    if not np.all(np.isfinite(arr)):
        raise bad(f"array {name!r} contains NaN or infinite values")


def _json_int(d: dict[str, Any], key: str, bad: _Bad, *, low: int = 0) -> int:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad(f"{key} must be an integer >= {low}, got {value!r}")
    return value


def _json_number(value: Any, what: str, bad: _Bad, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(f"{what} must be a number{' or null' if optional else ''}, got {value!r}")
    return float(value)


def _json_numbers(value: Any, what: str, bad: _Bad, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, list):
        raise bad(f"{what} must be a list of numbers{' or null' if optional else ''}")
    return [_json_number(v, what, bad) for v in value]


def _history_from_json(spec: Any, bad: _Bad) -> History:
    required = {"epoch", "stop_reason", "best_epoch"}
    allowed = required | set(History.KEYS)
    if not isinstance(spec, dict) or not required <= set(spec) <= allowed:
        raise bad(f"history_ must be an object with keys {sorted(required)} and some of {list(History.KEYS)}")
    epochs = spec["epoch"]
    if not isinstance(epochs, list) or not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs):
        raise bad("history_ epoch must be a list of integers")
    for key in History.KEYS:
        values = spec.get(key, [None] * len(epochs))
        if (
            not isinstance(values, list)
            or len(values) != len(epochs)
            or not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
        ):
            raise bad(f"history_ {key} must be a list of {len(epochs)} numbers or nulls")
    if not isinstance(spec["stop_reason"], str):
        raise bad("history_ stop_reason must be a string")
    best = spec["best_epoch"]
    if best is not None and (isinstance(best, bool) or not isinstance(best, int)):
        raise bad("history_ best_epoch must be null or an integer")
    return History.from_dict(spec)


def _check_specs(est: _BaseMLP) -> None:
    """Check loss, output_activation, optimizer and random_state (which fit checks only as it uses them)."""
    from .losses import get_loss
    from .optim import get_optimizer

    if not isinstance(est.random_state, np.random.RandomState):
        check_random_state(est.random_state)  # an instance would be consumed; ints and None are checked

    if est.output_activation is not None:
        get_activation(_act_spec(est.output_activation))
    if est.loss is not None and est.loss not in ("log_loss", "binary_log_loss"):
        get_loss(est.loss)
    if est.optimizer is not None:
        spec = est.optimizer
        get_optimizer(copy.deepcopy(spec), lr=est.learning_rate_init if isinstance(spec, str) else None)


def estimator_from_network(net: Network, path: Any) -> _BaseMLP:
    """The fitted estimator saved with ``net`` (``net.metadata["sklearn_estimator"]``), checked thoroughly.

    Used by :func:`deltaprop.load`. Any saved value that is not what :meth:`MLPClassifier.save` writes raises
    :class:`~deltaprop.io.ModelFileError`; nothing from the file is run.
    """
    where = os.fspath(path)

    def bad(what: str) -> ModelFileError:
        return ModelFileError(
            f"{where}: the scikit-learn estimator saved in it is not valid: {what}; it is not a usable deltaprop "
            "model file"
        )

    spec = net.metadata.get(SKLEARN_ESTIMATOR_KEY)
    if not isinstance(spec, dict) or set(spec) != _STATE_KEYS:
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise bad(f"'{SKLEARN_ESTIMATOR_KEY}' must be an object with keys {sorted(_STATE_KEYS)}, got {got}")
    version = spec["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise bad(f"format_version must be a positive integer, got {version!r}")
    if version > _SAVE_FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: the estimator was saved by a newer deltaprop (estimator format {version}, this one reads up to "
            f"{_SAVE_FORMAT_VERSION}); upgrade deltaprop to load it"
        )
    name = spec["class"]
    cls = _ESTIMATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise bad(f"unknown estimator class {name!r}; deltaprop saves {' or '.join(_ESTIMATORS)}")
    params = spec["params"]
    expected = set(cls._get_param_names())
    if not isinstance(params, dict) or set(params) != expected:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise bad(f"params must be an object with the {cls.__name__} parameters {sorted(expected)}, got {got}")
    for key in ("dropped_params", "converted_params"):
        names = spec[key]
        if not isinstance(names, list) or not all(isinstance(n, str) and n in expected for n in names):
            raise bad(f"{key} must be a list of parameter names, got {names!r}")
    if any(params[n] is not None for n in spec["dropped_params"]):
        raise bad("dropped parameters must be stored as null")
    try:
        est = cls(**{k: _from_json(v) for k, v in params.items()})
        est._check_params()
        _check_specs(est)
    except (ValueError, TypeError) as exc:
        raise bad(f"{cls.__name__} rejects its parameters ({exc})") from None
    est._restore(spec["fitted"], net, bad)
    return est
