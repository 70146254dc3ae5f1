"""Optimisers follow torch.optim step by step (float64, ≥ 50 steps, every option combination, 1e-9)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deltaprop import optim

torch = pytest.importorskip("torch", reason="PyTorch (test-only reference) is not installed: pip install torch==2.13.0")

N = 40  # parameters
STEPS = 60


def _grads(seed):
    """A fixed random problem: gradient of a quadratic plus noise, the same sequence for both libraries."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, N)) / np.sqrt(N)
    noise = rng.normal(size=(STEPS, N)) * 0.1
    return lambda theta, k: A.T @ (A @ theta) + noise[k]


def _compare(ours, make_torch, seed=0, mask=None):
    rng = np.random.default_rng(seed + 100)
    theta = rng.normal(size=N)
    grad_of = _grads(seed)
    if mask is None:
        p = torch.tensor(theta.copy(), requires_grad=False)
        groups = [p]
        torch_opt = make_torch([p])
    else:  # two parameter groups: decayed and not, as weight_decay_mask does
        p1 = torch.tensor(theta[mask].copy())
        p2 = torch.tensor(theta[~mask].copy())
        groups = [p1, p2]
        torch_opt = make_torch([{"params": [p1]}, {"params": [p2], "weight_decay": 0.0}])
    state = ours.init(theta)
    for k in range(STEPS):
        g = grad_of(theta, k)
        g_copy = g.copy()
        ours.step(theta, g, state)
        assert np.array_equal(g, g_copy), "step must not modify the gradient"
        if mask is None:
            groups[0].grad = torch.from_numpy(g.copy())
        else:
            groups[0].grad = torch.from_numpy(g[mask].copy())
            groups[1].grad = torch.from_numpy(g[~mask].copy())
        torch_opt.step()
        ref = groups[0].numpy() if mask is None else np.empty(N)
        if mask is not None:
            ref[mask], ref[~mask] = groups[0].numpy(), groups[1].numpy()
        np.testing.assert_allclose(theta, ref, rtol=0, atol=1e-9, err_msg=f"step {k}")
        # the next gradient is evaluated at the same point for both
        if mask is None:
            groups[0].data = torch.from_numpy(theta.copy())
        else:
            groups[0].data, groups[1].data = torch.from_numpy(theta[mask].copy()), torch.from_numpy(theta[~mask].copy())


