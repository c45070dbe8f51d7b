"""`fastir preference` command line: outputs equal the library's, formats, and bad input (exit 2, one
line naming the file and line, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fastir.cli import main
from fastir.eval.preference import COLUMNS, language_preference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from test_preference import parallel_pool  # noqa: E402


def parallel_run(tmp_path, make_run, seed=8):
    cols, c_groups = parallel_pool(np.random.default_rng(seed))
    path = make_run(tmp_path, **cols)
    groups = tmp_path / "cand_groups.tsv"
    groups.write_text("".join(f"c{j}\t{g}\n" for j, g in enumerate(c_groups)), encoding="utf-8")
    return path, groups, c_groups


def test_outputs_equal_the_library_and_formats(tmp_path, make_run, capsys):
    path, groups, c_groups = parallel_run(tmp_path, make_run)
    out = tmp_path / "pref"
    assert main(["preference", str(path), "--pivot", "de", "--k", "4", "--target", "th", "--cand-groups",
                 str(groups), "--mlrs-k", "5", "--out", str(out), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text()) and printed["target"] == "th"
    table = pq.read_table(out / "per_query.parquet")
    expect = language_preference(path, pivot="de", k=4, target="th", cand_groups=c_groups, mlrs_k=5)
    for name in COLUMNS:
        got = np.array(table.column(name).to_pylist(), dtype=float)
        assert np.array_equal(got, expect.values[name], equal_nan=True), name
    assert main(["preference", str(path)]) == 0  # default: RUN/preference/, pivot en, no MLRS
    text = capsys.readouterr().out
    assert "mrc" in text and "mlrs" not in text and (path / "preference" / "summary.json").is_file()
    assert main(["preference", str(path), "--overwrite", "--pivot", "none"]) == 0


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, make_run, capsys):
    path, groups, _ = parallel_run(tmp_path, make_run)
    bad = tmp_path / "bad.tsv"
    out = tmp_path / "pref"
    for text, needle in (("c0\tg0\nnope\tg1\n", "bad.tsv: line 2: candidate 'nope' is not in the run"),
                         ("c0\tg0\nc0\tg1\n", "bad.tsv: line 2: candidate 'c0' is listed twice"),
                         ("c0 g0\n", "bad.tsv: line 1: expected candidate_id TAB group_id")):
        bad.write_text(text, encoding="utf-8")
        assert main(["preference", str(path), "--target", "th", "--cand-groups", str(bad), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and needle in err and "\n" not in err and not out.exists()
    assert main(["preference", str(path), "--target", "th", "--out", str(out)]) == 2
    assert "--cand-groups: MLRS needs both" in capsys.readouterr().err and not out.exists()
    assert main(["preference", str(path), "--pivot", "xx", "--out", str(out)]) == 2
    assert "pivot: no candidate in 'xx'" in capsys.readouterr().err and not out.exists()
    out.mkdir()
    (out / "mine.txt").write_text("x")
    assert main(["preference", str(path), "--out", str(out), "--overwrite"]) == 2
    assert "does not write" in capsys.readouterr().err and (out / "mine.txt").read_text() == "x"
    for inside in (path / "queries.arrow", groups):  # an input: refused, left as it was
        before = inside.read_bytes()
        assert main(["preference", str(path), "--out", str(inside), "--overwrite", "--target", "th",
                     "--cand-groups", str(groups)]) == 2
        assert capsys.readouterr().err.startswith("error: ") and inside.read_bytes() == before
