"""The seed's worked examples reproduce every published figure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from published import PUBLISHED  # the figures as published (tests/published.py)

from deltaprop import trace_step
from deltaprop.examples import (
    WORKED_LR,
    WORKED_T,
    WORKED_X,
    one_weight_descent,
    one_weight_table,
    train_worked_example,
    worked_example_network,
)


@pytest.fixture(scope="module")
def trace():
    return trace_step(worked_example_network(), WORKED_X[0], WORKED_T[0], WORKED_LR)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_figure(trace, name):
    published = PUBLISHED[name]
    decimals = len(repr(published).split(".")[1])  # as many decimals as were published (up to 9)
    assert round(trace[name], decimals) == pytest.approx(published, abs=10**-decimals / 2), name


def test_chain_rule_factors_of_w5(trace):
    d = trace.to_dict()
    assert d["dE_dout_o1"] == pytest.approx(0.74136507, abs=5e-9)  # −(target − out)
    assert d["dout_dnet_o1"] == pytest.approx(0.186815602, abs=5e-10)  # out(1 − out)
    assert d["dnet_dw5"] == pytest.approx(0.593269992, abs=5e-10)  # out_h1
    assert d["dE_dout_o1"] * d["dout_dnet_o1"] * d["dnet_dw5"] == pytest.approx(d["dE_dw5"], rel=1e-12)


def test_hidden_layer_figures(trace):
    d = trace.to_dict()
    assert d["dE_dout_h1"] == pytest.approx(0.036350306, abs=5e-10)
    assert d["dout_dnet_h1"] == pytest.approx(0.241300709, abs=5e-10)
    assert d["dE_dw1"] == pytest.approx(0.000438568, abs=5e-10)


def test_biases_frozen_by_default_in_the_published_example(trace):
    d = trace.to_dict()
    assert d["b1_h1_new"] == d["b1_h1"] == 0.35
    assert d["b2_o2_new"] == 0.60


def test_error_after_first_update_follows_the_seed_not_the_variant(trace):
    assert trace.E_total_new == pytest.approx(0.291027774, abs=5e-10)
    assert abs(trace.E_total_new - 0.291027924) > 1e-8  # the published variant's figure differs


def test_ten_thousandth_forward_pass_biases_fixed():
    result = train_worked_example(10_000, train_biases=False)
    assert result.E_total == pytest.approx(0.0000351085, abs=5e-11)
    assert result.outputs[0] == pytest.approx(0.01591419, abs=5e-9)
    assert result.outputs[1] == pytest.approx(0.98406371, abs=5e-9)
    assert result.E_after_first_update == pytest.approx(0.291027774, abs=5e-10)


def test_training_the_biases_too_reaches_a_lower_error():
    fixed = train_worked_example(10_000, train_biases=False)
    trained = train_worked_example(10_000, train_biases=True)
    assert trained.E_total < fixed.E_total
    assert np.all(np.diff(trained.curve) < 0)  # every step lowers E on this problem


def test_trace_text_has_the_three_steps(trace):
    text = trace.to_text()
    for heading in ("Step 1 — forward pass", "Step 2 — backward pass", "Step 3 — update"):
        assert heading in text
    assert "net_h1 = w1·i1 + w2·i2 + b1_h1" in text
    assert "w5⁺ = 0.4 − 0.5·0.0821670406 = 0.35891648" in text


def test_trace_json_round_trips(trace):
    payload = json.loads(trace.to_json())
    assert payload["layers"] == [["h1", "h2"], ["o1", "o2"]]
    assert payload["w5_new"] == trace["w5_new"]


def test_one_weight_tables():
    w3, w4, w2 = one_weight_table([3, 4, 2])
    assert w3.outputs == [0, 3, 6] and w3.absolute_errors == [0, 1, 2] and w3.squared_errors == [0, 1, 4]
    assert w4.outputs == [0, 4, 8] and w4.squared_errors == [0, 4, 16]
    assert w4.sum_squared_error > w3.sum_squared_error  # moving W up made it worse
    assert w2.sum_squared_error == 0 and w2.E == 0


def test_one_weight_descent_converges_to_two():
    steps = one_weight_descent(3.0, lr=0.3, steps=30)
    assert steps[0].W == 3.0
    assert steps[0].dE_dW == pytest.approx(5 / 3)  # (5/3)(W − 2)
    assert steps[1].W == pytest.approx(2.5)  # lr 0.3 halves W − 2
    assert abs(steps[-1].W_new - 2.0) < 1e-8
    assert all(a.E > b.E for a, b in zip(steps, steps[1:]))


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "deltaprop", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_demo_json_is_keyed_by_the_seed_names():
    proc = _run_cli("demo", "--json", "--steps", "10000")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    for name, value in PUBLISHED.items():
        assert d[name] == pytest.approx(value, abs=1e-8)
    assert d["training"]["biases_fixed"]["E_total"] == pytest.approx(0.0000351085, abs=5e-11)


def test_demo_text_and_one_weight():
    proc = _run_cli("demo", "--steps", "100")
    assert proc.returncode == 0 and "E_total = E_o1 + E_o2 = 0.298371109" in proc.stdout
    proc = _run_cli("demo", "one-weight")
    assert proc.returncode == 0 and "sum of squared errors = 20" in proc.stdout
    d = json.loads(_run_cli("demo", "one-weight", "--json").stdout)
    assert d["tables"][0]["W"] == 3.0 and d["descent"]["steps"][0]["W"] == 3.0


def test_demo_bad_arguments_exit_2_without_traceback():
    proc = _run_cli("demo", "--steps", "1")
    assert proc.returncode == 2
    assert "steps must be" in proc.stderr and "Traceback" not in proc.stderr
