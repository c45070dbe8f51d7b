"""Language-bias measures of the top k of the pooled ranking (Numba): same-language share, language
exposure and its Jensen-Shannon divergence from a target, and PEER.

The metrics are defined in docs/score.md; each finaliser below carries the formula it computes.
For a query q, the pooled ranking orders every candidate by score descending, **ties broken by
candidate row ascending** (the order of the run's candidates table): a strict order, so the top k
is one list. With N candidates, top_k(q) = its first n = min(k, N) candidates, at positions
i = 1..n; lang(c) is a candidate's language among the L candidate languages of the run and
R_q = the relevant candidates of q (grade >= the relevance threshold; |R_q| >= 1 where scored).

One scan of a query's score row keeps a bounded heap of the best ``kmax`` (the largest cutoff
asked), exactly as :mod:`fastir.kernels.topk` does for TREC export but keyed on (score, candidate
row); every cutoff is a prefix of it. The finalisers take the languages and relevance of that
prefix and the languages and positions of R_q.

Kernels are array-in/array-out: a private per-query ``@njit`` function and a ``prange`` wrapper
(declared signature, compiled at its first call: :mod:`fastir.kernels.lazy`; the helpers are typed
by it) over the queries of a block, under thin public functions. No IO, no global thread settings. The
heap is a copy of :mod:`fastir.kernels.topk`'s with a different key: Numba's cache tracks only a
cached function's own file, so sharing it would leave these kernels stale when that file changes.

A ranked run (``fastir score-run``) has no score row: each query's pooled list comes ordered, and
:func:`ranked_bias_block` gives its first n lines to the same finalisers. It lives here, past the
usual ~400 lines, for the same reason: a kernel in another file calling these finalisers would
keep stale code in Numba's cache when they change.
"""

from __future__ import annotations

import math

import numpy as np
from numba import boolean, float32, float64, int32, int64, njit, prange, void

from fastir.kernels.lazy import lazy_njit

# ------------------------------------------------------------------------------------ top k


@njit(cache=True, nogil=True, inline="always")
def _worse(v1, r1, v2, r2):
    # Ranked after: lower score, or an equal score and a larger candidate row.
    return v1 < v2 or (v1 == v2 and r1 > r2)


@njit(cache=True, nogil=True)
def _sift_down(vals, rows, cols, size, v, r, c):
    """Put (v, r, c) at the root of the min-heap vals[:size] (root = ranked last) and sift down."""
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and _worse(vals[right], rows[right], vals[left], rows[left]):
            child = right
        if _worse(vals[child], rows[child], v, r):
            vals[pos] = vals[child]
            rows[pos] = rows[child]
            cols[pos] = cols[child]
            pos = child
        else:
            break
    vals[pos] = v
    rows[pos] = r
    cols[pos] = c


@njit(cache=True, nogil=True)
def _sift_up(vals, rows, cols, size, v, r, c):
    """Append (v, r, c) at position ``size`` of the min-heap and sift up."""
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if _worse(v, r, vals[parent], rows[parent]):
            vals[pos] = vals[parent]
            rows[pos] = rows[parent]
            cols[pos] = cols[parent]
            pos = parent
        else:
            break
    vals[pos] = v
    rows[pos] = r
    cols[pos] = c


# Candidates per vectorised pre-check: once the heap is full, a chunk with no score >= the root's
# is skipped after one SIMD compare per candidate (most chunks), as the ranking kernel's counts.
CHUNK = 64


@njit(cache=True, nogil=True, inline="always")
def _count_at_or_above(values, threshold):
    # Indexed from 0 over a slice so that LLVM vectorises it (see fastir.kernels.ranking).
    n = np.int32(0)
    for c in range(values.shape[0]):
        n += np.int32(values[c] >= threshold)
    return n


@njit(cache=True, nogil=True)
def _top_columns(row, col_row, top_col):
    """Fill ``top_col`` with the best len(top_col) columns of ``row``, best first; returns how many."""
    k = top_col.shape[0]
    vals = np.empty(k, dtype=np.float32)
    rows = np.empty(k, dtype=np.int64)
    size = 0
    n_cols = row.shape[0]
    c0 = 0
    while c0 < n_cols:
        c1 = min(c0 + CHUNK, n_cols)
        if size == k and _count_at_or_above(row[c0:c1], vals[0]) == 0:
            c0 = c1  # nothing here ranks before the root
            continue
        for c in range(c0, c1):
            v = row[c]
            r = col_row[c]
            if size < k:
                _sift_up(vals, rows, top_col, size, v, r, c)
                size += 1
            elif _worse(vals[0], rows[0], v, r):
                _sift_down(vals, rows, top_col, k, v, r, c)
        c0 = c1
    for end in range(size - 1, 0, -1):  # heap sort: the worst left moves to the end
        v, r, c = vals[end], rows[end], top_col[end]
        vals[end], rows[end], top_col[end] = vals[0], rows[0], top_col[0]
        _sift_down(vals, rows, top_col, end, v, r, c)
    return size


