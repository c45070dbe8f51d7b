"""fastir.compare.inputs: finding per_query.parquet, run names (directories and the experiment layout),
reading and validating one file, and pairing runs row by row against a brute-force dictionary join.
(The one-line errors of ``fastir compare`` on bad files: tests/cli/test_compare.py.)"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.compare.comparison import compare
from fastir.compare.inputs import (check_compatible, default_names, find_per_query, held_metrics, layout_name,
                                   pair_runs, read_scores)
from fastir.core.errors import InputError
from tests.compare.conftest import synth_rows, write_per_query

COLUMNS = ["ap", "recall@1", "rank_distance"]


def test_default_names_and_scores_dirs(tmp_path):
    # (moved from tests/compare/test_comparison.py)
    p1 = write_per_query(tmp_path / "x" / "run" / "scores", synth_rows(["en"], 3, 1)) / "per_query.parquet"
    p2 = write_per_query(tmp_path / "y" / "run" / "scores", synth_rows(["en"], 3, 2)) / "per_query.parquet"
    p3 = write_per_query(tmp_path / "plain", synth_rows(["en"], 3, 3)) / "per_query.parquet"
    assert default_names([p1, p2, p3]) == ["x/run", "y/run", "plain"]
    same = default_names([p1, p1])  # the same run twice: full paths still clash -> "#2"
    assert same[1] == same[0] + "#2" and same[0].endswith("x/run") and not same[0].startswith("/")
    cmp = compare([tmp_path / "x" / "run" / "scores", tmp_path / "y" / "run", tmp_path / "plain"],
                  baseline="y/run", samples=10)
    assert cmp.names == ["x/run", "y/run", "plain"] and cmp.baseline == 1


def test_find_per_query_in_a_run_dir_a_scores_dir_or_the_file(tmp_path):
    scores = write_per_query(tmp_path / "run" / "scores", synth_rows(["en"], 2, 0))
    want = scores / "per_query.parquet"
    assert find_per_query(tmp_path / "run") == find_per_query(scores) == find_per_query(want) == want
    with pytest.raises(InputError) as info:
        find_per_query(tmp_path / "nope")
    assert str(info.value) == f"{tmp_path / 'nope'}: no such run or scores directory"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: per_query.parquet: missing: run `fastir score --per-query` first"):
        find_per_query(tmp_path / "empty")


@pytest.mark.parametrize("parts, name", [
    (("exp", "hybrid", "seed-3", "runs", "xquad-r"), "hybrid@3"),
    (("exp", "x-y", "seed-007", "scores", "mlqa-r"), "x-y@7"),
    (("exp", "base", "runs", "xquad-r"), "base"),
    (("exp", "base", "other", "xquad-r"), None),  # not under runs/ or scores/
    (("exp", "seed-2", "runs", "xquad-r"), "exp@2"),
])
def test_layout_names_of_an_experiment(tmp_path, parts, name):
    assert layout_name(tmp_path.joinpath(*parts)) == name


def test_layout_names_win_when_they_are_unique(tmp_path):
    paths = [write_per_query(tmp_path / s / "seed-1" / "scores" / "xquad-r", synth_rows(["en"], 2, 0))
             / "per_query.parquet" for s in ("hybrid", "mono")]
    assert default_names(paths) == ["hybrid@1", "mono@1"]
    names = default_names([paths[0], paths[0].parents[4] / "mono" / "seed-1" / "runs" / "xquad-r" / "x.parquet"])
    assert names == ["hybrid@1", "mono@1"]  # a run dir or its scores dir: named alike


def test_held_metrics_in_column_order(tmp_path):
    scores = write_per_query(tmp_path / "s", synth_rows(["en", "de"], 2, 0), ks=(10, 1))
    assert held_metrics(scores / "per_query.parquet") == ["map", "mrr", "recall@10", "recall@1", "rank_distance"]
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(InputError, match="bad.parquet: cannot read Parquet"):
        held_metrics(tmp_path / "bad.parquet")


def _scores(tmp_path, name, rows, **kw):
    path = write_per_query(tmp_path / name, rows, **kw) / "per_query.parquet"
    return read_scores(path, name, COLUMNS)


def test_read_scores_keeps_every_row_and_column(tmp_path):
    rows = synth_rows(["de", "en"], 4, 1)
    run = _scores(tmp_path, "a", rows)
    assert run.name == "a" and run.meta["dataset_checksum"] == "sha-test" and run.num_rows == len(rows["ap"])
    for col in ("query_id", "query_lang", "cand_lang", "setting"):
        assert run.columns[col].tolist() == rows[col]
    for col in COLUMNS:
        np.testing.assert_array_equal(run.columns[col], np.asarray(rows[col]))
    assert run.num_relevant.tolist() == rows["num_relevant"]


def _drop(rows, keep):
    return {k: [v[i] for i in range(len(v)) if keep(i, rows)] for k, v in rows.items()}


def test_pair_runs_against_a_dictionary_join(tmp_path):
    rows = synth_rows(["zh", "de", "en"], 5, 1)
    a = _scores(tmp_path, "a", _drop(rows, lambda i, r: not (r["query_id"][i] == "de-q1" and r["setting"][i] != "mono")))
    b_rows = synth_rows(["zh", "de", "en"], 5, 2)
    b = _scores(tmp_path, "b", _drop(b_rows, lambda i, r: r["query_id"][i] != "en-q4"))
    paired = pair_runs([a, b], COLUMNS)
    key = lambda run, i: (run.columns["query_id"][i], run.columns["setting"][i], run.columns["cand_lang"][i])  # noqa: E731
    a_rows = {key(a, i): i for i in range(a.num_rows)}
    b_by = {key(b, i): i for i in range(b.num_rows)}
    common = sorted(set(a_rows) & set(b_by))
    # en-q4's 4 rows in a, de-q1's 3 rows in b
    assert paired.unpaired_rows == [len(a_rows) - len(common), len(b_by) - len(common)] == [4, 3]
    # queries indexed by (language, id); rows sorted by (setting, query lang, cand lang, query): cells contiguous
    queries = sorted({(a.columns["query_lang"][i], k[0]) for k, i in a_rows.items() if k in b_by})
    assert list(zip(paired.query_langs.tolist(), paired.query_ids.tolist())) == queries
    qindex = {q: n for n, (_, q) in enumerate(queries)}
    lang = {q: ql for ql, q in queries}
    order = sorted(common, key=lambda k: (k[1], lang[k[0]], k[2], qindex[k[0]]))
    assert list(zip(paired.setting.tolist(), paired.query_lang.tolist(), paired.cand_lang.tolist(),
                    paired.query.tolist())) == [(s, lang[q], c, qindex[q]) for q, s, c in order]
    for col in COLUMNS:
        want = np.array([[a.columns[col][a_rows[k]], b.columns[col][b_by[k]]] for k in order])
        np.testing.assert_array_equal(paired.values[col], want)


def test_runs_that_cannot_be_paired(tmp_path):
    rows = synth_rows(["de", "en"], 3, 1)
    a = _scores(tmp_path, "a", rows)
    with pytest.raises(InputError, match="b/per_query.parquet: dataset_checksum: other differs from a's sha-test"):
        check_compatible([a, _scores(tmp_path, "b", rows, checksum="other")])
    no_cross = _drop(rows, lambda i, r: r["setting"][i] != "cross")
    with pytest.raises(InputError, match="query set: scored over different query/candidate languages than a"):
        pair_runs([a, _scores(tmp_path, "c", no_cross)], COLUMNS)
    judged = dict(rows, num_relevant=[n + 1 if s == "mono" else n for n, s in zip(rows["num_relevant"], rows["setting"])])
    with pytest.raises(InputError, match="d/per_query.parquet: num_relevant: differs from a for the same query"):
        pair_runs([a, _scores(tmp_path, "d", judged)], COLUMNS)
    other_ids = dict(rows, query_id=[q.replace("-q", "-x") for q in rows["query_id"]])
    with pytest.raises(InputError, match="no query scored in both a and e"):
        pair_runs([a, _scores(tmp_path, "e", other_ids)], COLUMNS)


def test_rank_distance_nan_where_the_other_run_has_a_value(tmp_path):
    rows = synth_rows(["de", "en"], 3, 1)
    a = _scores(tmp_path, "a", rows)
    table = pq.read_table(a.path)
    rd = table.column("rank_distance").to_pylist()
    first_multi = rows["setting"].index("multi")
    rd[first_multi] = float("nan")
    table = table.set_column(table.column_names.index("rank_distance"), "rank_distance", pa.array(rd, pa.float64()))
    (tmp_path / "b").mkdir()
    pq.write_table(table, tmp_path / "b" / "per_query.parquet")
    b = read_scores(tmp_path / "b" / "per_query.parquet", "b", COLUMNS)
    with pytest.raises(InputError, match="rank_distance: NaN where other runs have a value"):
        pair_runs([a, b], COLUMNS)


@pytest.mark.parametrize("key, value, what", [("ties", "optimistic", "tie mode 'optimistic' differs from a's "
                                                                     "'pessimistic'"),
                                              ("relevance_threshold", 2, "relevance threshold 2 differs from a's 1")])
def test_runs_of_different_metric_definitions_are_not_paired(tmp_path, key, value, what):
    """per-query values under another tie mode or relevance threshold measure something else."""
    rows = synth_rows(["de", "en"], 3, 1)
    a = _scores(tmp_path, "a", rows)
    b = _scores(tmp_path, "b", rows)
    b.meta[key] = value
    with pytest.raises(InputError, match=f"b/per_query.parquet: {key}: {what}"):
        check_compatible([a, b])
    b.meta[key] = {"ties": "pessimistic", "relevance_threshold": 1}[key]  # the default, written or not
    check_compatible([a, b])
