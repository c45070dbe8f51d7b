"""Paired resampling kernels for ``fastir compare``: randomization (sign-flip) and stratified bootstrap.

Every resample ``b`` draws from its own counter-based stream keyed by ``(seed, b)`` (SplitMix64), so
the results are identical whatever the number of threads and whatever order ``prange`` visits the
resamples in. The stream, bit for bit::

    mix(z)      = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^ (z >> 31)
    state_0     = mix(mix(seed) + mix(b))                       (uint64, wrapping)
    next()      : state += 0x9E3779B97F4A7C15; return mix(state)

* sign flips: word ``i = next()`` (i-th draw) holds the signs of queries ``64 i .. 64 i + 63``;
  bit ``j`` set -> the two runs are swapped for query ``64 i + j`` (sign -1).
* bootstrap: for each stratum in order, for each of its ``n`` slots, one draw
  ``u`` picks member ``floor(((u >> 11) * 2**-53) * n)``; a query's weight is how often it was picked.
  (``(u >> 11) * 2**-53 <= 1 - 2**-53`` exactly, and its product with ``n`` rounds below ``n``.)

Layout: resamples are processed in blocks of 32 with ``prange`` over blocks; a block's per-query
weights are stored ``(query, resample)`` so one pass over each cell's contiguous rows serves the
whole block.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit("uint64(uint64)", cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit("uint64(uint64, int64)", cache=True)
def _stream_start(seed, b):
    return _mix64(_mix64(seed) + _mix64(np.uint64(b)))


_BLOCK = 32  # resamples per block: one pass over the data serves the whole block (memory traffic / 32)


@njit(cache=True)
def _fill_signs(weights, nb, seed, b0):
    # All nb streams advance together so that weights[q, 0:nb] is written contiguously.
    n_queries = weights.shape[0]
    states = np.empty(nb, dtype=np.uint64)
    words = np.empty(nb, dtype=np.uint64)
    for j in range(nb):
        states[j] = _stream_start(seed, b0 + j)
    for base in range(0, n_queries, 64):
        for j in range(nb):
            states[j] += _GOLDEN
            words[j] = _mix64(states[j])
        for i in range(min(64, n_queries - base)):
            sh = np.uint64(i)
            for j in range(nb):
                weights[base + i, j] = 1.0 - 2.0 * np.float64((words[j] >> sh) & _ONE)


@njit(cache=True)
def _draw_counts(counts, seed, b, strata_ptr, strata_members):
    # counts: one resample's multiplicities, contiguous (random increments stay in cache)
    counts[:] = 0
    state = _stream_start(seed, b)
    for s in range(strata_ptr.shape[0] - 1):
        lo = strata_ptr[s]
        n = strata_ptr[s + 1] - lo
        nf = np.float64(n)
        for _ in range(n):
            state += _GOLDEN
            u = _mix64(state)
            pick = np.int64((np.float64(u >> _S11) * _INV53) * nf)
            if pick >= n:  # cannot happen (see module docstring); a guard only
                pick = n - 1
            counts[strata_members[lo + pick]] += 1


@njit(cache=True)
def _fill_counts(weights, nb, seed, b0, strata_ptr, strata_members):
    n_queries = weights.shape[0]
    counts = np.empty((nb, n_queries), dtype=np.int32)
    for j in range(nb):
        _draw_counts(counts[j], seed, b0 + j, strata_ptr, strata_members)
    # transpose in tiles of 64 queries: both sides stay in cache
    for q0 in range(0, n_queries, 64):
        q1 = min(q0 + 64, n_queries)
        for q in range(q0, q1):
            for j in range(nb):
                weights[q, j] = counts[j, q]


@njit(cache=True)
def _resample_block(b0, nb, bootstrap, seed, strata_ptr, strata_members, n_queries, cell_ptr, row_query,
                    values, k_ptr, k_cell, k_coef, out):
    # weights[q, j]: weight of query q in resample b0 + j (sign, or bootstrap count); contiguous in j
    # so each data row is read once per block and its inner loops vectorise over the block.
    weights = np.empty((n_queries, nb), dtype=np.float64)
    if bootstrap:
        _fill_counts(weights, nb, seed, b0, strata_ptr, strata_members)
    else:
        _fill_signs(weights, nb, seed, b0)
    n_cells = cell_ptr.shape[0] - 1
    n_v = values.shape[1]
    means = np.empty((n_cells, n_v, nb), dtype=np.float64)
    acc = np.empty((n_v, nb), dtype=np.float64)
    den = np.empty(nb, dtype=np.float64)
    for c in range(n_cells):
        acc[:, :] = 0.0
        den[:] = 0.0
        for r in range(cell_ptr[c], cell_ptr[c + 1]):
            q = row_query[r]
            if bootstrap:
                for j in range(nb):
                    den[j] += weights[q, j]
            for v in range(n_v):
                x = values[r, v]
                for j in range(nb):
                    acc[v, j] += weights[q, j] * x
        if not bootstrap:
            den[:] = np.float64(cell_ptr[c + 1] - cell_ptr[c])
        for v in range(n_v):
            for j in range(nb):
                means[c, v, j] = acc[v, j] / den[j] if den[j] > 0.0 else np.nan
    for k in range(k_ptr.shape[0] - 1):
        for v in range(n_v):
            for j in range(nb):
                t = 0.0
                for i in range(k_ptr[k], k_ptr[k + 1]):
                    t += k_coef[i] * means[k_cell[i], v, j]
                out[b0 + j, k, v] = t


@njit(cache=True, parallel=True)
def _resample_all(bootstrap, seed, strata_ptr, strata_members, n_queries, cell_ptr, row_query, values,
                  k_ptr, k_cell, k_coef, samples):
    out = np.empty((samples, k_ptr.shape[0] - 1, values.shape[1]), dtype=np.float64)
    n_blocks = (samples + _BLOCK - 1) // _BLOCK
    for blk in prange(n_blocks):
        b0 = blk * _BLOCK
        _resample_block(b0, min(_BLOCK, samples - b0), bootstrap, seed, strata_ptr, strata_members,
                        n_queries, cell_ptr, row_query, values, k_ptr, k_cell, k_coef, out)
    return out


def _run(bootstrap, strata_ptr, strata_members, n_queries, cell_ptr, row_query, values, k_ptr, k_cell,
         k_coef, samples, seed):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    i32 = lambda a: np.ascontiguousarray(a, dtype=np.int32)  # noqa: E731
    if not 0 <= int(seed) < 2**64:
        raise ValueError("seed must be in [0, 2**64)")
    return _resample_all(bool(bootstrap), np.uint64(seed), i64(strata_ptr), i32(strata_members),
                         int(n_queries), i64(cell_ptr), i32(row_query), np.ascontiguousarray(values),
                         i64(k_ptr), i32(k_cell), np.ascontiguousarray(k_coef, dtype=np.float64),
                         int(samples))


def sign_flip_statistics(cell_ptr, row_query, diffs, k_ptr, k_cell, k_coef, n_queries: int,
                         samples: int, seed: int) -> np.ndarray:
    """Paired randomization distribution of macro-averaged differences (random swaps of the two runs).

    Rows ``r`` of cell ``c`` hold paired differences ``d_r`` (run minus baseline) of query ``q(r)``.
    Resample ``b`` swaps the runs of query ``q`` when its sign ``s_q^(b) = -1`` (stream ``(seed, b)``);
    one sign per query is shared by all of its rows, so a query that appears in several cells
    (X->Y for every Y) is swapped as a whole. Statistic ``k``::

        T_k^(b) = sum_j coef_j * (sum_{r in cell_j} s_q(r)^(b) d_r) / n_{cell_j}

    e.g. Mo. = mean of the diagonal cell means (``coef = 1 / n_cells``); equivalently
    ``sum_q s_q w_q d_q`` with ``w_q = 1 / (n_cells * n_cell(q))``.

    Layout: cells in CSR ``cell_ptr`` (C+1,) int64, ``row_query`` (nnz,) int32 query index in
    ``[0, n_queries)``, ``diffs`` (nnz, V) float64 (V columns, e.g. one per compared run, sharing the
    signs); statistics in CSR ``k_ptr`` (K+1,) int64, ``k_cell`` int32, ``k_coef`` float64.
    Returns (samples, K, V) float64.
    """
    empty = np.zeros(1, dtype=np.int64)
    return _run(False, empty, empty, n_queries, cell_ptr, row_query, diffs, k_ptr, k_cell, k_coef,
                samples, seed)


def stratified_bootstrap_statistics(strata_ptr, strata_members, cell_ptr, row_query, values, k_ptr,
                                    k_cell, k_coef, n_queries: int, samples: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of macro-averages, resampling queries with replacement within strata.

    Each resample draws, within every stratum (query language) of ``n`` queries, ``n`` queries with
    replacement (stream ``(seed, b)``); ``m_q`` = times query ``q`` was drawn, shared by all rows of
    ``q``. A cell mean becomes ``sum_{r in cell} m_q(r) x_r / sum_{r in cell} m_q(r)`` (NaN when no
    query of the cell was drawn) and statistic ``k`` is ``sum_j coef_j * mean(cell_j)``.

    Layout: strata in CSR ``strata_ptr`` (S+1,) int64 / ``strata_members`` (Q,) int32 query indices;
    cells, ``values`` (nnz, V) (runs and paired differences resampled together) and statistics as in
    :func:`sign_flip_statistics`. Returns (samples, K, V) float64.
    """
    return _run(True, strata_ptr, strata_members, n_queries, cell_ptr, row_query, values, k_ptr, k_cell,
                k_coef, samples, seed)
