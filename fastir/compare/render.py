"""How a comparison looks, in one place: the cells, markers, digits and labels of its tables, and its
per-language bar plot. ``fastir compare`` (:mod:`fastir.compare.report`: compare.{txt,md,tex,png}) and
``fastir experiment`` (report.md and figures/) both render through here.

Everything reads the comparison JSON (``Comparison.to_json()``; its ``results`` are the records):
what the experiment keeps in results.json is what ``fastir compare`` renders.

Cell text: ``value [lo, hi]`` (a system with several seeds: ``mean ±sd [lo, hi]``), then, with no
space, a marker per baseline the difference to which is significant after Holm: ``▲`` better,
``▼`` worse (LaTeX ``$^{\\uparrow}$`` / ``$^{\\downarrow}$``); with several baselines each marker
carries the baseline's number (``▲¹▼²``, LaTeX ``$^{\\uparrow1}$``). Digits: the registry's
:attr:`~fastir.eval.metrics.Measure.decimals` (0-1 metrics three, rank distance one), shifted alike
for every metric by ``digits`` (``fastir compare --digits``) away from :data:`DIGITS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastir.eval.cells import KINDS as SETTINGS
from fastir.eval.metrics import metric as registry_metric

SETTING_LABEL = {"mono": "Mo.", "cross": "Cr.", "multi": "Mul."}
SETTING_NAME = {"mono": "monolingual", "cross": "cross-lingual", "multi": "multilingual"}
SUPERSCRIPT = "¹²³⁴⁵⁶⁷⁸⁹"
DIGITS = 3  # the precision at which the registry's decimals apply (fastir compare's default --digits)
MISSING = "–"

# ------------------------------------------------------------------------------------------ labels


def metric_label(metric: str) -> str:
    """The registry's label of a metric name (``recall@10`` -> ``R@10``)."""
    return registry_metric(metric).label


def column_label(metric: str, setting: str) -> str:
    """``Mo. mAP``; a pooled-only metric (rank distance) is defined in one setting: its label alone."""
    if registry_metric(metric).pooled_only:
        return metric_label(metric)
    return f"{SETTING_LABEL[setting]} {metric_label(metric)}"


def sup(j: int) -> str:
    """The superscript number of baseline ``j`` (0-based): ¹, ², ..."""
    return SUPERSCRIPT[j] if j < len(SUPERSCRIPT) else f"^{j + 1}"


def system_label(name: str, baselines: list[str]) -> str:
    """``x-y (baseline)``, or with several baselines ``x-y (baseline²)``; other systems: the name."""
    if name not in baselines:
        return name
    return name + (" (baseline)" if len(baselines) == 1 else f" (baseline{sup(baselines.index(name))})")


# ------------------------------------------------------------------------------------------- cells


def decimals(metric: str, digits: int = DIGITS) -> int:
    """Decimal places of ``metric``'s values at precision ``digits`` (at least one)."""
    return max(registry_metric(metric).measure.decimals + digits - DIGITS, 1)


def number(x: float | None, metric: str, digits: int = DIGITS) -> str:
    return MISSING if x is None else f"{x:.{decimals(metric, digits)}f}"


def value_text(rec: dict, digits: int = DIGITS) -> str:
    """``value``, and ``±sd`` across seeds for a system with several."""
    m = rec["metric"]
    text = number(rec["value"], m, digits)
    if rec.get("n_seeds", 1) > 1 and rec.get("seed_sd") is not None:
        text += f" ±{number(rec['seed_sd'], m, digits)}"
    return text


def marker(rec: dict, baselines: list[str], latex: bool = False, pad: bool = False) -> str:
    """▲/▼ per baseline the difference to which is significant; numbered with several baselines.
    ``pad``: a blank where there is none, so that right-aligned plain-text columns line up."""
    numbered = len(baselines) > 1
    marks = []
    for j, b in enumerate(baselines):
        vs = rec.get("vs", {}).get(b)
        if vs and vs["significant"]:
            if latex:
                arrow = "\\uparrow" if vs["better"] else "\\downarrow"
                marks.append("$^{" + arrow + (str(j + 1) if numbered else "") + "}$")
            else:
                marks.append(("▲" if vs["better"] else "▼") + (sup(j) if numbered else ""))
    return "".join(marks) or (" " if pad else "")


