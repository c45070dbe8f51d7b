"""Exact ranking metrics from one scan of a block of query-candidate scores (Numba).

The metrics are defined in docs/score.md; each finaliser below carries the formula it computes.
For one query with relevant ("gold") candidates G and a candidate set S (one language, or all):

    rank_S(d) = |{c in S : score(c) >= score(d)}|          ties count against the gold

Counting yields rank_S(d) for every gold d and set S; each metric's per-query value comes out of
those ranks in a finaliser (below, formula in its docstring; ``fastir.eval.metrics`` names them).

Every rank is a sum over languages of ``cnt[d, L]`` = number of candidates of language L scoring
at or above gold d, so one scan of a query's score row yields every candidate set at once. Score
columns are grouped by language; the (few) gold scores are sorted ascending, and each chunk of
``CHUNK`` candidates of one language is counted against the lowest gold with vectorised
compares. Most chunks stop there (count 0: one compare per candidate, no branch per candidate);
a chunk with candidates above the lowest gold is recounted against the next golds until a count
drops to 0, adding each count to ``cnt[gold, L]`` — no per-candidate branches or binning, whose
mispredictions cost more than the compares. :func:`gold_rank_counts` also returns ``gcnt``, the
same count over the golds themselves (hits), for tests and inspection.

Kernels are array-in/array-out: a private per-query ``@njit`` function and a ``prange`` wrapper
over the queries of a block, under thin public functions. No IO, no global thread settings. The
``prange`` wrappers declare their signatures and compile at their first call
(:mod:`fastir.kernels.lazy`); the per-query functions and finalisers are typed by them, so that a
command loads from the cache only the wrapper it runs.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, float64, int32, int64, njit, prange, void

from fastir.kernels.lazy import lazy_njit

# ------------------------------------------------------------------------------ per-query kernels


# Candidates per vectorised count: long enough for SIMD compares, short enough that a chunk
# holding one candidate above the lowest gold costs little to recount against the next golds.
CHUNK = 64


@njit(cache=True, nogil=True, inline="always")
def _count_at_or_above(values, threshold):
    # Indexing from 0 over a slice lets LLVM prove indices non-negative and vectorise the loop
    # (``range(c0, c1)`` on the full row keeps Numba's wraparound check and runs ~4x slower).
    # An int32 count packs 8 compares per 256-bit vector (int64: 4).
    k = np.int32(0)
    for c in range(values.shape[0]):
        k += np.int32(values[c] >= threshold)
    return k


@njit(cache=True, nogil=True)
def _count_query(scores, b, lang_ptr, gold_ptr, gold_col, cnt):
    """Fill ``cnt`` rows gold_ptr[b]:gold_ptr[b+1] for block row ``b``.

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
        for lang in range(n_langs):
            cnt[j0 + order[p], lang] = above[p, lang]


@njit(cache=True, nogil=True)
def _count_gold_hits(scores, b, gold_ptr, gold_col, gold_lang, gcnt):
    """Fill ``gcnt`` rows of block row ``b``: golds of each language scoring at or above each gold."""
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    for i in range(j0, j1):
        s = scores[b, gold_col[i]]
        for j in range(j0, j1):  # m is small
            if scores[b, gold_col[j]] >= s:
                gcnt[i, gold_lang[j]] += 1


# ------------------------------------------------------------------------------------ finalisers
# Per-query values from ``rank`` and ``grade`` (qrels grade >= 1) of each judged-positive gold of q
# in S (and of each gold judged 0 when a metric reads them, ``judged_at``: the others skip them); relevant = grade >= threshold, R = the relevant golds, NaN when R is empty. Rank is monotone in
# score, so hits(d) = |{g in R : rank(g) <= rank(d)}|: ranks carry every rank-based metric, binary
# or graded. Signature float64(rank int64[::1], grade int64[::1], threshold, cutoff), one FINALISERS
# code each. Kept in this file: Numba's cache tracks only a cached function's own file, so a
# finaliser elsewhere would leave the fused kernel's cache stale when it changes. Inlined into their
# callers (Numba IR): a call per (query, set, metric) cost ~100 ns of argument passing and array
# reference counting, more than most finalisers compute (13,090 queries x 12 sets x 8 metrics:
# 0.118 s -> 0.062 s on one core).

