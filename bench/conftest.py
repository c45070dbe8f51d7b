"""Shared fixtures for the benchmark suites (pytest-benchmark).

* ``bench_scale``: size multiplier; 1.0 = XQuAD-R scale (13,090 queries x 13,014 candidates).
  ``FASTIR_BENCH_SCALE`` overrides (e.g. 10 for the 10x pool). Under ``--benchmark-disable``
  (CI) the suites run once on tiny data so they stay correct without timing anything.
* ``pinned_threads``: BLAS and Numba thread counts pinned to ``FASTIR_BENCH_THREADS`` (default:
  all cores) for one benchmark, restored afterwards, so nothing leaks into later tests.
"""

from __future__ import annotations

import os

import pytest

SMOKE_SCALE = 0.02


@pytest.fixture(scope="session")
def bench_scale(request) -> float:
    if request.config.getoption("benchmark_disable", default=False):
        return SMOKE_SCALE
    return float(os.environ.get("FASTIR_BENCH_SCALE", "1"))


@pytest.fixture()
def pinned_threads():
    from threadpoolctl import threadpool_limits

    threads = int(os.environ.get("FASTIR_BENCH_THREADS", os.cpu_count() or 1))
    try:
        import numba

        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover
        numba, previous = None, None
    with threadpool_limits(limits=threads):
        yield threads
    if numba is not None:
        numba.set_num_threads(previous)
