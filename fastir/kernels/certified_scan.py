"""Pass 1 of certified counting (fastir.kernels.certified): count the sure candidates, list the undecided.

Per block row: the maximum of each block of BLOCK candidates of one language first; then per
language and gold, one vectorised pass over each block whose maximum reaches the gold's T_lo counts
the candidates with A >= T_hi(g) (surely at or above gold g) and flags those with
T_lo(g) <= A < T_hi(g) (undecided; A < T_lo(g) is surely below). The flagged candidates are listed,
in column order with their approximations, for passes 2 and 3. Approximations are float32, or
bfloat16 bit patterns turned in place into int16 order keys
(``key(x) = ±(bits(x) & 0x7FFF)``, monotone in the value), compared with the keys of the
thresholds rounded up to bfloat16 (:func:`bf16_ceiling_keys`): twice the lanes of float32 and no
float32 copy of the block. Kernels are array-in/array-out; no IO, no global thread settings.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float32, int16, int32, int64, njit, prange, void

from fastir.kernels.lazy import lazy_njit


@njit(cache=True, nogil=True)
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


BLOCK = 256  # candidates per block maximum: a gold's pass visits only the blocks that reach its T_lo


@njit(cache=True, nogil=True, inline="always")
def _count_and_flag(values, lo, hi, flags):
    """Number of ``values >= hi``; ``flags[i]`` set where ``lo <= values[i] < hi`` (one vectorised pass)."""
    k = np.int32(0)
    for i in range(values.shape[0]):
        a = values[i]
        k += np.int32(a >= hi)
        flags[i] |= np.uint8(a >= lo) & np.uint8(a < hi)
    return k


@njit(cache=True, nogil=True, inline="always")
def _max(values):
    m = values[0]
    for i in range(1, values.shape[0]):
        m = max(m, values[i])
    return m


@njit(cache=True, nogil=True)
def _scan_query(b, row, lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, listed_cols, listed_vals, flags,
                block_max):
    """Pass 1 over block row b (approximations ``row``, thresholds of the same type): add the
    candidates surely at or above each gold to ``cnt`` (when ``count_sure``), list the undecided ones
    (between a gold's two thresholds) in ``listed_cols``, in column order, with their approximations in
    ``listed_vals`` (so that pass 3 does not go back to the row), and return their number,
    which exceeds the list's length when it overflowed (the caller redoes the row with a longer list).

    The row's maximum per block of BLOCK candidates of one language goes to ``block_max`` first;
    then per language and gold (golds by ascending T_lo, so the first gold above every block of the
    language ends its loop), each block whose maximum reaches T_lo gets one vectorised pass that
    counts its sure candidates and flags its undecided ones in ``flags`` (scratch, >= len(row)
    rounded up to 8, zero on entry and on return); the flags are then read 8 at a time.
    """
    j0 = gold_ptr[b]
    j1 = gold_ptr[b + 1]
    n = 0
    if j1 == j0:
        return n
    cap = listed_cols.shape[0]
    k0 = 0
    for lang in range(lang_ptr.shape[0] - 1):
        c0 = lang_ptr[lang]
        c1 = lang_ptr[lang + 1]
        if c1 == c0:
            continue
        k1 = k0 + (c1 - c0 + BLOCK - 1) // BLOCK
        for k in range(k0, k1):
            s = c0 + (k - k0) * BLOCK
            block_max[k] = _max(row[s:min(s + BLOCK, c1)])
        top = _max(block_max[k0:k1])
        for p in range(j0, j1):
            j = order[p]
            lo = t_lo[j]
            if top < lo:  # T_lo ascending with p: no later gold is reached either
                break
            hi = t_hi[j]
            sure = np.int32(0)
            for k in range(k0, k1):
                if block_max[k] >= lo:
                    s = c0 + (k - k0) * BLOCK
                    e = min(s + BLOCK, c1)
                    sure += _count_and_flag(row[s:e], lo, hi, flags[s:e])
            if count_sure:
                cnt[j, lang] += sure
        k0 = k1
    words = flags.view(np.uint64)
    for w in range(words.shape[0]):
        if words[w] != 0:
            for i in range(8 * w, 8 * w + 8):
                if flags[i] != 0:
                    if n < cap:
                        listed_cols[n] = i
                        listed_vals[n] = row[i]
                    n += 1
            words[w] = 0
    return n


def _scan_block_sig(t):
    return void(int64[::1], t[:, ::1], int64[::1], int64[::1], int64[::1], t[::1], t[::1], boolean, int32[:, ::1],
                int32[:, ::1], t[:, ::1], int64[::1], boolean)


ROWS_PER_TASK = 16  # rows per parallel task, sharing one flags scratch


@lazy_njit([_scan_block_sig(float32), _scan_block_sig(int16)], cache=True, parallel=True)
def _scan_block(rows, approx, lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, und_col, und_val, und_n,
                bf16_bits):
    """:func:`_scan_query` over ``rows``; ``bf16_bits``: ``approx`` holds bfloat16 bit patterns (int16),
    each row turned into order keys in place just before its scan (while it is in cache)."""
    n_flags = -(-approx.shape[1] // 8) * 8
    for t in prange(-(-rows.shape[0] // ROWS_PER_TASK)):
        flags = np.zeros(n_flags, np.uint8)
        block_max = np.empty(approx.shape[1] // BLOCK + lang_ptr.shape[0], approx.dtype)
        for r in range(t * ROWS_PER_TASK, min((t + 1) * ROWS_PER_TASK, rows.shape[0])):
            b = rows[r]
            if bf16_bits:
                _bf16_keys(approx[b])
            und_n[r] = _scan_query(b, approx[b], lang_ptr, gold_ptr, order, t_lo, t_hi, count_sure, cnt, und_col[r],
                                   und_val[r], flags, block_max)
