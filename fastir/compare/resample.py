"""Query-level resampling of ``fastir compare``: bootstrap intervals and the paired tests.

Resampling unit = the query: a query contributes to several cells (X->Y for every Y), and it is
swapped (randomization test) or drawn (bootstrap) as a whole, so the correlation between its cells
is kept. The bootstrap draws queries with replacement within each query language (strata), so every
language keeps its size. See ``fastir.kernels.resampling`` for the formulas and random streams.

Tests of each run against the baseline, per statistic: ``randomization`` (paired sign-flip,
``p = (1 + #{|T_b| >= |T_obs|}) / (B + 1)``), ``bootstrap`` (paired, centred:
``p = (1 + #{|T_b - T_obs| >= |T_obs|}) / (B + 1)``) or ``t`` (paired t-test on the per-query
contributions ``x_q = N * sum_{rows of q} coef_cell * d_row / n_cell``, whose mean is the statistic; for
a single cell this is exactly ``scipy.stats.ttest_rel``).
"""

from __future__ import annotations

import numpy as np

from fastir.compare.cells import Cells, Statistic, per_query_contributions, stat_csr
from fastir.compare.stats import paired_t_test
from fastir.core.resources import require_memory


def bootstrap_distribution(cells: Cells, stats: list[Statistic], joint: np.ndarray, strata_ptr: np.ndarray,
                           samples: int, seed: int, n_pairs: int) -> np.ndarray:
    """(samples, K, V): the stratified query bootstrap of every column of ``joint`` (systems, then the
    ``n_pairs`` differences), all columns on the same query draws."""
    from fastir.kernels.resampling import stratified_bootstrap_statistics

    n_q = int(strata_ptr[-1])
    k_ptr, k_cell, k_coef = stat_csr(stats)
    # The bootstrap distribution (samples, K, V) float64, a sorted copy for the percentiles, and the
    # sign-flip distribution (samples, K, P).
    require_memory(samples * len(stats) * (2 * joint.shape[1] + n_pairs) * 8, "--samples",
                   f"{samples} resamples of {len(stats)} statistics")
    return stratified_bootstrap_statistics(strata_ptr, np.arange(n_q), cells.ptr, cells.query, joint,
                                           k_ptr, k_cell, k_coef, n_q, samples, seed)


def percentile_interval(boot: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval (lo (K, V), hi (K, V)); resamples where a statistic is NaN (a
    cell none of whose queries was drawn) are left out of that statistic's interval."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    if np.isnan(boot).any():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN interval
            lo, hi = np.nanpercentile(boot, [tail, 100.0 - tail], axis=0)
    else:
        lo, hi = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    return lo, hi


def query_level_p(test: str, cells: Cells, stats: list[Statistic], diffs: np.ndarray, d_obs: np.ndarray,
                  boot_diffs: np.ndarray, n_queries: int, samples: int, seed: int) -> np.ndarray:
    """(K, P) p-values of the paired differences ``diffs`` (rows, P) by the query-level ``test``;
    ``d_obs`` (K, P) their observed statistics, ``boot_diffs`` (samples, K, P) their bootstrap."""
    from fastir.kernels.resampling import sign_flip_statistics

    if test == "bootstrap":
        return _exceed_p(boot_diffs - d_obs[None], d_obs)
    if test == "randomization":
        # linear in the signs: cell means of +-d over the cells' fixed sizes
        k_ptr, k_cell, k_coef = stat_csr(stats)
        flips = sign_flip_statistics(cells.ptr, cells.query, diffs, k_ptr, k_cell, k_coef, n_queries, samples,
                                     seed)
        return _exceed_p(flips, d_obs)
    p = np.empty_like(d_obs)
    for k, s in enumerate(stats):
        x = per_query_contributions(cells, s, diffs, n_queries)
        for v in range(x.shape[1]):
            p[k, v] = paired_t_test(x[:, v])[1]
    return p


def _exceed_p(dist: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``(1 + #{b: |dist_b| >= |observed|}) / (B + 1)`` per (statistic, column); a relative tolerance
    absorbs the rounding of sums taken in another order (e.g. the identity resample)."""
    thr = np.abs(observed) * (1.0 - 1e-9) - 1e-15
    valid = ~np.isnan(dist)
    hits = (np.abs(np.where(valid, dist, 0.0)) >= thr[None]) & valid
    return (1.0 + hits.sum(axis=0)) / (1.0 + valid.sum(axis=0))


def paired_randomization_test(a, b, samples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of ``mean(b) - mean(a)`` over one flat query set.

    ``p = (1 + #{resamples with |mean(s * (b - a))| >= |mean(b - a)|}) / (samples + 1)``, with the
    signs ``s`` drawn per query from stream ``(seed, resample)`` (see ``fastir.kernels.resampling``).
    """
    from fastir.kernels.resampling import sign_flip_statistics

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:  # a length-1 side would broadcast silently
        raise ValueError("a and b must be 1-D arrays of equal, non-zero length")
    d = b - a
    flips = sign_flip_statistics(np.array([0, d.size]), np.arange(d.size), d, np.array([0, 1]), [0], [1.0],
                                 d.size, samples, seed)
    return float(_exceed_p(flips, np.array([[d.mean()]]))[0, 0])
