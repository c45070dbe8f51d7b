"""Mean rank correlation of parallel queries over the whole pool (arXiv 2509.06195): fastir vs what a
user does with scipy (issue 29, item 4).

Data (``bench_scale`` 1 = XQuAD-R's shape): 1,190 questions in 11 languages = 13,090 queries
(parallel groups of 11), 11 x 1,183 = 13,013 candidates, d = 256, float32: a topic vector per
question and answer, a language vector, noise. Generated in memory per run (no cache).

Group ``preference-mrc`` (one run, same data):

* fastir: ``language_preference(RUN, pivot="en", k=10)`` — read the run, one float32 Q·Cᵀ block of
  whole groups at a time, MRC exactly on full rankings (average ranks over ties), plus the
  query-language preference rate and the pivot share@10. Target: >= 3x the scipy peer.
* peer ``numpy + scipy``: numpy float32 ``Q_g @ C.T`` per group, then ``scipy.stats.spearmanr`` of
  the group's rows (one call: its 11 x 11 correlation matrix), each row's mean off the diagonal.

Check: both give the same MRC per query (1e-9).

    FASTIR_BENCH_SCALE=1 pytest bench/test_bench_preference.py --benchmark-enable --benchmark-only -s
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastir.eval.preference import language_preference
from fastir.runs.rundir import write_run

LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi")
QUESTIONS, ITEMS_PER_LANG, DIM = 1_190, 1_183, 256
GROUP = "preference-mrc"
_RESULTS: dict = {}


def parallel_like(scale: float, seed: int = 0) -> dict:
    """write_run keyword arguments: parallel questions (groups of 11) over a parallel answer pool."""
    rng = np.random.default_rng(seed)
    n_q, n_items = max(3, round(QUESTIONS * scale)), max(10, round(ITEMS_PER_LANG * scale))
    topics = rng.standard_normal((n_items, DIM), dtype=np.float32)
    lang_vec = rng.standard_normal((len(LANGS), DIM), dtype=np.float32) * 0.7
    c_emb = np.concatenate([topics + lang_vec[li] + rng.standard_normal((n_items, DIM), dtype=np.float32)
                            for li in range(len(LANGS))])
    answer = rng.integers(0, n_items, n_q)
    q_emb = np.concatenate([topics[answer] + lang_vec[li] * 0.5 + rng.standard_normal((n_q, DIM), dtype=np.float32)
                            for li in range(len(LANGS))])
    q_ids = [f"{lang}-q{i}" for lang in LANGS for i in range(n_q)]
    c_ids = [f"{lang}-c{j}" for lang in LANGS for j in range(n_items)]
    qrels = [(f"{lang}-q{i}", f"{other}-c{answer[i]}") for lang in LANGS for i in range(n_q) for other in LANGS]
    return dict(meta={"dataset": "bench-parallel", "model": "synthetic", "normalized": False, "dtype": "float32"},
                query_ids=q_ids, query_langs=[lang for lang in LANGS for _ in range(n_q)],
                query_groups=[f"g{i}" for _ in LANGS for i in range(n_q)], query_embeddings=q_emb,
                candidate_ids=c_ids, candidate_langs=[lang for lang in LANGS for _ in range(n_items)],
                candidate_embeddings=c_emb, qrels_query_ids=[q for q, _ in qrels],
                qrels_candidate_ids=[c for _, c in qrels], qrels_relevance=[1] * len(qrels))


@pytest.fixture(scope="module")
def parallel_run(bench_scale, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench-preference") / "run"
    write_run(path, **parallel_like(bench_scale))
    return path


def scipy_mrc(path) -> np.ndarray:
    """Per query: numpy's group product, scipy's Spearman matrix of the group, its mean off the diagonal."""
    from scipy.stats import spearmanr

    from fastir.runs.rundir import read_run

    run = read_run(path)
    q = np.asarray(run.queries.embeddings, dtype=np.float32)
    c = np.asarray(run.candidates.embeddings, dtype=np.float32)
    groups = np.asarray(run.queries.xling_ids)
    out = np.full(len(q), np.nan)
    for g in dict.fromkeys(groups.tolist()):
        rows = np.flatnonzero(groups == g)
        rho = spearmanr((q[rows] @ c.T).T).statistic
        out[rows] = (rho.sum(axis=1) - 1.0) / (len(rows) - 1)
    return out


def _load(benchmark) -> None:
    benchmark.extra_info["load_avg_1m"] = round(os.getloadavg()[0], 2)


@pytest.mark.benchmark(group=GROUP)
def test_fastir_preference(benchmark, parallel_run, bench_scale, pinned_threads):
    benchmark.extra_info.update(role="fastir", scale=bench_scale, target=">= 3x numpy + scipy",
                                what="language_preference(RUN, pivot='en', k=10): MRC exact on full rankings, "
                                     "query-language preference, pivot share@10")
    result = benchmark.pedantic(language_preference, args=(parallel_run,), kwargs={"pivot": "en", "k": 10},
                                warmup_rounds=1, rounds=1)
    _load(benchmark)
    _RESULTS["fastir"] = result.values["mrc"]


@pytest.mark.benchmark(group=GROUP)
def test_numpy_scipy_peer(benchmark, parallel_run, bench_scale, pinned_threads):
    benchmark.extra_info.update(role="peer", peer="numpy + scipy", scale=bench_scale,
                                what="per group: float32 Q_g @ C.T, scipy.stats.spearmanr of its rows (MRC only)")
    mrc = benchmark.pedantic(scipy_mrc, args=(parallel_run,), warmup_rounds=0, rounds=1)
    _load(benchmark)
    if "fastir" in _RESULTS:
        assert np.allclose(_RESULTS["fastir"], mrc, atol=1e-9, rtol=0)
