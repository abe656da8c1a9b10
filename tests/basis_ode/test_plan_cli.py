"""``python -m basis_ode plan``: the one-line choice, the files, and one-line budget errors.

Independent facts: the saved chosen model's validation accuracy recomputed here with
``basis_ode.accuracy`` equals the plan's; the model bytes the plan reports equal the bytes of the
saved file's variables counted here with NumPy; PNG signature of the plot; exit status 2 and
one ``error:`` line naming the fix for bad budgets, and for a budget below the cheapest point
the cheapest point's cost read back from ``plan.json``.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import basis_ode
from basis_ode.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
SPACE = ["--bases", "piecewise_constant", "--Ks", "1,2", "--n-steps-list", "1,2", "--methods",
         "euler", "--batch-size", "64", "--repeats", "1", "--certificate-examples", "64",
         "--limit", "128", "--tolerance", "0.5", "--quiet"]  # fmt: skip
# The 2-epoch model below is no converged ODE at the default tolerance (its logits move 11-20 %
# from n to 4n steps): these tests are about the command, so they certify at 50 %.


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "run"
    main(["train", "--data", "digits", "--limit", "192", "--eval-limit", "64", "--epochs", "2",
          "--width", "2", "--K", "1", "--n-steps", "1", "--refine-at", "1", "--batch-size", "64",
          "--lr-drops", "1", "--out", str(out), "--quiet"])  # fmt: skip
    return out


def test_train_with_refinement_keeps_the_refined_weights(run):
    """With --refine-at the run's model is the last epoch's (K doubled once: 1 -> 2), as its
    history's last K says, whatever epoch validated best."""
    result = json.loads((run / "result.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert result["K"] == history["K"][-1] == 2
    model, variables = basis_ode.load_model(run / "model.npz")
    assert basis_ode.basis_of(variables).K == 2 and model.n_steps == 2


def _error(capsys) -> str:
    err = [e for e in capsys.readouterr().err.strip().splitlines() if not e.startswith("warning:")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_plan_prints_the_choice_and_writes_its_files(run, tmp_path, capsys):
    out = tmp_path / "plan"
    res = main(["plan", "--checkpoints", str(run), "--latency-ms", "1e6", "--bytes", "1000000",
                "--out", str(out), *SPACE])  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chosen: ") and "model.npz" in lines[0]
    doc = json.loads((out / "plan.json").read_text())
    choice = doc["choices"][""]["choice"]
    assert choice["label"] == res["choice"].config.label and choice["certificate"]["converged"]
    assert (out / "frontier.png").read_bytes()[:8] == PNG
    plan_md = (out / "plan.md").read_text()  # sections, so that the long table has a heading
    assert "| configuration |" in plan_md
    assert plan_md.index("## The choice for each budget") < plan_md.index("| budget |")
    assert plan_md.index("## Every measured configuration") < plan_md.index("| configuration |")
    model, variables = basis_ode.load_model(out / "model.npz")
    xs, ys = basis_ode.data.load_digits(seed=0).validation
    acc = basis_ode.accuracy(model, variables, xs[:128], ys[:128])
    assert choice["accuracy"] == pytest.approx(acc, abs=1e-12)
    with np.load(out / "model.npz") as f:  # every array of the file is a variable
        stored = sum(f[k].nbytes for k in f.files if f[k].dtype != np.uint8)
    assert choice["model_bytes"] == stored
    if choice["config"]["scheme"] == "euler":
        assert (out / "resnet" / "model.py").exists()


def test_bad_budgets_are_one_line_errors(run, tmp_path, capsys):
    assert main(["plan", "--run", str(run), *SPACE]) == 2
    assert "give a budget" in _error(capsys)
    assert main(["plan", "--run", str(run), "--latency-ms", "0", *SPACE]) == 2
    assert "must be positive" in _error(capsys)
    out = tmp_path / "tight"
    assert main(["plan", "--run", str(run), "--bytes", "100", "--out", str(out), *SPACE]) == 2
    line = _error(capsys)
    points = json.loads((out / "plan.json").read_text())["frontier"]["points"]
    cheapest = min(p["model_bytes"] for p in points if p["certificate"]["converged"])
    assert "cheapest" in line and f"--bytes {cheapest}" in line
