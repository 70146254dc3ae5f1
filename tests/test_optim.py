"""deltaprop.optim against torch.optim, step by step: every option combination, float64, 60 steps, 1e-9.

The gradient at each step is computed once, from deltaprop's parameters, and the same numbers are handed to
PyTorch; the two parameter vectors (and, at the end, the optimiser states) must then agree within 1e-9 at every
step. The learning rate is changed part-way through every run, as a schedule would.
"""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaprop import optim

N = 23  # parameters
STEPS = 60
LR_CHANGE_AT = 35  # the step at which both learning rates are multiplied by 0.3

# the name of each of our state buffers in torch.optim's per-parameter state
TORCH_STATE = {
    "SGD": {"b": "momentum_buffer"},
    "Adam": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
    "AdamW": {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"},
    "RMSprop": {"v": "square_avg", "g_avg": "grad_avg", "b": "momentum_buffer"},
    "Adagrad": {"sum": "sum"},
}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch (the reference for these tests) is not installed")


def _problem(seed=0, dtype=np.float64):
    """A start point and a gradient function g(theta, k): nonlinear in theta, with a different shift each step."""
    rng = np.random.default_rng(seed)
    theta0 = rng.normal(size=N).astype(dtype)
    phase = rng.uniform(0, 2 * np.pi, size=(STEPS, N))
    noise = rng.normal(scale=0.3, size=(STEPS, N))
    scale = rng.uniform(0.1, 3.0, size=N)  # gradients of different sizes, as in a real network

    def grad(theta, k):
        g = scale * (np.sin(2.0 * theta + phase[k]) + 0.3 * theta) + noise[k]
        g = g.astype(dtype)
        g.flags.writeable = False  # the optimiser must not write into it
        return g

    return theta0, grad


def _run_against_torch(torch, name, kwargs, *, lr, mask=None, dtype=np.float64, atol=1e-9, steps=STEPS, seed=0):
    """Step deltaprop's and torch's optimiser side by side; assert they agree at every step; return both."""
    theta, grad = _problem(seed, dtype)
    ours = getattr(optim, name)(lr=lr, weight_decay_mask=mask, **kwargs)
    if mask is None:
        params = [torch.tensor(theta.copy())]
        groups = params
    else:  # weight decay only where the mask is True = two parameter groups, the second without decay
        params = [torch.tensor(theta[mask].copy()), torch.tensor(theta[~mask].copy())]
        groups = [{"params": [params[0]]}, {"params": [params[1]], "weight_decay": 0.0}]
    ref = getattr(torch.optim, name)(groups, lr=lr, **kwargs)

    def torch_theta():
        if mask is None:
            return params[0].detach().numpy()
        out = np.empty_like(theta)
        out[mask], out[~mask] = params[0].detach().numpy(), params[1].detach().numpy()
        return out

    state = ours.init(theta)
    for k in range(steps):
        if k == LR_CHANGE_AT:
            ours.lr = lr * 0.3
            for group in ref.param_groups:
                group["lr"] = lr * 0.3
        g = grad(theta, k)
        g_before = g.copy()
        ours.step(theta, g, state)
        assert np.array_equal(g, g_before)
        if mask is None:
            params[0].grad = torch.from_numpy(g.copy())
        else:
            params[0].grad, params[1].grad = torch.from_numpy(g[mask].copy()), torch.from_numpy(g[~mask].copy())
        ref.step()
        err = np.max(np.abs(theta - torch_theta()))
        assert err <= atol, f"step {k + 1}: max |deltaprop − torch| = {err:.3g}"
        assert theta.dtype == dtype
    # the state: the same buffers as torch's, with the same contents, and the same step count
    names = TORCH_STATE[name]
    torch_keys = set().union(*(ref.state[p].keys() for p in params)) - {"step"}
    assert {names[k] for k in state if k != "step"} == torch_keys
    assert state["step"] == steps
    for key, value in state.items():
        assert key == "step" or value.dtype == dtype
        if key == "step" or mask is not None:
            continue
        err = np.max(np.abs(value - ref.state[params[0]][names[key]].numpy()))
        assert err <= atol * max(1.0, float(np.max(np.abs(value)))), f"state {key!r} differs by {err:.3g}"
    if name != "SGD":
        assert int(ref.state[params[0]]["step"]) == steps
    return theta, state


# ------------------------------------------------------------------------------- every option combination
SGD_CASES = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd)
    for m, d, n, wd in itertools.product([0.0, 0.9], [0.0, 0.5], [False, True], [0.0, 0.1])
    if not (n and (m == 0.0 or d != 0.0))  # nesterov needs momentum and no dampening
]
ADAM_CASES = [
    dict(betas=b, eps=e, weight_decay=wd, amsgrad=a)
    for (b, e), wd, a in itertools.product([((0.9, 0.999), 1e-8), ((0.8, 0.95), 1e-6)], [0.0, 0.1], [False, True])
]
RMSPROP_CASES = [
    dict(alpha=0.9, eps=1e-6, weight_decay=wd, momentum=m, centered=c)
    for wd, m, c in itertools.product([0.0, 0.1], [0.0, 0.9], [False, True])
]
ADAGRAD_CASES = [
    dict(lr_decay=d, weight_decay=wd, initial_accumulator_value=a, eps=1e-10)
    for d, wd, a in itertools.product([0.0, 0.05], [0.0, 0.1], [0.0, 0.5])
]
CASES = (
    [("SGD", 0.03, kw) for kw in SGD_CASES]
    + [("Adam", 0.02, kw) for kw in ADAM_CASES]
    + [("AdamW", 0.02, kw) for kw in ADAM_CASES]
    + [("RMSprop", 0.005, kw) for kw in RMSPROP_CASES]
    + [("Adagrad", 0.1, kw) for kw in ADAGRAD_CASES]
)


