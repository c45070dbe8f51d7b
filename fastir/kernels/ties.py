"""Ranks of a ranked run's golds under a tie mode, and the expected-value finalisers (Numba).

A ranked run lists, per query, documents with scores; the lines of a query come in **trec_eval
order**: score descending, then document id descending (bytewise), the order trec_eval and
pytrec_eval rank in. A candidate set S is one document language, or every document (pooled). Each
judged-positive document ("gold", grade >= 1) of a query gets a rank in each set it belongs to:

    above_S(d) = |{c in S : score(c) > score(d)}|      tied_S(d) = |{c in S : score(c) = score(d)}|

* ``pessimistic``: rank = above + tied (ties count against the gold: fastir's default, as for embeddings);
* ``optimistic``: rank = above + 1 + the golds of S tied with d and ranked before it when the tied
  golds come first, by grade descending (the best order of the tie);
* ``trec_eval``: rank = position of d in S in trec_eval order;
* ``expected``: (above, tied) go to the expected finalisers below: the mean of the metric over every
  order of each group of tied documents, in closed form (McSherry & Najork, ECIR 2008, "Computing
  information retrieval performance measures efficiently in the presence of tied scores").

A gold the run did not retrieve gets rank :data:`~fastir.kernels.ranking.UNRANKED` (and above =
UNRANKED, tied = 1): it counts in |R| and lies beyond every cutoff. Array-in/array-out, no IO.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float64, int32, int64, njit, prange, void

from fastir.kernels.lazy import lazy_njit

PESSIMISTIC, OPTIMISTIC, TREC_EVAL, EXPECTED = range(4)
MODES = {"pessimistic": PESSIMISTIC, "optimistic": OPTIMISTIC, "trec_eval": TREC_EVAL, "expected": EXPECTED}
NOT_IN_SET = -1  # as fastir.kernels.ranking.NOT_IN_SET (a copy: Numba's cache tracks one file)
UNRANKED = (np.int64(1) << 62) - 1  # as fastir.kernels.ranking.UNRANKED


# ------------------------------------------------------------------------------------ ranks of a run


@njit(cache=True, nogil=True)
def _query_ranks(b, q_ptr, score, lang, gold, gold_ptr, gold_lang, gold_grade, n_langs, mode, ranks, tied,
                 ndocs):
    n_sets = n_langs + 1
    for j in range(gold_ptr[b], gold_ptr[b + 1]):
        for s in range(n_sets):
            ranks[j, s] = NOT_IN_SET
            tied[j, s] = 0
        for s in (np.int64(gold_lang[j]), np.int64(n_langs)):
            ranks[j, s] = UNRANKED
            tied[j, s] = 1
    before = np.zeros(n_sets, dtype=np.int64)
    count = np.zeros(n_sets, dtype=np.int64)
    i = q_ptr[b]
    end = q_ptr[b + 1]
    while i < end:
        e = i + 1
        while e < end and score[e] == score[i]:
            e += 1
        count[:] = 0
        for t in range(i, e):  # the tie group i:e, in trec_eval order
            if lang[t] < n_langs:
                count[lang[t]] += 1
            count[n_langs] += 1
            j = gold[t]
            if j >= 0 and mode == TREC_EVAL:
                ranks[j, gold_lang[j]] = before[gold_lang[j]] + count[gold_lang[j]]
                ranks[j, n_langs] = before[n_langs] + count[n_langs]
        for t in range(i, e):
            j = gold[t]
            if j < 0:
                continue
            for s in (np.int64(gold_lang[j]), np.int64(n_langs)):
                if mode == PESSIMISTIC:
                    ranks[j, s] = before[s] + count[s]
                elif mode == EXPECTED:
                    ranks[j, s] = before[s]
                    tied[j, s] = count[s]
                elif mode == OPTIMISTIC:
                    r = before[s] + 1
                    for u in range(i, e):  # the tied golds of s placed before j: higher grade, or equal and earlier
                        k = gold[u]
                        if k >= 0 and k != j and (s == n_langs or gold_lang[k] == s):
                            if gold_grade[k] > gold_grade[j] or (gold_grade[k] == gold_grade[j] and u < t):
                                r += 1
                    ranks[j, s] = r
        for s in range(n_sets):
            before[s] += count[s]
        i = e
    for s in range(n_sets):
        ndocs[b, s] = before[s]


@lazy_njit(
    void(int64[::1], float64[::1], int32[::1], int64[::1], int64[::1], int32[::1], int64[::1], int64, int64,
         int64[:, ::1], int64[:, ::1], int64[:, ::1]),
    cache=True,
    parallel=True,
)
def _ranks_block(q_ptr, score, lang, gold, gold_ptr, gold_lang, gold_grade, n_langs, mode, ranks, tied, ndocs):
    for b in prange(q_ptr.shape[0] - 1):
        _query_ranks(b, q_ptr, score, lang, gold, gold_ptr, gold_lang, gold_grade, n_langs, mode, ranks, tied,
                     ndocs)


def run_ranks(q_ptr, score, lang, gold, gold_ptr, gold_lang, gold_grade, n_langs, mode):
    """Ranks of every gold in every candidate set, for a block of queries of a ranked run.

    Lines of query b are ``q_ptr[b]:q_ptr[b+1]``, in trec_eval order (score descending, doc id
    descending); ``lang`` is each line's document language (0..n_langs-1, or n_langs: a language of
    no gold, counted in the pooled set only); ``gold`` is the line's gold row (-1: not a gold); the
    golds of query b are rows ``gold_ptr[b]:gold_ptr[b+1]`` with ``gold_lang`` and ``gold_grade``.
    ``mode``: a :data:`MODES` value. Returns (ranks, tied, ndocs): int64 (n_golds, n_langs + 1) ranks
    (expected mode: ``above``) and tie sizes (module docstring), and (B, n_langs + 1) documents per set.
    """
    n_golds = int(gold_ptr[-1])
    ranks = np.empty((n_golds, n_langs + 1), dtype=np.int64)
    tied = np.empty((n_golds, n_langs + 1), dtype=np.int64)
    ndocs = np.zeros((len(q_ptr) - 1, n_langs + 1), dtype=np.int64)
    c = np.ascontiguousarray
    _ranks_block(c(q_ptr, np.int64), c(score, np.float64), c(lang, np.int32), c(gold, np.int64),
                 c(gold_ptr, np.int64), c(gold_lang, np.int32), c(gold_grade, np.int64), int(n_langs), int(mode),
                 ranks, tied, ndocs)
    return ranks, tied, ndocs


@lazy_njit(int64(int64[::1], float64[::1], int64[::1]), cache=True)
def _rank_conflict(q_ptr, score, rank):
    for b in range(q_ptr.shape[0] - 1):
        most = np.iinfo(np.int64).min  # the largest rank of the lines scoring higher than the current tie
        i = q_ptr[b]
        while i < q_ptr[b + 1]:
            e = i + 1
            while e < q_ptr[b + 1] and score[e] == score[i]:
                e += 1
            for t in range(i, e):
                if rank[t] < most:
                    return t
            for t in range(i, e):
                most = max(most, rank[t])
            i = e
    return -1


def rank_conflict(q_ptr, score, rank) -> int:
    """First line (in trec_eval order, queries ``q_ptr``) whose rank is smaller than the rank of a line
    scoring higher in its query — a rank contradicting the scores — or -1."""
    c = np.ascontiguousarray
    return int(_rank_conflict(c(q_ptr, np.int64), c(score, np.float64), c(rank, np.int64)))


# ------------------------------------------------------------------------------- expected finalisers
# Per-query expected values over every order of each tie group, from each gold's ``above`` (documents
# of S scoring higher) and ``tied`` (documents of S with its score, itself included; golds of one tie
# group share both) and ``grade``; relevant = grade >= threshold, R = the relevant golds, NaN when R
# is empty. A tie group at (a, n) holds positions a+1..a+n, each equally likely for each of its
# documents. Signature float64(above int64[::1], tied int64[::1], grade int64[::1], threshold, cutoff).


@njit(cache=True, nogil=True, inline="always")
def _group_relevant(above, grade, threshold, a):
    """Relevant golds in the tie group starting after ``a`` documents."""
    r = 0
    for i in range(above.shape[0]):
        if above[i] == a and grade[i] >= threshold:
            r += 1
    return r


@njit(cache=True, nogil=True, inline="always")
def _num_relevant(grade, threshold):
    n = 0
    for i in range(grade.shape[0]):
        if grade[i] >= threshold:
            n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _first_of_group(above, grade, threshold, i):
    """Whether relevant gold i is the first relevant gold of its tie group in ``above``'s order."""
    for j in range(i):
        if above[j] == above[i] and grade[j] >= threshold:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def expected_average_precision(above, tied, grade, threshold, cutoff):
    """E[AP] = (1/|R|) sum over tie groups (a, n) with r relevant golds and h relevant golds above::

        sum_{p=1}^{n} (r/n) (h + 1 + (p-1)(r-1)/(n-1)) / (a + p)

    (slot p holds a relevant gold with probability r/n; given that, the relevant golds before it in
    the group are hypergeometric with mean (p-1)(r-1)/(n-1)); a group beyond the run adds 0."""
    n_rel = _num_relevant(grade, threshold)
    if n_rel == 0:
        return np.nan
    total = 0.0
    for i in range(above.shape[0]):
        if grade[i] < threshold or above[i] >= UNRANKED or not _first_of_group(above, grade, threshold, i):
            continue
        a, n = above[i], tied[i]
        r = _group_relevant(above, grade, threshold, a)
        h = 0
        for j in range(above.shape[0]):
            if grade[j] >= threshold and above[j] < a:
                h += 1
        share = (r - 1) / (n - 1) if n > 1 else 0.0
        for p in range(1, n + 1):
            total += (r / n) * (h + 1 + (p - 1) * share) / (a + p)
    return total / n_rel