# ------------------------------------------------------------------------------ chi-squared tail


@njit(cache=True, nogil=True)
def chi2_sf(x, df):
    """P(X >= x) for X ~ chi-squared with integer ``df`` >= 1 (= scipy.stats.chi2.sf), NaN for NaN x.

    Closed forms of the regularised upper incomplete gamma Q(df/2, x/2), y = x/2:
    df = 2m: Q = sum_{j<m} e^-y y^j / j!;  df = 2m + 1: Q = erfc(sqrt y) + sum_{j<m} e^-y y^(j+1/2) / Gamma(j + 3/2).
    """
    if np.isnan(x):
        return np.nan
    if x <= 0.0:
        return 1.0
    y = 0.5 * x
    ly = math.log(y)
    m = df // 2
    if df % 2 == 0:
        total = 0.0
        for j in range(m):
            total += math.exp(-y + j * ly - math.lgamma(j + 1.0))
    else:
        total = math.erfc(math.sqrt(y))
        for j in range(m):
            total += math.exp(-y + (j + 0.5) * ly - math.lgamma(j + 1.5))
    return min(total, 1.0)


@njit(cache=True, nogil=True)
def kruskal_p(lang, value, n_langs):
    """p-value of PEER's Kruskal-Wallis test of ``value`` grouped by ``lang`` (hltcoe/peer_measure).

    NaN values are relevant items outside the top k. With N values, U of them NaN: U = N (or N = 0)
    -> 1; each NaN becomes u = (2N + U + 1) / 2 (the reference's formula); fewer than 2 non-empty
    groups -> 1; else H = (N - 1) sum_g n_g (mean_g - mean)^2 / sum_i (v_i - mean)^2 (the raw
    positions as data, no re-ranking, no tie correction) and p = chi2_sf(H, groups - 1). When every
    v_i is equal (one relevant item in the top k at position u, the others outside), H is 0/0 and
    the reference returns NaN; fastir returns 1 (equal values: no sign of unequal expected rank),
    so that every scored query has a value.
    """
    n = value.shape[0]
    n_nan = 0
    for i in range(n):
        if np.isnan(value[i]):
            n_nan += 1
    if n_nan == n:
        return 1.0
    unretrieved = (2.0 * n + n_nan + 1.0) / 2.0
    count = np.zeros(n_langs, dtype=np.int64)
    total = np.zeros(n_langs, dtype=np.float64)
    v = np.empty(n, dtype=np.float64)
    for i in range(n):
        v[i] = unretrieved if np.isnan(value[i]) else value[i]
        count[lang[i]] += 1
        total[lang[i]] += v[i]
    groups = 0
    for g in range(n_langs):
        if count[g] > 0:
            groups += 1
    if groups < 2:
        return 1.0
    mean = v.sum() / n
    ssg = 0.0
    for g in range(n_langs):
        if count[g] > 0:
            ssg += count[g] * (total[g] / count[g] - mean) ** 2
    ssa = 0.0
    for i in range(n):
        ssa += (v[i] - mean) ** 2
    if ssa == 0.0:
        return 1.0
    return chi2_sf((n - 1) * ssg / ssa, groups - 1)


# ------------------------------------------------------------------------------------ finalisers
# Per-query values from the top n (= min(k, N)) of the pooled ranking: ``top_lang`` and ``top_rel``
# (relevant?) of positions 1..n, the language ``rel_lang`` and 0-based position ``rel_pos`` (>= n:
# outside the top n) of each member of R_q, the query's language as a candidate language ``q_lang``
# (-1 if no candidate has it) and L = ``n_langs``. One FINALISERS code each.

@njit(cache=True, nogil=True)
def same_language_share(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs):
    """SameLang@k = |{i <= n : lang(top_i) = lang(q)}| / n  (n = min(k, N))."""
    same = 0
    for i in range(top_lang.shape[0]):
        if top_lang[i] == q_lang:
            same += 1
    return same / top_lang.shape[0]


