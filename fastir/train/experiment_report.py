"""``fastir experiment``'s report: ``results.json``, ``report.md`` and ``figures/``.

Every number is on the 0-1 scale that ``fastir score`` and ``fastir compare`` print (rank
distance: a rank, lower is better).
"""

from __future__ import annotations

from pathlib import Path

REPORT_MD = "report.md"


def write_report(results: dict, out: Path) -> None:
    """Write ``results.json`` and ``report.md`` (atomically, each)."""
    from fastir.atomic import atomic_file
    from fastir.train.experiment import write_results

    write_results(results, out)
    with atomic_file(out / REPORT_MD, "w") as fh:
        fh.write(format_report(results))


def format_report(results: dict) -> str:
    s = results["settings"]
    lines = ["# fastir experiment", "",
             f"Model `{s['model']}`, trained on {', '.join(f'`{d}`' for d in s['data'])}; "
             f"strategies {', '.join(s['strategies'])}; seeds {', '.join(map(str, s['seeds']))}.", ""]
    for ds in s["eval_datasets"]:
        lines += [f"## {ds}", "", *run_table(results, ds), ""]
    return "\n".join(lines)


def run_table(results: dict, ds: str) -> list[str]:
    """One row per run: Mo./Cr./Mul. mAP, R@1, R@10 and rank distance (0-1 scale, as compare)."""
    cols = [(f"{m} {lab}", f"{k}_{m}") for m in ("map", "recall@1", "recall@10")
            for k, lab in (("mono", "Mo."), ("cross", "Cr."), ("multi", "Mul."))]
    cols.append(("rank distance", "rank_distance"))
    head = ["run"] + [c for c, _ in cols]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in results["names"]:
        row = results["runs"][name]["results"][ds]
        cells = [name] + [_fmt(row.get(key), key) for _, key in cols]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _fmt(x, key: str) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if key == "rank_distance" else f"{x:.3f}"


def format_summary(results: dict) -> str:
    """What ``fastir experiment`` prints: the report's tables."""
    return format_report(results)
