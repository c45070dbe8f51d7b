"""``fastir compare`` (fastir.cli.compare): bad input and bad options end as one line ``error: ...``, exit 2,
nothing written (moved from tests/compare/test_comparison.py; the files it writes: test_comparison.py).

Inputs are synthetic per_query.parquet files (tests/compare/conftest.py).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.cli import main
from fastir.compare.comparison import compare
from fastir.core.errors import InputError
from tests.compare.conftest import synth_rows, write_per_query
from tests.compare.conftest import scores_run as make_run


@pytest.fixture()
def two_runs(tmp_path):
    return make_run(tmp_path, "a", seed=1), make_run(tmp_path, "b", seed=2)


def _cli_error(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_one_run_only(two_runs, capsys):
    assert "at least two runs" in _cli_error(["compare", str(two_runs[0])], capsys)


def test_missing_per_query_file(tmp_path, two_runs, capsys):
    (tmp_path / "empty" / "scores").mkdir(parents=True)
    err = _cli_error(["compare", str(two_runs[0]), str(tmp_path / "empty")], capsys)
    assert "per_query.parquet" in err and "empty" in err
    assert "no such" in _cli_error(["compare", str(two_runs[0]), str(tmp_path / "nope")], capsys)


def test_different_datasets_refused(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, checksum="other")
    err = _cli_error(["compare", str(a), str(b)], capsys)
    assert "dataset_checksum" in err and "different datasets" in err


def test_different_query_sets_refused(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", langs=("de", "en"), seed=2)
    assert "query set" in _cli_error(["compare", str(a), str(b)], capsys)


@pytest.mark.parametrize("mutate, field", [
    (lambda rows: rows["ap"].__setitem__(3, float("nan")), "ap"),
    (lambda rows: rows["recall@1"].__setitem__(0, 1.5), "recall@1"),
    (lambda rows: rows["setting"].__setitem__(0, "mixed"), "setting"),
    (lambda rows: rows["cand_lang"].__setitem__(0, "zz"), "cand_lang"),  # a mono row with cand != query
    (lambda rows: [rows[k].__setitem__(1, rows[k][0]) for k in rows], "query_id"),  # duplicate row
    (lambda rows: rows["num_relevant"].__setitem__(0, 0), "num_relevant"),
    (lambda rows: rows["rank_distance"].__setitem__(0, 3.0), "rank_distance"),  # a mono row
    (lambda rows: rows["query_lang"].__setitem__(1, "zh"), "query_lang"),  # de-q0 with two languages
])
def test_bad_rows(tmp_path, capsys, mutate, field):
    a = make_run(tmp_path, "a", seed=1)
    rows = synth_rows(["de", "en", "zh"], 12, 2)
    mutate(rows)
    write_per_query(tmp_path / "b" / "scores", rows)
    err = _cli_error(["compare", str(a), str(tmp_path / "b")], capsys)
    assert f": {field}" in err and "per_query.parquet" in err


def test_missing_column_and_metadata(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, ks=(1, 5))
    assert "recall@10" in _cli_error(["compare", str(a), str(b)], capsys)
    c = make_run(tmp_path, "c", seed=3, meta={"format": "something-else"})
    assert "format" in _cli_error(["compare", str(a), str(c)], capsys)
    (tmp_path / "d" / "scores").mkdir(parents=True)
    pq.write_table(pa.table({"query_id": ["x"]}), tmp_path / "d" / "scores" / "per_query.parquet")
    assert "fastir metadata" in _cli_error(["compare", str(a), str(tmp_path / "d")], capsys)
    (tmp_path / "e" / "scores").mkdir(parents=True)
    (tmp_path / "e" / "scores" / "per_query.parquet").write_bytes(b"not parquet")
    assert "cannot read Parquet" in _cli_error(["compare", str(a), str(tmp_path / "e")], capsys)


def test_bad_options(two_runs, capsys, tmp_path):
    a, b = map(str, two_runs)
    assert "--baseline" in _cli_error(["compare", a, b, "--baseline", "zzz"], capsys)
    assert "unknown metric" in _cli_error(["compare", a, b, "--metrics", "ndcg"], capsys)
    assert "--names" in _cli_error(["compare", a, b, "--names", "x,x"], capsys)
    _cli_error(["compare", a, b, "--samples", "0"], capsys)
    _cli_error(["compare", a, b, "--test", "wilcoxon"], capsys)
    with pytest.raises(InputError):
        compare([a, b], test="nope")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert "not empty" in _cli_error(["compare", a, b, "--out", str(busy)], capsys)
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]


def test_failed_compare_leaves_no_output(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, checksum="other")
    out = tmp_path / "never"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 2
    assert not out.exists()
