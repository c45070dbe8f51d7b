"""fastir.kernels.resampling against a plain-Python re-implementation of the same random streams."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.kernels.resampling import sign_flip_statistics, stratified_bootstrap_statistics

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def stream(seed: int, b: int):
    state = mix64((mix64(seed) + mix64(b)) & MASK)
    while True:
        state = (state + GOLDEN) & MASK
        yield mix64(state)


def ref_signs(seed: int, b: int, n_queries: int) -> np.ndarray:
    draws = stream(seed, b)
    signs = np.empty(n_queries)
    for base in range(0, n_queries, 64):
        word = next(draws)
        for i in range(min(64, n_queries - base)):
            signs[base + i] = -1.0 if (word >> i) & 1 else 1.0
    return signs


def ref_counts(seed: int, b: int, strata: list[list[int]], n_queries: int) -> np.ndarray:
    draws = stream(seed, b)
    counts = np.zeros(n_queries)
    for members in strata:
        n = len(members)
        for _ in range(n):
            pick = int(((next(draws) >> 11) * 2.0**-53) * n)
            counts[members[pick]] += 1
    return counts


def ref_statistics(weights, cells, values, stats, fixed_den: bool) -> np.ndarray:
    """Cell means of weighted rows, then linear combinations: the obvious, slow way."""
    means = []
    for rows_q, rows_x in cells:
        w = weights[rows_q]
        den = float(len(rows_q)) if fixed_den else w.sum()
        means.append((w[:, None] * rows_x).sum(axis=0) / den if den > 0 else np.full(rows_x.shape[1], np.nan))
    means = np.asarray(means)
    return np.asarray([sum(c * means[j] for j, c in stat) for stat in stats])


def _problem(rng, n_per_stratum=(7, 5, 9), n_v=3):
    strata, q = [], 0
    for n in n_per_stratum:
        strata.append(list(range(q, q + n)))
        q += n
    cells = []
    for members in strata:  # two cells per stratum, one with a subset of the queries
        for keep in (1.0, 0.6):
            rows_q = np.asarray([m for m in members if rng.random() < keep] or members[:1])
            cells.append((rows_q, rng.normal(size=(len(rows_q), n_v))))
    stats = [[(j, 1.0 / len(cells)) for j in range(len(cells))], [(0, 0.5), (2, 0.5)], [(5, 1.0)]]
    return strata, q, cells, stats


def _csr(strata, cells, stats):
    strata_ptr = np.cumsum([0] + [len(s) for s in strata])
    members = np.concatenate([np.asarray(s) for s in strata])
    cell_ptr = np.cumsum([0] + [len(c[0]) for c in cells])
    row_query = np.concatenate([c[0] for c in cells])
    values = np.concatenate([c[1] for c in cells])
    k_ptr = np.cumsum([0] + [len(s) for s in stats])
    k_cell = np.asarray([j for s in stats for j, _ in s])
    k_coef = np.asarray([c for s in stats for _, c in s])
    return strata_ptr, members, cell_ptr, row_query, values, k_ptr, k_cell, k_coef


def test_sign_flips_match_python_reference():
    rng = np.random.default_rng(3)
    strata, n_q, cells, stats = _problem(rng)
    _, _, cell_ptr, row_query, values, k_ptr, k_cell, k_coef = _csr(strata, cells, stats)
    samples, seed = 45, 12345  # 45: one full block of 32 and a partial one
    got = sign_flip_statistics(cell_ptr, row_query, values, k_ptr, k_cell, k_coef, n_q, samples, seed)
    assert got.shape == (samples, len(stats), values.shape[1])
    for b in range(samples):
        want = ref_statistics(ref_signs(seed, b, n_q), cells, values, stats, fixed_den=True)
        np.testing.assert_allclose(got[b], want, rtol=1e-12, atol=1e-14)


def test_sign_flips_over_64_queries_use_one_word_per_64():
    n_q = 150
    cell_ptr = np.array([0, n_q])
    got = sign_flip_statistics(cell_ptr, np.arange(n_q), np.ones(n_q), [0, 1], [0], [1.0], n_q, 3, 7)
    for b in range(3):
        assert got[b, 0, 0] == pytest.approx(ref_signs(7, b, n_q).mean(), abs=1e-14)


def test_bootstrap_matches_python_reference():
    rng = np.random.default_rng(4)
    strata, n_q, cells, stats = _problem(rng)
    strata_ptr, members, cell_ptr, row_query, values, k_ptr, k_cell, k_coef = _csr(strata, cells, stats)
    samples, seed = 40, 99
    got = stratified_bootstrap_statistics(strata_ptr, members, cell_ptr, row_query, values, k_ptr, k_cell,
                                          k_coef, n_q, samples, seed)
    for b in range(samples):
        counts = ref_counts(seed, b, strata, n_q)
        want = ref_statistics(counts, cells, values, stats, fixed_den=False)
        np.testing.assert_allclose(got[b], want, rtol=1e-12, atol=1e-14, equal_nan=True)


def test_bootstrap_keeps_every_stratum_size():
    strata_ptr = np.array([0, 3, 10, 30])
    n_q = 30
    # one cell and one statistic per stratum: the bootstrap mean of the query indices
    cell_ptr = np.array([0, 3, 10, 30])
    row_query = np.arange(n_q)
    values = np.arange(n_q, dtype=np.float64)  # weighted mean of the indices
    got = stratified_bootstrap_statistics(strata_ptr, np.arange(n_q), cell_ptr, row_query, values,
                                          [0, 1, 2, 3], [0, 1, 2], [1.0, 1.0, 1.0], n_q, 200, 5)
    for b in (0, 17, 199):
        counts = ref_counts(5, b, [list(range(0, 3)), list(range(3, 10)), list(range(10, 30))], n_q)
        assert counts[:3].sum() == 3 and counts[3:10].sum() == 7 and counts[10:].sum() == 20
        assert got[b, 1, 0] == pytest.approx((counts[3:10] * values[3:10]).sum() / 7)
    # stratum means stay inside their stratum's range
    assert np.all((got[:, 0, 0] >= 0) & (got[:, 0, 0] <= 2))
    assert np.all((got[:, 2, 0] >= 10) & (got[:, 2, 0] <= 29))


def test_results_do_not_depend_on_threads_or_sample_count():
    import numba

    rng = np.random.default_rng(5)
    strata, n_q, cells, stats = _problem(rng, n_per_stratum=(70, 90, 40))
    strata_ptr, members, cell_ptr, row_query, values, k_ptr, k_cell, k_coef = _csr(strata, cells, stats)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_s = sign_flip_statistics(cell_ptr, row_query, values, k_ptr, k_cell, k_coef, n_q, 100, 1)
        one_b = stratified_bootstrap_statistics(strata_ptr, members, cell_ptr, row_query, values, k_ptr,
                                                k_cell, k_coef, n_q, 100, 1)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        all_s = sign_flip_statistics(cell_ptr, row_query, values, k_ptr, k_cell, k_coef, n_q, 100, 1)
        all_b = stratified_bootstrap_statistics(strata_ptr, members, cell_ptr, row_query, values, k_ptr,
                                                k_cell, k_coef, n_q, 100, 1)
    finally:
        numba.set_num_threads(previous)
    assert np.array_equal(one_s, all_s) and np.array_equal(one_b, all_b, equal_nan=True)
    prefix = sign_flip_statistics(cell_ptr, row_query, values, k_ptr, k_cell, k_coef, n_q, 7, 1)
    assert np.array_equal(prefix, all_s[:7])  # resample b does not depend on how many are drawn
    other = sign_flip_statistics(cell_ptr, row_query, values, k_ptr, k_cell, k_coef, n_q, 100, 2)
    assert not np.array_equal(other, all_s)


def test_sign_flip_moments():
    # E[T] = 0 and Var[T] = sum_q c_q^2 for a single cell with coefficients d_q / n
    rng = np.random.default_rng(6)
    n_q = 500
    d = rng.normal(0.1, 1.0, n_q)
    got = sign_flip_statistics([0, n_q], np.arange(n_q), d, [0, 1], [0], [1.0], n_q, 20000, 3)[:, 0, 0]
    sd = np.sqrt((d**2).sum()) / n_q
    assert abs(got.mean()) < 4 * sd / np.sqrt(len(got))
    assert got.std() == pytest.approx(sd, rel=0.03)


def test_bad_seed_rejected():
    with pytest.raises(ValueError):
        sign_flip_statistics([0, 1], [0], [1.0], [0, 1], [0], [1.0], 1, 1, -1)
