"""fastir.compare.stats: Holm's step-down correction (hand-computed, against the step-down loop and the
sequential rejection procedure), Student's t (tail, quantile, paired test, intervals) against scipy, and
Welch-Satterthwaite degrees of freedom."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from fastir.compare.stats import betainc, holm, paired_t_test, t_quantile, t_two_sided_p, welch_df

# ----------------------------------------------------------------------------- Holm


def test_holm_against_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, np.nan, 0.01]), [0.5, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.9, 0.3]), [0.9, 0.6])  # 0.3*2=0.6, then max(0.6, 0.9*1)
    rng = np.random.default_rng(1)
    for _ in range(20):  # the step-down definition, written out
        q = rng.random(7) ** 3
        order = np.argsort(q)
        want = np.empty(7)
        running = 0.0
        for i, j in enumerate(order):
            running = max(running, min(1.0, (7 - i) * q[j]))
            want[j] = running
        np.testing.assert_allclose(holm(q), want)


def _holm_procedure_rejects(p, alpha):
    """Holm's sequential procedure: reject p_(1), p_(2), ... while p_(k) <= alpha / (m - k + 1); NaNs out."""
    idx = [i for i in np.argsort(p, kind="stable") if not np.isnan(p[i])]
    rejected = set()
    for k, i in enumerate(idx):
        if p[i] > alpha / (len(idx) - k):
            break
        rejected.add(int(i))
    return rejected


def test_holm_adjusted_values_reject_exactly_what_the_procedure_rejects():
    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 12):
        for _ in range(30):
            p = rng.random(m) ** 4
            p[rng.random(m) < 0.2] = np.nan
            p[rng.random(m) < 0.2] = p[0]  # ties
            adjusted = holm(p)
            for alpha in (0.01, 0.05, 0.2):
                assert set(np.flatnonzero(adjusted <= alpha).tolist()) == _holm_procedure_rejects(p, alpha)


def test_holm_brute_force_over_every_order_with_ties():
    """Each adjusted value is max over the p-values at or before it in sorted order of min(1, (m - j + 1) p_(j));
    tied p-values get the same adjusted value whatever their position."""
    p = np.array([0.02, 0.01, 0.02, 0.3, 0.02, 0.001])
    m = len(p)
    for perm in itertools.permutations(range(m), 4):  # shuffled copies: the result follows the values
        q = p[list(perm) + [i for i in range(m) if i not in perm]]
        sorted_p = np.sort(q)
        want = [max(min(1.0, (m - j) * sorted_p[j]) for j in range(int(np.searchsorted(sorted_p, v, side="right"))))
                for v in q]
        np.testing.assert_allclose(holm(q), want, rtol=1e-15)
    np.testing.assert_allclose(holm(p), [0.08, 0.05, 0.08, 0.3, 0.08, 0.006])


def test_holm_edge_cases():
    assert np.isnan(holm([np.nan, np.nan])).all() and holm([]).shape == (0,)
    assert holm([0.7]).tolist() == [0.7] and holm([0.6, 0.6, 0.6]).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(holm((0.04, np.nan, 0.01, np.nan)), [0.04, np.nan, 0.02, np.nan])  # NaN in place


# ----------------------------------------------------------------------------- Student's t


def test_t_distribution_and_paired_t_against_scipy():
    for t in (0.0, 0.3, 1.7, 4.2, 12.0):
        for df in (1, 3, 29, 1189, 13089):
            assert t_two_sided_p(t, df) == pytest.approx(2 * scipy.stats.t.sf(t, df), rel=1e-9, abs=1e-300)
    for a, b, x in ((2.0, 3.0, 0.4), (0.5, 0.5, 0.9), (50.0, 0.5, 0.97)):
        assert betainc(a, b, x) == pytest.approx(scipy.special.betainc(a, b, x), rel=1e-10)
    rng = np.random.default_rng(0)
    d = rng.normal(0.02, 0.1, 300)
    t, p = paired_t_test(d)
    ref = scipy.stats.ttest_rel(d, np.zeros_like(d))
    assert t == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
    assert paired_t_test(np.zeros(10)) == (0.0, 1.0)


