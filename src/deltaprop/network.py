"""Network: a stack of fully connected layers, trained by backpropagation.

All weights and biases live in one flat buffer ``theta`` and all gradients in ``grad`` (same length); each layer's
``W``, ``b``, ``dW``, ``db`` are views into them. One training step is::

    net.forward(X)      # layer by layer: net = X·W + b, out = f(net)
    net.backward(Y)     # δ at the output from the loss, then δ_hidden = (δ_next · Wᵀ) ⊙ f′(net), dW = outᵀ · δ
    net.step(lr)        # w ← w − lr · ∂E/∂w

>>> from deltaprop import MLP
>>> net = MLP([2, 2, 2], seed=0)
>>> E_before = net.loss([[0.05, 0.10]], [[0.01, 0.99]])
>>> _ = net.forward([[0.05, 0.10]]); net.backward([[0.01, 0.99]]); net.step(0.5)
>>> net.loss([[0.05, 0.10]], [[0.01, 0.99]]) < E_before
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import native
from .activations import Activation, get_activation
from .backend import device_of, dtype_in, is_foreign_array, to_host, xp_of
from .initializers import initialize
from .layers import Dense
from .losses import CrossEntropy, Loss, get_loss

if TYPE_CHECKING:
    from .fused import FusedSGD
    from .train import History

__all__ = ["Network", "MLP", "check_inputs"]

Array = Any
_DTYPES = {"float32": np.float32, "float64": np.float64}


def layer_views(layer_sizes: Sequence[int], flat: Array) -> list[tuple[Array, Array]]:
    """Every layer's (W, b) as views of a flat buffer laid out like ``theta``: W (n_in, n_out) row-major, then b.

    >>> import numpy as np
    >>> [(W.shape, b.shape) for W, b in layer_views([3, 2, 1], np.zeros(11))]
    [((3, 2), (2,)), ((2, 1), (1,))]
    """
    xp = np if isinstance(flat, np.ndarray) else xp_of(flat)
    views = []
    offset = 0
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        w_end = offset + n_in * n_out
        views.append((xp.reshape(flat[offset:w_end], (n_in, n_out)), flat[w_end : w_end + n_out]))
        offset = w_end + n_out
    return views


class Network:
    """A multi-layer perceptron whose parameters live in one flat buffer. Build one with :func:`MLP`."""

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activations: Sequence[Activation],
        loss: Loss,
        dtype: Any = np.float32,
    ) -> None:
        self.layer_sizes = [int(n) for n in layer_sizes]
        self.dtype = np.dtype(dtype)
        self.loss_function = loss
        shapes = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        n_params = sum(n_in * n_out + n_out for n_in, n_out in shapes)
        #: every weight and bias, layer by layer (W row-major, then b)
        self.theta = np.zeros(n_params, dtype=self.dtype)
        #: ∂E/∂theta after ``backward``, same layout
        self.grad = np.zeros(n_params, dtype=self.dtype)
        self.layers: list[Dense] = []
        for (W, b), (dW, db), activation in zip(
            layer_views(self.layer_sizes, self.theta), layer_views(self.layer_sizes, self.grad), activations
        ):
            self.layers.append(Dense(W, b, dW, db, activation))
        #: class labels when the network was trained as a classifier (``predict`` then returns labels)
        self.classes: np.ndarray | None = None
        #: JSON data saved with the model (the command line keeps its preprocessing here)
        self.metadata: dict[str, Any] = {}
        #: named arrays saved with the model (e.g. the command line's input scaling)
        self.extra_arrays: dict[str, np.ndarray] = {}
        self.layers[-1].keep_net = True
        # record ∂E/∂out and δ of every layer on backward (trace_step turns this on)
        self._record = False
        # reuse per-batch-size buffers in _forward (the training loop turns this on; results are then overwritten
        # by the next pass, so nothing outside the loop may keep them)
        self._reuse_buffers = False

    # ------------------------------------------------------------------ shape
    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def n_params(self) -> int:
        return int(self.theta.shape[0])

    @property
    def activations(self) -> list[Activation]:
        return [layer.activation for layer in self.layers]

    def frozen_mask(self) -> np.ndarray:
        """Boolean mask over ``theta``: True for parameters that training must not change (frozen biases)."""
        mask = np.zeros(self.n_params, dtype=bool)
        offset = 0
        for layer in self.layers:
            offset += layer.n_in * layer.n_out
            if not layer.bias_trainable:
                mask[offset : offset + layer.n_out] = True
            offset += layer.n_out
        return mask

    def bias_mask(self) -> np.ndarray:
        """Boolean mask over ``theta``: True where the parameter is a bias."""
        mask = np.zeros(self.n_params, dtype=bool)
        offset = 0
        for layer in self.layers:
            offset += layer.n_in * layer.n_out
            mask[offset : offset + layer.n_out] = True
            offset += layer.n_out
        return mask

    # ---------------------------------------------------------- array library
    @property
    def xp(self) -> Any:
        """The array namespace the parameters live in: ``numpy`` (the default) or an array-api-compat namespace."""
        return xp_of(self.theta)

    @property
    def device(self) -> Any:
        """The device of the parameters: ``"cpu"`` for NumPy, else the array API's ``device(theta)``."""
        return device_of(self.theta)

    def to(self, xp: Any, device: Any = None) -> Network:
        """Move the parameters into the array library ``xp`` (``numpy``, ``torch``, ``cupy``, an array-api-compat
        namespace…) on ``device`` (None: the library's default); returns the network itself.

        ``theta`` and ``grad`` are reallocated there and every layer's W, b, dW, db rebuilt as views into them;
        the values are kept. ``classes`` (class labels) stay NumPy.
        """
        theta = to_host(self.theta)
        if getattr(xp, "__name__", "") == "numpy" or xp is np:
            new_theta = np.ascontiguousarray(theta, dtype=self.dtype).copy()
            new_grad = np.zeros_like(new_theta)
            xp = np
        else:
            dtype = dtype_in(xp, self.dtype)
            if device is None:
                new_theta = xp.asarray(theta.copy(), dtype=dtype)
            else:
                new_theta = xp.asarray(theta.copy(), dtype=dtype, device=device)
            xp = xp_of(new_theta)
            new_grad = xp.zeros_like(new_theta)
        self.theta, self.grad = new_theta, new_grad
        views = zip(self.layers, layer_views(self.layer_sizes, new_theta), layer_views(self.layer_sizes, new_grad))
        for layer, (W, b), (dW, db) in views:
            layer.W, layer.b, layer.dW, layer.db = W, b, dW, db
            layer.inputs = layer.net = layer.out = None
            layer._buffers = {}
        return self

    # ------------------------------------------------------------- the maths
    def forward(self, X: Any) -> Array:
        """Forward pass: each layer's out = f(out_below · W + b). Returns the network's output.

        ``X`` has shape (n_examples, n_inputs); a single example may be given as a 1-D sequence, and then the
        output is 1-D too.
        """
        X, single = check_inputs(X, self.n_inputs, self.dtype, name="X")
        X = self._in_own_library(X)
        out = self._forward(X)
        return out[0, ...] if single else out

    def _in_own_library(self, X: Array) -> Array:
        """``X`` as an array of the parameters' library and device (inputs of another library are converted)."""
        theta = self.theta
        if isinstance(X, np.ndarray) and isinstance(theta, np.ndarray):
            return X
        if isinstance(theta, np.ndarray):
            return np.ascontiguousarray(to_host(X), dtype=self.dtype)
        xp, dev = xp_of(theta), device_of(theta)
        if not isinstance(X, np.ndarray):
            if xp_of(X) is xp and device_of(X) == dev:
                return X
            X = to_host(X)
        return xp.asarray(np.ascontiguousarray(X, dtype=self.dtype), device=dev)

    def _forward(self, X: Array) -> Array:
        """Forward pass without input checks (for the training loop, which checks its data once)."""
        out = X
        reuse = self._reuse_buffers
        for layer in self.layers:
            out = layer.forward(out, reuse=reuse)
        return out

    def backward(self, Y: Any) -> None:
        """Backward pass for the last ``forward``: fill every layer's ``dW``, ``db`` (and ``grad``).

        The gradients are those of the loss averaged over the batch. Hidden-layer deltas use the weights as they are
        now, before any update (as the seed's algorithm does).
        """
        last = self.layers[-1]
        if last.out is None:
            raise RuntimeError("backward() needs a forward() first: call net.forward(X) with the same batch")
        t = self._targets(Y, n_examples=last.out.shape[0])
        if t.shape[0] != last.out.shape[0]:
            raise ValueError(
                f"Y has {t.shape[0]} examples but the last forward pass had {last.out.shape[0]}; "
                "call backward with the targets of the batch you passed to forward"
            )
        self._backward(t)

    def _backward(self, t: Array, sample_weight: Array | None = None, fused: FusedSGD | None = None) -> None:
        """Backward pass from prepared targets ``t`` (shape (n, n_outputs), network dtype).

        ``sample_weight`` (n,) turns the batch mean into a weighted mean: each example's δ is scaled by w / mean(w).
        ``fused`` (the training loop's :class:`deltaprop.fused.FusedSGD`) sends each layer's gradient into the
        optimiser's momentum buffer (``b ← μ·b + g`` in the matrix product) instead of ``grad``.
        """
        last = self.layers[-1]
        loss = self.loss_function
        if self._record:
            last.dE_dout = loss.dE_dout(last.out, t)
        delta = loss.output_delta(last.out, t, last.net, last.activation)  # δ_out = ∂E/∂net at the output
        if sample_weight is not None:
            xp = xp_of(delta)
            total = float(xp.sum(sample_weight))
            scale = sample_weight * (sample_weight.shape[0] / total) if total > 0 else sample_weight * 0.0
            delta *= xp.reshape(_astype(scale, delta.dtype), (-1, 1))
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if self._record:
                layer.delta = _copy(delta)
            into = None if fused is None else fused.gradient_target(i)
            dE_dout_below = layer.backward(delta, input_grad=i > 0, into=into)
            if i > 0:
                below = self.layers[i - 1]
                if self._record:
                    below.dE_dout = _copy(dE_dout_below)
                # δ_below = (δ · Wᵀ) ⊙ f′(net_below)
                delta = below.activation.backward(dE_dout_below, below.net, below.out)

    def _targets(self, Y: Any, n_examples: int) -> Array:
        """Targets as a (n, n_outputs) array; one example's targets may be a 1-D sequence of n_outputs values."""
        if n_examples == 1 and self.n_outputs > 1 and np.ndim(Y) == 1 and len(Y) == self.n_outputs:
            Y = [Y]
        return self.loss_function.targets(Y, self.n_outputs, self.dtype)

    def loss(self, X: Any, Y: Any) -> float:
        """E for inputs ``X`` and targets ``Y``: the loss averaged over the examples (a forward pass)."""
        X, single = check_inputs(X, self.n_inputs, self.dtype, name="X")
        t = self._targets(Y, n_examples=X.shape[0])
        if t.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} examples but Y has {t.shape[0]}; they must match")
        out = self._forward(X)
        return self._batch_loss(out, t)

    def _kept_softmax(self, out: Array) -> tuple[CrossEntropy, Array, Array, Array] | None:
        """(the cross-entropy loss, the output layer's net, row max m, row sum s) kept by the softmax whose forward
        pass gave ``out``, so that the loss need not exponentiate again; None when the loss or output is another."""
        last, loss = self.layers[-1], self.loss_function
        kept = getattr(last.activation, "kept", None)
        if kept is None or kept[0] is not out or last.net is None or not isinstance(loss, CrossEntropy):
            return None
        return loss, last.net, kept[1], kept[2]

    def _batch_loss(self, out: Array, t: Array) -> float:
        """E of the last forward pass (whose output is ``out``) against targets ``t``."""
        kept = self._kept_softmax(out)
        if kept is None:
            return self.loss_function.value(out, t, self.layers[-1].net)
        ce, net, m, s = kept
        if not isinstance(out, np.ndarray):
            return float(ce.value_array_from_softmax(t, net, m, s))
        return ce.value_from_softmax(t, net, m, s)

    def _batch_loss_sum_array(self, out: Array, t: Array) -> Any:
        """``_batch_loss`` times the batch's size (E summed over its examples), as a 0-d array of the parameters'
        library, left on its device (no synchronisation)."""
        kept = self._kept_softmax(out)
        if kept is None:
            return self.loss_function.value_array(out, t, self.layers[-1].net) * out.shape[0]
        ce, net, m, s = kept
        return ce.sum_array_from_softmax(t, net, m, s)

    def step(self, lr: float) -> None:
        """Plain gradient descent on every parameter: w ← w − lr · ∂E/∂w (the gradients of the last backward)."""
        if not isinstance(lr, (int, float, np.floating)) or isinstance(lr, bool) or not np.isfinite(lr) or lr < 0:
            raise ValueError(f"lr must be a finite non-negative number, got {lr!r}")
        self.theta -= (self.dtype.type(lr) if isinstance(self.theta, np.ndarray) else float(lr)) * self.grad

    def zero_grad(self) -> None:
        """Set every gradient to 0."""
        self.grad[...] = 0.0

    # ----------------------------------------------------------- prediction
    def predict(self, X: Any) -> Array:
        """Outputs for ``X``; for a network trained as a classifier, the predicted class labels.

        The outputs are arrays of the network's library (NumPy, or e.g. torch tensors on the network's device for
        a network built with ``device=``/trained on tensors). Class labels are always NumPy arrays (``classes``
        may hold strings, which other libraries cannot).
        """
        out = self.forward(X)
        if self.classes is None:
            return out
        return self.classes[to_host(self._class_index(out))]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy for a classifier, R² (averaged over outputs) for a regressor."""
        from .train import score

        return score(self, X, y)

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities (one column per class in ``classes``) of a classifier."""
        if self.classes is None:
            raise ValueError("predict_proba needs a classifier: this network was not trained on class labels")
        out = self.forward(X)
        if not isinstance(out, np.ndarray):
            xp = xp_of(out)
            out = xp.reshape(out, (1, -1)) if out.ndim == 1 else out
            return xp.concat([1.0 - out, out], axis=1) if self.n_outputs == 1 else out
        if out.ndim == 1:
            out = out.reshape(1, -1)
        if self.n_outputs == 1:  # one sigmoid output: P(class 1)
            return np.concatenate([1.0 - out, out], axis=1)
        return out

    def _class_index(self, out: Array) -> Array:
        if not isinstance(out, np.ndarray):  # another array library: the array API's functions
            xp = xp_of(out)
            out = xp.reshape(out, (1, -1)) if out.ndim == 1 else out
            return xp.astype(out[:, 0] > 0.5, xp.int64) if self.n_outputs == 1 else xp.argmax(out, axis=1)
        if out.ndim == 1:
            out = out.reshape(1, -1)
        if self.n_outputs == 1:
            return (out[:, 0] > 0.5).astype(np.intp)
        return out.argmax(axis=1)

    # -------------------------------------------------------------- weights
    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """A copy of every layer's (W, b)."""
        return [(_copy(layer.W), _copy(layer.b)) for layer in self.layers]

    def set_weights(self, weights: Sequence[tuple[Any, Any]]) -> None:
        """Copy ``weights`` — a list of (W, b), one per layer, shapes (n_in, n_out) and (n_out,) — into the network."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} (W, b) pairs, one per layer, got {len(weights)}")
        checked = []
        for i, (pair, layer) in enumerate(zip(weights, self.layers)):
            if len(pair) != 2:
                raise ValueError(f"weights[{i}] must be a (W, b) pair")
            W = _numeric_array(pair[0], f"weights[{i}] W")
            b = _numeric_array(pair[1], f"weights[{i}] b")
            if W.shape != layer.W.shape or b.shape != layer.b.shape:
                raise ValueError(
                    f"layer {i}: expected W of shape {layer.W.shape} and b of shape {layer.b.shape}, "
                    f"got {W.shape} and {b.shape}"
                )
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {i}: weights contain NaN or infinite values")
            checked.append((W, b))
        for (W, b), layer in zip(checked, self.layers):
            layer.W[...] = self._in_own_library(W)  # NumPy values copied to the parameters' device
            layer.b[...] = self._in_own_library(b)

    def freeze_biases(self, layers: Sequence[int] | None = None, frozen: bool = True) -> None:
        """Hold the biases of ``layers`` (all if None) fixed during training (``frozen=False`` trains them again)."""
        for i in range(len(self.layers)) if layers is None else layers:
            self.layers[i].bias_trainable = not frozen

    # -------------------------------------------------------------- training
    def fit(self, X: Any, y: Any, **kwargs: Any) -> History:
        """Train by backpropagation; see :func:`deltaprop.train.fit` for every option."""
        from .train import fit

        return fit(self, X, y, **kwargs)

    def save(self, path: Any) -> None:
        """Save to a safetensors file with JSON metadata, atomically; read it back with ``deltaprop.load``."""
        from .io import save

        save(self, path)

    def to_onnx(self, path: Any) -> None:
        """Export to a standard ONNX graph (Gemm + activations); needs the extra ``[onnx]``."""
        from .onnx_export import to_onnx

        to_onnx(self, path)

    # ------------------------------------------------------------ describing
    def get_config(self) -> dict[str, Any]:
        """Architecture as plain data (JSON-serialisable)."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "activations": [a.get_config() for a in self.activations],
            "loss": self.loss_function.get_config(),
            "dtype": self.dtype.name,
            "bias_trainable": [layer.bias_trainable for layer in self.layers],
        }

    def summary(self) -> str:
        """A table of the layers, their shapes and parameter counts."""
        lines = [f"{'layer':<8}{'shape':<14}{'activation':<14}{'params':>8}"]
        for i, layer in enumerate(self.layers, 1):
            shape = f"{layer.n_in} → {layer.n_out}"
            lines.append(f"{i:<8}{shape:<14}{layer.activation.name:<14}{layer.W.size + layer.b.size:>8}")
        lines.append(f"total {self.n_params} parameters ({self.dtype.name}), loss {self.loss_function.name}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        acts = ",".join(a.name for a in self.activations)
        loss = self.loss_function.name
        return f"Network({self.layer_sizes}, activations=[{acts}], loss={loss!r}, dtype={self.dtype.name})"


def MLP(
    layer_sizes: Sequence[int],
    *,
    activation: str | Activation | Sequence[str | Activation] = "sigmoid",
    output_activation: str | Activation | None = None,
    loss: str | Loss = "squared_error",
    init: str | Sequence[tuple[Any, Any]] = "uniform",
    dtype: str | Any = "float32",
    seed: int | np.random.Generator | None = None,
    device: Any = None,
) -> Network:
    """Build a multi-layer perceptron.

    Args:
        layer_sizes: [inputs, hidden…, outputs], e.g. ``[2, 2, 2]`` for the seed's worked example.
        activation: activation of the hidden layers (a name, or one per hidden layer): sigmoid, tanh, relu,
            leaky_relu, elu, softplus, identity.
        output_activation: activation of the output layer; None means the same as ``activation``.
        loss: ``squared_error`` (per example Σ ½(t − o)², averaged over the batch), ``mse``, ``cross_entropy``
            (softmax output), ``binary_cross_entropy`` (sigmoid output).
        init: ``uniform`` (small random values U(±1/√n_in)), ``glorot_uniform``, ``he_normal``, ``he_uniform``,
            or explicit arrays: a list of (W, b) per layer.
        dtype: ``float32`` (default, fast) or ``float64``.
        seed: seed (or ``numpy.random.Generator``) for the initial weights; same seed, same network.
        device: None (default) keeps the parameters in NumPy (the fast CPU path). ``"cpu"``, ``"cuda"``,
            ``"cuda:1"`` or a ``torch.device`` puts them in PyTorch tensors on that device (needs torch, extra
            ``[gpu]``): ``forward``/``predict`` then return tensors there, ``fit`` trains there. The initial weights
            are the same as with NumPy (drawn with NumPy, then copied). Classifiers' ``predict`` still returns
            NumPy class labels. See also :meth:`Network.to`.

    >>> net = MLP([2, 2, 2], init=[([[.15, .25], [.20, .30]], [.35, .35]),
    ...                            ([[.40, .50], [.45, .55]], [.60, .60])], dtype="float64")
    >>> [round(float(o), 9) for o in net.forward([0.05, 0.10])]
    [0.75136507, 0.772928465]
    """
    sizes = _check_layer_sizes(layer_sizes)
    n_layers = len(sizes) - 1
    if isinstance(activation, (str, Activation, dict)):
        hidden = [get_activation(activation) for _ in range(n_layers - 1)]
        default_out: Any = activation
    else:
        acts = list(activation)
        if len(acts) != n_layers - 1:
            raise ValueError(
                f"activation lists one activation per hidden layer: expected {n_layers - 1}, got {len(acts)}"
            )
        hidden = [get_activation(a) for a in acts]
        default_out = acts[-1] if acts else "sigmoid"
    out_act = get_activation(default_out if output_activation is None else output_activation)
    for i, act in enumerate(hidden):
        if act.output_only:
            raise ValueError(f"{act.name} can only be used as output_activation, not in hidden layer {i + 1}")
    loss_fn = get_loss(loss)
    loss_fn.check_activation(out_act)
    if isinstance(dtype, str) and dtype in _DTYPES:
        np_dtype = np.dtype(_DTYPES[dtype])
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            np_dtype = np.dtype(object)
        if np_dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    net = Network(sizes, [*hidden, out_act], loss_fn, np_dtype)
    if isinstance(init, str):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        net.set_weights([initialize(init, n_in, n_out, rng) for n_in, n_out in zip(sizes[:-1], sizes[1:])])
    else:
        net.set_weights(init)
    if device is not None:
        net.to(*_torch_device(device))
    return net


def _torch_device(device: Any) -> tuple[Any, Any]:
    """(torch, torch.device) for ``MLP(..., device=...)``; a clear error without torch or for a bad device."""
    from .backend import require

    torch = require("torch", "gpu", f"MLP(..., device={device!r}) (parameters in PyTorch tensors)")
    require("array_api_compat", "gpu", f"MLP(..., device={device!r}) (training on PyTorch tensors)")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be None, a string such as 'cpu' or 'cuda', or a torch.device, got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device {device!r} is not a device PyTorch knows (e.g. 'cpu', 'cuda', 'cuda:0')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asks for CUDA, but PyTorch sees no CUDA GPU (torch.cuda.is_available())")
    return torch, dev


def check_inputs(
    X: Any, n_inputs: int, dtype: Any, *, name: str = "X", check_finite: bool = True
) -> tuple[Array, bool]:
    """Check ``X`` for a network of ``n_inputs`` inputs; return it as a 2-D ``dtype`` array and whether it was 1-D.

    ``check_finite=False`` leaves out the pass that looks for NaN and ±inf (a caller that checks the values as it
    reads them, as the training loop's first epoch can).
    """
    if is_foreign_array(X):
        xp = xp_of(X)
        want = dtype_in(xp, dtype)
        if X.dtype != want:  # as NumPy inputs are: cast to the network's dtype
            X = xp.astype(X, want)
        if X.ndim == 1:
            return xp.reshape(X, (1, -1)), True
        return X, False
    if isinstance(X, np.memmap):
        return _check_memmap(X, n_inputs, name), False
    arr = _numeric_array(X, name)
    single = arr.ndim == 1
    if single:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_examples, {n_inputs}), got an array of shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no examples (rows)")
    if arr.shape[1] != n_inputs:
        raise ValueError(
            f"{name} has {arr.shape[1]} column(s) but the network expects {n_inputs} input(s) "
            f"(layer_sizes[0]={n_inputs})"
        )
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if check_finite:
        _check_finite(arr, name)
    return arr, single