@njit(cache=True, nogil=True, inline="always")
def _num_relevant(grade, threshold):
    n = 0
    for i in range(grade.shape[0]):
        if grade[i] >= threshold:
            n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def average_precision(rank, grade, threshold, cutoff):
    """AP = (1/|R|) sum_{d in R} hits(d) / rank(d)  (= sklearn average_precision_score, ties included)."""
    n = _num_relevant(grade, threshold)
    return np.nan if n == 0 else _precision_sum_at(rank, grade, threshold, np.int64(1) << 62) / n


@njit(cache=True, nogil=True, inline="always")
def reciprocal_rank(rank, grade, threshold, cutoff):
    """RR = 1 / min_{d in R} rank(d)."""
    best = _best_rank(rank, grade, threshold)
    return np.nan if best == 0 else 1.0 / best


@njit(cache=True, nogil=True, inline="always")
def _best_rank(rank, grade, threshold):
    # min_{d in R} rank(d); 0 when R is empty
    best = np.int64(1) << 62
    for i in range(rank.shape[0]):
        if grade[i] >= threshold:
            best = min(best, rank[i])
    return np.int64(0) if best == np.int64(1) << 62 else best


@njit(cache=True, nogil=True, inline="always")
def recall_at(rank, grade, threshold, cutoff):
    """Recall@k = |{d in R : rank(d) <= k}| / |R|."""
    n = _num_relevant(grade, threshold)
    return np.nan if n == 0 else _in_top(rank, grade, threshold, cutoff) / n


@njit(cache=True, nogil=True, inline="always")
def ndcg_at(rank, grade, threshold, cutoff):
    """nDCG@k = DCG@k / IDCG@k, gain = grade (trec_eval ``ndcg_cut``, ties against the gold)::

        DCG@k  = sum_{d in P, rank(d) <= k} grade(d) / log2(rank(d) + 1)
        IDCG@k = sum_{i=1}^{min(k, |P|)} g_(i) / log2(i + 1)     (g_(1) >= g_(2) >= ...: P's grades, sorted)

    P = every gold with grade >= 1, whatever the threshold (trec_eval's ndcg_cut ignores
    relevance_level); NaN when R (grade >= threshold) is empty. Binary relevance: every grade is 1.
    """
    if _num_relevant(grade, threshold) == 0:
        return np.nan
    n = _num_relevant(grade, 1)
    gains = np.empty(n, dtype=np.float64)
    dcg = 0.0
    j = 0
    for i in range(rank.shape[0]):
        if grade[i] >= 1:
            gains[j] = grade[i]
            j += 1
            if rank[i] <= cutoff:
                dcg += grade[i] / np.log2(rank[i] + 1.0)
    gains = np.sort(gains)[::-1]
    ideal = 0.0
    for i in range(min(cutoff, n)):
        ideal += gains[i] / np.log2(i + 2.0)
    return dcg / ideal


@njit(cache=True, nogil=True, inline="always")
def rank_distance(rank, grade, threshold, cutoff):
    """RD = max_{d in R} rank(d) - min_{d in R} rank(d), defined for |R| >= 2 (else NaN)."""
    n, lo, hi = 0, np.int64(1) << 62, np.int64(0)
    for i in range(rank.shape[0]):
        if grade[i] >= threshold:
            n += 1
            lo = min(lo, rank[i])
            hi = max(hi, rank[i])
    return np.nan if n < 2 else float(hi - lo)


# The cutoff variants (issue 29): trec_eval's map_cut / P / success, MRR@k, Judged@k, XTREME-R's mAP@k.

