"""``fastir experiment`` end to end on the CPU: tiny BERT, synthetic train table, synthetic LAReQA dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastir.cli import main


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Reference AP: (1/R) sum_k k / rank_k (continuous scores: no ties)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.flatnonzero(np.isin(order, relevant)) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def _lareqa_dir(root: Path, make_train_rows) -> Path:
    """A LAReQA-format dir ({lang}.json, SQuAD style): one paragraph per xling_id and language, whose
    first sentence is the answer and second a distractor; the question is the train table's query."""
    root.mkdir()
    rows = make_train_rows(seed=7)
    rng = np.random.default_rng(7)
    for lang in ("aa", "bb", "cc"):
        paragraphs = []
        for r in (r for r in rows if r["lang"] == lang):
            # distinct distractors: identical texts would tie exactly (fastir score counts ties against the gold)
            answer = r["passage"]
            distractor = " ".join([lang, *(f"f{x}" for x in rng.integers(0, 30, size=6))])
            context = f"{answer} {distractor}"
            paragraphs.append({
                "context": context,
                "sentence_breaks": [[0, len(answer)], [len(answer) + 1, len(context)]],
                "qas": [{"id": r["xling_id"], "question": r["query"], "answers": [{"answer_start": 0, "text": answer}]}],
            })
        (root / f"{lang}.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return root


@pytest.mark.slow
def test_experiment_trains_embeds_scores_and_prints_tables(train_tiny_bert, train_table_arrow, train_rows, tmp_path,
                                                          capsys):
    from fastir.runs.rundir import read_run

    make_train_rows, _ = train_rows
    lareqa = _lareqa_dir(tmp_path / "synth-lareqa", make_train_rows)
    out = tmp_path / "exp"
    argv = ["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
            "--strategies", "x-x-mono,hybrid", "--eval", str(lareqa), "--include-base", "--batch-size", "16",
            "--steps", "30", "--lr", "2e-3", "--pooling", "mean", "--seed", "1", "--device", "cpu", "--no-progress",
            "--max-length", "12", "--allow-overlap"]  # the synthetic eval set shares the training xling_ids
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Table 1: mAP" in printed and "Table 2: R@1" in printed
    for name in ("base", "x-x-mono", "hybrid"):
        assert f"| {name} |" in printed

    results = json.loads((out / "results.json").read_text())
    assert results["strategies"] == ["base", "x-x-mono", "hybrid"]
    assert results["overlap"] == {"allowed": True, "datasets": {"synth-lareqa": {
        "train_rows": 144, "rows": 144, "by_key": {"xling_id": 144, "query": 0, "passage": 0, "negative": 0}}}}
    # evaluation embeds at the model's own length (64 positions), not training's --max-length 12
    assert results["eval_max_length"] == 64
    for name in results["strategies"]:
        assert read_run(out / name / "runs" / "synth-lareqa").meta["max_length"] == 64
    rows = {name: results["results"][name]["synth-lareqa"] for name in results["strategies"]}
    for name, row in rows.items():
        for key in ("mono_map", "cross_map", "multi_map", "mono_r1", "cross_r1", "multi_r1", "rank_distance"):
            assert row[key] is not None and np.isfinite(row[key]), (name, key)
        # the micro pooled mAP of fastir score agrees with an independent numpy computation on the run
        run = read_run(out / name / "runs" / "synth-lareqa")
        qrow, crow = run.qrels_index()
        relevant = [np.sort(crow[qrow == q]) for q in range(len(run.queries))]
        # (dot products of the stored, already normalised embeddings, as fastir score ranks them)
        scores = np.asarray(run.queries.embeddings, np.float32) @ np.asarray(run.candidates.embeddings, np.float32).T
        mine = np.mean([average_precision(scores[q], relevant[q]) for q in range(len(relevant))])
        assert row["micro_multi_map"] == pytest.approx(mine, abs=1e-6)
    # training helps on this learnable data, whatever the strategy
    assert rows["hybrid"]["multi_map"] > rows["base"]["multi_map"] + 0.1
    assert rows["x-x-mono"]["multi_map"] > rows["base"]["multi_map"] + 0.1
    assert (out / "tables.md").read_text().startswith("**Table 1")

    # re-running resumes: nothing is retrained (the train logs are unchanged)
    log = (out / "hybrid" / "model" / "train.jsonl").read_text()
    assert main(argv) == 0
    assert (out / "hybrid" / "model" / "train.jsonl").read_text() == log
    assert json.loads((out / "results.json").read_text())["results"] == results["results"]


def test_experiment_rejects_unknown_strategy(train_tiny_bert, train_table_arrow, tmp_path, capsys):
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(tmp_path / "e"),
                 "--strategies", "x-x-mono,bogus"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bogus" in err[0]
    assert not (tmp_path / "e").exists()


def test_every_strategy_is_checked_against_the_data_before_the_first_trains(train_tiny_bert, train_rows, tmp_path,
                                                                            capsys):
    make_train_rows, write_arrow = train_rows
    one_lang = write_arrow(tmp_path / "aa-only.arrow", make_train_rows(langs=("aa",)))
    out = tmp_path / "e"
    code = main(["experiment", "--data", one_lang, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono,x-y", "--batch-size", "16", "--steps", "2", "--device", "cpu",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {one_lang}: xling_id: x-y batches need xling_ids present in >= 2 languages")
    assert not out.exists()  # x-x-mono (valid on its own) did not train


def test_experiment_refuses_overlap_before_any_work(train_tiny_bert, train_table_arrow, train_rows, tmp_path, capsys):
    make_train_rows, _ = train_rows
    lareqa = _lareqa_dir(tmp_path / "synth-lareqa", make_train_rows)
    out = tmp_path / "e"
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono", "--eval", str(lareqa), "--batch-size", "16", "--steps", "2",
                 "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {train_table_arrow}: row 0: xling_id equals the parallel-group id of x0_aa "
                          "in evaluation dataset synth-lareqa (144 of 144 training rows overlap")
    assert "--allow-overlap" in err and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--eval", "no-such-dataset"], "no-such-dataset: dataset: unknown dataset"),
    (["--eval-max-length", "0"], "--eval-max-length: must be positive, found 0"),
    (["--eval-max-length", "65"], "--eval-max-length: 65 is above the model's limit of 64 tokens"),
])
def test_experiment_bad_eval_settings(train_tiny_bert, train_table_arrow, tmp_path, capsys, args, message):
    out = tmp_path / "e"
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono", "--batch-size", "16", "--steps", "2", "--device", "cpu",
                 "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()
