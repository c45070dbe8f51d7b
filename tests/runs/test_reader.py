"""fastir.runs.reader: fastir-run/2 and fastir-run/1 dirs both read; grades on the Run object;
scoring counts grade >= 1 as relevant; bad grades are one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from fastir.cli import main
from fastir.core.errors import InputError
from fastir.runs.reader import read_run

LANGS = ("aa", "bb")


def _graded_run(tmp_path: Path, make_run, relevance, name="run"):
    """2 languages x 4 queries, 8 candidates; query i judges candidates i and i + 4 (its translation)."""
    rng = np.random.default_rng(3)
    qrels = [(i, i % 4 + 4 * side) for i in range(8) for side in (0, 1)]
    return make_run(tmp_path, q_emb=rng.standard_normal((8, 6)), q_langs=[LANGS[i // 4] for i in range(8)],
                    c_emb=rng.standard_normal((8, 6)), c_langs=[LANGS[j // 4] for j in range(8)], qrels=qrels,
                    relevance=relevance, name=name)


def _rewrite(path: Path, file: str, change) -> None:
    table = pa.ipc.open_file(pa.BufferReader((path / file).read_bytes())).read_all()
    table = change(table)
    with pa.OSFile(str(path / file), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)


def _to_v1(path: Path) -> None:
    """Rewrite a v2 run dir as fastir-run/1 wrote it: no relevance column, format string /1."""
    meta = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps({**meta, "format": "fastir-run/1"}))
    _rewrite(path, "qrels.arrow", lambda t: t.drop_columns(["relevance"]))


def test_v2_exposes_grades_and_index_counts_grade_1_and_up(tmp_path, make_run):
    grades = [2, 0, 1, 1, 3, 0, 1, 2, 0, 1, 1, 1, 2, 2, 1, 0]
    run = read_run(_graded_run(tmp_path, make_run, grades))
    assert run.meta["format"] == "fastir-run/2"
    assert run.qrels_relevance.dtype == np.int32 and run.qrels_relevance.tolist() == grades
    q_all, c_all, g = run.qrels_graded()
    assert len(q_all) == 16 and g.tolist() == grades
    q, c = run.qrels_index()
    keep = np.array(grades) >= 1
    assert q.tolist() == q_all[keep].tolist() and c.tolist() == c_all[keep].tolist()


def test_v1_dir_reads_as_relevance_1(tmp_path, make_run):
    path = _graded_run(tmp_path, make_run, None)
    v2 = read_run(path)
    _to_v1(path)
    v1 = read_run(path)
    assert v1.meta["format"] == "fastir-run/1"
    assert v1.qrels_relevance.tolist() == [1] * 16
    assert v1.qrels.column_names == v2.qrels.column_names == ["query_id", "candidate_id", "relevance"]
    for a, b in zip(v1.qrels_index(), v2.qrels_index()):
        np.testing.assert_array_equal(a, b)


def test_v1_and_v2_score_identically(tmp_path, make_run, capsys):
    path = _graded_run(tmp_path, make_run, None)
    assert main(["score", str(path), "--out", str(tmp_path / "s2"), "--format", "json"]) == 0
    v2 = json.loads(capsys.readouterr().out)
    _to_v1(path)
    assert main(["score", str(path), "--out", str(tmp_path / "s1"), "--format", "json"]) == 0
    v1 = json.loads(capsys.readouterr().out)
    assert v1["summary"] == v2["summary"]


def test_grade_0_rows_score_as_absent(tmp_path, make_run, capsys):
    """A judged-non-relevant row (grade 0) changes no number: the run without it scores the same."""
    grades = [1, 0] * 8  # every query keeps only its candidate in aa as relevant
    assert main(["score", str(_graded_run(tmp_path, make_run, grades, "with0")), "--out", str(tmp_path / "a"),
                 "--pairs", "multi", "--format", "json"]) == 0
    with_zero = json.loads(capsys.readouterr().out)
    rng = np.random.default_rng(3)
    binary = make_run(tmp_path, q_emb=rng.standard_normal((8, 6)), q_langs=[LANGS[i // 4] for i in range(8)],
                      c_emb=rng.standard_normal((8, 6)), c_langs=[LANGS[j // 4] for j in range(8)],
                      qrels=[(i, i % 4) for i in range(8)], name="without0")
    assert main(["score", str(binary), "--out", str(tmp_path / "b"), "--pairs", "multi", "--format", "json"]) == 0
    without = json.loads(capsys.readouterr().out)
    assert with_zero["summary"] == without["summary"]


def test_v2_without_group_column_reads(tmp_path, make_run):
    path = _graded_run(tmp_path, make_run, None)
    _rewrite(path, "queries.arrow", lambda t: t.drop_columns(["xling_id"]))
    run = read_run(path)
    assert run.queries.xling_ids is None and len(run.queries) == 8


def test_any_integer_type_reads_as_int32(tmp_path, make_run):
    path = _graded_run(tmp_path, make_run, None)
    _rewrite(path, "qrels.arrow", lambda t: t.set_column(2, "relevance", pa.array([2] * 16, pa.int64())))
    run = read_run(path)
    assert run.qrels_relevance.dtype == np.int32 and run.qrels_relevance.tolist() == [2] * 16


@pytest.mark.parametrize("column, field, message", [
    (pa.array([1] * 15 + [-2], pa.int64()), "relevance", "row 15 has -2"),
    (pa.array([1.0] * 16, pa.float32()), "relevance", "expected an integer type, found float"),
    (pa.array(["1"] * 16, pa.string()), "relevance", "expected an integer type, found string"),
    (pa.array([1] * 15 + [None], pa.int32()), "relevance", "contains nulls"),
    (None, "relevance", "column missing"),
])
def test_bad_relevance_is_one_line_exit_2(tmp_path, make_run, capsys, column, field, message):
    path = _graded_run(tmp_path, make_run, None)
    if column is None:
        _rewrite(path, "qrels.arrow", lambda t: t.drop_columns(["relevance"]))
    else:
        _rewrite(path, "qrels.arrow", lambda t: t.set_column(2, "relevance", column))
    with pytest.raises(InputError):
        read_run(path)
    out = tmp_path / "scores"
    assert main(["score", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path / 'qrels.arrow'}: {field}: {err.split(': ', 3)[3]}" and message in err
    assert err.count("\n") == 1 and not out.exists()


def test_unknown_format_names_both_readable_ones(tmp_path, make_run):
    path = _graded_run(tmp_path, make_run, None)
    meta = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps({**meta, "format": "fastir-run/3"}))
    with pytest.raises(InputError, match=r"run\.json: format: expected 'fastir-run/2' or 'fastir-run/1'"):
        read_run(path)


def test_record_batches_are_chunks_checked_one_by_one(tmp_path, make_run, monkeypatch):
    """A table of several record batches: zero-copy chunks, joined only on request; a NaN in a
    later batch is reported at its row of the whole table."""
    import fastir.core.arrow as arrow

    monkeypatch.setattr(arrow, "_BATCH_BYTES", 6 * 4 * 3)  # 3 rows a batch
    c_emb = np.arange(60, dtype=np.float32).reshape(10, 6)
    path = make_run(tmp_path, q_emb=np.ones((2, 6)), q_langs=["aa", "bb"], c_emb=c_emb, c_langs=["aa", "bb"] * 5,
                    qrels=[(0, 0), (1, 1)])
    run = read_run(path)
    assert [len(c) for c in run.candidates.chunks] == [3, 3, 3, 1]
    assert run.candidates._whole is None and np.array_equal(run.candidates.embeddings, c_emb)
    c_emb[7, 2] = np.nan
    bad = make_run(tmp_path, q_emb=np.ones((2, 6)), q_langs=["aa", "bb"], c_emb=c_emb, c_langs=["aa", "bb"] * 5,
                   qrels=[(0, 0), (1, 1)], name="bad")
    with pytest.raises(InputError, match="NaN or inf in the embedding of row 7 .id 'c7'"):
        read_run(bad)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_first_nonfinite_row_numpy_stand_in_agrees_with_the_kernel(monkeypatch, dtype):
    """While the preload thread loads the Numba scan, read_run's numpy test of the exponent bits
    finds the same first bad row, across its steps of rows."""
    import fastir.kernels.lazy as lazy
    from fastir.kernels.upcast import first_nonfinite_row as kernel
    from fastir.kernels import NONFINITE_KERNEL
    from fastir.runs.reader import first_nonfinite_row

    rng = np.random.default_rng(1)
    monkeypatch.setattr(lazy, "_PENDING", {NONFINITE_KERNEL})
    for trial in range(40):
        emb = rng.standard_normal((int(rng.integers(0, 50)), 5)).astype(dtype)
        for _ in range(int(rng.integers(0, 3))):
            if len(emb):
                emb[rng.integers(0, len(emb)), rng.integers(0, 5)] = rng.choice([np.nan, np.inf, -np.inf])
        if trial % 5 == 0 and len(emb):  # the largest finite value and a subnormal stay finite
            emb[0, 0], emb[-1, -1] = np.finfo(dtype).max, np.finfo(dtype).smallest_subnormal
        assert first_nonfinite_row(emb, rows_per_step=7) == kernel(emb), trial


@pytest.mark.parametrize("dim, message", [(1e30, "dim: expected int, found float"), (10**30, "dim: must be 1 to 2147483647"),
                                          (0, "dim: must be 1 to"), (True, "dim: expected int, found bool")])
def test_run_json_dim_is_an_int_an_arrow_list_can_hold(tmp_path, make_run, dim, message):
    # issue 31, item 9: "dim": 10**30 overflowed inside pyarrow
    path = make_run(tmp_path, q_emb=[[1, 0]], q_langs=["en"], c_emb=[[1, 0]], c_langs=["en"], qrels=[(0, 0)])
    meta = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps({**meta, "dim": dim}))
    with pytest.raises(InputError, match=message):
        read_run(path)


def test_a_null_inside_an_embedding_is_refused(tmp_path, make_run, capsys):
    # issue 31, item 6: the list was there, one value of it null, and the run scored silently
    path = make_run(tmp_path, q_emb=[[1, 0], [0, 1]], q_langs=["de", "en"], c_emb=[[1, 0], [0, 1]],
                    c_langs=["de", "en"], qrels=[(0, 0), (0, 1), (1, 0), (1, 1)])
    table = pa.ipc.open_file(str(path / "candidates.arrow")).read_all()
    emb = pa.FixedSizeListArray.from_arrays(pa.array([1.0, 0.0, None, 1.0], pa.float32()), 2)
    table = table.set_column(table.schema.get_field_index("embedding"), table.schema.field("embedding"), emb)
    with pa.OSFile(str(path / "candidates.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert main(["score", str(path), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path / 'candidates.arrow'}: embedding: a null value inside the embedding of row 1\n"
    assert not (tmp_path / "s").exists()
