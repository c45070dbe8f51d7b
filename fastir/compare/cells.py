"""The cells and statistics that ``fastir compare`` resamples.

A *cell* is (metric, setting, query language, candidate language); its value is the mean over its
queries. The summary (Mo., Cr., Mul., rank distance; paper Tables 1-2) and per-language statistics
(Tables 3-8) are ``fastir score``'s, defined in docs/score.md; each is linear in the cell means,
which the resampling relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastir.compare.inputs import SETTINGS, PairedRows
from fastir.eval.metrics import Metric


@dataclass
class Statistic:
    """A linear combination of cell means: ``sum_j coef_j * mean(cell_j)``."""

    level: str  # "summary" | "language"
    setting: str  # mono | cross | multi (rank distance: multi)
    metric: str  # a registry metric name (map, recall@K, rank_distance, ...)
    lang: str | None  # query language (level "language")
    cells: list[int]
    coefs: list[float]

    @property
    def family(self) -> str:
        return "summary" if self.level == "summary" else f"language:{self.setting}:{self.metric}"


@dataclass
class Cells:
    """Cells in CSR: rows ``ptr[c]:ptr[c+1]`` of ``query`` / ``values`` (rows, R) belong to cell c."""

    ptr: np.ndarray
    query: np.ndarray
    values: np.ndarray
    keys: list[tuple[str, str, str, str]]  # (metric, setting, query_lang, cand_lang)


def build_cells(paired: PairedRows, metrics: list[Metric]) -> Cells:
    """One cell per (metric, setting, query_lang, cand_lang); a pooled-only metric (rank distance)
    has multi cells only, of its non-NaN rows."""
    ptr, query, values, keys = [0], [], [], []
    boundary = np.flatnonzero((paired.setting[1:] != paired.setting[:-1])
                              | (paired.query_lang[1:] != paired.query_lang[:-1])
                              | (paired.cand_lang[1:] != paired.cand_lang[:-1])) + 1
    starts = np.concatenate([[0], boundary])
    ends = np.concatenate([boundary, [len(paired.setting)]])
    for metric in metrics:
        vals = paired.values[metric.column]
        for s, e in zip(starts, ends):
            setting = str(paired.setting[s])
            rows = np.arange(s, e)
            if metric.pooled_only:
                if setting != "multi":
                    continue
                rows = rows[~np.isnan(vals[s:e, 0])]
                if len(rows) == 0:
                    continue
            query.append(paired.query[rows])
            values.append(vals[rows])
            ptr.append(ptr[-1] + len(rows))
            keys.append((metric.name, setting, str(paired.query_lang[s]), str(paired.cand_lang[s])))
    return Cells(ptr=np.asarray(ptr, dtype=np.int64), query=np.concatenate(query).astype(np.int32),
                 values=np.concatenate(values, axis=0), keys=keys)


def build_statistics(cells: Cells, metrics: list[Metric], langs: list[str]) -> list[Statistic]:
    """Summary columns (metric-major: Mo./Cr./Mul. per metric; a pooled-only metric such as rank
    distance: Mul. only) and per-language rows."""
    index: dict[tuple[str, str], dict[str, list[int]]] = {}
    for c, (metric, setting, qlang, _) in enumerate(cells.keys):
        index.setdefault((metric, setting), {}).setdefault(qlang, []).append(c)
    stats: list[Statistic] = []
    pairs = [(m.name, s) for m in metrics for s in (("multi",) if m.pooled_only else SETTINGS)]
    for metric, setting in pairs:
        by_lang = index.get((metric, setting))
        if not by_lang:
            continue
        # mono / multi / rank distance: one cell per query language; cross: every X->Y cell
        all_cells = [c for lang in langs for c in by_lang.get(lang, [])]
        stats.append(Statistic("summary", setting, metric, None, all_cells,
                               [1.0 / len(all_cells)] * len(all_cells)))
    for metric, setting in pairs:
        by_lang = index.get((metric, setting))
        if not by_lang:
            continue
        for lang in langs:
            cs = by_lang.get(lang)
            if cs:
                stats.append(Statistic("language", setting, metric, lang, cs, [1.0 / len(cs)] * len(cs)))
    return stats


def merge_parallel_cells(cells: Cells, stats: list[Statistic]) -> tuple[Cells, list[Statistic]]:
    """Merge the cells of one (metric, setting, query language) that hold exactly the same queries.

    Every statistic weights the cells of a (metric, setting, query language) group equally, and cells
    with the same queries get the same bootstrap / randomization weights, so
    ``sum_{c in G} w * mean_c = (|G| w) * mean_G`` where ``mean_G`` is the cell mean of the per-row
    average over G: exact, and 10x fewer rows for the X->Y cells of a parallel dataset (XQuAD-R).
    """
    groups: dict[tuple, list[int]] = {}
    for c, (metric, setting, qlang, _) in enumerate(cells.keys):
        members = cells.query[cells.ptr[c]:cells.ptr[c + 1]]
        groups.setdefault((metric, setting, qlang, members.tobytes()), []).append(c)
    new_of = np.empty(len(cells.keys), dtype=np.int64)
    ptr, query, values, keys = [0], [], [], []
    for g, members in enumerate(groups.values()):
        first = members[0]
        lo, hi = cells.ptr[first], cells.ptr[first + 1]
        block = np.mean([cells.values[cells.ptr[c]:cells.ptr[c + 1]] for c in members], axis=0)
        query.append(cells.query[lo:hi])
        values.append(block)
        ptr.append(ptr[-1] + (hi - lo))
        m, s, q, _ = cells.keys[first]
        keys.append((m, s, q, "+".join(cells.keys[c][3] for c in members)))
        new_of[members] = g
    merged_stats = []
    for st in stats:
        acc: dict[int, float] = {}
        for c, w in zip(st.cells, st.coefs):
            acc[int(new_of[c])] = acc.get(int(new_of[c]), 0.0) + w
        merged_stats.append(Statistic(st.level, st.setting, st.metric, st.lang, list(acc), list(acc.values())))
    merged = Cells(ptr=np.asarray(ptr, dtype=np.int64), query=np.concatenate(query).astype(np.int32),
                   values=np.concatenate(values, axis=0), keys=keys)
    return merged, merged_stats


def stat_csr(stats: list[Statistic]):
    k_ptr = np.zeros(len(stats) + 1, dtype=np.int64)
    k_ptr[1:] = np.cumsum([len(s.cells) for s in stats])
    k_cell = np.asarray([c for s in stats for c in s.cells], dtype=np.int32)
    k_coef = np.asarray([w for s in stats for w in s.coefs], dtype=np.float64)
    return k_ptr, k_cell, k_coef


def observed_statistics(cells: Cells, stats: list[Statistic], values: np.ndarray) -> np.ndarray:
    """(K, V): the statistics on the full data, from the cell means of ``values`` (rows, V)."""
    counts = np.diff(cells.ptr).astype(np.float64)
    means = np.add.reduceat(values, cells.ptr[:-1], axis=0) / counts[:, None]
    out = np.zeros((len(stats), values.shape[1]))
    for k, s in enumerate(stats):
        out[k] = np.asarray(s.coefs) @ means[s.cells]
    return out


def per_query_contributions(cells: Cells, stat: Statistic, diffs: np.ndarray, n_queries: int) -> np.ndarray:
    """(Q_k, V): per-query terms ``x_q = N_k * sum_{rows of q} coef / n_cell * d`` of a statistic,
    over the N_k queries it involves; ``mean(x_q)`` equals the statistic."""
    acc = np.zeros((n_queries, diffs.shape[1]))
    used = np.zeros(n_queries, dtype=bool)
    for c, w in zip(stat.cells, stat.coefs):
        lo, hi = cells.ptr[c], cells.ptr[c + 1]
        q = cells.query[lo:hi]
        np.add.at(acc, q, diffs[lo:hi] * (w / (hi - lo)))
        used[q] = True
    return acc[used] * used.sum()




def statistic_query_counts(cells: Cells, stats: list[Statistic]) -> np.ndarray:
    """(K,) how many distinct queries each statistic involves."""
    return np.asarray([len(np.unique(np.concatenate([cells.query[cells.ptr[c]:cells.ptr[c + 1]] for c in s.cells])))
                       for s in stats], dtype=np.int64)
