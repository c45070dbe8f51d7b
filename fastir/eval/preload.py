"""Which Numba kernels ``fastir score`` will call, loaded in the background while it reads the run.

The first Numba kernel of a process costs about a second (importing Numba, its registries, the
cached machine code): as much as a third of a whole ``fastir score`` at XQuAD-R scale. The
command knows its kernels before it opens the run, so it starts loading them at once
(:func:`fastir.kernels.lazy.preload`) and the load overlaps reading the tables and the first
float32 product, which release the GIL. Nothing here changes what is computed: a kernel the main
thread needs first simply waits for its load.
"""

from __future__ import annotations

from fastir.kernels import NONFINITE_KERNEL, gather_kernel


# The default path (float32 product on the CPU, one process): the count of each score block first,
# the one kernel without a numpy stand-in; then the row gather of the run's dtype and the
# finiteness scan, which numpy does until they are loaded (fastir.eval.stream.gather_rows,
# fastir.runs.reader.first_nonfinite_row); the metrics of the counts. Runs of several record
# batches load their gather (gather_kernel(dtype, n) for n > 1) when they first need it.
FP32_KERNELS = {dtype: ("fastir.kernels.tiles:_count_tile", gather_kernel(dtype), NONFINITE_KERNEL,
                        "fastir.kernels.ranking:_metrics_block")
                for dtype in ("float16", "float32")}


def preload_score_kernels(run_dir, own_process: bool = False):
    """Start loading the kernels a float32 score of ``run_dir`` calls (:data:`FP32_KERNELS` of its
    run.json dtype) in a daemon thread; return the :class:`fastir.kernels.lazy.Preload` (call its
    ``finish()`` when the command ends), or None where run.json cannot be read here (the command's
    own reading reports why). ``own_process``: the caller owns the process (the CLI); see
    :func:`fastir.kernels.lazy.preload`."""
    import json
    import os

    try:
        with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
            names = FP32_KERNELS[json.load(f)["dtype"]]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    from fastir.kernels.lazy import preload

    return preload(names, own_process=own_process)


def ranked_kernels(ties: str) -> tuple[str, ...]:
    """The kernels ``fastir score-run --ties TIES`` calls, in the order it first calls them."""
    metrics = "fastir.kernels.ties:_expected_block" if ties == "expected" else "fastir.kernels.ranking:_ranks_block"
    return ("fastir.kernels.ids:_match_block", "fastir.kernels.ids:_order_block", "fastir.kernels.ties:_rank_conflict",
            "fastir.kernels.ids:_prefix_block", "fastir.kernels.ties:_ranks_block", metrics)


def preload_ranked_kernels(ties: str, own_process: bool = False):
    """Start loading :func:`ranked_kernels` in a daemon thread while ``fastir score-run`` reads the qrels
    and the run's first block; returns the :class:`fastir.kernels.lazy.Preload` (``finish()`` it).

    ``own_process`` (the CLI) also makes OpenMP's idle workers sleep (``OMP_WAIT_POLICY=PASSIVE``, a
    user's own setting wins; read when Numba first starts its OpenMP pool, which this precedes):
    between two short parallel kernels of a block, spinning workers took the core that parses the
    next block (measured on a 10^7-line run, 2 cores: 5.1 s of CPU spinning, 3.9 s passive)."""
    import os

    from fastir.kernels.lazy import preload

    if own_process:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    return preload(ranked_kernels(ties), own_process=own_process)
