"""Numba kernels: pure array-in / array-out functions, no IO.

Import a kernel module (``fastir.kernels.ranking`` …) where it is needed: importing this package
does not import numba. It names the upcast kernels that a command loads in a background thread
(:func:`fastir.kernels.lazy.preload`, listed by :mod:`fastir.eval.preload`) while numpy stands in
for them (:func:`fastir.runs.reader.first_nonfinite_row`, :func:`fastir.eval.stream.gather_rows`):
one name each, so the preload list and the stand-in's check cannot drift apart.
"""

from __future__ import annotations

# The finiteness scan of a run's embeddings.
NONFINITE_KERNEL = "fastir.kernels.upcast:_first_nonfinite"
# The float16 row copy (no cast) that feeds oneMKL's float16 product (fastir.eval.stream.f16_product).
HALF_COPY_KERNEL = "fastir.kernels.upcast:_half_copy_to"


def gather_kernel(dtype, batches: int = 1) -> str:
    """The upcast gather a float16/float32 table of ``batches`` record batches is read with
    (``dtype``: a numpy dtype or its name)."""
    kind = "half" if getattr(dtype, "name", dtype) == "float16" else "float"
    return f"fastir.kernels.upcast:_{kind}_gather" + ("" if batches == 1 else "_to")
