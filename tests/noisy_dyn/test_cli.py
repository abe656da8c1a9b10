"""The command line, run in-process at tiny size (one run as a subprocess for the exit status);
the robustness table on closed-form facts."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import noisy_dyn
from noisy_dyn.__main__ import main
from noisy_dyn._robustness import robustness_table


def test_compare_train_and_robustness_commands_write_parsable_outputs(tmp_path, capsys):
    out = tmp_path / "compare"
    code = main(
        ["compare", "--epochs", "1", "--hidden", "4", "--limit", "48", "--batch-size", "16",
         "--models", "lipschitz", "--kinds", "gaussian,salt_pepper,fgsm,deepfool",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    table = json.loads((out / "robustness.json").read_text())
    assert table["models"] == ["lipschitz"]
    assert set(table["kinds"]) == {"gaussian", "salt_pepper", "fgsm"}
    for kind, data in table["kinds"].items():
        for accs in data["accuracy"].values():
            defaults = noisy_dyn.attacks.DEFAULT_PERTURBATIONS
            assert len(accs) == sum(p.name == kind for p in defaults)
            assert all(0.0 <= a <= 1.0 for a in accs)
    assert set(table["deepfool"]) == {"lipschitz"}
    assert "| lipschitz |" in (out / "robustness.md").read_text()
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == 1 and set(summary["clean"]) == {"lipschitz"}
    # The saved model reproduces the reported clean accuracy (an independent re-evaluation).
    cfg, params = noisy_dyn.load_model(out / "models" / "lipschitz" / "model.npz")
    xs, ys = noisy_dyn.data.load_digits(seed=0).test
    acc = np.mean(np.asarray(noisy_dyn.apply(params, xs[:48], cfg)).argmax(-1) == ys[:48])
    assert table["clean"]["lipschitz"] == pytest.approx(acc, abs=1e-12)
    assert "Lipschitz RNN" in capsys.readouterr().out

    # `train` then `robustness` on its output folder (same model as compare's: no recompiling).
    run = tmp_path / "run"
    dt = repr(0.03 * 784 / 64)
    argv = ["train", "--preset", "lipschitz", "--epochs", "1", "--hidden", "4", "--limit", "48",
            "--batch-size", "16", "--dt", dt, "--out", str(run), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((run / "result.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["learning_rate"] == 1e-2  # not MNIST
    assert (run / "log.jsonl").read_text().count("\n") == 1
    assert {p.name for p in run.iterdir()} >= {"model.npz", "history.json", "result.json"}
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    rob = tmp_path / "rob"
    assert main(["robustness", "--checkpoints", str(run), "--kinds", "multiplicative",
                 "--limit", "48", "--out", str(rob), "--quiet"]) == 0  # fmt: skip
    assert json.loads((rob / "robustness.json").read_text())["models"] == ["run"]


def test_demo_studies_both_forms_and_their_twins_are_one_model(tmp_path, capsys):
    """With sigma = 0 the Ito and the reference form are the same Euler recursion, so the two
    studies' deterministic twins (same seeds, init and data order) must score identically."""
    out = tmp_path / "demo"
    argv = ["demo", "--epochs", "2", "--hidden", "4", "--limit", "48", "--batch-size", "16",
            "--seeds", "2", "--kinds", "gaussian", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    rows = {f: json.loads((out / f / "study.json").read_text()) for f in ("ito", "reference")}
    twin = {f: [r["mean"] for r in rs if r["sigma_add"] == r["sigma_mult"] == 0] for f, rs in
            rows.items()}  # fmt: skip
    assert len(twin["ito"]) == 4 and twin["ito"] == twin["reference"]  # clean + 3 levels
    levels = {f: {(r["sigma_add"], r["sigma_mult"]) for r in rs} for f, rs in rows.items()}
    assert levels["reference"] == {(0.0, 0.0), (0.03, 0.02), (0.06, 0.04)}
    assert levels["ito"] == {(0.0, 0.0), (0.05, 0.05), (0.1, 0.1)}
    headline = (out / "headline.md").read_text().splitlines()
    assert len(headline) == 3 and "(2 seeds)" in headline[0]
    assert headline[2].startswith("† An interval over fewer than 16 seeds is not a 95 %")
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert headline[1] in capsys.readouterr().out


def _error(capsys) -> str:
    """The one ``error:`` line on stderr (data warnings, ``warning: ...``, may precede it)."""
    err = [e for e in capsys.readouterr().err.strip().splitlines() if not e.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_cli_reports_bad_arguments_as_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--preset", "not_a_preset"])
    assert info.value.code == 2
    capsys.readouterr()
    assert main(["train", "--preset", "lipschitz", "--epochs", "0"]) == 2
    assert "--epochs must be >= 1" in _error(capsys)
    assert main(["robustness", "--checkpoints", str(tmp_path / "missing")]) == 2
    assert "no model file" in _error(capsys)
    out = str(tmp_path / "run")
    argv = ["train", "--preset", "lipschitz", "--out", out]
    assert main([*argv, "--batch-size", "128", "--cpu-devices", "3"]) == 2
    assert "multiple of --cpu-devices" in _error(capsys)
    assert main([*argv, "--cpu-devices", "0"]) == 2
    assert "--cpu-devices must be >= 1" in _error(capsys)
    jnp.zeros(1).block_until_ready()  # JAX is running: an explicit device count can't apply
    assert main([*argv, "--cpu-devices", "2"]) == 2
    assert "right after the imports" in _error(capsys)
    assert main([*argv, "--data", "digits", "--data-path", "x"]) == 2
    assert "takes no --data-path" in _error(capsys)
    assert main([*argv, "--data", "ucr"]) == 2
    assert "--data ucr needs --data-path" in _error(capsys)


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("--epochs EPOCHS epochs (default from the data, printed: 100 on MNIST",
                    "--batch-size BATCH_SIZE batch size (default from the data, printed: 128 on",
                    "--standardize {auto,on,off}", "(default: auto)",
                    "runs/noisy_dyn/<preset>_<data>", "--no-resume", "--quiet"):  # fmt: skip
        assert default in text


def _sequences_npz(path, rng, lengths: bool):
    """Class c: sequences of 6 steps of value c (padded with zeros after ``lengths``)."""
    arrays = {}
    for part, n in (("train", 32), ("test", 12)):
        y = np.arange(n) % 2
        x = np.repeat(y[:, None, None], 6, axis=1) + 0.01 * rng.normal(size=(n, 6, 1))
        arrays.update({f"x_{part}": x.astype(np.float32), f"y_{part}": y})
        if lengths:
            arrays[f"lengths_{part}"] = np.full(n, 6 - n % 2)
    np.savez(path, **arrays)
    return path


def test_npz_data_trains_resumes_and_refuses_other_settings(tmp_path, capsys):
    data = _sequences_npz(tmp_path / "mine.npz", np.random.default_rng(0), lengths=True)
    out = tmp_path / "run"
    argv = ["train", "--preset", "lipschitz", "--data", "npz", "--data-path", str(data),
            "--epochs", "1", "--hidden", "4", "--batch-size", "8", "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "outputs written to" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["data"] == "npz" and result["config"]["input_size"] == 1
    cfg, params, scaling = noisy_dyn.load_model(out / "model.npz", with_scaling=True)
    splits = noisy_dyn.data.load_npz(data)  # the same split, read independently of the CLI
    xs, ys, ls = scaling.apply(splits.test)  # standardised as stored with the model
    acc = noisy_dyn.accuracy(params, xs, ys, cfg, lengths=ls)
    assert result["test_accuracy"] == pytest.approx(acc, abs=1e-12)
    # The same command again: the run is complete, its outputs are left as they are.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert main(argv) == 0
    assert "unchanged (the run was already complete)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps
    # Other settings in the same folder: refused with both values, and how to proceed.
    argv[argv.index("--hidden") + 1] = "5"
    assert main(argv) == 2
    line = _error(capsys)
    assert "hidden_size" in line and "4" in line and "5" in line and "--no-resume" in line
    assert main([*argv, "--no-resume"]) == 0
    assert noisy_dyn.load_model(out / "model.npz", with_scaling=True)[0].hidden_size == 5


def test_ucr_folder_trains(tmp_path, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / "ucr").mkdir()
    for part, n in (("TRAIN", 30), ("TEST", 10)):
        y = rng.integers(1, 3, n)  # labels 1, 2 -> classes 0, 1
        rows = [",".join([str(c)] + [f"{v:.4f}" for v in c + rng.normal(size=6)]) for c in y]
        (tmp_path / "ucr" / f"Toy_{part}.txt").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["train", "--preset", "lipschitz", "--data", "ucr", "--data-path",
                 str(tmp_path / "ucr"), "--epochs", "1", "--hidden", "4", "--batch-size", "9",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["num_classes"] == 2 and 0.0 <= result["test_accuracy"] <= 1.0


def test_user_errors_exit_2_without_traceback(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((4, 3, 1)), y_train=np.zeros(4, int))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "noisy_dyn", "train", "--preset", "lipschitz", "--data", "npz",
         "--data-path", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "bad.npz" in proc.stderr and "['x_test', 'y_test']" in proc.stderr


def test_robustness_table_facts_on_a_linear_readout(key):
    # A model that ignores all but the last step and is linear in it: perturbation at level 0 is
    # the clean accuracy, and salt-and-pepper with p = 1 and low = high leaves only the bias.
    cfg = noisy_dyn.NoisyRNNConfig(input_size=1, hidden_size=2, num_classes=2, dt=1.0,
                                   alpha=0.0, init_std=0.0, gamma_w=0.0)  # fmt: skip
    params = {k: jnp.zeros(v.shape) for k, v in noisy_dyn.init_params(key, cfg).items()}
    params["U"] = jnp.array([[1.0], [-1.0]])
    params["V"] = jnp.eye(2)
    xs = np.concatenate([np.full((200, 1, 1), 0.5), np.full((200, 1, 1), -0.5)])
    ys = np.concatenate([np.zeros(200), np.ones(200)]).astype(np.int32)
    res = robustness_table(
        {"lin": (cfg, params)}, (xs, ys),
        (noisy_dyn.attacks.Gaussian(0.0), noisy_dyn.attacks.Gaussian(100.0),
         noisy_dyn.attacks.FGSM(0.0), noisy_dyn.attacks.FGSM(0.6)),
        key=key, progress=False,
    )  # fmt: skip
    assert res["clean"]["lin"] == 1.0
    assert res["kinds"]["gaussian"]["accuracy"]["lin"][0] == 1.0
    # Huge noise: each prediction is a fair coin, accuracy within 5 sigma of 0.5 (400 examples).
    assert abs(res["kinds"]["gaussian"]["accuracy"]["lin"][1] - 0.5) <= 5 * np.sqrt(0.25 / 400)
    # FGSM with eps 0.6 > |x| = 0.5 flips the sign of every input: accuracy 0 (closed form).
    assert res["kinds"]["fgsm"]["accuracy"]["lin"] == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown perturbation"), pytest.warns(DeprecationWarning):
        robustness_table({"lin": (cfg, params)}, (xs, ys), {"blur": (1.0,)}, key=key)
    with pytest.raises(ValueError, match="differ in more than their level"):
        robustness_table(
            {"lin": (cfg, params)},
            (xs, ys),
            (noisy_dyn.attacks.FGSM(0.1), noisy_dyn.attacks.FGSM(0.2, norm=noisy_dyn.attacks.L2())),
            key=key,
        )
    # the former order (params, cfg) still works, warns, and gives the same table
    with pytest.warns(DeprecationWarning, match="former order"):
        old = robustness_table({"lin": (params, cfg)}, (xs, ys), (noisy_dyn.attacks.FGSM(0.6),),
                               key=key, progress=False)  # fmt: skip
    assert old["kinds"]["fgsm"]["accuracy"]["lin"] == [0.0]
    assert jax.tree_util.tree_structure(res)  # plain JSON-able dict
    json.dumps(res)


def test_study_command_writes_rows_with_intervals_and_resumes(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--preset", "nrnn_ito", "--sigma", "0.1", "--seeds", "2", "--hidden", "4",
            "--epochs", "1", "--limit", "64", "--batch-size", "16", "--kinds", "gaussian",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((out / "study.json").read_text())
    # the deterministic twin is added: 2 levels x (clean + 3 Gaussian levels)
    assert len(rows) == 2 * 4
    assert {(r["sigma_add"], r["sigma_mult"]) for r in rows} == {(0.0, 0.0), (0.1, 0.1)}
    for r in rows:
        assert r["n"] == 2 and r["ci_low"] <= r["mean"] <= r["ci_high"]
        assert ("diff_mean" in r) == (r["sigma_add"] > 0)
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 0.1 | 0.1 | clean |" in (out / "study.md").read_text()
    setup = json.loads((out / "study_setup.json").read_text())
    assert setup["levels"] == [[0.0, 0.0], [0.1, 0.1]] and setup["seeds"] == [0, 1]
    capsys.readouterr()
    assert main(argv[:-1]) == 0  # a rerun finds the finished ensemble
    assert "already complete" in capsys.readouterr().err


def test_study_command_keeps_the_noise_at_inference_when_asked(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--preset", "nrnn_reference", "--sigma", "0.1", "--seeds", "2",
            "--hidden", "4", "--epochs", "1", "--limit", "64", "--batch-size", "16",
            "--kinds", "gaussian", "--inference-draws", "2", "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((out / "study.json").read_text())
    # 2 levels x (clean + 3 Gaussian levels) read deterministically, the noisy level also
    # stochastically; each stochastic row paired against the same members read deterministically
    assert len(rows) == 2 * 4 + 4
    stochastic = [r for r in rows if r["inference"] == "stochastic, 2 draws"]
    assert [r["sigma"] for r in stochastic] == [0.1] * 4
    det = {(r["sigma"], r["perturbation"], r["level"]): r for r in rows
           if r["inference"] == "deterministic"}  # fmt: skip
    for r in stochastic:
        twin = det[(r["sigma"], r["perturbation"], r["level"])]
        assert r["inference_diff_mean"] == pytest.approx(r["mean"] - twin["mean"])
        assert r["inference_diff_ci_low"] <= r["inference_diff_mean"] <= r["inference_diff_ci_high"]
    assert "| 0.1 | 0.1 | clean | 0 | stochastic, 2 draws |" in (out / "study.md").read_text()
    assert json.loads((out / "study_setup.json").read_text())["inference_draws"] == 2
    capsys.readouterr()
    assert main(argv[:-1] + ["--inference-draws", "-1", "--quiet"]) == 2
    assert "--inference-draws must be >= 0" in capsys.readouterr().err


def test_study_levels_of_one_noise_alone():
    """--sigma-add alone studies additive noise only (sigma_mult = 0), and vice versa."""
    from noisy_dyn.experiments import study_levels

    assert study_levels(None, [0.1, 0.2]) == [(0.0, 0.0), (0.1, 0.0), (0.2, 0.0)]
    assert study_levels(None, None, [0.05]) == [(0.0, 0.0), (0.0, 0.05)]


def test_study_command_refuses_nothing_to_compare(tmp_path, capsys):
    """One seed (no interval) or only sigma = 0 (no noisy level) is refused before training."""
    base = ["study", "--preset", "nrnn_ito", "--out", str(tmp_path), "--epochs", "1"]
    assert main(base + ["--seeds", "1"]) == 2
    assert "at least 2 seeds" in capsys.readouterr().err
    assert main(base + ["--seeds", "2", "--sigma", "0"]) == 2
    assert "no noisy level" in capsys.readouterr().err


def test_confirm_command_reproduces_the_stored_two_stage_test(tmp_path, capsys):
    """`confirm` on the committed digits discovery and confirmation studies gives the
    two-stage result stored beside them (written by the per-folder script it replaced), and
    refuses a level the discovery study does not have."""
    import shutil
    from pathlib import Path

    results = Path(__file__).parents[2] / "docs" / "results" / "noisy_dyn"
    for name in ("study_digits", "study_digits_confirm"):
        (tmp_path / name).mkdir()
        shutil.copy(results / name / "study.json", tmp_path / name / "study.json")
    stored = json.loads((results / "study_digits_confirm" / "confirm.json").read_text())
    assert main(["confirm", str(tmp_path / "study_digits"), str(tmp_path / "study_digits_confirm"),
                 "--level", "0.03,0.02"]) == 0  # fmt: skip
    got = json.loads((tmp_path / "study_digits_confirm" / "confirm.json").read_text())
    # stored before the split was recorded: the same rows, now saying both studies used test
    assert all(r.pop("split") == "test" for rows in got.values() for r in rows)
    assert got == stored
    assert "picked by holm: 4" in capsys.readouterr().out
    assert main(["confirm", str(tmp_path / "study_digits"), str(tmp_path / "study_digits_confirm"),
                 "--level", "0.5,0.5"]) == 2  # fmt: skip
    assert "no level" in capsys.readouterr().err


def test_a_run_still_learning_names_the_epochs_flag(capsys):
    """The plateau rule's late gain (mean validation accuracy, last quarter before the decay at
    90 %) decides the note: 10 epochs rising 1 point each gain 3 points (epochs 7-9 over 1-6)."""
    from noisy_dyn.experiments import warn_if_still_learning

    rising = {"val_accuracy": [0.5 + 0.01 * e for e in range(1, 11)]}
    assert warn_if_still_learning(rising, epochs=10, default=200)
    err = capsys.readouterr().err
    assert "+3.0 points" in err and "--epochs 200 (the default for this data)" in err
    assert warn_if_still_learning(rising, epochs=150, default=200)
    assert "--epochs 300 (the default for this data: 200)" in capsys.readouterr().err
    flat = {"val_accuracy": [0.9] * 10}
    assert not warn_if_still_learning(flat, epochs=10, default=200)
    assert not warn_if_still_learning({}, epochs=10, default=200)  # no validation: no claim
    assert capsys.readouterr().err == ""
