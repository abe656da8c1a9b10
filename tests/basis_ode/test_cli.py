"""Tests of ``python -m basis_ode``: the demo path at tiny size, the train -> compress path, the
tagger command, and the documented full-size commands.

Independent facts: PNG signatures of the plots; the parameter count removed by compressing the
ODE blocks from K to K/2, against the closed form (K/2) * sum_c (18 c^2 + 4 c) of two bias-free
3x3 convolutions and two BatchNorms per stage width c (SPEC 2.7 at width w: c = w, 2w, 4w); the
table's accuracy of the trained model against an evaluation computed here.
"""

import json

import numpy as np
import pytest

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
    # the table's accuracy of the trained model equals an evaluation done here
    xs, ys = res["splits"].test
    expected = accuracy(res["model"], res["variables"], xs, ys, n_steps=2)
    assert trained[0]["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert 0.0 <= halved[0]["accuracy"] <= 1.0 and halved[0]["latency_s"] > 0


def test_train_then_compress_commands(tmp_path):
    # the same model and recipe as the demo's first stage, so its compiled step is reused
    run = tmp_path / "run"
    result = main(
        ["train", "--data", "digits", "--limit", "192", "--eval-limit", "64", "--epochs", "1",
         "--width", "2", "--K", "1", "--n-steps", "1", "--batch-size", "64", "--lr-drops", "1",
         "--out", str(run), "--no-progress"]
    )  # fmt: skip
    assert (run / "final.msgpack").exists() and (run / "log.jsonl").exists()
    assert result["model"]["n_basis"] == 1 and 0.0 <= result["test_accuracy"] <= 1.0
    assert json.loads((run / "result.json").read_text())["test_accuracy"] == result["test_accuracy"]
    rows = main(
        ["compress", "--run", str(run), "--Ks", "2", "--n-steps-list", "1", "--limit", "64",
         "--out", str(tmp_path / "c")]
    )  # fmt: skip
    by_k = {(r["K"], r["compressed"]): r for r in rows}
    assert by_k[(1, False)]["accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-9)
    # K = 1 -> 2 is an exact re-expansion (the function is in the target space): same outputs
    assert by_k[(2, True)]["accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-9)
    assert by_k[(2, True)]["params"] - by_k[(1, False)]["params"] == _unit_params(2)
    assert (tmp_path / "c" / "sweep.json").exists()


def test_tag_command_on_the_synthetic_task(tmp_path):
    result = main(
        ["tag", "--sentences", "320", "--K", "2", "--width", "8", "--epochs", "1",
         "--batch-size", "32", "--warmup", "5", "--compress-to", "1", "--out", str(tmp_path),
         "--no-progress"]
    )  # fmt: skip
    ks = [r["K"] for r in result["rows"]]
    assert ks == [2, 1]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in result["rows"])
    assert np.isfinite(result["val_accuracy"]).all()


def test_help_documents_full_size_gpu_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--data cifar10" in text and "--refine-at 20,40,70,90" in text
    assert "--conllu" in text and "compress --run" in text
    with pytest.raises(SystemExit):
        main(["train", "--data", "imagenet"])
