"""The demo's headline and trade-off figure, on study rows whose answer is known by construction."""

import pytest

from noisy_dyn._tradeoff import form_headline, headline, plot_tradeoff, robustness_gain


def _row(level, kind, value, diff=None, lo=None, hi=None, p_holm=None, n=16):
    row = {"sigma_add": level[0], "sigma_mult": level[1], "perturbation": kind, "level": value,
           "mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": n}  # fmt: skip
    if diff is not None:
        row |= {"diff_mean": diff, "diff_ci_low": lo, "diff_ci_high": hi, "p_holm": p_holm}
    return row


def _study():
    twin, small, large = (0.0, 0.0), (0.03, 0.02), (0.06, 0.04)
    return [
        _row(twin, "clean", 0.0), _row(twin, "gaussian", 0.3), _row(twin, "fgsm", 0.03),
        _row(small, "clean", 0.0, 0.01, -0.01, 0.03, 1.0),
        _row(small, "gaussian", 0.3, 0.06, 0.035, 0.081, 0.03),  # survives Holm
        _row(small, "fgsm", 0.03, 0.02, 0.005, 0.04, 0.2),  # interval only
        _row(large, "clean", 0.0, -0.05, -0.08, -0.02, 0.01),
        _row(large, "gaussian", 0.3, 0.03, -0.01, 0.07, 1.0),
        _row(large, "fgsm", 0.03, -0.01, -0.04, 0.02, 1.0),
    ]  # fmt: skip


def test_headline_picks_the_level_of_largest_mean_gain_and_states_the_evidence():
    rows = _study()
    assert robustness_gain(rows, (0.03, 0.02)) == pytest.approx(4.0)  # (6 + 2) / 2 points
    assert robustness_gain(rows, (0.06, 0.04)) == pytest.approx(1.0)
    text = form_headline("NRNN", rows)
    assert "best level sigma_add=0.03, sigma_mult=0.02" in text and "(16 seeds)" in text
    assert "clean +1.0 [-1.0, +3.0] points" in text
    assert "largest: gaussian 0.3 +6.0 [+3.5, +8.1]" in text
    assert "1 of 2 perturbed gains survive Holm's correction" in text
    assert "excludes zero in 2 up and 0 down" in text


def test_headline_says_so_when_no_interval_excludes_zero(tmp_path):
    rows = [r for r in _study() if (r["sigma_add"], r["sigma_mult"]) != (0.03, 0.02)]
    rows = [r | {"diff_ci_high": 0.05} if r.get("diff_mean") is not None else r for r in rows]
    text = headline({"A": rows, "B": rows[:3]})
    first, second = text.splitlines()
    assert "every one of the 2 intervals spans zero" in first
    assert second == "B: no noisy level was trained."
    path = plot_tradeoff({"A": rows, "C": _study()}, tmp_path / "t.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plateau_measures_the_gain_of_the_last_quarter_before_the_decay():
    from noisy_dyn.experiments import plateau

    # 20 epochs, decay after 18: the last quarter before it is epochs 14-18 (window 5).
    rising = [[0.5 + 0.01 * e, 0.5 + 0.01 * e] for e in range(1, 21)]
    got = plateau({"val_accuracy": rising})
    assert got["late_gain"] == pytest.approx(0.18 - 0.13) and not got["plateaued"]
    flat = [[min(0.8, 0.5 + 0.05 * e)] * 3 for e in range(1, 21)]  # reaches 0.8 at epoch 6
    assert plateau({"val_accuracy": flat}) | {"mean_val_accuracy": None} == {
        "mean_val_accuracy": None,
        "late_gain": 0.0,
        "plateaued": True,
    }
    assert plateau({"val_accuracy": []}) == {}
