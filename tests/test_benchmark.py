"""Smoke test of the benchmark harness: FLOP counting, the plain NumPy loop, the report's structure (no timings)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deltaprop import MLP, benchmark
from deltaprop.optim import SGD


def test_flops_per_example_matches_the_issue():
    # P = 784·512 + 512·256 + 256·10 = 535,040 weights; 2P + 2P + 2(P − 784·512) = 2.41 MFLOP
    assert benchmark.n_weights([784, 512, 256, 10]) == 535_040
    assert benchmark.flops_per_example([784, 512, 256, 10]) == 2_407_424
    assert benchmark.flops_per_example([2, 2, 2]) == 40
    assert benchmark.flops_per_example([5, 3]) == 2 * 15 + 2 * 15  # one layer: no input gradients


def test_gemm_floor_does_exactly_the_counted_flops(monkeypatch):
    w = benchmark.Workload(**{**benchmark.WORKLOADS["M"].__dict__, "sizes": (6, 5, 4, 3), "batch_size": 4, "n": 10})
    setup, train, _ = benchmark.make_system(w, "gemm")
    state = setup(benchmark.initial_weights(w))
    data = benchmark.Data(np.ones((10, 6), np.float32), np.zeros((10, 3), np.float32), np.zeros(10, np.int64), 2)
    counted = []
    real = np.matmul

    def counting(a, b, out=None):
        counted.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
        return real(a, b, out=out)

    monkeypatch.setattr(np, "matmul", counting)
    train(state, data)
    assert sum(counted) == benchmark.flops_per_example(w.sizes) * 10 * 2


def test_plain_numpy_loop_matches_deltaprop_full_batch_sgd():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4)).astype(np.float32)
    y = np.arange(12) % 3
    T = np.eye(3, dtype=np.float32)[y]
    net = MLP([4, 5, 3], activation="relu", output_activation="softmax", loss="cross_entropy", seed=1)
    init = net.get_weights()
    net.fit(X, y, epochs=5, batch_size=None, optimizer=SGD(lr=0.1, momentum=0.9), shuffle=False, verbose=0)
    mine, loss = benchmark.numpy_train(X, T, init, optimizer="sgd", lr=0.1, momentum=0.9, batch_size=12, epochs=5)
    for (W, b), (W2, b2) in zip(net.get_weights(), mine):
        np.testing.assert_allclose(W, W2, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, b2, rtol=1e-4, atol=1e-5)
    assert math.isfinite(loss)


def test_report_structure_and_missing_peer(monkeypatch, tmp_path):
    monkeypatch.setitem(benchmark.PEER_MODULES, "torch", "no_such_module_for_deltaprop_tests")
    report = benchmark.run_benchmark(
        ["S"], quick=True, repeats=2, systems=["deltaprop", "numpy", "torch"], measure_import=False, quiet=True
    )
    s = report["workloads"]["S"]
    assert s["flops_per_example"] == 40
    assert set(s["systems"]) == {"deltaprop", "numpy", "torch"}
    for name in ("deltaprop", "numpy"):
        r = s["systems"][name]
        assert len(r["times"]) == 2 and r["median"] > 0, r.get("note")
        assert r["eval_loss"] == pytest.approx(s["systems"]["numpy"]["eval_loss"], rel=1e-3)
        assert r["maxrss"] >= 0
    assert "not installed" in s["systems"]["torch"]["note"] and not s["systems"]["torch"]["times"]
    targets = {t["target"]: t for t in report["targets"]}
    assert targets["S: deltaprop >= 25x torch throughput"]["met"] is None  # no PyTorch: not measured
    text = benchmark.format_report(report)
    assert "## Machine" in text and "### S:" in text and "## Targets" in text and "not installed" in text
    assert "| target | measured (medians) | with minima | per repeat (median) | met |" in text
    assert "| S: deltaprop >= 25x torch throughput | not measured | - | - | - |" in text
    path = tmp_path / "RESULTS.md"
    path.write_text("# Findings\n\nkept\n")
    benchmark.write_report(str(path), text)
    benchmark.write_report(str(path), text)  # the second write replaces the first block
    written = path.read_text()
    assert written.startswith("# Findings\n\nkept\n") and written.count(benchmark.BEGIN) == 1

    # each system's spread (slowest / fastest run) under its table; a disturbed run is named under the targets
    s["systems"]["deltaprop"]["times"] = [0.010, 0.015]
    s["systems"]["numpy"]["times"] = [0.020, 0.021]
    text = benchmark.format_report(report)
    assert "Spread of each system's runs (slowest / fastest): deltaprop 1.50x, numpy 1.05x." in text


def test_targets_report_medians_minima_and_per_repeat_ratios():
    # repeat by repeat deltaprop is twice as fast; one slow spell hit the peer's second and deltaprop's third run
    report = {
        "workloads": {
            "L": {
                "systems": {
                    "deltaprop": {"times": [1.0, 1.0, 3.0], "median": 1.0},
                    "torch": {"times": [2.0, 6.0, 6.0], "median": 6.0},
                    "gemm": {"times": [0.9, 0.9], "median": 0.9},  # a repeat missing: no per-repeat ratio
                }
            }
        }
    }
    targets = {t["target"]: t for t in benchmark.check_targets(report)}
    speed = targets["L: deltaprop >= 1.3x torch throughput"]
    assert speed["measured"] == 6.0 and speed["by_min"] == 2.0 and speed["by_round"] == 2.0 and speed["met"]
    peak = targets["L: deltaprop >= 90% of measured GEMM peak"]
    assert peak["measured"] == pytest.approx(0.9) and peak["by_round"] is None and peak["met"]
    assert speed["disagree"] == [] and peak["disagree"] == []


def test_targets_say_when_the_verdict_depends_on_the_statistic():
    # deltaprop's last two runs were disturbed: by medians it misses 1.3x PyTorch, by its fastest run it meets it
    systems = {
        "deltaprop": {"times": [1.0, 1.6, 1.6], "median": 1.6},
        "torch": {"times": [1.9, 1.9, 1.9], "median": 1.9},
    }
    report: dict = {"workloads": {"L": {"systems": systems}}}
    speed = {t["target"]: t for t in benchmark.check_targets(report)}["L: deltaprop >= 1.3x torch throughput"]
    assert speed["measured"] == pytest.approx(1.9 / 1.6) and not speed["met"]
    assert speed["disagree"] == ["with minima"]  # per repeat (1.19x) agrees with the medians
    report["machine"], report["targets"] = {}, [speed]
    report["workloads"]["L"]["workload"] = {"title": "L", "n": 1, "epochs": 1, "repeats": 3}
    report["workloads"]["L"].update(flops_per_example=1, flops=1)
    text = benchmark.format_report(report)
    assert "| L: deltaprop >= 1.3x torch throughput | 1.19x | 1.90x | 1.19x | **no** (met with minima) |" in text
    assert "Spread of each system's runs (slowest / fastest): deltaprop 1.60x, torch 1.00x." in text


def test_unknown_workload_is_an_error(capsys):
    assert benchmark.main(["--workloads", "Z", "--quiet"]) == 2
    assert "unknown workload" in capsys.readouterr().err


def _bench_script(name):
    """The module bench/NAME.py (bench/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_l_budget_times_every_part_of_a_step(capsys):
    module = _bench_script("l_budget")
    assert module.main(["--steps", "2"]) == 0
    out = capsys.readouterr().out
    for part in ("gemm", "update", "gather", "relu", "softmax_ce"):
        assert f"  {part} " in out
    bound = float(out.rsplit("at most ", 1)[1].split("%")[0])
    assert 0.0 < bound < 100.0


def test_l_ablation_times_each_part_inside_the_step(capsys):
    module = _bench_script("l_ablation")
    assert module.main(["--rounds", "1", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("products only", "+gather", "+update", "+relu", "+bias", "+softmax", "+beta", "whole step"):
        assert f"  {name} " in out
    share = float(out.rsplit("alone are ", 1)[1].split("%")[0])
    assert 0.0 < share < 1000.0  # a ratio of two measured times (noise can put it above 100 % in a 2-step run)


def test_every_timed_run_starts_after_the_idle_time(monkeypatch):
    """No system's run starts while the threads of the run before it may still spin: the parent waits ``idle``
    seconds before asking each worker for a timed run."""
    import time as time_module

    waits = []
    real_sleep = time_module.sleep

    def sleep(seconds):
        waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(benchmark.time, "sleep", sleep)
    report = benchmark.run_benchmark(
        ["S"], quick=True, repeats=3, systems=["deltaprop", "numpy"], measure_import=False, quiet=True, idle=0.0123
    )
    assert waits.count(0.0123) == 6  # 3 repeats x 2 systems
    assert report["idle_before_run"] == 0.0123
    assert "- Idle time before each timed run: 0.0123 s" in benchmark.format_report(report)
    with pytest.raises(ValueError, match="idle must be 0 or more"):
        benchmark.run_benchmark(["S"], quick=True, idle=-1.0, measure_import=False, quiet=True)


def test_negative_idle_time_is_an_error(capsys):
    assert benchmark.main(["--workloads", "S", "--idle", "-0.5", "--quiet"]) == 2
    assert "--idle must be 0 or more seconds" in capsys.readouterr().err


def test_l_steps_times_the_compiled_step_and_the_floor(capsys):
    module = _bench_script("l_steps")
    assert module.main(["--rounds", "1", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    floor_p50 = None
    for name in ("floor", "team", "team-noupdate", "one"):  # (printed in this order: the floor first)
        line = next(row for row in out.splitlines() if row.startswith(f"  {name} "))
        p10, p50, p90 = (float(line.split(key)[1].split("µs")[0]) for key in ("p10", "p50", "p90"))
        assert 0 < p10 <= p50 <= p90
        if name == "floor":  # the ratio column: the floor's p50 over its own
            assert line.endswith("the floor's p50 / this p50: 100.0%")
        else:
            assert float(line.rsplit(": ", 1)[1].rstrip("%")) == pytest.approx(100 * floor_p50 / p50, rel=2e-3)
        if name == "floor":
            floor_p50 = p50
    with pytest.raises(SystemExit):
        module.main(["--variants", "floor,nonsense"])


def test_after_product_times_the_first_steps_after_each_case(capsys):
    module = _bench_script("after_product")
    assert module.main(["--rounds", "1", "--rows", "5120"]) == 0  # 40 batches: 30 first steps, 10 later
    out = capsys.readouterr().out
    for case in ("nothing", "a 512 x 512 product", "predict on 10,000 rows", "a product, then 0.3 s idle"):
        line = next(row for row in out.splitlines() if row.startswith(f"  {case} "))
        first = float(line.split("first 30 steps")[1].split("ms")[0])
        later = float(line.split("later")[1].split("ms")[0])
        assert first > 0 and later > 0
