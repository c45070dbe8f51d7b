"""fastir.interop.mteb_results: a score dir as MTEB's TaskResult JSON, loaded back by mteb's own loaders
(``TaskResult.from_disk`` and ``ResultCache.load_results`` over a results folder); one entry per cell with
fastir's values, languages as the task writes them; the refusals (unknown or non-retrieval task, a
results file of another task, a main score the score does not hold), nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastir.core.errors import InputError
from fastir.eval.report import write_scores
from fastir.eval.score import score_run
from fastir.interop.mteb_results import export_mteb, mteb_metric, task_result

LANGS = ("de", "en", "zh")
TASK = "XQuADRetrieval"


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    from tests.conftest import write_test_run

    rng = np.random.default_rng(0)
    c_langs = [lang for lang in LANGS for _ in range(10)]
    qrels = [(q, q % 10 + 10 * i) for q in range(12) for i in range(3)]
    path = write_test_run(tmp_path_factory.mktemp("mteb"), q_emb=rng.normal(size=(12, 8)).astype(np.float32),
                          q_langs=[LANGS[q % 3] for q in range(12)], c_emb=rng.normal(size=(30, 8)).astype(np.float32),
                          c_langs=c_langs, qrels=qrels)
    result = score_run(path, metrics="map,mrr,ndcg@10,recall@10,100")
    write_scores(result, path / "scores")
    return path / "scores", result


def test_written_file_loads_through_mtebs_own_loaders_with_every_cell(scores, tmp_path):
    from mteb.cache import ResultCache
    from mteb.results import TaskResult

    out = tmp_path / "cache" / "results" / "my-model" / "rev1" / f"{TASK}.json"
    assert export_mteb(scores[0], TASK, out=out) == out
    result = scores[1]
    loaded = TaskResult.from_disk(out)
    assert loaded.task_name == TASK and list(loaded.scores) == ["validation"]
    entries = {e["hf_subset"]: e for e in loaded.scores["validation"]}
    assert list(entries) == [c.name for c in result.cells]
    codes = {"de": "deu-Latn", "en": "eng-Latn", "zh": "zho-Hans"}  # the task's own codes
    for cell in result.cells:
        entry, stats = entries[cell.name], result.cell_stats[cell]
        assert entry["main_score"] == entry["ndcg@10"] == entry["ndcg_at_10"] == stats["ndcg@10"]
        assert entry["map"] == stats["map"] and entry["mrr"] == stats["mrr"] and entry["recall_at_100"] == stats["recall@100"]
        assert "map_at_1000" not in entry and "mrr_at_1000" not in entry
        assert ("rank_distance" in entry) == (cell.kind == "multi")
        assert entry["fastir"]["setting"] == cell.kind and entry["fastir"]["queries"] == stats["queries"]
        others = [codes[y] for y in LANGS if y != cell.query_lang] if cell.kind == "multi" else \
            [] if cell.kind == "mono" else [codes[cell.cand_lang]]
        assert entry["languages"] == [codes[cell.query_lang], *others]
    assert loaded.get_score() == pytest.approx(np.mean([result.cell_stats[c]["ndcg@10"] for c in result.cells]))
    cache = ResultCache(tmp_path / "cache").load_results(tasks=[TASK], require_model_meta=False, include_remote=False)
    [model] = cache.model_results
    assert model.model_name == "my-model" and model.task_results[0].scores == loaded.scores


def test_main_score_split_and_language_codes_from_mtebs_tables(scores):
    mlqa = task_result(scores[0], "MLQARetrieval", split="test", main_score="map")
    entry = mlqa["scores"]["test"][0]
    assert entry["main_score"] == entry["map"] and entry["fastir"]["main_score"] == "map"
    assert entry["languages"] == ["deu-Latn"]  # MLQA's subsets are ISO 639-3 pairs: MTEB's ISO tables
    assert mteb_metric("ndcg_at_10") == "ndcg@10" and mteb_metric("map_at_1000") is None


def test_refusals_write_nothing(scores, tmp_path, make_run):
    out = tmp_path / "r.json"
    cases = [
        (dict(task="NoSuchTask"), "^--task: unknown MTEB task 'NoSuchTask'$"),
        (dict(task="STS17"), "STS17 is an MTEB STS task, not a retrieval task"),
        (dict(task=TASK, split="train"), "'train' is not a split of XQuADRetrieval"),
        (dict(task=TASK, main_score="ndcg@5"), "'ndcg@5' is not among the scored metrics"),
        (dict(task=TASK, main_score="rank_distance"), "rank_distance is not defined on every cell"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            export_mteb(scores[0], out=out, **kwargs)
    assert not out.exists()
    run = make_run(tmp_path, q_emb=np.eye(2, dtype=np.float32), q_langs=["de", "en"],
                   c_emb=np.eye(2, dtype=np.float32), c_langs=["de", "en"], qrels=[(0, 0), (1, 1)])
    write_scores(score_run(run, pairs="mono"), tmp_path / "s")
    with pytest.raises(InputError, match="XQuADRetrieval's main score ndcg_at_10 is fastir's ndcg@10, which this score"):
        export_mteb(tmp_path / "s", TASK, out=out)
    assert not out.exists()


def test_a_results_file_of_another_task(scores, tmp_path):
    mine = export_mteb(scores[0], TASK, out=tmp_path / "x.json")
    before = mine.read_bytes()
    with pytest.raises(InputError, match=r"x.json: an MTEB result file \(task XQuADRetrieval\), not a `fastir score`"):
        export_mteb(mine, TASK, out=tmp_path / "y.json")
    with pytest.raises(InputError, match="output file exists; pass --overwrite"):
        export_mteb(scores[0], "MLQARetrieval", out=mine, main_score="map")
    with pytest.raises(InputError, match="task_name: holds the results of the MTEB task XQuADRetrieval, not of MLQA"):
        export_mteb(scores[0], "MLQARetrieval", out=mine, main_score="map", overwrite=True)
    assert mine.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
    export_mteb(scores[0], TASK, out=mine, overwrite=True)  # the same task: replaced
    assert json.loads(mine.read_text())["task_name"] == TASK


def test_at_a_relevance_threshold_above_one_recall_keeps_only_its_fastir_name(tmp_path, make_run):
    # MTEB's recall_at_k counts every grade >= 1; fastir's recall@k at threshold 2 counts grade >= 2 only
    assert mteb_metric("recall_at_10", 2) is None and mteb_metric("ndcg_at_10", 2) == "ndcg@10"
    run = make_run(tmp_path, q_emb=np.eye(2, dtype=np.float32), q_langs=["de", "en"],
                   c_emb=np.eye(2, dtype=np.float32), c_langs=["de", "en"], qrels=[(0, 0), (1, 1), (0, 1), (1, 0)],
                   relevance=[2, 2, 1, 1])
    write_scores(score_run(run, pairs="mono,multi", metrics="ndcg@10,recall@10", relevance_threshold=2),
                 tmp_path / "s")
    entry = task_result(tmp_path / "s", TASK)["scores"]["validation"][0]
    assert entry["ndcg_at_10"] == entry["ndcg@10"] == entry["main_score"] and "recall@10" in entry
    assert "recall_at_10" not in entry and entry["fastir"]["relevance_threshold"] == 2
