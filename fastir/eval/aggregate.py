"""Aggregation of ``fastir score``: per-query values -> cells, paper-style summary, per-language rows.

The cell values and summaries (mono / cross / multi, per query language, the macro mean of a
pooled-only metric such as rank distance, ``micro_multi_map``) are defined in docs/score.md. Every
metric the registry marks ``pooled_only`` is aggregated as rank distance is; the others as mAP.
"""

from __future__ import annotations

import math

import numpy as np

from fastir.eval.cells import KINDS
from fastir.eval.result import ScoreResult


def aggregate(result: ScoreResult) -> None:
    """Fill ``result.cell_stats``, ``result.summary`` and ``result.per_language`` from per-query metrics."""
    metrics = result.metrics.metrics
    means = [m.name for m in metrics if not m.pooled_only]
    pooled = [m.name for m in metrics if m.pooled_only]
    count, sums, rows_per_lang, p_count, p_sums = _sums_per_language(result)
    lang_index = {x: i for i, x in enumerate(result.query_langs)}
    for cell in result.cells:
        x = lang_index[cell.query_lang]
        s = result.set_index(cell.cand_lang)
        n = int(count[x, s])
        stats = {"queries": n, "skipped": int(rows_per_lang[x]) - n}
        stats.update({name: float(sums[x, s, i] / n) if n else float("nan") for i, name in enumerate(means)})
        for i, name in enumerate(pooled):
            stats[name] = None
            if cell.kind == "multi":
                stats[name] = float(p_sums[x, i] / p_count[x, i]) if p_count[x, i] else None
                stats[f"{name}_queries"] = int(p_count[x, i])
        result.cell_stats[cell] = stats
    result.summary = _summary(result, means, pooled)
    result.per_language = _per_language(result, means, pooled, rows_per_lang)


def _sums_per_language(result: ScoreResult):
    """Per (query language, candidate set): scorable queries and the sum of each averaged metric;
    per query language: queries and sums of each pooled-only metric where it is defined.

    One pass per language, not per cell. Unscored (query, set) entries hold NaN, which nansum skips.
    """
    m = result.metrics
    mean_idx = [i for i, x in enumerate(m.metrics) if not x.pooled_only]
    pooled_idx = [i for i, x in enumerate(m.metrics) if x.pooled_only]
    n_ql, n_sets = len(result.query_langs), m.nrel.shape[1]
    rows_per_lang = np.zeros(n_ql, dtype=np.int64)
    count = np.zeros((n_ql, n_sets), dtype=np.int64)
    sums = np.zeros((n_ql, n_sets, len(mean_idx)))
    p_count = np.zeros((n_ql, len(pooled_idx)), dtype=np.int64)
    p_sums = np.zeros((n_ql, len(pooled_idx)))
    for x in range(n_ql):
        rows = np.flatnonzero(result.query_lang_id == x)
        rows_per_lang[x] = len(rows)
        count[x] = (m.nrel[rows] > 0).sum(axis=0)
        for j, i in enumerate(mean_idx):
            sums[x, :, j] = np.nansum(m.values[rows, :, i], axis=0)
        for j, i in enumerate(pooled_idx):
            v = m.values[rows, -1, i]
            v = v[~np.isnan(v)]
            p_count[x, j], p_sums[x, j] = len(v), v.sum()
    return count, sums, rows_per_lang, p_count, p_sums


def _summary(result: ScoreResult, means: list[str], pooled: list[str]) -> dict:
    summary: dict = {kind: _mean_cells(result, [c for c in result.cells if c.kind == kind], means)
                     for kind in KINDS}
    multi = [c for c in result.cells if c.kind == "multi"]
    m = result.metrics
    summary["micro_multi_map"] = None
    if multi and "map" in means:
        rows = np.isin(result.query_lang_id, [result.query_langs.index(c.query_lang) for c in multi])
        summary["micro_multi_map"] = float(m["map"][rows & (m.nrel[:, -1] > 0), -1].mean())
    for name in pooled:
        summary[name] = None
        if multi:
            per_lang = {c.query_lang: result.cell_stats[c][name] for c in multi}
            known = [v for v in per_lang.values() if v is not None]
            summary[name] = {"macro": float(np.mean(known)) if known else None, "per_language": per_lang}
    for k, shares in m.exposure.items():  # lang_jsd@k / lang_jsd_rel@k asked: the exposure distributions
        summary[f"lang_exposure@{k}"] = {c.query_lang: _mean_shares(result, c, shares) for c in multi} or None
    return summary


def _mean_shares(result: ScoreResult, cell, shares) -> dict:
    """Mean exposure share of each candidate language over the queries of a pooled cell."""
    _, rows = result.cell_rows(cell)
    mean = shares[rows].mean(axis=0)
    return {lang: float(v) for lang, v in zip(result.cand_langs, mean)}


def _per_language(result: ScoreResult, means: list[str], pooled: list[str], rows_per_lang) -> dict:
    per_language = {}
    for i, x in enumerate(result.query_langs):
        mine = [c for c in result.cells if c.query_lang == x]
        if not mine:
            continue
        row = {kind: _mean_cells(result, [c for c in mine if c.kind == kind], means) for kind in KINDS}
        multi = [c for c in mine if c.kind == "multi"]
        for name in pooled:
            row[name] = result.cell_stats[multi[0]][name] if multi else None
        row["queries"] = int(rows_per_lang[i])
        per_language[x] = row
    return per_language


def _mean_cells(result: ScoreResult, cells, names) -> dict | None:
    if not cells:
        return None
    out = {name: math.fsum(result.cell_stats[c][name] for c in cells) / len(cells) for name in names}
    out["cells"] = len(cells)
    return out
