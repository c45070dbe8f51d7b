"""`fastir preference-run` command line: outputs equal the library's, and bad input (a query missing from
--query-groups, a group file with duplicates, a run naming a query the qrels lack) is one line naming the
file and line, exit 2, nothing written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fastir.cli import main
from fastir.eval.preference import COLUMNS
from fastir.eval.preference_ranked import ranked_preference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from test_preference_ranked import truncated_run  # noqa: E402

RULES = ["--query-langs", "prefix::", "--doc-langs", "prefix::"]


def test_outputs_equal_the_library(tmp_path, capsys):
    truncated_run(tmp_path, 4)
    run, qrels, cand = tmp_path / "run.trec", tmp_path / "qrels.txt", tmp_path / "cand.tsv"
    out = tmp_path / "pref"
    assert main(["preference-run", str(run), "--qrels", str(qrels), *RULES, "--query-groups", "prefix::",
                 "--pivot", "de", "--k", "3", "--target", "th", "--cand-groups", str(cand), "--out", str(out),
                 "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text()) and printed["mlrs"]["queries"] > 0
    expect = ranked_preference(run, qrels, "prefix::", "prefix::", "prefix::", pivot="de", k=3, target="th",
                               cand_groups=cand)
    table = pq.read_table(out / "per_query.parquet")
    assert table.column("query_id").to_pylist() == expect.query_ids
    for name in COLUMNS:
        got = np.array(table.column(name).to_pylist(), dtype=float)
        assert np.array_equal(got, expect.values[name], equal_nan=True), name
    assert main(["preference-run", str(run), "--qrels", str(qrels), *RULES, "--query-groups", "prefix::"]) == 0
    text = capsys.readouterr().out
    assert "mrc" in text and "mlrs" not in text and (tmp_path / "run.trec.preference" / "summary.json").is_file()


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    truncated_run(tmp_path, 5)
    run, qrels, groups, out = tmp_path / "run.trec", tmp_path / "qrels.txt", tmp_path / "groups.tsv", tmp_path / "o"
    args = ["preference-run", str(run), "--qrels", str(qrels), *RULES, "--query-groups", str(groups), "--out", str(out)]
    first = run.read_text().split()[0]
    other = next(q for q in dict.fromkeys(run.read_text().split()[::6]) if q != first)
    cases = ((f"{first}\tg0\n", f"run.trec: line {run.read_text().split()[::6].index(other) + 1}: query {other!r} is "
                                 "not in --query-groups groups.tsv"),
             (f"{first}\tg0\n{first}\tg1\n", f"groups.tsv: line 2: query '{first}' is listed twice (first at line 1)"),
             (f"{first} g0\n", "groups.tsv: line 1: expected query_id TAB group_id"))
    for text, needle in cases:
        groups.write_text(text)
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and needle in err and "\n" not in err and not out.exists(), err
    run.write_text(run.read_text() + "xx:q9 Q0 en:d00 1 2.0 bm25\n")
    lines = len(run.read_text().splitlines())
    assert main([*args[:-4], "--query-groups", "prefix::", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"run.trec: line {lines}: query 'xx:q9' is not in the qrels" in err and not out.exists()
    assert main([*args[:-4], "--query-groups", "prefix::", "--out", str(qrels), "--overwrite"]) == 2
    assert capsys.readouterr().err.startswith("error: ") and qrels.read_text().startswith(first)
