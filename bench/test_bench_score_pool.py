"""``fastir score`` on a pool 100x XQuAD-R's, with a query sample: streaming, memory, shards, peers.

Data (``bench_scale`` 1): XQuAD-R's structure at a tenth of its questions (11 x 119 = 1,309
queries, 11 golds each: the answer sentence in every language, from ``xquad_r_like(0.1)``) in a
pool of 100 x 13,014 = 1,301,400 candidates (the XQuAD-R-like sentences plus distractors: unit
vectors with a language component), d = 768, float16 run dir written in 64 MiB record batches.
``FASTIR_BENCH_SCALE`` scales queries and pool together (0.1: 132 queries x 130 k candidates).

Groups (ratios = T(fastir) / T(peer)):

* ``score-pool-matmul``: ``score_run(POOL, pairs="all")`` (read + validate the run, stream the
  candidates tile by tile, every cell) vs numpy fp32 matmuls of the same shapes (Q·Cᵀ in column
  blocks into a reused buffer; C already float32). Target <= 1.15x.
* ``score-pool-memory``: peak anonymous RSS (the memory-mapped tables excluded) of a fresh
  ``fastir score`` process on the pool and on half of it (``extra_info``; not a speed
  comparison). Target < 1.5 GB, and flat when the pool doubles: the growth per added candidate
  (language ids, column order, Arrow's id hash tables: ~155 bytes measured) under 10 % of that
  candidate's float32 copy (3 KiB).
* ``score-pool-faiss-ranx``: what a peer user would run for the same cells: faiss ``IndexFlatIP``
  top-1000 over the pooled index and over each language's, then ranx ``evaluate`` (map, mrr,
  recall@k) — the product paid twice. Target fastir >= 1.8x faster; ``extra_info`` reports
  ranx's mAP error against fastir's exact mAP (truncation at depth 1000).
* ``test_pool_torchrun_two_gloo_ranks_identical``: ``torchrun --nproc-per-node 2`` writes the same
  files as one process (speed not measured).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest


from fastir.eval.score import score_run
from fastir.runs.rundir import read_run, write_run
from fastir.runs.writer import candidates_table

def _score_suite():
    """bench/test_bench_score.py (the XQuAD-R-shaped generator), loaded by path: the suites are not a package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fastir_bench_score", Path(__file__).with_name("test_bench_score.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SUITE = _score_suite()
CANDIDATES, DIM, KS, LANGS, xquad_r_like = (_SUITE.CANDIDATES, _SUITE.DIM, _SUITE.KS, _SUITE.LANGS,
                                            _SUITE.xquad_r_like)
POOL_FACTOR = 100
QUERY_SAMPLE = 0.1  # of XQuAD-R's questions: 1,309 queries at scale 1
_DISTRACTOR_ROWS = 65_536  # generated and written per record batch


