"""Certified scoring (``--precision exact|bf16|int8``) against the float32 product floor.

Data: ``bench/test_bench_score.py``'s XQuAD-R-shaped synthetic run (float16, d = 768, 11 golds per
query); ``bench_scale`` 1 = XQuAD-R (13,090 queries x 13,014 candidates).

Groups (ratio = T(fastir) / T(peer), same data, side by side in one run):

* ``score-certified``: whole ``score_run(RUN, pairs="all", precision=P)`` for each precision (auto, the
  default, ``extra_info`` saying what it ran and why; fp32; the certified exact, bf16, int8) vs one
  numpy float32 Q·Cᵀ (inputs already
  float32). Target for the fastest certified precision <= 0.6x; ``extra_info`` carries
  ``undecided_fraction`` (candidate–gold pairs the bound left undecided, each recomputed exactly,
  over all pairs) and ``recomputed_candidates``. The certified precisions give identical metrics.
* ``score-certified-pool``: the same for auto, fp32 and bf16 at ``FASTIR_BENCH_POOL`` (default 10) times
  the candidates, same queries. (The 100x pool of issue 30's target, whole processes and peak memory:
  bench/test_bench_score_pool.py, whose ``score_run`` runs the default, auto.)
* ``score-certified-cuda``: only where torch sees a CUDA GPU with int8 tensor cores: ``score_run``
  with ``--precision int8`` (product on the GPU) vs ``torch.matmul`` float32 on the GPU, TF32 off.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench.test_bench_score import MATMUL_GROUP_ROUNDS, _rounds, xquad_r_like
from fastir.eval.score import score_run
from fastir.runs.rundir import write_run

TARGET = "<= 0.6x numpy fp32 matmul Q·Cᵀ (fastest certified precision)"


def _pool() -> float:
    return float(os.environ.get("FASTIR_BENCH_POOL", "10"))


@pytest.fixture(scope="module")
def columns(bench_scale):
    return xquad_r_like(bench_scale)


@pytest.fixture(scope="module")
def run_path(columns, tmp_path_factory):
    path = tmp_path_factory.mktemp("certified_bench") / "run"
    write_run(path, **columns)
    return path


@pytest.fixture(scope="module")
def exact_metrics(run_path):
    return score_run(run_path, precision="exact").metrics


def _timed_score(benchmark, path, precision, rounds, scale, group_info=None):
    benchmark.extra_info.update(role="fastir", target=TARGET, scale=scale, precision=precision,
                                what=f"score_run(RUN, pairs='all', precision={precision!r}): read+validate, all cells",
                                load_average=os.getloadavg()[0], **(group_info or {}))
    result = benchmark.pedantic(score_run, args=(path,), kwargs={"precision": precision}, warmup_rounds=1,
                                rounds=rounds)
    if result.precision is not None:
        keys = ("ran", "reason", "blocks", "device", "undecided_fraction", "recomputed_candidates")
        benchmark.extra_info.update({k: result.precision[k] for k in keys if k in result.precision})
    return result


def _timed_matmul(benchmark, cols, rounds, scale, group_info=None):
    benchmark.extra_info.update(role="peer", peer="numpy fp32 matmul", scale=scale,
                                what="Q32 @ C32.T, inputs already float32 (upcast not timed)",
                                load_average=os.getloadavg()[0], **(group_info or {}))
    q = cols["query_embeddings"].astype(np.float32)
    c = cols["candidate_embeddings"].astype(np.float32)
    out = benchmark.pedantic(np.matmul, args=(q, c.T), warmup_rounds=1, rounds=rounds)
    assert out.shape == (len(q), len(c))


@pytest.mark.benchmark(group="score-certified")
@pytest.mark.parametrize("precision", ["auto", "fp32", "exact", "bf16", "int8"])
def test_score_certified(benchmark, run_path, exact_metrics, bench_scale, pinned_threads, precision):
    rounds = MATMUL_GROUP_ROUNDS // 2 if bench_scale <= 1 else _rounds(bench_scale)
    result = _timed_score(benchmark, run_path, precision, rounds, bench_scale)
    if result.precision is not None and "undecided_pairs" in result.precision:  # certified: exact ranks
        np.testing.assert_array_equal(result.metrics.values, exact_metrics.values)


@pytest.mark.benchmark(group="score-certified")
def test_numpy_matmul_certified_floor(benchmark, columns, bench_scale, pinned_threads):
    _timed_matmul(benchmark, columns, MATMUL_GROUP_ROUNDS // 2 if bench_scale <= 1 else _rounds(bench_scale),
                  bench_scale)


# ------------------------------------------------------------------------------ 10x candidate pool


@pytest.fixture(scope="module")
def pool_columns(bench_scale):
    return xquad_r_like(bench_scale, pool=_pool())


@pytest.fixture(scope="module")
def pool_run(pool_columns, tmp_path_factory):
    path = tmp_path_factory.mktemp("certified_pool_bench") / "run"
    write_run(path, **pool_columns)
    return path


@pytest.mark.benchmark(group="score-certified-pool")
@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_score_certified_pool(benchmark, pool_run, bench_scale, pinned_threads, precision):
    result = _timed_score(benchmark, pool_run, precision, 2, bench_scale, {"pool": _pool()})
    if result.precision is not None and "undecided_pairs" in result.precision:
        np.testing.assert_array_equal(result.metrics.values, score_run(pool_run, precision="exact").metrics.values)


@pytest.mark.benchmark(group="score-certified-pool")
def test_numpy_matmul_pool_floor(benchmark, pool_columns, bench_scale, pinned_threads):
    _timed_matmul(benchmark, pool_columns, 2, bench_scale, {"pool": _pool()})


# ------------------------------------------------------------------------------------------- CUDA


def _cuda_int8() -> bool:
    from fastir.eval.precision import cuda_int8

    return cuda_int8()[0]


@pytest.mark.benchmark(group="score-certified-cuda")
@pytest.mark.skipif(not _cuda_int8(), reason="needs a CUDA GPU with int8 tensor cores")
def test_score_certified_cuda(benchmark, run_path, exact_metrics, bench_scale, pinned_threads):
    result = _timed_score(benchmark, run_path, "int8", MATMUL_GROUP_ROUNDS // 2, bench_scale)
    assert result.precision["device"] == "cuda"
    np.testing.assert_array_equal(result.metrics.values, exact_metrics.values)


@pytest.mark.benchmark(group="score-certified-cuda")
@pytest.mark.skipif(not _cuda_int8(), reason="needs a CUDA GPU with int8 tensor cores")
def test_torch_cuda_matmul_floor(benchmark, columns, bench_scale, pinned_threads):
    import torch

    benchmark.extra_info.update(role="peer", peer="torch.matmul fp32 on CUDA, TF32 off", scale=bench_scale,
                                what="Q32 @ C32.T on the GPU, inputs already there, synchronised")
    torch.backends.cuda.matmul.allow_tf32 = False
    q = torch.from_numpy(columns["query_embeddings"].astype(np.float32)).cuda()
    c = torch.from_numpy(columns["candidate_embeddings"].astype(np.float32)).cuda()

    def product():
        out = q @ c.T
        torch.cuda.synchronize()
        return out

    assert benchmark.pedantic(product, warmup_rounds=1, rounds=MATMUL_GROUP_ROUNDS // 2).shape == (len(q), len(c))