@pytest.mark.parametrize("name,lr,kwargs", CASES, ids=[f"{n}-{kw}" for n, _, kw in CASES])
def test_matches_torch_at_every_step(torch, name, lr, kwargs):
    theta, _ = _run_against_torch(torch, name, kwargs, lr=lr)
    start, _ = _problem()
    assert np.max(np.abs(theta - start)) > 0.05  # the parameters really moved


def _hyperparameters(draw):
    """A random optimiser name, learning rate and valid options."""
    name = draw(st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]))
    unit = st.floats(0.0, 0.99)
    lr = draw(st.floats(1e-4, 0.1))
    kw: dict = {"weight_decay": draw(st.sampled_from([0.0, draw(st.floats(1e-4, 0.5))]))}
    if name == "SGD":
        kw["momentum"] = draw(st.sampled_from([0.0, draw(unit)]))
        kw["nesterov"] = kw["momentum"] > 0 and draw(st.booleans())
        kw["dampening"] = 0.0 if kw["nesterov"] else draw(unit)
    elif name in ("Adam", "AdamW"):
        kw.update(betas=(draw(unit), draw(unit)), eps=draw(st.floats(1e-10, 1e-2)), amsgrad=draw(st.booleans()))
    elif name == "RMSprop":
        kw.update(alpha=draw(st.floats(0.5, 0.999)), eps=draw(st.floats(1e-10, 1e-2)), centered=draw(st.booleans()))
        kw["momentum"] = draw(st.sampled_from([0.0, draw(unit)]))
    else:
        kw.update(lr_decay=draw(st.floats(0.0, 0.5)), initial_accumulator_value=draw(st.floats(0.0, 2.0)))
        kw["eps"] = draw(st.floats(1e-10, 1e-2))
    return name, lr, kw


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.composite(_hyperparameters)(), seed=st.integers(0, 2**16))
def test_random_hyperparameters_match_torch(torch, case, seed):
    name, lr, kwargs = case
    _run_against_torch(torch, name, kwargs, lr=lr, steps=LR_CHANGE_AT + 5, seed=seed)


def test_every_combination_is_covered():
    assert len(SGD_CASES) == 10 and len(ADAM_CASES) == 8 and len(RMSPROP_CASES) == 8 and len(ADAGRAD_CASES) == 8


