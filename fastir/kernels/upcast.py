"""Embedding rows to float32, and the finiteness scan, on the raw bits (Numba).

Numba cannot take float16 arrays, so float16 embeddings are read as their uint16 bit patterns:

    float32(h)  = HALF_TO_FLOAT[h]                  a 65,536-entry table built by numpy's own cast
    finite(h)   ⇔ (h & 0x7C00) != 0x7C00            float16: exponent bits all ones = inf or NaN
    finite(x)   ⇔ (bits(x) & 0x7F800000) != 0x7F800000   float32, the same test on its exponent

The table (256 KiB) stays in L2, so a gather per element is exact and several times faster than
numpy's single-threaded cast; the scans are two-core passes over the bits, with no temporary
boolean array of the whole matrix.

Kernels are array-in/array-out: a private per-row ``@njit`` function and a ``prange`` wrapper
over the rows, under thin public functions. No IO, no global thread settings. The kernels that
Python calls declare their signatures and compile at their first call (:mod:`fastir.kernels.lazy`),
so a float16 run does not load the float32 gather; the per-row helpers are typed by them.
"""

from __future__ import annotations

import numpy as np
from numba import float32, int64, njit, prange, types, uint16, uint32, void

from fastir.kernels.lazy import lazy_njit

# float16 bit pattern -> float32 value, for every pattern (NaN payloads and signed zeros included).
HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)

# Inputs are often read-only memory maps; a read-only signature accepts writable arrays too.
_U16_ROWS = types.Array(uint16, 2, "C", readonly=True)
_U32_ROWS = types.Array(uint32, 2, "C", readonly=True)
_F32_ROWS = types.Array(float32, 2, "C", readonly=True)
_F32_TABLE = types.Array(float32, 1, "C", readonly=True)

_HALF_EXPONENT = np.uint16(0x7C00)
_FLOAT_EXPONENT = np.uint32(0x7F800000)

# ------------------------------------------------------------------------------- per-row kernels


@njit(cache=True, nogil=True)
def _row_finite(bits, exponent):
    # Count instead of returning early: the branch-free loop vectorises.
    bad = 0
    for j in range(bits.shape[0]):
        bad += (bits[j] & exponent) == exponent
    return bad == 0


@njit(cache=True, nogil=True)
def _half_row_to_float(bits, table, out):
    for j in range(bits.shape[0]):
        out[j] = table[bits[j]]


# --------------------------------------------------------------------------------- prange wrappers


@lazy_njit([int64(_U16_ROWS, uint16), int64(_U32_ROWS, uint32)], cache=True, parallel=True)
def _first_nonfinite(bits, exponent):
    n = bits.shape[0]
    finite = np.empty(n, dtype=np.bool_)
    for i in prange(n):
        finite[i] = _row_finite(bits[i], exponent)
    for i in range(n):
        if not finite[i]:
            return i
    return -1


@lazy_njit(void(_U16_ROWS, int64[::1], _F32_TABLE, float32[:, ::1]), cache=True, parallel=True)
def _half_gather(bits, rows, table, out):
    for i in prange(rows.shape[0]):
        _half_row_to_float(bits[rows[i]], table, out[i])


@lazy_njit(void(_U16_ROWS, int64[::1], int64[::1], _F32_TABLE, float32[:, ::1]), cache=True, parallel=True)
def _half_gather_to(bits, rows, dest, table, out):
    for i in prange(rows.shape[0]):
        _half_row_to_float(bits[rows[i]], table, out[dest[i]])


@lazy_njit(void(_U16_ROWS, int64[::1], int64[::1], uint16[:, ::1]), cache=True, parallel=True)
def _half_copy_to(bits, rows, dest, out):
    for i in prange(rows.shape[0]):
        out[dest[i], :] = bits[rows[i]]


@lazy_njit(void(_F32_ROWS, int64[::1], int64[::1], float32[:, ::1]), cache=True, parallel=True)
def _float_gather_to(src, rows, dest, out):
    for i in prange(rows.shape[0]):
        out[dest[i], :] = src[rows[i]]


