"""The perturbations, attacks, robustness table and study reproduce the golden outputs recorded
before perturbations, norms and study rows became objects (``golden/make_perturbations_golden.py``,
float64): the same random draws (each level's key from ``perturbation_key``), the same attacks
under both norms, the same accuracies, rows, Markdown, CSV and robustness JSON.

Arrays are compared to ``rtol = 1e-12``; the study's rows and the robustness JSON number by
number to the same tolerance and text fields exactly; the Markdown table and the CSV exactly.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from .golden import make_perturbations_golden as mg

GOLDEN = np.load(Path(__file__).parent / "golden" / "perturbations.npz")
RTOL = 1e-12


def _same(a, b, where: str) -> None:
    """Numbers to RTOL, NaN equal to NaN, everything else exactly; recursive on JSON values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-14, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _check(out: dict) -> None:
    assert out, "nothing was computed"
    for k, v in out.items():
        assert k in GOLDEN, f"{k} has no golden value"
        g = GOLDEN[k]
        if g.dtype.kind == "U":
            text = str(g)
            if k.startswith(("rows/", "robustness", "verdicts/")):
                _same(json.loads(text), json.loads(str(v)), k)
            else:
                assert str(v) == text, k
        else:
            np.testing.assert_allclose(np.asarray(v), g, rtol=RTOL, atol=1e-14, err_msg=k)


def test_perturbations_and_attacks_reproduce_golden():
    out = mg.attack_outputs()
    assert sorted(out) == sorted(k for k in GOLDEN if k.startswith(("perturb", "fgsm", "pgd",
                                                                    "deepfool")))  # fmt: skip
    _check(out)


@pytest.mark.slow
def test_study_reproduces_golden():
    out = mg.study_outputs()
    expected = [k for k in GOLDEN if k.startswith(("accuracy/", "rows/", "markdown/", "csv/",
                                                   "verdicts/"))]  # fmt: skip
    assert sorted(out) == sorted(expected)
    _check(out)


@pytest.mark.slow
def test_robustness_table_reproduces_golden():
    _check(mg.robustness_outputs())