EVERYTHING_ON = [
    ("SGD", 0.03, dict(momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", 0.03, dict(momentum=0.9, dampening=0.5, weight_decay=0.1)),
    ("Adam", 0.02, dict(weight_decay=0.1, amsgrad=True)),
    ("AdamW", 0.02, dict(weight_decay=0.1, amsgrad=True)),
    ("RMSprop", 0.005, dict(weight_decay=0.1, momentum=0.9, centered=True)),
    ("Adagrad", 0.1, dict(lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5)),
]
IDS = [f"{n}-{'-'.join(kw)}" for n, _, kw in EVERYTHING_ON]


@pytest.mark.parametrize("name,lr,kwargs", EVERYTHING_ON, ids=IDS)
def test_float32_stays_float32_and_matches_torch(torch, name, lr, kwargs):
    theta, state = _run_against_torch(torch, name, kwargs, lr=lr, dtype=np.float32, atol=2e-5, steps=30)
    assert theta.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in state.items() if k != "step")


# ------------------------------------------------------------------------------------- weight decay mask
MASK = np.arange(N) % 3 != 0  # every third parameter (think: the biases) is not decayed
MASKED = [
    ("SGD", 0.03, dict(momentum=0.9, nesterov=True, weight_decay=0.2)),
    ("Adam", 0.02, dict(weight_decay=0.2, amsgrad=True)),
    ("AdamW", 0.02, dict(weight_decay=0.2)),
    ("RMSprop", 0.005, dict(weight_decay=0.2, momentum=0.9, centered=True)),
    ("Adagrad", 0.1, dict(lr_decay=0.05, weight_decay=0.2)),
]


@pytest.mark.parametrize("name,lr,kwargs", MASKED, ids=[m[0] for m in MASKED])
def test_weight_decay_mask_matches_torch_param_groups(torch, name, lr, kwargs):
    _run_against_torch(torch, name, kwargs, lr=lr, mask=MASK)


def _trajectory(opt, steps=40, dtype=np.float64):
    theta, grad = _problem(3, dtype)
    state = opt.init(theta)
    for k in range(steps):
        if k == 20:
            opt.lr *= 0.5
        opt.step(theta, grad(theta, k), state)
    return theta


@pytest.mark.parametrize("name,lr,kwargs", MASKED, ids=[m[0] for m in MASKED])
def test_weight_decay_mask_all_true_is_no_mask_and_all_false_is_no_decay(name, lr, kwargs):
    cls = getattr(optim, name)
    plain = _trajectory(cls(lr=lr, **kwargs))
    assert np.array_equal(_trajectory(cls(lr=lr, weight_decay_mask=np.ones(N, bool), **kwargs)), plain)
    no_decay = _trajectory(cls(lr=lr, **{**kwargs, "weight_decay": 0.0}))
    assert np.array_equal(_trajectory(cls(lr=lr, weight_decay_mask=np.zeros(N, bool), **kwargs)), no_decay)
    assert not np.allclose(plain, no_decay, rtol=0, atol=1e-6)  # the decay does matter on this problem


def test_weight_decay_mask_is_checked():
    with pytest.raises(ValueError, match="weight_decay_mask must be a boolean array"):
        optim.Adam(weight_decay_mask=np.ones(N))
    opt = optim.SGD(weight_decay=0.1, weight_decay_mask=np.ones(N - 1, bool))
    with pytest.raises(ValueError, match=r"weight_decay_mask has shape \(22,\) but theta has shape \(23,\)"):
        opt.init(np.zeros(N))
    mask = MASK.copy()
    opt = optim.AdamW(weight_decay_mask=mask)
    mask[:] = False  # the optimiser keeps its own copy
    assert np.array_equal(opt.weight_decay_mask, MASK)


# ----------------------------------------------------------------------------------------------- the state
@pytest.mark.parametrize(
    "opt,keys",
    [
        (optim.SGD(), {"step"}),
        (optim.SGD(momentum=0.9), {"step", "b"}),
        (optim.Adam(), {"step", "m", "v"}),
        (optim.AdamW(amsgrad=True), {"step", "m", "v", "v_max"}),
        (optim.RMSprop(), {"step", "v"}),
        (optim.RMSprop(momentum=0.5, centered=True), {"step", "v", "g_avg", "b"}),
        (optim.Adagrad(initial_accumulator_value=0.25), {"step", "sum"}),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_init_makes_every_buffer_up_front(opt, keys, dtype):
    theta = np.arange(5, dtype=dtype)
    state = opt.init(theta)
    assert set(state) == keys and state["step"] == 0 and type(state["step"]) is int
    arrays = [v for k, v in state.items() if k != "step"]
    for a in arrays:
        assert a.shape == theta.shape and a.dtype == dtype
        assert np.all(a == (0.25 if isinstance(opt, optim.Adagrad) else 0.0))
    for a, b in itertools.combinations(arrays + [theta], 2):
        assert not np.shares_memory(a, b)
    assert json.dumps(optim.state_to_arrays(state)[1]) == '{"step": 0}'


ROUND_TRIP = [
    optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, weight_decay_mask=MASK),
    optim.SGD(lr=0.05, momentum=0.9, dampening=0.3),
    optim.Adam(lr=0.02, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True),
    optim.AdamW(lr=0.02, weight_decay=0.2, weight_decay_mask=MASK),
    optim.RMSprop(lr=0.005, weight_decay=0.1, momentum=0.9, centered=True),
    optim.Adagrad(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("template", ROUND_TRIP, ids=lambda o: type(o).__name__)
def test_stop_save_load_continue_is_bit_identical(tmp_path, template, dtype):
    steps, stop = 30, 13
    _, grad = _problem(5, dtype)

    def run(opt, theta, state, ks):
        for k in ks:
            if k == 8:
                opt.lr *= 0.5  # a schedule changed the rate before the interruption
            opt.step(theta, grad(theta, k), state)

    whole = copy.deepcopy(template)
    theta_a = _problem(5, dtype)[0]
    state_a = whole.init(theta_a)
    run(whole, theta_a, state_a, range(steps))

    first = copy.deepcopy(template)
    theta_b = _problem(5, dtype)[0]
    state_b = first.init(theta_b)
    run(first, theta_b, state_b, range(stop))
    arrays, scalars = optim.state_to_arrays(state_b)
    np.savez(tmp_path / "run.npz", theta=theta_b, **{f"opt.{k}": v for k, v in arrays.items()})
    (tmp_path / "run.json").write_text(json.dumps({"optimizer": first.get_config(), "scalars": scalars}))
    del first, state_b, theta_b

    meta = json.loads((tmp_path / "run.json").read_text())
    second = optim.optimizer_from_config(meta["optimizer"])
    with np.load(tmp_path / "run.npz", allow_pickle=False) as f:
        theta_c = f["theta"].copy()
        state_c = optim.state_from_arrays({k[4:]: f[k] for k in f.files if k.startswith("opt.")}, meta["scalars"])
    assert set(state_c) == set(second.init(theta_c))  # the same buffers as a fresh state
    run(second, theta_c, state_c, range(stop, steps))

    assert theta_c.dtype == dtype and theta_c.tobytes() == theta_a.tobytes()
    assert state_c["step"] == state_a["step"] == steps
    for key in state_a:
        if key != "step":
            assert state_c[key].tobytes() == state_a[key].tobytes(), key


# ------------------------------------------------------------------------------------------ configurations
@pytest.mark.parametrize("opt", ROUND_TRIP + [optim.SGD(), optim.Adam(), optim.RMSprop()], ids=repr)
def test_config_is_json_and_rebuilds_the_same_optimiser(opt):
    config = opt.get_config()
    text = json.dumps(config, allow_nan=False)
    again = optim.optimizer_from_config(json.loads(text))
    assert type(again) is type(opt) and again.get_config() == config
    if opt.weight_decay_mask is None:
        assert again.weight_decay_mask is None
    else:
        assert np.array_equal(again.weight_decay_mask, opt.weight_decay_mask)
    assert _trajectory(copy.deepcopy(opt)).tobytes() == _trajectory(again).tobytes()


def test_weight_decay_mask_config_is_compact():
    # weights and biases of a 2-layer network: the mask is a few ranges, not one entry per parameter
    mask = np.concatenate([np.ones(50_000, bool), np.zeros(100, bool), np.ones(1_000, bool), np.zeros(10, bool)])
    config = optim.AdamW(weight_decay_mask=mask).get_config()
    assert config["weight_decay_mask"] == {"size": 51_110, "ranges": [[0, 50_000], [50_100, 51_100]]}
    again = optim.optimizer_from_config(json.loads(json.dumps(config)))
    assert np.array_equal(again.weight_decay_mask, mask)


def test_get_optimizer():
    assert isinstance(optim.get_optimizer(" ADAMW "), optim.AdamW)
    for name, cls in [("sgd", optim.SGD), ("adam", optim.Adam), ("rmsprop", optim.RMSprop), ("adagrad", optim.Adagrad)]:
        default = optim.get_optimizer(name)
        assert type(default) is cls and default.lr == cls().lr
        assert optim.get_optimizer(name.upper(), lr=0.25).lr == 0.25
    opt = optim.SGD(lr=0.1, momentum=0.9)
    assert optim.get_optimizer(opt) is opt and optim.get_optimizer(opt, lr=0.1) is opt
    with pytest.raises(ValueError, match="lr=0.5 was given with an optimiser instance"):
        optim.get_optimizer(opt, lr=0.5)
    assert optim.get_optimizer({"name": "adam", "amsgrad": True}, lr=0.3).get_config()["amsgrad"] is True
    with pytest.raises(ValueError, match="unknown optimizer 'nadam'; known optimizers: sgd, adam, adamw, rmsprop"):
        optim.get_optimizer("nadam")
    with pytest.raises(TypeError, match="optimizer must be a name"):
        optim.get_optimizer(3)
    with pytest.raises(ValueError, match="bad options for SGD"):
        optim.optimizer_from_config({"name": "sgd", "betas": [0.9, 0.99]})
    assert set(optim.__all__) <= set(dir(optim))


# --------------------------------------------------------------------------------------- bad hyperparameters
BAD = [
    (lambda: optim.SGD(lr=-0.1), r"^lr must be a finite non-negative number, got -0\.1$"),
    (lambda: optim.SGD(lr=float("nan")), "^lr must be"),
    (lambda: optim.Adam(lr="0.01"), "^lr must be"),
    (lambda: optim.Adam(lr=True), "^lr must be"),
    (lambda: optim.SGD(momentum=-0.9), "^momentum must be"),
    (lambda: optim.SGD(momentum=0.9, dampening=1.5), r"^dampening must be a number in \[0, 1\]"),
    (lambda: optim.SGD(lr=0.1, nesterov=True), "^nesterov=True requires momentum > 0 and dampening = 0"),
    (lambda: optim.SGD(momentum=0.9, dampening=0.1, nesterov=True), "^nesterov=True requires"),
    (lambda: optim.SGD(nesterov="yes"), "^nesterov must be True or False"),
    (lambda: optim.SGD(weight_decay=-1e-4), "^weight_decay must be"),
    (lambda: optim.Adam(betas=(1.0, 0.999)), r"^betas\[0\] must be a number in \[0, 1\)"),
    (lambda: optim.Adam(betas=(0.9, -0.1)), r"^betas\[1\] must be"),
    (lambda: optim.Adam(betas=0.9), "^betas must be a pair"),
    (lambda: optim.Adam(eps=0.0), "^eps must be a finite positive number, got 0.0"),
    (lambda: optim.AdamW(eps=-1e-8), "^eps must be"),
    (lambda: optim.AdamW(weight_decay=float("inf")), "^weight_decay must be"),
    (lambda: optim.Adam(amsgrad=1), "^amsgrad must be True or False"),
    (lambda: optim.RMSprop(alpha=1.5), r"^alpha must be a number in \[0, 1\]"),
    (lambda: optim.RMSprop(momentum=-1), "^momentum must be"),
    (lambda: optim.RMSprop(eps=0), "^eps must be"),
    (lambda: optim.RMSprop(centered=None), "^centered must be True or False"),
    (lambda: optim.Adagrad(lr_decay=-0.1), "^lr_decay must be"),
    (lambda: optim.Adagrad(initial_accumulator_value=-1), "^initial_accumulator_value must be"),
    (lambda: optim.Adagrad(eps=0.0), "^eps must be"),
    (lambda: optim.clip_grad_norm(np.ones(3), -1.0), "^max_norm must be"),
    (lambda: optim.StepLR(optim.SGD(), step_size=0), "^step_size must be a positive integer"),
    (lambda: optim.StepLR(optim.SGD(), step_size=2.5), "^step_size must be"),
    (lambda: optim.StepLR(optim.SGD(), gamma=0.0), "^gamma must be a finite positive number"),
    (lambda: optim.ExponentialLR(optim.SGD(), gamma=-0.5), "^gamma must be"),
    (lambda: optim.ConstantLR(optim.SGD(), factor=2.0), r"^factor must be a number in \[0, 1\]"),
    (lambda: optim.ConstantLR(optim.SGD(), total_iters=-1), "^total_iters must be"),
    (lambda: optim.CosineAnnealingLR(optim.SGD(), T_max=0), "^T_max must be a positive integer"),
    (lambda: optim.CosineAnnealingLR(optim.SGD(), eta_min=-1.0), "^eta_min must be"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(), mode="avg"), "^mode must be 'min' or 'max'"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(), factor=1.0), r"^factor must be a number in \[0, 1\)"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(), patience=-1), "^patience must be"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(), threshold_mode="pct"), "^threshold_mode must be"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(), cooldown=1.5), "^cooldown must be"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD(), min_lr=-1), "^min_lr must be"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD()).step(), "^ReduceLROnPlateau.step needs the monitored metric"),
    (lambda: optim.get_schedule("linear", optim.SGD()), "^unknown schedule 'linear'; known schedules: constant"),
    (lambda: optim.get_schedule(optim.StepLR(optim.SGD()), optim.SGD()), "bound to another optimiser"),
    (lambda: optim.schedule_from_config({"name": "step", "T_max": 3}, optim.SGD()), "^bad options for StepLR"),
]


