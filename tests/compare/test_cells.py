"""fastir.compare.cells: the cells and statistics of ``fastir compare`` against a brute-force grouping of the
per_query rows (paper aggregation: a setting's value is the mean of its cell means; cross X the mean of X's
X->Y cells), the exact merge of parallel cells, and the per-query contributions of the t-test."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.compare.cells import (build_cells, build_statistics, merge_parallel_cells, observed_statistics,
                                  per_query_contributions, stat_csr, statistic_query_counts)
from fastir.compare.inputs import pair_runs, read_scores
from fastir.eval.metrics import metric
from tests.compare.conftest import synth_rows, write_per_query

LANGS = ["de", "en", "zh"]
METRICS = [metric("map"), metric("recall@1"), metric("rank_distance")]


def _rows(seed, sparse):
    rows = synth_rows(LANGS, 6, seed)
    if sparse:  # like MLQA-R: some queries lack a relevant candidate in some language (not parallel)
        keep = [i for i, (q, s, y) in enumerate(zip(rows["query_id"], rows["setting"], rows["cand_lang"]))
                if not (s == "cross" and q.endswith(("q0", "q3")) and y == "zh")]
        rows = {k: [v[i] for i in keep] for k, v in rows.items()}
    return rows


def _paired(tmp_path, sparse=False):
    runs = []
    for i, name in enumerate(("a", "b")):
        path = write_per_query(tmp_path / name, _rows(i, sparse)) / "per_query.parquet"
        runs.append(read_scores(path, name, [m.column for m in METRICS]))
    return pair_runs(runs, [m.column for m in METRICS])


def _groups(paired, column):
    """Brute force: (setting, query lang, cand lang) -> {query index: row values} of one metric column."""
    out: dict[tuple, dict] = {}
    for i in range(len(paired.setting)):
        key = (str(paired.setting[i]), str(paired.query_lang[i]), str(paired.cand_lang[i]))
        value = paired.values[column][i]
        if not np.isnan(value).any():
            out.setdefault(key, {})[int(paired.query[i])] = value
    return out


@pytest.mark.parametrize("sparse", [False, True])
def test_cells_group_the_rows(tmp_path, sparse):
    paired = _paired(tmp_path, sparse)
    cells = build_cells(paired, METRICS)
    got = {}
    for c, key in enumerate(cells.keys):
        lo, hi = cells.ptr[c], cells.ptr[c + 1]
        got[key] = {int(q): v for q, v in zip(cells.query[lo:hi], cells.values[lo:hi])}
    want = {}
    for m in METRICS:
        for (setting, x, y), members in _groups(paired, m.column).items():
            if not m.pooled_only or setting == "multi":
                want[(m.name, setting, x, y)] = members
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].keys() == want[key].keys(), key
        for q in want[key]:
            np.testing.assert_array_equal(got[key][q], want[key][q])
    assert {k[1] for k in got if k[0] == "rank_distance"} == {"multi"}
    assert cells.query.dtype == np.int32 and cells.ptr[-1] == len(cells.query)


@pytest.mark.parametrize("sparse", [False, True])
def test_statistics_follow_the_paper_aggregation(tmp_path, sparse):
    paired = _paired(tmp_path, sparse)
    cells = build_cells(paired, METRICS)
    stats = build_statistics(cells, METRICS, LANGS)
    observed = observed_statistics(cells, stats, cells.values)
    labels = [(s.level, s.setting, s.metric, s.lang) for s in stats]
    assert labels[:7] == [("summary", s, m, None) for m in ("map", "recall@1") for s in ("mono", "cross", "multi")] + [
        ("summary", "multi", "rank_distance", None)]  # metric-major; rank distance: Mul. only
    assert all(s.family == ("summary" if s.level == "summary" else f"language:{s.setting}:{s.metric}") for s in stats)
    column = {m.name: m.column for m in METRICS}
    for stat, value in zip(stats, observed):
        groups = _groups(paired, column[stat.metric])
        means = [np.mean(list(v.values()), axis=0) for (setting, x, _), v in groups.items()
                 if setting == stat.setting and (stat.lang is None or x == stat.lang)]
        np.testing.assert_allclose(value, np.mean(means, axis=0), rtol=1e-12, err_msg=str(stat))
    # merging parallel cells changes no statistic (and merges only cells holding the same queries)
    merged, merged_stats = merge_parallel_cells(cells, stats)
    np.testing.assert_allclose(observed_statistics(merged, merged_stats, merged.values), observed, rtol=1e-12)
    cross = {(k[2], k[3]) for k in merged.keys if k[:2] == ("map", "cross")}
    if sparse:  # zh lost some de and en queries: only zh's own cross cells still hold the same queries
        assert cross == {("de", "en"), ("de", "zh"), ("en", "de"), ("en", "zh"), ("zh", "de+en")}
    else:
        assert cross == {("de", "en+zh"), ("en", "de+zh"), ("zh", "de+en")}


def test_per_query_contributions_average_to_the_statistic_and_count_queries(tmp_path):
    paired = _paired(tmp_path, sparse=True)
    cells = build_cells(paired, METRICS)
    stats = build_statistics(cells, METRICS, LANGS)
    diffs = cells.values[:, 1:] - cells.values[:, :1]
    observed = observed_statistics(cells, stats, diffs)
    n_queries = len(paired.query_ids)
    counts = statistic_query_counts(cells, stats)
    for k, stat in enumerate(stats):
        x = per_query_contributions(cells, stat, diffs, n_queries)
        involved = {int(q) for c in stat.cells for q in cells.query[cells.ptr[c]:cells.ptr[c + 1]]}
        assert x.shape == (len(involved), 1) and counts[k] == len(involved)
        assert x.mean(axis=0) == pytest.approx(observed[k], rel=1e-12, abs=1e-15)


def test_stat_csr_lists_each_statistics_cells_and_weights(tmp_path):
    paired = _paired(tmp_path)
    cells = build_cells(paired, METRICS)
    stats = build_statistics(cells, METRICS, LANGS)
    k_ptr, k_cell, k_coef = stat_csr(stats)
    assert k_ptr[0] == 0 and k_ptr[-1] == len(k_cell) == len(k_coef)
    for k, stat in enumerate(stats):
        assert k_cell[k_ptr[k]:k_ptr[k + 1]].tolist() == stat.cells
        assert k_coef[k_ptr[k]:k_ptr[k + 1]].tolist() == pytest.approx([1 / len(stat.cells)] * len(stat.cells))
