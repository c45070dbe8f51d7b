"""fastir.eval.mkl_gemm: oneMKL's bfloat16 and float16 GEMMs from torch's library, without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fastir.eval import mkl_gemm
from fastir.kernels.bfloat16 import round_bf16


def _gemm(loader=mkl_gemm.load):
    gemm, why = loader()
    if gemm is None:
        pytest.skip(why)
    return gemm


def _bf16_operand(x):
    """(bit patterns for the GEMM, their float64 values)."""
    bits = round_bf16(x.astype(np.float32))[0]
    return bits, (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def _f16_operand(x):
    half = x.astype(np.float16)
    return half, half.astype(np.float64)


@pytest.mark.parametrize("kind", ["bf16", "f16"])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (3, 5, 7), (64, 33, 384), (0, 4, 8)])
def test_products_equal_float64_within_the_float32_sum_bound(m, n, k, kind):
    gemm = _gemm(mkl_gemm.load if kind == "bf16" else mkl_gemm.load_f16)
    operand = _bf16_operand if kind == "bf16" else _f16_operand
    rng = np.random.default_rng(m * 100 + n)
    a, a64 = operand(rng.standard_normal((m, k)))
    b, b64 = operand(rng.standard_normal((n, k)))
    out = gemm(a, b, np.full((m, n), np.nan, np.float32))
    exact = a64 @ b64.T  # products of bfloat16 / float16 are exact in float64, and these sums nearly so
    gamma = k * 2.0 ** -24 / (1 - k * 2.0 ** -24)
    assert np.all(np.abs(out - exact) <= gamma * (np.abs(a64) @ np.abs(b64).T) + 1e-30)


def test_bad_operands_are_refused():
    gemm = _gemm()
    a = np.zeros((2, 3), np.uint16)
    with pytest.raises(ValueError, match="bad operands"):
        gemm(a, np.zeros((2, 4), np.uint16), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="bad operands"):
        gemm(a.astype(np.float32), a, np.zeros((2, 2), np.float32))


def test_loads_without_importing_torch_and_torch_imports_after():
    code = ("import sys; from fastir.eval import mkl_gemm; g, why = mkl_gemm.load(); "
            "print(g is not None, 'torch' in sys.modules); import torch; print(float(torch.ones(2).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "2.0"]
    assert out[0] == str(mkl_gemm.load()[0] is not None)


def test_missing_library_is_a_reason_not_an_error(monkeypatch):
    mkl_gemm.load.cache_clear()
    monkeypatch.setattr(mkl_gemm, "torch_cpu_library", lambda: None)
    try:
        assert mkl_gemm.load() == (None, "torch's libtorch_cpu.so is not installed")
    finally:
        mkl_gemm.load.cache_clear()


def test_float16_subnormal_inputs_are_not_flushed():
    """float16 subnormals (down to 2^-24) widen to normal float32: the product must keep them."""
    gemm = _gemm(mkl_gemm.load_f16)
    a = np.array([[2.0 ** -24, 2.0 ** -20], [1.0, 0.0]], np.float16)
    b = np.array([[1.0, 0.0], [2.0 ** -14, 2.0 ** -24]], np.float16)
    out = gemm(a, b, np.zeros((2, 2), np.float32))
    assert np.array_equal(out, (a.astype(np.float64) @ b.astype(np.float64).T).astype(np.float32))
    assert out[0, 0] == 2.0 ** -24


def test_float16_gemm_refuses_other_dtypes():
    gemm = _gemm(mkl_gemm.load_f16)
    with pytest.raises(ValueError, match="cblas_gemm_f16f16f32: bad operands"):
        gemm(np.zeros((2, 3), np.uint16), np.zeros((2, 3), np.uint16), np.zeros((2, 2), np.float32))