@pytest.mark.parametrize("make,match", BAD, ids=[m for _, m in BAD])
def test_bad_hyperparameters_raise_and_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_init_rejects_what_is_not_a_float_array():
    with pytest.raises(ValueError, match="theta must be a floating-point NumPy array"):
        optim.Adam().init(np.arange(3))
    with pytest.raises(ValueError, match="theta must be a floating-point NumPy array"):
        optim.Adam().init([0.0, 1.0])


# ------------------------------------------------------------------------------------------ clip_grad_norm
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("size", [0.01, 0.999999, 1.0000005, 1.5, 80.0])  # norm / max_norm
def test_clip_grad_norm_matches_torch(torch, size, dtype, rtol):
    g = np.random.default_rng(1).normal(size=50)
    g = (g * (2.0 * size / np.linalg.norm(g))).astype(dtype)  # max_norm is 2
    p = torch.zeros(50, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    p.grad = torch.from_numpy(g.copy())
    t_norm = float(torch.nn.utils.clip_grad_norm_([p], 2.0))
    norm = optim.clip_grad_norm(g, 2.0)
    assert isinstance(norm, float) and g.dtype == dtype
    assert norm == pytest.approx(t_norm, rel=rtol)
    np.testing.assert_allclose(g, p.grad.numpy(), rtol=rtol, atol=0)
    assert np.linalg.norm(g.astype(np.float64)) <= 2.0 * (1 + rtol)


def test_clip_grad_norm_leaves_small_and_non_finite_gradients_alone():
    small = np.array([0.3, -0.4])
    assert optim.clip_grad_norm(small, 1.0) == pytest.approx(0.5) and small.tolist() == [0.3, -0.4]
    zero = np.zeros(4)
    assert optim.clip_grad_norm(zero, 1.0) == 0.0 and not zero.any()
    for bad in (np.array([np.inf, 1.0]), np.array([np.nan, 1.0])):
        before = bad.copy()
        assert not math.isfinite(optim.clip_grad_norm(bad, 1.0))
        np.testing.assert_array_equal(bad, before)
    huge = np.array([3e30, -4e30], dtype=np.float32)  # the squares overflow float32; the entries do not
    with np.errstate(over="ignore"):
        assert optim.clip_grad_norm(huge, 1.0) == pytest.approx(5e30, rel=1e-6)
    np.testing.assert_allclose(huge, [0.6, -0.8], rtol=1e-6)
    flat = np.full(12, 3.0)
    matrix_view = flat.reshape(3, 4)
    optim.clip_grad_norm(matrix_view, 1.0)  # any shape: the norm is over every entry
    assert np.linalg.norm(flat) == pytest.approx(1.0, rel=1e-6)


# ----------------------------------------------------------------------------------------------- schedules
SCHEDULES = [
    ("constant", {}, lambda t, o: t.optim.lr_scheduler.ConstantLR(o, factor=1.0, total_iters=0)),
    ("constant", {"factor": 0.25, "total_iters": 4}, lambda t, o: t.optim.lr_scheduler.ConstantLR(o, 0.25, 4)),
    ("step", {"step_size": 7, "gamma": 0.5}, lambda t, o: t.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    ("step", {"step_size": 3}, lambda t, o: t.optim.lr_scheduler.StepLR(o, 3)),
    ("exponential", {"gamma": 0.9}, lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    ("cosine", {"T_max": 10, "eta_min": 0.001}, lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.001)),
    ("cosine", {"T_max": 30}, lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, 30)),
]


@pytest.mark.parametrize("name,options,make", SCHEDULES, ids=[f"{n}-{o}" for n, o, _ in SCHEDULES])
def test_schedules_match_torch(torch, name, options, make):
    ours = optim.SGD(lr=0.1, momentum=0.9)
    sched = optim.get_schedule({"name": name, **options}, ours)
    p = torch.zeros(1, dtype=torch.float64)
    t_opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    t_sched = make(torch, t_opt)
    assert ours.lr == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)  # epoch 0
    seen = {ours.lr}
    for epoch in range(1, 31):
        p.grad = torch.zeros(1, dtype=torch.float64)
        t_opt.step()
        t_sched.step()
        lr = sched.step(0.5)  # the metric is ignored by every schedule but ReduceLROnPlateau
        assert lr == ours.lr == sched.last_lr and sched.last_epoch == epoch
        assert lr == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), f"epoch {epoch}"
        seen.add(lr)
    assert len(seen) == (1 if options == {} else len(seen)) and (options == {} or len(seen) > 1)