def test_t_quantile_against_scipy():
    for df in (1, 1.5, 2, 3, 4.7, 10, 100, 1e4):
        for q in (0.6, 0.9, 0.975, 0.995):
            assert t_quantile(q, df) == pytest.approx(scipy.stats.t.ppf(q, df), rel=1e-10)
    assert t_quantile(0.975, math.inf) == pytest.approx(scipy.stats.norm.ppf(0.975), rel=1e-12)


def test_paired_t_test_degenerate_cases():
    assert paired_t_test(np.full(7, 0.25)) == (math.inf, 0.0)  # a constant, non-zero difference
    assert paired_t_test(np.full(7, -1e-3)) == (-math.inf, 0.0)
    assert all(math.isnan(v) for v in paired_t_test(np.array([0.4])))
    assert all(math.isnan(v) for v in paired_t_test(np.array([])))
    assert t_two_sided_p(math.inf, 5) == 0.0 and math.isnan(t_two_sided_p(math.nan, 5))
    assert t_two_sided_p(0.0, 3) == pytest.approx(1.0) and betainc(2, 3, 0.0) == 0.0 and betainc(2, 3, 1.0) == 1.0


@pytest.mark.parametrize("n", [2, 3, 8, 40, 500])
def test_t_intervals_equal_scipy(n):
    """The interval mean +- t_{0.975, n-1} sd / sqrt(n) of these pieces equals scipy.stats.t.interval."""
    x = np.random.default_rng(n).normal(0.1, 0.3, n)
    se = x.std(ddof=1) / math.sqrt(n)
    for confidence in (0.8, 0.95, 0.99):
        half = t_quantile(0.5 + confidence / 2, n - 1) * se
        lo, hi = scipy.stats.t.interval(confidence, n - 1, loc=x.mean(), scale=se)
        assert x.mean() - half == pytest.approx(lo, rel=1e-10, abs=1e-14)
        assert x.mean() + half == pytest.approx(hi, rel=1e-10, abs=1e-14)
    t, p = paired_t_test(x)
    ref = scipy.stats.ttest_1samp(x, 0.0)
    assert t == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_t_quantile_inverts_the_tail_and_refuses_bad_arguments():
    for df in (1, 2.5, 30):
        for q in (0.55, 0.9, 0.999):
            assert t_two_sided_p(t_quantile(q, df), df) == pytest.approx(2 * (1 - q), rel=1e-9)
    for q in (0.5, 1.0, 0.2):
        with pytest.raises(ValueError, match=r"q must lie in \(0.5, 1\)"):
            t_quantile(q, 10)
    assert math.isnan(t_quantile(0.9, 0)) and math.isnan(t_quantile(0.9, math.nan))


# ----------------------------------------------------------------------------- Welch-Satterthwaite


def test_welch_df_is_satterthwaite():
    # two sample means: the textbook Welch df
    s1, n1, s2, n2 = 0.04, 3, 0.01, 8
    v1, v2 = s1**2 / n1, s2**2 / n2
    want = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    assert welch_df([v1, v2], [n1 - 1, n2 - 1]) == pytest.approx(want)
    assert welch_df([v1, 0.0], [n1 - 1, math.inf]) == pytest.approx(n1 - 1)  # one part alone: its df
    assert welch_df([0.0, 0.0], [2, 5]) == math.inf


def test_welch_df_of_a_difference_of_estimates():
    """A subtracted variance estimate enters squared like an added one (its sign does not matter)."""
    assert welch_df([0.5, -0.2], [4, 9]) == pytest.approx(0.3**2 / (0.25 / 4 + 0.04 / 9))
    assert welch_df([0.1, 0.1, 0.1], [5, 5, 5]) == pytest.approx(15.0)  # equal parts: the df add up