@njit(cache=True, nogil=True, inline="always")
def expected_reciprocal_rank(above, tied, grade, threshold, cutoff):
    """E[RR] = sum_{j=1}^{n-r+1} P(first relevant at slot j) / (a + j), over the first tie group
    (a, n) holding relevant golds (r of them): P(j) = C(n-j, r-1) / C(n, r)."""
    best = UNRANKED
    for i in range(above.shape[0]):
        if grade[i] >= threshold:
            best = min(best, above[i])
    if _num_relevant(grade, threshold) == 0:
        return np.nan
    if best >= UNRANKED:
        return 0.0
    n = 0
    for i in range(above.shape[0]):
        if above[i] == best:
            n = tied[i]
    r = _group_relevant(above, grade, threshold, best)
    prob = r / n
    total = 0.0
    for j in range(1, n - r + 2):
        total += prob / (best + j)
        if n - j > 0:
            prob *= (n - j - r + 1) / (n - j)
    return total


@njit(cache=True, nogil=True, inline="always")
def expected_recall_at(above, tied, grade, threshold, cutoff):
    """E[Recall@k] = (1/|R|) sum_{d in R} clip((k - a(d)) / n(d), 0, 1)."""
    n_rel = _num_relevant(grade, threshold)
    if n_rel == 0:
        return np.nan
    found = 0.0
    for i in range(above.shape[0]):
        if grade[i] >= threshold and above[i] < cutoff:
            found += min(1.0, (cutoff - above[i]) / tied[i])
    return found / n_rel


