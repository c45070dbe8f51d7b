"""``fastir data`` (fastir.cli.data): show, export, to-train and overlap from the command line; bad input
is one line ``error: ...``, exit 2, nothing written. Moved from the tests of the modules they call:
tests/data/test_lareqa.py (show, export), test_train_table_writer.py (to-train), test_overlap.py (overlap,
whose planted evaluation data this file imports from there).
"""

from __future__ import annotations

import json

import pytest

from fastir.cli import main
from fastir.data.train_table import open_train_table
from tests.conftest import write_arrow
from tests.data.test_overlap import PLANTED, _negative_default, write_eval_dir

# ----------------------------------------------------------------------------- show, export


def test_cli_data_show(capsys):
    assert main(["data", "show", "xquad-r"]) == 0
    out = capsys.readouterr().out
    assert "13,090" in out and "13,014" in out and out.count("1,190") == 11
    assert main(["data", "show", "mlqa-r", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["totals"]["questions"] == 4199 and summary["totals"]["candidates"] == 20534


def test_cli_data_export_round_trip(tmp_path):
    import pyarrow as pa

    out = tmp_path / "export"
    assert main(["data", "export", "mlqa-r", str(out), "--langs", "en,de"]) == 0
    q = pa.ipc.open_file(pa.memory_map(str(out / "questions.arrow"))).read_all()
    c = pa.ipc.open_file(pa.memory_map(str(out / "candidates.arrow"))).read_all()
    r = pa.ipc.open_file(pa.memory_map(str(out / "qrels.arrow"))).read_all()
    assert q.num_rows == 512 + 1148 and c.num_rows == 2362 + 6264
    assert set(r.column("query_id").to_pylist()) <= set(q.column("id").to_pylist())
    assert set(r.column("candidate_id").to_pylist()) <= set(c.column("id").to_pylist())


def test_cli_bad_input_exit_2_and_nothing_written(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "en.json").write_text("not json", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["data", "export", str(tmp_path / "bad"), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "en.json: json" in err and "\n" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad"]


# ----------------------------------------------------------------------------- to-train


def test_cli_data_to_train(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "t.parquet"
    assert main(["data", "to-train", "xquad-r", str(out), "--langs", "en,es"]) == 0
    assert "wrote" in capsys.readouterr().out and open_train_table(out).num_rows > 0
    assert main(["data", "to-train", "xquad-r", str(out)]) == 2
    assert main(["data", "to-train", "xquad-r", str(tmp_path / "t.csv")]) == 2
    assert not (tmp_path / "t.csv").exists()


# ----------------------------------------------------------------------------- overlap


def test_cli_table_and_json(tmp_path, capsys):
    eval_dir = write_eval_dir(tmp_path)
    table = write_arrow(tmp_path / "train.arrow", _negative_default(PLANTED))
    assert main(["data", "overlap", table, eval_dir, "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "ev" in out.splitlines()[1] and f"{table}: row 1: xling_id equals" in out
    assert main(["data", "overlap", table, eval_dir, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["datasets"][0]["rows"] == 6 and doc["datasets"][0]["examples"][0]["row"] == 1


@pytest.mark.parametrize("args, where", [
    (["no-such-dataset"], "no-such-dataset"),
    ([], "Missing argument"),
])
def test_cli_bad_input(tmp_path, capsys, args, where):
    table = write_arrow(tmp_path / "train.arrow", [PLANTED[0]])
    assert main(["data", "overlap", table, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and where in err


def test_cli_missing_table(tmp_path, capsys):
    eval_dir = write_eval_dir(tmp_path)
    assert main(["data", "overlap", str(tmp_path / "none.arrow"), eval_dir]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.arrow'}: no such file\n"
