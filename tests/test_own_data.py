"""Your own data, end to end: files in the formats users have (npz with and without lengths, UCR
text, multivariate variable-length ``.ts`` files, short and long series) through every command
line, on tiny sizes.

What each test checks against something independent: the clean accuracy every command reports
equals ``noisy_dyn.accuracy`` of the saved model on the test split read with its lengths (and
standardised with the statistics stored in the model file); the default step equals the
documented rule ``dt x 784 / T``; refusals name what the model expects and what was given;
piped logs hold no carriage return.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import noisy_dyn
from basis_ode.__main__ import main as bo_main
from noisy_dyn import experiments
from noisy_dyn.__main__ import main
from tests._shape_checks import library_checks_only

TINY = ["--hidden", "4", "--batch-size", "8", "--quiet"]


def _ragged_npz(path, *, n_train=40, n_test=16, T=10, seed=0):
    """Two classes: the sign of the value at each series' last real step; after it, large
    padding of the other sign, so a model read at step T instead of its length is misled."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 2
        lengths = rng.integers(3, T + 1, n)
        x = rng.normal(0.0, 0.3, (n, T, 1))
        sign = np.where(y == 1, 1.0, -1.0)
        for i in range(n):
            x[i, : lengths[i], 0] += sign[i]
            x[i, lengths[i] :, 0] = -5.0 * sign[i]
        arrays.update({f"x_{part}": x.astype(np.float32), f"y_{part}": y,
                       f"lengths_{part}": lengths})  # fmt: skip
    np.savez(path, **arrays)
    return path