@njit(cache=True, nogil=True, inline="always")
def expected_ndcg_at(above, tied, grade, threshold, cutoff):
    """E[nDCG@k] = E[DCG@k] / IDCG@k with E[DCG@k] = sum_{d in P} grade(d) (1/n) sum_{p=1}^{n}
    [a+p <= k] / log2(a + p + 1); IDCG@k and P (every gold of grade >= 1) as ``ndcg_at``."""
    if _num_relevant(grade, threshold) == 0:
        return np.nan
    n = _num_relevant(grade, 1)
    gains = np.empty(n, dtype=np.float64)
    dcg = 0.0
    j = 0
    for i in range(above.shape[0]):
        if grade[i] < 1:
            continue
        gains[j] = grade[i]
        j += 1
        a = above[i]
        if a >= cutoff:
            continue
        disc = 0.0
        for p in range(1, min(tied[i], cutoff - a) + 1):
            disc += 1.0 / np.log2(a + p + 1.0)
        dcg += grade[i] * disc / tied[i]
    gains = np.sort(gains)[::-1]
    ideal = 0.0
    for i in range(min(cutoff, n)):
        ideal += gains[i] / np.log2(i + 2.0)
    return dcg / ideal


@njit(cache=True, nogil=True, inline="always")
def expected_rank_distance(above, tied, grade, threshold, cutoff):
    """E[RD] = E[max rank] - E[min rank] over R (|R| >= 2, else NaN): with the first and last tie
    groups holding relevant golds (a1, n1, r1) and (a2, n2, r2), E[min] = a1 + (n1+1)/(r1+1) and
    E[max] = a2 + r2 (n2+1)/(r2+1) (order statistics of r slots drawn from n)."""
    if _num_relevant(grade, threshold) < 2:
        return np.nan
    lo, hi = UNRANKED, np.int64(-1)
    for i in range(above.shape[0]):
        if grade[i] >= threshold:
            lo = min(lo, above[i])
            hi = max(hi, above[i])
    n1, n2 = 1, 1
    for i in range(above.shape[0]):
        if above[i] == lo:
            n1 = tied[i]
        if above[i] == hi:
            n2 = tied[i]
    r1 = _group_relevant(above, grade, threshold, lo)
    r2 = _group_relevant(above, grade, threshold, hi)
    return float(hi - lo) + r2 * (n2 + 1.0) / (r2 + 1.0) - (n1 + 1.0) / (r1 + 1.0)