@njit(cache=True, nogil=True, inline="always")
def _precision_sum_at(rank, grade, threshold, cutoff):
    # sum_{d in R, rank(d) <= k} hits(d) / rank(d)
    total = 0.0
    for i in range(rank.shape[0]):
        if grade[i] < threshold or rank[i] > cutoff:
            continue
        h = np.int64(0)
        for j in range(rank.shape[0]):
            if grade[j] >= threshold and rank[j] <= rank[i]:
                h += 1
        total += h / rank[i]
    return total


@njit(cache=True, nogil=True, inline="always")
def average_precision_at(rank, grade, threshold, cutoff):
    """AP@k = (1/|R|) sum_{d in R, rank(d) <= k} hits(d) / rank(d)  (trec_eval ``map_cut_k``)."""
    n = _num_relevant(grade, threshold)
    return np.nan if n == 0 else _precision_sum_at(rank, grade, threshold, cutoff) / n


@njit(cache=True, nogil=True, inline="always")
def lareqa_average_precision_at(rank, grade, threshold, cutoff):
    """AP_X@k = (1/min(|R|, k)) sum_{d in R, rank(d) <= k} hits(d) / rank(d)  (XTREME-R's LAReQA mAP@20)."""
    n = _num_relevant(grade, threshold)
    return np.nan if n == 0 else _precision_sum_at(rank, grade, threshold, cutoff) / min(n, cutoff)


@njit(cache=True, nogil=True, inline="always")
def reciprocal_rank_at(rank, grade, threshold, cutoff):
    """RR@k = 1 / min_{d in R} rank(d) if that rank <= k, else 0."""
    best = _best_rank(rank, grade, threshold)
    if best == 0:
        return np.nan
    return 1.0 / best if best <= cutoff else 0.0


@njit(cache=True, nogil=True, inline="always")
def precision_at(rank, grade, threshold, cutoff):
    """P@k = |{d in R : rank(d) <= k}| / k  (trec_eval ``P_k``: divided by k even where |S| < k)."""
    if _num_relevant(grade, threshold) == 0:
        return np.nan
    return _in_top(rank, grade, threshold, cutoff) / cutoff


@njit(cache=True, nogil=True, inline="always")
def success_at(rank, grade, threshold, cutoff):
    """Success@k = 1 if some d in R has rank(d) <= k, else 0  (trec_eval ``success_k``)."""
    if _num_relevant(grade, threshold) == 0:
        return np.nan
    return 1.0 if _in_top(rank, grade, threshold, cutoff) > 0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def judged_at(rank, grade, threshold, cutoff):
    """Judged@k = |{d in J : rank(d) <= k}| / k, J = every candidate of S with a qrel, grade 0 included
    (ir_measures ``Judged@k``); NaN when R is empty."""
    if _num_relevant(grade, threshold) == 0:
        return np.nan
    return _in_top(rank, grade, 0, cutoff) / cutoff


@njit(cache=True, nogil=True, inline="always")
def _in_top(rank, grade, threshold, cutoff):
    # |{d : grade(d) >= threshold, rank(d) <= k}|
    n = 0
    for i in range(rank.shape[0]):
        if grade[i] >= threshold and rank[i] <= cutoff:
            n += 1
    return n


# Finaliser codes, as the registry names them; finalise() dispatches on the code.
AP, RR, RECALL, RANK_DISTANCE, NDCG = range(5)
FINALISERS = {"average_precision": AP, "reciprocal_rank": RR, "recall_at": RECALL, "rank_distance": RANK_DISTANCE,
              "ndcg_at": NDCG}  # keys: the finalisers' function names
AP_AT, AP_LAREQA, RR_AT, PRECISION, SUCCESS, JUDGED = range(5, 11)  # the cutoff variants
FINALISERS |= {"average_precision_at": AP_AT, "lareqa_average_precision_at": AP_LAREQA, "reciprocal_rank_at": RR_AT,
               "precision_at": PRECISION, "success_at": SUCCESS, "judged_at": JUDGED}


