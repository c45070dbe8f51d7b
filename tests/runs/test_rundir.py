"""Run-dir contract: round trips (fp16, fp32), validation of every field, other readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fastir.core import arrow
from fastir.runs import rundir
from fastir.core.errors import InputError


def _make(tmp_path: Path, dtype="float16", dim=8, nq=6, nc=9, name="run", seed=0, **overrides) -> Path:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((nq, dim)).astype(np.float32)
    c = rng.standard_normal((nc, dim)).astype(np.float32)
    qids = [f"x{i}_{'en' if i % 2 else 'de'}" for i in range(nq)]
    cids = [f"{'en' if i % 2 else 'de'}_1_{i}" for i in range(nc)]
    args = dict(
        query_ids=qids, query_langs=[s[-2:] for s in qids], query_groups=[s[:-3] for s in qids],
        query_embeddings=q, candidate_ids=cids, candidate_langs=[s[:2] for s in cids],
        candidate_embeddings=c, qrels_query_ids=qids, qrels_candidate_ids=cids[:nq], qrels_relevance=[1] * nq,
    )
    args.update(overrides)
    meta = {"dataset": "synthetic", "model": "none", "normalized": False, "dtype": dtype}
    return rundir.write_run(tmp_path / name, meta, **args)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    c = rng.standard_normal((7, 16)).astype(np.float32)
    path = _make(tmp_path, dtype=dtype, dim=16, nq=5, nc=7, query_embeddings=q, candidate_embeddings=c)
    run = rundir.read_run(path)
    assert run.meta["format"] == "fastir-run/2" and run.meta["dim"] == 16 and run.meta["dtype"] == dtype
    assert run.queries.embeddings.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(run.queries.embeddings, q.astype(dtype))
    np.testing.assert_array_equal(run.candidates.embeddings, c.astype(dtype))
    assert run.queries.ids[0] == "x0_de" and run.queries.xling_ids[0] == "x0"
    qi, ci = run.qrels_index()
    assert list(qi) == list(range(5)) and list(ci) == list(range(5))
    # zero-copy: the view's memory belongs to the memory-mapped file, not a numpy copy
    assert not run.candidates.embeddings.flags.owndata


def test_multiple_record_batches_are_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(arrow, "_BATCH_BYTES", 64)  # 2 rows of dim 8 fp32 per batch
    rng = np.random.default_rng(2)
    c = rng.standard_normal((9, 8)).astype(np.float32)
    path = _make(tmp_path, dtype="float32", candidate_embeddings=c)
    with pa.ipc.open_file(pa.memory_map(str(path / "candidates.arrow"))) as reader:
        assert reader.num_record_batches > 1
    np.testing.assert_array_equal(rundir.read_run(path).candidates.embeddings, c)


def test_other_readers(tmp_path):
    import duckdb
    import pandas as pd
    import polars as pl

    path = _make(tmp_path, dtype="float16")
    df = pd.read_feather(path / "queries.arrow")
    assert list(df.columns) == ["id", "lang", "xling_id", "embedding"] and len(df) == 6
    assert pl.read_ipc(path / "candidates.arrow").shape == (9, 3)
    assert pl.read_ipc(path / "qrels.arrow").columns == ["query_id", "candidate_id", "relevance"]
    # DuckDB has no float16 type: it reads fp32 runs as they are, and fp16 runs once cast.
    path32 = _make(tmp_path, dtype="float32", name="run32")
    t32 = pa.ipc.open_file(pa.memory_map(str(path32 / "queries.arrow"))).read_all()
    assert duckdb.sql("SELECT count(*), max(len(embedding)) FROM t32").fetchall() == [(6, 8)]
    qrels = pa.ipc.open_file(pa.memory_map(str(path / "qrels.arrow"))).read_all()
    assert duckdb.sql("SELECT count(*) FROM qrels").fetchall() == [(6,)]


def _rewrite(path: Path, file: str, table: pa.Table):
    with pa.OSFile(str(path / file), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)


def _table(path: Path, file: str) -> pa.Table:
    # Read into memory (not a memory map): the test rewrites this same file next.
    return pa.ipc.open_file(pa.BufferReader((path / file).read_bytes())).read_all()


def _edit_meta(path: Path, **changes):
    meta = json.loads((path / "run.json").read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    (path / "run.json").write_text(json.dumps(meta))


BAD_RUNS = {
    "missing run.json": (lambda p: (p / "run.json").unlink(), "run.json", "missing"),
    "malformed run.json": (lambda p: (p / "run.json").write_text("{"), "run.json: json", "malformed JSON"),
    "wrong format": (lambda p: _edit_meta(p, format="other/1"), "run.json: format", "fastir-run/1"),
    "missing dim": (lambda p: _edit_meta(p, dim=None), "run.json: dim", "missing"),
    "dim mismatch": (lambda p: _edit_meta(p, dim=4), "queries.arrow: embedding", "does not match run.json dim 4"),
    "dtype mismatch": (lambda p: _edit_meta(p, dtype="float32"), "queries.arrow: embedding", "element type"),
    "missing table": (lambda p: (p / "qrels.arrow").unlink(), "qrels.arrow", "missing"),
    "not arrow": (lambda p: (p / "candidates.arrow").write_bytes(b"PAR1junk"), "candidates.arrow", "not a readable Arrow"),
    "missing column": (
        lambda p: _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").drop_columns(["relevance"])),
        "qrels.arrow: relevance", "column missing"),
    "negative relevance": (
        lambda p: _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").set_column(
            2, "relevance", pa.array([1, 1, -1, 1, 1, 1], pa.int32()))),
        "qrels.arrow: relevance", "row 2 has -1"),
    "non-integer relevance": (
        lambda p: _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").set_column(
            2, "relevance", pa.array([1.0, 0.5, 1, 1, 1, 1], pa.float64()))),
        "qrels.arrow: relevance", "expected an integer type, found double"),
    "v1 without xling_id": (
        lambda p: (_edit_meta(p, format="fastir-run/1"),
                   _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").drop_columns(["relevance"])),
                   _rewrite(p, "queries.arrow", _table(p, "queries.arrow").drop_columns(["xling_id"]))),
        "queries.arrow: xling_id", "column missing"),
    "wrong column type": (
        lambda p: _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").set_column(
            0, "query_id", pa.array(range(6), pa.int64()))),
        "qrels.arrow: query_id", "expected type string"),
    "duplicate ids": (
        lambda p: _rewrite(p, "candidates.arrow", _table(p, "candidates.arrow").set_column(
            0, "id", pa.array(["de_1_0"] * 9, pa.string()))),
        "candidates.arrow: id", "duplicate id"),
    "unknown qrels query": (
        lambda p: _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").set_column(
            0, "query_id", pa.array(["nope"] * 6, pa.string()))),
        "qrels.arrow: query_id", "unknown query id 'nope'"),
    "unknown qrels candidate": (
        lambda p: _rewrite(p, "qrels.arrow", _table(p, "qrels.arrow").set_column(
            1, "candidate_id", pa.array(["zz"] * 6, pa.string()))),
        "qrels.arrow: candidate_id", "unknown candidate id 'zz'"),
    "path in a lang": (
        lambda p: _rewrite(p, "queries.arrow", _table(p, "queries.arrow").set_column(
            1, "lang", pa.array(["../a"] * 6, pa.string()))),
        "queries.arrow: lang", "invalid language code '../a'"),
    "run.json not an object": (lambda p: (p / "run.json").write_text("[1]"), "run.json: json",
                               "expected a JSON object, found list"),
    "run.json langs invalid": (lambda p: _edit_meta(p, langs=["de", "../en"]), "run.json: langs",
                               "invalid language code '../en'"),
    "run.json langs lack a query language": (lambda p: _edit_meta(p, langs=["de"]), "queries.arrow: lang",
                                             "language 'en' is not in run.json langs ['de']"),
    "run.json langs with a language not in the tables": (
        lambda p: _edit_meta(p, langs=["de", "en", "fr"]), "run.json: langs",
        "language 'fr' has no query and no candidate"),
    "run.json num_queries contradicts": (lambda p: _edit_meta(p, num_queries=7), "run.json: num_queries",
                                         "run.json says 7, the table has 6 rows"),
    "run.json num_candidates contradicts": (lambda p: _edit_meta(p, num_candidates=1), "run.json: num_candidates",
                                            "the table has 9 rows"),
    "table is a directory": (lambda p: ((p / "queries.arrow").unlink(), (p / "queries.arrow").mkdir()),
                             "queries.arrow", "is a directory, expected an Arrow IPC file"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_validation_names_file_and_field(tmp_path, case):
    mutate, where, what = BAD_RUNS[case]
    path = _make(tmp_path)
    mutate(path)
    with pytest.raises(InputError) as err:
        rundir.read_run(path)
    msg = str(err.value)
    assert where in msg and what in msg, msg
    assert "\n" not in err.value.one_line()


def test_consistent_langs_and_counts_are_accepted(tmp_path):
    path = _make(tmp_path)
    _edit_meta(path, langs=["de", "en"], num_queries=6, num_candidates=9, num_qrels=6)
    assert rundir.read_run(path).meta["langs"] == ["de", "en"]


def test_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(InputError, match=r"run: RUN: not a directory"):
        rundir.read_run(tmp_path / "run")
    with pytest.raises(InputError, match=r"nope: RUN: run dir does not exist"):
        rundir.read_run(tmp_path / "nope")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeddings(tmp_path, bad):
    c = np.ones((9, 8), np.float32)
    c[4, 2] = bad
    path = _make(tmp_path, candidate_embeddings=c)
    with pytest.raises(InputError, match=r"candidates\.arrow: embedding: NaN or inf .* row 4 \(id 'de_1_4'\)"):
        rundir.read_run(path)


def test_writer_refuses_non_empty_dir_and_leaves_nothing_on_failure(tmp_path):
    path = _make(tmp_path)
    with pytest.raises(InputError, match="not empty"):
        _make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputError, match="dim"):
        _make(tmp_path, name="run2", candidate_embeddings=np.ones((9, 4), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # overwrite replaces atomically
    _make(tmp_path, dtype="float32", overwrite=True)
    assert rundir.read_run(path).meta["dtype"] == "float32"


def test_schemas_come_from_data_specs():
    spec = rundir.run_format_spec()
    assert spec["format"] == rundir.RUN_FORMAT
    schema = rundir.table_schema("queries", "float16", 768)
    assert schema.names == ["id", "lang", "xling_id", "embedding"]
    assert schema.field("embedding").type == pa.list_(pa.float16(), 768)


def _in_memory(dtype=None, q=None, c=None):
    rng = np.random.default_rng(7)
    q = rng.standard_normal((4, 8)) if q is None else q  # float64 on purpose: stored as meta dtype
    c = rng.standard_normal((6, 8)) if c is None else c
    meta = {"dataset": "held-out", "model": "training", "normalized": False} | ({"dtype": dtype} if dtype else {})
    return rundir.run_from_arrays(
        "<held-out>", meta, query_ids=["q0", "q1", "q2", "q3"], query_langs=["en", "de", "en", "de"],
        query_groups=["x0", "x0", "x1", "x1"], query_embeddings=q,
        candidate_ids=[f"c{i}" for i in range(6)], candidate_langs=["en", "de"] * 3, candidate_embeddings=c,
        qrels_query_ids=["q0", "q1"], qrels_candidate_ids=["c0", "c1"], qrels_relevance=[1, 1])


@pytest.mark.parametrize("dtype", [None, "float16", "float32"])
def test_run_from_arrays_stores_meta_dtype(dtype):
    run = _in_memory(dtype)
    want = np.dtype(dtype or "float32")
    assert run.meta["dtype"] == want.name
    assert run.queries.embeddings.dtype == want and run.candidates.embeddings.dtype == want
    assert run.queries.embeddings.flags.c_contiguous and run.candidates.embeddings.flags.c_contiguous


def test_run_from_arrays_rejects_non_finite_and_unknown_dtype():
    c = np.zeros((6, 8))
    c[5, 3] = np.inf
    with pytest.raises(InputError, match=r"candidates\.arrow: embedding: NaN or inf .* row 5 \(id 'c5'\)"):
        _in_memory(c=c)
    with pytest.raises(InputError, match="dtype"):
        _in_memory("float64")
