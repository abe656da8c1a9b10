"""Smoke test of the benchmark suite: its smallest configuration runs and reports sane numbers.

Speed is never asserted. Checked: the JSON parses, the Markdown and plot files exist, and the
matmul FLOP count that the suite derives from the traced program equals the closed form of one
training step written here: per time step 4BH^2 (forward fused matmul) + 8BH^2 (backward) +
6BHI (input projection, its weight and input gradients), plus 6BHC for the read-out; the fused
kernel does 2BHI less per step (it forms the input gradient only when the inputs are
differentiated, which a training step does not).
"""

import json


def test_smoke_run_writes_consistent_results(tmp_path):
    from benchmarks.run import run_suite

    run_suite("smoke", tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "cpu_smoke.json" in files and "cpu_smoke.md" in files
    assert any(name.endswith(".png") for name in files)
    res = json.loads((tmp_path / "cpu_smoke.json").read_text())
    ts = res["train_step"]
    B, H, T, n_in, C = ts["batch"], ts["hidden"], ts["time"], 1, 10
    closed = T * (4 * B * H * H + 8 * B * H * H + 6 * B * H * n_in) + 6 * B * H * C
    assert ts["flops_jaxpr_fused"] == closed - 2 * T * B * H * n_in
    assert ts["flops_closed_form"] == closed
    for name in ("jax_library", "jax_fused"):
        s = ts["impl"][name]
        assert 0 < s["min_s"] <= s["median_s"]
        assert s["peak_bytes"] > 0
    # the fused kernel reproduces the library's loss and gradients on the same noise
    assert res["agreement_rel_err"]["jax_fused"] < 1e-5
    ref = res["train_step_reference"]  # the reference form (paper's configuration) as well
    assert ref["form"] == "reference" and ref["impl"]["jax_fused"]["min_s"] > 0
    assert res["agreement_rel_err_reference"]["jax_fused"] < 1e-5
    assert res["matmul"]["flops_per_s"] > 0


def test_profile_breakdown_counts_the_step_loops():
    """The profiler breakdown of a tiny step (T = 16, one chunk): the scans run once per step
    and the operations inside them (the matmuls among them) T times per step."""
    from benchmarks.profile_noisy_step import profile

    T = 16  # one chunk of 16 steps
    rows = profile(batch=4, hidden=8, time=T, repeats=1)
    assert rows and all(r["ms_per_step"] >= 0 for r in rows)
    assert sum(r["ms_per_step"] for r in rows) > 0
    loops = [r for r in rows if r["op"].startswith("while")]
    assert loops and all(r["calls_per_step"] >= 1 for r in loops)
    in_loop = [r for r in rows if r["calls_per_step"] == T]
    assert len(in_loop) >= 4  # forward and backward: a matmul and an update each, at least


def test_compress_study_reads_a_train_run_and_matches_the_closed_form(tmp_path):
    """``benchmarks.basis_compress_study`` on a tiny ``python -m basis_ode train`` run: the
    projection's theta(t) error of the parameters on the grid equals ``compression_residual``
    over the parameters (closed form), and
    for piecewise-constant K = 2 -> 1 interpolation's error is twice it (the picked value
    differs from the mean by the half-difference, the mean by the same: |a - b|^2 / 2 against
    |a - b|^2 / 4 per unit)."""
    import pytest

    from basis_ode.__main__ import main as basis_main
    from benchmarks.basis_compress_study import main as study_main

    run, out = tmp_path / "run", tmp_path / "study"
    basis_main(["train", "--data", "digits", "--limit", "128", "--eval-limit", "32", "--epochs",
                "1", "--width", "2", "--K", "2", "--n-steps", "2", "--batch-size", "64",
                "--out", str(run), "--quiet"])  # fmt: skip
    study_main(["--run", str(run), "--Ks", "1", "--n-steps-list", "1,2", "--limit", "32",
                "--out", str(out)])  # fmt: skip
    res = json.loads((out / "study.json").read_text())
    (row,) = res["rows"]
    assert row["residual"] > 0 and row["residual_params"] > 0
    assert row["theta_err_project"] == pytest.approx(row["residual_params"], rel=1e-6)
    assert row["theta_err_interpolate"] == pytest.approx(2 * row["residual_params"], rel=1e-6)
    assert res["split"] == "validation"
    assert 0.0 <= row["acc_project_n2"] <= 1.0 and "| 1 |" in (out / "study.md").read_text()


def test_ensemble_benchmark_reports_the_median_repeat():
    """Three synthetic repeats, worked by hand: per epoch = warm / e2, fixed = cold - e1 per
    epoch, total = fixed + E per epoch; the table is the repeat with the median speed-up."""
    from benchmarks.ensemble import markdown_lines, summarize

    arm = lambda cold, warm: {"cold": cold, "warm": warm}  # noqa: E731
    runs = [  # e1 = 1, e2 = 2, E = 10
        {"separate": arm(12.0, 4.0), "ensemble": arm(6.0, 2.0)},  # 30 / 15 = 2.0x
        {"separate": arm(11.0, 2.0), "ensemble": arm(6.0, 2.0)},  # 20 / 15 = 1.333x
        {"separate": arm(14.0, 4.0), "ensemble": arm(6.0, 2.0)},  # 32 / 15 = 2.133x
    ]
    res = summarize(runs, 1, 2, 10)
    assert res["speedups"] == [30 / 15, 20 / 15, 32 / 15]
    assert res["speedup"] == 2.0 and res["speedup_per_epoch"] == 2.0
    assert res["separate"] == {"per_epoch_s": 2.0, "fixed_s": 10.0, "total_s": 30.0}
    assert res["ensemble"] == {"per_epoch_s": 1.0, "fixed_s": 5.0, "total_s": 15.0}
    setup = dict(hidden=8, batch_size=4, n_train=8, members=2, levels=[0.0, 0.1], seeds=[0])
    res.update(setup, target_epochs=10, repeats=3, devices=1, epochs_timed=[1, 2])
    res["steps_per_epoch"] = 2
    text = "\n".join(markdown_lines(res))
    assert "| separate | 10.0 | 2.00 | 30.0 |" in text
    assert "median of 3 repeats" in text and "2.00x, 1.33x, 2.13x" in text


def test_odeint_compile_benchmark_runs_and_reuses_the_program(tmp_path):
    """``benchmarks.odeint_compile`` (few repeats): a repeated eager call is far cheaper than the
    first (which compiles), and eager and jitted solves give the same numbers."""
    from benchmarks.odeint_compile import main

    res = main(["--repeats", "3", "--slow-repeats", "1", "--out", str(tmp_path / "oc")])
    rows = res["rows"]
    assert rows["eager_repeat"]["median_s"] < rows["eager_first"]["median_s"] / 10
    assert rows["fresh_jit_closure"]["median_s"] > 10 * rows["eager_repeat"]["median_s"]
    assert res["max_abs_diff_eager_vs_jitted"] == 0.0
    assert (tmp_path / "oc.md").read_text().startswith("# odeint: eager calls")