SGD_CASES = [
    (m, d, n, wd)
    for m, d, n, wd in itertools.product([0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.1])
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", SGD_CASES)
def test_sgd_matches_torch(momentum, dampening, nesterov, wd):
    kw = dict(momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=wd)
    _compare(optim.SGD(lr=0.05, **kw), lambda p: torch.optim.SGD(p, lr=0.05, **kw))


@pytest.mark.parametrize("wd,amsgrad", list(itertools.product([0.0, 0.1], [False, True])))
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_and_adamw_match_torch(name, wd, amsgrad):
    kw = dict(betas=(0.8, 0.95), eps=1e-6, weight_decay=wd, amsgrad=amsgrad)
    _compare(getattr(optim, name)(lr=0.01, **kw), lambda p: getattr(torch.optim, name)(p, lr=0.01, **kw))


@pytest.mark.parametrize("wd,momentum,centered", list(itertools.product([0.0, 0.1], [0.0, 0.5], [False, True])))
def test_rmsprop_matches_torch(wd, momentum, centered):
    kw = dict(alpha=0.9, eps=1e-6, weight_decay=wd, momentum=momentum, centered=centered)
    _compare(optim.RMSprop(lr=0.01, **kw), lambda p: torch.optim.RMSprop(p, lr=0.01, **kw))


@pytest.mark.parametrize("lr_decay,wd,init_acc", list(itertools.product([0.0, 0.05], [0.0, 0.1], [0.0, 0.5])))
def test_adagrad_matches_torch(lr_decay, wd, init_acc):
    kw = dict(lr_decay=lr_decay, weight_decay=wd, initial_accumulator_value=init_acc, eps=1e-8)
    _compare(optim.Adagrad(lr=0.1, **kw), lambda p: torch.optim.Adagrad(p, lr=0.1, **kw))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_weight_decay_mask_matches_torch_param_groups(name):
    mask = np.arange(N) % 3 != 0  # every third parameter (a "bias") is not decayed
    kw = {"weight_decay": 0.1} if name != "SGD" else {"weight_decay": 0.1, "momentum": 0.9}
    _compare(
        getattr(optim, name)(lr=0.01, weight_decay_mask=mask, **kw),
        lambda groups: getattr(torch.optim, name)(groups, lr=0.01, **kw),
        mask=mask,
    )


def test_float32_stays_float32():
    theta = np.ones(5, dtype=np.float32)
    for opt in (optim.SGD(0.1, momentum=0.9), optim.Adam(), optim.RMSprop(), optim.Adagrad()):
        state = opt.init(theta)
        opt.step(theta, np.full(5, 0.5, dtype=np.float32), state)
        assert theta.dtype == np.float32
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


SCHEDULE_CASES = [
    ("step", {"step_size": 3, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    ("exponential", {"gamma": 0.9}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    ("cosine", {"T_max": 10, "eta_min": 0.001}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.001)),
]


@pytest.mark.parametrize("name,params,make", SCHEDULE_CASES)
def test_schedules_match_torch(name, params, make):
    ours = optim.SGD(lr=0.1)
    sched = optim.get_schedule({"name": name, **params}, ours)
    p = torch.zeros(1, requires_grad=True)
    t_opt = torch.optim.SGD([p], lr=0.1)
    t_sched = make(t_opt)
    for _ in range(30):
        t_opt.step()
        t_sched.step()
        assert sched.step() == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)


def test_reduce_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7] + [0.7] * 18
    ours = optim.SGD(lr=0.1)
    sched = optim.ReduceLROnPlateau(ours, factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    p = torch.zeros(1, requires_grad=True)
    t_opt = torch.optim.SGD([p], lr=0.1)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    seen = set()
    for m in metrics:
        t_opt.step()
        t_sched.step(m)
        lr = sched.step(m)
        seen.add(lr)
        assert lr == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)
    assert len(seen) >= 3  # the run really reduced the rate, more than once


def test_state_survives_a_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(20, 8))
    for opt_name in ("sgd", "adam", "rmsprop", "adagrad"):

        def make(name=opt_name):
            return optim.get_optimizer(name, lr=0.05)

        a, theta_a = make(), np.ones(8)
        state_a = a.init(theta_a)
        for g in grads:
            a.step(theta_a, g, state_a)
        b, theta_b = make(), np.ones(8)
        state_b = b.init(theta_b)
        for g in grads[:7]:
            b.step(theta_b, g, state_b)
        np.savez(tmp_path / "s.npz", theta=theta_b, **{k: v for k, v in state_b.items() if isinstance(v, np.ndarray)})
        c = optim.optimizer_from_config(b.get_config())
        loaded = np.load(tmp_path / "s.npz", allow_pickle=False)
        theta_c = loaded["theta"].copy()
        state_c = c.init(theta_c)
        for k in state_c:
            if isinstance(state_c[k], np.ndarray):
                state_c[k][...] = loaded[k]
        state_c["step"] = state_b["step"]
        for g in grads[7:]:
            c.step(theta_c, g, state_c)
        assert theta_c.tobytes() == theta_a.tobytes(), opt_name


def test_clip_grad_norm_matches_torch():
    g = np.random.default_rng(0).normal(size=30) * 5
    p = torch.zeros(30, dtype=torch.float64, requires_grad=True)
    p.grad = torch.from_numpy(g.copy())
    t_norm = torch.nn.utils.clip_grad_norm_([p], 1.0)
    norm = optim.clip_grad_norm(g, 1.0)
    assert norm == pytest.approx(float(t_norm), rel=1e-12)
    np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-12)
    small = np.array([0.1, 0.1])
    optim.clip_grad_norm(small, 1.0)
    assert small.tolist() == [0.1, 0.1]


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: optim.SGD(lr=-0.1), "lr must be"),
        (lambda: optim.SGD(lr=0.1, nesterov=True), "nesterov momentum requires momentum > 0"),
        (lambda: optim.Adam(betas=(0.9, 1.5)), r"betas\[1\]"),
        (lambda: optim.Adam(eps=0.0), "eps must be"),
        (lambda: optim.RMSprop(momentum=-1), "momentum must be"),
        (lambda: optim.get_optimizer("nadam"), "unknown optimizer 'nadam'.*adam"),
        (lambda: optim.get_schedule("linear", optim.SGD()), "unknown schedule"),
        (lambda: optim.StepLR(optim.SGD(), step_size=0), "step_size must be"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()
