"""``fastir experiment``'s report: the comparison of every evaluation dataset, ``results.json``,
``report.md`` and ``figures/``.

The comparison is ``fastir compare``'s own (:func:`fastir.compare.comparison.compare`) over the
runs' ``per_query.parquet``, the runs named ``strategy@seed`` (``base`` for the untrained model),
against every baseline at once; its JSON is kept in ``results.json`` under ``compare`` and every
number of the report's tables is read from it. One scale everywhere: 0-1, as ``fastir score`` and
``fastir compare`` print (rank distance: a rank, lower is better).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fastir.compare.render import cell, column_label, index_records, md_table, number, sup, system_label
from fastir.runs.experiment_dir import FIGURES, REPORT_MD, write_results

COMPARE_METRICS = ["map", "mrr", "recall@1", "recall@10"]
SETTINGS = ("mono", "cross", "multi")
RANK_DISTANCE = "rank_distance"
# Table 1 (mAP) and Table 2 (R@1, R@10, rank distance) of arXiv 2408.10536: (metric, setting) columns
TABLE_1 = [("map", s) for s in SETTINGS]
TABLE_2 = [("recall@1", s) for s in SETTINGS] + [("recall@10", s) for s in SETTINGS] + [(RANK_DISTANCE, "multi")]
LANGUAGE_TABLES = [("map", s) for s in SETTINGS] + [("recall@1", s) for s in SETTINGS] + [(RANK_DISTANCE, "multi")]


def run_comparisons(specs, datasets: list[str], baselines: list[str], *, samples: int, seed: int,
                    extra: list[str] = ()) -> tuple[dict, dict]:
    """``fastir compare`` of every run on each dataset: (compare JSON per dataset, seconds per
    dataset). A single system (one strategy, no base) has nothing to be compared with: None."""
    from fastir.compare.comparison import compare
    from fastir.compare.systems import group_systems

    names = [spec.name for spec in specs]
    if len(group_systems(names)) < 2:
        return {ds: None for ds in datasets}, {}
    out, seconds = {}, {}
    for ds in datasets:
        t0 = time.perf_counter()
        cmp = compare([spec.scores_dir(ds) for spec in specs], names=names, baselines=baselines,
                      samples=samples, seed=seed, metrics=[*COMPARE_METRICS, *extra])
        out[ds] = cmp.to_json()
        seconds[ds] = round(time.perf_counter() - t0, 3)
    return out, seconds


def write_report(results: dict, out: Path) -> None:
    """Write ``figures/`` (all or none), then ``results.json`` and ``report.md`` (atomically, each)."""
    from fastir.core.outputs import atomic_dir, atomic_file
    from fastir.experiment.figures import write_figures

    with atomic_dir(out / FIGURES, overwrite=True) as tmp:
        figures = write_figures(results, out, tmp)
    write_results(results, out)
    with atomic_file(out / REPORT_MD, "w") as fh:
        fh.write(format_report(results, figures))


# ------------------------------------------------------------------------------------------ cells


def summary_table(cmp: dict, columns: list[tuple[str, str]]) -> list[str]:
    """One row per system, one column per (metric, setting); cells as ``fastir compare`` writes them."""
    idx, base = index_records(cmp), cmp["baselines"]
    rows = [[system_label(s["name"], base)] + [cell(idx.get(("summary", st, m, None, s["name"])), base)
                                               for m, st in columns] for s in cmp["systems"]]
    return md_table(["System"] + [column_label(m, st) for m, st in columns], rows)


def language_table(cmp: dict, metric: str, setting: str, langs: list[str] | None = None) -> list[str]:
    """One row per system, one column per query language (``langs``, default all); cells with their intervals."""
    idx, base = index_records(cmp), cmp["baselines"]
    langs = cmp["langs"] if langs is None else langs
    rows = [[system_label(s["name"], base)] + [cell(idx.get(("language", setting, metric, lang, s["name"])), base)
                                               for lang in langs] for s in cmp["systems"]]
    return md_table(["System", *langs], rows)


def language_groups(cmp: dict, train_langs: list[str] | None) -> list[tuple[str, list[str]]]:
    """The query languages split into those the training tables hold and those they lack (unseen in
    training: zero-shot in language as well as in data), each group with its caption; one group when
    training saw every evaluated language (or its languages are not recorded)."""
    if not train_langs:
        return [("", cmp["langs"])]
    seen = [lang for lang in cmp["langs"] if lang in train_langs]
    unseen = [lang for lang in cmp["langs"] if lang not in train_langs]
    if not seen or not unseen:
        return [("", cmp["langs"])]
    return [("languages in the training table", seen), ("languages the training table lacks", unseen)]


# ----------------------------------------------------------------------------------------- report


def format_report(results: dict, figures: dict | None = None) -> str:
    figures = figures or {}
    lines = _header(results)
    for ds in results["settings"]["eval_datasets"]:
        lines += _dataset_section(results, ds, figures.get(ds, {}))
    lines += _curves_section(results, figures.get("curves"))
    lines += _runs_section(results)
    return "\n".join(lines) + "\n"


def format_summary(results: dict) -> str:
    """What ``fastir experiment`` prints: Tables 1-2 of every dataset."""
    lines = []
    for ds in results["settings"]["eval_datasets"]:
        cmp = results["compare"].get(ds)
        if cmp is None:
            lines += [f"{ds}: one system, nothing compared", *run_table(results, ds), ""]
            continue
        lines += [f"{ds}: Table 1 ({_interval_text(cmp)})", *summary_table(cmp, TABLE_1), "",
                  f"{ds}: Table 2", *summary_table(cmp, TABLE_2), ""]
    return "\n".join(lines)


def _interval_text(cmp: dict) -> str:
    return (f"mean over seeds ±sd across seeds [{cmp['confidence']:.0%} interval, {cmp['interval']}]; "
            f"▲/▼: significantly better/worse than the baseline"
            + (" whose number follows" if len(cmp["baselines"]) > 1 else "")
            + f" ({cmp['test']} test, Holm per table, α = {cmp['alpha']})")


def _header(results: dict) -> list[str]:
    s, t = results["settings"], results["settings"]["train"]
    train = ", ".join(f"{k} {json.dumps(v)}" for k, v in sorted(t.items()))
    ov = results["overlap"]
    overlap = "; ".join(f"{ds}: {d['rows']} of {d['train_rows']} training rows overlap"
                        for ds, d in ov["datasets"].items())
    return ["# fastir experiment", "",
            f"- model `{s['model']}`, trained on {', '.join(f'`{d}`' for d in s['data'])}",
            f"- strategies {', '.join(s['strategies'])}" + (" and the untrained `base`" if s["include_base"] else "")
            + f"; seeds {', '.join(map(str, s['seeds']))}; baselines "
            + ", ".join(f"{sup(k)} {b}" for k, b in enumerate(s["baselines"])),
            f"- training: {train or 'defaults'} (every setting: `results.json` → `settings`)",
            f"- evaluation: {', '.join(s['eval_datasets'])}"
            + (f" ({', '.join(s['eval_langs'])})" if s["eval_langs"] else "")
            + f", embedded at max length {s['eval_max_length']}, {s['candidates']} candidates",
            f"- zero-shot check{' (--allow-overlap given)' if ov['allowed'] else ''}: {overlap}",
            "- scale: 0–1 for every metric (as `fastir score` and `fastir compare`); rank distance in ranks, "
            "lower is better", ""]


def extra_columns(metrics: list[str]) -> list[tuple[str, str]]:
    """(metric, setting) columns of ``--metrics``: every setting, or the pooled one (multi) for a
    pooled-only metric such as the language-bias suite."""
    from fastir.eval.metrics import parse_metrics

    if not metrics:
        return []
    return [(m.name, s) for m in parse_metrics(metrics) for s in (("multi",) if m.pooled_only else SETTINGS)]


def _dataset_section(results: dict, ds: str, figures: dict) -> list[str]:
    cmp = results["compare"].get(ds)
    lines = [f"## {ds}", ""]
    if cmp is None:
        return lines + ["One system: nothing to compare. Per run:", "", *run_table(results, ds), ""]
    lines += [_interval_text(cmp) + f"; {cmp['paired']['queries']} queries, {cmp['samples']} resamples.", "",
              "**Table 1: mAP**", "", *summary_table(cmp, TABLE_1), "",
              "**Table 2: R@1, R@10 and rank distance**", "", *summary_table(cmp, TABLE_2), ""]
    extra = extra_columns(results["settings"].get("metrics") or [])
    if extra:
        lines += ["**Other metrics** (`--metrics`; definitions in docs/score.md)", "", *summary_table(cmp, extra), ""]
    for key, caption in (("heatmap", "X→Y mAP difference, strategy − baseline (mean over seeds)"),
                         ("languages", "mAP by query language with intervals"),
                         ("rank_distance", "Rank distance per query (pooled over seeds)")):
        if key in figures:
            lines += [f"![{caption}]({figures[key]})", ""]
    lines += ["### By query language", ""]
    groups = language_groups(cmp, results["settings"].get("train_langs"))
    if len(groups) > 1:
        lines += ["Each table is split: " + "; ".join(f"{caption} ({', '.join(langs)})" for caption, langs in groups)
                  + "; the markers' Holm correction still runs over all query languages together.", ""]
    for metric, setting in LANGUAGE_TABLES:
        for caption, langs in groups:
            lines += [f"**{column_label(metric, setting)} by query language" + (f", {caption}" if caption else "")
                      + "**", "", *language_table(cmp, metric, setting, langs), ""]
    return lines


def _curves_section(results: dict, figure: str | None) -> list[str]:
    s = results["settings"]
    lines = ["## Learning curves", ""]
    if s["eval_every"]:
        lines.append(f"Training loss per step and held-out pooled mAP (`micro_multi_map`, docs/score.md) every "
                     f"{s['eval_every']} steps on `{s['heldout']}`"
                     + (f" ({', '.join(s['eval_langs'])})" if s["eval_langs"] else "")
                     + (f", {s['heldout_max_queries']} queries drawn per training seed" if s["heldout_max_queries"]
                        else ", every query") + ".")
    else:
        lines.append("Training loss per step (no held-out curve: `--eval-every 0`).")
    lines += ["The curves are descriptive only: every reported model is the last step of its run, and no "
              "checkpoint is chosen by them (so a held-out set that is also the test set does not leak into "
              "the tables).", ""]
    if figure:
        lines += [f"![Learning curves]({figure})", ""]
    table = heldout_table(results)
    if table:
        lines += ["Held-out pooled mAP by step (mean over seeds ±sd across seeds):", "", *table, ""]
    return lines


def heldout_table(results: dict, max_columns: int = 11) -> list[str]:
    """Per strategy, the held-out pooled mAP at (up to ``max_columns`` evenly spread) evaluation steps."""
    import numpy as np

    by_strategy: dict[str, list[dict[int, float]]] = {}
    for run in results["runs"].values():
        if run["curve"] and run["curve"]["eval"]:
            by_strategy.setdefault(run["strategy"], []).append(
                {e["step"]: e["eval_pooled_map"] for e in run["curve"]["eval"]})
    if not by_strategy:
        return []
    steps = sorted({s for runs in by_strategy.values() for r in runs for s in r})
    if len(steps) > max_columns:
        steps = [steps[round(i)] for i in np.linspace(0, len(steps) - 1, max_columns)]
    rows = []
    for strategy, runs in by_strategy.items():
        cells = []
        for step in steps:
            vals = [r[step] for r in runs if step in r and r[step] is not None]
            mean = number(float(np.mean(vals)) if vals else None, "map")
            cells.append(mean + (f" ±{number(float(np.std(vals, ddof=1)), 'map')}" if len(vals) > 1 else ""))
        rows.append([strategy, *cells])
    return md_table(["strategy", *(f"step {s}" for s in steps)], rows)


def _runs_section(results: dict) -> list[str]:
    rows = []
    for name in results["names"]:
        run = results["runs"][name]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(run["stages_s"].items()))
        b = run["batches"]
        kinds = "–" if not b else ", ".join(f"{k} {n} ({b['shares'][k]:.2f})" for k, n in sorted(b["kinds"].items()))
        rows.append([name, kinds, stages or "–"])
    compare_s = ", ".join(f"{ds} {v:.1f}" for ds, v in results.get("compare_s", {}).items()) or "–"
    lines = ["## Runs", "", "Realised batch kinds (share of steps) and wall seconds per stage "
             "(kept from the call that did the work):", "", *md_table(["run", "batches", "wall s"], rows), "",
             f"compare: {compare_s} s.", ""]
    for ds in results["settings"]["eval_datasets"]:
        lines += [f"Per run on {ds}:", "", *run_table(results, ds), ""]
    return lines


def run_table(results: dict, ds: str) -> list[str]:
    """One row per run: Mo./Cr./Mul. mAP, R@1, R@10 and rank distance (fastir score's numbers)."""
    cols = [(m, st) for m in ("map", "recall@1", "recall@10") for st in SETTINGS] + [(RANK_DISTANCE, "multi")]
    rows = [[name] + [number(results["runs"][name]["results"][ds].get(
        RANK_DISTANCE if m == RANK_DISTANCE else f"{st}_{m}"), m) for m, st in cols] for name in results["names"]]
    return md_table(["run"] + [column_label(m, st) for m, st in cols], rows)