E_AP, E_RR, E_RECALL, E_NDCG, E_RANK_DISTANCE = range(5)
EXPECTED_FINALISERS = {"expected_average_precision": E_AP, "expected_reciprocal_rank": E_RR,
                       "expected_recall_at": E_RECALL, "expected_ndcg_at": E_NDCG,
                       "expected_rank_distance": E_RANK_DISTANCE}  # keys: the functions' names


@njit(cache=True, nogil=True, inline="always")
def expected(code, above, tied, grade, threshold, cutoff):
    """The value of expected finaliser ``code`` (an :data:`EXPECTED_FINALISERS` value); NaN if unknown."""
    if code == E_AP:
        return expected_average_precision(above, tied, grade, threshold, cutoff)
    if code == E_RR:
        return expected_reciprocal_rank(above, tied, grade, threshold, cutoff)
    if code == E_RECALL:
        return expected_recall_at(above, tied, grade, threshold, cutoff)
    if code == E_NDCG:
        return expected_ndcg_at(above, tied, grade, threshold, cutoff)
    if code == E_RANK_DISTANCE:
        return expected_rank_distance(above, tied, grade, threshold, cutoff)
    return np.nan


@njit(cache=True, nogil=True)
def _query_expected(b, gold_ptr, gold_grade, above, tied, codes, cutoffs, pooled_only, threshold, nrel, values):
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    n_sets = above.shape[1]
    a = np.empty(j1 - j0, dtype=np.int64)
    t = np.empty(j1 - j0, dtype=np.int64)
    grade = np.empty(j1 - j0, dtype=np.int64)
    for s in range(n_sets):
        n = 0
        for j in range(j0, j1):
            if above[j, s] == NOT_IN_SET:
                continue
            a[n] = above[j, s]
            t[n] = tied[j, s]
            grade[n] = gold_grade[j]
            n += 1
        n_relevant = _num_relevant(grade[:n], threshold)
        nrel[b, s] = n_relevant
        for i in range(codes.shape[0]):
            if n_relevant == 0 or codes[i] < 0 or (pooled_only[i] and s != n_sets - 1):
                values[b, s, i] = np.nan
            else:
                values[b, s, i] = expected(codes[i], a[:n], t[:n], grade[:n], threshold, cutoffs[i])


@lazy_njit(
    void(int64[::1], int64[::1], int64[:, ::1], int64[:, ::1], int64[::1], int64[::1], boolean[::1], int64,
         int32[:, ::1], float64[:, :, ::1]),
    cache=True,
    parallel=True,
)
def _expected_block(gold_ptr, gold_grade, above, tied, codes, cutoffs, pooled_only, threshold, nrel, values):
    for b in prange(gold_ptr.shape[0] - 1):
        _query_expected(b, gold_ptr, gold_grade, above, tied, codes, cutoffs, pooled_only, threshold, nrel, values)


def expected_metrics(gold_ptr, gold_grade, above, tied, program, threshold=1):
    """As :func:`fastir.kernels.ranking.metrics_from_ranks`, for the expected finalisers: ``program``
    = (codes of :data:`EXPECTED_FINALISERS`, cutoffs, pooled_only); ``above`` / ``tied`` from
    :func:`run_ranks` in ``expected`` mode. Returns (nrel int32 (B, n_sets), values float64 (B, n_sets, m))."""
    codes, cutoffs, pooled_only = (np.ascontiguousarray(x, dtype=d) for x, d in
                                   zip(program, (np.int64, np.int64, np.bool_)))
    n_queries, n_sets = len(gold_ptr) - 1, above.shape[1]
    nrel = np.zeros((n_queries, n_sets), dtype=np.int32)
    values = np.full((n_queries, n_sets, len(codes)), np.nan)
    _expected_block(np.ascontiguousarray(gold_ptr, dtype=np.int64), np.ascontiguousarray(gold_grade, dtype=np.int64),
                    np.ascontiguousarray(above, dtype=np.int64), np.ascontiguousarray(tied, dtype=np.int64),
                    codes, cutoffs, pooled_only, int(threshold), nrel, values)
    return nrel, values
