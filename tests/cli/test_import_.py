"""`fastir import` (fastir.cli.import_) command line: it parses and calls fastir.runs.importer; bad input and OS failures
are one line `error: <file>: <field>: <message>`, exit 2, nothing (not even a temp dir) left behind."""

from __future__ import annotations

import errno

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.cli import main
from fastir.runs import rundir


@pytest.fixture
def import_dir(tmp_path):
    """q.parquet, c.npy + c.ids.parquet and graded qrels (tests/cli/conftest.py's ``inputs`` holds smaller ones)."""
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(3)
    pq.write_table(pa.table({"id": ["q1", "q2"], "lang": ["en", "de"],
                             "embedding": pa.array(list(rng.standard_normal((2, 4))), pa.list_(pa.float32(), 4))}),
                   d / "q.parquet")
    np.save(d / "c.npy", rng.standard_normal((3, 4)).astype(np.float32))
    pq.write_table(pa.table({"id": ["d1", "d2", "d3"], "lang": ["en", "de", "de"]}), d / "c.ids.parquet")
    (d / "qrels.txt").write_text("q1 0 d1 1\nq1 0 d2 1\nq2 0 d2 3\nq2 0 d1 2\nq2 0 d3 0\n")
    return d


def _args(d, out):
    return ["import", "--queries", str(d / "q.parquet"), "--candidates", str(d / "c.npy"),
            "--qrels", str(d / "qrels.txt"), "--out", str(out)]


def test_import_then_score(import_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(import_dir, out)) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: 2 queries, 3 candidates, 5 qrels, dim 4, float32")
    run = rundir.read_run(out)
    assert run.meta["source"]["candidates"]["ids_file"] == str(import_dir / "c.ids.parquet")
    assert run.meta["format"] == "fastir-run/2" and list(run.qrels_relevance) == [1, 1, 3, 2, 0]
    assert main(["score", str(out), "--out", str(tmp_path / "scores")]) == 0


def test_imported_systems_on_the_same_data_compare(import_dir, tmp_path, capsys):
    # issue 31, item 3: compare refused every imported run (no dataset_checksum)
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(9)  # another system: other embeddings, rows and qrels in another order
    pq.write_table(pa.table({"id": ["q2", "q1"], "lang": ["de", "en"],
                             "embedding": pa.array(list(rng.standard_normal((2, 4))), pa.list_(pa.float32(), 4))}),
                   other / "q.parquet")
    np.save(other / "c.npy", rng.standard_normal((3, 4)).astype(np.float32))
    pq.write_table(pa.table({"id": ["d3", "d1", "d2"], "lang": ["de", "en", "de"]}), other / "c.ids.parquet")
    (other / "qrels.txt").write_text("q2 0 d3 0\nq2 0 d1 2\nq1 0 d2 1\nq2 0 d2 3\nq1 0 d1 1\n")
    for name, d in (("a", import_dir), ("b", other)):
        assert main(_args(d, tmp_path / name)) == 0
        assert main(["score", str(tmp_path / name), "--per-query", "--out", str(tmp_path / name / "scores")]) == 0
    checksums = {rundir.read_run(tmp_path / n).meta["dataset_checksum"] for n in ("a", "b")}
    assert len(checksums) == 1
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--samples", "50"]) == 0
    (other / "qrels.txt").write_text("q2 0 d3 1\nq2 0 d1 2\nq1 0 d2 1\nq2 0 d2 3\nq1 0 d1 1\n")  # one grade differs
    assert main(_args(other, tmp_path / "c")) == 0
    assert rundir.read_run(tmp_path / "c").meta["dataset_checksum"] not in checksums


def test_help_lists_import(capsys):
    assert main(["--help"]) == 0
    assert "import" in capsys.readouterr().out


@pytest.mark.parametrize("text, where", [
    ("q1 0 d1\n", "qrels.txt: line 1: expected 4 whitespace-separated fields"),
    ("q1 0 d1 yes\n", "qrels.txt: line 1: grade: expected an integer in ASCII digits, found 'yes'"),
    ("q1 0 d1 1\nq1 0 nope 1\n", "qrels.txt: line 2: unknown candidate id 'nope' (not in c.ids.parquet)"),
])
def test_bad_qrels_one_line_exit_2_nothing_written(import_dir, tmp_path, capsys, text, where):
    (import_dir / "qrels.txt").write_text(text)
    assert main(_args(import_dir, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert where in err, err
    assert err.count("\n") == 1 and err.startswith(f"error: {import_dir / 'qrels.txt'}: ")
    assert not (tmp_path / "run").exists()


def test_npy_rows_differ_from_sidecar(import_dir, tmp_path, capsys):
    np.save(import_dir / "c.npy", np.ones((2, 4), np.float32))
    assert main(_args(import_dir, tmp_path / "run")) == 2
    assert capsys.readouterr().err == (f"error: {import_dir / 'c.npy'}: embedding: 2 rows, but c.ids.parquet has 3 ids\n")


def test_missing_option_is_one_line(import_dir, capsys):
    assert main(["import", "--queries", str(import_dir / "q.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--candidates" in err


def test_existing_output_needs_overwrite(import_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep").write_text("x")
    assert main(_args(import_dir, out)) == 2 and "pass --overwrite" in capsys.readouterr().err
    # --overwrite replaces only a run dir: a folder holding anything else is refused and kept
    assert main(_args(import_dir, out) + ["--overwrite"]) == 2 and "'keep', which" in capsys.readouterr().err
    assert (out / "keep").read_text() == "x"
    (out / "keep").unlink()
    assert main(_args(import_dir, out)) == 0
    assert main(_args(import_dir, out) + ["--overwrite"]) == 0
    assert rundir.read_run(out).meta["model"] == "imported"


def test_disk_full_while_writing_leaves_nothing(import_dir, tmp_path, capsys, monkeypatch):
    def full(sink, schema):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pa.ipc, "new_file", full)  # the run dir's Arrow writer, after its temp file is open
    assert main(_args(import_dir, tmp_path / "out" / "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: disk: No space left on device [ENOSPC]"), err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_float64_beyond_the_stored_type_is_one_line(tmp_path, capsys, dtype):
    # issue 31, item 11: numpy's two overflow RuntimeWarnings printed before the error
    pq.write_table(pa.table({"id": ["q1"], "lang": ["en"], "embedding": pa.array([[1e300, 2.0]], pa.list_(pa.float64()))}),
                   tmp_path / "q.parquet")
    pq.write_table(pa.table({"id": ["d1"], "lang": ["en"], "embedding": pa.array([[1.0, 2.0]], pa.list_(pa.float64()))}),
                   tmp_path / "c.parquet")
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\n")
    argv = ["import", "--queries", str(tmp_path / "q.parquet"), "--candidates", str(tmp_path / "c.parquet"),
            "--qrels", str(tmp_path / "qrels.txt"), "--out", str(tmp_path / "r"), "--dtype", dtype]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'q.parquet'}: embedding: NaN or inf in the embedding of row 0 (id 'q1')\n"
    assert not (tmp_path / "r").exists()
