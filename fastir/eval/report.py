"""Aggregation and output files of ``fastir score``: cells, paper-style summary, per-query table.

The cell values and summaries computed here (mono / cross / multi, per query language, rank
distance macro, ``micro_multi_map``) are defined in docs/score.md.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np

from fastir.atomic import atomic_dirs, atomic_path
from fastir.eval.cells import KINDS, POOLED

PAIRS_CSV = "pairs.csv"
PAIRS_PARQUET = "pairs.parquet"
SUMMARY_JSON = "summary.json"
PER_QUERY_PARQUET = "per_query.parquet"
HEATMAP_PNG = "heatmap.png"


def metric_names(ks) -> list[str]:
    return ["map", "mrr"] + [f"recall@{k}" for k in ks]


# ------------------------------------------------------------------------------------ aggregation


def aggregate(result) -> None:
    """Fill ``result.cell_stats``, ``result.summary`` and ``result.per_language`` from per-query metrics."""
    m = result.metrics
    names = metric_names(result.ks)
    # Sums and counts per (query language, candidate set): one pass per language, not per cell.
    # Unscored (query, set) entries hold NaN, which nansum skips.
    n_ql = len(result.query_langs)
    rows_per_lang, rd_count = np.zeros(n_ql, dtype=np.int64), np.zeros(n_ql, dtype=np.int64)
    count = np.zeros((n_ql, m.nrel.shape[1]), dtype=np.int64)
    sums = np.zeros((len(names), n_ql, m.nrel.shape[1]))
    rd_sum = np.zeros(n_ql)
    for x in range(n_ql):
        rows = np.flatnonzero(result.query_lang_id == x)
        rows_per_lang[x] = len(rows)
        count[x] = (m.nrel[rows] > 0).sum(axis=0)
        sums[0, x] = np.nansum(m.ap[rows], axis=0)
        sums[1, x] = np.nansum(m.rr[rows], axis=0)
        sums[2:, x] = np.nansum(m.recall[rows], axis=0).T
        rd = m.rank_distance[rows[m.nrel[rows, -1] >= 2]]
        rd_count[x], rd_sum[x] = len(rd), rd.sum()
    lang_index = {x: i for i, x in enumerate(result.query_langs)}
    for cell in result.cells:
        x = lang_index[cell.query_lang]
        s = result.set_index(cell.cand_lang)
        n = int(count[x, s])
        stats = {"queries": n, "skipped": int(rows_per_lang[x]) - n}
        stats.update({name: float(sums[i, x, s] / n) if n else float("nan") for i, name in enumerate(names)})
        stats["rank_distance"] = None
        if cell.kind == "multi":
            stats["rank_distance"] = float(rd_sum[x] / rd_count[x]) if rd_count[x] else None
            stats["rank_distance_queries"] = int(rd_count[x])
        result.cell_stats[cell] = stats

    summary: dict = {}
    for kind in KINDS:
        cells = [c for c in result.cells if c.kind == kind]
        summary[kind] = _mean_cells(result, cells, names)
    pooled = [c for c in result.cells if c.kind == "multi"]
    if pooled:
        rows = np.isin(result.query_lang_id, [result.query_langs.index(c.query_lang) for c in pooled])
        ap = m.ap[rows & (m.nrel[:, -1] > 0), -1]
        summary["micro_multi_map"] = float(ap.mean())
        per_lang = {c.query_lang: result.cell_stats[c]["rank_distance"] for c in pooled}
        known = [v for v in per_lang.values() if v is not None]
        summary["rank_distance"] = {"macro": float(np.mean(known)) if known else None, "per_language": per_lang}
    else:
        summary["micro_multi_map"] = None
        summary["rank_distance"] = None
    result.summary = summary

    per_language = {}
    for x in result.query_langs:
        mine = [c for c in result.cells if c.query_lang == x]
        if not mine:
            continue
        row = {kind: _mean_cells(result, [c for c in mine if c.kind == kind], names) for kind in KINDS}
        multi = [c for c in mine if c.kind == "multi"]
        row["rank_distance"] = result.cell_stats[multi[0]]["rank_distance"] if multi else None
        row["queries"] = int(rows_per_lang[lang_index[x]])
        per_language[x] = row
    result.per_language = per_language


def _mean_cells(result, cells, names) -> dict | None:
    if not cells:
        return None
    out = {name: math.fsum(result.cell_stats[c][name] for c in cells) / len(cells) for name in names}
    out["cells"] = len(cells)
    return out


# ----------------------------------------------------------------------------------------- tables


def pairs_table(result):
    """One row per cell: query_lang, cand_lang, setting, queries, skipped, metrics, rank_distance."""
    import pyarrow as pa

    names = metric_names(result.ks)
    cells = result.cells
    stats = [result.cell_stats[c] for c in cells]
    cols = {
        "query_lang": pa.array([c.query_lang for c in cells], pa.string()),
        "cand_lang": pa.array([c.cand_lang for c in cells], pa.string()),
        "setting": pa.array([c.kind for c in cells], pa.string()),
        "queries": pa.array([s["queries"] for s in stats], pa.int32()),
        "skipped": pa.array([s["skipped"] for s in stats], pa.int32()),
    }
    for name in names:
        cols[name] = pa.array([s[name] for s in stats], pa.float64())
    cols["rank_distance"] = pa.array([s["rank_distance"] for s in stats], pa.float64())
    return pa.table(cols)


def per_query_table(result):
    """per_query.parquet rows (data_specs/per-query-format.json): one per (query, selected cell) with num_relevant >= 1."""
    import pyarrow as pa

    from fastir.eval.score import PER_QUERY_FORMAT

    m = result.metrics
    ids = result.run.queries.table.column("id")
    kinds = list(KINDS)
    parts: dict[str, list] = {"rows": [np.zeros(0, np.int64)], "s": [np.zeros(0, np.int64)],
                              "kind": [np.zeros(0, np.int64)]}
    for cell in result.cells:
        s, rows = result.cell_rows(cell)
        parts["rows"].append(rows)
        parts["s"].append(np.full(len(rows), s, np.int64))
        parts["kind"].append(np.full(len(rows), kinds.index(cell.kind), np.int64))
    rows, s, kind = (np.concatenate(parts[k]) for k in ("rows", "s", "kind"))

    def labels(idx, dictionary):
        return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(dictionary, pa.string())).cast(pa.string())

    rd = np.full(len(rows), np.nan)
    pooled = s == len(result.cand_langs)
    rd[pooled] = m.rank_distance[rows[pooled]]
    cols = {
        "query_id": ids.take(pa.array(rows, pa.int64())).combine_chunks(),
        "query_lang": labels(result.query_lang_id[rows], result.query_langs),
        "cand_lang": labels(s, result.cand_langs + [POOLED]),
        "setting": labels(kind, kinds),
        "num_relevant": pa.array(m.nrel[rows, s].astype(np.int32), pa.int32()),
        "ap": pa.array(m.ap[rows, s], pa.float64()),
        "rr": pa.array(m.rr[rows, s], pa.float64()),
    }
    for i, k in enumerate(result.ks):
        cols[f"recall@{k}"] = pa.array(m.recall[rows, s, i], pa.float64())
    cols["rank_distance"] = pa.array(rd, pa.float64())  # NaN (not null) outside multi rows with >= 2 golds
    meta = {
        "format": PER_QUERY_FORMAT,
        "dataset": result.run.meta.get("dataset"),
        "dataset_checksum": result.run.meta.get("dataset_checksum"),
        "model": result.run.meta.get("model"),
        "run": str(result.run.path),
        "ks": list(result.ks),
    }
    table = pa.table(cols)
    return table.replace_schema_metadata({b"fastir": json.dumps(meta).encode()})


def summary_json(result) -> dict:
    from fastir.eval.score import SCORES_FORMAT

    return _clean({
        "format": SCORES_FORMAT,
        "run": result.run.meta,
        "run_dir": str(result.run.path),
        "dataset_checksum": result.run.meta.get("dataset_checksum"),
        "ks": list(result.ks),
        "pairs": result.pairs,
        "queries": len(result.run.queries),
        "candidates": len(result.run.candidates),
        "query_langs": result.query_langs,
        "cand_langs": result.cand_langs,
        "summary": result.summary,
        "per_language": result.per_language,
    })


def _clean(obj):
    """JSON-safe copy: NaN / inf become null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


