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


def _tiny_float16_run(tmp_path, make_run):
    rng = np.random.default_rng(0)
    return make_run(tmp_path, q_emb=rng.standard_normal((4, 6)).astype(np.float16), q_langs=["aa", "aa", "bb", "bb"],
                    c_emb=rng.standard_normal((4, 6)).astype(np.float16), c_langs=["aa", "aa", "bb", "bb"],
                    qrels=[(0, 0), (1, 2), (2, 1), (3, 3)], dtype="float16")


def test_a_float16_score_loads_only_the_kernels_it_runs(tmp_path, make_run):
    run = _tiny_float16_run(tmp_path, make_run)
    code = ("from fastir.kernels import ranking, tiles, upcast; "
            "assert all(k._dispatcher is None for k in (ranking._score_block, upcast._half_gather)), 'at import'; "
            f"from fastir.eval.score import score_run; score_run({str(run)!r}, precision='fp32'); "
            "loaded = {n for m in (ranking, tiles, upcast) for n, k in vars(m).items() "
            "          if hasattr(k, '_dispatcher') and k._dispatcher is not None}; "
            "print(sorted(loaded))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the streaming fp32 path: tile counts, then the finalisers (ranking._score_block: whole-row paths only);
    # a float16 run's tie spread: the metrics of optimistic ranks (_ranks_block)
    assert proc.stdout.strip() == "['_count_tile', '_first_nonfinite', '_half_gather', '_metrics_block', '_ranks_block']"


def test_preload_loads_the_named_kernels_in_a_daemon_thread():
    from fastir.kernels.lazy import preload

    kernel = LazyKernel(_total.py_func, [float64(float64[::1])], {"cache": False})
    sys.modules[__name__]._preload_target = kernel
    try:
        loading = preload([f"{__name__}:_preload_target"])
        assert loading.thread.daemon
        loading.thread.join(60)
        assert kernel._dispatcher is not None and kernel(np.arange(3.0)) == 3.0
    finally:
        del sys.modules[__name__]._preload_target


def test_preload_failure_is_left_to_the_caller(capfd):
    from fastir.kernels.lazy import preload

    kernel = LazyKernel(_total.py_func, [float64(float64[::1])], {"cache": False})
    sys.modules[__name__]._preload_target = kernel
    try:
        preload(["fastir.kernels.no_such_module:_x", f"{__name__}:_preload_target"]).thread.join(60)
        assert kernel._dispatcher is None  # stopped at the failure, silently: the caller's own call reports it
        assert capfd.readouterr().err == ""
        assert kernel(np.arange(3.0)) == 3.0
    finally:
        del sys.modules[__name__]._preload_target


def test_finish_stops_loading_and_leaves_no_thread():
    from fastir.kernels.lazy import pending, preload

    kernels = [LazyKernel(_total.py_func, [float64(float64[::1])], {"cache": False}) for _ in range(3)]
    for k, kernel in enumerate(kernels):
        setattr(sys.modules[__name__], f"_stop_target{k}", kernel)
    try:
        names = [f"{__name__}:_stop_target{k}" for k in range(3)]
        loading = preload(names)
        loading.finish()
        assert not loading.thread.is_alive() and not any(pending(n) for n in names)
        loaded = [k._dispatcher is not None for k in kernels]
        assert loaded == sorted(loaded, reverse=True)  # in order, up to where it was stopped
    finally:
        for k in range(3):
            delattr(sys.modules[__name__], f"_stop_target{k}")


def test_score_kernels_named_for_preloading_exist_and_match_what_a_score_loads():
    from fastir.eval.preload import FP32_KERNELS
    import importlib

    for names in FP32_KERNELS.values():
        for name in names:
            module, attr = name.split(":")
            assert isinstance(getattr(importlib.import_module(module), attr), LazyKernel), name
    # a float16 score's kernels (test above) are the float16 list; the count first (no numpy stand-in)
    assert {n.split(":")[1] for n in FP32_KERNELS["float16"]} == {"_count_tile", "_first_nonfinite", "_half_gather",
                                                                  "_metrics_block", "_ranks_block"}
    assert all(names[0] == "fastir.kernels.tiles:_count_tile" for names in FP32_KERNELS.values())


def test_preload_of_an_unreadable_run_starts_nothing(tmp_path):
    from fastir.eval.preload import preload_score_kernels

    assert preload_score_kernels(tmp_path / "missing") is None
    (tmp_path / "run.json").write_text('{"dtype": "float64"}')
    assert preload_score_kernels(tmp_path) is None


def _score_in_subprocess(run, out, entry: str, extra: str = "") -> subprocess.CompletedProcess:
    """``fastir score RUN`` through ``fastir.cli.<entry>`` in a fresh interpreter, then ``extra``."""
    call = "executable()" if entry == "executable" else f"main({['score', str(run), '--out', str(out)]!r})"
    code = ("import gc, sys; from fastir.cli import executable, main\n"
            f"sys.argv = ['fastir', 'score', {str(run)!r}, '--out', {str(out)!r}]\n"
            f"frozen = gc.get_freeze_count()\ncode = {call}\nassert not code, code\n"
            "import threading; assert not [t for t in threading.enumerate() if t.name == 'fastir-preload']\n"
            "assert gc.isenabled()\n"
            "import numba.np.arraymath as a\n"
            "print('scipy.linalg' in sys.modules, a._HAVE_BLAS, gc.get_freeze_count() > frozen, file=sys.stderr)\n"
            "import importlib.util; print(importlib.util.find_spec('scipy') is not None, file=sys.stderr)\n" + extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_cli_score_process_preloads_without_scipy_linalg_and_freezes_imports(tmp_path, make_run):
    run = _tiny_float16_run(tmp_path, make_run)
    proc = _score_in_subprocess(run, tmp_path / "out", "executable")
    assert proc.returncode == 0, proc.stderr
    linalg_loaded, have_blas, frozen, scipy_installed = proc.stderr.split()[-4:]
    # the collector is back on, and Numba's import (and the preload) left their objects frozen
    assert linalg_loaded == "False" and have_blas == "False" and frozen == "True"
    if scipy_installed == "True":  # hidden only while numba.np.arraymath was imported: importable again now
        after = _score_in_subprocess(run, tmp_path / "out2", "executable", "import scipy.linalg; print('ok')")
        assert after.stdout.strip().endswith("ok"), after.stderr


def test_cli_score_called_inside_another_process_takes_no_process_wide_shortcut(tmp_path, make_run):
    run = _tiny_float16_run(tmp_path, make_run)
    proc = _score_in_subprocess(run, tmp_path / "out", "main")
    assert proc.returncode == 0, proc.stderr
    linalg_loaded, have_blas, frozen, scipy_installed = proc.stderr.split()[-4:]
    assert frozen == "False"  # nothing of the caller's frozen
    if scipy_installed == "True":
        assert linalg_loaded == "True" and have_blas == "True"
