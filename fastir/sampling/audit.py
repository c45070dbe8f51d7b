"""Audit a sampler before training: the composition of its batches as a table, and a summary."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.core.errors import InputError
from fastir.sampling.sampler import BatchSampler

COLUMNS = ("step", "batch_kind", "xling_id", "query_lang", "passage_lang", "source")


def composition_table(sampler: BatchSampler, steps: int) -> pa.Table:
    """One row per pair of the next ``steps`` GLOBAL batches (no texts but the xling_id)."""
    if steps < 1:
        raise InputError(None, "--steps", f"must be >= 1, got {steps}")
    step, kind, pairs, q, p = [], [], [], [], []
    for _ in range(steps):
        plan = sampler.next_plan()
        n = len(plan.pairs)
        step.append(np.full(n, sampler.global_step(plan), dtype=np.int64))
        kind.extend([plan.kind] * n)
        pairs.append(plan.pairs)
        q.append(plan.query_lang)
        p.append(plan.passage_lang)
    pairs_a, q_a, p_a = np.concatenate(pairs), np.concatenate(q), np.concatenate(p)
    index = sampler.index
    langs = np.array(index.langs, dtype=object)
    return pa.table(
        {
            "step": pa.array(np.concatenate(step)),
            "batch_kind": pa.array(kind, pa.string()),
            "xling_id": pa.array(index.texts("xling_id", index.rows[pairs_a, p_a]), pa.string()),
            "query_lang": pa.array(langs[q_a].tolist(), pa.string()),
            "passage_lang": pa.array(langs[p_a].tolist(), pa.string()),
            "source": pa.array(np.array(index.sources, dtype=object)[index.pair_source[pairs_a]].tolist(), pa.string()),
        }
    )


def check_composition_out(out: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """``--out`` of ``fastir sample``: a new (or, with ``overwrite``, existing) .jsonl or .parquet
    file, never one of ``inputs`` (the tables sampled) nor a symbolic link."""
    from fastir.core.outputs import check_not_a_link, check_not_an_input

    out = Path(out)
    check_not_an_input(out, inputs)
    check_not_a_link(out)
    if not out.name.lower().endswith((".jsonl", ".parquet")):
        raise InputError(out, "--out", "expected a file ending in .jsonl or .parquet")
    if out.is_dir():
        raise InputError(out, "--out", "is a directory")
    if out.exists() and not overwrite:
        raise InputError(out, "--out", "file exists; pass --overwrite")
    return out


def write_composition(table: pa.Table, out: str | os.PathLike, overwrite: bool = False) -> None:
    """JSONL for ``.jsonl``, Parquet for ``.parquet``; atomic (temp name, then rename)."""
    from fastir.data.train_table_writer import write_rows

    out = check_composition_out(out, overwrite)
    write_rows(table, out, "parquet" if out.name.lower().endswith(".parquet") else "jsonl")


def composition_summary(table: pa.Table) -> dict:
    """Batch kinds, mono (same-language) vs cross pair shares, language-pair counts."""
    steps = table.column("step").to_numpy()
    kinds = table.column("batch_kind").to_pylist()
    q = table.column("query_lang").to_pylist()
    p = table.column("passage_lang").to_pylist()
    first = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    batch_kinds = Counter(kinds[i] for i in first.tolist())
    n_batches = len(first)
    mono_pairs = sum(a == b for a, b in zip(q, p))
    return {
        "batches": n_batches,
        "pairs": len(q),
        "batch_kinds": {k: {"batches": v, "share": v / n_batches} for k, v in sorted(batch_kinds.items())},
        "mono_pair_share": mono_pairs / len(q) if q else 0.0,
        "cross_pair_share": 1 - mono_pairs / len(q) if q else 0.0,
        "lang_pairs": {f"{a}->{b}": v for (a, b), v in sorted(Counter(zip(q, p)).items())},
        "sources": dict(sorted(Counter(table.column("source").to_pylist()).items())),
    }


def format_summary(summary: dict) -> str:
    lines = [f"{summary['batches']} batches, {summary['pairs']} pairs"]
    for kind, v in summary["batch_kinds"].items():
        lines.append(f"  {kind:<9} {v['batches']:>8} batches  {100 * v['share']:6.2f}%")
    lines.append(
        f"pairs: same-language {100 * summary['mono_pair_share']:.2f}%, "
        f"cross-language {100 * summary['cross_pair_share']:.2f}%"
    )
    pairs = summary["lang_pairs"]
    langs = sorted({k.split("->")[0] for k in pairs} | {k.split("->")[1] for k in pairs})
    total = max(1, summary["pairs"])
    lines.append("language pairs (% of pairs; rows = query lang, columns = passage lang):")
    lines.append("      " + "".join(f"{l:>7}" for l in langs))
    for a in langs:
        cells = "".join(f"{100 * pairs.get(f'{a}->{b}', 0) / total:7.2f}" for b in langs)
        lines.append(f"{a:<6}{cells}")
    if len(summary["sources"]) > 1:
        lines.append("sources: " + ", ".join(f"{s} {100 * n / total:.1f}%" for s, n in summary["sources"].items()))
    return "\n".join(lines)
