"""Language-preference measures of parallel queries and parallel pools (Numba).

The metrics are defined in docs/score.md ("Language preference"); each kernel below carries the
formula it computes. A block holds the full score rows of whole parallel groups of queries (the
translations of one question: a run's ``xling_id``), one row per query, every candidate of the
pool in every row, and the candidates' languages. Rows of one group are consecutive:
``group_ptr[g]:group_ptr[g+1]``.

Kernels are array-in/array-out: a per-row or per-group ``@njit`` function and a ``prange`` wrapper
(declared signature, compiled at its first call: :mod:`fastir.kernels.lazy`) over a block, under thin
public functions. No IO, no global thread settings.
"""

from __future__ import annotations

import numpy as np
from numba import float32, float64, int32, int64, njit, prange, void

from fastir.kernels.lazy import lazy_njit

# --------------------------------------------------------------------------- rank correlation


@njit(cache=True, nogil=True)
def average_ranks(x):
    """Ranks 1..N of ``x`` ascending, tied values sharing the mean of their ranks (= scipy.stats.rankdata)."""
    n = x.shape[0]
    order = np.argsort(x)  # any order within a tie: tied values share one mean rank
    out = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and x[order[j + 1]] == x[order[i]]:
            j += 1
        mean = 0.5 * (i + j) + 1.0
        for t in range(i, j + 1):
            out[order[t]] = mean
        i = j + 1
    return out


@njit(cache=True, nogil=True)
def _centred(r):
    """``r`` minus its mean, and the norm of that; norm 0 for a constant ``r``."""
    c = r - r.mean()
    return c, np.sqrt((c * c).sum())


@njit(cache=True, nogil=True)
def _group_rank_correlation(scores, r0, r1, out):
    """Fill ``out[r0:r1]``: each row's mean Spearman correlation with the other rows of its group.

    RC(a, b) = Pearson(rank(s_a), rank(s_b)), ranks averaged over ties (scipy.stats.spearmanr);
    MRC(a) = mean over the other members b with a defined RC (NaN when a row is constant, or alone).
    """
    m = r1 - r0
    n = scores.shape[1]
    cen = np.empty((m, n), dtype=np.float64)
    norm = np.empty(m, dtype=np.float64)
    for a in range(m):
        c, nrm = _centred(average_ranks(scores[r0 + a]))
        cen[a] = c
        norm[a] = nrm
    total = np.zeros(m, dtype=np.float64)
    count = np.zeros(m, dtype=np.int64)
    for a in range(m):
        for b in range(a + 1, m):  # RC(a, b) = RC(b, a): each pair once
            if norm[a] == 0.0 or norm[b] == 0.0:
                continue
            dot = 0.0
            for c in range(n):
                dot += cen[a, c] * cen[b, c]
            rc = dot / (norm[a] * norm[b])
            total[a] += rc
            total[b] += rc
            count[a] += 1
            count[b] += 1
    for a in range(m):
        out[r0 + a] = total[a] / count[a] if count[a] > 0 else np.nan


@lazy_njit(void(float32[:, ::1], int64[::1], float64[::1]), cache=True, parallel=True)
def _rank_correlation_block(scores, group_ptr, out):
    for g in prange(group_ptr.shape[0] - 1):
        _group_rank_correlation(scores, group_ptr[g], group_ptr[g + 1], out)


# ----------------------------------------------------------------------------- top of a ranking


@njit(cache=True, nogil=True)
def _ranking(row, k):
    """The first min(k, N) columns of ``row`` by score descending, ties by column ascending (a strict
    order): the k-th largest score v by selection, every column above v and the first columns at v."""
    n = row.shape[0]
    k = min(k, n)
    v = np.partition(row, n - k)[n - k]
    equal = k
    for c in range(n):
        if row[c] > v:
            equal -= 1  # the columns at v that still fit
    top = np.empty(k, dtype=np.int64)
    j = 0
    for c in range(n):
        if row[c] > v or (row[c] == v and equal > 0):
            if row[c] == v:
                equal -= 1
            top[j] = c
            j += 1
    key = np.empty(k, dtype=np.float64)
    for i in range(k):
        key[i] = -row[top[i]]
    return top[np.argsort(key, kind="mergesort")]  # stable: ties stay in column order


@njit(cache=True, nogil=True)
def pivot_share(row, c_lang, pivot, k):
    """Pivot@k = |{i <= n : lang(top_i) = P}| / n, n = min(k, N): the share of the top k in the pivot language P."""
    order = _ranking(row, k)
    n = order.shape[0]
    same = 0
    for i in range(n):
        if c_lang[order[i]] == pivot:
            same += 1
    return same / n