@njit(cache=True, nogil=True, inline="always")
def finalise(code, rank, grade, threshold, cutoff):
    """The value of finaliser ``code`` (a :data:`FINALISERS` value); NaN for an unknown code."""
    if code == AP:
        return average_precision(rank, grade, threshold, cutoff)
    if code == RR:
        return reciprocal_rank(rank, grade, threshold, cutoff)
    if code == RECALL:
        return recall_at(rank, grade, threshold, cutoff)
    if code == RANK_DISTANCE:
        return rank_distance(rank, grade, threshold, cutoff)
    if code == NDCG:
        return ndcg_at(rank, grade, threshold, cutoff)
    if code == AP_AT:
        return average_precision_at(rank, grade, threshold, cutoff)
    if code == AP_LAREQA:
        return lareqa_average_precision_at(rank, grade, threshold, cutoff)
    if code == RR_AT:
        return reciprocal_rank_at(rank, grade, threshold, cutoff)
    if code == PRECISION:
        return precision_at(rank, grade, threshold, cutoff)
    if code == SUCCESS:
        return success_at(rank, grade, threshold, cutoff)
    if code == JUDGED:
        return judged_at(rank, grade, threshold, cutoff)
    return np.nan


@njit(cache=True, nogil=True)
def _query_metrics(b, row, n_langs, gold_ptr, gold_lang, gold_grade, cnt, want, codes, cutoffs, pooled_only,
                   threshold, nrel, values):
    """Metrics of block row ``b`` for every wanted candidate set; written to output row ``row``.

    Set index s < n_langs is candidate language s; s == n_langs is the pooled set (all languages).
    Metric i is finaliser ``codes[i]`` with ``cutoffs[i]``; ``pooled_only[i]``: NaN outside the pooled set.
    """
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    rank = np.empty(j1 - j0, dtype=np.int64)
    grade = np.empty(j1 - j0, dtype=np.int64)
    for s in range(n_langs + 1):
        if not want[s]:
            continue
        n = 0
        for j in range(j0, j1):
            if s < n_langs:
                if gold_lang[j] != s:
                    continue
                r = np.int64(cnt[j, s])
            else:
                r = np.int64(0)
                for lang in range(n_langs):
                    r += cnt[j, lang]
            rank[n] = r
            grade[n] = gold_grade[j]
            n += 1
        n_relevant = _num_relevant(grade[:n], threshold)
        nrel[row, s] = n_relevant
        for i in range(codes.shape[0]):
            if n_relevant == 0 or (pooled_only[i] and s != n_langs):
                values[row, s, i] = np.nan
            else:
                values[row, s, i] = finalise(codes[i], rank[:n], grade[:n], threshold, cutoffs[i])


# --------------------------------------------------------------------------------- prange wrappers


@lazy_njit(
    void(float32[:, ::1], int64[::1], int64[::1], int64[::1], int32[::1], int32[:, ::1], int32[:, ::1]),
    cache=True,
    parallel=True,
)
def _count_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, cnt, gcnt):
    for b in prange(scores.shape[0]):
        _count_query(scores, b, lang_ptr, gold_ptr, gold_col, cnt)
        _count_gold_hits(scores, b, gold_ptr, gold_col, gold_lang, gcnt)


@lazy_njit(
    void(int64, int64[::1], int32[::1], int64[::1], int32[:, ::1], int64[::1], int32[::1], boolean[:, ::1],
         int64[::1], int64[::1], boolean[::1], int64, int32[:, ::1], float64[:, :, ::1]),
    cache=True,
    parallel=True,
)
def _metrics_block(n_langs, gold_ptr, gold_lang, gold_grade, cnt, rows, query_group, want, codes, cutoffs,
                   pooled_only, threshold, nrel, values):
    for b in prange(rows.shape[0]):
        _query_metrics(b, rows[b], n_langs, gold_ptr, gold_lang, gold_grade, cnt, want[query_group[b]], codes,
                       cutoffs, pooled_only, threshold, nrel, values)


