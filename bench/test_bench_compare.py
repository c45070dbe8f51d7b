"""fastir compare vs ranx: paired Fisher randomization test on the same per-query APs.

* ``compare-fisher``: one paired randomization test, 10,000 resamples, over the per-query APs of
  13,090 queries x ``bench_scale`` — fastir ``paired_randomization_test`` vs ranx
  ``fisher_randomization_test`` (the kernel ``ranx.compare(stat_test="fisher")`` runs for each
  ordered pair of runs; ranx.compare itself runs it twice per pair).
* ``compare-full``: the whole ``fastir compare`` on XQuAD-R-shaped per_query.parquet files (11
  languages -> 132 cells per metric, 3 runs): bootstrap CIs + randomization tests, 10,000 resamples
  each, every summary and per-language statistic. No peer computes stratified macro-average CIs.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SAMPLES = 10_000
XQUAD_QUERIES = 13_090
LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


def _per_query_aps(n: int, seed: int = 0):
    """Paired per-query APs with a small, real improvement (z ~ 2)."""
    rng = np.random.default_rng(seed)
    base = rng.beta(4, 2, n)
    sd = 0.15
    a = np.clip(base + rng.normal(0, sd, n), 0, 1)
    b = np.clip(base + 2.0 * sd * np.sqrt(2) / np.sqrt(n) + rng.normal(0, sd, n), 0, 1)
    return a, b


@pytest.mark.benchmark(group="compare-fisher")
def test_fastir_randomization(benchmark, bench_scale, pinned_threads):
    from fastir.compare.comparison import paired_randomization_test

    a, b = _per_query_aps(max(64, int(XQUAD_QUERIES * bench_scale)))
    p = benchmark.pedantic(paired_randomization_test, args=(a, b, SAMPLES, 42), warmup_rounds=1, rounds=5)
    benchmark.extra_info.update(role="fastir", target=">= 5x ranx fisher_randomization_test", queries=len(a),
                                samples=SAMPLES, p=p)
    assert 0 < p <= 1


@pytest.mark.benchmark(group="compare-fisher")
def test_ranx_fisher(benchmark, bench_scale, pinned_threads):
    from ranx.statistical_tests import fisher_randomization_test

    from fastir.compare.comparison import paired_randomization_test

    a, b = _per_query_aps(max(64, int(XQUAD_QUERIES * bench_scale)))
    p_ranx, _ = benchmark.pedantic(fisher_randomization_test, args=(a, b, SAMPLES, 0.05, 42), warmup_rounds=1,
                                   rounds=2)
    benchmark.extra_info.update(role="peer", peer="ranx 0.3.21 fisher_randomization_test", queries=len(a),
                                samples=SAMPLES, p=p_ranx)
    # same test, different random draws: p-values agree within Monte Carlo error (sd <= 0.005)
    assert abs(paired_randomization_test(a, b, SAMPLES, 42) - p_ranx) < 0.03


def _write_scores(path, n_per_lang: int, shift: float, seed: int) -> None:
    """A per_query.parquet shaped like XQuAD-R: every query has one relevant candidate per language."""
    rng = np.random.default_rng(seed)
    ease = np.random.default_rng(7).beta(4, 2, (len(LANGS), n_per_lang))  # shared by all runs
    qid, qlang, clang, setting, nrel, ap, rd = [], [], [], [], [], [], []
    for i, x in enumerate(LANGS):
        ids = [f"{x}-{j}" for j in range(n_per_lang)]
        for y in [x, *[y for y in LANGS if y != x], "all"]:
            s = "mono" if y == x else "multi" if y == "all" else "cross"
            qid += ids
            qlang += [x] * n_per_lang
            clang += [y] * n_per_lang
            setting += [s] * n_per_lang
            nrel.append(np.full(n_per_lang, len(LANGS) if s == "multi" else 1, dtype=np.int32))
            ap.append(np.clip(ease[i] + shift + rng.normal(0, 0.15, n_per_lang), 0, 1))
            rd.append(rng.gamma(2, 5, n_per_lang) if s == "multi" else np.full(n_per_lang, np.nan))
    ap = np.concatenate(ap)
    cols = {"query_id": pa.array(qid), "query_lang": pa.array(qlang), "cand_lang": pa.array(clang),
            "setting": pa.array(setting), "num_relevant": pa.array(np.concatenate(nrel)), "ap": ap, "rr": ap}
    for k in (1, 5, 10):
        cols[f"recall@{k}"] = (rng.random(len(ap)) < ap).astype(np.float64)
    cols["rank_distance"] = np.concatenate(rd)
    meta = {"format": "fastir-per-query/1", "dataset": "synthetic-xquad-r", "dataset_checksum": "bench",
            "model": "synthetic", "run": str(path.parent), "ks": [1, 5, 10]}
    path.mkdir(parents=True)
    pq.write_table(pa.table(cols).replace_schema_metadata({b"fastir": json.dumps(meta).encode()}),
                   path / "per_query.parquet")


@pytest.mark.benchmark(group="compare-full")
def test_fastir_compare_full(benchmark, bench_scale, pinned_threads, tmp_path):
    from fastir.compare.comparison import compare

    n = max(8, int(XQUAD_QUERIES * bench_scale) // len(LANGS))
    runs = []
    for name, shift, seed in (("xy", 0.0, 1), ("mono", -0.01, 2), ("hybrid", 0.01, 3)):
        _write_scores(tmp_path / name / "scores", n, shift, seed)
        runs.append(tmp_path / name)
    result = benchmark.pedantic(compare, args=(runs,), kwargs={"samples": SAMPLES, "seed": 0}, warmup_rounds=1,
                                rounds=2)
    benchmark.extra_info.update(role="fastir", target="seconds, not minutes", queries=n * len(LANGS),
                                cells=len(LANGS) * (len(LANGS) + 1), runs=3, samples=SAMPLES)
    assert result.n_queries == n * len(LANGS)
    assert {r["level"] for r in result.records} == {"summary", "language"}