@njit(cache=True, nogil=True)
def mlrs(row, target_col, k):
    """MLRS@K(q) = sum_i max(r_i - r'_i, 0) / sum_i (r_i - 1) over the top n = min(K, N) of q's ranking
    (Park & Lee, ACL 2025 Findings; jeonghyunpark2002/LanguagePreference mlrs.py, its 0-100 score / 100).

    r_i = i, the position of the i-th candidate c_i; r'_i = its position when the n candidates are
    replaced by their parallel versions t(c_i) in the target language (``target_col[c]``, -1: none)
    and re-ranked by score(q, t(c_i)) descending, ties kept in the order r (a stable sort, as the
    reference's). 0 when the denominator is 0 (n = 1); NaN when some c_i has no version in the target.
    """
    order = _ranking(row, k)
    n = order.shape[0]
    replaced = np.empty(n, dtype=np.float64)
    for i in range(n):
        t = target_col[order[i]]
        if t < 0:
            return np.nan
        replaced[i] = -row[t]
    new_order = np.argsort(replaced, kind="mergesort")  # stable: ties keep the initial order
    gain = 0.0
    for new_pos in range(n):
        gain += max(new_order[new_pos] - new_pos, 0)  # initial position - new position, both 0-based
    most = n * (n - 1) / 2.0
    return gain / most if most > 0 else 0.0


@lazy_njit(void(float32[:, ::1], int32[::1], int64, int64, int64[::1], int64, float64[::1], float64[::1]),
           cache=True, parallel=True)
def _top_block(scores, c_lang, pivot, k, target_col, mlrs_k, share, shift):
    for b in prange(scores.shape[0]):
        share[b] = pivot_share(scores[b], c_lang, pivot, k) if pivot >= 0 else np.nan
        shift[b] = mlrs(scores[b], target_col, mlrs_k) if mlrs_k > 0 else np.nan


# ------------------------------------------------------------------------- query-language preference


@njit(cache=True, nogil=True)
def query_language_preference(gold_score, gold_lang, q_lang):
    """QLP(q) = |{(d, d') : d in R_q, lang(d) = lang(q); d' in R_q, lang(d') != lang(q); score(d) > score(d')}|
    / (number of such pairs): how often the relevant candidate in the query's language outranks its
    parallel versions in the other languages; a tie does not outrank (ties against the query-language
    candidate); NaN without such a pair."""
    pairs = 0
    wins = 0
    for i in range(gold_score.shape[0]):
        if gold_lang[i] != q_lang:
            continue
        for j in range(gold_score.shape[0]):
            if gold_lang[j] == q_lang:
                continue
            pairs += 1
            if gold_score[i] > gold_score[j]:
                wins += 1
    return wins / pairs if pairs > 0 else np.nan


@lazy_njit(void(float32[::1], int32[::1], int64[::1], int64[::1], float64[::1]), cache=True, parallel=True)
def _preference_block(gold_score, gold_lang, gold_ptr, q_lang, out):
    for q in prange(gold_ptr.shape[0] - 1):
        lo, hi = gold_ptr[q], gold_ptr[q + 1]
        out[q] = query_language_preference(gold_score[lo:hi], gold_lang[lo:hi], q_lang[q])


# ------------------------------------------------------------------------------- public functions


def mean_rank_correlation(scores, group_ptr):
    """Per row of ``scores`` (float32 (B, N), whole groups ``group_ptr``), its mean Spearman correlation
    with the other rows of its group (:func:`_group_rank_correlation`)."""
    out = np.full(scores.shape[0], np.nan)
    _rank_correlation_block(np.ascontiguousarray(scores, dtype=np.float32),
                            np.ascontiguousarray(group_ptr, dtype=np.int64), out)
    return out


def top_measures(scores, c_lang, pivot, k, target_col=None, mlrs_k=0):
    """(Pivot@k, MLRS@K) per row of ``scores`` (float32 (B, N)); ``pivot`` a candidate language id
    (-1: NaN), ``target_col`` (N,) the column of each candidate's version in the target language
    (-1: none), ``mlrs_k`` 0: no MLRS (NaN)."""
    b, n = scores.shape
    share, shift = np.full(b, np.nan), np.full(b, np.nan)
    target = np.full(n, -1, np.int64) if target_col is None else np.ascontiguousarray(target_col, dtype=np.int64)
    _top_block(np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(c_lang, dtype=np.int32),
               int(pivot), int(k), target, int(mlrs_k), share, shift)
    return share, shift


def query_language_preferences(gold_score, gold_lang, gold_ptr, q_lang):
    """QLP per query (:func:`query_language_preference`): golds of query q are ``gold_ptr[q]:gold_ptr[q+1]``."""
    out = np.full(len(gold_ptr) - 1, np.nan)
    _preference_block(np.ascontiguousarray(gold_score, dtype=np.float32), np.ascontiguousarray(gold_lang, np.int32),
                      np.ascontiguousarray(gold_ptr, dtype=np.int64), np.ascontiguousarray(q_lang, dtype=np.int64),
                      out)
    return out