# (mode, threshold_mode, threshold, factor, patience, cooldown, min_lr, eps)
PLATEAU = [
    ("min", "rel", 0.01, 0.5, 2, 2, 0.01, 1e-8),
    ("min", "abs", 0.005, 0.3, 1, 0, 0.0, 1e-8),
    ("max", "rel", 1e-4, 0.5, 0, 3, 0.0, 1e-8),
    ("max", "abs", 0.02, 0.5, 1, 1, 0.0, 0.03),  # a large eps: reductions smaller than 0.03 are skipped
]
METRICS = [1.0, 0.9, 0.85, 0.85, 0.86, 0.851, 0.84, 0.849, 0.9, 0.9, 0.9, 0.5, 0.5, 0.499, 0.52, 0.6, 0.45]
METRICS += [0.45, 0.46, 0.47, 0.45, 0.449, 0.4, 0.41, 0.42, 0.43, 0.44, 0.2, 0.2, 0.2, 0.2, 0.2]


@pytest.mark.parametrize("config", PLATEAU, ids=[f"{c[0]}-{c[1]}" for c in PLATEAU])
def test_reduce_on_plateau_matches_torch(torch, config):
    mode, th_mode, threshold, factor, patience, cooldown, min_lr, eps = config
    kw = dict(mode=mode, factor=factor, patience=patience, threshold=threshold, threshold_mode=th_mode)
    kw.update(cooldown=cooldown, min_lr=min_lr, eps=eps)
    ours = optim.Adam(lr=0.1)
    sched = optim.ReduceLROnPlateau(ours, **kw)
    p = torch.zeros(1, dtype=torch.float64)
    t_opt = torch.optim.Adam([p], lr=0.1)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kw)
    metrics = METRICS if mode == "min" else [1.0 - m for m in METRICS]
    lrs, cooling = [], 0
    for epoch, metric in enumerate(metrics, start=1):
        p.grad = torch.zeros(1, dtype=torch.float64)
        t_opt.step()
        t_sched.step(metric)
        lr = sched.step(metric)
        assert lr == ours.lr == t_opt.param_groups[0]["lr"], f"epoch {epoch}"
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter, sched.last_epoch) == (
            t_sched.best,
            t_sched.num_bad_epochs,
            t_sched.cooldown_counter,
            t_sched.last_epoch,
        )
        lrs.append(lr)
        cooling += sched.cooldown_counter > 0
    if eps < 0.01:
        assert len(set(lrs)) >= 3  # the script really triggers reductions, more than one
    else:
        assert min(lrs) == 0.05  # 0.1 → 0.05, then 0.05 → 0.025 is within eps and skipped
    assert cooling > 0 or cooldown == 0