@njit(cache=True, nogil=True)
def exposure(top_lang, n_langs):
    """E_L = sum_{i <= n, lang(top_i) = L} 1 / log2(i + 1), normalised: e_L = E_L / sum_L' E_L'."""
    e = np.zeros(n_langs, dtype=np.float64)
    for i in range(top_lang.shape[0]):
        e[top_lang[i]] += 1.0 / math.log2(i + 2.0)
    return e / e.sum()


@njit(cache=True, nogil=True)
def js_divergence(p, t):
    """JSD(p, t) = 1/2 sum_L p_L log2(p_L / m_L) + 1/2 sum_L t_L log2(t_L / m_L), m = (p + t) / 2; in [0, 1]."""
    d = 0.0
    for i in range(p.shape[0]):
        m = 0.5 * (p[i] + t[i])
        if p[i] > 0.0:
            d += 0.5 * p[i] * math.log2(p[i] / m)
        if t[i] > 0.0:
            d += 0.5 * t[i] * math.log2(t[i] / m)
    return max(d, 0.0)


@njit(cache=True, nogil=True)
def exposure_jsd_uniform(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs):
    """JSD-U@k = JSD(e, u): exposure e over languages in the top n vs the uniform u_L = 1/L over the pool's L languages."""
    return js_divergence(exposure(top_lang, n_langs), np.full(n_langs, 1.0 / n_langs))


@njit(cache=True, nogil=True)
def exposure_jsd_relevant(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs):
    """JSD-R@k = JSD(e, r): exposure e in the top n vs r_L = |{d in R_q : lang(d) = L}| / |R_q|."""
    r = np.zeros(n_langs, dtype=np.float64)
    for j in range(rel_lang.shape[0]):
        r[rel_lang[j]] += 1.0
    return js_divergence(exposure(top_lang, n_langs), r / rel_lang.shape[0])


@njit(cache=True, nogil=True)
def _p_nonrelevant(top_lang, top_rel, n_langs):
    n_non = 0
    for i in range(top_lang.shape[0]):
        if not top_rel[i]:
            n_non += 1
    lang = np.empty(n_non, dtype=np.int32)
    pos = np.empty(n_non, dtype=np.float64)
    j = 0
    for i in range(top_lang.shape[0]):
        if not top_rel[i]:
            lang[j] = top_lang[i]
            pos[j] = i + 1.0
            j += 1
    return kruskal_p(lang, pos, n_langs)


@njit(cache=True, nogil=True)
def _p_relevant(rel_lang, rel_pos, n, n_langs):
    pos = np.empty(rel_pos.shape[0], dtype=np.float64)
    for j in range(rel_pos.shape[0]):
        pos[j] = rel_pos[j] + 1.0 if rel_pos[j] < n else np.nan
    return kruskal_p(rel_lang, pos, n_langs)


@njit(cache=True, nogil=True)
def peer(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs):
    """PEER@k = 1/2 p_0 + 1/2 p_1 (Yang et al., SIGIR 2024; hltcoe/peer_measure with weights {0: 1/2, 1: 1/2}
    on relevance binarised at the threshold).

    p_0 = kruskal_p of the positions i <= n of the non-relevant candidates, grouped by language;
    p_1 = kruskal_p of the relevant ones: position if in the top n, else NaN (unretrieved).
    """
    n = top_lang.shape[0]
    return 0.5 * _p_nonrelevant(top_lang, top_rel, n_langs) + 0.5 * _p_relevant(rel_lang, rel_pos, n, n_langs)


@njit(cache=True, nogil=True)
def peer_nonrelevant(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs):
    """PEER-N@k = p_0, PEER's non-relevant term alone (weights {0: 1}): equal expected rank of the
    non-relevant candidates of every language in the top n."""
    return _p_nonrelevant(top_lang, top_rel, n_langs)


# Finaliser codes, as the registry names them; finalise() dispatches on the code.
SAME_LANG, JSD_UNIFORM, JSD_RELEVANT, PEER, PEER_NONREL = range(5)
FINALISERS = {"same_language_share": SAME_LANG, "exposure_jsd_uniform": JSD_UNIFORM,
              "exposure_jsd_relevant": JSD_RELEVANT, "peer": PEER, "peer_nonrelevant": PEER_NONREL}


@njit(cache=True, nogil=True)
def finalise(code, top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs):
    """The value of finaliser ``code`` (a :data:`FINALISERS` value); NaN for an unknown code."""
    if code == SAME_LANG:
        return same_language_share(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs)
    if code == JSD_UNIFORM:
        return exposure_jsd_uniform(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs)
    if code == JSD_RELEVANT:
        return exposure_jsd_relevant(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs)
    if code == PEER:
        return peer(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs)
    if code == PEER_NONREL:
        return peer_nonrelevant(top_lang, top_rel, rel_lang, rel_pos, q_lang, n_langs)
    return np.nan


