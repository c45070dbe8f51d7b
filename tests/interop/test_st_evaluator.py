"""fastir.interop.st_evaluator: FastirEvaluator inside a real SentenceTransformerTrainer run (CPU, the
bundled MiniLM) equals `fastir embed` + `fastir score` of the best checkpoint to 1e-6."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("datasets")

LANGS = ("en", "de", "es")
PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def xquad_tiny(tmp_path_factory):
    """The first two paragraphs of XQuAD-R in three languages (real, parallel text) as a dataset dir."""
    from fastir.data.lareqa import resolve_dataset_dir

    _, src, _ = resolve_dataset_dir("xquad-r")
    root = tmp_path_factory.mktemp("st_eval") / "xquad-tiny"
    root.mkdir()
    for lang in LANGS:
        data = json.loads((src / f"{lang}.json").read_text(encoding="utf-8"))
        article = data["data"][0]
        data["data"] = [{**article, "paragraphs": article["paragraphs"][:2]}]
        (root / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")
    return str(root)


def _model(minilm_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_path, device="cpu", prompts=dict(PROMPTS))
    model.max_seq_length = 48
    return model


def _train_rows(dataset_dir, n=16):
    """(question, answer sentence) pairs of the tiny set, English and German."""
    from fastir.data.registry import open_dataset

    ds = open_dataset(dataset_dir, langs=["en", "de"])
    q, c, r = ds.queries(), ds.candidates(), ds.qrels()
    text_q, text_c = dict(zip(q.ids, q.texts)), dict(zip(c.ids, c.texts))
    rows = [(text_q[a], text_c[b]) for a, b in zip(r.query_ids, r.candidate_ids)][:n]
    return {"anchor": [a for a, _ in rows], "positive": [b for _, b in rows]}


def test_trainer_run_equals_embed_and_score(tmp_path, minilm_path, xquad_tiny):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from fastir.cli import main
    from fastir.interop.st_evaluator import FastirEvaluator

    model = _model(minilm_path)
    evaluator = FastirEvaluator(xquad_tiny, name="xq", cell_metrics=True, metrics="map,mrr,recall@1,5")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, learning_rate=5e-4,
        eval_strategy="steps", eval_steps=2, save_strategy="steps", save_steps=2, load_best_model_at_end=True,
        metric_for_best_model="eval_xq_multi_map", report_to="none", use_cpu=True, seed=0, logging_steps=2)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(_train_rows(xquad_tiny)),
                                         loss=MultipleNegativesRankingLoss(model), evaluator=evaluator)
    trainer.train()

    evals = {h["step"]: h for h in trainer.state.log_history if "eval_xq_multi_map" in h}
    assert sorted(evals) == [2, 4]
    best_step = max(evals, key=lambda s: evals[s]["eval_xq_multi_map"])
    best = trainer.state.best_model_checkpoint
    assert best.endswith(f"checkpoint-{best_step}")
    assert trainer.state.best_metric == evals[best_step]["eval_xq_multi_map"]
    assert evaluator.primary_metric == "xq_multi_map" and evaluator.greater_is_better

    run, scores = tmp_path / "run", tmp_path / "scores"
    assert main(["embed", "--dataset", xquad_tiny, "--model", best, "--out", str(run), "--store", "fp32",
                 "--query-prefix", PROMPTS["query"], "--passage-prefix", PROMPTS["document"], "--device", "cpu"]) == 0
    assert main(["score", str(run), "--out", str(scores), "--per-query", "--metrics", "map,mrr,recall@1,5"]) == 0
    summary = json.loads((scores / "summary.json").read_text())["summary"]
    got = evals[best_step]
    for kind in ("mono", "cross", "multi"):
        for metric in ("map", "mrr", "recall@1", "recall@5"):
            assert got[f"eval_xq_{kind}_{metric}"] == pytest.approx(summary[kind][metric], abs=1e-6)
    assert got["eval_xq_micro_multi_map"] == pytest.approx(summary["micro_multi_map"], abs=1e-6)
    assert got["eval_xq_rank_distance"] == pytest.approx(summary["rank_distance"]["macro"], abs=1e-6)
    pairs = json.loads(json.dumps(_pairs(scores)))
    for cell, values in pairs.items():
        assert got[f"eval_xq_{cell}_map"] == pytest.approx(values["map"], abs=1e-6)

    # the evaluator's own files (output_path = OUTPUT_DIR/eval) are fastir score's files
    own = Path(args.output_dir) / "eval" / f"xq-steps-{best_step}"
    assert json.loads((own / "summary.json").read_text())["summary"]["multi"]["map"] == pytest.approx(
        summary["multi"]["map"], abs=1e-6)
    import pyarrow.parquet as pq

    mine, theirs = pq.read_table(own / "per_query.parquet"), pq.read_table(scores / "per_query.parquet")
    assert mine.column_names == theirs.column_names and mine.num_rows == theirs.num_rows
    np.testing.assert_allclose(mine.column("ap").to_numpy(), theirs.column("ap").to_numpy(), atol=1e-6)


def _pairs(scores: Path) -> dict:
    import pyarrow.parquet as pq

    rows = pq.read_table(scores / "pairs.parquet").to_pylist()
    return {f"{r['query_lang']}-{r['cand_lang']}": r for r in rows}


def test_query_cap_prompts_and_keys(minilm_path, xquad_tiny):
    from fastir.interop.st_evaluator import FastirEvaluator

    model = _model(minilm_path)
    capped = FastirEvaluator(xquad_tiny, langs=["en", "de"], max_queries=10, seed=3, pairs="multi", name="")
    again = FastirEvaluator(xquad_tiny, langs=["en", "de"], max_queries=10, seed=3, pairs="multi", name="")
    assert len(capped.data.query_ids) == 10 and capped.data.query_ids == again.data.query_ids
    out = capped(model)
    assert set(out) == {"multi_map", "multi_mrr", "multi_recall@1", "multi_recall@5", "multi_recall@10",
                        "multi_recall@20", "multi_recall@100", "micro_multi_map", "rank_distance"}
    # prompts are honoured: the model's own ("query: ") differs from an explicit empty one
    plain = FastirEvaluator(xquad_tiny, langs=["en", "de"], max_queries=10, seed=3, pairs="multi", name="",
                            query_prompt="", corpus_prompt="")
    assert plain(model)["multi_map"] != out["multi_map"]


def test_bad_input_is_one_line(minilm_path, xquad_tiny, tmp_path):
    from fastir.core.errors import InputError
    from fastir.interop.st_evaluator import FastirEvaluator

    with pytest.raises(InputError, match=r"^nope: dataset: unknown dataset"):
        FastirEvaluator("nope")
    with pytest.raises(InputError, match=r"--metrics: unknown metric"):
        FastirEvaluator(xquad_tiny, metrics="mapp")
    model = _model(minilm_path)
    bad = FastirEvaluator(xquad_tiny, langs=["en"], max_queries=4, pairs="mono", primary_metric="multi_map")
    with pytest.raises(InputError, match="primary_metric: 'multi_map' is not among the evaluator's keys"):
        bad(model)
    model.similarity_fn_name = "euclidean"
    with pytest.raises(InputError, match="similarity_fn_name: fastir ranks by dot products"):
        FastirEvaluator(xquad_tiny, langs=["en"], max_queries=4)(model)


def test_missing_sentence_transformers_is_one_line(monkeypatch):
    import sys

    from fastir.core.errors import InputError
    from fastir.interop import st_evaluator

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.delitem(st_evaluator.__dict__, "FastirEvaluator", raising=False)
    with pytest.raises(InputError, match=r"^sentence_transformers: not installed; pip install 'fastir\[st\]'$"):
        st_evaluator.FastirEvaluator  # noqa: B018


def _ddp_rank(rank: int, port: int, minilm_path: str, dataset: str, results) -> None:
    """One of two gloo ranks, as SentenceTransformerTrainer runs evaluators: rank 0 evaluates, its
    encode_* calls sharded over both ranks; rank 1 serves them."""
    import torch.distributed as td
    from sentence_transformers.util.distributed import distributed_evaluation

    from fastir.interop.st_evaluator import FastirEvaluator

    td.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = _model(minilm_path)
        evaluator = FastirEvaluator(dataset, langs=["en", "de"], name="")
        with distributed_evaluation(model) as runs_it:
            results.put((rank, evaluator(model) if runs_it else None))
    finally:
        td.destroy_process_group()


def test_ddp_rank_zero_scores_once_with_sharded_encoding(minilm_path, xquad_tiny):
    import socket

    import torch.multiprocessing as mp

    from fastir.interop.st_evaluator import FastirEvaluator

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_ddp_rank, args=(r, port, minilm_path, xquad_tiny, results)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(60)
    assert got[1] is None  # rank 1 only encoded its shard
    alone = FastirEvaluator(xquad_tiny, langs=["en", "de"], name="")(_model(minilm_path))
    assert set(got[0]) == set(alone)
    for key, value in alone.items():
        assert got[0][key] == pytest.approx(value, abs=1e-6), key