def test_reduce_on_plateau_keeps_changes_made_to_lr_elsewhere():
    opt = optim.SGD(lr=1.0)
    sched = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(1.0)
    opt.lr = 0.3
    assert sched.step(2.0) == 0.15


SCHEDULE_SPECS = [
    {"name": "constant", "factor": 0.5, "total_iters": 5},
    {"name": "step", "step_size": 4, "gamma": 0.5},
    {"name": "exponential", "gamma": 0.9},
    {"name": "cosine", "T_max": 7, "eta_min": 0.01},
    {"name": "plateau", "patience": 1, "cooldown": 2, "factor": 0.5},
]


@pytest.mark.parametrize("spec", SCHEDULE_SPECS, ids=[s["name"] for s in SCHEDULE_SPECS])
def test_schedule_state_round_trip_through_json(spec):
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8, 0.8]  # stopped here, in a cooldown
    metrics += [0.8, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.4, 0.4, 0.3, 0.2] + [0.1] * 9
    whole = optim.get_schedule(spec, optim.Adam(lr=0.1))
    expected = [whole.step(m) for m in metrics]

    first_opt = optim.Adam(lr=0.1)
    first = optim.get_schedule(spec, first_opt)
    got = [first.step(m) for m in metrics[:10]]
    if spec["name"] == "plateau":
        assert first.state_dict()["cooldown_counter"] > 0  # interrupted in the middle of a cooldown
    saved = json.dumps(
        {"optimizer": first_opt.get_config(), "schedule": first.get_config(), "state": first.state_dict()},
        allow_nan=False,
    )
    meta = json.loads(saved)
    second_opt = optim.optimizer_from_config({**meta["optimizer"], "lr": 0.1})  # as built from the run's options
    second = optim.schedule_from_config(meta["schedule"], second_opt)
    second.load_state_dict(meta["state"])
    assert second_opt.lr == first_opt.lr
    got += [second.step(m) for m in metrics[10:]]
    assert got == expected
    assert second.state_dict() == whole.state_dict()
    assert len(set(expected)) > 1
    with pytest.raises(ValueError, match="schedule, not"):
        optim.StepLR(optim.SGD()).load_state_dict(first.state_dict() if spec["name"] != "step" else {"name": "x"})


