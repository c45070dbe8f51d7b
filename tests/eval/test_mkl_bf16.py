"""fastir.eval.mkl_bf16: oneMKL's bfloat16 GEMM from torch's library, without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fastir.eval import mkl_bf16
from fastir.kernels.bfloat16 import round_bf16


def _gemm():
    gemm, why = mkl_bf16.load()
    if gemm is None:
        pytest.skip(why)
    return gemm


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (3, 5, 7), (64, 33, 384), (0, 4, 8)])
def test_products_equal_float64_within_the_float32_sum_bound(m, n, k):
    gemm = _gemm()
    rng = np.random.default_rng(m * 100 + n)
    a, _, _, _ = round_bf16(rng.standard_normal((m, k)).astype(np.float32))
    b, _, _, _ = round_bf16(rng.standard_normal((n, k)).astype(np.float32))
    out = gemm(a, b, np.full((m, n), np.nan, np.float32))
    wide = lambda bits: (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)  # noqa: E731
    exact = wide(a) @ wide(b).T  # products of bfloat16 are exact in float64, and these sums nearly so
    gamma = k * 2.0 ** -24 / (1 - k * 2.0 ** -24)
    assert np.all(np.abs(out - exact) <= gamma * (np.abs(wide(a)) @ np.abs(wide(b)).T) + 1e-30)


def test_bad_operands_are_refused():
    gemm = _gemm()
    a = np.zeros((2, 3), np.uint16)
    with pytest.raises(ValueError, match="bad operands"):
        gemm(a, np.zeros((2, 4), np.uint16), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="bad operands"):
        gemm(a.astype(np.float32), a, np.zeros((2, 2), np.float32))


def test_loads_without_importing_torch_and_torch_imports_after():
    code = ("import sys; from fastir.eval import mkl_bf16; g, why = mkl_bf16.load(); "
            "print(g is not None, 'torch' in sys.modules); import torch; print(float(torch.ones(2).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "2.0"]
    assert out[0] == str(mkl_bf16.load()[0] is not None)


def test_missing_library_is_a_reason_not_an_error(monkeypatch):
    mkl_bf16.load.cache_clear()
    monkeypatch.setattr(mkl_bf16, "torch_cpu_library", lambda: None)
    try:
        assert mkl_bf16.load() == (None, "torch's libtorch_cpu.so is not installed")
    finally:
        mkl_bf16.load.cache_clear()
