"""The study statistics against independent facts: Monte Carlo coverage, scipy, hand examples."""

import itertools

import numpy as np
import pytest
import scipy.stats

from tests._shape_checks import library_checks_only
from trainkit import bootstrap_mean, holm, paired_difference, resample_counts, sign_flip_p_value


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    # 2000 independent data sets of 30 normal values; the percentile bootstrap of a mean is
    # known to undercover slightly at this size (about 0.93-0.94), never by much.
    rng = np.random.default_rng(1)
    data = rng.normal(loc=3.0, scale=2.0, size=(2000, 30))
    mean, low, high = bootstrap_mean(data, n_boot=2000, seed=7)
    np.testing.assert_allclose(mean, data.mean(axis=1))
    coverage = np.mean((low <= 3.0) & (3.0 <= high))
    assert 0.92 <= coverage <= 0.97, coverage
    # ... and its width is close to the normal-theory width 2 * 1.96 * s / sqrt(n).
    width = 2 * 1.96 * data.std(axis=1, ddof=1) / np.sqrt(30)
    assert abs(np.median((high - low) / width) - 1.0) < 0.05


def test_bootstrap_quantiles_match_an_explicit_resampling_loop():
    values = np.array([0.61, 0.70, 0.64, 0.58, 0.73, 0.66, 0.69])
    counts = resample_counts(7, 500, seed=3)
    idx = np.random.default_rng(3).integers(0, 7, size=(500, 7))  # the documented draw
    np.testing.assert_array_equal(counts.sum(axis=1), 7)
    means = np.array([values[row].mean() for row in idx])
    expected = np.quantile(means, [0.025, 0.975])
    result = bootstrap_mean(values, n_boot=500, seed=3)
    np.testing.assert_allclose([result.low, result.high], expected, rtol=1e-12)
    one = bootstrap_mean([0.5])
    assert one.mean == one.low == one.high == 0.5


def test_paired_difference_is_the_difference_of_means_with_a_paired_interval():
    rng = np.random.default_rng(2)
    seed_effect = rng.normal(scale=5.0, size=40)  # shared by both members of a pair
    a = seed_effect + 1.0 + rng.normal(scale=0.5, size=40)
    b = seed_effect + rng.normal(scale=0.5, size=40)
    diff = paired_difference(a, b, n_boot=4000)
    assert diff.mean == pytest.approx(a.mean() - b.mean(), rel=1e-12)
    idx = np.random.default_rng(0).integers(0, 40, size=(4000, 40))
    reference = np.quantile(a[idx].mean(axis=1) - b[idx].mean(axis=1), [0.025, 0.975])
    np.testing.assert_allclose([diff.low, diff.high], reference, rtol=1e-10)
    assert diff.low < 1.0 < diff.high
    # Pairing removes the seed effect: far narrower than the interval of unpaired means.
    wa, wb = (bootstrap_mean(x, n_boot=4000) for x in (a, b))
    assert (diff.high - diff.low) < 0.3 * ((wa.high - wa.low) + (wb.high - wb.low))
    with library_checks_only(), pytest.raises(ValueError, match="paired seed by seed"):
        paired_difference(a, b[:-1])


def test_exact_sign_flip_p_value_matches_scipy_and_the_closed_form():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.3, 1.0, size=10), rng.normal(0.0, 1.0, size=10)
    ref = scipy.stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    assert sign_flip_p_value(a, b) == pytest.approx(ref.pvalue, rel=1e-12)
    # All n differences positive and distinct: only the all-plus and all-minus patterns reach
    # the observed |mean|, so p = 2 / 2**n.
    assert sign_flip_p_value(np.arange(1.0, 9.0)) == pytest.approx(2 / 2**8)
    assert sign_flip_p_value(np.zeros(5)) == 1.0  # ties count as hits


def test_monte_carlo_sign_flip_p_value_is_uniform_under_the_null():
    # 64 seeds (too many to enumerate): under the null, P(p <= 0.05) is about 0.05.
    rng = np.random.default_rng(5)
    d = rng.normal(size=(400, 64))
    p = sign_flip_p_value(d, n_perm=2000, seed=1)
    assert p.shape == (400,) and np.all(p > 0)
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09
    shifted = sign_flip_p_value(d + 0.6, n_perm=2000, seed=1)
    assert np.mean(shifted <= 0.05) > 0.95


def test_holm_against_a_hand_computed_example():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.2, 0.5, 0.9]), [0.6, 1.0, 1.0])  # capped at 1


def _holm_rejects(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's procedure as stated: step down the sorted p-values while p_(i) <= alpha/(m-i+1)."""
    m = len(p)
    reject = np.zeros(m, bool)
    for i, j in enumerate(np.argsort(p, kind="stable")):
        if p[j] > alpha / (m - i):
            break
        reject[j] = True
    return reject


def test_holm_adjusted_values_reproduce_the_step_down_procedure():
    rng = np.random.default_rng(6)
    for _ in range(50):
        p = rng.uniform(0, 0.1, size=rng.integers(1, 12)) ** rng.uniform(0.5, 2)
        adjusted = holm(p)
        assert np.all(adjusted >= p) and np.all(adjusted <= 1.0)
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the p-values
        for alpha in (0.001, 0.01, 0.05, 0.1):
            np.testing.assert_array_equal(adjusted <= alpha, _holm_rejects(p, alpha))


def test_holm_never_rejects_more_than_bonferroni_allows_nor_less():
    # Holm is uniformly at least as powerful as Bonferroni and at most as powerful as unadjusted.
    for p in itertools.product([0.001, 0.01, 0.02, 0.3], repeat=3):
        p = np.array(p)
        adjusted = holm(p)
        assert np.all(adjusted <= np.minimum(1.0, 3 * p) + 1e-15)
        assert np.all(adjusted >= p)


def test_bad_input_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean([0.1, np.nan])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean([0.1, 0.2], confidence=95)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])
