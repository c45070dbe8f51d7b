"""Output files of ``fastir score``: pairs table, summary.json, per-query table, heatmap, terminal view.

Reads an aggregated :class:`fastir.eval.result.ScoreResult` (see :mod:`fastir.eval.aggregate`);
metric columns, names and labels come from the metric registry (:mod:`fastir.eval.metrics`).
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np

from fastir.core.outputs import atomic_dirs
from fastir.eval.cells import KINDS, POOLED
from fastir.eval.heatmap import write_heatmap
from fastir.eval.metrics import RANK_DISTANCE
from fastir.eval.result import (
    HEATMAP_PNG,
    PAIRS_CSV,
    PAIRS_PARQUET,
    PER_QUERY_FORMAT,
    PER_QUERY_PARQUET,
    SCORES_FORMAT,
    SCORE_FILES,
    SUMMARY_JSON,
    ScoreResult,
)


# ----------------------------------------------------------------------------------------- tables


def pairs_table(result):
    """One row per cell: query_lang, cand_lang, setting, queries, skipped, then each metric by name."""
    import pyarrow as pa

    from fastir.core.arrow import numeric_array, string_array

    cells = result.cells
    stats = [result.cell_stats[c] for c in cells]
    cols = {
        "query_lang": string_array([c.query_lang for c in cells]),
        "cand_lang": string_array([c.cand_lang for c in cells]),
        "setting": string_array([c.kind for c in cells]),
        "queries": numeric_array([s["queries"] for s in stats], pa.int32()),
        "skipped": numeric_array([s["skipped"] for s in stats], pa.int32()),
    }
    for m in result.metrics.metrics:  # rank distance last: null outside multi rows
        values = [s[m.name] for s in stats]
        cols[m.name] = numeric_array([np.nan if v is None else v for v in values], pa.float64(),
                                     valid=[v is not None for v in values])
    if result.precision and result.precision["requested"] in ("exact", "bf16", "int8"):  # auto, fp32: as before
        cols["undecided"] = numeric_array([s["undecided"] for s in stats], pa.int64())
    return pa.table(cols)


def per_query_table(result):
    """per_query.parquet rows (data_specs/per-query-format.json): one per (query, selected cell) with num_relevant >= 1."""
    import pyarrow as pa

    from fastir.core.arrow import numeric_array, string_array

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
        return pa.DictionaryArray.from_arrays(numeric_array(idx, pa.int32()), string_array(dictionary)).cast(pa.string())

    cols = {
        "query_id": ids.take(numeric_array(rows, pa.int64())).combine_chunks(),
        "query_lang": labels(result.query_lang_id[rows], result.query_langs),
        "cand_lang": labels(s, result.cand_langs + [POOLED]),
        "setting": labels(kind, kinds),
        "num_relevant": numeric_array(m.nrel[rows, s], pa.int32()),
    }
    for i, metric in enumerate(m.metrics):  # pooled-only (rank distance): NaN, not null, elsewhere
        cols[metric.column] = numeric_array(m.values[rows, s, i], pa.float64())
    meta = {
        "format": PER_QUERY_FORMAT,
        "dataset": result.run.meta.get("dataset"),
        "dataset_checksum": result.run.meta.get("dataset_checksum"),
        "model": result.run.meta.get("model"),
        "run": str(result.run.path),
        "ks": list(result.ks),
        **_threshold(result),
        **_tie_mode(result),
    }
    table = pa.table(cols)
    return table.replace_schema_metadata({b"fastir": json.dumps(meta).encode()})


def summary_json(result) -> dict:
    # The precision that ran, always (auto is the default: docs/score.md).
    precision = {"precision": result.precision or {"requested": "fp32", "ran": "fp32"}}
    # the product where it is not numpy's: the GPU (device, float32, TF32 off: fastir.eval.gpu) or
    # oneMKL's float16 GEMM (fastir.eval.stream.f16_product)
    if result.compute is not None:
        precision["compute"] = result.compute
    return _clean({
        "format": SCORES_FORMAT,
        "run": result.run.meta,
        "run_dir": str(result.run.path),
        "dataset_checksum": result.run.meta.get("dataset_checksum"),
        "ks": list(result.ks),
        **_threshold(result),
        "pairs": result.pairs,
        "queries": len(result.run.queries),
        "candidates": len(result.run.candidates),
        "query_langs": result.query_langs,
        "cand_langs": result.cand_langs,
        "summary": result.summary,
        "per_language": result.per_language,
        **precision,
        **result.extra,
    })


def _threshold(result) -> dict:
    """``relevance_threshold`` when not the default 1 (outputs at the default stay as they were)."""
    threshold = getattr(result, "relevance_threshold", 1)
    return {} if threshold == 1 else {"relevance_threshold": threshold}


def _tie_mode(result) -> dict:
    """``ties`` when not the default pessimistic (``fastir compare`` pairs only runs of one mode)."""
    ties = result.extra.get("ties", "pessimistic")
    return {} if ties == "pessimistic" else {"ties": ties}


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


def check_score_outputs(run_dir, out_dir, trec_dir=None, overwrite: bool = False, shard_files=()) -> None:
    """``--out`` (and ``--trec``) of ``fastir score``, before any work: neither is, holds or lies inside
    the run's files or the shard files read, ``--trec`` is not ``--out`` nor nested with it, and
    ``--overwrite`` replaces only score (or TREC) folders."""
    from fastir.core.outputs import check_output_dir, check_outputs_apart
    from fastir.eval.trec import TREC_FILES
    from fastir.runs.schema import RUN_FILES

    run_files = [] if run_dir is None else [Path(run_dir) / name for name in RUN_FILES]  # None: in memory
    inputs = [*run_files, *shard_files]
    check_output_dir(out_dir, overwrite=overwrite, inputs=inputs, written=SCORE_FILES)
    if trec_dir is not None:
        check_outputs_apart(out_dir, trec_dir, "--trec")  # published together: never one inside the other
        check_output_dir(trec_dir, overwrite=overwrite, inputs=inputs, written=TREC_FILES)


def write_scores(result, out_dir: str | os.PathLike, overwrite: bool = False, trec_dir=None) -> Path:
    """Write pairs.csv/.parquet, summary.json, heatmap.png (and per_query.parquet, TREC files).

    Everything goes to temporary directories renamed into place at the end, so a failure leaves
    no partial output.
    """
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    check_score_outputs(result.run.path, out_dir, trec_dir, overwrite)
    with atomic_dirs([out_dir, *([trec_dir] if trec_dir is not None else [])], overwrite=overwrite) as tmps:
        tmp = tmps[0]
        (tmp / PAIRS_CSV).write_text(pairs_csv(result), encoding="utf-8")
        pq.write_table(pairs_table(result), tmp / PAIRS_PARQUET)
        (tmp / SUMMARY_JSON).write_text(json.dumps(summary_json(result), indent=2) + "\n", encoding="utf-8")
        if result.per_query is not None:
            pq.write_table(result.per_query, tmp / PER_QUERY_PARQUET)
        write_heatmap(result, tmp / HEATMAP_PNG)
        if trec_dir is not None:
            from fastir.eval.trec import write_trec

            write_trec(result, tmps[1], overwrite=True)  # staged: appears with out_dir or not at all
    return out_dir


def read_scores(scores_dir: str | os.PathLike) -> tuple[dict, object]:
    """(summary.json's content, pairs.parquet as a pyarrow Table) of a ``fastir score`` output dir
    (or of a run dir holding one in ``scores/``), checked: the format, and one pairs row per cell
    with the cell columns. Bad input raises :class:`InputError`."""
    import pyarrow.parquet as pq

    from fastir.core.errors import InputError
    from fastir.core.textfiles import read_json

    path = Path(scores_dir)
    if not (path / SUMMARY_JSON).is_file() and (path / "scores" / SUMMARY_JSON).is_file():
        path = path / "scores"
    if not (path / SUMMARY_JSON).is_file():
        raise InputError(path, SUMMARY_JSON, "missing: not a `fastir score` output dir (nor a run dir holding scores/)")
    summary = read_json(path / SUMMARY_JSON)
    if not isinstance(summary, dict) or summary.get("format") != SCORES_FORMAT:
        found = summary.get("format") if isinstance(summary, dict) else type(summary).__name__
        raise InputError(path / SUMMARY_JSON, "format", f"expected {SCORES_FORMAT!r}, found {found!r}")
    try:
        pairs = pq.read_table(path / PAIRS_PARQUET)
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable file is bad input
        raise InputError(path / PAIRS_PARQUET, None, f"cannot read Parquet: {' '.join(str(exc).split())}") from None
    missing = [c for c in ("query_lang", "cand_lang", "setting", "queries") if c not in pairs.column_names]
    if missing:
        raise InputError(path / PAIRS_PARQUET, missing[0], "missing column")
    return summary, pairs


def format_table(result) -> str:
    """The terminal view: paper-style summary, then one row per query language.

    The first metric leads the per-language rows (mono / cross / multi), followed by the multi
    value of the first cutoff metric (R@k by default) and the rank distance.
    """
    metrics = [m for m in result.metrics.metrics if not m.pooled_only]
    run = result.run
    lines = [f"{run.path}  dataset={run.meta.get('dataset')}  model={run.meta.get('model')}",
             f"{len(run.queries)} queries x {len(run.candidates)} candidates, "
             f"{len(result.cells)} cells, scored in {result.elapsed_s.get('total', float('nan')):.2f} s", ""]
    lines.append(f"{'setting':<8} {'cells':>5} " + " ".join(f"{m.label:>7}" for m in metrics))
    for kind in KINDS:
        agg = result.summary.get(kind)
        if agg:
            lines.append(f"{kind:<8} {agg['cells']:>5} " + " ".join(f"{agg[m.name]:>7.4f}" for m in metrics))
    if result.summary.get("micro_multi_map") is not None:
        rd = result.summary[RANK_DISTANCE.name]["macro"]
        lines.append(f"micro multi mAP {result.summary['micro_multi_map']:.4f}   "
                     f"rank distance (macro) {_fmt(rd, '.1f')}")
    lead = metrics[0]
    columns = [(f"{kind} {lead.label}", kind, lead.name) for kind in KINDS]
    # the per-language view's second column: the first cutoff metric after the lead (not the lead again)
    second = next((m for m in metrics[1:] if m.k is not None), metrics[1] if len(metrics) > 1 else None)
    if second is not None:
        columns.append((f"multi {second.label}", "multi", second.name))
    lines += ["", f"{'query':<6} " + " ".join(f"{h:>9}" for h, _, _ in columns) + f" {'rank dist':>9} {'queries':>7}"]
    for x, row in result.per_language.items():
        values = " ".join(f"{_fmt(row[kind] and row[kind][name]):>9}" for _, kind, name in columns)
        lines.append(f"{x:<6} {values} {_fmt(row[RANK_DISTANCE.name], '.1f'):>9} {row['queries']:>7}")
    return "\n".join(lines)


def _fmt(v, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)
