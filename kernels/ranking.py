"""Exact ranking metrics from one scan of a block of query-candidate scores (Numba).

The metrics are defined in docs/score.md; ``metrics_from_counts`` carries the formulas it computes.
For one query with relevant ("gold") candidates G and a candidate set S (one language, or all):

    rank_S(d) = |{c in S : score(c) >= score(d)}|          ties count against the gold
    hits_S(d) = |{g in G ∩ S : score(g) >= score(d)}|

Every rank is a sum over languages of ``cnt[d, L]`` = number of candidates of language L scoring
at or above gold d, so one scan of a query's score row yields every candidate set at once. Score
columns are grouped by language; the (few) gold scores are sorted ascending, and each chunk of
``CHUNK`` candidates of one language is counted against the lowest gold with vectorised
compares. Most chunks stop there (count 0: one compare per candidate, no branch per candidate);
a chunk with candidates above the lowest gold is recounted against the next golds until a count
drops to 0, adding each count to ``cnt[gold, L]`` — no per-candidate branches or binning, whose
mispredictions cost more than the compares. ``gcnt`` is the same count over the golds themselves
(hits).

Kernels are array-in/array-out: a private per-query ``@njit`` function and a ``prange`` wrapper
over the queries of a block, under thin public functions. No IO, no global thread settings.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, float64, int32, int64, njit, prange, void

# ------------------------------------------------------------------------------ per-query kernels


# Candidates per vectorised count: long enough for SIMD compares, short enough that a chunk
# holding one candidate above the lowest gold costs little to recount against the next golds.
CHUNK = 64


@njit(int32(float32[::1], float32), cache=True, nogil=True, inline="always")
def _count_at_or_above(values, threshold):
    # Indexing from 0 over a slice lets LLVM prove indices non-negative and vectorise the loop
    # (``range(c0, c1)`` on the full row keeps Numba's wraparound check and runs ~4x slower).
    # An int32 count packs 8 compares per 256-bit vector (int64: 4).
    k = np.int32(0)
    for c in range(values.shape[0]):
        k += np.int32(values[c] >= threshold)
    return k


@njit(
    void(float32[:, ::1], int64, int64[::1], int64[::1], int64[::1], int32[::1], int32[:, ::1], int32[:, ::1]),
    cache=True,
    nogil=True,
)
def _count_query(scores, b, lang_ptr, gold_ptr, gold_col, gold_lang, cnt, gcnt):
    """Fill ``cnt`` / ``gcnt`` rows gold_ptr[b]:gold_ptr[b+1] for block row ``b``.

    Columns are grouped by language: language L owns columns lang_ptr[L]:lang_ptr[L+1].
    """
    j0 = gold_ptr[b]
    m = gold_ptr[b + 1] - j0
    if m == 0:
        return
    n_langs = lang_ptr.shape[0] - 1
    g = np.empty(m, dtype=np.float32)
    for j in range(m):
        g[j] = scores[b, gold_col[j0 + j]]
    order = np.argsort(g)
    a = np.empty(m, dtype=np.float32)  # gold scores, ascending
    for j in range(m):
        a[j] = g[order[j]]
    lowest = a[0]
    above = np.zeros((m, n_langs), dtype=np.int32)  # above[p, L]: candidates of L scoring >= a[p]
    row = scores[b]
    for lang in range(n_langs):
        c0 = lang_ptr[lang]
        end = lang_ptr[lang + 1]
        while c0 < end:
            c1 = min(c0 + CHUNK, end)
            chunk = row[c0:c1]
            # One vectorised compare per candidate against the lowest gold; most chunks stop here.
            k = _count_at_or_above(chunk, lowest)
            p = 0
            while k != 0:
                above[p, lang] += k
                p += 1
                if p == m:
                    break
                k = _count_at_or_above(chunk, a[p])  # a[p] >= a[p-1]: counts only shrink
            c0 = c1
    for p in range(m):
        dst = j0 + order[p]
        s = a[p]
        for lang in range(n_langs):
            cnt[dst, lang] = above[p, lang]
            gcnt[dst, lang] = 0
        for j in range(m):  # golds at or above this one, by language (m is small)
            if g[j] >= s:
                gcnt[dst, gold_lang[j0 + j]] += 1


@njit(
    void(int64, int64, int64, int64[::1], int32[::1], int32[:, ::1], int32[:, ::1], boolean[::1], int64[::1],
         int32[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, :, ::1], float64[::1]),
    cache=True,
    nogil=True,
)
def _query_metrics(b, row, n_langs, gold_ptr, gold_lang, cnt, gcnt, want, ks, nrel, ap, rr, recall, rd):
    """Metrics of block row ``b`` for every wanted candidate set; written to output row ``row``.

    Set index s < n_langs is candidate language s; s == n_langs is the pooled set (all languages).
    """
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    n_k = ks.shape[0]
    for s in range(n_langs + 1):
        if not want[s]:
            continue
        n = 0
        total = 0.0
        min_rank = np.int64(1) << 62
        max_rank = np.int64(0)
        for k in range(n_k):
            recall[row, s, k] = 0.0
        for j in range(j0, j1):
            if s < n_langs:
                if gold_lang[j] != s:
                    continue
                r = np.int64(cnt[j, s])
                h = np.int64(gcnt[j, s])
            else:
                r = np.int64(0)
                h = np.int64(0)
                for lang in range(n_langs):
                    r += cnt[j, lang]
                    h += gcnt[j, lang]
            n += 1
            total += h / r
            min_rank = min(min_rank, r)
            max_rank = max(max_rank, r)
            for k in range(n_k):
                if r <= ks[k]:
                    recall[row, s, k] += 1.0
        nrel[row, s] = n
        if n == 0:
            ap[row, s] = np.nan
            rr[row, s] = np.nan
            for k in range(n_k):
                recall[row, s, k] = np.nan
            continue
        ap[row, s] = total / n
        rr[row, s] = 1.0 / min_rank
        for k in range(n_k):
            recall[row, s, k] /= n
        if s == n_langs and n >= 2:
            rd[row] = max_rank - min_rank


# --------------------------------------------------------------------------------- prange wrappers


@njit(
    void(float32[:, ::1], int64[::1], int64[::1], int64[::1], int32[::1], int32[:, ::1], int32[:, ::1]),
    cache=True,
    parallel=True,
)
def _count_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, cnt, gcnt):
    for b in prange(scores.shape[0]):
        _count_query(scores, b, lang_ptr, gold_ptr, gold_col, gold_lang, cnt, gcnt)


@njit(
    void(int64, int64[::1], int32[::1], int32[:, ::1], int32[:, ::1], int64[::1], int32[::1], boolean[:, ::1],
         int64[::1], int32[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, :, ::1], float64[::1]),
    cache=True,
    parallel=True,
)
def _metrics_block(n_langs, gold_ptr, gold_lang, cnt, gcnt, rows, query_group, want, ks, nrel, ap, rr, recall, rd):
    for b in prange(rows.shape[0]):
        _query_metrics(b, rows[b], n_langs, gold_ptr, gold_lang, cnt, gcnt, want[query_group[b]], ks,
                       nrel, ap, rr, recall, rd)


@njit(
    void(float32[:, ::1], int64[::1], int64[::1], int64[::1], int32[::1], int64[::1], int32[::1],
         boolean[:, ::1], int64[::1], int32[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, :, ::1],
         float64[::1]),
    cache=True,
    parallel=True,
)
def _score_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, rows, query_group, want, ks,
                 nrel, ap, rr, recall, rd):
    n_langs = want.shape[1] - 1
    ng = gold_ptr[scores.shape[0]]
    cnt = np.zeros((ng, n_langs), dtype=np.int32)
    gcnt = np.zeros((ng, n_langs), dtype=np.int32)
    for b in prange(scores.shape[0]):
        _count_query(scores, b, lang_ptr, gold_ptr, gold_col, gold_lang, cnt, gcnt)
        _query_metrics(b, rows[b], n_langs, gold_ptr, gold_lang, cnt, gcnt, want[query_group[b]], ks,
                       nrel, ap, rr, recall, rd)


# ------------------------------------------------------------------------------- public functions


def language_columns(cand_lang, n_langs):
    """Column order grouping candidates by language, and each language's slice of it.

    Returns (perm, lang_ptr): ``cand_lang[perm]`` is sorted (stable), language L owns positions
    ``lang_ptr[L]:lang_ptr[L+1]``. The kernels need score columns in this order.
    """
    cand_lang = np.asarray(cand_lang)
    perm = np.argsort(cand_lang, kind="stable")
    lang_ptr = np.searchsorted(cand_lang[perm], np.arange(n_langs + 1)).astype(np.int64)
    return perm, lang_ptr


def gold_rank_counts(scores, cand_lang, gold_ptr, gold_col, n_langs):
    """Per gold, how many candidates (``cnt``) and golds (``gcnt``) of each language score >= it.

    ``scores`` (B, N) float32 is a block of score rows, ``cand_lang`` (N,) the language id of each
    column; the golds of row b are ``gold_col[gold_ptr[b]:gold_ptr[b+1]]`` (column indices). With
    g = that gold's score, ``cnt[j, L] = |{c : lang(c) = L, scores[b, c] >= g}|`` (the gold itself
    included) and ``gcnt[j, L] = |{golds g' of row b : lang(g') = L, score(g') >= g}|``.
    Returns (cnt, gcnt), int32 arrays (len(gold_col), n_langs).
    """
    cand_lang = np.asarray(cand_lang)
    perm, lang_ptr = language_columns(cand_lang, n_langs)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    scores = np.ascontiguousarray(np.asarray(scores, dtype=np.float32)[:, perm])
    gold_col = np.asarray(gold_col, dtype=np.int64)
    gold_lang = np.ascontiguousarray(cand_lang[gold_col], dtype=np.int32)
    cnt = np.zeros((len(gold_col), n_langs), dtype=np.int32)
    gcnt = np.zeros((len(gold_col), n_langs), dtype=np.int32)
    _count_block(scores, lang_ptr, np.ascontiguousarray(gold_ptr, dtype=np.int64),
                 np.ascontiguousarray(inv[gold_col], dtype=np.int64), gold_lang, cnt, gcnt)
    return cnt, gcnt


def metrics_from_counts(gold_ptr, gold_lang, cnt, gcnt, want, ks):
    """Per-query AP, RR, Recall@k, |G ∩ S| for every candidate set S, and the pooled rank distance.

    ``want`` (B, n_langs + 1) bool selects the sets (column n_langs = pooled). With
    ``rank_S(d) = sum_{L in S} cnt[d, L]`` and ``hits_S(d) = sum_{L in S} gcnt[d, L]``::

        AP = mean_{d in G∩S} hits_S(d) / rank_S(d);  RR = 1 / min rank_S;  R@k = mean [rank_S(d) <= k]
        RD = max_d rank_all(d) - min_d rank_all(d)  (pooled, |G| >= 2)

    Returns (nrel int32 (B, n_langs+1), ap, rr float64 (B, n_langs+1), recall float64
    (B, n_langs+1, len(ks)), rd float64 (B,)); NaN where a set has no gold or is not wanted.
    """
    want = np.ascontiguousarray(want, dtype=np.bool_)
    n_rows = want.shape[0]
    n_langs = want.shape[1] - 1
    out = empty_outputs(n_rows, n_langs, len(ks))
    rows = np.arange(n_rows, dtype=np.int64)
    _metrics_block(n_langs, np.ascontiguousarray(gold_ptr, dtype=np.int64),
                   np.ascontiguousarray(gold_lang, dtype=np.int32), np.ascontiguousarray(cnt, dtype=np.int32),
                   np.ascontiguousarray(gcnt, dtype=np.int32), rows, rows.astype(np.int32), want,
                   np.asarray(ks, dtype=np.int64), *out)
    return out


def score_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, rows, query_group, want, ks, out):
    """Count and measure one block of score rows in a single parallel pass (the fused kernel).

    ``scores`` (B, N) float32 C-contiguous, columns grouped by language (language L owns columns
    ``lang_ptr[L]:lang_ptr[L+1]``, see :func:`language_columns`); golds of block row b are columns
    ``gold_col[gold_ptr[b]:gold_ptr[b+1]]`` with languages ``gold_lang``; ``rows[b]`` is the output
    row of block row b in ``out`` = (nrel, ap, rr, recall, rd) (see :func:`metrics_from_counts`,
    :func:`empty_outputs`); ``want[query_group[b]]`` is its mask of candidate sets (index n_langs =
    pooled). Formulas: see the module docstring.
    """
    _score_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, rows, query_group, want, ks, *out)


def empty_outputs(n_rows, n_langs, n_k):
    """Output arrays for :func:`score_block`: (nrel, ap, rr, recall, rd), 0 / NaN filled."""
    nrel = np.zeros((n_rows, n_langs + 1), dtype=np.int32)
    ap = np.full((n_rows, n_langs + 1), np.nan)
    rr = np.full((n_rows, n_langs + 1), np.nan)
    recall = np.full((n_rows, n_langs + 1, n_k), np.nan)
    rd = np.full(n_rows, np.nan)
    return nrel, ap, rr, recall, rd
