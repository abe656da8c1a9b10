"""Tests of ``python -m basis_ode``: the demo path at tiny size, the train -> compress path, the
tagger command, and the documented full-size commands.

Independent facts: PNG signatures of the plots; the parameter count removed by compressing the
ODE blocks from K to K/2, against the closed form (K/2) * sum_c (18 c^2 + 4 c) of two bias-free
3x3 convolutions and two BatchNorms per stage width c (the ConvODENet of Queiruga et al. 2021,
Sec. 5, at width w: c = w, 2w, 4w); the table's accuracy of the trained model against an
evaluation computed here; the exit status and the one error line of user errors.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import basis_ode
from basis_ode import accuracy
from basis_ode.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"


def _unit_params(width: int) -> int:
    return sum(18 * c * c + 4 * c for c in (width, 2 * width, 4 * width))


def test_demo_writes_table_and_plots(tmp_path):
    out = tmp_path / "demo"
    res = main(
        ["demo", "--out", str(out), "--epochs", "2", "--width", "2", "--limit", "192",
         "--n-steps-list", "2", "--no-progress"]
    )  # fmt: skip
    for name in ("accuracy_vs_K.png", "accuracy_vs_n_steps.png", "latency.png", "training.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    assert "| " in (out / "sweep.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_K"] == 2 and summary["refine_at"] == [1]
    history = json.loads((out / "history.json").read_text())
    assert history["K"] == [1, 2] and history["train_loss"][1] < history["train_loss"][0]
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    trained = [r for r in rows if not r["compressed"]]
    halved = [r for r in rows if r["compressed"] and r["K"] == 1]
    assert len(trained) == 1 and len(halved) == 1
    # compressing K = 2 -> 1 removes exactly one coefficient set of every ODE unit
    assert trained[0]["params"] - halved[0]["params"] == _unit_params(2)
    # the table is scored on the validation split (K and steps are chosen there) and says so;
    # its accuracy of the trained model equals an evaluation of the validation split done here
    assert json.loads((out / "sweep.json").read_text())["meta"]["split"] == "validation"
    xs, ys = res["splits"].validation
    expected = accuracy(res["model"], res["variables"], xs, ys, n_steps=2)
    assert trained[0]["accuracy"] == pytest.approx(expected, abs=1e-9)
    # the test split gives one number, the trained model's, in summary.json
    xs, ys = res["splits"].test
    assert summary["test_accuracy"] == pytest.approx(
        accuracy(res["model"], res["variables"], xs, ys), abs=1e-9
    )
    assert 0.0 <= halved[0]["accuracy"] <= 1.0 and halved[0]["latency_s"] > 0


def test_train_then_compress_commands(tmp_path):
    # the same model and recipe as the demo's first stage, so its compiled step is reused
    run = tmp_path / "run"
    result = main(
        ["train", "--data", "digits", "--limit", "192", "--eval-limit", "64", "--epochs", "1",
         "--width", "2", "--K", "1", "--n-steps", "1", "--batch-size", "64", "--lr-drops", "1",
         "--out", str(run), "--quiet"]
    )  # fmt: skip
    assert (run / "log.jsonl").exists() and (run / "history.json").exists()
    assert result["K"] == 1 and result["model"]["basis"] == "piecewise_constant"
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert json.loads((run / "result.json").read_text())["test_accuracy"] == result["test_accuracy"]
    model, variables = basis_ode.load_model(run / "model.npz")
    assert model.basis == basis_ode.PiecewiseConstant(1) and model.method is basis_ode.EULER
    xs, ys = basis_ode.data.load_digits(seed=0).test
    expected = accuracy(model, variables, xs[:64], ys[:64])
    assert result["test_accuracy"] == pytest.approx(expected, abs=1e-12)
    rows = main(
        ["compress", "--run", str(run), "--Ks", "2", "--n-steps-list", "1", "--limit", "64",
         "--out", str(tmp_path / "c")]
    )  # fmt: skip
    by_k = {(r["K"], r["compressed"]): r for r in rows}
    # scored on the validation split by default (K and steps are chosen there), and it says so
    vx, vy = basis_ode.data.load_digits(seed=0).validation
    val = accuracy(model, variables, vx[:64], vy[:64])
    assert by_k[(1, False)]["accuracy"] == pytest.approx(val, abs=1e-9)
    # K = 1 -> 2 is an exact re-expansion (the function is in the target space): same outputs
    assert by_k[(2, True)]["accuracy"] == pytest.approx(val, abs=1e-9)
    assert by_k[(2, True)]["params"] - by_k[(1, False)]["params"] == _unit_params(2)
    sweep = json.loads((tmp_path / "c" / "sweep.json").read_text())
    assert sweep["meta"]["split"] == "validation"
    assert "of the validation split" in (tmp_path / "c" / "sweep.md").read_text()
    rows = main(["compress", "--run", str(run), "--Ks", "2", "--n-steps-list", "1", "--limit",
                 "64", "--split", "test", "--out", str(tmp_path / "t")])  # fmt: skip
    assert rows[0]["accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-9)


def test_tag_command_on_the_synthetic_task(tmp_path):
    result = main(
        ["tag", "--sentences", "320", "--K", "2", "--width", "8", "--epochs", "1",
         "--batch-size", "32", "--warmup", "5", "--compress-to", "1", "--out", str(tmp_path),
         "--quiet"]
    )  # fmt: skip
    ks = [r["K"] for r in result["rows"]]
    assert ks == [2, 1]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in result["rows"])
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in result["rows"])
    assert (result["K"], result["width"], result["refine_at"], result["tag_column"]) == (
        2,
        8,
        [],
        None,
    )
    assert np.isfinite(result["val_accuracy"]).all()
    model, _ = basis_ode.load_model(tmp_path / "model.npz")
    assert type(model) is basis_ode.ODETransformerTagger and model.width == 8


def test_tag_command_reads_upos_when_xpos_is_empty_and_records_the_model(tmp_path, capsys):
    """On CoNLL-U files whose XPOS is '_' throughout, `tag` trains on UPOS (it used to train on
    the one tag '_' and report 100 %), says so, and result.json records K, width and the
    refinement schedule; forcing XPOS is refused in one line."""
    from .test_data import CONLLU, _upos_only

    paths = [tmp_path / f"{p}.conllu" for p in ("train", "dev", "test")]
    for p in paths:
        p.write_text(_upos_only(CONLLU * 6))
    out = tmp_path / "run"
    result = main(["tag", "--conllu", *map(str, paths), "--K", "1", "--n-steps", "1",
                   "--refine-at", "1", "--width", "8", "--epochs", "2", "--batch-size", "4",
                   "--warmup", "2", "--compress-to", "1", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "tag column upos: the xpos column of" in printed and "5 tags" in printed
    stored = json.loads((out / "result.json").read_text())
    assert stored == result
    assert (stored["tag_column"], stored["num_tags"]) == ("upos", 5)
    assert (stored["K_start"], stored["refine_at"], stored["width"]) == (1, [1], 8)
    assert stored["K"] == stored["rows"][0]["K"] in (1, 2)  # the best epoch's K: 1, or 2 after
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in stored["rows"])
    assert main(["tag", "--conllu", *map(str, paths), "--tag-column", "xpos", "--epochs", "1",
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "has the tag '_'" in err and "--tag-column upos" in err and "\n" not in err


def test_help_documents_full_size_gpu_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--data cifar10" in text and "--refine-at 20,40,70,90" in text
    assert "--conllu" in text and "compress --run" in text
    with pytest.raises(SystemExit):
        main(["train", "--data", "imagenet"])
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("number of epochs (default: 10)", "(default: piecewise_constant)",
                    "runs/basis_ode/convodenet_<data>", "--no-resume", "--quiet"):  # fmt: skip
        assert default in text


def _error(capsys) -> str:
    """The one ``error:`` line on stderr (data warnings, ``warning: ...``, may precede it)."""
    err = [e for e in capsys.readouterr().err.strip().splitlines() if not e.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _images_npz(path, rng):
    """Digit-shaped images (8 x 8 x 1, 10 classes), so the train step compiled for the tests
    above is reused."""
    arrays = {}
    for part, n in (("train", 80), ("test", 20)):
        y = np.arange(n) % 10
        x = (y[:, None, None, None] + 0.1 * rng.normal(size=(n, 8, 8, 1))).astype(np.float32)
        arrays.update({f"x_{part}": x, f"y_{part}": y})
    np.savez(path, **arrays)
    return path


def test_npz_images_train_resume_and_mismatch(tmp_path, capsys):
    data = _images_npz(tmp_path / "mine.npz", np.random.default_rng(0))
    out = tmp_path / "run"
    argv = ["train", "--data", "npz", "--data-path", str(data), "--epochs", "1", "--width", "2",
            "--K", "1", "--n-steps", "1", "--batch-size", "64", "--lr-drops", "1", "--out",
            str(out), "--quiet"]  # fmt: skip
    result = main(argv)
    assert result["data"] == "npz" and result["model"]["num_classes"] == 10
    assert "outputs written to" in capsys.readouterr().out
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert main(argv)["test_accuracy"] == result["test_accuracy"]
    assert "unchanged (the run was already complete)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == stamps
    argv[argv.index("--width") + 1] = "3"
    assert main(argv) == 2
    line = _error(capsys)
    assert "width" in line and "'2'" in line and "'3'" in line and "--no-resume" in line
    channels_first = tmp_path / "cf.npz"
    with np.load(data) as z:
        np.savez(channels_first, **{k: np.moveaxis(v, 3, 1) if v.ndim == 4 else v
                                    for k, v in z.items()})  # fmt: skip
    cf_argv = [
        "train",
        "--data",
        "npz",
        "--data-path",
        str(channels_first),
        "--out",
        str(tmp_path / "cf"),
    ]
    assert main(cf_argv) == 2
    assert "cf.npz: x_train of shape (80, 1, 8, 8) looks channels-first" in _error(capsys)
    assert main(["train", "--data", "cifar10", "--out", str(tmp_path / "c")]) == 2
    assert "--data cifar10 needs --data-path" in _error(capsys)
    assert main(["compress", "--run", str(tmp_path / "nothing")]) == 2
    assert "no model file" in _error(capsys)


def test_user_errors_exit_2_without_traceback(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "basis_ode", "train", "--data", "npz", "--data-path",
         str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "bad.npz" in proc.stderr


def test_names_are_parsed_at_the_edge(tmp_path, capsys):
    """Basis and scheme names become objects on the command line; a bad one exits 2 with a
    line listing the valid names, before anything is trained."""
    base = ["train", "--limit", "64", "--epochs", "1", "--out", str(tmp_path / "o")]
    assert main([*base, "--basis", "splines"]) == 2
    assert "unknown basis 'splines'; choose one of chebyshev, fourier, hat" in _error(capsys)
    assert main([*base, "--method", "rk45"]) == 2
    assert "unknown --method 'rk45'; choose one of euler, midpoint, rk4, rk4_38" in _error(capsys)
    assert main([*base, "--basis", "piecewise_linear", "--K", "3"]) == 2
    line = _error(capsys)
    assert "--basis piecewise_linear --K 3" in line and "even" in line
    assert not (tmp_path / "o").exists()