# ----------------------------------------------------------------------------------------- output


def pairs_csv(result) -> str:
    """pairs.csv: the pairs table, floats at full precision, empty rank_distance outside multi rows."""
    import csv

    table = pairs_table(result)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow(["" if v is None else v for v in row.values()])
    return buf.getvalue()


def write_scores(result, out_dir: str | os.PathLike, overwrite: bool = False, trec_dir=None) -> Path:
    """Write pairs.csv/.parquet, summary.json, heatmap.png (and per_query.parquet, TREC files).

    Everything goes to temporary directories renamed into place at the end, so a failure leaves
    no partial output.
    """
    import pyarrow.parquet as pq

    from fastir.runs.rundir import check_output_dir

    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)
    if trec_dir is not None:
        check_output_dir(trec_dir, overwrite=overwrite)
    with atomic_dirs([out_dir, *([trec_dir] if trec_dir is not None else [])], overwrite=overwrite) as tmps:
        tmp = tmps[0]
        (tmp / PAIRS_CSV).write_text(pairs_csv(result), encoding="utf-8")
        pq.write_table(pairs_table(result), tmp / PAIRS_PARQUET)
        (tmp / SUMMARY_JSON).write_text(json.dumps(summary_json(result), indent=2) + "\n", encoding="utf-8")
        if result.per_query is not None:
            pq.write_table(result.per_query, tmp / PER_QUERY_PARQUET)
        write_heatmap(result, tmp / HEATMAP_PNG)
        if trec_dir is not None:
            from fastir.runs.trec import write_trec

            write_trec(result, tmps[1], overwrite=True)  # staged: appears with out_dir or not at all
    return out_dir


