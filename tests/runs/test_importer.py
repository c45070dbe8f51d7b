"""``fastir import`` (fastir/runs/importer.py): round trips through Parquet / .npy + TREC qrels that
score identically, and every bad input as one line naming file and field, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.cli import main
from fastir.core.errors import InputError
from fastir.runs import importer, rundir

LANGS = ("aa", "bb", "cc")


def _write_source_run(tmp_path: Path, dtype: str = "float32") -> Path:
    """3 languages x 6 groups; golds = the group's candidate in every language (grade 2 in the query's
    language, 1 in the others); every other query also has a judged non-relevant (grade 0) candidate."""
    rng = np.random.default_rng(5)
    qids, qlangs, groups, cids, clangs, rq, rc, grades = [], [], [], [], [], [], [], []
    for lang in LANGS:
        cids += [f"{lang}-c{k}" for k in range(9)]
        clangs += [lang] * 9
        for k in range(6):
            qids.append(f"{lang}-q{k}")
            qlangs.append(lang)
            groups.append(f"g{k}")
            for other in LANGS:
                rq.append(f"{lang}-q{k}")
                rc.append(f"{other}-c{k}")
                grades.append(2 if other == lang else 1)
            if k % 2:
                rq.append(f"{lang}-q{k}")
                rc.append(f"{lang}-c8")
                grades.append(0)
    meta = {"dataset": "synthetic", "model": "none", "normalized": False, "dtype": dtype}
    return rundir.write_run(
        tmp_path / "source", meta, query_ids=qids, query_langs=qlangs, query_groups=groups,
        query_embeddings=rng.standard_normal((len(qids), 12)).astype(np.float32),
        candidate_ids=cids, candidate_langs=clangs,
        candidate_embeddings=rng.standard_normal((len(cids), 12)).astype(np.float32),
        qrels_query_ids=rq, qrels_candidate_ids=rc, qrels_relevance=grades)


def _export(run_dir: Path, out: Path, kind: str) -> dict:
    """The run's two sides as ``kind`` files (parquet with list / fixed_size_list, or npy + sidecar) and
    its graded qrels as a TREC file (spaces and tabs)."""
    run = rundir.read_run(run_dir)
    out.mkdir()
    paths = {}
    for name, side in (("queries", run.queries), ("candidates", run.candidates)):
        labels = {"id": side.ids, "lang": side.langs}
        if kind == "npy":
            np.save(out / f"{name}.npy", np.asarray(side.embeddings))
            pq.write_table(pa.table(labels), out / f"{name}.ids.parquet")
            paths[name] = out / f"{name}.npy"
            continue
        emb = np.asarray(side.embeddings, np.float32)
        flat = pa.array(emb.reshape(-1), pa.float32())
        column = (pa.FixedSizeListArray.from_arrays(flat, emb.shape[1]) if kind == "fixed" else
                  pa.ListArray.from_arrays(pa.array(np.arange(0, emb.size + 1, emb.shape[1]), pa.int32()), flat))
        pq.write_table(pa.table({**labels, "embedding": column}), out / f"{name}.parquet", row_group_size=7)
        paths[name] = out / f"{name}.parquet"
    rows = zip(run.qrels_query_id, run.qrels_candidate_id, run.qrels_relevance)
    lines = [f"{q} 0 {c} {g}" if i % 2 else f"{q}\t0\t{c}\t{g}" for i, (q, c, g) in enumerate(rows)]
    (out / "qrels.txt").write_text("\n".join(lines) + "\n")
    paths["qrels"] = out / "qrels.txt"
    return paths


@pytest.mark.parametrize("kind", ["fixed", "list", "npy"])
def test_round_trip_scores_identically(tmp_path, kind, monkeypatch):
    monkeypatch.setattr(importer, "_BATCH_ROWS", 5)  # several record batches / blocks per side
    source = _write_source_run(tmp_path)
    paths = _export(source, tmp_path / "export", kind)
    args = ["import", "--queries", str(paths["queries"]), "--candidates", str(paths["candidates"]),
            "--qrels", str(paths["qrels"]), "--out", str(tmp_path / "imported")]
    assert main(args) == 0
    a, b = rundir.read_run(source), rundir.read_run(tmp_path / "imported")
    np.testing.assert_array_equal(a.queries.embeddings, b.queries.embeddings)
    np.testing.assert_array_equal(a.candidates.embeddings, b.candidates.embeddings)
    assert b.queries.ids == a.queries.ids and b.candidates.langs == a.candidates.langs
    assert b.qrels.equals(a.qrels) and 0 in b.qrels_relevance  # graded, grade-0 rows kept
    assert b.queries.xling_ids is None  # no xling_id column given: none written
    meta = json.loads((tmp_path / "imported" / "run.json").read_text())
    assert meta["model"] == "imported" and meta["dtype"] == "float32" and meta["dim"] == 12
    assert meta["normalized"] is False and meta["dataset"] == "qrels.txt"
    assert meta["source"]["queries"]["file"] == str(paths["queries"])
    assert meta["source"]["candidates"]["dtype"] == "float32"
    assert ("ids_file" in meta["source"]["queries"]) == (kind == "npy")
    for run_dir in (source, tmp_path / "imported"):
        assert main(["score", str(run_dir), "--out", str(run_dir.parent / f"{run_dir.name}-scores")]) == 0
    pairs_a = pq.read_table(tmp_path / "source-scores" / "pairs.parquet")
    pairs_b = pq.read_table(tmp_path / "imported-scores" / "pairs.parquet")
    assert pairs_a.num_rows == 12 and pairs_a.equals(pairs_b)


def test_float16_storage_unit_norms_and_float64_input(tmp_path):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((4, 6))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.save(tmp_path / "q.npy", q)  # float64
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "lang": ["en"] * 4, "xling_id": ["x", "x", "y", "y"]}),
                   tmp_path / "q-labels.parquet")
    pq.write_table(pa.table({"id": ["d1", "d2"], "lang": ["de", "de"],
                             "embedding": pa.array(list(q[:2]), pa.list_(pa.float64()))}), tmp_path / "c.parquet")
    (tmp_path / "qrels").write_text("a 0 d1 2\nb 0 d2 1\nc 0 d1 0\n")
    meta = importer.import_run(tmp_path / "run", queries=tmp_path / "q.npy", queries_ids=tmp_path / "q-labels.parquet",
                               candidates=tmp_path / "c.parquet", qrels=tmp_path / "qrels", dtype="float16",
                               dataset="mine")
    run = rundir.read_run(tmp_path / "run")
    assert run.meta["dtype"] == "float16" and run.meta["normalized"] is True and run.meta["dataset"] == "mine"
    assert run.meta["source"]["queries"]["dtype"] == "float64" and meta["num_qrels"] == 3
    np.testing.assert_array_equal(run.queries.embeddings, q.astype(np.float16))
    assert run.queries.xling_ids == ["x", "x", "y", "y"]
    assert list(zip(run.qrels_query_id, run.qrels_candidate_id, run.qrels_relevance)) == [
        ("a", "d1", 2), ("b", "d2", 1), ("c", "d1", 0)]


# ------------------------------------------------------------------------------------- bad input


def _good_inputs(d: Path) -> dict:
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    pq.write_table(pa.table({"id": ["q1", "q2", "q3"], "lang": ["en", "de", "en"],
                             "embedding": pa.array(list(rng.standard_normal((3, 4))), pa.list_(pa.float32()))}),
                   d / "q.parquet")
    np.save(d / "c.npy", rng.standard_normal((4, 4)).astype(np.float32))
    pq.write_table(pa.table({"id": ["d1", "d2", "d3", "d4"], "lang": ["en", "en", "de", "de"]}), d / "c.ids.parquet")
    (d / "qrels.txt").write_text("q1 0 d1 1\nq2 0 d3 2\n\nq3 0 d2 0\n")
    return {"queries": d / "q.parquet", "candidates": d / "c.npy", "qrels": d / "qrels.txt"}


def _queries(d: Path, **columns):
    rng = np.random.default_rng(2)
    table = {"id": ["q1", "q2", "q3"], "lang": ["en", "de", "en"],
             "embedding": pa.array(list(rng.standard_normal((3, 4))), pa.list_(pa.float32()))}
    table.update(columns)
    pq.write_table(pa.table(table), d / "q.parquet")


def _qrels(d: Path, text: str):
    (d / "qrels.txt").write_text(text)


BAD = {
    "malformed qrels line": (lambda d: _qrels(d, "q1 0 d1 1\nq2 0 d3\n"), "qrels.txt", "line 2",
                             "expected 4 whitespace-separated fields"),
    "unknown query": (lambda d: _qrels(d, "q1 0 d1 1\nq9 0 d1 1\n"), "qrels.txt", "line 2", "unknown query id 'q9'"),
    "unknown document": (lambda d: _qrels(d, "\nq1 0 d7 1\n"), "qrels.txt", "line 2", "unknown candidate id 'd7'"),
    "non-integer grade": (lambda d: _qrels(d, "q1 0 d1 1.5\n"), "qrels.txt", "line 1: grade", "expected an integer"),
    "negative grade": (lambda d: _qrels(d, "q1 0 d1 -1\n"), "qrels.txt", "line 1: grade", "-1 is out of range (0 to"),
    "duplicate judgement": (lambda d: _qrels(d, "q1 0 d1 1\nq2 0 d1 1\nq1 0 d1 2\n"), "qrels.txt", "line 3",
                            "duplicate judgement"),
    "empty qrels": (lambda d: _qrels(d, "\n"), "qrels.txt", None, "no judgements"),
    "query without lang": (lambda d: _queries(d, lang=pa.array(["en", None, "en"])), "q.parquet", "lang",
                           "null in row 1"),
    "empty lang": (lambda d: _queries(d, lang=["en", "", "en"]), "q.parquet", "lang", "invalid language code ''"),
    "lang with a slash": (lambda d: _queries(d, lang=["en", "../de", "en"]), "q.parquet", "lang",
                          "invalid language code '../de'"),
    "duplicate ids": (lambda d: _queries(d, id=["q1", "q2", "q1"]), "q.parquet", "id", "duplicate id 'q1'"),
    "ragged lists": (lambda d: _queries(d, embedding=pa.array([[1.0] * 4, [1.0] * 3, [1.0] * 4])), "q.parquet",
                     "embedding", "ragged: row 1 (id 'q2') has 3 values"),
    "NaN": (lambda d: _queries(d, embedding=pa.array([[1.0] * 4, [1.0, float("nan"), 1.0, 1.0], [1.0] * 4])),
            "q.parquet", "embedding", "NaN or inf in the embedding of row 1"),
    "null embedding value": (lambda d: _queries(d, embedding=pa.array([[1.0] * 4, [1.0, None, 1.0, 1.0], [1.0] * 4])),
                             "q.parquet", "embedding", "null value"),
    "int ids": (lambda d: _queries(d, id=[1, 2, 3]), "q.parquet", "id", "expected type string, found int64"),
    "int embedding": (lambda d: _queries(d, embedding=pa.array([[1] * 4] * 3)), "q.parquet", "embedding",
                      "expected a list of float16/32/64, found list<element: int64>"),
    "missing column": (lambda d: pq.write_table(pa.table({"id": ["q1"], "embedding": [[1.0]]}), d / "q.parquet"),
                       "q.parquet", "lang", "column missing"),
    "dimension mismatch": (lambda d: _queries(d, embedding=pa.array([[1.0] * 5] * 3)), "c.npy", "embedding",
                           "dimension 4 does not match the queries' 5"),
    "npy rows != sidecar rows": (lambda d: np.save(d / "c.npy", np.ones((5, 4), np.float32)), "c.npy", "embedding",
                                 "5 rows, but c.ids.parquet has 4 ids"),
    "npy of ints": (lambda d: np.save(d / "c.npy", np.ones((4, 4), np.int64)), "c.npy", "embedding",
                    "expected float16/32/64 values"),
    "missing sidecar": (lambda d: (d / "c.ids.parquet").unlink(), "c.ids.parquet", None, "missing"),
    "not parquet": (lambda d: (d / "q.parquet").write_text("id,lang\n"), "q.parquet", None,
                    "not a readable Parquet file"),
    "duplicate candidate ids": (lambda d: pq.write_table(pa.table({"id": ["d1", "d2", "d1", "d4"],
                                                                   "lang": ["en", "en", "de", "de"]}),
                                                         d / "c.ids.parquet"),
                                "c.ids.parquet", "id", "duplicate id 'd1'"),
    "candidate without lang": (lambda d: pq.write_table(pa.table({"id": ["d1", "d2", "d3", "d4"],
                                                                  "lang": pa.array(["en", "en", None, "de"])}),
                                                        d / "c.ids.parquet"),
                               "c.ids.parquet", "lang", "null in row 2"),
    "NaN in npy": (lambda d: np.save(d / "c.npy", np.array([[1.0] * 4, [1.0] * 4, [np.nan, 1.0, 1.0, 1.0], [1.0] * 4],
                                                          np.float32)),
                   "c.npy", "embedding", "NaN or inf in the embedding of row 2"),
    "inf after float16 cast": (lambda d: _queries(d, embedding=pa.array([[1e6] * 4] * 3)), "q.parquet",
                               "embedding", "NaN or inf in the embedding of row 0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_names_file_and_field_and_writes_nothing(tmp_path, case):
    paths = _good_inputs(tmp_path / "in")
    breaker, file_name, field, message = BAD[case]
    breaker(tmp_path / "in")
    dtype = "float16" if case == "inf after float16 cast" else "float32"
    with pytest.raises(InputError) as info:
        importer.import_run(tmp_path / "out" / "run", dtype=dtype, **paths)
    assert (info.value.path, info.value.field) == (str(tmp_path / "in" / file_name), field)
    assert message in info.value.message, info.value.message
    assert not (tmp_path / "out").exists()


def test_good_inputs_import(tmp_path):
    paths = _good_inputs(tmp_path / "in")
    meta = importer.import_run(tmp_path / "run", **paths)
    run = rundir.read_run(tmp_path / "run")
    assert (meta["num_queries"], meta["num_candidates"], meta["langs"]) == (3, 4, ["en", "de"])
    assert run.candidates.ids == ["d1", "d2", "d3", "d4"] and run.queries.langs == ["en", "de", "en"]


def test_ids_file_only_with_npy(tmp_path):
    paths = _good_inputs(tmp_path / "in")
    with pytest.raises(InputError, match="an ids file goes with an .npy input only"):
        importer.import_run(tmp_path / "run", queries_ids=tmp_path / "in" / "c.ids.parquet", **paths)


def test_sidecar_path():
    assert importer.sidecar_path("/x/emb.q.npy") == Path("/x/emb.q.ids.parquet")


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_large_side_is_read_into_one_preallocated_array(tmp_path, kind):
    """Traced memory (numpy and Python objects) while reading 20,000 x 64 embeddings stays near the
    output array's size: batches are copied into it, never turned into Python floats (which alone
    would take ~8x)."""
    import tracemalloc

    n, dim = 20_000, 64
    emb = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    labels = {"id": [f"c{i}" for i in range(n)], "lang": ["en"] * (n // 2) + ["de"] * (n // 2)}
    if kind == "npy":
        path = tmp_path / "c.npy"
        np.save(path, emb)
        pq.write_table(pa.table(labels), tmp_path / "c.ids.parquet")
    else:
        path = tmp_path / "c.parquet"
        column = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), dim)
        pq.write_table(pa.table({**labels, "embedding": column}), path, row_group_size=3000)
    paths = _good_inputs(tmp_path / "warm-up")
    importer.read_side(paths["queries"], None, "float32", allow_groups=True)  # imports and Numba's cache first
    tracemalloc.start()
    try:
        side = importer.read_side(path, None, "float32", allow_groups=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(side.embeddings, emb)
    assert peak < 1.5 * emb.nbytes, (peak, emb.nbytes)


