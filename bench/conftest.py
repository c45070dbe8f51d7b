"""Shared fixtures and hooks for the benchmark suites (pytest-benchmark).

* ``bench_scale``: size multiplier; 1.0 = XQuAD-R scale (13,090 queries x 13,014 candidates).
  ``FASTIR_BENCH_SCALE`` overrides (e.g. 10 for the 10x pool). Under ``--benchmark-disable``
  (CI) the suites run once on tiny data so they stay correct without timing anything;
  ``--benchmark-enable`` (which ``bench/harness.py`` always passes) overrides a configured disable.
* ``pinned_threads``: BLAS/OpenMP (threadpoolctl), Numba and, when already imported, torch
  thread counts pinned to ``FASTIR_BENCH_THREADS`` (default: all cores) for one benchmark,
  restored afterwards, so nothing leaks into later tests. The count is recorded in the
  benchmark's ``extra_info["threads"]``.
* Hooks add a ``fastir`` block (scale, threads, library versions, a one-line machine
  description) to the machine info of every saved JSON; ``bench/harness.py`` reads it.

Conventions every suite follows (checked by ``python bench/harness.py check``):
``@pytest.mark.benchmark(group="<area>-<case>")``; ``extra_info["role"]`` is ``"fastir"`` or
``"peer"``; peers set ``extra_info["peer"]``; the fastir benchmark sets ``extra_info["target"]``;
timing goes through ``benchmark.pedantic(..., warmup_rounds=1, rounds=R)``. A benchmark whose two
sides do different work (e.g. a memory measurement) sets ``extra_info["compare"] = False``: it is
shown without a speedup and never checked for regressions.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata

# What the `fastir` CLI sets (see fastir/cli/__init__.py), so in-process timings match the
# command: OpenBLAS threads sleep right after a product instead of spinning on the cores that the
# Numba kernels use next. Set before the suites import numpy; the peers run under it too.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import pytest  # noqa: E402

SMOKE_SCALE = 0.02
# Libraries whose versions explain a timing: fastir itself and every peer the suites call.
VERSIONED = ("fastir", "numpy", "numba", "pyarrow", "pandas", "scipy", "scikit-learn", "faiss-cpu",
             "ranx", "pytrec-eval-terrier", "torch", "transformers", "sentence-transformers", "threadpoolctl")


def timing_disabled(config) -> bool:
    """pytest-benchmark's own rule: ``--benchmark-disable`` unless ``--benchmark-enable`` overrides it."""
    return bool(config.getoption("benchmark_disable", default=False)
                and not config.getoption("benchmark_enable", default=False))


def scale_for(config) -> float:
    """The scale a session runs at: tiny under ``--benchmark-disable``, else ``FASTIR_BENCH_SCALE``."""
    if timing_disabled(config):
        return SMOKE_SCALE
    return float(os.environ.get("FASTIR_BENCH_SCALE", "1"))


def threads_for() -> int:
    return int(os.environ.get("FASTIR_BENCH_THREADS", os.cpu_count() or 1))


@pytest.fixture(scope="session")
def bench_timing_disabled(request) -> bool:
    """True when the suites run untimed (CI's ``--benchmark-disable``, not overridden)."""
    return timing_disabled(request.config)


@pytest.fixture(scope="session")
def bench_scale(request) -> float:
    return scale_for(request.config)


@pytest.fixture()
def pinned_threads(request):
    from threadpoolctl import threadpool_limits

    threads = threads_for()
    if "benchmark" in request.fixturenames:
        request.getfixturevalue("benchmark").extra_info["threads"] = threads
    restore = []
    try:
        import numba

        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(previous))
    except ImportError:  # pragma: no cover - numba is a core dependency
        pass
    torch = sys.modules.get("torch")  # never import torch here: most suites do not need it
    if torch is not None:
        previous_torch = torch.get_num_threads()
        torch.set_num_threads(threads)
        restore.append(lambda: torch.set_num_threads(previous_torch))
    try:
        with threadpool_limits(limits=threads):
            yield threads
    finally:
        for undo in reversed(restore):
            undo()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def _load_avg() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    # Timing runs in one process: pytest's addopts ask for xdist workers (-n 2, for CI's untimed
    # pass), under which pytest-benchmark disables itself. Before xdist's own hook reads -n.
    if config.getoption("benchmark_enable", default=False) and config.pluginmanager.hasplugin("xdist"):
        config.option.numprocesses = 0


# Suites that call ranx: on a fresh install ranx compiles its Numba kernels (measured: about a
# minute on 2 busy cores, in whichever suite calls it first). Under xdist they run in one worker, one
# after the other, so the compile happens once and not twice at the same time.
RANX_SUITES = ("test_bench_compare.py", "test_bench_graded.py", "test_bench_score.py", "test_bench_score_pool.py")


def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RanxTogether(LoadFileScheduling):
        """``--dist loadfile``, with the ranx suites as one work unit."""

        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "bench/<ranx suites>" if scope.rsplit("/", 1)[-1] in RANX_SUITES else scope

    return RanxTogether(config, log)


def pytest_configure(config):
    # Machine info is generated when the JSON is written, at the end: note how busy the machine was at the start.
    config._fastir_bench_start = (datetime.now(timezone.utc).isoformat(), _load_avg())


def pytest_benchmark_update_machine_info(config, machine_info):
    scale = scale_for(config)
    threads = threads_for()
    cpu = (machine_info.get("cpu") or {}).get("brand_raw") or platform.processor() or "unknown CPU"
    cores = os.cpu_count()
    mem = _memory_gib()
    started, load_start = getattr(config, "_fastir_bench_start", (None, None))
    description = (
        f"{cpu}, {cores} cores, {mem} GiB RAM, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; {threads} threads pinned; scale {scale:g}"
    )
    machine_info["fastir"] = {
        "scale": scale,
        "threads": threads,
        "cores": cores,
        "memory_gib": mem,
        "started": started,
        "load_avg_1min_at_start": load_start,
        "load_avg_1min_at_end": _load_avg(),
        "versions": {name: _version(name) for name in VERSIONED},
        "description": description,
        # Benchmark fullnames are node ids relative to this: `harness.py check` re-runs regressed pairs by node id.
        "rootdir": str(config.rootpath),
    }


# Encoding suites: the same sample of XQuAD-R questions and sentences for every encoder they time.
TEXTS_AT_SCALE_1 = 2000


@pytest.fixture(scope="session")
def workload(bench_scale) -> list[str]:
    import numpy as np

    from fastir.data.lareqa import load_dataset

    ds = load_dataset("xquad-r")
    pool = ds.question_text + ds.candidate_text
    n = max(40, int(TEXTS_AT_SCALE_1 * bench_scale))
    rows = np.random.default_rng(0).choice(len(pool), size=n, replace=False)
    return [pool[i] for i in rows]