def _plain_npz(path, *, n_train=40, n_test=16, T=12, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = y[:, None] + 0.3 * rng.normal(size=(n, T))  # (N, T): one feature per step
        arrays.update({f"x_{part}": x.astype(np.float32), f"y_{part}": y})
    np.savez(path, **arrays)
    return path


def _test_accuracy(run, data):
    """The saved model's accuracy on the npz's test split, read with its lengths and
    standardised as the model file says."""
    cfg, params, scaling = noisy_dyn.load_model(run / "model.npz", with_scaling=True)
    test = noisy_dyn.data.load_npz(data).test
    return noisy_dyn.accuracy(params, test if scaling is None else scaling.apply(test), cfg)


# --------------------------------------------------------------------------------------------
# lengths: every command reads ragged series at their own length


def test_train_then_robustness_clean_accuracy_uses_lengths(tmp_path, capsys):
    data = _ragged_npz(tmp_path / "ragged.npz")
    run = tmp_path / "run"
    argv = ["train", "--preset", "lipschitz", "--data", "npz", "--data-path", str(data),
            "--epochs", "2", "--out", str(run), *TINY]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["test_accuracy"] == pytest.approx(_test_accuracy(run, data), abs=1e-12)
    rob = tmp_path / "rob"
    assert main(["robustness", "--checkpoints", str(run), "--data", "npz", "--data-path",
                 str(data), "--kinds", "gaussian", "--out", str(rob), "--quiet"]) == 0  # fmt: skip
    table = json.loads((rob / "robustness.json").read_text())
    assert table["clean"]["run"] == pytest.approx(result["test_accuracy"], abs=1e-12)
    # the lengths matter on this file: read at step T, the predictions differ
    cfg, params, scaling = noisy_dyn.load_model(run / "model.npz", with_scaling=True)
    xs, _, ls = scaling.apply(noisy_dyn.data.load_npz(data).test)
    at_length = np.asarray(experiments_logits(params, xs, cfg, ls))
    at_end = np.asarray(noisy_dyn.apply(params, xs, cfg))
    assert not np.allclose(at_length, at_end, atol=1e-3)


def experiments_logits(params, xs, cfg, lengths):
    from noisy_dyn._train import logits_with_lengths

    return logits_with_lengths(params, xs, cfg, lengths=lengths)


@pytest.mark.parametrize("split", [None, "test"])
def test_study_clean_accuracy_of_every_member_uses_lengths(tmp_path, capsys, split):
    """By default the study scores the validation split (none of it is chosen on test), with
    ``split="test"`` the test split: each clean row equals the members' accuracy computed
    apart on that split, read at each series' length."""
    data = _ragged_npz(tmp_path / "ragged.npz", n_train=120)
    run = experiments.study(
        "nrnn_ito", "npz", data_path=str(data), levels=[(0.0, 0.0), (0.1, 0.1)], seeds=[0, 1],
        epochs=1, batch_size=8, hidden=4, kinds=["gaussian"], out=tmp_path / "study",
        progress=False, **({} if split is None else {"split": split}),
    )  # fmt: skip
    setup = json.loads((tmp_path / "study" / "study_setup.json").read_text())
    scaling = noisy_dyn.data.InputScaling(*(np.asarray(setup["input_scaling"][k])
                                            for k in ("mean", "scale")))  # fmt: skip
    name = split or "validation"
    xs, ys, ls = scaling.apply(getattr(noisy_dyn.data.load_npz(data), name))
    assert (setup["split"], setup["split_examples"]) == (name, len(ys))
    assert {(r["split"], r["examples"]) for r in run["rows"]} == {(name, len(ys))}
    first = (tmp_path / "study" / "study.md").read_text().splitlines()[0]
    assert first == f"Scored on the {name} split ({len(ys)} examples)."
    small = "warning: the study is scored on a validation split of 12 examples"
    assert (small in capsys.readouterr().err) == (split is None)  # 12 < MIN_VALIDATION = 30
    params = run["params"]
    for c, cfg in enumerate(run["cfgs"]):
        accs = []
        for s in range(2):
            member = {k: v[c * 2 + s] for k, v in params.items()}
            accs.append(noisy_dyn.accuracy(member, xs, ys, cfg, lengths=ls))
        level = (cfg.sigma_add, cfg.sigma_mult)
        rows = [r for r in run["rows"] if r["perturbation"] == "clean"]
        (row,) = [r for r in rows if (r["sigma_add"], r["sigma_mult"]) == level]
        assert row["mean"] == pytest.approx(np.mean(accs), abs=1e-9)


def test_compare_clean_accuracy_equals_each_trained_run_on_ragged_splits(tmp_path, capsys):
    splits = noisy_dyn.data.load_npz(_ragged_npz(tmp_path / "ragged.npz"))
    options = {"models": ["lipschitz"], "epochs": 1, "batch_size": 8, "hidden": 4, "dt": None,
               "learning_rate": 1e-2, "progress": False,
               "perturbations": {"gaussian": (0.1,)}}  # fmt: skip
    table = experiments._compare_seed(0, splits, tmp_path / "cmp", options)
    result = json.loads((tmp_path / "cmp" / "models" / "lipschitz" / "result.json").read_text())
    assert table["clean"]["lipschitz"] == pytest.approx(result["test_accuracy"], abs=1e-12)
    cfg, params = noisy_dyn.load_model(tmp_path / "cmp" / "models" / "lipschitz" / "model.npz")
    xs, ys, ls = splits.test
    assert result["test_accuracy"] == pytest.approx(
        noisy_dyn.accuracy(params, xs, ys, cfg, lengths=ls), abs=1e-12
    )


# --------------------------------------------------------------------------------------------
# defaults that scale to the data's length


@pytest.mark.parametrize("T", [12, 1000])
def test_default_dt_keeps_dt_times_T_and_is_announced(tmp_path, capsys, T):
    data = _plain_npz(tmp_path / "plain.npz", T=T, n_train=24, n_test=8)
    run = tmp_path / "run"
    argv = ["train", "--preset", "nrnn_ito", "--data", "npz", "--data-path", str(data),
            "--epochs", "1", "--hidden", "4", "--batch-size", "8", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((run / "result.json").read_text())
    preset_dt = noisy_dyn.preset("nrnn_ito", input_size=1, num_classes=2).dt
    assert result["config"]["dt"] == pytest.approx(preset_dt * 784 / T, rel=1e-12)
    assert result["config"]["dt"] * T == pytest.approx(preset_dt * 784)
    assert result["learning_rate"] == experiments.OWN_DATA_LR
    assert f"x 784 / {T} steps" in capsys.readouterr().out


def test_chance_level_warning_and_its_rule(tmp_path, capsys):
    from trainkit import at_chance, chance_level

    ys = np.array([0] * 60 + [1] * 40)
    assert chance_level(ys) == 0.6
    edge = 0.6 + 2 * np.sqrt(0.6 * 0.4 / 100)  # two binomial standard errors above chance
    assert at_chance(edge - 1e-6, ys) and not at_chance(edge + 1e-6, ys)
    data = _plain_npz(tmp_path / "plain.npz", n_train=320, n_test=16)
    argv = ["train", "--preset", "lipschitz", "--data", "npz", "--data-path", str(data),
            "--epochs", "1", "--lr", "1e-7", "--out", str(tmp_path / "run"), *TINY]  # fmt: skip
    assert main(argv) == 0
    assert "ended at chance level" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# validation fraction, label space, refusals


def test_validation_fraction_and_small_split_warning(tmp_path, capsys):
    data = _plain_npz(tmp_path / "plain.npz", n_train=100)
    splits = experiments.load_data("npz", data_path=str(data), validation_fraction=0.4)
    assert len(splits.validation[1]) == 40 and len(splits.train[1]) == 60
    assert "warning" not in capsys.readouterr().err
    experiments.load_data("npz", data_path=str(data))  # 10 of 100: too few to rank epochs
    assert "holds 10 examples" in capsys.readouterr().err
    with pytest.raises(noisy_dyn.experiments.CLIError, match="fixed validation set"):
        experiments.load_data("mnist", data_path="x.whl", validation_fraction=0.2)
    three = _plain_npz(tmp_path / "three.npz", n_train=3, n_test=4)
    argv = ["train", "--preset", "lipschitz", "--data", "npz", "--data-path", str(three),
            "--out", str(tmp_path / "r"), *TINY]  # fmt: skip
    assert main(argv) == 2
    assert "no validation example" in capsys.readouterr().err


def test_labels_the_training_split_lacks_are_refused_naming_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 5, 1)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(20) % 2, x_test=x[:6],
             y_test=np.array([0, 1, 2, 2, 0, 1]))  # fmt: skip
    argv = ["train", "--preset", "lipschitz", "--data", "npz", "--data-path",
            str(tmp_path / "d.npz"), "--out", str(tmp_path / "r"), *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "test split has classes [2] (2 examples)" in err and "0..1" not in err


def test_ucr_text_and_nan_padded_files(tmp_path, capsys):
    rng = np.random.default_rng(1)
    folder = tmp_path / "ucr"
    folder.mkdir()
    for part, n in (("TRAIN", 40), ("TEST", 10)):
        y = rng.integers(1, 3, n)  # 1-based labels, as in the UCR archive
        rows = [" ".join([str(c)] + [f"{v:.4f}" for v in c + rng.normal(size=8)]) for c in y]
        (folder / f"Toy_{part}.txt").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--preset", "nrnn_ito", "--data", "ucr", "--data-path", str(folder),
                 "--epochs", "1", "--validation-fraction", "0.25", "--out", str(run),
                 *TINY]) == 0  # fmt: skip
    result = json.loads((run / "result.json").read_text())
    assert result["config"]["num_classes"] == 2
    # UCR 2018's variable-length layout: NaN after each series' end -> pointed to npz lengths
    (folder / "Toy_TRAIN.txt").write_text("1,0.5,0.2,NaN\n2,0.1,0.3,0.4\n")
    assert main(["train", "--preset", "lipschitz", "--data", "ucr", "--data-path", str(folder),
                 "--out", str(tmp_path / "r2"), *TINY]) == 2  # fmt: skip
    assert "lengths_train" in capsys.readouterr().err