def test_get_schedule():
    opt = optim.SGD(lr=0.2)
    assert isinstance(optim.get_schedule("Step", opt), optim.StepLR)
    assert isinstance(optim.get_schedule("reducelronplateau", opt), optim.ReduceLROnPlateau)
    assert isinstance(optim.get_schedule("CosineAnnealingLR", opt), optim.CosineAnnealingLR)
    sched = optim.ExponentialLR(opt, gamma=0.5)
    assert optim.get_schedule(sched, opt) is sched
    assert sched.base_lr == 0.2 and sched.step() == 0.1 and opt.lr == 0.1
    constant = optim.get_schedule("constant", opt)
    assert [constant.step() for _ in range(5)] == [0.1] * 5
    assert json.loads(json.dumps(optim.get_schedule("plateau", opt).get_config()))["name"] == "plateau"
    with pytest.raises(TypeError, match="schedule must be a name"):
        optim.get_schedule(0.5, opt)


@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, {"momentum": 0.5, "dampening": 0.2}]
)
def test_sgd_in_pieces_gives_the_same_bits_as_in_one_go(monkeypatch, kwargs):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=1000).astype(np.float32)
    results = []
    for chunk in (10**9, 7):  # 7: every update is done in 143 pieces
        monkeypatch.setattr(optim, "_CHUNK", chunk)
        theta = theta0.copy()
        opt = optim.SGD(lr=0.01, **kwargs)
        state = opt.init(theta)
        for k in range(4):
            opt.step(theta, np.sin(theta + k), state)
        results.append(theta)
    assert results[0].tobytes() == results[1].tobytes()
