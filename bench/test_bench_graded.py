"""Graded multilingual scoring: fastir's exact nDCG@10 + Recall@100 + mAP for every X→Y and X→all
cell vs what a user would do with the peers, and vs the floor of one fp32 Q·Cᵀ (issue 16, "Speed").

Data (``bench_scale`` 1): 10 languages x 1,000 queries = 10,000 queries, 10 x 20,000 = 200,000
candidates, d = 384, float16, unit norm. A query is about one topic; each language holds three
judged passages of every topic (grades 2, 1 and 0) plus as many unjudged distractors, so a query has
two relevant passages per language (20 in the pooled X→all set) and 30 judgements. Embeddings:
topic (weighted by grade) + a language vector + noise, so X→X beats X→Y and the pooled ranking
shows language bias. Generated once per scale and cached as a run dir under
``$FASTIR_BENCH_CACHE`` (default ``~/.cache/fastir-bench``), named by scale and generator version.

Group ``score-graded`` (one run, same data):

* fastir: ``score_run(RUN, pairs="all", metrics="ndcg@10,recall@100,map")`` — read + validate the
  run, all 100 X→Y cells and 10 X→all cells, exact over the full ranking.
  Targets: >= 3x faster than faiss + pytrec_eval; <= 1.3x the fp32 floor.
* peer ``faiss + pytrec_eval``: faiss ``IndexFlatIP`` top-100 over a per-language index for each
  X→Y cell (one search of all queries per language) and over the pooled index for X→all, then one
  ``pytrec_eval.RelevanceEvaluator`` per cell (dict run and qrels built per cell, as a user does).
* peer ``faiss + ranx``: the same faiss top-100, then ``ranx.evaluate`` per cell (dict Qrels/Run).
* peer ``fp32 Q·Cᵀ``: numpy float32 ``Q @ C.T`` of the same shapes (inputs already float32), in
  blocks of 1,000 queries (the whole 10,000 x 200,000 float32 matrix is 8 GB).

Checks: pytrec_eval's nDCG@10 and Recall@100 on the top-100 equal fastir's exact values (top-100
holds everything those cut-offs see); mAP does not where the top-100 cuts relevant passages
off — the peers' mAP error (mean and max absolute, share of queries wrong) is recorded per setting.
Peak RSS of fastir and of the floor: each run once more in a fresh process (``ru_maxrss``).

    FASTIR_BENCH_SCALE=1 pytest bench/test_bench_graded.py --benchmark-enable --benchmark-only -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from fastir.eval.score import score_run
from fastir.runs.rundir import read_run, write_run

LANGS = ("ar", "de", "en", "es", "fi", "hi", "ja", "ru", "sw", "zh")
QUERIES_PER_LANG, CANDIDATES_PER_LANG, DIM = 1_000, 20_000, 384
METRICS = "ndcg@10,recall@100,map"
DEPTH = 100
BLOCK = 1_000
GENERATOR = 1  # bump when graded_like changes: the cache key
GROUP = "score-graded"


def graded_like(scale: float, seed: int = 0) -> dict:
    """write_run keyword arguments for the graded collection at ``scale`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_q = max(5, round(QUERIES_PER_LANG * scale))
    n_c = max(60, round(CANDIDATES_PER_LANG * scale))
    topics_n = n_c // 6  # 3 judged passages per topic and language; the other half are distractors
    topics = rng.standard_normal((topics_n, DIM), dtype=np.float32)
    lang_vec = rng.standard_normal((len(LANGS), DIM), dtype=np.float32) * 0.8
    weight = np.array([1.2, 0.8, 0.3], np.float32)  # grades 2, 1, 0
    c_ids, c_langs, c_blocks = [], [], []
    for li, lang in enumerate(LANGS):
        j = np.arange(n_c)
        judged = j < 3 * topics_n
        topic = np.where(judged, j // 3, rng.integers(0, topics_n, n_c))
        w = np.where(judged, weight[j % 3], rng.uniform(0.0, 0.6, n_c).astype(np.float32))
        view = rng.standard_normal((topics_n, DIM), dtype=np.float32) * 0.6  # how this language sees topics
        noise = rng.standard_normal((n_c, DIM), dtype=np.float32) * 1.6
        c_blocks.append(w[:, None] * (topics[topic] + view[topic]) + lang_vec[li] + noise)
        c_ids += [f"{lang}-d{k:06d}" for k in range(n_c)]
        c_langs += [lang] * n_c
    q_ids, q_langs, q_blocks, qr_q, qr_c, qr_g = [], [], [], [], [], []
    for li, lang in enumerate(LANGS):
        topic = rng.integers(0, topics_n, n_q)
        noise = rng.standard_normal((n_q, DIM), dtype=np.float32) * 1.6
        q_blocks.append(topics[topic] + lang_vec[li] * 0.8 + noise)
        for i, t in enumerate(topic):
            qid = f"{lang}-q{i:05d}"
            q_ids.append(qid)
            q_langs.append(lang)
            for other in LANGS:
                for g in range(3):
                    qr_q.append(qid)
                    qr_c.append(f"{other}-d{3 * t + g:06d}")
                    qr_g.append(2 - g)

    def unit_fp16(blocks):
        x = np.concatenate(blocks)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float16)

    return dict(meta={"dataset": "graded-synthetic", "model": "synthetic", "normalized": True, "dtype": "float16"},
                query_ids=q_ids, query_langs=q_langs, query_embeddings=unit_fp16(q_blocks),
                candidate_ids=c_ids, candidate_langs=c_langs, candidate_embeddings=unit_fp16(c_blocks),
                qrels_query_ids=qr_q, qrels_candidate_ids=qr_c, qrels_relevance=qr_g)


def cache_dir() -> Path:
    return Path(os.environ.get("FASTIR_BENCH_CACHE", Path.home() / ".cache" / "fastir-bench"))


@pytest.fixture(scope="module")
def graded_run(bench_scale) -> Path:
    path = cache_dir() / f"graded-s{bench_scale:g}-g{GENERATOR}"
    if not (path / "run.json").is_file():
        write_run(path, **graded_like(bench_scale), overwrite=True)
    return path


# ------------------------------------------------------------------------------------ peers


class Peers:
    """faiss top-100 per cell, and the per-cell dict qrels a pytrec_eval / ranx user builds."""

    def __init__(self, run):
        self.q = np.ascontiguousarray(run.queries.embeddings, dtype=np.float32)
        self.c = np.asarray(run.candidates.embeddings, dtype=np.float32)
        self.q_ids = np.asarray(run.queries.ids, dtype=object)
        self.c_ids = np.asarray(run.candidates.ids, dtype=object)
        self.q_langs = np.asarray(run.queries.langs)
        self.c_langs = np.asarray(run.candidates.langs)
        self.langs = list(dict.fromkeys(run.queries.langs))
        self.qrels = run  # kept for qrels_graded()

    def search(self) -> dict:
        """{candidate set: (scores, candidate ids)} of the top-100 of every query: one faiss index per
        language and one over the pool."""
        import faiss

        found = {}
        for name in [*self.langs, "all"]:
            cols = np.arange(len(self.c_ids)) if name == "all" else np.flatnonzero(self.c_langs == name)
            index = faiss.IndexFlatIP(self.c.shape[1])
            index.add(np.ascontiguousarray(self.c[cols]))
            scores, idx = index.search(self.q, min(DEPTH, len(cols)))
            found[name] = (scores, self.c_ids[cols][idx])
        return found

    def cells(self, found):
        """Yield (x, y, run dict, qrels dict) per cell, built as plain dicts."""
        q_rows, c_rows, grades = self.qrels.qrels_graded()
        by_query: dict[int, list] = {}
        for qr, cr, g in zip(q_rows.tolist(), c_rows.tolist(), grades.tolist()):
            by_query.setdefault(qr, []).append((self.c_ids[cr], self.c_langs[cr], g))
        for x in self.langs:
            rows = np.flatnonzero(self.q_langs == x)
            for y in [*self.langs, "all"]:
                scores, ids = found[y]
                run = {self.q_ids[i]: dict(zip(ids[i].tolist(), scores[i].tolist())) for i in rows}
                qrels = {self.q_ids[i]: {d: g for d, lang, g in by_query.get(i, []) if y == "all" or lang == y}
                         for i in rows}
                yield x, y, run, qrels


def faiss_pytrec_eval(peers: Peers) -> dict:
    out = {}
    for x, y, run, qrels in peers.cells(peers.search()):
        ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map"})
        out[x, y] = ev.evaluate(run)
    return out


def faiss_ranx(peers: Peers) -> dict:
    from ranx import Qrels, Run, evaluate

    names = ["ndcg@10", "recall@100", "map"]
    out = {}
    for x, y, run, qrels in peers.cells(peers.search()):
        ranx_qrels = Qrels(qrels)
        values = evaluate(ranx_qrels, Run(run), names, return_mean=False, make_comparable=True)
        out[x, y] = {q: {name: float(values[name][k]) for name in names} for k, q in enumerate(ranx_qrels.keys())}
    return out


def _warm_ranx() -> None:
    """Compile ranx's Numba kernels before timing (fastir's are cached on disk and warmed up too)."""
    from ranx import Qrels, Run, evaluate

    evaluate(Qrels({"q": {"d": 1}}), Run({"q": {"d": 1.0, "e": 0.5}}), ["ndcg@10", "recall@100", "map"])


def blocked_matmul(q32: np.ndarray, c32: np.ndarray) -> float:
    """Q·Cᵀ in blocks of BLOCK queries; returns a checksum so the work is not optimised away."""
    total = 0.0
    ct = c32.T
    for start in range(0, len(q32), BLOCK):
        total += float((q32[start:start + BLOCK] @ ct)[:, 0].sum())
    return total


# ------------------------------------------------------------------------------------ memory

_RSS_CHILD = """
import json, resource, sys, numpy as np
path, kind = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from test_bench_graded import METRICS, blocked_matmul
if kind == "fastir":
    from fastir.eval.score import score_run
    score_run(path, pairs="all", metrics=METRICS)
else:
    from fastir.runs.rundir import read_run
    run = read_run(path)
    q32 = np.asarray(run.queries.embeddings, dtype=np.float32)
    c32 = np.asarray(run.candidates.embeddings, dtype=np.float32)
    blocked_matmul(q32, c32)
print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def peak_rss_mb(path: Path, kind: str) -> float:
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), kind, os.path.dirname(__file__)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


# ------------------------------------------------------------------------------------ groups

_RESULTS: dict = {}


def _load(benchmark) -> None:
    benchmark.extra_info["load_avg_1m"] = round(os.getloadavg()[0], 2)


@pytest.fixture(scope="module")
def fastir_result(graded_run):
    return score_run(graded_run, pairs="all", metrics=METRICS)


@pytest.mark.benchmark(group=GROUP)
def test_fastir_graded(benchmark, graded_run, bench_scale, pinned_threads):
    benchmark.extra_info.update(role="fastir", scale=bench_scale,
                                target=">= 3x faiss + pytrec_eval; <= 1.3x fp32 Q·Cᵀ",
                                what="score_run(RUN, pairs='all', metrics='ndcg@10,recall@100,map'): read + "
                                     "validate, 100 X→Y + 10 X→all cells, exact over the full ranking")
    result = benchmark.pedantic(score_run, args=(graded_run,), kwargs={"pairs": "all", "metrics": METRICS},
                                warmup_rounds=1, rounds=1)
    _load(benchmark)
    assert len(result.cells) == len(LANGS) ** 2 + len(LANGS)
    benchmark.extra_info["peak_rss_mb"] = peak_rss_mb(graded_run, "fastir")
    _RESULTS["fastir"] = result


@pytest.mark.benchmark(group=GROUP)
def test_fp32_floor(benchmark, graded_run, bench_scale, pinned_threads):
    run = read_run(graded_run)
    q32 = np.asarray(run.queries.embeddings, dtype=np.float32)
    c32 = np.asarray(run.candidates.embeddings, dtype=np.float32)
    benchmark.extra_info.update(role="peer", peer="fp32 Q·Cᵀ", scale=bench_scale,
                                what=f"numpy float32 Q @ C.T in blocks of {BLOCK} queries, inputs already float32")
    benchmark.pedantic(blocked_matmul, args=(q32, c32), warmup_rounds=1, rounds=1)
    _load(benchmark)
    benchmark.extra_info["peak_rss_mb"] = peak_rss_mb(graded_run, "floor")


def _map_error(result, peer_values: dict, get) -> dict:
    """Peers' mAP (top-100) against fastir's exact mAP, per setting: mean / max absolute error and the
    share of queries whose value differs by more than 1e-9; and the largest nDCG@10 / Recall@100 gap."""
    m = result.metrics
    q_ids = result.run.queries.ids
    row_of = {q: i for i, q in enumerate(q_ids)}
    errors = {"cross": [], "multi": []}
    cut_gap = 0.0
    for (x, y), per_query in peer_values.items():
        s = result.set_index(y)
        for qid, values in per_query.items():
            i = row_of[qid]
            if m.nrel[i, s] == 0:
                continue
            errors["multi" if y == "all" else "cross"].append(abs(get(values, "map") - m["map"][i, s]))
            cut_gap = max(cut_gap, abs(get(values, "ndcg@10") - m["ndcg@10"][i, s]),
                          abs(get(values, "recall@100") - m["recall@100"][i, s]))
    out = {"max_ndcg10_recall100_gap": cut_gap}
    for setting, errs in errors.items():
        e = np.asarray(errs)
        out[f"map_error_{setting}"] = {"mean": float(e.mean()), "max": float(e.max()),
                                       "share_wrong": float((e > 1e-9).mean())}
    return out


def _pytrec_get(values, name):
    return values[{"map": "map", "ndcg@10": "ndcg_cut_10", "recall@100": "recall_100"}[name]]


@pytest.mark.benchmark(group=GROUP)
def test_faiss_pytrec_eval(benchmark, graded_run, fastir_result, bench_scale, pinned_threads):
    peers = Peers(read_run(graded_run))
    benchmark.extra_info.update(role="peer", peer="faiss + pytrec_eval", scale=bench_scale,
                                what="faiss IndexFlatIP top-100 per language index (X→Y) and pooled (X→all), "
                                     "dict run + qrels per cell, pytrec_eval ndcg_cut.10 recall.100 map")
    values = benchmark.pedantic(faiss_pytrec_eval, args=(peers,), warmup_rounds=0, rounds=1)
    _load(benchmark)
    err = _map_error(fastir_result, values, _pytrec_get)
    benchmark.extra_info.update(err)
    print(json.dumps({"faiss + pytrec_eval": err}))
    assert err["max_ndcg10_recall100_gap"] < 1e-6, err  # top-100 holds all that nDCG@10 and R@100 see


@pytest.mark.benchmark(group=GROUP)
def test_faiss_ranx(benchmark, graded_run, fastir_result, bench_scale, pinned_threads):
    peers = Peers(read_run(graded_run))
    benchmark.extra_info.update(role="peer", peer="faiss + ranx", scale=bench_scale,
                                what="faiss IndexFlatIP top-100 as above, ranx.evaluate per cell (Numba, "
                                     "compiled before timing)")
    _warm_ranx()
    values = benchmark.pedantic(faiss_ranx, args=(peers,), warmup_rounds=0, rounds=1)
    _load(benchmark)
    err = _map_error(fastir_result, values, lambda d, name: d[name])
    benchmark.extra_info.update(err)
    print(json.dumps({"faiss + ranx": err}))
    assert err["max_ndcg10_recall100_gap"] < 1e-6, err
