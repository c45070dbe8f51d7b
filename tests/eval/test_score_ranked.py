"""fastir.eval.score_ranked: ranked runs scored per language cell equal pytrec_eval on the same TREC files
(trec_eval tie mode, runs full of tied scores), for every cell; the three run formats agree; chunked reading
changes nothing; the depth and the relevant documents beyond it; the refusals of bad runs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytrec_eval

from fastir.core.errors import InputError
from fastir.eval import score_ranked as sr
from fastir.runs import ranked

LANGS = ("de", "en", "fr")
MEASURES = {"map": "map", "mrr": "recip_rank", "recall@5": "recall_5", "recall@20": "recall_20",
            "ndcg@10": "ndcg_cut_10", "ndcg@3": "ndcg_cut_3", "p@5": "P_5", "p@20": "P_20", "map@10": "map_cut_10",
            "success@5": "success_5"}


def make_data(tmp_path, seed=0, n_queries=40, depth=30, value_range=3):
    """A TREC run (scores in 0..value_range: many ties), graded qrels with judged docs beyond the run, ids 'xx:..'."""
    rng = np.random.default_rng(seed)
    docs = [f"{LANGS[i % 3]}:d{i}" for i in range(120)]
    run, qrels = {}, {}
    for q in range(n_queries):
        qid = f"{LANGS[q % 3]}:q{q}"
        picked = rng.choice(len(docs), depth, replace=False)
        run[qid] = {docs[i]: float(rng.integers(0, value_range + 1)) for i in picked}
        judged = rng.choice(len(docs), 8, replace=False)  # some retrieved, some not
        qrels[qid] = {docs[i]: int(rng.integers(0, 4)) for i in judged}
        qrels[qid][docs[picked[0]]] = 2  # at least one relevant
    run_file, qrels_file = tmp_path / "run.trec", tmp_path / "qrels.txt"
    lines = []
    for qid, ranking in run.items():
        for rank, (d, s) in enumerate(sorted(ranking.items(), key=lambda x: -x[1]), start=1):
            lines.append(f"{qid} Q0 {d} {rank} {s} sys")
    run_file.write_text("\n".join(lines) + "\n")
    qrels_file.write_text("".join(f"{q} 0 {d} {g}\n" for q, j in qrels.items() for d, g in j.items()))
    return run, qrels, run_file, qrels_file


def pytrec(run, qrels, lang=None):
    """pytrec_eval per query, on the run and qrels restricted to documents of ``lang`` (None: all)."""
    keep = (lambda d: True) if lang is None else (lambda d: d.startswith(lang + ":"))
    r = {q: {d: s for d, s in docs.items() if keep(d)} for q, docs in run.items()}
    j = {q: {d: g for d, g in docs.items() if keep(d)} for q, docs in qrels.items()}
    r = {q: docs for q, docs in r.items() if docs}
    evaluator = pytrec_eval.RelevanceEvaluator(j, {"map", "recip_rank", "recall.5,20", "ndcg_cut.3,10", "P.5,20",
                                                        "map_cut.10", "success.5"})
    return evaluator.evaluate(r)


def score(run_file, qrels_file, **kw):
    kw.setdefault("metrics", ",".join(MEASURES))
    return sr.score_ranked(run_file, qrels_file, "prefix::", "prefix::", per_query=True, **kw)


@pytest.mark.parametrize("value_range", [0, 2, 1000])
def test_every_cell_equals_pytrec_eval_in_trec_eval_mode(tmp_path, value_range):
    run, qrels, run_file, qrels_file = make_data(tmp_path, seed=value_range, value_range=value_range)
    result = score(run_file, qrels_file, ties="trec_eval")
    table = result.per_query.to_pylist()
    assert table
    checked = 0
    for lang in (*LANGS, "all"):
        ref = pytrec(run, qrels, None if lang == "all" else lang)
        for row in (r for r in table if r["cand_lang"] == lang):
            for name, measure in MEASURES.items():
                col = result.metrics.metrics[[m.name for m in result.metrics.metrics].index(name)].column
                assert row[col] == pytest.approx(ref[row["query_id"]][measure], abs=1e-12), (lang, name, row)
                checked += 1
    assert checked > 200


def test_tie_modes_order_and_depth_report(tmp_path):
    run, qrels, run_file, qrels_file = make_data(tmp_path, seed=5, value_range=1)
    modes = {m: score(run_file, qrels_file, ties=m, metrics="mrr,recall@5,ndcg@10") for m in
             ("optimistic", "expected", "pessimistic", "trec_eval")}
    opt, exp, pes = (modes[m].metrics.values for m in ("optimistic", "expected", "pessimistic"))
    known = ~np.isnan(exp[:, :, :3])
    assert (opt[:, :, :3][known] >= exp[:, :, :3][known] - 1e-12).all()
    assert (exp[:, :, :3][known] >= pes[:, :, :3][known] - 1e-12).all()
    assert (opt[:, :, :3][known] > pes[:, :, :3][known]).any()
    depth = modes["trec_eval"].extra["depth"]
    for cell, info in depth.items():
        q_lang, c_lang = cell.split("-")
        qids = [q for q in run if q.startswith(q_lang + ":")]
        inside = lambda d: c_lang == "all" or d.startswith(c_lang + ":")  # noqa: E731
        beyond = sum(1 for q in qids for d, g in qrels[q].items() if g >= 1 and inside(d) and d not in run[q]
                     and any(gg >= 1 and inside(dd) for dd, gg in qrels[q].items()))
        assert info["relevant_beyond_depth"] == beyond
        if c_lang == "all":
            assert info["min"] == info["max"] == 30
    assert modes["expected"].extra["ties"] == "expected"


def test_formats_and_chunking_agree(tmp_path, monkeypatch):
    run, qrels, run_file, qrels_file = make_data(tmp_path, seed=9)
    base = score(run_file, qrels_file, ties="trec_eval").metrics.values
    (tmp_path / "run.json").write_text(json.dumps(run))
    rows = [(q, d, s) for q, docs in run.items() for d, s in docs.items()]
    pq.write_table(pa.table({"query_id": [r[0] for r in rows], "doc_id": [r[1] for r in rows],
                             "score": [r[2] for r in rows]}), tmp_path / "run.parquet")
    for other in ("run.json", "run.parquet"):
        np.testing.assert_array_equal(score(tmp_path / other, qrels_file, ties="trec_eval").metrics.values, base)
    monkeypatch.setattr(ranked, "BLOCK_BYTES", 1 << 10)  # many chunks, queries cut across them
    np.testing.assert_array_equal(score(run_file, qrels_file, ties="trec_eval").metrics.values, base)
    for ties in ("pessimistic", "optimistic", "expected"):  # lines out of score order (Parquet) are sorted
        metrics = None if ties != "expected" else "map,mrr,recall@5,ndcg@10"
        unsorted = score(tmp_path / "run.parquet", qrels_file, ties=ties, metrics=metrics)
        np.testing.assert_array_equal(unsorted.metrics.values,
                                      score(run_file, qrels_file, ties=ties, metrics=metrics).metrics.values)


def test_language_map_file_equals_the_rule(tmp_path):
    run, qrels, run_file, qrels_file = make_data(tmp_path, seed=2)
    ids = sorted({d for docs in run.values() for d in docs} | {d for docs in qrels.values() for d in docs})
    (tmp_path / "docs.tsv").write_text("".join(f"{d}\t{d.split(':')[0]}\n" for d in ids))
    pq.write_table(pa.table({"id": list(run), "lang": [q.split(":")[0] for q in run]}), tmp_path / "q.parquet")
    by_map = sr.score_ranked(run_file, qrels_file, str(tmp_path / "q.parquet"), str(tmp_path / "docs.tsv"))
    by_rule = sr.score_ranked(run_file, qrels_file, "prefix::", "prefix::")
    np.testing.assert_array_equal(by_map.metrics.values, by_rule.metrics.values)


def bad(tmp_path, run_text, qrels_text="en:q1 0 en:d1 1\nen:q1 0 de:d2 1\nen:q2 0 en:d1 1\n", **kw):
    (tmp_path / "r.trec").write_text(run_text)
    (tmp_path / "q.txt").write_text(qrels_text)
    with pytest.raises(InputError) as info:
        sr.score_ranked(tmp_path / "r.trec", tmp_path / "q.txt", kw.pop("q", "prefix::"), kw.pop("d", "prefix::"),
                        **kw)
    return info.value.one_line()


@pytest.mark.parametrize("run_text, needles", [
    ("en:q1 Q0 en:d1 1 2 t\nen:q9 Q0 en:d1 1 2 t\n", ["r.trec", "line 2", "'en:q9' is not in the qrels"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q1 Q0 en:d1 2 1 t\n", ["line 2", "duplicate", "first at line 1"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q1 Q0 de:d2 2 x t\n", ["line 2: score", "not a number: 'x'"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q1 Q0 de:d2 2 nan t\n", ["line 2: score", "not a finite number"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q1 Q0 de:d2 2.0 1 t\n", ["line 2: rank", "not a number: '2.0'"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q1 Q0 de:d2 2 NULL t\n", ["line 2: score", "not a number: 'NULL'"]),
    ("en:q1 Q0 en:d1 1 1 t\nen:q1 Q0 de:d2 2 5 t\n", ["line 1", "rank 1 with score 1.0 contradicts rank 2 with score 5.0 (line 2)"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q1 Q0 d2 2 1 t\n", ["line 2", "'d2' has no language before ':'"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q2 Q0 en:d1 1 2 t\nen:q1 Q0 de:d2 2 1 t\n", ["line 3", "'en:q1' again"]),
    ("en:q1 Q0 en:d1 1 2\n", ["line 1", "expected 6 fields", "found 5"]),
    ("en:q1 Q0 en:d1 1 2 t\nen:q2 Q0 en:d1 1 2 t\nen:q2 Q0 de:d2 2 1 t\nen:q1 Q0 de:d2 2 1 t\nen:q2 Q0 en:d3 3 0 t\n",
     ["line 4", "'en:q1' again"]),
])
def test_bad_runs_name_file_and_line(tmp_path, run_text, needles):
    message = bad(tmp_path, run_text)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_language_map_misses_and_tie_mode_refusals(tmp_path):
    (tmp_path / "docs.tsv").write_text("en:d1\ten\n")
    message = bad(tmp_path, "en:q1 Q0 en:d1 1 2 t\n", d=str(tmp_path / "docs.tsv"))
    assert "q.txt: line 2" in message and "'de:d2' is not in the language map docs.tsv" in message
    message = bad(tmp_path, "en:q1 Q0 en:d1 1 2 t\n", metrics="map,peer@10", ties="expected")
    assert "--ties: peer@10 ranks the top k in its own order" in message
