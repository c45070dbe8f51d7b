"""Per-gold counts and top-k accumulated over tiles of a score matrix (Numba).

The streaming pass of ``fastir score`` (:mod:`fastir.eval.stream`) cuts Q·Cᵀ into tiles of query
rows x candidate columns, so no tile holds a whole row. For a gold d of query q with score g(d),
the rank in candidate set S is a sum over the tiles (and over candidate shards)::

    rank_S(d) = sum_tiles sum_{L in S} |{c in tile : lang(c) = L, score(q, c) >= g(d)}|

so each tile adds its per-language counts to ``cnt[d, L]`` (int64: sums over shards stay exact).
For the tie modes (``fastir score --ties``) the same pass can also add ``tied[d, L]``, the
candidates of L scoring exactly g(d) (the gold included): above = cnt - tied.
The gold scores are known before the tiles are counted; a gold that falls inside a tile has its
entry set to that known score first, so a gold always counts itself and the golds of a query are
compared at one score each. Top-k lists of tiles and shards merge by (score descending, key
ascending), the key being the candidate's column in the whole, language-grouped pool: the order a
single pass over the whole row gives (see :mod:`fastir.kernels.topk`).
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, int32, int64, njit, prange, void

from fastir.kernels.lazy import lazy_njit

# Candidates per vectorised count (as in fastir.kernels.ranking; a copy: Numba's cache tracks only
# a cached function's own file).
CHUNK = 64


@njit(cache=True, nogil=True, inline="always")
def _count_at_or_above(values, threshold):
    k = np.int32(0)
    for c in range(values.shape[0]):
        k += np.int32(values[c] >= threshold)
    return k


@njit(cache=True, nogil=True, inline="always")
def _count_at_or_above_and_equal(values, threshold):
    # One vectorised pass for both counts (the tie modes), in one accumulator: at or above in the
    # low 16 bits, equal (above and at most: 65,537 a value) in the high ones, so one horizontal sum
    # instead of two (8 % less time than two accumulators, measured on the graded bench's tiles).
    # A chunk is at most CHUNK (< 2^16) values.
    k = np.int32(0)
    for c in range(values.shape[0]):
        v = values[c]
        k += np.int32(v >= threshold) * np.int32(1 + 65536 * (v <= threshold))
    return k & np.int32(0xFFFF), k >> np.int32(16)


@njit(cache=True, nogil=True)  # typed by its caller, _count_tile
def _count_tile_row(scores, b, lang_ptr, gold_ptr, gold_pos, gold_score, take, t0, lang0, gold_id, cnt, tied):
    j0 = gold_ptr[b]
    m = gold_ptr[b + 1] - j0
    if m == 0:
        return
    row = scores[b]
    n_cols = row.shape[0]
    for j in range(m):  # golds inside the tile: take their score from it, or pin it to the known one
        p = gold_pos[j0 + j] - t0
        if 0 <= p < n_cols:
            if take:
                gold_score[j0 + j] = row[p]
            else:
                row[p] = gold_score[j0 + j]
    g = gold_score[j0:j0 + m].copy()
    order = np.argsort(g)
    a = np.empty(m, dtype=np.float32)
    for j in range(m):
        a[j] = g[order[j]]
    n_langs = lang_ptr.shape[0] - 1
    ties = tied.shape[0] > 0
    above = np.zeros((m, n_langs), dtype=np.int64)
    equal = np.zeros((m if ties else 0, n_langs), dtype=np.int64)
    for lang in range(n_langs):
        c0 = lang_ptr[lang]
        end = lang_ptr[lang + 1]
        while c0 < end:
            c1 = min(c0 + CHUNK, end)
            chunk = row[c0:c1]
            if ties:
                p = 0
                k, e = _count_at_or_above_and_equal(chunk, a[0])
                while k != 0:
                    above[p, lang] += k
                    equal[p, lang] += e
                    p += 1
                    if p == m:
                        break
                    k, e = _count_at_or_above_and_equal(chunk, a[p])
                c0 = c1
                continue
            k = _count_at_or_above(chunk, a[0])
            p = 0
            while k != 0:
                above[p, lang] += k
                p += 1
                if p == m:
                    break
                k = _count_at_or_above(chunk, a[p])
            c0 = c1
    for p in range(m):
        d = gold_id[j0 + order[p]]
        for lang in range(n_langs):
            cnt[d, lang0 + lang] += above[p, lang]
            if ties:
                tied[d, lang0 + lang] += equal[p, lang]


@lazy_njit(void(float32[:, ::1], int64[::1], int64[::1], int64[::1], float32[::1], boolean, int64, int64,
                int64[::1], int64[:, ::1], int64[:, ::1]), cache=True, parallel=True)
def _count_tile(scores, lang_ptr, gold_ptr, gold_pos, gold_score, take, t0, lang0, gold_id, cnt, tied):
    for b in prange(scores.shape[0]):
        _count_tile_row(scores, b, lang_ptr, gold_ptr, gold_pos, gold_score, take, t0, lang0, gold_id, cnt, tied)


_NO_TIES = np.zeros((0, 0), np.int64)


def count_tile(scores, lang_ptr, gold_ptr, gold_pos, gold_score, t0, lang0, gold_id, cnt, take=False, tied=None):
    """Add one tile's per-language counts to ``cnt`` (int64 (n_golds, n_langs)), in place, and with
    ``tied`` (int64, the shape of ``cnt``) the candidates scoring exactly each gold's score.

    ``scores`` (B, T) float32 C-contiguous: the tile, columns grouped by language (tile language i
    = pool language ``lang0 + i``, owning columns ``lang_ptr[i]:lang_ptr[i+1]``), column 0 being
    column ``t0`` of the group. Golds of tile row b: entries ``gold_ptr[b]:gold_ptr[b+1]`` of
    ``gold_pos`` (their column in the group), ``gold_score`` and ``gold_id`` (their row of ``cnt``).
    ``take``: read the scores of the golds inside the tile into ``gold_score`` (a tile holding
    every column) instead of pinning those entries to ``gold_score``. The tile is modified.
    """
    _count_tile(scores, lang_ptr, gold_ptr, gold_pos, gold_score, bool(take), int(t0), int(lang0), gold_id, cnt,
                _NO_TIES if tied is None else tied)


@njit(cache=True, nogil=True, inline="always")
def _before(v1, k1, v2, k2):
    return v1 > v2 or (v1 == v2 and k1 < k2)


@lazy_njit(void(float32[:, :, ::1], int64[:, :, ::1], int32[:, ::1], float32[:, :, ::1], int64[:, :, ::1],
                int32[:, ::1], int64[::1]), cache=True, parallel=True)
def _merge_top(score, key, length, new_score, new_key, new_len, rows):
    depth = score.shape[2]
    for i in prange(rows.shape[0]):
        q = rows[i]
        buf_v = np.empty(depth, dtype=np.float32)
        buf_k = np.empty(depth, dtype=np.int64)
        for s in range(score.shape[1]):
            n1 = length[q, s]
            n2 = new_len[i, s]
            a = 0
            b = 0
            n = 0
            while n < depth and (a < n1 or b < n2):
                if b >= n2 or (a < n1 and _before(score[q, s, a], key[q, s, a], new_score[i, s, b], new_key[i, s, b])):
                    buf_v[n] = score[q, s, a]
                    buf_k[n] = key[q, s, a]
                    a += 1
                else:
                    buf_v[n] = new_score[i, s, b]
                    buf_k[n] = new_key[i, s, b]
                    b += 1
                n += 1
            for j in range(n):
                score[q, s, j] = buf_v[j]
                key[q, s, j] = buf_k[j]
            length[q, s] = n


def merge_top(score, key, length, new_score, new_key, new_len, rows):
    """Merge sorted top-k lists ``new_*`` (row i belongs to query ``rows[i]``) into ``score`` /
    ``key`` / ``length`` (indexed by query), keeping the ``depth`` best by score descending, then
    key ascending. Both inputs are sorted that way; the result is too. In place."""
    _merge_top(score, key, length, np.ascontiguousarray(new_score, dtype=np.float32),
               np.ascontiguousarray(new_key, dtype=np.int64), np.ascontiguousarray(new_len, dtype=np.int32),
               np.ascontiguousarray(rows, dtype=np.int64))
