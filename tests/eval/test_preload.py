"""fastir.eval.preload: ``fastir score`` preloads the kernels of its run's dtype, each a lazy kernel of
fastir/kernels that the preload really loads; a run.json it cannot read starts nothing.
(tests/kernels/test_lazy.py checks that a float16 score loads exactly the float16 list.)"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import fastir.kernels.lazy as lazy
from fastir.eval.preload import FP32_KERNELS, preload_score_kernels
from fastir.kernels import HALF_COPY_KERNEL, NONFINITE_KERNEL, gather_kernel


def test_each_dtype_preloads_its_own_gather_and_the_finiteness_scan():
    """The names the numpy stand-ins check (fastir.kernels): a drift would leave a stand-in never used."""
    assert set(FP32_KERNELS) == {"float16", "float32"}
    for dtype, names in FP32_KERNELS.items():
        # float16: also the metrics of optimistic ranks, for the tie spread (fastir.eval.ties)
        assert len(set(names)) == len(names) == (5 if dtype == "float16" else 4)
        assert all(n.startswith("fastir.kernels.") for n in names)
        assert gather_kernel(dtype) in names and NONFINITE_KERNEL in names
    assert gather_kernel("float16") not in FP32_KERNELS["float32"]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_the_preload_of_a_run_loads_its_dtypes_kernels(tmp_path, make_run, monkeypatch, dtype):
    run = make_run(tmp_path, q_emb=np.eye(2), q_langs=["aa", "aa"], c_emb=np.eye(2), c_langs=["aa", "aa"],
                   qrels=[(0, 0)], dtype=dtype)
    started = []
    monkeypatch.setattr(lazy, "preload", lambda names, own_process=False: started.append((names, own_process)))
    preload_score_kernels(run, own_process=True)
    preload_score_kernels(str(run))
    assert started == [(FP32_KERNELS[dtype], True), (FP32_KERNELS[dtype], False)]
    monkeypatch.undo()
    loading = preload_score_kernels(run)
    loading.thread.join(timeout=300)  # every kernel, not only the one in flight at finish()
    loading.finish()
    assert loading.names == FP32_KERNELS[dtype]
    for name in loading.names:  # each exists in fastir/kernels and was loaded in the background
        module, attr = name.split(":")
        kernel = getattr(importlib.import_module(module), attr)
        assert isinstance(kernel, lazy.LazyKernel) and kernel._dispatcher is not None, name
        assert not lazy.pending(name)


@pytest.mark.parametrize("run_json", ["not json", "[1, 2]", '"float32"', "{}", '{"dtype": ["float32"]}'])
def test_an_unreadable_run_json_starts_nothing(tmp_path, monkeypatch, run_json):
    """(A missing run.json and an unknown dtype: tests/kernels/test_lazy.py.)"""
    monkeypatch.setattr(lazy, "preload", lambda *a, **k: pytest.fail("a preload started"))
    (tmp_path / "run.json").write_text(run_json)
    assert preload_score_kernels(tmp_path) is None


def test_ranked_kernels_name_the_kernels_score_run_calls():
    from fastir.eval.preload import ranked_kernels
    from fastir.kernels import bias, ids, ranking, ties

    for mode in ("pessimistic", "expected"):
        for name in ranked_kernels(mode, bias=True):
            module, attr = name.split(":")
            assert hasattr({"fastir.kernels.ties": ties, "fastir.kernels.ranking": ranking,
                            "fastir.kernels.ids": ids, "fastir.kernels.bias": bias}[module], attr)
    assert ranked_kernels("expected")[-1].endswith("_expected_block")


@pytest.mark.parametrize("metrics, bias", [(None, False), ("map,ndcg@10", False), ("map,same_lang@10", True),
                                           ("map,no_such_metric", False)])
def test_score_run_preloads_the_bias_kernel_when_a_bias_metric_is_asked(monkeypatch, metrics, bias):
    from fastir.eval.preload import BIAS_RANKED_KERNEL, preload_ranked_kernels

    started = []
    monkeypatch.setattr(lazy, "preload", lambda names, own_process=False: started.append(names))
    preload_ranked_kernels("pessimistic", metrics=metrics)
    assert (BIAS_RANKED_KERNEL in started[0]) == bias


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_auto_preloads_onemkl_and_the_certified_kernels(tmp_path, make_run, monkeypatch, dtype):
    """``--precision auto``: the bfloat16 GEMM's library (a cached loader, called) and every kernel of a
    certified block, loaded in the background; each name is a real loader or lazy kernel."""
    from fastir.eval import mkl_gemm
    from fastir.eval.preload import CERTIFIED_KERNELS

    from fastir.eval import certified

    run = make_run(tmp_path, q_emb=np.eye(2), q_langs=["aa", "aa"], c_emb=np.eye(2), c_langs=["aa", "aa"],
                   qrels=[(0, 0)], dtype=dtype)
    small = preload_score_kernels(run, "auto")  # 2 x 2 x 2 multiply-adds: auto will score float32 products
    small.finish()
    assert small.names == FP32_KERNELS[dtype]
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "num_queries": 2, "num_candidates": 2}))
    monkeypatch.setattr(certified, "AUTO_MIN_WORK", 8)  # 2 x 2 x dim 2: now large enough
    loading = preload_score_kernels(run, "auto")
    loading.thread.join(timeout=300)
    loading.finish()
    assert loading.names == CERTIFIED_KERNELS[dtype] and loading.names[0] == "fastir.eval.mkl_gemm:load"
    assert mkl_gemm.load.cache_info().currsize == 1  # called by the preload thread
    for name in loading.names[1:]:
        module, attr = name.split(":")
        kernel = getattr(importlib.import_module(module), attr)
        assert isinstance(kernel, lazy.LazyKernel) and kernel._dispatcher is not None, name


def test_a_large_float16_run_on_intel_preloads_onemkls_float16_product(tmp_path, make_run, monkeypatch):
    """The float32 pass opens oneMKL's float16 GEMM first where fastir.eval.stream.f16_product will use it."""
    from fastir.eval import mkl_gemm, stream

    run = make_run(tmp_path, q_emb=np.eye(2), q_langs=["aa", "aa"], c_emb=np.eye(2), c_langs=["aa", "aa"],
                   qrels=[(0, 0)], dtype="float16")
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "num_queries": 2, "num_candidates": 2}))
    started = []
    monkeypatch.setattr(lazy, "preload", lambda names, own_process=False: started.append(names))
    monkeypatch.setenv("FASTIR_CPU_VENDOR", "GenuineIntel")
    preload_score_kernels(run)  # 8 multiply-adds: below F16_MIN_WORK
    monkeypatch.setattr(stream, "F16_MIN_WORK", 8)
    preload_score_kernels(run)
    monkeypatch.setenv("FASTIR_CPU_VENDOR", "AuthenticAMD")
    preload_score_kernels(run)
    f16 = ("fastir.eval.mkl_gemm:load_f16", HALF_COPY_KERNEL)
    assert started == [FP32_KERNELS["float16"], f16 + FP32_KERNELS["float16"], FP32_KERNELS["float16"]]
    assert callable(mkl_gemm.load_f16)
    module, attr = HALF_COPY_KERNEL.split(":")
    assert isinstance(getattr(importlib.import_module(module), attr), lazy.LazyKernel)
