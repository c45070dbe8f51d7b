"""fastir.compare.resample: the randomization p-value against exact enumeration of every sign flip and
against the random streams re-implemented in Python, the stratified bootstrap against its slow
reference, percentile intervals with NaN resamples, the three query-level tests, and the memory check."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.stats

from fastir.compare.cells import Cells, Statistic
from fastir.compare.resample import (bootstrap_distribution, paired_randomization_test, percentile_interval,
                                     query_level_p)
from fastir.core import resources
from fastir.core.errors import InputError
from tests.compare.conftest import ref_counts, ref_signs


def test_flat_paired_randomization_test_matches_reference():
    # (moved from tests/compare/test_comparison.py)
    rng = np.random.default_rng(8)
    a = rng.random(90)
    b = a + rng.normal(0.03, 0.1, 90)
    d = b - a
    flips = [np.mean(ref_signs(11, i, 90) * d) for i in range(500)]
    want = (1 + sum(abs(t) >= abs(d.mean()) * (1 - 1e-9) for t in flips)) / 501
    assert paired_randomization_test(a, b, 500, 11) == want


def _exact_p(d):
    """The exact randomization p-value: the share of all 2^n sign vectors with |mean(s d)| >= |mean(d)|."""
    obs = abs(d.mean())
    hits = sum(abs(np.mean(np.array(s) * d)) >= obs * (1 - 1e-12) for s in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


@pytest.mark.parametrize("d", [
    np.array([0.3, 0.1, 0.2, -0.05, 0.4, 0.0, 0.25, 0.15, -0.1, 0.2]),  # p small
    np.array([0.1, -0.1, 0.2, -0.15, 0.05, 0.0, -0.05, 0.1, 0.3, -0.2]),  # p large
    np.array([1.0, 1.0, -1.0, 1.0, 0.0, 0.0, 1.0, -1.0, 1.0, 1.0]),  # ties among the flipped means
])
def test_randomization_p_converges_to_exact_enumeration(d):
    exact = _exact_p(d)
    samples = 20000
    got = paired_randomization_test(np.zeros_like(d), d, samples, seed=5)
    sd = np.sqrt(exact * (1 - exact) / samples)
    assert abs(got - exact) <= 5 * sd + 1 / samples, (got, exact)
    assert got == paired_randomization_test(-d, np.zeros_like(d), samples, seed=5)  # only b - a counts


def test_randomization_edge_cases():
    assert paired_randomization_test([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 99, 1) == 1.0  # no difference: p = 1
    for a, b in (([], []), ([[1.0, 2.0]], [[1.0, 2.0]]), ([1.0, 2.0], [1.0]), ([0.5], [1.0, 2.0, 3.0])):
        with pytest.raises(ValueError, match="a and b must be 1-D arrays of equal, non-zero length"):
            paired_randomization_test(a, b, 10, 0)


def _layout(sizes=(5, 7, 4)):
    """One cell per language, queries contiguous per language (the bootstrap strata)."""
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    cells = Cells(ptr=ptr.astype(np.int64), query=np.arange(ptr[-1], dtype=np.int32),
                  values=np.zeros((ptr[-1], 1)), keys=[("map", "mono", f"l{i}", f"l{i}") for i in range(len(sizes))])
    stats = [Statistic("summary", "mono", "map", None, list(range(len(sizes))), [1 / len(sizes)] * len(sizes)),
             Statistic("language", "mono", "map", "l1", [1], [1.0])]
    return cells, stats, ptr.astype(np.int64)


def test_bootstrap_distribution_matches_the_slow_reference():
    cells, stats, strata = _layout()
    rng = np.random.default_rng(2)
    joint = rng.random((int(strata[-1]), 3))  # two systems and their difference, on the same draws
    joint[:, 2] = joint[:, 1] - joint[:, 0]
    samples, seed = 40, 9
    boot = bootstrap_distribution(cells, stats, joint, strata, samples, seed, n_pairs=1)
    assert boot.shape == (samples, 2, 3)
    pairs = [(f"l{lang}", q) for lang in range(3) for q in range(strata[lang], strata[lang + 1])]
    for b in range(samples):
        w = ref_counts(seed, b, pairs)
        means = [(w[s:e, None] * joint[s:e]).sum(axis=0) / w[s:e].sum() for s, e in zip(strata[:-1], strata[1:])]
        np.testing.assert_allclose(boot[b, 0], np.mean(means, axis=0), rtol=1e-12)
        np.testing.assert_allclose(boot[b, 1], means[1], rtol=1e-12)


def test_bootstrap_is_checked_against_memory(monkeypatch):
    cells, stats, strata = _layout()
    monkeypatch.setattr(resources, "available_memory", lambda: 1 << 20)
    with pytest.raises(InputError, match=r"^--samples: 100000 resamples of 2 statistics needs"):
        bootstrap_distribution(cells, stats, np.zeros((16, 3)), strata, 100000, 0, n_pairs=1)


def test_percentile_interval_against_numpy_and_without_the_nan_resamples():
    rng = np.random.default_rng(4)
    boot = rng.normal(size=(1000, 2, 3))
    lo, hi = percentile_interval(boot, 0.9)
    np.testing.assert_allclose(lo, np.percentile(boot, 5, axis=0), rtol=1e-15)
    np.testing.assert_allclose(hi, np.percentile(boot, 95, axis=0), rtol=1e-15)
    boot[::3, 0, 1] = np.nan  # resamples that drew no query of that statistic's cell
    boot[:, 1, 2] = np.nan  # never defined
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = percentile_interval(boot, 0.95)
    kept = boot[:, 0, 1][~np.isnan(boot[:, 0, 1])]
    np.testing.assert_allclose([lo[0, 1], hi[0, 1]], np.percentile(kept, [2.5, 97.5]), rtol=1e-15)
    assert np.isnan(lo[1, 2]) and np.isnan(hi[1, 2])
    assert lo[1, 0] == pytest.approx(np.percentile(boot[:, 1, 0], 2.5), rel=1e-15)


def test_query_level_tests():
    cells, stats, strata = _layout()
    rng = np.random.default_rng(6)
    diffs = rng.normal(0.05, 0.2, (int(strata[-1]), 2))
    d_obs = np.array([[np.mean([diffs[s:e, v].mean() for s, e in zip(strata[:-1], strata[1:])]) for v in range(2)],
                      [diffs[5:12, 0].mean(), diffs[5:12, 1].mean()]])
    # t: per-query contributions whose mean is the statistic; a single cell is scipy's one-sample / paired t
    p_t = query_level_p("t", cells, stats, diffs, d_obs, None, 16, 0, 0)
    assert p_t[1, 0] == pytest.approx(scipy.stats.ttest_1samp(diffs[5:12, 0], 0.0).pvalue, rel=1e-9)
    x = np.concatenate([diffs[s:e, 1] * 16 / (3 * (e - s)) for s, e in zip(strata[:-1], strata[1:])])
    assert x.mean() == pytest.approx(d_obs[0, 1])
    assert p_t[0, 1] == pytest.approx(scipy.stats.ttest_1samp(x, 0.0).pvalue, rel=1e-9)
    # bootstrap: centred, p = (1 + #{|T_b - T| >= |T|}) / (B + 1)
    boot = d_obs[None] + np.array([-0.2, 0.0, 0.1, 0.3, -0.01])[:, None, None] * np.abs(d_obs)[None] / 0.1
    p_b = query_level_p("bootstrap", cells, stats, diffs, d_obs, boot, 16, 5, 0)
    assert p_b.tolist() == [[4 / 6, 4 / 6], [4 / 6, 4 / 6]]  # |-0.2|, |0.1| (tie counts) and |0.3| reach 0.1
    # randomization: the sign flips of whole queries, as in the flat test where one cell holds every query
    one = Cells(ptr=np.array([0, 16]), query=np.arange(16, dtype=np.int32), values=diffs, keys=[("map", "mono", "x", "x")])
    flat = [Statistic("summary", "mono", "map", None, [0], [1.0])]
    p_r = query_level_p("randomization", one, flat, diffs[:, :1], diffs[:, :1].mean(axis=0, keepdims=True), None,
                        16, 2000, 3)
    assert p_r[0, 0] == paired_randomization_test(np.zeros(16), diffs[:, 0], 2000, 3)