@lazy_njit(
    void(float32[:, ::1], int64[::1], int64[::1], int64[::1], int32[::1], int64[::1], int64[::1], int32[::1],
         boolean[:, ::1], int64[::1], int64[::1], boolean[::1], int64, int32[:, ::1], float64[:, :, ::1]),
    cache=True,
    parallel=True,
)
def _score_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, gold_grade, rows, query_group, want, codes,
                 cutoffs, pooled_only, threshold, nrel, values):
    n_langs = want.shape[1] - 1
    cnt = np.zeros((gold_ptr[scores.shape[0]], n_langs), dtype=np.int32)
    for b in prange(scores.shape[0]):
        _count_query(scores, b, lang_ptr, gold_ptr, gold_col, cnt)
        _query_metrics(b, rows[b], n_langs, gold_ptr, gold_lang, gold_grade, cnt, want[query_group[b]], codes,
                       cutoffs, pooled_only, threshold, nrel, values)


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


def metrics_from_counts(gold_ptr, gold_lang, cnt, want, program, gold_grade=None, threshold=1):
    """Per-query metric values and |R ∩ S| (golds of grade >= ``threshold``) for every candidate set S, from the per-gold counts.

    ``want`` (B, n_langs + 1) bool selects the sets (column n_langs = pooled). With
    ``rank_S(d) = sum_{L in S} cnt[d, L]``, metric i of ``program`` = (codes, cutoffs, pooled_only)
    is finaliser ``codes[i]`` (:data:`FINALISERS`, formulas in the finalisers) at ``cutoffs[i]``
    over the golds' ranks and grades (``gold_grade``, default 1 each; relevant = grade >= ``threshold``).

    Returns (nrel int32 (B, n_langs+1), values float64 (B, n_langs+1, n_metrics)); NaN where a set
    has no gold or is not wanted, and outside the pooled set for ``pooled_only`` metrics.
    """
    want = np.ascontiguousarray(want, dtype=np.bool_)
    n_rows = want.shape[0]
    n_langs = want.shape[1] - 1
    gold_ptr = np.ascontiguousarray(gold_ptr, dtype=np.int64)
    if gold_grade is None:
        gold_grade = np.ones(gold_ptr[-1], dtype=np.int64)
    codes, cutoffs, pooled_only = _program(program)
    out = empty_outputs(n_rows, n_langs, len(codes))
    rows = np.arange(n_rows, dtype=np.int64)
    _metrics_block(n_langs, gold_ptr, np.ascontiguousarray(gold_lang, dtype=np.int32),
                   np.ascontiguousarray(gold_grade, dtype=np.int64), np.ascontiguousarray(cnt, dtype=np.int32),
                   rows, rows.astype(np.int32), want, codes, cutoffs, pooled_only, int(threshold), *out)
    return out


def score_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, gold_grade, rows, query_group, want, program,
                threshold, out):
    """Count and measure one block of score rows in a single parallel pass (the fused kernel).

    ``scores`` (B, N) float32 C-contiguous, columns grouped by language (language L owns columns
    ``lang_ptr[L]:lang_ptr[L+1]``, see :func:`language_columns`); golds of block row b are columns
    ``gold_col[gold_ptr[b]:gold_ptr[b+1]]`` with languages ``gold_lang`` and grades ``gold_grade``;
    ``rows[b]`` is the output row of block row b in ``out`` = (nrel, values) (see
    :func:`metrics_from_counts`, :func:`empty_outputs`); ``want[query_group[b]]`` is its mask of
    candidate sets (index n_langs = pooled). Formulas: the module docstring and the finalisers.
    """
    codes, cutoffs, pooled_only = _program(program)
    _score_block(scores, lang_ptr, gold_ptr, gold_col, gold_lang, gold_grade, rows, query_group, want, codes,
                 cutoffs, pooled_only, int(threshold), *out)


def empty_outputs(n_rows, n_langs, n_metrics):
    """Output arrays for :func:`score_block`: (nrel, values), 0 / NaN filled."""
    nrel = np.zeros((n_rows, n_langs + 1), dtype=np.int32)
    values = np.full((n_rows, n_langs + 1, n_metrics), np.nan)
    return nrel, values


