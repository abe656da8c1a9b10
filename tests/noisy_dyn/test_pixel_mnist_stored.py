"""The stored pixel-MNIST results at the paper's size, ordered and permuted
(``docs/results/noisy_dyn/{mnist,pmnist}784_paper``), recomputed from the files a reader has:
every accuracy, paired difference, interval and McNemar p-value of ``robustness_<which>.json``
from the per-example correctness bits beside it (float64 NumPy and an exact binomial sum, not the
script's SciPy call), and the stored model files' clean test accuracy against the training
command's own report."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "noisy_dyn"
TASKS = ("mnist", "pmnist")
WHICH = ("last", "best")


def _mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: twice the smaller binomial tail of Binomial(b + c, 1/2),
    capped at 1 (the discordant pairs split evenly under the null)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("which", WHICH)
def test_every_stored_robustness_number_is_recomputed_from_the_per_example_bits(task, which):
    folder = RESULTS / f"{task}784_paper"
    meta = json.loads((folder / f"robustness_{which}.json").read_text())
    bits = np.load(folder / f"per_example_{which}.npz")
    n = int(bits["examples"])
    assert n == meta["examples"] == 10_000  # the whole test set
    assert len(meta["rows"]) == 16  # clean + 15 perturbation levels
    for r in meta["rows"]:
        b = np.unpackbits(bits[f"{r['perturbation']}_{r['level']:g}"], axis=1, count=n)
        noisy, det = b.astype(np.float64)
        d = noisy - det
        half = 1.96 * np.std(d, ddof=1) / math.sqrt(n)
        assert r["acc_nrnn"] == pytest.approx(noisy.mean(), abs=1e-12)
        assert r["acc_deterministic"] == pytest.approx(det.mean(), abs=1e-12)
        assert (r["diff"], r["diff_low"], r["diff_high"]) == pytest.approx(
            (d.mean(), d.mean() - half, d.mean() + half), abs=1e-12
        )
        only_noisy, only_det = int((d > 0).sum()), int((d < 0).sum())
        assert (r["only_nrnn"], r["only_deterministic"]) == (only_noisy, only_det)
        assert r["p_mcnemar"] == pytest.approx(_mcnemar_exact(only_noisy, only_det), rel=1e-9)


@pytest.mark.parametrize("task", TASKS)
def test_the_best_deterministic_model_scores_what_its_training_command_reported(task):
    """The best-validation model of the deterministic twin, read from its stored model file
    and scored by robustness.py, has the clean test accuracy that the training command wrote
    into result_deterministic.json at the end of training (an independent code path: the
    library's own evaluation at the end of ``noisy_dyn train``)."""
    folder = RESULTS / f"{task}784_paper"
    reported = json.loads((folder / "result_deterministic.json").read_text())
    rows = json.loads((folder / "robustness_best.json").read_text())["rows"]
    clean = next(r for r in rows if r["perturbation"] == "clean")
    assert clean["acc_deterministic"] == pytest.approx(reported["test_accuracy"], abs=0.5e-4)
