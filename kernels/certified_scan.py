"""Pass 1 of certified counting (fastir.kernels.certified): count the sure candidates, list the undecided.

Per block row, each chunk of 64 candidates of one language is counted against the golds' two
thresholds with vectorised compares (as in :mod:`fastir.kernels.ranking`): A >= T_hi(g) is surely
at or above gold g, A < T_lo(g) surely below; the candidates in between are listed for passes 2
and 3. Approximations are float32, or bfloat16 bit patterns turned in place into int16 order keys
(``key(x) = ±(bits(x) & 0x7FFF)``, monotone in the value), compared with the keys of the
thresholds rounded up to bfloat16 (:func:`bf16_ceiling_keys`): twice the lanes of float32 and no
float32 copy of the block. Kernels are array-in/array-out; no IO, no global thread settings.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, int16, int32, int64, njit, prange, void

CHUNK = 64  # candidates per vectorised count (see fastir.kernels.ranking.CHUNK)


# A copy of kernels/ranking.py's counter on purpose: Numba's on-disk cache checks only the cached
# function's own file, so a kernel calling across files can keep a stale compiled callee.
@njit([int32(float32[::1], float32), int32(int16[::1], int16)], cache=True, nogil=True, inline="always")
def _count_at_or_above(values, threshold):
    k = np.int32(0)
    for c in range(values.shape[0]):
        k += np.int32(values[c] >= threshold)
    return k


@njit(void(int16[::1]), cache=True, nogil=True)
def _bf16_keys(row):
    """bfloat16 bit patterns (read as int16) to their order keys, in place: ±magnitude bits.

    key(x) = bits(x) for x >= +0, -(bits(x) & 0x7FFF) for x <= -0: monotone in the value on finite
    numbers and infinities, both zeros give 0, so x >= y ⇔ key(x) >= key(y).
    """
    for i in range(row.shape[0]):
        x = np.int32(row[i])
        s = x >> 15  # 0 or -1
        row[i] = np.int16((x ^ (s & 0x7FFF)) - s)


def bf16_ceiling_keys(t: np.ndarray) -> np.ndarray:
    """Keys (:func:`_bf16_keys`) of the least bfloat16 values >= the float32 thresholds ``t``, so that
    for a bfloat16 A: A >= t ⇔ key(A) >= key. Positive t with dropped bits round up in magnitude,
    negative ones are truncated (their value goes up); ±inf stay."""
    bits = np.ascontiguousarray(t, np.float32).view(np.uint32)
    high = (bits >> 16).astype(np.int32)
    up = ((bits & 0xFFFF) != 0) & (t > 0)
    high += up
    return np.where(high & 0x8000, -(high & 0x7FFF), high).astype(np.int16)


def _scan_sig(t):
    return int64(int64, t[::1], int64[::1], int64[::1], int64[::1], t[::1], t[::1], boolean, int32[:, ::1],
                 int32[::1])


@njit([_scan_sig(float32), _scan_sig(int16)], cache=True, nogil=True)
def _scan_query(b, row, lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, listed_cols):
    """Pass 1 over block row b (approximations ``row``, thresholds of the same type): add the
    candidates surely at or above each gold to ``cnt`` (when ``count_sure``), list the undecided ones
    (between a gold's two thresholds) in ``listed_cols`` and return their number, which exceeds the
    list's length when it overflowed (the caller redoes the row with a longer list).
    Each approximation is read by one chunk count for most chunks (see fastir.kernels.ranking).
    """
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    n = 0
    if j1 == j0:
        return n
    cap = listed_cols.shape[0]
    listed = np.zeros(CHUNK, dtype=np.bool_)
    first = order[j0]
    for lang in range(lang_ptr.shape[0] - 1):
        c0 = lang_ptr[lang]
        end = lang_ptr[lang + 1]
        while c0 < end:
            c1 = min(c0 + CHUNK, end)
            chunk = row[c0:c1]
            k = _count_at_or_above(chunk, t_lo[first])  # candidates possibly at or above the lowest gold
            p = j0
            fresh = True
            while k != 0:
                j = order[p]
                sure = _count_at_or_above(chunk, t_hi[j])
                if count_sure:
                    cnt[j, lang] += sure
                if k > sure:
                    if fresh:
                        listed[:] = False
                        fresh = False
                    for i in range(c1 - c0):
                        a = chunk[i]
                        if a >= t_lo[j] and a < t_hi[j] and not listed[i]:
                            listed[i] = True
                            if n < cap:
                                listed_cols[n] = c0 + i
                            n += 1
                p += 1
                if p == j1:
                    break
                k = _count_at_or_above(chunk, t_lo[order[p]])  # t_lo ascending with p: counts only shrink
            c0 = c1
    return n


def _scan_block_sig(t):
    return void(int64[::1], t[:, ::1], int64[::1], int64[::1], int64[::1], t[::1], t[::1], boolean, int32[:, ::1],
                int32[:, ::1], int64[::1])


@njit([_scan_block_sig(float32), _scan_block_sig(int16)], cache=True, parallel=True)
def _scan_block(rows, approx, lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, und_col, und_n):
    for r in prange(rows.shape[0]):
        b = rows[r]
        und_n[r] = _scan_query(b, approx[b], lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, und_col[r])


@njit(_scan_block_sig(int16), cache=True, parallel=True)
def _scan_block_bf16(rows, approx, lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, und_col, und_n):
    """:func:`_scan_block` over bfloat16 bit patterns, each row turned into order keys in place
    just before its scan (while it is in cache)."""
    for r in prange(rows.shape[0]):
        b = rows[r]
        _bf16_keys(approx[b])
        und_n[r] = _scan_query(b, approx[b], lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, und_col[r])
