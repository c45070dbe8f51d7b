"""Exact gold rank counts from approximate scores with a certified error bound (Numba).

For one query q (float32 row, the stored vector upcast exactly), candidates c (float32 rows), a
gold g of q, exact score s(c) = sum_i q_i c_i (a real number) and an approximate score A(c) with

    |A(c) - s(c)| <= B0 + w |A(c)|          (B0 per query row, w per engine: fastir.eval.precision)

every candidate c is counted for gold g exactly when s(c) >= s(g) (ties count against the gold),
in three tiers:

1. Gold scores: float64 dot of the float32 rows. Each product q_i c_i of two float32 values has at
   most 48 significant bits and lies in [2^-298, 2^256]: it is exact in float64. Summing d of
   them in any order (the loop is vectorised) rounds at most d - 1 times, so
   |s64 - s| <= gamma_{d-1} * sum |q_i c_i| with gamma_n = n u / (1 - n u), u = 2^-53. The
   kernel returns e = d * 2^-50 * S_abs (S_abs the computed sum of |q_i c_i|), which exceeds
   gamma_{d-1} / (1 - gamma_{d-1}) * S_abs, and the rounding of e itself, for d < 2^40.
   That gives each gold an interval [lo, hi] = [s64 - e, s64 + e] holding s(g).
2. The bound alone: with T_hi(g) the least A for which A - B0 - w|A| >= hi, and T_lo(g) the
   least A for which A + B0 + w|A| >= lo (closed forms in :func:`_thresholds`, rounded outwards
   to float32), a candidate with A >= T_hi is at or above the gold, one with A < T_lo is below;
   both are decided by vectorised float32 compares, as in :mod:`fastir.kernels.ranking`.
3. Undecided candidates (T_lo <= A < T_hi) are recomputed: first a float32 dot (vectorised, twice
   the lanes of float64) with |error| <= gamma_d ‖q‖ ‖c‖ + d 2^-149 (gamma_d = d 2^-24 / (1 - d
   2^-24): every product and sum rounds, in any order, gradual underflow adds at most 2^-150 per
   operation; used only where ‖q‖ ‖c‖ <= 2^100, so nothing overflows); where that interval overlaps
   the gold's, a float64 interval (tier 1); where that overlaps too, the sign of s(c) - s(g) is computed exactly: the 2d products q_i c_i and
   -q_i g_i are exact doubles, and Shewchuk's grow-expansion (``math.fsum``'s algorithm, two-sum
   with no rounding) keeps their sum as non-overlapping doubles whose largest non-zero one has
   the sign of the sum. A candidate that is the gold's own column, or bitwise equal to it, is a tie.

Counts are those of :func:`fastir.kernels.ranking.gold_rank_counts` on exact scores: ``cnt``
(candidates of each language at or above each gold), ``gcnt`` (golds likewise), plus ``undecided``
(candidate-gold pairs of each language that tier 2 left open and tier 3 decided).

Queries run in parallel, each over its whole row (column tiles sized to the cache were tried:
slower on XQuAD-R shapes, the undecided candidates of a query are few).
Kernels are array-in/array-out; no IO, no global thread settings.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, float64, int32, int64, njit, prange, types, void

CHUNK = 64  # candidates per vectorised count (see fastir.kernels.ranking.CHUNK)
EXPANSION = 64  # scratch doubles for the exact sum: products of float32 need at most ~12

_F32_ROWS = types.Array(float32, 2, "C", readonly=True)
_F32_ROW = types.Array(float32, 1, "C", readonly=True)
_DOT_FLAGS = {"reassoc", "contract"}  # lets LLVM vectorise; the bound holds for any summation order
_ERR_SCALE = 2.0 ** -50

# ------------------------------------------------------------------------------ exact arithmetic


@njit(types.UniTuple(float64, 2)(_F32_ROW, _F32_ROW), cache=True, nogil=True, fastmath=_DOT_FLAGS)
def _dot64(q, c):
    """(s64, e): float64 dot of two float32 rows and a bound e >= |s64 - exact| (module docstring)."""
    s = 0.0
    a = 0.0
    for i in range(q.shape[0]):
        p = np.float64(q[i]) * np.float64(c[i])
        s += p
        a += abs(p)
    return s, q.shape[0] * _ERR_SCALE * a


@njit(float32(_F32_ROW, _F32_ROW), cache=True, nogil=True, fastmath=_DOT_FLAGS)
def _dot32(q, c):
    """float32 dot of two float32 rows (|error| <= gamma_d ‖q‖ ‖c‖ + d 2^-149: module docstring)."""
    s = np.float32(0.0)
    for i in range(q.shape[0]):
        s += q[i] * c[i]
    return s


@njit(int64(_F32_ROW, _F32_ROW, _F32_ROW, float64[::1]), cache=True, nogil=True)
def _exact_sign(q, c, g, parts):
    """Sign (-1, 0, 1) of q.c - q.g, exactly: grow-expansion of the 2d exact float64 products."""
    same = True
    for i in range(q.shape[0]):
        if c[i] != g[i]:
            same = False
            break
    if same:
        return 0
    n = 0
    for i in range(2 * q.shape[0]):
        k = i >> 1
        x = np.float64(q[k]) * np.float64(c[k]) if (i & 1) == 0 else -(np.float64(q[k]) * np.float64(g[k]))
        m = 0
        for j in range(n):
            y = parts[j]
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)  # exact error of hi (Fast2Sum, |x| >= |y|)
            if lo != 0.0:
                parts[m] = lo
                m += 1
            x = hi
        parts[m] = x
        n = m + 1
    for j in range(n - 1, -1, -1):  # non-overlapping, increasing: the top non-zero part has the sign
        if parts[j] > 0.0:
            return 1
        if parts[j] < 0.0:
            return -1
    return 0


# ------------------------------------------------------------------------------ thresholds


@njit(types.UniTuple(float32, 2)(float64, float64, float64, float64), cache=True, nogil=True)
def _thresholds(lo, hi, b0, w):
    """(T_lo, T_hi) in float32: A < T_lo => A + b0 + w|A| < lo;  A >= T_hi => A - b0 - w|A| >= hi.

    From the two signs of A: T_hi = (hi + b0) / (1 - w) if hi + b0 >= 0 else (hi + b0) / (1 + w),
    T_lo = (lo - b0) / (1 + w) if lo - b0 >= 0 else (lo - b0) / (1 - w). The float64 values are
    widened by 2^-40 relative (more than their rounding) and rounded outwards to float32.
    """
    t_hi = hi + b0
    t_hi = t_hi / (1.0 - w) if t_hi >= 0.0 else t_hi / (1.0 + w)
    t_lo = lo - b0
    t_lo = t_lo / (1.0 + w) if t_lo >= 0.0 else t_lo / (1.0 - w)
    t_hi += abs(t_hi) * 2.0 ** -40
    t_lo -= abs(t_lo) * 2.0 ** -40
    f_hi = np.float32(t_hi)
    if np.float64(f_hi) < t_hi:
        f_hi = np.nextafter(f_hi, np.float32(np.inf))
    f_lo = np.float32(t_lo)
    if np.float64(f_lo) > t_lo:
        f_lo = np.nextafter(f_lo, np.float32(-np.inf))
    if not (t_hi == t_hi and t_lo == t_lo):  # NaN bound (non-finite approximation): nothing decided
        f_hi = np.float32(np.inf)
        f_lo = np.float32(-np.inf)
    return f_lo, f_hi


# A copy of kernels/ranking.py's counter on purpose: Numba's on-disk cache checks only the cached
# function's own file, so a kernel calling across files can keep a stale compiled callee.
@njit(int32(float32[::1], float32), cache=True, nogil=True, inline="always")
def _count_at_or_above(values, threshold):
    k = np.int32(0)
    for c in range(values.shape[0]):
        k += np.int32(values[c] >= threshold)
    return k


# ------------------------------------------------------------------------------ per-query kernels


@njit(
    void(int64, _F32_ROWS, _F32_ROWS, float64[::1], float64, int64[::1], int64[::1], int32[::1],
         float64[::1], float64[::1], int64[::1], float32[::1], float32[::1], int32[:, ::1]),
    cache=True,
    nogil=True,
)
def _golds_query(b, q, cand, b0, w, gold_ptr, gold_col, gold_lang, gs, ge, order, t_lo, t_hi, gcnt):
    """Exact enclosures of block row b's gold scores, their order by lower end, thresholds, gcnt."""
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    if j1 == j0:
        return
    lo = np.empty(j1 - j0)
    for j in range(j0, j1):
        gs[j], ge[j] = _dot64(q[b], cand[gold_col[j]])
        lo[j - j0] = gs[j] - ge[j]
    o = np.argsort(lo)
    for p in range(j1 - j0):
        j = j0 + o[p]
        order[j0 + p] = j
        t_lo[j], t_hi[j] = _thresholds(gs[j] - ge[j], gs[j] + ge[j], b0[b], w)
    parts = np.empty(EXPANSION)
    for i in range(j0, j1):
        for j in range(j0, j1):  # m is small
            if i == j or gs[j] - ge[j] > gs[i] + ge[i]:
                above = True
            elif gs[j] + ge[j] < gs[i] - ge[i]:
                above = False
            else:
                above = _exact_sign(q[b], cand[gold_col[j]], cand[gold_col[i]], parts) >= 0
            if above:
                gcnt[i, gold_lang[j]] += 1


