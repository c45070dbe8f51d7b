"""`fastir score` command line: output files, formats, TREC export, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import pytrec_eval

from fastir.cli import main

LANGS = ("aa", "bb", "cc")


@pytest.fixture
def small_run(tmp_path, make_run):
    """3 languages x 8 xling ids; golds = the xling's sentence in every language; float embeddings."""
    rng = np.random.default_rng(11)
    q_langs, c_langs, qrels = [], [], []
    for lang in LANGS:
        c_langs += [lang] * 10
    for li, lang in enumerate(LANGS):
        for x in range(8):
            qrels += [(len(q_langs), other * 10 + x) for other in range(len(LANGS))]
            q_langs.append(lang)
    return make_run(tmp_path, q_emb=rng.standard_normal((len(q_langs), 8)), q_langs=q_langs,
                    c_emb=rng.standard_normal((len(c_langs), 8)), c_langs=c_langs, qrels=qrels)


def test_outputs_and_formats(small_run, tmp_path, capsys):
    out = tmp_path / "scores"
    assert main(["score", str(small_run), "--out", str(out), "--per-query", "--k", "1,5", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert printed == summary
    assert summary["format"] == "fastir-scores/1" and summary["ks"] == [1, 5]
    assert set(summary["summary"]) >= {"mono", "cross", "multi", "micro_multi_map", "rank_distance"}
    assert set(summary["summary"]["mono"]) >= {"map", "mrr", "recall@1", "recall@5"}
    assert set(summary["per_language"]) == set(LANGS)
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.png", "pairs.csv", "pairs.parquet",
                                                     "per_query.parquet", "summary.json"]
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert len(rows) == 12
    assert list(rows[0]) == ["query_lang", "cand_lang", "setting", "queries", "skipped", "map", "mrr",
                             "recall@1", "recall@5", "rank_distance"]
    assert {r["setting"] for r in rows if r["cand_lang"] == "all"} == {"multi"}
    assert all(r["rank_distance"] == "" for r in rows if r["setting"] != "multi")
    pairs = pq.read_table(out / "pairs.parquet").to_pylist()
    assert [r["map"] for r in pairs] == pytest.approx([float(r["map"]) for r in rows])

    # per_query.parquet: the data_specs/per-query-format.json format read by `fastir compare`.
    table = pq.read_table(out / "per_query.parquet")
    assert table.column_names == ["query_id", "query_lang", "cand_lang", "setting", "num_relevant", "ap", "rr",
                                  "recall@1", "recall@5", "rank_distance"]
    assert [str(t) for t in table.schema.types] == ["string"] * 4 + ["int32"] + ["double"] * 5
    meta = json.loads(table.schema.metadata[b"fastir"])
    assert meta["format"] == "fastir-per-query/1" and meta["ks"] == [1, 5] and meta["model"] == "synthetic"
    assert meta["run"] == str(small_run) and "dataset_checksum" in meta and meta["dataset"] == "synthetic"
    per_query = table.to_pandas()
    assert len(per_query) == 24 * 4  # every query scorable in its 3 languages + pooled
    multi = per_query[per_query.setting == "multi"]
    assert multi.rank_distance.notna().all() and per_query[per_query.setting != "multi"].rank_distance.isna().all()
    # A cell's mAP is the mean of its per-query AP.
    for r in pairs:
        sel = per_query[(per_query.query_lang == r["query_lang"]) & (per_query.cand_lang == r["cand_lang"])]
        assert sel.ap.mean() == pytest.approx(r["map"])


def test_score_process_imports_neither_pandas_nor_matplotlib(small_run, tmp_path):
    """The whole command's fixed costs (docs/score.md#speed): pyarrow's pandas probe and matplotlib
    took about a second of `fastir score` at XQuAD-R scale; every output is written without them."""
    code = ("import sys; from fastir.cli import main; rc = main(sys.argv[1:]); "
            "heavy = sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules); "
            "print('heavy:', heavy); sys.exit(rc)")
    out = tmp_path / "scores"
    proc = subprocess.run([sys.executable, "-c", code, "score", str(small_run), "--out", str(out), "--per-query",
                           "--trec", str(tmp_path / "trec"), "--format", "csv"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("heavy: []"), proc.stdout[-200:]
    assert (out / "heatmap.png").stat().st_size > 0 and (out / "per_query.parquet").stat().st_size > 0


def test_table_and_csv_output(small_run, tmp_path, capsys):
    assert main(["score", str(small_run), "--out", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "mono" in text and "cross" in text and "multi" in text and "rank distance" in text
    assert main(["score", str(small_run), "--out", str(tmp_path / "b"), "--format", "csv", "--pairs", "aa-bb,cc-all"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[1].startswith("aa,bb,cross,") and lines[2].startswith("cc,all,multi,")


def test_default_out_dir_and_overwrite(small_run, capsys):
    assert main(["score", str(small_run), "--pairs", "mono"]) == 0
    assert (small_run / "scores" / "summary.json").is_file()
    assert main(["score", str(small_run), "--pairs", "mono"]) == 2  # refuses to clobber
    assert "not empty" in capsys.readouterr().err
    assert main(["score", str(small_run), "--pairs", "multi", "--overwrite"]) == 0
    assert json.loads((small_run / "scores" / "summary.json").read_text())["pairs"] == "multi"


def test_trec_export_matches_pytrec_eval(small_run, tmp_path):
    trec = tmp_path / "trec"
    out = tmp_path / "scores"
    # Depth 30 >= the pooled set size: the exported runs are complete rankings.
    assert main(["score", str(small_run), "--out", str(out), "--per-query", "--trec", str(trec),
                 "--trec-depth", "30"]) == 0
    assert sorted(p.name for p in trec.iterdir())[:2] == ["aa-aa.qrels", "aa-aa.run"]
    assert len(list(trec.iterdir())) == 2 * 12
    per_query = pq.read_table(out / "per_query.parquet").to_pandas().set_index(["query_id", "cand_lang"])
    for name in ("aa-all", "bb-cc", "cc-cc"):
        qrels, run = {}, {}
        for line in (trec / f"{name}.qrels").read_text().splitlines():
            qid, _, doc, rel = line.split()
            qrels.setdefault(qid, {})[doc] = int(rel)
        for line in (trec / f"{name}.run").read_text().splitlines():
            qid, q0, doc, rank, score, tag = line.split()
            assert q0 == "Q0" and tag == "fastir"
            run.setdefault(qid, {})[doc] = float(score)
        evaluated = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall.1,5"}).evaluate(run)
        cand_lang = name.split("-")[1]
        for qid, values in evaluated.items():
            mine = per_query.loc[(qid, cand_lang)]
            assert mine.ap == pytest.approx(values["map"], abs=1e-9)
            assert mine["recall@5"] == pytest.approx(values["recall_5"], abs=1e-9)


@pytest.mark.parametrize("threshold", [1, 2])
def test_graded_trec_export_matches_pytrec_eval(tmp_path, make_run, threshold):
    """Graded qrels (0..3): the exported .qrels carry the grades of the judged pairs (grade >= 1),
    and pytrec_eval's ndcg_cut / map on the exported files, at relevance_level = --relevance-threshold,
    equal fastir's per-query values."""
    rng = np.random.default_rng(12)
    q_langs, c_langs, qrels = [], [], []
    for lang in LANGS:
        c_langs += [lang] * 10
    for lang in LANGS:
        for x in range(8):
            qrels += [(len(q_langs), other * 10 + x) for other in range(len(LANGS))]
            q_langs.append(lang)
    grades = [int(g) for g in rng.integers(0, 4, len(qrels))]
    run_dir = make_run(tmp_path, q_emb=rng.standard_normal((len(q_langs), 8)), q_langs=q_langs,
                       c_emb=rng.standard_normal((len(c_langs), 8)), c_langs=c_langs, qrels=qrels, relevance=grades)
    trec, out = tmp_path / "trec", tmp_path / "scores"
    assert main(["score", str(run_dir), "--out", str(out), "--per-query", "--trec", str(trec), "--trec-depth", "30",
                 "--metrics", "map,ndcg@10", "--relevance-threshold", str(threshold)]) == 0
    per_query = pq.read_table(out / "per_query.parquet").to_pandas().set_index(["query_id", "cand_lang"])
    graded = {(f"q{qi}", f"c{cj}"): g for (qi, cj), g in zip(qrels, grades)}
    seen_grades = set()
    for name in ("aa-all", "bb-cc", "cc-cc"):
        exported, run = {}, {}
        for line in (trec / f"{name}.qrels").read_text().splitlines():
            qid, _, doc, rel = line.split()
            assert int(rel) == graded[(qid, doc)] >= 1
            seen_grades.add(int(rel))
            exported.setdefault(qid, {})[doc] = int(rel)
        for line in (trec / f"{name}.run").read_text().splitlines():
            qid, _, doc, _, score, _ = line.split()
            run.setdefault(qid, {})[doc] = float(score)
        evaluated = pytrec_eval.RelevanceEvaluator(exported, {"map", "ndcg_cut.10"},
                                                   relevance_level=threshold).evaluate(run)
        assert evaluated
        for qid, values in evaluated.items():
            mine = per_query.loc[(qid, name.split("-")[1])]
            assert mine.ap == pytest.approx(values["map"], abs=1e-9)
            assert mine["ndcg@10"] == pytest.approx(values["ndcg_cut_10"], abs=1e-9)
    assert seen_grades >= {2, 3}


@pytest.mark.parametrize("args, needle", [
    (["--pairs", "xx-aa"], "unknown query language"),
    (["--pairs", "aa-de"], "unknown candidate language"),
    (["--k", "0"], "--k: must be positive"),
    (["--k", "5,-2"], "--k: must be positive"),
    (["--k", "five"], "--k"),
    (["--block-mb", "0"], "--block-mb"),
    (["--trec-depth", "5"], "--trec-depth"),
    (["--metrics", "map,bogus"], "--metrics: unknown metric 'bogus'"),
    (["--metrics", "recall@0"], "--metrics: bad cutoff in 'recall@0'"),
    (["--metrics", "map,recall@1,x5"], "--metrics: unknown metric 'x5'"),
    (["--metrics", "rank_distance"], "--metrics: rank distance is always reported"),
    (["--metrics", "map", "--k", "5"], "--k: give either --k or --metrics"),
    (["--relevance-threshold", "0"], "--relevance-threshold: must be >= 1"),
    (["--relevance-threshold", "2.5"], "--relevance-threshold: expected an integer in ASCII digits, found '2.5'"),
    (["--relevance-threshold", "2"], "no query has a relevant candidate at --relevance-threshold 2"),
])
def test_bad_arguments_exit_2_and_write_nothing(small_run, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert main(["score", str(small_run), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1
    assert not out.exists()
    assert not (small_run / "scores").exists()


def test_cell_without_scorable_query_exits_2(tmp_path, make_run, capsys):
    # Queries in aa only have golds in aa: the aa-bb cell has no scorable query.
    path = make_run(tmp_path, q_emb=np.eye(2, 3), q_langs=["aa", "aa"], c_emb=np.eye(3), c_langs=["aa", "aa", "bb"],
                    qrels=[(0, 0), (1, 1)])
    out = tmp_path / "out"
    assert main(["score", str(path), "--out", str(out), "--pairs", "aa-bb"]) == 2
    assert "no query in 'aa' has a relevant candidate in 'bb'" in capsys.readouterr().err
    assert main(["score", str(path), "--out", str(out)]) == 2  # `all` includes aa-bb too
    assert not out.exists()
    assert main(["score", str(path), "--out", str(out), "--pairs", "aa-aa,aa-all"]) == 0


def test_invalid_run_dir_exits_2(tmp_path, small_run, capsys):
    assert main(["score", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "run dir does not exist" in capsys.readouterr().err
    (small_run / "run.json").write_text("{not json")
    assert main(["score", str(small_run), "--out", str(tmp_path / "o")]) == 2
    assert "run.json" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _run_with_lang(tmp_path, make_run, lang):
    return make_run(tmp_path, q_emb=np.eye(2, 3), q_langs=[lang, "en"], c_emb=np.eye(3), c_langs=[lang, "en", "en"],
                    qrels=[(0, 0), (0, 1), (1, 1), (1, 0)])


def test_lang_holding_a_path_is_refused_and_nothing_is_written_outside(tmp_path, make_run, capsys):
    path = _run_with_lang(tmp_path, make_run, "../a")
    trec, out = tmp_path / "t" / "T", tmp_path / "t" / "O"
    assert main(["score", str(path), "--pairs", "all", "--trec", str(trec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path / 'queries.arrow'}: lang: invalid language code '../a': expected 1-32 letters, " \
                  "digits, '_' or '-', starting with a letter or digit"
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob("a-*"))


def test_trec_names_stay_inside_the_output_even_without_the_reader_check(tmp_path, make_run, monkeypatch, capsys):
    # defence in depth: a lang that got past the run-dir reader still cannot write outside T
    from fastir.runs import reader

    monkeypatch.setattr(reader, "check_langs", lambda codes, path, field: list(codes))
    path = _run_with_lang(tmp_path, make_run, "../a")
    trec = tmp_path / "t" / "T"
    assert main(["score", str(path), "--pairs", "all", "--trec", str(trec), "--out", str(tmp_path / "t" / "O")]) == 2
    err = capsys.readouterr().err
    assert f"error: {trec}: lang: '../a-" in err and "would be written outside the output directory" in err
    assert not list((tmp_path / "t").glob("a-*")) and not trec.exists()


def test_empty_qrels_are_reported_as_such(tmp_path, make_run, capsys):
    path = make_run(tmp_path, q_emb=np.eye(2, 3), q_langs=["de", "de"], c_emb=np.eye(3), c_langs=["de"] * 3, qrels=[])
    assert main(["score", str(path), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {path / 'qrels.arrow'}: query_id: empty qrels: "
                                               "no query has a relevant candidate")
    assert not (tmp_path / "o").exists()


def test_metrics_option_selects_and_orders_metrics(small_run, tmp_path, capsys):
    out, trec = tmp_path / "m", tmp_path / "trec"
    assert main(["score", str(small_run), "--out", str(out), "--per-query", "--metrics", "mrr,recall@2,1,map",
                 "--trec", str(trec), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header == ["query_lang", "cand_lang", "setting", "queries", "skipped", "mrr", "recall@2", "recall@1", "map",
                      "rank_distance"]
    table = pq.read_table(out / "per_query.parquet")
    assert table.column_names[5:] == ["rr", "recall@2", "recall@1", "ap", "rank_distance"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ks"] == [2, 1] and set(summary["summary"]["mono"]) == {"mrr", "recall@2", "recall@1", "map",
                                                                            "cells"}
    assert max(int(line.split()[3]) for line in (trec / "aa-aa.run").read_text().splitlines()) == 2  # depth = max cutoff
    # The same numbers as the default set: the registry selects, the kernel computes once.
    default = tmp_path / "d"
    assert main(["score", str(small_run), "--out", str(default), "--k", "1,2", "--format", "json"]) == 0
    capsys.readouterr()
    want = json.loads((default / "summary.json").read_text())["summary"]["cross"]
    got = summary["summary"]["cross"]
    assert {k: got[k] for k in ("map", "mrr", "recall@1", "recall@2")} == {k: want[k] for k in got if k != "cells"}


def test_per_language_view_with_a_cutoff_metric_first(small_run, tmp_path, capsys):
    """MIRACL's pair: the per-language view shows nDCG@10 per setting and Recall@2 pooled, not nDCG twice."""
    assert main(["score", str(small_run), "--out", str(tmp_path / "s"), "--metrics", "ndcg@10,recall@2"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("query "))
    assert header.split()[1:] == ["mono", "nDCG@10", "cross", "nDCG@10", "multi", "nDCG@10", "multi", "R@2",
                                  "rank", "dist", "queries"], header


def test_relevance_threshold_is_recorded(tmp_path, make_run):
    """Grades 1..2: at --relevance-threshold 2 only grade-2 pairs are relevant; summary.json and the
    per-query metadata record the threshold (absent at the default 1, so default outputs are unchanged)."""
    rng = np.random.default_rng(3)
    qrels = [(q, c) for q in range(6) for c in (q, q + 6)]
    path = make_run(tmp_path, q_emb=rng.standard_normal((6, 4)), q_langs=["aa"] * 6,
                    c_emb=rng.standard_normal((12, 4)), c_langs=["aa"] * 6 + ["bb"] * 6, qrels=qrels,
                    relevance=[2, 1] * 6)
    assert main(["score", str(path), "--out", str(tmp_path / "d"), "--per-query", "--pairs", "aa-aa,aa-all"]) == 0
    assert main(["score", str(path), "--out", str(tmp_path / "t"), "--per-query", "--pairs", "aa-aa,aa-all",
                 "--relevance-threshold", "2"]) == 0
    for name, threshold, n_rel in (("d", None, 2), ("t", 2, 1)):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary.get("relevance_threshold") == threshold
        table = pq.read_table(tmp_path / name / "per_query.parquet")
        assert json.loads(table.schema.metadata[b"fastir"]).get("relevance_threshold") == threshold
        pooled = table.to_pandas().query("setting == 'multi'")
        assert (pooled.num_relevant == n_rel).all()


def test_bias_metrics_through_score_and_compare(tmp_path, make_run, capsys):
    """--metrics with the language-bias suite: pooled rows only in pairs.csv and per_query.parquet,
    a macro mean in summary.json, and `fastir compare --metrics all` carries them (multi cells)."""
    metrics = "map,same_lang@5,lang_jsd@5,lang_jsd_rel@5,peer@5,peer_nonrel@5"
    c_langs = [lang for lang in LANGS for _ in range(10)]
    q_langs = [lang for lang in LANGS for _ in range(8)]
    qrels = [(li * 8 + x, other * 10 + x) for li in range(len(LANGS)) for x in range(8) for other in range(len(LANGS))]
    c_emb = np.random.default_rng(11).standard_normal((len(c_langs), 8))
    outs = []
    for seed in (1, 2):  # two "models": other query embeddings over the same dataset
        run = make_run(tmp_path / f"m{seed}", q_emb=np.random.default_rng(seed).standard_normal((len(q_langs), 8)),
                       q_langs=q_langs, c_emb=c_emb, c_langs=c_langs, qrels=qrels,
                       meta={"dataset_checksum": "sha-synthetic"})
        out = tmp_path / f"scores_{seed}"
        assert main(["score", str(run), "--out", str(out), "--per-query", "--metrics", metrics]) == 0
        outs.append(out)
    capsys.readouterr()
    rows = list(csv.DictReader((outs[0] / "pairs.csv").open()))
    assert list(rows[0])[5:] == ["map", "same_lang@5", "lang_jsd@5", "lang_jsd_rel@5", "peer@5", "peer_nonrel@5",
                                 "rank_distance"]
    assert all((r["peer@5"] == "") == (r["setting"] != "multi") for r in rows)
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert 0 <= summary["summary"]["lang_jsd@5"]["macro"] <= 1 and set(summary["per_language"]["aa"]) >= {"peer@5"}
    table = pq.read_table(outs[0] / "per_query.parquet").to_pandas()
    multi = table[table.setting == "multi"]
    assert multi["peer@5"].notna().all() and table[table.setting != "multi"]["same_lang@5"].isna().all()
    assert ((multi["same_lang@5"] * 5) % 1 == 0).all()
    assert main(["compare", str(outs[0]), str(outs[1]), "--metrics", "all", "--samples", "50", "--format", "json"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    assert cmp["metrics"] == ["map", "same_lang@5", "lang_jsd@5", "lang_jsd_rel@5", "peer@5", "peer_nonrel@5",
                              "rank_distance"]
    bias_records = [r for r in cmp["results"] if r["metric"] == "peer@5"]
    assert bias_records and {r["setting"] for r in bias_records} == {"multi"}


def test_bias_metrics_bad_input(small_run, tmp_path, capsys):
    out = tmp_path / "out"
    for args, needle in ((["--metrics", "map,peer@10", "--precision", "exact"], "--precision: peer@10 ranks the top k"),
                         (["--metrics", "same_lang@10"], "--metrics: pooled-only metrics need a metric of every cell"),
                         (["--metrics", "map,peer"], "--metrics: unknown metric 'peer'; peer needs a cutoff"),
                         (["--metrics", "map,lang_jsd@0"], "--metrics: bad cutoff")):
        assert main(["score", str(small_run), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
        assert not out.exists()
