"""fastir.eval.result: per-query values by metric name, cell rows, concat_ranges; the eval modules form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import fastir
from fastir.eval.cells import Cell
from fastir.eval.metrics import parse_metrics, with_rank_distance
from fastir.eval.result import QueryMetrics, ScoreResult, concat_ranges


def test_query_metrics_by_name():
    metrics = with_rank_distance(parse_metrics("map,recall@5"))
    values = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3)
    qm = QueryMetrics(metrics, np.ones((2, 3), np.int32), values)
    assert qm["recall@5"].tolist() == values[:, :, 1].tolist()
    assert qm.index("rank_distance") == 2


def test_cell_rows_and_set_index():
    nrel = np.array([[1, 0, 1], [0, 1, 1], [2, 0, 2]], np.int32)
    qm = QueryMetrics(parse_metrics("map"), nrel, np.zeros((3, 3, 1)))
    result = ScoreResult(run=None, ks=(), pairs="all", query_langs=["aa", "bb"], cand_langs=["aa", "bb"],
                         query_lang_id=np.array([0, 0, 1], np.int32), cells=[], cell_stats={}, summary={},
                         per_language={}, metrics=qm, gold_ptr=np.zeros(4, np.int64), gold_cand=np.zeros(0, np.int64))
    assert result.set_index("all") == 2 and result.set_index("bb") == 1
    s, rows = result.cell_rows(Cell("aa", "aa"))
    assert s == 0 and rows.tolist() == [0]
    assert result.cell_rows(Cell("aa", "all"))[1].tolist() == [0, 1]
    assert result.cell_rows(Cell("bb", "bb"))[1].tolist() == []


def test_concat_ranges():
    assert concat_ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]
    assert concat_ranges(np.array([], np.int64), np.array([], np.int64)).tolist() == []


def _imports(path: Path) -> set[str]:
    """fastir modules imported anywhere in ``path``, lazy (in-function) imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fastir."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fastir."))
    return found


def test_no_import_cycle_in_eval_runs_compare():
    root = Path(fastir.__file__).parent
    graph = {}
    for room in ("eval", "runs", "compare"):
        for path in (root / room).glob("*.py"):
            graph[f"fastir.{room}.{path.stem}"] = _imports(path)

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [m for m in graph if reaches(m, m, {m})] == []
    # Data flows one way: scoring -> aggregation -> report.
    assert "fastir.eval.score" not in graph["fastir.eval.aggregate"] | graph["fastir.eval.report"]
    assert "fastir.eval.report" not in graph["fastir.eval.aggregate"]
