"""Render a :class:`fastir.compare.comparison.Comparison`: terminal table, Markdown, LaTeX, JSON and a PNG plot.

Cell text: ``value [ci_low, ci_high]`` (with seeds: ``mean ±sd [ci_low, ci_high]``) plus a marker when
the difference to the baseline is significant after Holm correction: ``▲`` better, ``▼`` worse (LaTeX:
``$^\\uparrow$`` / ``$^\\downarrow$``); with several baselines the marker carries the baseline's number (``▲¹▼²``).
Directions (rank distance: lower is better) and labels come from the metric registry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastir.compare.comparison import Comparison
from fastir.compare.inputs import SETTINGS
from fastir.eval.metrics import metric as registry_metric

SETTING_LABEL = {"mono": "Mo.", "cross": "Cr.", "multi": "Mul."}
SETTING_NAME = {"mono": "monolingual", "cross": "cross-lingual", "multi": "multilingual"}
OUT_FILES = {"table": "compare.txt", "markdown": "compare.md", "latex": "compare.tex", "json": "compare.json"}
PLOT_FILE = "compare.png"


def metric_label(metric: str) -> str:
    """The registry's label of a metric name (``recall@10`` -> ``R@10``)."""
    return registry_metric(metric).label


def _pooled_only(metric: str) -> bool:
    return registry_metric(metric).pooled_only


SUPERSCRIPT = "¹²³⁴⁵⁶⁷⁸⁹"


def _marker(rec: dict, latex: bool = False, pad: bool = False, cmp: Comparison | None = None) -> str:
    """▲/▼ against the baseline; with several baselines one per baseline the difference is
    significant against, followed by the baseline's number (▲¹▼²)."""
    if cmp is not None and len(cmp.baselines) > 1:
        marks = []
        for j, b in enumerate(cmp.baselines):
            d = rec.get("vs", {}).get(cmp.names[b])
            if d and d["significant"]:
                if latex:
                    arrow = "\\uparrow" if d["better"] else "\\downarrow"
                    marks.append("$^{" + arrow + str(j + 1) + "}$")
                else:
                    marks.append(("▲" if d["better"] else "▼") + _sup(j))
        return "".join(marks) or (" " if pad else "")
    if not rec.get("significant"):
        return " " if pad else ""
    if latex:
        return "$^{\\uparrow}$" if rec["better"] else "$^{\\downarrow}$"
    return "▲" if rec["better"] else "▼"


def _sup(j: int) -> str:
    return SUPERSCRIPT[j] if j < len(SUPERSCRIPT) else f"^{j + 1}"


def _baseline_label(cmp: Comparison, name: str) -> str:
    bases = [cmp.names[b] for b in cmp.baselines]
    if name not in bases:
        return name
    return name + (" (baseline)" if len(bases) == 1 else f" (baseline{_sup(bases.index(name))})")


def _value_text(rec: dict, d: int) -> str:
    """``value``, and ``±sd`` over seeds for a system with several."""
    text = _num(rec["value"], d)
    if rec.get("n_seeds", 1) > 1 and rec.get("seed_sd") is not None:
        text += f" ±{_num(rec['seed_sd'], d)}"
    return text


