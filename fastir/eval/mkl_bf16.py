"""bfloat16 GEMM without ``import torch``: oneMKL's ``cblas_gemm_bf16bf16f32``, from torch's own library.

Why: ``import torch`` costs about 1.5 s on a 2-core CPU, more than a whole ``fastir score`` of
XQuAD-R, while the bfloat16 product fastir wants from it is oneMKL's: torch's x86-64 wheels link
oneMKL into ``torch/lib/libtorch_cpu.so`` and export its CBLAS entry points. Loading that library
with :mod:`ctypes` takes about 0.15 s and runs none of torch's Python code; the product then goes
straight to oneMKL (AMX or AVX512_BF16 kernels; float32 accumulation, float32 result).

oneMKL's documented contract (``cblas_gemm_bf16bf16f32``): C = alpha·op(A)·op(B) + beta·C with
A, B bfloat16 (``MKL_BF16`` = uint16 bit patterns), C float32, ``MKL_INT`` 32-bit (the LP64
interface torch links). Products of two bfloat16 are exact in float32; the sums round in float32,
in an order oneMKL chooses, with denormals flushed: the bound of
:mod:`fastir.eval.precision` covers any order and the flushing.

Where the library or the symbol is missing (torch not installed, a build without oneMKL: ARM,
macOS) :func:`load` returns None with the reason; callers fall back (see ``--precision``).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_INT32_MAX = 2**31 - 1


class BF16Gemm:
    """``out (m, n) float32 = a (m, k) · b (n, k)ᵀ`` for bfloat16 bit patterns ``a``, ``b`` (uint16, C order)."""

    def __init__(self, symbol):
        self._f = symbol

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        m, k = a.shape
        n = b.shape[0]
        if not (a.dtype == b.dtype == np.uint16 and out.dtype == np.float32 and b.shape[1] == k
                and out.shape == (m, n) and a.flags.c_contiguous and b.flags.c_contiguous
                and out.flags.c_contiguous and max(m, n, k) <= _INT32_MAX):
            raise ValueError(f"bf16 gemm: bad operands {a.shape} {a.dtype}, {b.shape} {b.dtype}, {out.shape} {out.dtype}")
        if m and n:
            self._f(_ROW_MAJOR, _NO_TRANS, _TRANS, m, n, k, 1.0, a.ctypes.data, max(1, k), b.ctypes.data, max(1, k),
                    0.0, out.ctypes.data, max(1, n))
        return out


def torch_cpu_library() -> str | None:
    """Path of torch's ``libtorch_cpu.so`` (found without importing torch), or None."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "lib", "libtorch_cpu.so")
    return path if os.path.isfile(path) else None


@functools.cache
def load() -> tuple[BF16Gemm | None, str]:
    """(the oneMKL bfloat16 GEMM, or None; where it comes from, or why not)."""
    path = torch_cpu_library()
    if path is None:
        return None, "torch's libtorch_cpu.so is not installed"
    try:
        lib = ctypes.CDLL(path)
        f = lib.cblas_gemm_bf16bf16f32
    except (OSError, AttributeError) as e:
        return None, f"{path} has no oneMKL cblas_gemm_bf16bf16f32 ({e})"
    i32, ptr = ctypes.c_int, ctypes.c_void_p
    f.restype = None
    f.argtypes = [i32, i32, i32, i32, i32, i32, ctypes.c_float, ptr, i32, ptr, i32, ctypes.c_float, ptr, i32]
    return BF16Gemm(f), f"oneMKL cblas_gemm_bf16bf16f32 from {path}"