class NonFiniteInputError(ValueError):
    """Inputs hold NaN or ±inf (a ValueError: the message names the first such value)."""


def _check_finite(rows: np.ndarray, name: str, first_row: int = 0) -> None:
    """Raise NonFiniteInputError naming the first NaN or ±inf of a 2-D array (whose row 0 is row ``first_row`` of
    ``name``)."""
    bad = native.first_nonfinite(rows)  # one pass, no temporary
    if bad >= 0:
        row, col = divmod(bad, rows.shape[1])
        raise NonFiniteInputError(
            f"{name} contains NaN or infinite values (the first at row {first_row + row}, column {col}: "
            f"{rows[row, col]}); remove or impute them first"
        )


def _check_memmap(X: np.memmap, n_inputs: int, name: str) -> np.memmap:
    """Check a memory-mapped array without loading it: shape, dtype, and finite values chunk by chunk."""
    if X.ndim != 2 or X.shape[1] != n_inputs:
        raise ValueError(f"{name} must have shape (n_examples, {n_inputs}), got a memory-mapped array of {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no examples (rows)")
    if not np.issubdtype(X.dtype, np.floating) and not np.issubdtype(X.dtype, np.integer):
        raise TypeError(f"{name} must be numeric, got a memory-mapped array of dtype {X.dtype}")
    if not np.issubdtype(X.dtype, np.floating):
        return X  # integers are finite
    rows = max(1, (16 << 20) // max(1, X.shape[1] * X.dtype.itemsize))  # about 16 MB at a time
    for lo in range(0, X.shape[0], rows):
        _check_finite(np.asarray(X[lo : lo + rows]), name, first_row=lo)
    return X


def _numeric_array(a: Any, name: str) -> np.ndarray:
    try:
        arr = to_host(a) if is_foreign_array(a) else np.asarray(a)  # a GPU array is copied to the host
    except ValueError as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers (rows of equal length): {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype} (convert or encode it first)")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numbers, got complex values")
    return arr


def _check_layer_sizes(layer_sizes: Any) -> list[int]:
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(f"layer_sizes must be a list of integers such as [2, 2, 2], got {layer_sizes!r}")
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least two entries (inputs and outputs), got {sizes}")
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"layer_sizes[{i}] must be a positive integer, got {n!r}")
        if n <= 0:
            raise ValueError(f"layer_sizes[{i}] must be a positive integer, got {n}")
    return [int(n) for n in sizes]


def _astype(a: Array, dtype: Any) -> Array:
    return a.astype(dtype) if isinstance(a, np.ndarray) else xp_of(a).astype(a, dtype)


def _copy(a: Array) -> Array:
    return a.copy() if isinstance(a, np.ndarray) else xp_of(a).asarray(a, copy=True)
