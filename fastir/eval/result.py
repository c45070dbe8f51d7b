"""What ``fastir score`` produces: per-query metric values, the score result, and its file names.

Shared by scoring (:mod:`fastir.eval.score`), aggregation (:mod:`fastir.eval.aggregate`), the
output files (:mod:`fastir.eval.report`), TREC export (:mod:`fastir.eval.trec`) and ``fastir
compare``; it imports none of them, so data flows one way: score -> aggregate -> report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastir.eval.cells import POOLED, Cell
from fastir.eval.metrics import Metric

SCORES_FORMAT = "fastir-scores/1"
PER_QUERY_FORMAT = "fastir-per-query/1"
PAIRS_CSV = "pairs.csv"
PAIRS_PARQUET = "pairs.parquet"
SUMMARY_JSON = "summary.json"
PER_QUERY_PARQUET = "per_query.parquet"
HEATMAP_PNG = "heatmap.png"
SCORE_FILES = (PAIRS_CSV, PAIRS_PARQUET, SUMMARY_JSON, PER_QUERY_PARQUET, HEATMAP_PNG)


@dataclass
class QueryMetrics:
    """Per-query results; set index s < n_langs = candidate language s, s == n_langs = pooled."""

    metrics: tuple[Metric, ...]  # values[..., i] is metrics[i] (registry order of the request)
    nrel: np.ndarray  # int32 (n_queries, n_langs + 1): |R_q| per candidate set (0 = not scorable)
    values: np.ndarray  # float64 (n_queries, n_langs + 1, len(metrics)), NaN where not scored
    # k -> float64 (n_queries, n_langs): exposure share of each candidate language in the pooled top k
    # (for lang_jsd@k / lang_jsd_rel@k; NaN where not scored)
    exposure: dict = field(default_factory=dict)

    def index(self, name: str) -> int:
        return [m.name for m in self.metrics].index(name)

    def __getitem__(self, name: str) -> np.ndarray:
        """(n_queries, n_langs + 1) values of the metric called ``name`` (``map``, ``recall@10``)."""
        return self.values[:, :, self.index(name)]


@dataclass
class TopK:
    """Best ``depth`` candidates per query and set, for TREC export (rows of unscored queries unused)."""

    depth: int
    score: np.ndarray  # float32 (n_queries, n_langs + 1, depth)
    cand: np.ndarray  # int32 candidate rows (n_queries, n_langs + 1, depth)
    length: np.ndarray  # int32 (n_queries, n_langs + 1)


@dataclass
class ScoreResult:
    run: object  # fastir.runs.rundir.Run
    ks: tuple[int, ...]  # the Recall@k cutoffs (summary.json "ks")
    pairs: str
    query_langs: list[str]
    cand_langs: list[str]
    query_lang_id: np.ndarray  # int32 per query row
    cells: list[Cell]
    cell_stats: dict[Cell, dict]  # queries, skipped, each metric (pooled-only ones: + <name>_queries)
    summary: dict
    per_language: dict
    metrics: QueryMetrics
    gold_ptr: np.ndarray  # qrels as CSR over query rows: golds of q = gold_cand[gold_ptr[q]:gold_ptr[q+1]]
    gold_cand: np.ndarray
    top: TopK | None = None
    gold_grade: np.ndarray | None = None  # int64 grade of each gold, aligned with gold_cand (None: all 1)
    relevance_threshold: int = 1  # golds of grade >= it are relevant (all golds have grade >= 1)
    per_query: object | None = None  # pyarrow.Table when per_query=True
    precision: dict | None = None  # certified precisions: what ran and the undecided counters
    compute: dict | None = None  # the GPU path: device, dtype, TF32 (summary.json "compute"); None on the CPU
    elapsed_s: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # further summary.json keys (ranked runs: ties, input, cell depths)

    def set_index(self, cand_lang: str) -> int:
        return len(self.cand_langs) if cand_lang == POOLED else self.cand_langs.index(cand_lang)

    def cell_rows(self, cell: Cell) -> tuple[int, np.ndarray]:
        """(set index of ``cell``'s candidates, query rows scored in ``cell``: its language, >= 1 gold)."""
        s = self.set_index(cell.cand_lang)
        x = self.query_langs.index(cell.query_lang)
        return s, np.flatnonzero((self.query_lang_id == x) & (self.metrics.nrel[:, s] > 0))


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for each pair, without a Python loop."""
    total = int(lengths.sum())
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else np.zeros(0, np.int64)
    return np.repeat(starts - offsets, lengths) + np.arange(total)
