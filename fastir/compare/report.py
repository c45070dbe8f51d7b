"""Render a :class:`fastir.compare.comparison.Comparison`: terminal table, Markdown, LaTeX, JSON and a PNG plot.

The summary table (one column per (metric, setting), cells with their intervals) and one table per
(setting, metric) by query language (cells without intervals). Cells, markers, digits, labels and
the plot are :mod:`fastir.compare.render`'s, shared with ``fastir experiment``'s report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastir.compare.comparison import Comparison
from fastir.compare.render import (
    DIGITS,
    SETTING_NAME,
    bar_figure,
    bar_plot_data,
    cell,
    column_label,
    index_records,
    md_table,
    sup,
    system_label,
)
from fastir.eval.metrics import metric as registry_metric

OUT_FILES = {"table": "compare.txt", "markdown": "compare.md", "latex": "compare.tex", "json": "compare.json"}
PLOT_FILE = "compare.png"
PLOT_DPI = 120


def _summary_columns(doc: dict) -> list[tuple[str, str]]:
    seen = []
    for r in doc["results"]:
        if r["level"] == "summary" and (r["metric"], r["setting"]) not in seen:
            seen.append((r["metric"], r["setting"]))
    return seen


def summary_grid(cmp: Comparison, digits: int = DIGITS, latex: bool = False, ci: bool = True, pad: bool = False):
    """Header row + one row per system for the paper-style summary table (strings)."""
    doc = cmp.to_json()
    cols, idx, bases = _summary_columns(doc), index_records(doc), doc["baselines"]
    header = ["Run"] + [column_label(m, s) for m, s in cols]
    rows = [[system_label(name, bases)] + [cell(idx.get(("summary", s, m, None, name)), bases, digits, ci=ci,
                                                latex=latex, pad=pad) for m, s in cols] for name in cmp.names]
    return header, rows


def language_grids(cmp: Comparison, digits: int = DIGITS, latex: bool = False, pad: bool = False):
    """[(title, header, rows)] per (setting, metric): one row per system, one column per query language."""
    doc = cmp.to_json()
    idx, bases = index_records(doc), doc["baselines"]
    out = []
    for m, s in _summary_columns(doc):
        langs = [lang for lang in cmp.langs if ("language", s, m, lang, cmp.names[0]) in idx]
        if not langs:
            continue
        rows = [[name] + [cell(idx[("language", s, m, lang, name)], bases, digits, ci=False, latex=latex, pad=pad)
                          for lang in langs] for name in cmp.names]
        setting = f" ({SETTING_NAME[s]})" if registry_metric(m).pooled_only else ""  # pooled-only: one setting
        title = f"{column_label(m, s)}{setting} by query language"
        out.append((title, ["Run", *langs], rows))
    return out


def _legend(cmp: Comparison) -> str:
    test = {"randomization": "paired randomization test", "bootstrap": "paired bootstrap test",
            "t": "paired t-test", "two-level": "two-level t-test over seeds and queries"}[cmp.test]
    unpaired = sum(cmp.unpaired_rows)
    extra = f"; {unpaired} unpaired rows left out" if unpaired else ""
    if cmp.seeded:
        seeds = ", ".join(f"{s.name} {s.n_seeds}" for s in cmp.systems)
        interval = (f"value: mean over seeds ±sd across seeds (seeds per system: {seeds}; a one-seed system is "
                    f"deterministic). [lo, hi]: {cmp.confidence:.0%} CI, {cmp.interval}: seed variance plus "
                    f"query bootstrap variance (queries resampled within each query language, {cmp.samples} "
                    f"samples, seed {cmp.seed}), Student t with Welch-Satterthwaite df.")
    else:
        interval = (f"[lo, hi]: {cmp.confidence:.0%} bootstrap CI, {cmp.interval}: queries resampled within each "
                    f"query language ({cmp.samples} samples, seed {cmp.seed}).")
    bases = [cmp.names[b] for b in cmp.baselines]
    if len(bases) == 1:
        against = bases[0]
    else:
        against = "each baseline (" + ", ".join(f"{sup(j)} {b}" for j, b in enumerate(bases)) + ")"
    return (f"{cmp.n_queries} paired queries ({cmp.n_rows} query x setting rows{extra}). {interval} "
            f"▲/▼: significantly better/worse than {against} ({test}, Holm-corrected per table, "
            f"alpha {cmp.alpha}). Rank distance: lower is better.")


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _tex_escape(s: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("&", "\\&"), ("%", "\\%"), ("#", "\\#")):
        s = s.replace(a, b)
    return s


def _tex_table(header: list[str], rows: list[list[str]], caption: str) -> str:
    esc = lambda c: c if "$" in c or "\\scriptsize" in c else _tex_escape(c)  # noqa: E731
    out = ["\\begin{table}[t]", "\\centering", "\\small",
           "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}", "\\toprule",
           " & ".join(_tex_escape(h) for h in header) + " \\\\", "\\midrule"]
    out += [" & ".join(esc(c) for c in r) + " \\\\" for r in rows]
    out += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{_tex_escape(caption)}}}", "\\end{table}"]
    return "\n".join(out)


def render(cmp: Comparison, fmt: str, digits: int = DIGITS) -> str:
    """The whole report in one format: summary table, then the per-language tables."""
    if fmt == "json":
        return json.dumps(cmp.to_json(), indent=1, ensure_ascii=False)
    legend = _legend(cmp)
    if fmt == "latex":
        header, rows = summary_grid(cmp, digits, latex=True)
        parts = [_tex_table(header, rows, "Summary (paper aggregation). " + legend.replace("▲/▼", "arrows"))]
        for title, h, r in language_grids(cmp, digits, latex=True):
            parts.append(_tex_table(h, r, title))
        return "% requires \\usepackage{booktabs}\n" + "\n\n".join(parts) + "\n"
    header, rows = summary_grid(cmp, digits, pad=fmt == "table")
    if fmt == "markdown":
        parts = ["### Summary", "\n".join(md_table(header, rows)), legend]
        for title, h, r in language_grids(cmp, digits):
            parts += [f"### {title}", "\n".join(md_table(h, r))]
        return "\n\n".join(parts) + "\n"
    if fmt == "table":
        parts = [_text_table(header, rows), legend]
        for title, h, r in language_grids(cmp, digits, pad=True):
            parts += [f"{title}:\n" + _text_table(h, r)]
        return "\n\n".join(parts) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def plot(cmp: Comparison, path: str | os.PathLike, metric: str | None = None):
    """Per-language bars with their intervals (:func:`fastir.compare.render.bar_plot_data`), written
    to ``path`` as PNG; returns the drawn Figure."""
    fig = bar_figure(bar_plot_data(cmp.to_json(), metric))
    fig.savefig(path, dpi=PLOT_DPI, format="png")
    return fig


def write_outputs(cmp: Comparison, out: str | os.PathLike, overwrite: bool = False,
                  digits: int = DIGITS) -> list[Path]:
    """Write compare.{txt,md,tex,json,png} into ``out`` atomically (all files or none)."""
    from fastir.core.outputs import atomic_dir, check_output_dir

    check_output_dir(out, overwrite=overwrite, written=[*OUT_FILES.values(), PLOT_FILE])
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for fmt, name in OUT_FILES.items():
            (tmp / name).write_text(render(cmp, fmt, digits), encoding="utf-8")
        plot(cmp, tmp / PLOT_FILE)
    return [out / n for n in [*OUT_FILES.values(), PLOT_FILE]]
