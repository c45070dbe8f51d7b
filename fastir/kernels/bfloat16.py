"""float32 rows to bfloat16 bit patterns, with the norms the certified bound needs (Numba).

bfloat16 is the upper half of a float32: rounding to nearest, ties to even, on the bits is

    bits16(x) = (bits32(x) + 0x7FFF + ((bits32(x) >> 16) & 1)) >> 16

(the same patterns as torch's ``.to(torch.bfloat16)`` for finite x; inputs are finite here: NaN /
inf embeddings are refused when the run is read). One pass per row also yields, in float64,
‖x‖, ‖x − x̃‖ (the exact residual of the rounded copy x̃: both are float32 numbers, their
difference is exact in float64) and ‖x̃‖, so no float64 temporary of the matrix is built.

Kernels are array-in/array-out: a private per-row ``@njit`` function and a ``prange`` wrapper.
"""

from __future__ import annotations

import numpy as np
from numba import float32, float64, njit, prange, types, uint16, void

from fastir.kernels.lazy import lazy_njit

_F32_ROWS = types.Array(float32, 2, "C", readonly=True)


# The three sums may be reassociated (vectorised): callers widen the norms by 2^-30, more than any
# summation order's rounding of d < 2^22 float64 squares.
@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _round_row(x, out, scratch, norm, resid, rounded, i):
    bits = x.view(np.uint32)
    for j in range(x.shape[0]):
        b = bits[j]
        h = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        out[j] = np.uint16(h)
        scratch[j] = h << np.uint32(16)
    xr = scratch.view(np.float32)  # the rounded copy x̃ as float32 values
    a = 0.0
    r = 0.0
    t = 0.0
    for j in range(x.shape[0]):
        xv = np.float64(x[j])
        tv = np.float64(xr[j])
        a += xv * xv
        r += (xv - tv) * (xv - tv)
        t += tv * tv
    norm[i] = np.sqrt(a)
    resid[i] = np.sqrt(r)
    rounded[i] = np.sqrt(t)


@lazy_njit(void(_F32_ROWS, uint16[:, ::1], float64[::1], float64[::1], float64[::1]), cache=True, parallel=True)
def _round_rows(x, out, norm, resid, rounded):
    for i in prange(x.shape[0]):
        _round_row(x[i], out[i], np.empty(x.shape[1], np.uint32), norm, resid, rounded, i)


def round_bf16(x, out=None):
    """(bits, ‖x‖, ‖x − x̃‖, ‖x̃‖) of float32 rows ``x`` (n, d): ``bits`` (n, d) uint16, the
    bfloat16 patterns of x̃ (round to nearest even; written into ``out`` when given), the three
    norms (n,) float64 as computed (callers widen them: rounding of d squares and a sum)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    out = np.empty(x.shape, np.uint16) if out is None else out
    norm, resid, rounded = np.empty(n), np.empty(n), np.empty(n)
    _round_rows(x, out, norm, resid, rounded)
    return out, norm, resid, rounded