@njit(
    void(int64, int64, int64, float32[:, ::1], _F32_ROWS, _F32_ROWS, float64[::1], float64[::1], int64[::1],
         int64[::1], int64[::1], float64[::1], float64[::1], int64[::1], float32[::1], float32[::1], int32[:, ::1],
         int32[:, ::1], int64[::1]),
    cache=True,
    nogil=True,
)
def _tile_query(b, c_start, c_end, approx, q, cand, q_norm, c_norm, lang_ptr, gold_ptr, gold_col, gs, ge, order,
                t_lo, t_hi, cnt, undecided, recomputed):
    """Add block row b's counts over candidate columns c_start:c_end (see the module docstring).

    One loop nest on purpose (over 60 lines): the tiers sit inside the per-candidate loop, where a
    helper call costs more than the work it would hide.
    """
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    if j1 == j0:
        return
    n_langs = lang_ptr.shape[0] - 1
    row = approx[b]
    qb = q[b]
    ex_s = np.empty(CHUNK)
    ex_e = np.empty(CHUNK)
    level = np.zeros(CHUNK, dtype=np.int8)  # enclosure held: 0 none, 1 float32, 2 float64
    parts = np.empty(EXPANSION)
    first = order[j0]
    d = qb.shape[0]
    # float32 recomputation bound per candidate: e32_scale * ‖c‖ + e32_tiny; skipped (level 1 not
    # used) where ‖q‖ ‖c‖ > 2^100 could overflow float32.
    nu = d * 2.0 ** -24
    e32_scale = nu / (1.0 - nu) * (1.0 + 2.0 ** -30) * q_norm[b]
    e32_tiny = d * 2.0 ** -148
    for lang in range(n_langs):
        c0 = max(lang_ptr[lang], c_start)
        end = min(lang_ptr[lang + 1], c_end)
        while c0 < end:
            c1 = min(c0 + CHUNK, end)
            chunk = row[c0:c1]
            k = _count_at_or_above(chunk, t_lo[first])  # candidates possibly at or above the lowest gold
            p = j0
            fresh = True
            while k != 0:
                j = order[p]
                sure = _count_at_or_above(chunk, t_hi[j])
                cnt[j, lang] += sure
                if k > sure:
                    if fresh:
                        level[:c1 - c0] = 0
                        fresh = False
                    g = cand[gold_col[j]]
                    for i in range(c1 - c0):
                        a = chunk[i]
                        if a < t_lo[j] or a >= t_hi[j]:
                            continue
                        c = c0 + i
                        if c == gold_col[j]:
                            cnt[j, lang] += 1
                            continue
                        undecided[j, lang] += 1
                        if level[i] == 0:
                            recomputed[b] += 1
                            if q_norm[b] * c_norm[c] <= 2.0 ** 100:
                                ex_s[i] = _dot32(qb, cand[c])
                                ex_e[i] = e32_scale * c_norm[c] + e32_tiny
                                level[i] = 1
                            else:
                                ex_s[i], ex_e[i] = _dot64(qb, cand[c])
                                level[i] = 2
                        # Enclosures first, each tier only where the previous one overlaps the gold's
                        # (tests written out: a call here costs more than the test).
                        while True:
                            if ex_s[i] - ex_e[i] > gs[j] + ge[j]:
                                above = True
                            elif ex_s[i] + ex_e[i] < gs[j] - ge[j]:
                                above = False
                            elif level[i] == 1:
                                ex_s[i], ex_e[i] = _dot64(qb, cand[c])
                                level[i] = 2
                                continue
                            else:
                                above = _exact_sign(qb, cand[c], g, parts) >= 0
                            break
                        if above:
                            cnt[j, lang] += 1
                p += 1
                if p == j1:
                    break
                k = _count_at_or_above(chunk, t_lo[order[p]])  # t_lo ascending with p: counts only shrink
            c0 = c1


