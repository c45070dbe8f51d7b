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
   to float32, or up to bfloat16 for bfloat16 A), a candidate with A >= T_hi is at or above the
   gold, one with A < T_lo is below; both are decided by vectorised compares in pass 1
   (:mod:`fastir.kernels.certified_scan`), which lists the undecided ones (T_lo <= A < T_hi).
3. Undecided candidates are recomputed: first a float32 dot (pass 2) (vectorised, twice
   the lanes of float64) with |error| <= gamma_d ‖q‖ ‖c‖ + d 2^-149 (gamma_d = d 2^-24 / (1 - d
   2^-24): every product and sum rounds, in any order, gradual underflow adds at most 2^-150 per
   operation; used only where ‖q‖ ‖c‖ <= 2^100, so nothing overflows); where that interval overlaps
   the gold's, a float64 interval (tier 1); where that overlaps too, the sign of s(c) - s(g) is
   computed exactly (pass 3 does both): the 2d products q_i c_i and
   -q_i g_i are exact doubles, and Shewchuk's grow-expansion (``math.fsum``'s algorithm, two-sum
   with no rounding) keeps their sum as non-overlapping doubles whose largest non-zero one has
   the sign of the sum. A candidate that is the gold's own column, or bitwise equal to it, is a tie.

Counts are those of :func:`fastir.kernels.ranking.gold_rank_counts` on exact scores: ``cnt``
(candidates of each language at or above each gold), ``gcnt`` (golds likewise), plus ``undecided``
(candidate-gold pairs of each language that tier 2 left open and tier 3 decided).