def test_multivariate_ts_files_of_any_length_train_and_evaluate(tmp_path, capsys):
    """.ts files as the UEA/UCR archive writes them (12 features, lengths 4..14, labels 1..3)
    through --data ts: the reported accuracy is the saved model's on the test file, read with
    its lengths and standardised as stored."""
    rng = np.random.default_rng(2)
    for part, n in (("TRAIN", 36), ("TEST", 12)):
        lines = ["@problemName toy", "@univariate false", "@dimensions 3", "@equalLength false",
                 "@classLabel true 1 2 3", "@data"]  # fmt: skip
        for i in range(n):
            label = 1 + i % 3
            x = 100.0 * label + rng.normal(size=(rng.integers(4, 15), 3))
            lines.append(":".join(",".join(f"{v:.4f}" for v in x[:, d]) for d in range(3))
                         + f":{label}")  # fmt: skip
        (tmp_path / f"toy_{part}.ts").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--preset", "nrnn_ito", "--data", "ts", "--data-path",
                 str(tmp_path / "toy_TRAIN.ts"), "--epochs", "1", "--out", str(run),
                 *TINY]) == 0  # fmt: skip
    result = json.loads((run / "result.json").read_text())
    assert result["config"]["input_size"] == 3 and result["config"]["num_classes"] == 3
    cfg, params, scaling = noisy_dyn.load_model(run / "model.npz", with_scaling=True)
    test = noisy_dyn.data.load_ts(tmp_path).test
    assert test.lengths is not None and test.features == 3
    assert result["test_accuracy"] == pytest.approx(
        noisy_dyn.accuracy(params, scaling.apply(test), cfg), abs=1e-12
    )