# --------------------------------------------------------------------------------- prange wrappers


@njit(
    void(_F32_ROWS, _F32_ROWS, float64[::1], float64, int64[::1], int64[::1], int32[::1], float64[::1],
         float64[::1], int64[::1], float32[::1], float32[::1], int32[:, ::1]),
    cache=True,
    parallel=True,
)
def _golds_block(q, cand, b0, w, gold_ptr, gold_col, gold_lang, gs, ge, order, t_lo, t_hi, gcnt):
    for b in prange(q.shape[0]):
        _golds_query(b, q, cand, b0, w, gold_ptr, gold_col, gold_lang, gs, ge, order, t_lo, t_hi, gcnt)


@njit(
    void(int64, int64, float32[:, ::1], _F32_ROWS, _F32_ROWS, float64[::1], float64[::1], int64[::1], int64[::1],
         int64[::1], float64[::1], float64[::1], int64[::1], float32[::1], float32[::1], int32[:, ::1], int32[:, ::1],
         int64[::1]),
    cache=True,
    parallel=True,
)
def _tile_block(c_start, c_end, approx, q, cand, q_norm, c_norm, lang_ptr, gold_ptr, gold_col, gs, ge, order,
                t_lo, t_hi, cnt, undecided, recomputed):
    for b in prange(approx.shape[0]):
        _tile_query(b, c_start, c_end, approx, q, cand, q_norm, c_norm, lang_ptr, gold_ptr, gold_col, gs, ge,
                    order, t_lo, t_hi, cnt, undecided, recomputed)