def _program(program):
    codes, cutoffs, pooled_only = program
    return (np.ascontiguousarray(codes, dtype=np.int64), np.ascontiguousarray(cutoffs, dtype=np.int64),
            np.ascontiguousarray(pooled_only, dtype=np.bool_))


# ------------------------------------------------------------------------- metrics from given ranks
# Ranked runs (fastir.eval.score_ranked) know each gold's rank in each candidate set directly (its
# position in the run order, or a tie mode's rank: fastir.kernels.ties); the rank-based finalisers
# above then apply unchanged. Kept here for the same reason as the finalisers (Numba's cache).

NOT_IN_SET = -1  # rank of a gold outside a candidate set (another language)
UNRANKED = (np.int64(1) << 62) - 1  # rank of a gold the run did not retrieve: beyond every cutoff (below
# the finalisers' "no gold" sentinel 2^62)


@njit(cache=True, nogil=True)
def _query_metrics_from_ranks(b, gold_ptr, gold_grade, ranks, codes, cutoffs, pooled_only, threshold, nrel,
                              values):
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    n_sets = ranks.shape[1]
    rank = np.empty(j1 - j0, dtype=np.int64)
    grade = np.empty(j1 - j0, dtype=np.int64)
    for s in range(n_sets):
        n = 0
        for j in range(j0, j1):
            if ranks[j, s] == NOT_IN_SET:
                continue
            rank[n] = ranks[j, s]
            grade[n] = gold_grade[j]
            n += 1
        n_relevant = _num_relevant(grade[:n], threshold)
        nrel[b, s] = n_relevant
        for i in range(codes.shape[0]):
            if n_relevant == 0 or (pooled_only[i] and s != n_sets - 1):
                values[b, s, i] = np.nan
            else:
                values[b, s, i] = finalise(codes[i], rank[:n], grade[:n], threshold, cutoffs[i])


@lazy_njit(
    void(int64[::1], int64[::1], int64[:, ::1], int64[::1], int64[::1], boolean[::1], int64, int32[:, ::1],
         float64[:, :, ::1]),
    cache=True,
    parallel=True,
)
def _ranks_block(gold_ptr, gold_grade, ranks, codes, cutoffs, pooled_only, threshold, nrel, values):
    for b in prange(gold_ptr.shape[0] - 1):
        _query_metrics_from_ranks(b, gold_ptr, gold_grade, ranks, codes, cutoffs, pooled_only, threshold, nrel,
                                  values)


def metrics_from_ranks(gold_ptr, gold_grade, ranks, program, threshold=1):
    """Per-query metric values and |R ∩ S| from each gold's rank in each candidate set.

    ``ranks`` int64 (n_golds, n_sets): the rank of gold j (golds of query b: rows
    ``gold_ptr[b]:gold_ptr[b+1]``) in set s (last column: the pooled set), :data:`NOT_IN_SET` where
    it is not in s, :data:`UNRANKED` where the run did not retrieve it (it counts in |R| and inside
    no cutoff; its AP and RR terms, h / (2^62 - 1), are below 1e-18). Metric i of ``program`` is finaliser
    ``codes[i]`` at ``cutoffs[i]`` (code -1: NaN). Returns (nrel int32 (B, n_sets), values float64
    (B, n_sets, n_metrics)), NaN where a set has no relevant gold and outside the pooled set for
    ``pooled_only`` metrics.
    """
    gold_ptr = np.ascontiguousarray(gold_ptr, dtype=np.int64)
    ranks = np.ascontiguousarray(ranks, dtype=np.int64)
    codes, cutoffs, pooled_only = _program(program)
    nrel, values = empty_outputs(len(gold_ptr) - 1, ranks.shape[1] - 1, len(codes))
    _ranks_block(gold_ptr, np.ascontiguousarray(gold_grade, dtype=np.int64), ranks, codes, cutoffs, pooled_only,
                 int(threshold), nrel, values)
    return nrel, values