# ---------------------------------------------------------------------------- per query, per block


@njit(cache=True, nogil=True)
def _finalise_all(row, top_lang, top_rel, rel_lang, rel_pos, q_lang, codes, cutoffs, index, slots, values, shares):
    """Every metric of the program for one query, from its top (its first min(k, len) entries per cutoff k)."""
    n_langs = values.shape[1] - 1
    for m in range(codes.shape[0]):
        n = min(cutoffs[m], top_lang.shape[0])
        values[row, n_langs, index[m]] = finalise(codes[m], top_lang[:n], top_rel[:n], rel_lang, rel_pos, q_lang,
                                                  n_langs)
        if slots[m] >= 0:
            shares[row, slots[m]] = exposure(top_lang[:n], n_langs)


@njit(cache=True, nogil=True)
def _query_bias(scores, b, col_row, c_lang, gold_ptr, gold_col, gold_grade, row, q_lang, codes, cutoffs, index,
                slots, threshold, kmax, values, shares):
    top_col = np.empty(min(kmax, scores.shape[1]), dtype=np.int64)
    size = _top_columns(scores[b], col_row, top_col)
    top_lang = np.empty(size, dtype=np.int32)
    top_rel = np.zeros(size, dtype=np.bool_)
    for i in range(size):
        top_lang[i] = c_lang[top_col[i]]
    j0, j1 = gold_ptr[b], gold_ptr[b + 1]
    n_rel = 0
    for j in range(j0, j1):
        if gold_grade[j] >= threshold:
            n_rel += 1
    rel_lang = np.empty(n_rel, dtype=np.int32)
    rel_pos = np.full(n_rel, size, dtype=np.int64)  # size = outside the top kmax
    r = 0
    for j in range(j0, j1):
        if gold_grade[j] < threshold:
            continue
        rel_lang[r] = c_lang[gold_col[j]]
        for i in range(size):
            if top_col[i] == gold_col[j]:
                rel_pos[r] = i
                top_rel[i] = True
                break
        r += 1
    _finalise_all(row, top_lang, top_rel, rel_lang, rel_pos, q_lang, codes, cutoffs, index, slots, values, shares)