def cell(rec: dict | None, baselines: list[str], digits: int = DIGITS, *, ci: bool = True, latex: bool = False,
         pad: bool = False) -> str:
    """One table cell: ``value [±sd] [lo, hi]`` then the markers (module docstring); ``–`` for no record."""
    if rec is None:
        return MISSING
    text = value_text(rec, digits)
    if ci:
        lo, hi = (number(x, rec["metric"], digits) for x in rec["ci"])
        text += (" {\\scriptsize [" + lo + ", " + hi + "]}") if latex else f" [{lo}, {hi}]"
    return text + marker(rec, baselines, latex, pad)


def index_records(doc: dict) -> dict:
    """The comparison JSON's records by (level, setting, metric, lang, system)."""
    return {(r["level"], r["setting"], r["metric"], r["lang"], r["run"]): r for r in doc["results"]}


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines: the first column left-aligned, the numbers right-aligned."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


# ---------------------------------------------------------------------------------------- bar plot


@dataclass
class Bars:
    """One system's bars in one panel, one per query language (NaN: no record)."""

    name: str
    heights: list[float]
    err_low: list[float]  # value - ci low, the error bar below (0 where unknown)
    err_high: list[float]  # ci high - value, above
    markers: list[str]  # ▲/▼ against the first baseline where significant, else ""


@dataclass
class Panel:
    ylabel: str
    bars: list[Bars]


@dataclass
class BarPlot:
    """What the per-language bar plot shows: :func:`bar_plot_data` computes it, :func:`bar_figure` draws it."""

    title: str
    langs: list[str]
    panels: list[Panel]


def bar_plot_data(doc: dict, metric: str | None = None, prefix: str = "") -> BarPlot:
    """Per query language, one bar per system (the mean over seeds) with its interval, one panel per
    setting that has the metric; markers against the first baseline. ``prefix`` heads the title."""
    metric = metric or doc["metrics"][0]
    idx = index_records(doc)
    names = [s["name"] for s in doc["systems"]]
    first = doc["baselines"][0]
    panels = []
    for s in SETTINGS:
        recs = {name: [idx.get(("language", s, metric, lang, name)) for lang in doc["langs"]] for name in names}
        if any(r is not None for r in recs[names[0]]):
            panels.append(Panel(column_label(metric, s), [_bars(name, recs[name], first) for name in names]))
    title = (f"{prefix}{metric_label(metric)} by query language, {doc['confidence']:.0%} CI, {doc['interval']} "
             f"(▲/▼ vs {first}, Holm)")
    return BarPlot(title, list(doc["langs"]), panels)


def _bars(name: str, recs: list[dict | None], first: str) -> Bars:
    def get(r, key, i=None):
        x = None if r is None else (r[key] if i is None else r[key][i])
        return math.nan if x is None else x

    heights = [get(r, "value") for r in recs]
    low = [_gap(v, get(r, "ci", 0)) for v, r in zip(heights, recs)]
    high = [_gap(get(r, "ci", 1), v) for v, r in zip(heights, recs)]
    marks = [marker(r, [first]) if r is not None else "" for r in recs]
    return Bars(name, heights, low, high, marks)


def _gap(upper: float, lower: float) -> float:
    gap = upper - lower
    return 0.0 if math.isnan(gap) else max(gap, 0.0)


def new_figure(width: float, height: float):
    """A matplotlib Figure on its own Agg canvas: no pyplot, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def bar_figure(plot: BarPlot):
    """Draw :class:`BarPlot`: grouped bars with error bars, markers above the interval, legend at the right."""
    import numpy as np

    n = len(plot.panels[0].bars)
    fig = new_figure(max(6.0, 0.9 * len(plot.langs) * max(1, n / 2)), 2.6 * len(plot.panels))
    axes = fig.subplots(len(plot.panels), 1, squeeze=False)[:, 0]
    width, x = 0.8 / n, np.arange(len(plot.langs))
    for ax, panel in zip(axes, plot.panels):
        for i, b in enumerate(panel.bars):
            drawn = ax.bar(x + (i - (n - 1) / 2) * width, b.heights, width, yerr=[b.err_low, b.err_high], capsize=2,
                           label=b.name)
            for bar, mark, top in zip(drawn, b.markers, np.add(b.heights, b.err_high)):
                if mark:  # above the interval, not on it
                    ax.annotate(mark, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom", fontsize=7,
                                xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x, plot.langs)
        ax.set_ylabel(panel.ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[0].set_title(plot.title, fontsize=9)
    fig.tight_layout()
    return fig
