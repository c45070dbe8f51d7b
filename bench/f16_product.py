"""The float32 pass's product on float16 rows, side by side: oneMKL's ``cblas_gemm_f16f16f32`` on the
stored rows against widening them to float32 (the Numba gather) + numpy's (OpenBLAS) sgemm.

    python bench/f16_product.py [M N K ...]

Per shape (default the graded bench's tile, 2,000 x 25,000 x 384, and a pool tile, 1,000 x 20,000
x 768): random float16 rows, both sides warmed up, then 5 interleaved rounds; prints the medians,
their ratio and the share of bit-equal entries (docs/score.md, "The float32 product").
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")  # as the CLI sets it: idle BLAS threads sleep

import numpy as np  # noqa: E402

from fastir.eval.mkl_gemm import load_f16  # noqa: E402
from fastir.kernels.upcast import gather_float32  # noqa: E402


def compare(m: int, n: int, k: int, rounds: int = 5) -> str:
    gemm, why = load_f16()
    if gemm is None:
        raise SystemExit(why)
    rng = np.random.default_rng(0)
    q16 = rng.standard_normal((m, k)).astype(np.float16)
    c16 = rng.standard_normal((n, k)).astype(np.float16)
    q32, c32 = q16.astype(np.float32), np.empty((n, k), np.float32)
    rows = np.arange(n)
    widened, direct = np.empty((m, n), np.float32), np.empty((m, n), np.float32)

    def numpy_side():
        gather_float32(c16, rows, c32)
        np.matmul(q32, c32.T, out=widened)

    def onemkl_side():
        gemm(q16, c16, direct)

    numpy_side(), onemkl_side()
    a, b = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        numpy_side()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        onemkl_side()
        b.append(time.perf_counter() - t)
    return (f"{m} x {n} x {k}: widen + OpenBLAS {np.median(a) * 1e3:.0f} ms, oneMKL float16 {np.median(b) * 1e3:.0f} ms "
            f"({np.median(b) / np.median(a):.2f}x), bit-equal {np.mean(widened == direct):.4f}; "
            f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sizes = [int(x) for x in sys.argv[1:]] or [2000, 25000, 384, 1000, 20000, 768]
    for i in range(0, len(sizes) - 2, 3):
        print(compare(*sizes[i:i + 3]), flush=True)
