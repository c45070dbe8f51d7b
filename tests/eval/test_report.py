"""fastir.eval.report: the output files of a scored run read back (pairs.csv / .parquet, per_query.parquet
in data_specs/per-query-format.json, summary.json), the terminal view, and an all-or-nothing write.
(``fastir score``'s options and formats: tests/cli/test_score.py.)"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fastir.core.errors import InputError
from fastir.eval import report
from fastir.eval.report import format_table, pairs_csv, pairs_table, per_query_table, summary_json, write_scores
from fastir.eval.score import score_run

LANGS = ("aa", "bb")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tests.conftest import write_test_run

    rng = np.random.default_rng(0)
    n_q, n_c = 10, 16
    c_langs = [LANGS[c % 2] for c in range(n_c)]
    qrels = [(q, (q + 3 * k) % n_c) for q in range(n_q) for k in range(1 + q % 3)]  # 1-3 golds, some in one language
    return write_test_run(tmp_path_factory.mktemp("report"), q_emb=rng.integers(-2, 3, (n_q, 4)),
                          q_langs=[LANGS[q % 2] for q in range(n_q)], c_emb=rng.integers(-2, 3, (n_c, 4)),
                          c_langs=c_langs, qrels=qrels, relevance=[1 + (q + c) % 2 for q, c in qrels],
                          meta={"dataset_checksum": "sha-x"})


@pytest.fixture(scope="module")
def result(run_dir):
    return score_run(run_dir, metrics="map,recall@1,3", per_query=True)


def test_pairs_table_and_csv_hold_every_cell_in_order(result):
    table = pairs_table(result)
    names = ["map", "recall@1", "recall@3", "rank_distance"]
    assert table.column_names == ["query_lang", "cand_lang", "setting", "queries", "skipped", *names]
    rows = table.to_pylist()
    assert [(r["query_lang"], r["cand_lang"], r["setting"]) for r in rows] == [
        (c.query_lang, c.cand_lang, c.kind) for c in result.cells]
    parsed = list(csv.DictReader(io.StringIO(pairs_csv(result))))
    for row, back, cell in zip(rows, parsed, result.cells):
        stats = result.cell_stats[cell]
        assert (row["queries"], row["skipped"]) == (stats["queries"], stats["skipped"])
        for name in names:
            assert row[name] == stats[name]  # None (null) outside multi rows for rank distance
            assert back[name] == ("" if stats[name] is None else repr(stats[name]))  # full precision
        assert (row["rank_distance"] is None) == (cell.kind != "multi")
    assert "undecided" not in table.column_names


def test_per_query_table_follows_its_format_spec(result, run_dir):
    table = per_query_table(result)
    spec = json.loads((Path(__file__).parents[2] / "data_specs" / "per-query-format.json").read_text())
    assert table.column_names == ["query_id", "query_lang", "cand_lang", "setting", "num_relevant", "ap",
                                  "recall@1", "recall@3", "rank_distance"]
    assert [f.name for f in table.schema][:5] == [c["name"] for c in spec["columns"][:5]]
    meta = json.loads(table.schema.metadata[b"fastir"])
    assert meta == {"format": spec["format"], "dataset": "synthetic", "dataset_checksum": "sha-x",
                    "model": "synthetic", "run": str(run_dir), "ks": [1, 3]}
    m = result.metrics
    want = []  # brute force: every (cell, query of its language with a relevant candidate in its set)
    for cell in result.cells:
        s = result.set_index(cell.cand_lang)
        for q in range(len(result.query_lang_id)):
            if result.query_langs[result.query_lang_id[q]] == cell.query_lang and m.nrel[q, s] >= 1:
                want.append((f"q{q}", cell.query_lang, cell.cand_lang, cell.kind, int(m.nrel[q, s]),
                             *[float(v) for v in m.values[q, s]]))
    got = [tuple(r.values()) for r in table.to_pylist()]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:5] == w[:5] and np.allclose(g[5:], w[5:], equal_nan=True, rtol=0, atol=0)
    assert all(math.isnan(r["rank_distance"]) for r in table.to_pylist() if r["setting"] != "multi")


def test_summary_json_is_strict_json_and_records_the_threshold(result, run_dir):
    doc = summary_json(result)
    text = json.dumps(doc, allow_nan=False)  # NaN / inf became null
    assert json.loads(text) == doc
    assert doc["format"] == "fastir-scores/1" and doc["dataset_checksum"] == "sha-x"
    assert (doc["queries"], doc["candidates"], doc["query_langs"], doc["ks"]) == (10, 16, ["aa", "bb"], [1, 3])
    assert doc["precision"]["requested"] == "auto" and doc["precision"]["ran"] == result.precision["ran"]
    assert "relevance_threshold" not in doc and "compute" not in doc
    assert doc["summary"]["mono"]["map"] == pytest.approx(result.summary["mono"]["map"])
    strict = score_run(run_dir, pairs="multi", metrics="map", relevance_threshold=2, per_query=True)
    assert summary_json(strict)["relevance_threshold"] == 2
    assert json.loads(per_query_table(strict).schema.metadata[b"fastir"])["relevance_threshold"] == 2


def test_certified_results_add_the_undecided_column(run_dir):
    exact = score_run(run_dir, metrics="map", precision="exact")
    assert pairs_table(exact).column("undecided").to_pylist() == [exact.cell_stats[c]["undecided"] for c in exact.cells]
    assert summary_json(exact)["precision"]["ran"] == "exact"


def test_format_table_shows_the_summary_and_each_language(result, run_dir):
    text = format_table(result)
    lines = text.splitlines()
    assert lines[0].startswith(str(run_dir)) and "dataset=synthetic" in lines[0]
    assert lines[1].startswith(f"10 queries x 16 candidates, {len(result.cells)} cells")
    for kind in ("mono", "cross", "multi"):
        (line,) = [ln for ln in lines if ln.startswith(kind + " ")]
        agg = result.summary[kind]
        assert line.split()[1:] == [str(agg["cells"])] + [f"{agg[n]:.4f}" for n in ("map", "recall@1", "recall@3")]
    for x in LANGS:
        (line,) = [ln for ln in lines if ln.startswith(x + " ")]
        row = result.per_language[x]
        assert line.split()[1:4] == [f"{row[k]['map']:.4f}" for k in ("mono", "cross", "multi")]
        assert line.split()[-1] == str(row["queries"])


def test_write_scores_writes_everything_or_nothing(result, tmp_path, monkeypatch):
    out, trec = tmp_path / "scores", tmp_path / "trec"
    write_scores(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.png", "pairs.csv", "pairs.parquet", "per_query.parquet",
                                                     "summary.json"]
    assert pq.read_table(out / "pairs.parquet").equals(pairs_table(result))
    back = pq.read_table(out / "per_query.parquet")
    assert back.schema.equals(result.per_query.schema, check_metadata=True)
    pd.testing.assert_frame_equal(back.to_pandas(), result.per_query.to_pandas())  # NaN where NaN
    assert json.loads((out / "summary.json").read_text()) == summary_json(result)
    assert (out / "pairs.csv").read_text() == pairs_csv(result)
    with pytest.raises(InputError, match="not empty; pass --overwrite"):
        write_scores(result, out)

    def broken(result, path):
        raise RuntimeError("the heatmap failed")

    monkeypatch.setattr(report, "write_heatmap", broken)
    with pytest.raises(RuntimeError):
        write_scores(result, tmp_path / "new", trec_dir=trec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores"]  # neither output, no temporaries
    with pytest.raises(RuntimeError):
        write_scores(result, out, overwrite=True)
    assert (out / "pairs.csv").read_text() == pairs_csv(result)  # the old output stays whole


def test_write_scores_with_trec_files(run_dir, tmp_path):
    deep = score_run(run_dir, metrics="map,recall@3", trec_depth=3)
    write_scores(deep, tmp_path / "scores", trec_dir=tmp_path / "trec")
    assert sorted(p.name for p in (tmp_path / "trec").iterdir()) == sorted(
        f"{c.name}.{ext}" for c in deep.cells for ext in ("run", "qrels"))
    assert not (tmp_path / "scores" / "per_query.parquet").exists()


def test_read_scores_reads_a_score_dir_or_the_run_dir_holding_it(result, tmp_path):
    out = write_scores(result, tmp_path / "run" / "scores")
    for where in (out, tmp_path / "run"):
        summary, pairs = report.read_scores(where)
        assert summary == json.loads((out / "summary.json").read_text())
        assert pairs.equals(pq.read_table(out / "pairs.parquet"))
    with pytest.raises(InputError, match="summary.json: missing: not a `fastir score` output dir"):
        report.read_scores(tmp_path)
    (out / "summary.json").write_text(json.dumps({"format": "something-else/1"}))
    with pytest.raises(InputError, match="summary.json: format: expected 'fastir-scores/1', found 'something-else/1'"):
        report.read_scores(out)
    (out / "summary.json").write_text(json.dumps(summary_json(result)))
    (out / "pairs.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="pairs.parquet: cannot read Parquet"):
        report.read_scores(out)