def test_robustness_refuses_data_of_another_kind(tmp_path, capsys):
    data = _plain_npz(tmp_path / "plain.npz")
    run = tmp_path / "run"
    assert main(["train", "--preset", "lipschitz", "--data", "npz", "--data-path", str(data),
                 "--epochs", "1", "--out", str(run), *TINY]) == 0  # fmt: skip
    capsys.readouterr()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "three.npz", x_train=rng.normal(size=(20, 5, 3)).astype(np.float32),
             y_train=np.arange(20) % 2, x_test=rng.normal(size=(6, 5, 3)).astype(np.float32),
             y_test=np.arange(6) % 2)  # fmt: skip
    three = str(tmp_path / "three.npz")
    assert main(["robustness", "--checkpoints", str(run), "--data", "npz", "--data-path", three,
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "takes sequences of 1 feature(s) per step" in err and "(6, 5, 3)" in err
    assert main(["robustness", "--checkpoints", str(run), "--data", "digits",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2  # fmt: skip
    assert "predicts 2 classes" in capsys.readouterr().err
    # a study pointed at the train run's folder: refused field by field, no truncated dict
    assert main(["study", "--preset", "lipschitz", "--data", "npz", "--data-path", str(data),
                 "--seeds", "2", "--sigma", "0.1", "--epochs", "1", "--out", str(run),
                 *TINY]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "..." not in err, err


# --------------------------------------------------------------------------------------------
# basis_ode: evaluation checked against the model; compress on the run's own data


def _image_npz(path, *, side, channels, classes, n_train=48, n_test=12, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = rng.normal(size=(n, side, side, channels)) + y[:, None, None, None]
        arrays |= {f"x_{part}": x.astype(np.float32), f"y_{part}": y}
    np.savez(path, **arrays)
    return path


def test_basis_ode_checks_data_against_the_model(tmp_path, capsys):
    import basis_ode as bo

    data = _image_npz(tmp_path / "img.npz", side=16, channels=1, classes=6)
    run = tmp_path / "run"
    argv = ["train", "--data", "npz", "--data-path", str(data), "--epochs", "1", "--K", "1",
            "--width", "4", "--batch-size", "16", "--out", str(run), "--quiet"]  # fmt: skip
    assert isinstance(bo_main(argv), dict)
    model, variables = bo.load_model(run / "model.npz")
    xs, ys = bo.data.load_npz(data).test
    assert 0.0 <= bo.accuracy(model, variables, xs, ys) <= 1.0
    with pytest.raises(ValueError, match=r"labels must lie in \[0, num_classes=6\)"):
        bo.accuracy(model, variables, xs, ys + 10)
    with pytest.raises(ValueError, match="takes images with 1 channel"):
        bo.accuracy(model, variables, np.repeat(xs, 3, axis=-1), ys)
    capsys.readouterr()
    # compress: the run's data by default (no --data-path asked again), others refused
    comp = ["compress", "--run", str(run), "--Ks", "1", "--n-steps-list", "1", "--quiet"]
    assert isinstance(bo_main([*comp[:-1], "--out", str(tmp_path / "c")]), list)
    assert "\r" not in capsys.readouterr().err  # stderr is not a terminal: no bar
    assert bo_main([*comp, "--data", "digits"]) == 2
    assert "images of shape 16x16x1; --data digits gives inputs of shape 8x8x1" in (
        capsys.readouterr().err
    )
    seq = dict(np.load(_plain_npz(tmp_path / "seq.npz", T=24, classes=6)))
    np.savez(
        tmp_path / "seq.npz",
        **{k: v[..., None] if k.startswith("x") else v for k, v in seq.items()},
    )  # (N, 24, 1): 24x1 "images"
    assert bo_main([*comp, "--data-path", str(tmp_path / "seq.npz")]) == 2
    assert "gives inputs of shape 24x1x1" in capsys.readouterr().err
    assert bo_main([*comp[:3], "--Ks", "0"]) == 2
    assert "--Ks must be integers >= 1" in capsys.readouterr().err


def test_basis_ode_refine_and_drop_epochs_must_happen(tmp_path, capsys):
    base = ["train", "--epochs", "2", "--limit", "32", "--out", str(tmp_path / "r"), "--quiet"]
    assert bo_main([*base, "--refine-at", "5"]) == 2
    assert "refine_at (--refine-at) epochs [5] lie outside [0, epochs=2)" in (
        capsys.readouterr().err
    )
    assert bo_main([*base, "--lr-drops", "0"]) == 2
    assert "lr_drops (--lr-drops) epochs [0]" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# errors as one clear line; apply on NaN; piped logs


def test_clear_errors_for_bad_python_arguments():
    cfg = noisy_dyn.preset("lipschitz", input_size=1, num_classes=2, hidden_size=4)
    x = np.zeros((8, 5, 1), np.float32)
    y = np.arange(8) % 2
    with (
        library_checks_only(),
        pytest.raises(ValueError, match="must be a finite number > 0, got 'abc'"),
    ):
        noisy_dyn.fit(cfg, (x, y), epochs=1, batch_size=4, learning_rate="abc", progress=False)
    with pytest.raises(TypeError, match="sigma_add must be a real number, got '0.1'"):
        cfg.replace(sigma_add="0.1")
    params = noisy_dyn.init_params(__import__("jax").random.key(0), cfg)
    bad = x.copy()
    bad[0, 2, 0] = np.nan
    with pytest.raises(ValueError, match="xs holds 1 NaN"):
        noisy_dyn.apply(params, bad, cfg)
    traced = __import__("jax").jit(lambda v: noisy_dyn.apply(params, v, cfg))(bad)
    assert np.isnan(np.asarray(traced)[0]).all() and np.isfinite(np.asarray(traced)[1:]).all()


def test_cli_small_fixes(tmp_path, capsys):
    assert main(["train", "--preset", "lipschitz", "--hidden", "0"]) == 2
    assert "--hidden must be >= 1" in capsys.readouterr().err
    from noisy_dyn._study import study_markdown

    row = {"sigma_add": 0.1, "sigma_mult": 0.1, "perturbation": "clean", "level": 0.0,
           "mean": 0.9, "ci_low": 0.9, "ci_high": 0.9, "n": 1, "diff_mean": 0.05,
           "diff_ci_low": 0.05, "diff_ci_high": 0.05, "p_holm": 1.0}  # fmt: skip
    for n in (1, 2):  # one or two seeds: no interval, so never bold
        table = study_markdown([row | {"n": n}], verdicts=False).split("\n\n")[0]
        assert "**" not in table and f"({n} seed" in table
    table = study_markdown([row | {"n": 3}], verdicts=False).split("\n\n")[0]
    assert "**+5.0 [+5.0, +5.0]†**" in table  # three seeds: a marked interval


def test_piped_logs_hold_no_carriage_return(tmp_path):
    data = _plain_npz(tmp_path / "plain.npz", n_train=24, n_test=8, T=6)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TRAINKIT_HUGE_PAGES": "0"}
    run = tmp_path / "run"
    script = (
        "import sys; from noisy_dyn.__main__ import main as m; "
        "a = ['--data', 'npz', '--data-path', sys.argv[1]]; "
        "assert m(['train', '--preset', 'lipschitz', *a, '--epochs', '1', '--hidden', '4', "
        "'--batch-size', '8', '--out', sys.argv[2]]) == 0; "
        "assert m(['robustness', '--checkpoints', sys.argv[2], *a, '--kinds', 'gaussian', "
        "'--out', sys.argv[2] + '/rob']) == 0"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(data), str(run)],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1 step" in proc.stderr  # the progress lines are there, as lines
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
