"""Which Numba kernels ``fastir score`` will call, loaded in the background while it reads the run.

The first Numba kernel of a process costs about a second (importing Numba, its registries, the
cached machine code): as much as a third of a whole ``fastir score`` at XQuAD-R scale. The
command knows its kernels before it opens the run, so it starts loading them at once
(:func:`fastir.kernels.lazy.preload`) and the load overlaps reading the tables and the first
float32 product, which release the GIL. Nothing here changes what is computed: a kernel the main
thread needs first simply waits for its load.
"""

from __future__ import annotations

# The default path (float32 product on the CPU, one process). First the count of each score block,
# the one kernel without a numpy stand-in; then the row gathers (one record batch or several) and
# the finiteness scan, which numpy does until they are loaded (fastir.eval.stream.gather_rows,
# fastir.runs.reader.first_nonfinite_row); the metrics of the counts; the gathers of float32 runs.
FP32_KERNELS = (
    "fastir.kernels.tiles:_count_tile",
    "fastir.kernels.upcast:_half_gather",
    "fastir.kernels.upcast:_half_gather_to",
    "fastir.kernels.upcast:_first_nonfinite",
    "fastir.kernels.ranking:_metrics_block",
    "fastir.kernels.upcast:_float_gather",
    "fastir.kernels.upcast:_float_gather_to",
)


def preload_score_kernels(own_process: bool = False):
    """Start loading :data:`FP32_KERNELS` in a daemon thread (returned). ``own_process``: the caller
    owns the process (the CLI), so Numba's optional scipy import may be skipped (see
    :func:`fastir.kernels.lazy.preload`)."""
    from fastir.kernels.lazy import preload

    return preload(FP32_KERNELS, without_scipy_blas=own_process)