@lazy_njit(void(_F32_ROWS, int64[::1], float32[:, ::1]), cache=True, parallel=True)
def _float_gather(src, rows, out):
    for i in prange(rows.shape[0]):
        out[i, :] = src[rows[i]]


# ------------------------------------------------------------------------------- public functions


def _matrix(embeddings) -> np.ndarray:
    emb = np.ascontiguousarray(embeddings)
    if emb.ndim != 2 or emb.dtype not in (np.float16, np.float32):
        raise TypeError(f"expected a 2-d float16 or float32 array, got {emb.dtype} with shape {emb.shape}")
    return emb


def first_nonfinite_row(embeddings) -> int:
    """Index of the first row of ``embeddings`` (N, D) float16/float32 holding a NaN or ±inf; -1 if none.

    A value is non-finite exactly when its exponent bits are all ones (see the module docstring).
    """
    emb = _matrix(embeddings)
    if emb.dtype == np.float16:
        return int(_first_nonfinite(emb.view(np.uint16), _HALF_EXPONENT))
    return int(_first_nonfinite(emb.view(np.uint32), _FLOAT_EXPONENT))


def gather_float32(embeddings, rows, out=None) -> np.ndarray:
    """``out[i] = float32(embeddings[rows[i]])`` for every i: a row gather and upcast in one pass.

    ``embeddings`` (N, D) float16 or float32, ``rows`` integer row indices, ``out`` an optional
    (len(rows), D) C-contiguous float32 array to fill (a reused buffer); returns ``out``.
    Bit-exact: equal to ``embeddings[rows].astype(np.float32)``.
    """
    emb = _matrix(embeddings)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= emb.shape[0]):
        raise IndexError(f"row index out of range for {emb.shape[0]} rows")
    if out is None:
        out = np.empty((len(rows), emb.shape[1]), dtype=np.float32)
    if out.shape != (len(rows), emb.shape[1]) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(len(rows), emb.shape[1])}")
    if emb.dtype == np.float16:
        _half_gather(emb.view(np.uint16), rows, HALF_TO_FLOAT, out)
    else:
        _float_gather(emb, rows, out)
    return out


def gather_float16_to(embeddings, rows, out, dest) -> np.ndarray:
    """``out[dest[i]] = embeddings[rows[i]]`` for float16 ``embeddings`` and ``out`` (C-contiguous,
    D columns): rows copied as stored, no cast (what oneMKL's float16 product reads). Returns ``out``."""
    emb = _matrix(embeddings)
    rows, dest = _checked_rows(emb, rows, dest, out)
    if emb.dtype != np.float16 or out.dtype != np.float16:
        raise ValueError(f"expected float16 rows and out, got {emb.dtype} and {out.dtype}")
    _half_copy_to(emb.view(np.uint16), rows, dest, out.view(np.uint16))
    return out


def _checked_rows(emb: np.ndarray, rows, dest, out) -> tuple[np.ndarray, np.ndarray]:
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    dest = np.ascontiguousarray(dest, dtype=np.int64)
    if len(rows) != len(dest):
        raise ValueError("rows and dest differ in length")
    if len(rows) and (rows.min() < 0 or rows.max() >= emb.shape[0] or dest.min() < 0 or dest.max() >= len(out)):
        raise IndexError("row index out of range")
    if out.ndim != 2 or out.shape[1] != emb.shape[1] or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous array with {emb.shape[1]} columns")
    return rows, dest


def gather_float32_to(embeddings, rows, out, dest) -> np.ndarray:
    """``out[dest[i]] = float32(embeddings[rows[i]])``: :func:`gather_float32` into chosen rows of
    ``out`` (C-contiguous float32, D columns), e.g. one record batch's rows of a table. Returns ``out``."""
    emb = _matrix(embeddings)
    rows, dest = _checked_rows(emb, rows, dest, out)
    if out.dtype != np.float32:
        raise ValueError(f"out must be a C-contiguous float32 array with {emb.shape[1]} columns")
    if emb.dtype == np.float16:
        _half_gather_to(emb.view(np.uint16), rows, dest, HALF_TO_FLOAT, out)
    else:
        _float_gather_to(emb, rows, dest, out)
    return out