def write_pool(path: Path, scale: float, fraction: float = 1.0, seed: int = 0) -> Path:
    """The pool run dir at ``scale`` (``fraction`` of its candidates), written batch by batch."""
    base = xquad_r_like(QUERY_SAMPLE * scale, seed=seed)
    write_run(path, **base)
    n_total = round(POOL_FACTOR * CANDIDATES * scale * fraction)
    extra = max(0, n_total - len(base["candidate_ids"]))
    rng = np.random.default_rng(seed + 1)
    lang_vec = rng.standard_normal((len(LANGS), DIM), dtype=np.float32) * 0.8
    file = path / "candidates.arrow"
    table = pa.ipc.open_file(pa.memory_map(str(file))).read_all()
    tmp = path / "candidates.arrow.tmp"
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
        for start in range(0, extra, _DISTRACTOR_ROWS):
            n = min(_DISTRACTOR_ROWS, extra - start)
            lang = (np.arange(start, start + n) % len(LANGS))
            x = rng.standard_normal((n, DIM), dtype=np.float32) * 2.0 + lang_vec[lang]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            ids = [f"d{j:08d}" for j in range(start, start + n)]
            writer.write_table(candidates_table(ids, [LANGS[i] for i in lang], x.astype(np.float16), "float16"))
    os.replace(tmp, file)
    meta = json.loads((path / "run.json").read_text())
    if "num_candidates" in meta:
        meta["num_candidates"] = len(base["candidate_ids"]) + extra
        (path / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


@pytest.fixture(scope="module")
def pool_run(bench_scale, tmp_path_factory):
    return write_pool(tmp_path_factory.mktemp("score_pool") / "pool", bench_scale)


@pytest.fixture(scope="module")
def half_pool_run(bench_scale, tmp_path_factory):
    return write_pool(tmp_path_factory.mktemp("score_pool_half") / "pool", bench_scale, fraction=0.5)


def _rounds(scale: float) -> int:
    return 3 if scale < 1 else 1


def _warmup(scale: float) -> int:
    """At full scale one product takes minutes: the Numba cache is warm and the pool's pages are
    cached from writing it, so the single timed round is not a cold one."""
    return 1 if scale < 1 else 0


# ---------------------------------------------------------------------------------- vs matmul


@pytest.mark.benchmark(group="score-pool-matmul")
def test_pool_score(benchmark, pool_run, bench_scale, pinned_threads):
    benchmark.extra_info.update(role="fastir", target="<= 1.15x numpy fp32 matmuls of the same shapes",
                                scale=bench_scale, what="score_run(POOL, pairs='all'): read + validate, candidates "
                                                        "streamed tile by tile, all 132 cells")
    result = benchmark.pedantic(score_run, args=(pool_run,), warmup_rounds=_warmup(bench_scale),
                                rounds=_rounds(bench_scale))
    benchmark.extra_info.update(queries=len(result.run.queries), candidates=len(result.run.candidates),
                                load_average=os.getloadavg()[0], precision_ran=result.precision["ran"],
                                precision_reason=result.precision.get("reason"))
    assert all(result.cell_stats[c]["skipped"] == 0 for c in result.cells)


def blocked_matmul(q: np.ndarray, c: np.ndarray, cols: int, out: np.ndarray) -> None:
    for s in range(0, len(c), cols):
        block = c[s:s + cols]
        np.matmul(q, block.T, out=out[:, :len(block)])


@pytest.mark.benchmark(group="score-pool-matmul")
def test_pool_numpy_matmul(benchmark, pool_run, bench_scale, pinned_threads):
    from fastir.eval.stream import block_plan

    run = read_run(pool_run)
    q = np.asarray(run.queries.embeddings, dtype=np.float32)
    c = np.concatenate([np.asarray(chunk, dtype=np.float32) for chunk in run.candidates.chunks])
    cols = block_plan(len(q), len(c), DIM, 256).cols  # fastir's tile width at the default --block-mb
    benchmark.extra_info.update(role="peer", peer="numpy fp32 matmul", scale=bench_scale,
                                what=f"Q32 @ C32[block].T in blocks of {cols} columns into a reused buffer, "
                                     "C already float32 (upcast not timed)")
    out = np.empty((len(q), cols), np.float32)
    benchmark.pedantic(blocked_matmul, args=(q, c, cols, out), warmup_rounds=_warmup(bench_scale),
                       rounds=_rounds(bench_scale))


# ------------------------------------------------------------------------------------ memory

_PEAK_SCRIPT = """
import sys, threading, time
from fastir.cli import main
peak = [0]
def anon_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("RssAnon:"))
def sample():
    while True:
        peak[0] = max(peak[0], anon_kib())
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
code = main(sys.argv[1:], own_process=True)  # as the `fastir` executable runs it
peak[0] = max(peak[0], anon_kib())
print("PEAK_ANON_KIB", peak[0], file=sys.stderr)
sys.exit(code)
"""


def peak_anon_mib(run_dir: Path, out: Path) -> float:
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, "score", str(run_dir), "--out", str(out),
                           "--overwrite", "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [x for x in proc.stderr.splitlines() if x.startswith("PEAK_ANON_KIB")][-1]
    return int(line.split()[1]) / 1024


@pytest.mark.benchmark(group="score-pool-memory")
def test_pool_peak_memory(benchmark, pool_run, half_pool_run, tmp_path, bench_scale):
    benchmark.extra_info.update(role="fastir", target="< 1.5 GB anonymous RSS, flat when the pool doubles",
                                compare=False, scale=bench_scale,
                                what="fresh `fastir score POOL` process: peak RssAnon (sampled every 5 ms), "
                                     "memory-mapped tables excluded; the pool and half of it")
    half = peak_anon_mib(half_pool_run, tmp_path / "half")
    whole = benchmark.pedantic(peak_anon_mib, args=(pool_run, tmp_path / "whole"), warmup_rounds=0, rounds=1)
    benchmark.extra_info.update(peak_anon_mib=round(whole, 1), half_pool_peak_anon_mib=round(half, 1),
                                pool_file_mib=round((pool_run / "candidates.arrow").stat().st_size / 2**20, 1))
    assert whole < 1.5 * 1024
    added = len(read_run(pool_run).candidates) - len(read_run(half_pool_run).candidates)
    per_candidate = (whole - half) * 2**20 / max(1, added)
    benchmark.extra_info.update(growth_bytes_per_added_candidate=round(per_candidate, 1))
    if bench_scale >= 0.5:  # at smoke scale the interpreter and libraries dominate both
        assert per_candidate < 0.10 * DIM * 4, (half, whole, per_candidate)


@pytest.mark.benchmark(group="score-pool-memory")
def test_pool_memory_peer_floor(benchmark, pool_run, bench_scale):
    """The float32 copy of the pool a non-streaming scorer (or a faiss IndexFlatIP) holds."""
    n = len(read_run(pool_run).candidates)
    benchmark.extra_info.update(role="peer", peer="float32 copy of the pool", compare=False, scale=bench_scale,
                                fp32_pool_mib=round(n * DIM * 4 / 2**20, 1))
    benchmark.pedantic(lambda: n * DIM * 4, warmup_rounds=0, rounds=1)


# ------------------------------------------------------------------------------ faiss + ranx


def faiss_ranx_pool(run, depth: int = 1000) -> dict:
    """faiss IndexFlatIP top-``depth`` over the pooled index and each language's, then ranx.evaluate."""
    import faiss
    import pandas as pd
    from ranx import Qrels, Run, evaluate

    q = np.ascontiguousarray(run.queries.embeddings, dtype=np.float32)
    c_ids = np.asarray(run.candidates.table.column("id").to_numpy(zero_copy_only=False), dtype=object)
    c_langs = np.asarray(run.candidates.table.column("lang").to_numpy(zero_copy_only=False))
    q_ids = np.asarray(run.queries.ids, dtype=object)
    q_rows, c_rows = run.qrels_index()
    sets = {"all": None} | {lang: np.flatnonzero(c_langs == lang) for lang in LANGS}
    run_parts, qrel_parts = [], []
    for name, cols in sets.items():
        index = faiss.IndexFlatIP(q.shape[1])
        start = 0
        for chunk in run.candidates.chunks:  # add in record batches: the index holds the float32 copy
            rows = slice(None) if cols is None else cols[(cols >= start) & (cols < start + len(chunk))] - start
            index.add(np.ascontiguousarray(chunk[rows], dtype=np.float32))
            start += len(chunk)
        members = np.arange(len(c_ids)) if cols is None else cols
        k = min(depth, len(members))
        dist, idx = index.search(q, k)
        del index
        key = q_ids + f"|{name}"
        run_parts.append(pd.DataFrame({"q_id": pd.Series(np.repeat(key, k), dtype=object),
                                       "doc_id": pd.Series(c_ids[members][idx.ravel()], dtype=object),
                                       "score": dist.ravel().astype(np.float64)}))
        inside = np.ones(len(c_rows), bool) if cols is None else np.isin(c_rows, cols)
        qrel_parts.append(pd.DataFrame({"q_id": pd.Series(q_ids[q_rows[inside]] + f"|{name}", dtype=object),
                                        "doc_id": pd.Series(c_ids[c_rows[inside]], dtype=object), "score": 1}))
    qrels = Qrels.from_df(pd.concat(qrel_parts, ignore_index=True))
    ranx_run = Run.from_df(pd.concat(run_parts, ignore_index=True))
    metrics = ["map", "mrr"] + [f"recall@{k}" for k in KS]
    per_query = evaluate(qrels, ranx_run, metrics, return_mean=False, make_comparable=True)
    qids = list(qrels.keys())
    return {m: dict(zip(qids, per_query[m])) for m in metrics}


@pytest.mark.benchmark(group="score-pool-faiss-ranx")
def test_pool_score_vs_faiss_ranx(benchmark, pool_run, bench_scale, pinned_threads):
    benchmark.extra_info.update(role="fastir", target=">= 1.8x faster than faiss IndexFlatIP top-1000 + ranx",
                                scale=bench_scale, what="score_run(POOL, pairs='all'), exact")
    benchmark.pedantic(score_run, args=(pool_run,), warmup_rounds=0, rounds=1)


@pytest.mark.benchmark(group="score-pool-faiss-ranx")
def test_pool_faiss_ranx(benchmark, pool_run, bench_scale, pinned_threads):
    run = read_run(pool_run)
    benchmark.extra_info.update(role="peer", peer="faiss IndexFlatIP top-1000 + ranx.evaluate", scale=bench_scale,
                                what="pooled index + one per language, search, ranx Qrels/Run from DataFrames, "
                                     "evaluate per query")
    ranx_out = benchmark.pedantic(faiss_ranx_pool, args=(run,), warmup_rounds=0, rounds=1)
    result = score_run(run)
    m = result.metrics
    errors = []
    for s, name in enumerate(result.cand_langs + ["all"]):
        for i in np.flatnonzero(m.nrel[:, s] > 0):
            truncated = ranx_out["map"][f"{run.queries.ids[i]}|{name}"]
            assert truncated <= m["map"][i, s] + 1e-6  # top-1000 AP never exceeds the exact one
            errors.append(m["map"][i, s] - truncated)
    errors = np.asarray(errors)
    benchmark.extra_info.update(map_error_mean=float(errors.mean()), map_error_max=float(errors.max()),
                                map_error_queries=int((errors > 1e-6).sum()), cells_queries=len(errors))


# ---------------------------------------------------------------------------------- torchrun


def test_pool_torchrun_two_gloo_ranks_identical(pool_run, tmp_path):
    fastir_bin = shutil.which("fastir") or str(Path(sys.executable).parent / "fastir")
    common = ["score", str(pool_run), "--per-query", "--device", "cpu"]
    one = subprocess.run([fastir_bin, *common, "--out", str(tmp_path / "one")], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "--no-python", fastir_bin, *common, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr[-2000:]
    for f in sorted((tmp_path / "one").iterdir()):
        assert f.read_bytes() == (tmp_path / "two" / f.name).read_bytes(), f.name
