"""fastir.interop.ranx_runs: one cell of a score as ranx Qrels / Run and ir_measures DataFrames, evaluated
by ranx and by ir_measures (pytrec_eval) and compared with fastir's own per-query values to 1e-12 on
tie-free scores; the per-document ``lang`` column against fastir's same_lang@k; the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastir.core.errors import InputError
from fastir.eval.report import write_scores
from fastir.eval.score import score_run
from fastir.interop.ranx_runs import cell_ranking, rank_cell

LANGS = ("aa", "bb", "cc")
METRICS = "map,mrr,recall@3,10,ndcg@5,20,same_lang@5"


def _columns(seed=0, n_q=12, per_lang=15):
    """Gaussian embeddings (no tied float32 score); per query 1-3 golds of grade 1 or 2 in any
    language, and a judged non-relevant one (grade 0)."""
    rng = np.random.default_rng(seed)
    c_langs = [lang for lang in LANGS for _ in range(per_lang)]
    q_langs = [LANGS[i % 3] for i in range(n_q)]
    qrels, grades = [], []
    for q in range(n_q):
        golds = rng.choice(len(c_langs), size=int(rng.integers(2, 5)), replace=False)
        qrels += [(q, int(c)) for c in golds]
        grades += [int(g) for g in rng.integers(1, 3, len(golds) - 1)] + [0]
    return dict(q_emb=rng.normal(size=(n_q, 8)).astype(np.float32), q_langs=q_langs,
                c_emb=rng.normal(size=(len(c_langs), 8)).astype(np.float32), c_langs=c_langs,
                qrels=qrels, relevance=grades)


def _fastir(result, cell, name):
    chosen = next(c for c in result.cells if c.name == cell)
    s, rows = result.cell_rows(chosen)
    ids = result.run.queries.ids
    return {ids[q]: float(v) for q, v in zip(rows, result.metrics[name][rows, s])}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    from tests.conftest import write_test_run

    tmp = tmp_path_factory.mktemp("interop")
    path = write_test_run(tmp, **_columns())
    result = score_run(path, metrics=METRICS, trec_depth=len(LANGS) * 15)
    return path, result


CELLS = ["aa-aa", "aa-bb", "bb-all", "cc-all"]


@pytest.mark.parametrize("cell", CELLS)
def test_ranx_equals_fastir_on_the_full_ranking(scored, cell):
    from ranx import evaluate

    _, result = scored
    ranking = cell_ranking(result, cell)
    scores = [s for docs in ranking.run.values() for s in docs.values()]
    assert all(len(set(docs.values())) == len(docs) for docs in ranking.run.values()), "tie-free data"
    assert len(scores) > len(ranking.run)
    qrels, run = ranking.to_ranx()
    names = {"map": "map", "mrr": "mrr", "recall@3": "recall@3", "recall@10": "recall@10", "ndcg@5": "ndcg@5",
             "ndcg@20": "ndcg@20"}
    values = evaluate(qrels, run, list(names.values()), return_mean=False)
    for ours, theirs in names.items():
        want = _fastir(result, cell, ours)
        got = dict(zip(sorted(ranking.run), values[theirs]))  # ranx orders queries by id
        assert set(got) == set(want)
        for qid in want:
            assert got[qid] == pytest.approx(want[qid], abs=1e-12), (cell, ours, qid)


@pytest.mark.parametrize("cell", CELLS)
def test_ir_measures_equals_fastir_and_the_lang_column_gives_same_lang(scored, cell):
    import ir_measures
    from ir_measures import AP, RR, R, nDCG

    _, result = scored
    ranking = cell_ranking(result, cell)
    run, qrels = ranking.run_frame(), ranking.qrels_frame()
    measures = {AP: "map", RR: "mrr", R @ 3: "recall@3", R @ 10: "recall@10", nDCG @ 5: "ndcg@5",
                nDCG @ 20: "ndcg@20"}
    got = {(m.measure, m.query_id): m.value for m in ir_measures.iter_calc(list(measures), qrels, run)}
    for measure, ours in measures.items():
        for qid, want in _fastir(result, cell, ours).items():
            assert got[(measure, qid)] == pytest.approx(want, abs=1e-12), (cell, ours, qid)
    assert set(run.groupby("query_id")["rank"].min()) == {1}
    assert (run.groupby("query_id")["lang"].nunique() == (3 if cell.endswith("all") else 1)).all()
    if cell.endswith("all"):  # same_lang@5: share of the top 5 in the query's language, from the lang column
        top = run[run["rank"] <= 5]
        share = (top["lang"] == top["query_lang"]).groupby(top["query_id"]).mean()
        want = _fastir(result, cell, "same_lang@5")
        assert share.to_dict() == pytest.approx(want, abs=1e-12)


def test_rank_cell_from_a_run_dir_and_from_its_scores_at_their_threshold(tmp_path, make_run):
    cols = _columns(1)
    path = make_run(tmp_path, **cols)
    full = cell_ranking(score_run(path, pairs="multi", trec_depth=5), "bb-all")
    assert rank_cell(path, "bb-all", depth=5) == full
    assert all(len(docs) == 5 for docs in full.run.values())
    write_scores(score_run(path, pairs="multi", relevance_threshold=2), path / "scores")
    at_two = rank_cell(path / "scores", "bb-all", depth=5)
    assert at_two.relevance_threshold == 2 and set(at_two.run) < set(full.run)  # fewer queries hold a grade-2 gold
    assert rank_cell(path, "bb-all", depth=5) == at_two  # a run dir holding scores/: its threshold


def test_refusals(tmp_path, make_run):
    path = make_run(tmp_path, **_columns(2))
    with pytest.raises(InputError, match="scored without trec_depth"):
        cell_ranking(score_run(path), "aa-all")
    with pytest.raises(InputError, match="'aa-zz' is not a cell of this result"):
        cell_ranking(score_run(path, trec_depth=3), "aa-zz")
    for bad in ("multi", "aa-bb,aa-all"):
        with pytest.raises(InputError, match="^cell: one cell like de-en or de-all"):
            rank_cell(path, bad)
    with pytest.raises(InputError, match="unknown candidate language 'zz'"):
        rank_cell(path, "aa-zz")
    with pytest.raises(InputError, match="summary.json: missing"):
        rank_cell(tmp_path, "aa-all")
    write_scores(score_run(path), tmp_path / "s")
    meta = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps({**meta, "model": "another"}))
    with pytest.raises(InputError, match="run.json: differs from the run .* was scored from: rescore it first"):
        rank_cell(tmp_path / "s", "aa-all")
