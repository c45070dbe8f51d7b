"""fastir.kernels.lazy: declared signatures compiled at the first call, not at import; only what runs is loaded."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from numba import float64, int64

from fastir.kernels.lazy import LazyKernel, lazy_njit


@lazy_njit([float64(float64[::1]), int64(int64[::1])], cache=False)
def _total(x):
    """Sum of x."""
    s = x[0] - x[0]
    for v in x:
        s += v
    return s


def test_compiled_at_first_call_with_the_declared_signatures_only():
    kernel = LazyKernel(_total.py_func, [float64(float64[::1])], {"cache": False})
    assert kernel._dispatcher is None and kernel.__name__ == "_total" and kernel.__doc__ == "Sum of x."
    assert kernel(np.arange(4.0)) == 6.0
    assert kernel.dispatcher.signatures == [(kernel.dispatcher.signatures[0][0],)]  # one, the declared
    with pytest.raises(TypeError):  # not declared: no silent compilation of a new specialisation
        kernel(np.arange(4, dtype=np.int32))
    assert _total(np.arange(5)) == 10 and len(_total.dispatcher.signatures) == 2


def test_a_float16_score_loads_only_the_kernels_it_runs(tmp_path, make_run):
    rng = np.random.default_rng(0)
    run = make_run(tmp_path, q_emb=rng.standard_normal((4, 6)).astype(np.float16), q_langs=["aa", "aa", "bb", "bb"],
                   c_emb=rng.standard_normal((4, 6)).astype(np.float16), c_langs=["aa", "aa", "bb", "bb"],
                   qrels=[(0, 0), (1, 2), (2, 1), (3, 3)], dtype="float16")
    code = ("from fastir.kernels import ranking, tiles, upcast; "
            "assert all(k._dispatcher is None for k in (ranking._score_block, upcast._half_gather)), 'at import'; "
            f"from fastir.eval.score import score_run; score_run({str(run)!r}); "
            "loaded = {n for m in (ranking, tiles, upcast) for n, k in vars(m).items() "
            "          if hasattr(k, '_dispatcher') and k._dispatcher is not None}; "
            "print(sorted(loaded))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the streaming fp32 path: tile counts, then the finalisers (ranking._score_block: whole-row paths only)
    assert proc.stdout.strip() == "['_count_tile', '_first_nonfinite', '_half_gather', '_metrics_block']"
