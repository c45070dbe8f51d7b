"""oneMKL's mixed-precision GEMMs without ``import torch``, from torch's own library.

Why: ``import torch`` costs about 1.5 s on a 2-core CPU, more than a whole ``fastir score`` of
XQuAD-R, while the products fastir wants from it are oneMKL's: torch's x86-64 wheels link
oneMKL into ``torch/lib/libtorch_cpu.so`` and export its CBLAS entry points. Loading that library
with :mod:`ctypes` takes about 0.15 s and runs none of torch's Python code; the product then goes
straight to oneMKL. Two entry points (both C = alpha·A·Bᵀ + beta·C, float32 accumulation and
result, ``MKL_INT`` 32-bit: the LP64 interface torch links):

* ``cblas_gemm_bf16bf16f32`` (:func:`load`): A, B bfloat16 (``MKL_BF16`` = uint16 bit patterns),
  on AMX or AVX512_BF16: the certified ``bf16`` product. Products of two bfloat16 are exact in
  float32; the sums round in float32, in an order oneMKL chooses, with denormals flushed: the
  bound of :mod:`fastir.eval.precision` covers any order and the flushing.
* ``cblas_gemm_f16f16f32`` (:func:`load_f16`): A, B IEEE float16, read as stored: the float32
  product of a float16 run without first widening its rows to float32 (the widening is exact;
  products of two float16 are exact in float32 and never subnormal, since the smallest is
  2⁻⁴⁸). On an Intel Xeon with AVX-512 it is 0.85–0.90 × gather-to-float32 + numpy's OpenBLAS
  product, bit-equal to it (docs/score.md).

Where the library or the symbol is missing (torch not installed, a build without oneMKL: ARM,
macOS) the loaders return None with the reason; callers fall back (see ``--precision``).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_INT32_MAX = 2**31 - 1


class MixedGemm:
    """``out (m, n) float32 = a (m, k) · b (n, k)ᵀ`` for C-ordered ``a``, ``b`` of the entry point's
    input dtype (uint16 bfloat16 bit patterns, or float16)."""

    def __init__(self, symbol, dtype, name: str):
        self._f = symbol
        self.dtype = np.dtype(dtype)
        self.name = name

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        m, k = a.shape
        n = b.shape[0]
        if not (a.dtype == b.dtype == self.dtype and out.dtype == np.float32 and b.shape[1] == k
                and out.shape == (m, n) and a.flags.c_contiguous and b.flags.c_contiguous
                and out.flags.c_contiguous and max(m, n, k) <= _INT32_MAX):
            raise ValueError(f"{self.name}: bad operands {a.shape} {a.dtype}, {b.shape} {b.dtype}, "
                             f"{out.shape} {out.dtype}")
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


def _open(symbol: str, dtype) -> tuple[MixedGemm | None, str]:
    path = torch_cpu_library()
    if path is None:
        return None, "torch's libtorch_cpu.so is not installed"
    try:
        f = getattr(ctypes.CDLL(path), symbol)
    except (OSError, AttributeError) as e:
        return None, f"{path} has no oneMKL {symbol} ({e})"
    i32, ptr = ctypes.c_int, ctypes.c_void_p
    f.restype = None
    f.argtypes = [i32, i32, i32, i32, i32, i32, ctypes.c_float, ptr, i32, ptr, i32, ctypes.c_float, ptr, i32]
    return MixedGemm(f, dtype, symbol), f"oneMKL {symbol} from {path}"


@functools.cache
def load() -> tuple[MixedGemm | None, str]:
    """(the oneMKL bfloat16 GEMM, or None; where it comes from, or why not)."""
    return _open("cblas_gemm_bf16bf16f32", np.uint16)


@functools.cache
def load_f16() -> tuple[MixedGemm | None, str]:
    """(the oneMKL float16 GEMM, or None; where it comes from, or why not)."""
    return _open("cblas_gemm_f16f16f32", np.float16)
