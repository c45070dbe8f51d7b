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


def test_help_lists_import(capsys):
    assert main(["--help"]) == 0
    assert "import" in capsys.readouterr().out


@pytest.mark.parametrize("text, where", [
    ("q1 0 d1\n", "qrels.txt: line 1: expected 4 whitespace-separated fields"),
    ("q1 0 d1 yes\n", "qrels.txt: line 1: grade: expected an integer, found 'yes'"),
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
    assert (out / "keep").exists()
    assert main(_args(import_dir, out) + ["--overwrite"]) == 0 and not (out / "keep").exists()
    assert rundir.read_run(out).meta["model"] == "imported"


def test_disk_full_while_writing_leaves_nothing(import_dir, tmp_path, capsys, monkeypatch):
    def full(sink, schema):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pa.ipc, "new_file", full)  # the run dir's Arrow writer, after its temp file is open
    assert main(_args(import_dir, tmp_path / "out" / "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: disk: No space left on device [ENOSPC]"), err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
