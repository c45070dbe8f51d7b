"""kernels/upcast.py against independent references: Python's struct half-float decoding and numpy."""

import struct

import numpy as np
import pytest

from fastir.kernels.upcast import HALF_TO_FLOAT, first_nonfinite_row, gather_float32


def _struct_half(bits: int) -> float:
    # struct's 'e' format decodes IEEE 754 binary16 without numpy.
    return struct.unpack("<e", struct.pack("<H", bits))[0]


def test_every_float16_bit_pattern_upcasts_exactly():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = gather_float32(bits.view(np.float16).reshape(-1, 256), np.arange(256)).reshape(-1)
    want = np.array([_struct_half(int(b)) for b in bits], dtype=np.float64)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].astype(np.float64), want[~nan])
    # Signed zeros keep their sign; subnormals are exact.
    assert np.array_equal(np.signbit(got[~nan]), np.signbit(want[~nan]))
    assert HALF_TO_FLOAT[0x0001] == np.float32(2.0**-24) and HALF_TO_FLOAT[0x7BFF] == np.float32(65504.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_gather_rows_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    emb = (rng.standard_normal((300, 37)) * 3).astype(dtype)
    emb.flags.writeable = False  # run dirs hand out read-only memory maps
    rows = rng.permutation(300)[:211]
    want = emb[rows].astype(np.float32)
    got = gather_float32(emb, rows)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    # Into a slice of a reused buffer, as the scorer does per block.
    buf = np.full((250, 37), np.nan, dtype=np.float32)
    assert gather_float32(emb, rows[:50], buf[:50]) is not None
    assert np.array_equal(buf[:50], want[:50]) and np.isnan(buf[50:]).all()
    assert gather_float32(emb, np.zeros(0, dtype=np.int64)).shape == (0, 37)


def test_gather_rejects_bad_arguments():
    emb = np.zeros((4, 3), dtype=np.float16)
    with pytest.raises(IndexError):
        gather_float32(emb, [0, 4])
    with pytest.raises(IndexError):
        gather_float32(emb, [-1])
    with pytest.raises(ValueError):
        gather_float32(emb, [0, 1], np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        gather_float32(emb, [0, 1], np.zeros((2, 3), dtype=np.float64))
    with pytest.raises(TypeError):
        gather_float32(np.zeros((4, 3), dtype=np.float64), [0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_first_nonfinite_row_matches_isfinite(dtype, bad):
    rng = np.random.default_rng(1)
    for trial in range(20):
        emb = rng.standard_normal((int(rng.integers(1, 400)), int(rng.integers(1, 70)))).astype(dtype)
        n_bad = int(rng.integers(0, 4))
        for _ in range(n_bad):
            emb[rng.integers(0, emb.shape[0]), rng.integers(0, emb.shape[1])] = bad
        emb.flags.writeable = False
        rows = np.flatnonzero(~np.isfinite(emb).all(axis=1))
        assert first_nonfinite_row(emb) == (rows[0] if len(rows) else -1), trial


def test_first_nonfinite_row_edges():
    assert first_nonfinite_row(np.zeros((0, 5), dtype=np.float16)) == -1
    # Largest finite values and subnormals are finite; float16 overflow to inf is not.
    with np.errstate(over="ignore"):
        emb = np.array([[65504.0, -65504.0, 6e-8], [1.0, 70000.0, 0.0]]).astype(np.float16)
    assert first_nonfinite_row(emb) == 1
    emb32 = np.array([[np.finfo(np.float32).max, np.finfo(np.float32).tiny / 2], [0.0, 0.0]], dtype=np.float32)
    assert first_nonfinite_row(emb32) == -1


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_gather_to_chosen_rows(dtype):
    from fastir.kernels.upcast import gather_float32_to

    emb = np.random.default_rng(0).standard_normal((20, 7)).astype(dtype)
    out = np.full((5, 7), -1, np.float32)
    gather_float32_to(emb, [3, 19, 0], out, [4, 0, 2])
    assert np.array_equal(out[[4, 0, 2]], emb[[3, 19, 0]].astype(np.float32))
    assert (out[[1, 3]] == -1).all()
    with pytest.raises(IndexError):
        gather_float32_to(emb, [20], out, [0])


def test_float16_copy_to_chosen_rows_keeps_every_bit():
    """gather_float16_to (oneMKL's float16 product reads its rows as stored): every bit pattern,
    NaN payloads and signed zeros included, copied unchanged into the chosen rows."""
    from fastir.kernels.upcast import gather_float16_to

    every_half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    out = np.zeros((300, 256), np.float16)
    rows, dest = np.arange(255, -1, -1), np.arange(256) + 20
    gather_float16_to(every_half, rows, out, dest)
    assert np.array_equal(out[dest].view(np.uint16), every_half[rows].view(np.uint16))
    assert not out[:20].view(np.uint16).any() and not out[276:].view(np.uint16).any()
    with pytest.raises(IndexError):
        gather_float16_to(every_half, [256], out, [0])
    with pytest.raises(ValueError, match="float16"):
        gather_float16_to(every_half, [0], np.zeros((1, 256), np.float32), [0])