# ------------------------------------------------------------------------------- public functions


def certified_counts(approx, bound, w, q, cand, lang_ptr, gold_ptr, gold_col, gold_lang, q_norm=None, c_norm=None):
    """Exact ``(cnt, gcnt, undecided, recomputed)`` of one block from approximate scores.

    ``approx`` (B, N) float32: approximate scores, columns grouped by language (language L owns
    columns ``lang_ptr[L]:lang_ptr[L+1]``); ``bound`` (B,) float64 and ``w`` (float) such that
    ``|approx[b, c] - q[b].cand[c]| <= bound[b] + w * |approx[b, c]|`` for every pair (NaN/inf
    approximations are allowed: nothing is decided by them); ``q`` (B, d) and ``cand`` (N, d)
    float32: the stored vectors, ``cand`` in column order; golds of row b are columns
    ``gold_col[gold_ptr[b]:gold_ptr[b+1]]`` with languages ``gold_lang``.

    With s(c) = q[b].cand[c] exactly: ``cnt[j, L] = |{c : lang(c) = L, s(c) >= s(gold j)}|``,
    ``gcnt[j, L]`` the same over the golds of row b (int32, (n_golds, n_langs)), ``undecided[j,
    L]`` the pairs (c, gold j) of language L that the bound left open (int32), ``recomputed[b]``
    the candidates of row b whose score was recomputed (int64, (B,)). ``q_norm`` / ``c_norm``:
    upper bounds on the rows' Euclidean norms (computed here when not given).
    """
    approx = np.ascontiguousarray(approx, dtype=np.float32)
    n_rows, n_cols = approx.shape
    n_langs = len(lang_ptr) - 1
    gold_ptr = np.ascontiguousarray(gold_ptr, dtype=np.int64)
    gold_col = np.ascontiguousarray(gold_col, dtype=np.int64)
    q = np.ascontiguousarray(q, dtype=np.float32)
    cand = np.ascontiguousarray(cand, dtype=np.float32)
    n_golds = len(gold_col)
    gs, ge = np.empty(n_golds), np.empty(n_golds)
    order = np.empty(n_golds, dtype=np.int64)
    t_lo, t_hi = np.empty(n_golds, np.float32), np.empty(n_golds, np.float32)
    cnt = np.zeros((n_golds, n_langs), dtype=np.int32)
    gcnt = np.zeros((n_golds, n_langs), dtype=np.int32)
    undecided = np.zeros((n_golds, n_langs), dtype=np.int32)
    recomputed = np.zeros(n_rows, dtype=np.int64)
    _golds_block(q, cand, np.ascontiguousarray(bound, dtype=np.float64), float(w), gold_ptr, gold_col,
                 np.ascontiguousarray(gold_lang, dtype=np.int32), gs, ge, order, t_lo, t_hi, gcnt)
    q_norm = row_norms(q) if q_norm is None else np.ascontiguousarray(q_norm, dtype=np.float64)
    c_norm = row_norms(cand) if c_norm is None else np.ascontiguousarray(c_norm, dtype=np.float64)
    _tile_block(0, n_cols, approx, q, cand, q_norm, c_norm, np.ascontiguousarray(lang_ptr, dtype=np.int64),
                gold_ptr, gold_col, gs, ge, order, t_lo, t_hi, cnt, undecided, recomputed)
    return cnt, gcnt, undecided, recomputed


def row_norms(x) -> np.ndarray:
    """Euclidean norms of float32 rows in float64, widened by 2^-30 relative (an upper bound for d < 2^22)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", x, x)) * (1.0 + 2.0 ** -30)


def exact_dot_sign(q, c, g) -> int:
    """Sign of q.c - q.g computed exactly (float32 rows; see the module docstring, tier 3)."""
    return int(_exact_sign(np.ascontiguousarray(q, np.float32), np.ascontiguousarray(c, np.float32),
                           np.ascontiguousarray(g, np.float32), np.empty(EXPANSION)))


def dot64(q, c) -> tuple[float, float]:
    """(float64 dot of two float32 rows, bound on its error from the exact dot)."""
    return _dot64(np.ascontiguousarray(q, np.float32), np.ascontiguousarray(c, np.float32))