@lazy_njit(void(float32[:, ::1], int64[::1], int32[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1],
                boolean[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64, float64[:, :, ::1],
                float64[:, :, ::1]), cache=True, parallel=True)
def _bias_block(scores, col_row, c_lang, gold_ptr, gold_col, gold_grade, rows, q_lang, active, codes, cutoffs, index,
                slots, threshold, values, shares):
    kmax = cutoffs.max()
    for b in prange(scores.shape[0]):
        if active[b]:
            _query_bias(scores, b, col_row, c_lang, gold_ptr, gold_col, gold_grade, rows[b], q_lang[b], codes,
                        cutoffs, index, slots, threshold, kmax, values, shares)


# ------------------------------------------------------------------------------- a ranked run's lists
# A ranked run (fastir score-run) gives each query's pooled list already ordered: the top n is its
# first n = min(k, D) lines (D: the lines of the query), read by the same finalisers.


@njit(cache=True, nogil=True)
def _ranked_query_bias(b, q_ptr, lang, rel, gold_ptr, gold_lang, gold_pos, q_lang, codes, cutoffs, index, slots,
                       kmax, values, shares):
    i0 = q_ptr[b]
    size = min(kmax, q_ptr[b + 1] - i0)
    top_lang = lang[i0:i0 + size]
    top_rel = rel[i0:i0 + size]
    rel_lang = gold_lang[gold_ptr[b]:gold_ptr[b + 1]]
    rel_pos = gold_pos[gold_ptr[b]:gold_ptr[b + 1]]
    _finalise_all(b, top_lang, top_rel, rel_lang, rel_pos, q_lang, codes, cutoffs, index, slots, values, shares)


@lazy_njit(void(int64[::1], int32[::1], boolean[::1], int64[::1], int32[::1], int64[::1], int64[::1], boolean[::1],
                int64[::1], int64[::1], int64[::1], int64[::1], float64[:, :, ::1], float64[:, :, ::1]),
           cache=True, parallel=True)
def _ranked_bias_block(q_ptr, lang, rel, gold_ptr, gold_lang, gold_pos, q_lang, active, codes, cutoffs, index, slots,
                       values, shares):
    kmax = cutoffs.max()
    for b in prange(q_ptr.shape[0] - 1):
        if active[b]:
            _ranked_query_bias(b, q_ptr, lang, rel, gold_ptr, gold_lang, gold_pos, q_lang[b], codes, cutoffs, index,
                               slots, kmax, values, shares)


# ------------------------------------------------------------------------------- public functions


def bias_block(scores, col_row, c_lang, gold_ptr, gold_col, gold_grade, rows, q_lang, active, program, threshold,
               values, shares=None):
    """Language-bias metrics of the pooled set for the active rows of one block of score rows.

    ``scores`` (B, N) float32 C-contiguous: every candidate (any column order); ``col_row`` (N,) the
    candidate row of each column (the tie rule), ``c_lang`` (N,) its language id in [0, L); golds of
    block row b are columns ``gold_col[gold_ptr[b]:gold_ptr[b+1]]`` with grades ``gold_grade``
    (relevant: grade >= ``threshold``); ``q_lang[b]`` the query's language as a candidate language
    id (-1: none). ``program`` = (codes, cutoffs, index): metric m is finaliser ``codes[m]``
    (:data:`FINALISERS`) at cutoff ``cutoffs[m]``, written to ``values[rows[b], L, index[m]]`` for
    every b with ``active[b]`` (``values`` float64 (n_rows, L + 1, n_metrics)). ``program`` may carry
    a fourth array, ``slots``: where ``slots[m] >= 0``, the exposure distribution e of metric m's top
    n is also written to ``shares[rows[b], slots[m]]`` (``shares`` float64 (n_rows, n_slots, L)).
    """
    codes, cutoffs, index = (np.ascontiguousarray(a, dtype=np.int64) for a in program[:3])
    if len(codes) == 0:
        return
    slots = np.full(len(codes), -1, np.int64) if len(program) < 4 else np.ascontiguousarray(program[3], np.int64)
    if shares is None:
        shares = np.zeros((values.shape[0], 0, values.shape[1] - 1))
        slots = np.full(len(codes), -1, np.int64)
    _bias_block(np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(col_row, dtype=np.int64),
                np.ascontiguousarray(c_lang, dtype=np.int32), np.ascontiguousarray(gold_ptr, dtype=np.int64),
                np.ascontiguousarray(gold_col, dtype=np.int64), np.ascontiguousarray(gold_grade, dtype=np.int64),
                np.ascontiguousarray(rows, dtype=np.int64), np.ascontiguousarray(q_lang, dtype=np.int64),
                np.ascontiguousarray(active, dtype=np.bool_), codes, cutoffs, index, slots, int(threshold), values,
                shares)


def pooled_top_k(scores, col_row, k):
    """Columns of the best ``k`` of each score row (score descending, then ``col_row`` ascending), best
    first: (B, min(k, N)) int64 — the order every finaliser above reads."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    col_row = np.ascontiguousarray(col_row, dtype=np.int64)
    out = np.zeros((scores.shape[0], min(int(k), scores.shape[1])), dtype=np.int64)
    for b in range(scores.shape[0]):
        _top_columns(scores[b], col_row, out[b])
    return out


def ranked_bias_block(q_ptr, lang, rel, gold_ptr, gold_lang, gold_pos, q_lang, active, program, values, shares):
    """Language-bias metrics of the pooled lists of a ranked run, for the queries b with ``active[b]``.

    The lines of query b are ``q_ptr[b]:q_ptr[b+1]``, already in ranking order (the top n of a
    cutoff k is the first n = min(k, D_b) lines); ``lang`` int32 each line's document language in
    [0, L), ``rel`` whether it is relevant; the relevant documents of query b (the run's or not) are
    ``gold_ptr[b]:gold_ptr[b+1]`` with their languages ``gold_lang`` and 0-based positions
    ``gold_pos`` in the list (>= D_b: not retrieved); ``q_lang[b]`` the query's language as a
    candidate language id (-1: none). ``program``, ``values`` (B, L + 1, n_metrics) and ``shares``
    (B, n_slots, L) as for :func:`bias_block`: the same finalisers, given the run's order.
    """
    codes, cutoffs, index, slots = (np.ascontiguousarray(a, dtype=np.int64) for a in program)
    if len(codes) == 0:
        return
    c = np.ascontiguousarray
    _ranked_bias_block(c(q_ptr, np.int64), c(lang, np.int32), c(rel, np.bool_), c(gold_ptr, np.int64),
                       c(gold_lang, np.int32), c(gold_pos, np.int64), c(q_lang, np.int64), c(active, np.bool_), codes,
                       cutoffs, index, slots, values, shares)
