"""Top-k candidates per language and pooled, from a block of score rows (Numba).

Used to export TREC runs: for query row b and candidate set S (one language, or all),
``top_k(b, S)`` = the k highest ``scores[b, c]`` with c in S, ordered by score descending and, among
equal scores, by column ascending. One scan per row keeps a bounded min-heap per set.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, int32, int64, njit, prange, void


@njit(cache=True, nogil=True, inline="always")
def _worse(v1, i1, v2, i2):
    # Heap order: lower score is worse; among equal scores the larger column is worse.
    return v1 < v2 or (v1 == v2 and i1 > i2)


# Heaps live in rows (b, s) of the 3-d output arrays and are addressed by index, not by slice:
# a slice per call would cost two atomic reference-count updates.


@njit(void(float32[:, :, ::1], int32[:, :, ::1], int64, int64, int64, float32, int32), cache=True, nogil=True)
def _heap_replace_top(vals, idx, b, s, size, v, i):
    """Replace the worst (root) entry of the min-heap vals[b, s, :size] by (v, i) and sift down."""
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and _worse(vals[b, s, right], idx[b, s, right], vals[b, s, left], idx[b, s, left]):
            child = right
        if _worse(vals[b, s, child], idx[b, s, child], v, i):
            vals[b, s, pos] = vals[b, s, child]
            idx[b, s, pos] = idx[b, s, child]
            pos = child
        else:
            break
    vals[b, s, pos] = v
    idx[b, s, pos] = i


@njit(void(float32[:, :, ::1], int32[:, :, ::1], int64, int64, int64, float32, int32), cache=True, nogil=True)
def _heap_push(vals, idx, b, s, size, v, i):
    """Append (v, i) at position ``size`` of the min-heap vals[b, s] and sift up."""
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if _worse(v, i, vals[b, s, parent], idx[b, s, parent]):
            vals[b, s, pos] = vals[b, s, parent]
            idx[b, s, pos] = idx[b, s, parent]
            pos = parent
        else:
            break
    vals[b, s, pos] = v
    idx[b, s, pos] = i


@njit(void(float32[:, ::1], int64, int32[::1], boolean[::1], float32[:, :, ::1], int32[:, :, ::1], int32[:, ::1]),
      cache=True, nogil=True)
def _top_k_query(scores, b, cand_lang, want, top_score, top_col, top_len):
    n_sets = want.shape[0]
    n_langs = n_sets - 1
    k = top_score.shape[2]
    size = np.zeros(n_sets, dtype=np.int64)
    # Once a heap is full, a candidate enters only with a score above its root: columns come in
    # ascending order, so an equal score loses the tie. ``bar`` caches the root score.
    bar = np.full(n_sets, -np.inf, dtype=np.float32)
    row = scores[b]
    for c in range(row.shape[0]):
        v = row[c]
        for t in range(2):
            s = np.int64(cand_lang[c]) if t == 0 else np.int64(n_langs)
            if not want[s]:
                continue
            if size[s] < k:
                _heap_push(top_score, top_col, b, s, size[s], v, np.int32(c))
                size[s] += 1
                if size[s] == k:
                    bar[s] = top_score[b, s, 0]
            elif v > bar[s]:
                _heap_replace_top(top_score, top_col, b, s, k, v, np.int32(c))
                bar[s] = top_score[b, s, 0]
    # Heap sort in place: repeatedly move the worst entry to the end of the shrinking heap.
    for s in range(n_sets):
        top_len[b, s] = size[s]
        for end in range(size[s] - 1, 0, -1):
            v = top_score[b, s, end]
            i = top_col[b, s, end]
            top_score[b, s, end] = top_score[b, s, 0]
            top_col[b, s, end] = top_col[b, s, 0]
            _heap_replace_top(top_score, top_col, b, s, end, v, i)


@njit(void(float32[:, ::1], int32[::1], boolean[:, ::1], int32[::1], float32[:, :, ::1], int32[:, :, ::1],
           int32[:, ::1]), cache=True, parallel=True)
def _top_k_block(scores, cand_lang, want, query_group, top_score, top_col, top_len):
    for b in prange(scores.shape[0]):
        _top_k_query(scores, b, cand_lang, want[query_group[b]], top_score, top_col, top_len)


def top_k_by_language(scores, cand_lang, want, query_group, k):
    """Top-``k`` columns of each score row, per candidate language and pooled.

    ``scores`` (B, N) float32; ``cand_lang`` (N,) int32 in [0, n_langs); ``want`` (G, n_langs + 1)
    bool, row ``query_group[b]`` selecting the sets of block row b (index n_langs = all columns).
    Returns (top_score float32 (B, n_langs+1, k), top_col int32 (B, n_langs+1, k), top_len int32
    (B, n_langs+1)): the first ``top_len[b, s]`` entries are the best columns of set s, by score
    descending then column ascending.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    want = np.ascontiguousarray(want, dtype=np.bool_)
    n_rows, n_sets = scores.shape[0], want.shape[1]
    top_score = np.zeros((n_rows, n_sets, k), dtype=np.float32)
    top_col = np.zeros((n_rows, n_sets, k), dtype=np.int32)
    top_len = np.zeros((n_rows, n_sets), dtype=np.int32)
    _top_k_block(scores, np.ascontiguousarray(cand_lang, dtype=np.int32), want,
                 np.ascontiguousarray(query_group, dtype=np.int32), top_score, top_col, top_len)
    return top_score, top_col, top_len