Pass 1 runs the queries in parallel, each over its whole row; passes 2 and 3 run in one parallel
region over groups of GROUP query rows: per group, pass 2 goes candidate-major (a candidate row is
read once per group, the group's query rows stay in L2), then pass 3 decides the group's rows (a
task owns its rows' counts). Kernels are array-in/array-out; no IO, no global thread settings.
The module is one file (over the usual ~400 lines) on purpose: Numba's on-disk cache checks only
a cached function's own file, so every kernel that calls the exact-arithmetic helpers lives
beside them.
"""

from __future__ import annotations

import numpy as np
from numba import float32, float64, int16, int32, int64, njit, prange, types, void

from fastir.kernels.lazy import lazy_njit
from fastir.kernels.certified_scan import _scan_block, bf16_ceiling_keys

EXPANSION = 64  # scratch doubles for the exact sum: products of float32 need at most ~12
GROUP = 512  # rows per parallel task of passes 2-3: 1.5 MiB of float32 rows at d = 768, in L2
LIST_SHARE = 8  # undecided-candidate list per row: 1/8 of the candidates (>= LIST_MIN); longer rows redone
LIST_MIN = 256
REDO_BYTES = 1 << 26  # memory for the full-length lists of rows whose short list overflowed

_F32_ROWS = types.Array(float32, 2, "C", readonly=True)
_DOT_FLAGS = {"reassoc", "contract"}  # lets LLVM vectorise; the bound holds for any summation order
_ERR_SCALE = 2.0 ** -50

# ------------------------------------------------------------------------------ exact arithmetic


@njit(cache=True, nogil=True, fastmath=_DOT_FLAGS)
def _dot64(q, c):
    """(s64, e): float64 dot of two float32 rows and a bound e >= |s64 - exact| (module docstring)."""
    s = 0.0
    a = 0.0
    for i in range(q.shape[0]):
        p = np.float64(q[i]) * np.float64(c[i])
        s += p
        a += abs(p)
    return s, q.shape[0] * _ERR_SCALE * a


@njit(cache=True, nogil=True, fastmath=_DOT_FLAGS)
def _dot32(q, c):
    """float32 dot of two float32 rows (|error| <= gamma_d ‖q‖ ‖c‖ + d 2^-149: module docstring)."""
    s = np.float32(0.0)
    for i in range(q.shape[0]):
        s += q[i] * c[i]
    return s


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _gold_row(cand, extra, col):
    """Gold ``col``'s stored vector: column ``col`` of the tile, or row ``-1 - col`` of ``extra`` (a gold
    outside the tile: a streamed tile holds only some candidates)."""
    return cand[col] if col >= 0 else extra[-1 - col]


# ------------------------------------------------------------------------------ thresholds


@njit(cache=True, nogil=True)
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


# ------------------------------------------------------------------------------ per-query kernels


@njit(cache=True, nogil=True)
def _golds_query(b, q, cand, extra, b0, w, gold_ptr, gold_col, gold_lang, gs, ge, order, t_lo, t_hi, gcnt):
    """Exact enclosures of block row b's gold scores, their order by lower end, thresholds, and gcnt
    (skipped when ``gcnt`` has no rows: the streaming pass needs only the candidate counts)."""
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    if j1 == j0:
        return
    lo = np.empty(j1 - j0)
    for j in range(j0, j1):
        gs[j], ge[j] = _dot64(q[b], _gold_row(cand, extra, gold_col[j]))
        lo[j - j0] = gs[j] - ge[j]
    o = np.argsort(lo)
    for p in range(j1 - j0):
        j = j0 + o[p]
        order[j0 + p] = j
        t_lo[j], t_hi[j] = _thresholds(gs[j] - ge[j], gs[j] + ge[j], b0[b], w)
    if gcnt.shape[0] == 0:
        return
    parts = np.empty(EXPANSION)
    for i in range(j0, j1):
        for j in range(j0, j1):  # m is small
            if i == j or gs[j] - ge[j] > gs[i] + ge[i]:
                above = True
            elif gs[j] + ge[j] < gs[i] - ge[i]:
                above = False
            else:
                above = _exact_sign(q[b], _gold_row(cand, extra, gold_col[j]), _gold_row(cand, extra, gold_col[i]),
                                    parts) >= 0
            if above:
                gcnt[i, gold_lang[j]] += 1


@njit(cache=True, nogil=True, fastmath=_DOT_FLAGS)
def _group_dots(rows, q, cand, q_norm, c_norm, und_col, und_n, offset, und_s):
    """Pass 2 over one group of rows: ``und_s[offset[r] + k]`` = float32 dot of row ``rows[r]`` and its
    k-th listed candidate (NaN where ‖q‖ ‖c‖ > 2^100 could overflow float32: pass 3 goes to float64).

    Candidate-major (a counting sort of the group's pairs by candidate): a candidate row is read
    once per group and dotted with every row of the group that listed it, four rows at a time
    (the candidate's slice is loaded once for four products), while the group's rows stay in L2.
    """
    n_cand = cand.shape[0]
    start = np.zeros(n_cand + 1, dtype=np.int64)
    for r in range(rows.shape[0]):
        for k in range(und_n[r]):
            start[und_col[r, k] + 1] += 1
    for c in range(n_cand):
        start[c + 1] += start[c]
    pair_row = np.empty(start[n_cand], dtype=np.int64)
    pair_at = np.empty(start[n_cand], dtype=np.int64)
    fill = start[:n_cand].copy()
    for r in range(rows.shape[0]):
        for k in range(und_n[r]):
            c = und_col[r, k]
            pair_row[fill[c]] = rows[r]
            pair_at[fill[c]] = offset[r] + k
            fill[c] += 1
    for c in range(n_cand):
        cv = cand[c]
        p = start[c]
        e = start[c + 1]
        while p + 4 <= e:
            q0, q1, q2, q3 = q[pair_row[p]], q[pair_row[p + 1]], q[pair_row[p + 2]], q[pair_row[p + 3]]
            s0 = s1 = s2 = s3 = np.float32(0.0)
            for i in range(cv.shape[0]):
                x = cv[i]
                s0 += q0[i] * x
                s1 += q1[i] * x
                s2 += q2[i] * x
                s3 += q3[i] * x
            und_s[pair_at[p]], und_s[pair_at[p + 1]], und_s[pair_at[p + 2]], und_s[pair_at[p + 3]] = s0, s1, s2, s3
            p += 4
        for p in range(p, e):
            und_s[pair_at[p]] = _dot32(q[pair_row[p]], cv)
        for p in range(start[c], e):  # the overflow guard: same float32 sums, NaN where they could overflow
            if not q_norm[pair_row[p]] * c_norm[c] <= 2.0 ** 100:
                und_s[pair_at[p]] = np.nan


@njit(cache=True, nogil=True)
def _decide_query(b, order, q, cand, extra, q_norm, c_norm, c_lang, gold_ptr, gold_col, gs, ge, t_lo, t_hi, listed_vals,
                  listed_cols, listed_s, cnt, undecided, recomputed):
    """Pass 3 over block row b: each listed candidate (``listed_cols``, approximations ``listed_vals``,
    float32 dots ``listed_s``) against each gold whose thresholds leave it open, decided on its float32
    enclosure, else a float64 one, else the exact sign (module docstring); a gold's own column is a
    tie (a gold outside the tile, ``gold_col`` < 0, has none). Counts into ``cnt``, ``undecided``,
    ``recomputed``. Gold by gold (ascending T_lo: the first
    above every listed approximation ends the loop), a branch-free pass picks the candidates it
    leaves open, so the unpredictable window test costs no branch."""
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    n = listed_cols.shape[0]
    if n == 0:
        return
    parts = np.empty(EXPANSION)
    qb = q[b]
    nu = qb.shape[0] * 2.0 ** -24
    e32_scale = nu / (1.0 - nu) * (1.0 + 2.0 ** -30) * q_norm[b]
    e32_tiny = qb.shape[0] * 2.0 ** -148
    s = np.empty(n)  # each candidate's enclosure [s - e, s + e]: float32 (level 1), float64 (2), none (0)
    e = np.empty(n)
    level = np.empty(n, np.int8)
    opened = np.zeros(n, np.bool_)
    at = np.empty(n, np.int64)
    for k in range(n):
        s[k] = listed_s[k]
        e[k] = e32_scale * c_norm[listed_cols[k]] + e32_tiny
        level[k] = 1 if s[k] == s[k] else 0  # NaN: the overflow guard
    top = listed_vals[0]
    for k in range(1, n):
        top = max(top, listed_vals[k])
    for p in range(j0, j1):
        j = order[p]
        lo = t_lo[j]
        hi = t_hi[j]
        if top < lo:  # T_lo ascending with p: no later gold holds a listed candidate either
            break
        m = 0
        for k in range(n):  # branch-free: the candidates that gold j's thresholds leave open
            at[m] = k
            m += (listed_vals[k] >= lo) & (listed_vals[k] < hi)
        gs_lo = gs[j] - ge[j]
        gs_hi = gs[j] + ge[j]
        for i in range(m):
            k = at[i]
            c = listed_cols[k]
            lang = c_lang[c]
            if c == gold_col[j]:
                cnt[j, lang] += 1
                continue
            undecided[j, lang] += 1
            opened[k] = True
            while True:  # tests written out: a call here costs more than the test
                if level[k] > 0 and s[k] - e[k] > gs_hi:
                    above = True
                elif level[k] > 0 and s[k] + e[k] < gs_lo:
                    above = False
                elif level[k] < 2:
                    s[k], e[k] = _dot64(qb, cand[c])
                    level[k] = 2
                    continue
                else:
                    above = _exact_sign(qb, cand[c], _gold_row(cand, extra, gold_col[j]), parts) >= 0
                break
            if above:
                cnt[j, lang] += 1
    recomputed[b] += opened.sum()


# --------------------------------------------------------------------------------- prange wrappers


@lazy_njit(
    void(_F32_ROWS, _F32_ROWS, _F32_ROWS, float64[::1], float64, int64[::1], int64[::1], int32[::1], float64[::1],
         float64[::1], int64[::1], float32[::1], float32[::1], int32[:, ::1]),
    cache=True,
    parallel=True,
)
def _golds_block(q, cand, extra, b0, w, gold_ptr, gold_col, gold_lang, gs, ge, order, t_lo, t_hi, gcnt):
    for b in prange(q.shape[0]):
        _golds_query(b, q, cand, extra, b0, w, gold_ptr, gold_col, gold_lang, gs, ge, order, t_lo, t_hi, gcnt)


def _recount_block_sig(t):
    return void(int64[::1], int64[::1], _F32_ROWS, _F32_ROWS, _F32_ROWS, float64[::1], float64[::1], int32[::1],
                int64[::1], int64[::1], float64[::1], float64[::1], t[::1], t[::1], int32[:, ::1], t[:, ::1], int64[::1],
                int32[:, ::1], int32[:, ::1], int64[::1], int64)


@lazy_njit([_recount_block_sig(float32), _recount_block_sig(int16)], cache=True, parallel=True)
def _recount_block(rows, order, q, cand, extra, q_norm, c_norm, c_lang, gold_ptr, gold_col, gs, ge, t_lo, t_hi, und_col,
                   und_val, und_n, cnt, undecided, recomputed, group):
    """Passes 2 and 3 over ``rows`` with their lists of undecided candidates (columns ``und_col``,
    approximations ``und_val``), in parallel over groups of ``group`` rows (one parallel region: each
    task does its group's dots, then decides its rows). A row whose list overflowed (``und_n`` above its
    length) is skipped: the caller redoes it with a full list."""
    for t in prange(-(-rows.shape[0] // group)):
        r0 = t * group
        r1 = min(r0 + group, rows.shape[0])
        n = np.where(und_n[r0:r1] > und_col.shape[1], 0, und_n[r0:r1])
        offset = np.zeros(r1 - r0 + 1, dtype=np.int64)
        offset[1:] = np.cumsum(n)
        und_s = np.empty(offset[r1 - r0], np.float32)
        _group_dots(rows[r0:r1], q, cand, q_norm, c_norm, und_col[r0:r1], n, offset, und_s)
        for r in range(r0, r1):
            k0 = offset[r - r0]
            k1 = offset[r - r0 + 1]
            _decide_query(rows[r], order, q, cand, extra, q_norm, c_norm, c_lang, gold_ptr, gold_col, gs, ge, t_lo, t_hi,
                          und_val[r, :k1 - k0], und_col[r, :k1 - k0], und_s[k0:k1], cnt, undecided, recomputed)


# ------------------------------------------------------------------------------- public functions


def certified_counts(approx, bound, w, q, cand, lang_ptr, gold_ptr, gold_col, gold_lang, q_norm=None, c_norm=None,
                     extra=None, gold_counts=True):
    """Exact ``(cnt, gcnt, undecided, recomputed)`` of one block from approximate scores.

    ``approx`` (B, N): approximate scores, float32, or bfloat16 bit patterns as uint16 (a
    C-contiguous, writable array, turned into order keys in place); columns grouped by language
    (language L owns columns ``lang_ptr[L]:lang_ptr[L+1]``). ``bound`` (B,) float64 and ``w``
    (float) such that ``|approx[b, c] - q[b].cand[c]| <= bound[b] + w * |approx[b, c]|`` for every
    pair, approximations finite; ``q`` (B, d) and ``cand`` (N, d) float32: the stored vectors,
    ``cand`` in column order; golds of row b are columns ``gold_col[gold_ptr[b]:gold_ptr[b+1]]``
    with languages ``gold_lang``; a gold outside ``cand`` (a tile of a larger pool) has
    ``gold_col = -1 - i`` and its vector in row i of ``extra`` (float32, (n, d)).

    With s(c) = q[b].cand[c] exactly: ``cnt[j, L] = |{c : lang(c) = L, s(c) >= s(gold j)}|``,
    ``gcnt[j, L]`` the same over the golds of row b (int32, (n_golds, n_langs)), ``undecided[j,
    L]`` the pairs (c, gold j) of language L that the bound left open (int32), ``recomputed[b]``
    the candidates of row b whose score was recomputed (int64, (B,)). ``q_norm`` / ``c_norm``:
    upper bounds on the rows' Euclidean norms (computed here when not given). ``gold_counts=False``
    skips ``gcnt`` (returned with no rows): a tile's counts need only the candidates.
    """
    bf16 = approx.dtype == np.uint16
    approx = approx.view(np.int16) if bf16 else np.ascontiguousarray(approx, dtype=np.float32)
    n_rows, n_cols = approx.shape
    n_langs = len(lang_ptr) - 1
    lang_ptr = np.ascontiguousarray(lang_ptr, dtype=np.int64)
    gold_ptr = np.ascontiguousarray(gold_ptr, dtype=np.int64)
    gold_col = np.ascontiguousarray(gold_col, dtype=np.int64)
    q = np.ascontiguousarray(q, dtype=np.float32)
    cand = np.ascontiguousarray(cand, dtype=np.float32)
    extra = np.zeros((0, cand.shape[1]), np.float32) if extra is None else np.ascontiguousarray(extra, np.float32)
    n_golds = len(gold_col)
    gs, ge = np.empty(n_golds), np.empty(n_golds)
    order = np.empty(n_golds, dtype=np.int64)
    t_lo, t_hi = np.empty(n_golds, np.float32), np.empty(n_golds, np.float32)
    cnt, undecided = (np.zeros((n_golds, n_langs), dtype=np.int32) for _ in range(2))
    gcnt = np.zeros((n_golds if gold_counts else 0, n_langs), dtype=np.int32)
    recomputed = np.zeros(n_rows, dtype=np.int64)
    _golds_block(q, cand, extra, np.ascontiguousarray(bound, dtype=np.float64), float(w), gold_ptr, gold_col,
                 np.ascontiguousarray(gold_lang, dtype=np.int32), gs, ge, order, t_lo, t_hi, gcnt)
    if bf16:
        t_lo, t_hi = bf16_ceiling_keys(t_lo), bf16_ceiling_keys(t_hi)
    norms = (row_norms(q) if q_norm is None else np.ascontiguousarray(q_norm, dtype=np.float64),
             row_norms(cand) if c_norm is None else np.ascontiguousarray(c_norm, dtype=np.float64))
    c_lang = np.repeat(np.arange(n_langs, dtype=np.int32), np.diff(lang_ptr))
    golds = (gold_ptr, gold_col, gs, ge, t_lo, t_hi)
    counts = (cnt, undecided, recomputed)
    rows = np.arange(n_rows, dtype=np.int64)
    cap = min(n_cols, max(LIST_MIN, n_cols // LIST_SHARE))
    und_col = np.empty((n_rows, cap), np.int32)
    und_val = np.empty((n_rows, cap), approx.dtype)
    und_n = np.empty(n_rows, np.int64)
    _scan_block(rows, approx, lang_ptr, gold_ptr, order, t_lo, t_hi, True, cnt, und_col, und_val, und_n, bf16)
    over = und_n > cap
    # the rows whose list overflowed are skipped here and redone below
    _recount(rows, und_col, und_val, und_n, order, q, (cand, extra), norms, c_lang, golds, counts)
    batch = max(1, REDO_BYTES // (12 * n_cols))
    for s in range(0, int(over.sum()), batch):  # rows whose list overflowed: again with room for every column
        redo = rows[over][s:s + batch]
        und_col = np.empty((len(redo), n_cols), np.int32)
        und_val = np.empty((len(redo), n_cols), approx.dtype)
        und_n = np.empty(len(redo), np.int64)
        # the rows are order keys already
        _scan_block(redo, approx, lang_ptr, gold_ptr, order, t_lo, t_hi, False, cnt, und_col, und_val, und_n, False)
        _recount(redo, und_col, und_val, und_n, order, q, (cand, extra), norms, c_lang, golds, counts)
    return cnt, gcnt, undecided, recomputed


def _recount(rows, und_col, und_val, und_n, order, q, vectors, norms, c_lang, golds, counts):
    """Passes 2 and 3 over ``rows`` with their lists of undecided candidates; ``vectors``: (cand, extra)."""
    gold_ptr, gold_col, gs, ge, t_lo, t_hi = golds
    _recount_block(rows, order, q, *vectors, *norms, c_lang, gold_ptr, gold_col, gs, ge, t_lo, t_hi,
                   np.ascontiguousarray(und_col), np.ascontiguousarray(und_val), np.ascontiguousarray(und_n), *counts,
                   _group_rows(len(rows)))


def _group_rows(n_rows: int) -> int:
    """Rows per group of passes 2-3: at most GROUP, and as many equal groups as a multiple of the
    thread count (the parallel loop splits its groups evenly over the threads; 9 groups of 512 on 2
    threads would leave one idle for a sixth of the time)."""
    import numba

    threads = numba.get_num_threads()
    n_groups = threads * -(-n_rows // (GROUP * threads))
    return max(1, -(-n_rows // max(1, n_groups)))


NORM_ROWS = 16384  # rows per float64 chunk of row_norms: a tile of a large pool is never copied whole


def row_norms(x) -> np.ndarray:
    """Euclidean norms of float32 rows in float64, widened by 2^-30 relative (an upper bound for d < 2^22)."""
    x = np.asarray(x)
    out = np.empty(len(x))
    for s in range(0, len(x), NORM_ROWS):
        part = np.asarray(x[s:s + NORM_ROWS], dtype=np.float64)
        out[s:s + NORM_ROWS] = np.sqrt(np.einsum("ij,ij->i", part, part))
    return out * (1.0 + 2.0 ** -30)


def exact_dot_sign(q, c, g) -> int:
    """Sign of q.c - q.g computed exactly (float32 rows; see the module docstring, tier 3)."""
    return int(_exact_sign(np.ascontiguousarray(q, np.float32), np.ascontiguousarray(c, np.float32),
                           np.ascontiguousarray(g, np.float32), np.empty(EXPANSION)))


def dot64(q, c) -> tuple[float, float]:
    """(float64 dot of two float32 rows, bound on its error from the exact dot)."""
    return _dot64(np.ascontiguousarray(q, np.float32), np.ascontiguousarray(c, np.float32))
