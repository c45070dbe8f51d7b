"""fastir.eval.aggregate on a hand-built result: cell means, paper summary, pooled-only metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastir.eval.aggregate import aggregate
from fastir.eval.cells import Cell, all_cells
from fastir.eval.metrics import parse_metrics, with_rank_distance
from fastir.eval.result import QueryMetrics, ScoreResult

NAN = math.nan


def hand_result():
    """Query langs aa (rows 0, 1) and bb (row 2); candidate langs aa, bb; metrics map, recall@1, rank distance."""
    metrics = with_rank_distance(parse_metrics("map,recall@1"))
    nrel = np.array([[1, 1, 2], [1, 0, 1], [0, 2, 2]], np.int32)
    v = np.full((3, 3, 3), NAN)
    v[0, :, 0], v[0, :, 1], v[0, 2, 2] = [1.0, 0.5, 0.75], [1.0, 0.0, 0.5], 3.0
    v[1, 0, 0], v[1, 2, 0], v[1, 0, 1], v[1, 2, 1] = 0.25, 0.25, 0.0, 0.0  # one gold: no rank distance
    v[2, 1:, 0], v[2, 1:, 1], v[2, 2, 2] = [0.5, 0.5], [0.5, 0.5], 1.0
    langs = ["aa", "bb"]
    return ScoreResult(run=None, ks=(1,), pairs="all", query_langs=langs, cand_langs=langs,
                       query_lang_id=np.array([0, 0, 1], np.int32), cells=all_cells(langs, langs), cell_stats={},
                       summary={}, per_language={}, metrics=QueryMetrics(metrics, nrel, v),
                       gold_ptr=np.zeros(4, np.int64), gold_cand=np.zeros(0, np.int64))


def test_cells_summary_and_pooled_only_metric():
    result = hand_result()
    aggregate(result)
    st = result.cell_stats
    assert st[Cell("aa", "aa")] == {"queries": 2, "skipped": 0, "map": 0.625, "recall@1": 0.5, "rank_distance": None}
    assert st[Cell("aa", "bb")]["queries"] == 1 and st[Cell("aa", "bb")]["skipped"] == 1
    assert st[Cell("aa", "all")]["rank_distance"] == 3.0 and st[Cell("aa", "all")]["rank_distance_queries"] == 1
    assert st[Cell("bb", "aa")]["queries"] == 0 and math.isnan(st[Cell("bb", "aa")]["map"])
    s = result.summary
    assert list(s) == ["mono", "cross", "multi", "micro_multi_map", "rank_distance"]
    assert s["mono"]["map"] == pytest.approx((0.625 + 0.5) / 2) and s["mono"]["cells"] == 2
    assert s["multi"]["recall@1"] == pytest.approx((0.25 + 0.5) / 2)
    assert s["micro_multi_map"] == pytest.approx((0.75 + 0.25 + 0.5) / 3)
    assert s["rank_distance"] == {"macro": 2.0, "per_language": {"aa": 3.0, "bb": 1.0}}
    assert list(result.per_language["aa"]) == ["mono", "cross", "multi", "rank_distance", "queries"]
    assert result.per_language["bb"]["queries"] == 1 and result.per_language["bb"]["rank_distance"] == 1.0


def test_without_map_or_pooled_cells():
    result = hand_result()
    result.metrics = QueryMetrics(result.metrics.metrics[1:], result.metrics.nrel, result.metrics.values[:, :, 1:])
    result.cells = [c for c in result.cells if c.kind != "multi"]
    aggregate(result)
    assert result.summary["micro_multi_map"] is None and result.summary["rank_distance"] is None
    assert result.summary["multi"] is None and set(result.summary["mono"]) == {"recall@1", "cells"}
