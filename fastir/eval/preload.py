"""Which Numba kernels ``fastir score`` will call, loaded in the background while it reads the run.

The first Numba kernel of a process costs about a second (importing Numba, its registries, the
cached machine code): as much as a third of a whole ``fastir score`` at XQuAD-R scale. The
command knows its kernels before it opens the run, so it starts loading them at once
(:func:`fastir.kernels.lazy.preload`) and the load overlaps reading the tables and the first
float32 product, which release the GIL. Nothing here changes what is computed: a kernel the main
thread needs first simply waits for its load.
"""

from __future__ import annotations

from fastir.kernels import HALF_COPY_KERNEL, NONFINITE_KERNEL, gather_kernel


# The default path (float32 product on the CPU, one process): the count of each score block first,
# the one kernel without a numpy stand-in; then the row gather of the run's dtype and the
# finiteness scan, which numpy does until they are loaded (fastir.eval.stream.gather_rows,
# fastir.runs.reader.first_nonfinite_row); the metrics of the counts. Runs of several record
# batches load their gather (gather_kernel(dtype, n) for n > 1) when they first need it. A float16
# run also reports its tie spread: the metrics of optimistic ranks (fastir.eval.ties); a large one
# on an Intel CPU opens oneMKL's float16 product first (fastir.eval.stream.f16_product).
FP32_KERNELS = {dtype: ("fastir.kernels.tiles:_count_tile", gather_kernel(dtype), NONFINITE_KERNEL,
                        "fastir.kernels.ranking:_metrics_block")
                + (("fastir.kernels.ranking:_ranks_block",) if dtype == "float16" else ())
                for dtype in ("float16", "float32")}


# ``--precision auto`` (certified, block by block): oneMKL's library is opened first (ctypes releases
# the GIL while it loads), then the gather, the bfloat16 rounding, the certified passes in the order
# a block calls them, the finiteness scan and the metrics.
CERTIFIED_KERNELS = {dtype: ("fastir.eval.mkl_gemm:load", gather_kernel(dtype), "fastir.kernels.bfloat16:_round_rows",
                             "fastir.kernels.certified:_golds_block", "fastir.kernels.certified_scan:_scan_block",
                             "fastir.kernels.certified:_recount_block", NONFINITE_KERNEL,
                             "fastir.kernels.ranking:_metrics_block")
                     for dtype in ("float16", "float32")}


F16_LIBRARY = "fastir.eval.mkl_gemm:load_f16"


def _work(meta: dict) -> float:
    """queries x candidates x dim from run.json (0 where it does not say; the command decides again on the tables)."""
    sizes = [meta.get(key, 0) for key in ("num_queries", "num_candidates", "dim")]
    return float(sizes[0]) * sizes[1] * sizes[2] if all(isinstance(v, int) for v in sizes) else 0.0


def _auto_tries_bf16(meta: dict) -> bool:
    """``auto`` will try certified bf16 on this run (its size)."""
    from fastir.eval.certified import AUTO_MIN_WORK

    return _work(meta) >= AUTO_MIN_WORK


def _float32_kernels(meta: dict) -> tuple[str, ...]:
    """:data:`FP32_KERNELS` of the run's dtype, after oneMKL's float16 product where the pass will use it."""
    from fastir.eval.stream import f16_refusal

    names = FP32_KERNELS[meta["dtype"]]
    return names if f16_refusal({meta["dtype"]}, _work(meta)) else (F16_LIBRARY, HALF_COPY_KERNEL) + names


def preload_score_kernels(run_dir, precision: str = "fp32", own_process: bool = False):
    """Start loading the kernels a score of ``run_dir`` at ``precision`` (``fp32``: :data:`FP32_KERNELS`;
    ``auto``: :data:`CERTIFIED_KERNELS` where the run is large enough for bf16 to be tried, else the
    float32 ones; of its run.json dtype) calls in a daemon thread; return the
    :class:`fastir.kernels.lazy.Preload` (call its ``finish()`` when the command ends), or None where
    run.json cannot be read here (the command's own reading reports why). ``own_process``: the caller
    owns the process (the CLI); see :func:`fastir.kernels.lazy.preload`."""
    import json
    import os

    try:
        with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
            meta = json.load(f)
        auto_bf16 = precision == "auto" and _auto_tries_bf16(meta)
        names = CERTIFIED_KERNELS[meta["dtype"]] if auto_bf16 else _float32_kernels(meta)
    except (OSError, ValueError, KeyError, TypeError, RecursionError, AttributeError):
        return None
    from fastir.kernels.lazy import preload

    return preload(names, own_process=own_process)


BIAS_RANKED_KERNEL = "fastir.kernels.bias:_ranked_bias_block"


def ranked_kernels(ties: str, bias: bool = False) -> tuple[str, ...]:
    """The kernels ``fastir score-run --ties TIES`` calls, in the order it first calls them (``bias``:
    with a language-bias metric, the ranked-list bias kernel last)."""
    metrics = "fastir.kernels.ties:_expected_block" if ties == "expected" else "fastir.kernels.ranking:_ranks_block"
    return ("fastir.kernels.ids:_match_block", "fastir.kernels.ids:_order_block", "fastir.kernels.ties:_rank_conflict",
            "fastir.kernels.ids:_prefix_block", "fastir.kernels.ties:_ranks_block", metrics) + (
        (BIAS_RANKED_KERNEL,) if bias else ())


def _asks_bias(metrics) -> bool:
    """``--metrics`` names a language-bias metric (False where it does not parse: the command says why)."""
    from fastir.core.errors import InputError
    from fastir.eval.metrics import bias_metrics, parse_metrics

    try:
        return metrics is not None and bool(bias_metrics(parse_metrics(metrics)))
    except InputError:
        return False


def preload_ranked_kernels(ties: str, own_process: bool = False, metrics=None):
    """Start loading :func:`ranked_kernels` (of ``metrics``, the ``--metrics`` text) in a daemon thread
    while ``fastir score-run`` reads the qrels and the run's first block; returns the
    :class:`fastir.kernels.lazy.Preload` (``finish()`` it).

    ``own_process`` (the CLI) also makes OpenMP's idle workers sleep (``OMP_WAIT_POLICY=PASSIVE``, a
    user's own setting wins; read when Numba first starts its OpenMP pool, which this precedes):
    between two short parallel kernels of a block, spinning workers took the core that parses the
    next block (measured on a 10^7-line run, 2 cores: 5.1 s of CPU spinning, 3.9 s passive)."""
    import os

    from fastir.kernels.lazy import preload

    if own_process:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    return preload(ranked_kernels(ties, _asks_bias(metrics)), own_process=own_process)