def _num(x, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _digits(metric: str, digits: int) -> int:
    return digits if registry_metric(metric).measure.bounded else max(digits - 2, 1)


def _summary_columns(cmp: Comparison) -> list[tuple[str, str]]:
    seen = []
    for r in cmp.records:
        if r["level"] == "summary" and (r["metric"], r["setting"]) not in seen:
            seen.append((r["metric"], r["setting"]))
    return seen


def _index(cmp: Comparison) -> dict:
    return {(r["level"], r["setting"], r["metric"], r["lang"], r["run"]): r for r in cmp.records}


def summary_grid(cmp: Comparison, digits: int = 3, latex: bool = False, ci: bool = True, pad: bool = False):
    """Header row + one row per run for the paper-style summary table (strings)."""
    cols = _summary_columns(cmp)
    idx = _index(cmp)
    header = ["Run"] + [metric_label(m) if _pooled_only(m) else f"{SETTING_LABEL[s]} {metric_label(m)}"
                        for m, s in cols]
    rows = []
    for name in cmp.names:
        row = [_baseline_label(cmp, name)]
        for m, s in cols:
            rec = idx.get(("summary", s, m, None, name))
            if rec is None:
                row.append("")
                continue
            d = _digits(m, digits)
            text = _value_text(rec, d)
            if ci:
                lo, hi = rec["ci"]
                interval = f"[{_num(lo, d)}, {_num(hi, d)}]"
                text += (" {\\scriptsize " + interval + "}") if latex else f" {interval}"
            row.append(text + _marker(rec, latex, pad, cmp))
        rows.append(row)
    return header, rows


def language_grids(cmp: Comparison, digits: int = 3, latex: bool = False, pad: bool = False):
    """[(title, header, rows)] per (setting, metric): one row per run, one column per query language."""
    idx = _index(cmp)
    out = []
    for m, s in _summary_columns(cmp):
        langs = [lang for lang in cmp.langs if ("language", s, m, lang, cmp.names[0]) in idx]
        if not langs:
            continue
        d = _digits(m, digits)
        rows = []
        for name in cmp.names:
            row = [name]
            for lang in langs:
                rec = idx[("language", s, m, lang, name)]
                row.append(_value_text(rec, d) + _marker(rec, latex, pad, cmp))
            rows.append(row)
        title = (f"{metric_label(m)} ({SETTING_NAME[s]}) by query language" if _pooled_only(m)
                 else f"{SETTING_LABEL[s]} {metric_label(m)} by query language")
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
        against = "each baseline (" + ", ".join(f"{_sup(j)} {b}" for j, b in enumerate(bases)) + ")"
    return (f"{cmp.n_queries} paired queries ({cmp.n_rows} query x setting rows{extra}). {interval} "
            f"▲/▼: significantly better/worse than {against} ({test}, Holm-corrected per table, "
            f"alpha {cmp.alpha}). Rank distance: lower is better.")


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


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


def render(cmp: Comparison, fmt: str, digits: int = 3) -> str:
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
        parts = ["### Summary", _md_table(header, rows), legend]
        for title, h, r in language_grids(cmp, digits):
            parts += [f"### {title}", _md_table(h, r)]
        return "\n\n".join(parts) + "\n"
    if fmt == "table":
        parts = [_text_table(header, rows), legend]
        for title, h, r in language_grids(cmp, digits, pad=True):
            parts += [f"{title}:\n" + _text_table(h, r)]
        return "\n\n".join(parts) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def plot(cmp: Comparison, path: str | os.PathLike, metric: str | None = None) -> None:
    """Per-language bars with their intervals, one panel per setting, one bar per system (with seeds:
    the mean over seeds); markers against the first baseline."""
    # Figure + Agg canvas directly: no pyplot, no global backend switch.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric = metric or cmp.metrics[0]
    idx = _index(cmp)
    settings = [s for s in SETTINGS
                if any(("language", s, metric, lang, cmp.names[0]) in idx for lang in cmp.langs)]
    fig = Figure(figsize=(max(6.0, 0.9 * len(cmp.langs) * max(1, len(cmp.names) / 2)), 2.6 * len(settings)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(settings), 1, squeeze=False)
    width = 0.8 / len(cmp.names)
    x = np.arange(len(cmp.langs))
    for ax, s in zip(axes[:, 0], settings):
        for i, name in enumerate(cmp.names):
            recs = [idx.get(("language", s, metric, lang, name)) for lang in cmp.langs]
            val = np.array([np.nan if r is None or r["value"] is None else r["value"] for r in recs])
            lo = np.array([np.nan if r is None or r["ci"][0] is None else r["ci"][0] for r in recs])
            hi = np.array([np.nan if r is None or r["ci"][1] is None else r["ci"][1] for r in recs])
            err = np.vstack([np.clip(val - lo, 0, None), np.clip(hi - val, 0, None)])
            bars = ax.bar(x + (i - (len(cmp.names) - 1) / 2) * width, val, width, yerr=err, capsize=2, label=name)
            for b, r, top in zip(bars, recs, np.fmax(hi, val)):
                if r is not None and r.get("significant"):  # above the interval, not on it
                    ax.annotate("▲" if r["better"] else "▼", (b.get_x() + b.get_width() / 2, top),
                                ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x, cmp.langs)
        ax.set_ylabel(f"{SETTING_LABEL[s]} {metric_label(metric)}")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[0, 0].set_title(f"{metric_label(metric)} by query language, {cmp.confidence:.0%} CI, {cmp.interval} "
                         f"(▲/▼ vs {cmp.names[cmp.baseline]}, Holm)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")


def write_outputs(cmp: Comparison, out: str | os.PathLike, overwrite: bool = False, digits: int = 3) -> list[Path]:
    """Write compare.{txt,md,tex,json,png} into ``out`` atomically (all files or none)."""
    from fastir.core.outputs import atomic_dir, check_output_dir

    check_output_dir(out, overwrite=overwrite, written=[*OUT_FILES.values(), PLOT_FILE])
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for fmt, name in OUT_FILES.items():
            (tmp / name).write_text(render(cmp, fmt, digits), encoding="utf-8")
        plot(cmp, tmp / PLOT_FILE)
    return [out / n for n in [*OUT_FILES.values(), PLOT_FILE]]
