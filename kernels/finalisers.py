"""Per-query metric values from the ranks of a query's golds in one candidate set (Numba).

The counting kernel (:mod:`fastir.kernels.ranking`) yields, for one query q and one candidate set
S, every gold d of q inside S with its rank and its grade::

    rank(d)  = |{c in S : score(c) >= score(d)}|        ties count against the gold
    grade(d) = its qrels relevance (today every gold has grade 1)

A gold is relevant when grade(d) >= threshold; R = the relevant golds. A finaliser turns those
arrays into the metric's per-query value (NaN when R is empty), with the formula in its docstring.
Since rank is monotone in score, ``hits(d) = |{g in R : score(g) >= score(d)}| = |{g in R :
rank(g) <= rank(d)}|``: the ranks alone carry every rank-based metric, graded or binary.

Every finaliser has the signature ``float64(int64[::1] rank, int64[::1] grade, int64 threshold,
int64 cutoff)`` (cutoff unused by metrics without one) and an entry in :data:`FINALISERS`, whose
code :func:`finalise` dispatches on. The metric registry (``fastir.eval.metrics``) names them.
"""

from __future__ import annotations

import numpy as np
from numba import float64, int64, njit

_SIG = float64(int64[::1], int64[::1], int64, int64)
_NAN = np.nan


@njit(int64(int64[::1], int64), cache=True, nogil=True)
def _num_relevant(grade, threshold):
    n = 0
    for i in range(grade.shape[0]):
        if grade[i] >= threshold:
            n += 1
    return n


@njit(_SIG, cache=True, nogil=True)
def average_precision(rank, grade, threshold, cutoff):
    """AP = (1/|R|) sum_{d in R} hits(d) / rank(d)  (= sklearn average_precision_score, ties included)."""
    n = _num_relevant(grade, threshold)
    if n == 0:
        return _NAN
    total = 0.0
    for i in range(rank.shape[0]):
        if grade[i] < threshold:
            continue
        h = np.int64(0)
        for j in range(rank.shape[0]):
            if grade[j] >= threshold and rank[j] <= rank[i]:
                h += 1
        total += h / rank[i]
    return total / n


@njit(_SIG, cache=True, nogil=True)
def reciprocal_rank(rank, grade, threshold, cutoff):
    """RR = 1 / min_{d in R} rank(d)."""
    best = np.int64(1) << 62
    for i in range(rank.shape[0]):
        if grade[i] >= threshold:
            best = min(best, rank[i])
    return _NAN if best == np.int64(1) << 62 else 1.0 / best


@njit(_SIG, cache=True, nogil=True)
def recall_at(rank, grade, threshold, cutoff):
    """Recall@k = |{d in R : rank(d) <= k}| / |R|."""
    n = _num_relevant(grade, threshold)
    if n == 0:
        return _NAN
    found = 0
    for i in range(rank.shape[0]):
        if grade[i] >= threshold and rank[i] <= cutoff:
            found += 1
    return found / n


@njit(_SIG, cache=True, nogil=True)
def rank_distance(rank, grade, threshold, cutoff):
    """RD = max_{d in R} rank(d) - min_{d in R} rank(d), defined for |R| >= 2 (else NaN)."""
    n = 0
    lo = np.int64(1) << 62
    hi = np.int64(0)
    for i in range(rank.shape[0]):
        if grade[i] >= threshold:
            n += 1
            lo = min(lo, rank[i])
            hi = max(hi, rank[i])
    return _NAN if n < 2 else float(hi - lo)


# Finaliser codes, as the registry names them; finalise() dispatches on the code.
AP, RR, RECALL, RANK_DISTANCE = range(4)
FINALISERS = {"ap": AP, "rr": RR, "recall": RECALL, "rank_distance": RANK_DISTANCE}


@njit(float64(int64, int64[::1], int64[::1], int64, int64), cache=True, nogil=True)
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
    return _NAN