def write_heatmap(result, path: str | os.PathLike) -> None:
    """Annotated mAP matrix: rows = query language, columns = candidate language (+ pooled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(result.cand_langs)
    if any(c.kind == "multi" for c in result.cells):
        cols.append(POOLED)
    rows = [x for x in result.query_langs if any(c.query_lang == x for c in result.cells)]
    grid = np.full((len(rows), len(cols)), np.nan)
    for cell in result.cells:
        if cell.cand_lang in cols:
            grid[rows.index(cell.query_lang), cols.index(cell.cand_lang)] = result.cell_stats[cell]["map"]
    fig, ax = plt.subplots(figsize=(1.4 + 0.62 * len(cols), 1.2 + 0.5 * len(rows)), dpi=110)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    model = str(result.run.meta.get("model", ""))
    ax.set_title(f"mAP X→Y  ({Path(model).name or model}, {Path(str(result.run.meta.get('dataset', ''))).name})",
                 fontsize=9)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = grid[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.6 else "white")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def format_table(result) -> str:
    """The terminal view: paper-style summary, then one row per query language."""
    ks = result.ks
    head = ["mAP", "MRR"] + [f"R@{k}" for k in ks]
    keys = metric_names(ks)
    run = result.run
    lines = [f"{run.path}  dataset={run.meta.get('dataset')}  model={run.meta.get('model')}",
             f"{len(run.queries)} queries x {len(run.candidates)} candidates, "
             f"{len(result.cells)} cells, scored in {result.elapsed_s.get('total', float('nan')):.2f} s", ""]
    lines.append(f"{'setting':<8} {'cells':>5} " + " ".join(f"{h:>7}" for h in head))
    for kind in KINDS:
        agg = result.summary.get(kind)
        if agg:
            lines.append(f"{kind:<8} {agg['cells']:>5} " + " ".join(f"{agg[k]:>7.4f}" for k in keys))
    if result.summary.get("micro_multi_map") is not None:
        rd = result.summary["rank_distance"]["macro"]
        lines.append(f"micro multi mAP {result.summary['micro_multi_map']:.4f}   "
                     f"rank distance (macro) {_fmt(rd, '.1f')}")
    lines += ["", f"{'query':<6} {'mono mAP':>9} {'cross mAP':>9} {'multi mAP':>9} {'multi R@' + str(ks[0]):>9} "
                  f"{'rank dist':>9} {'queries':>7}"]
    r1 = f"recall@{ks[0]}"
    for x, row in result.per_language.items():
        lines.append(f"{x:<6} {_fmt(row['mono'] and row['mono']['map']):>9} "
                     f"{_fmt(row['cross'] and row['cross']['map']):>9} "
                     f"{_fmt(row['multi'] and row['multi']['map']):>9} "
                     f"{_fmt(row['multi'] and row['multi'][r1]):>9} "
                     f"{_fmt(row['rank_distance'], '.1f'):>9} {row['queries']:>7}")
    return "\n".join(lines)


def _fmt(v, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)
