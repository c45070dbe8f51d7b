"""The one renderer of comparisons (fastir compare and fastir experiment): cell text, markers, digits,
labels, Markdown tables, and the per-language bar plot (its data, then what the drawn Figure shows)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastir.compare.render import (
    bar_figure,
    bar_plot_data,
    cell,
    column_label,
    decimals,
    md_table,
    system_label,
)
from fastir.eval.metrics import REGISTRY


def _rec(run, value, *, metric="map", setting="multi", lang=None, n_seeds=3, sd=0.01, vs=None, ci=None):
    return {"level": "summary" if lang is None else "language", "setting": setting, "metric": metric, "lang": lang,
            "run": run, "value": value, "ci": ci or [value - 0.02, value + 0.02], "n_seeds": n_seeds,
            "seed_sd": sd if n_seeds > 1 else None, "vs": vs or {}}


def _sig(better):
    return {"diff": 0.1, "significant": True, "better": better}


def test_cell_shows_mean_sd_interval_and_a_marker_per_baseline():
    rec = _rec("hybrid", 0.2734, vs={"x-x-mono": _sig(True), "x-y": _sig(False), "base": {"significant": False}})
    assert cell(rec, ["x-x-mono", "x-y"]) == "0.273 ±0.010 [0.253, 0.293]▲¹▼²"
    assert cell(rec, ["x-y"]) == "0.273 ±0.010 [0.253, 0.293]▼"  # one baseline: no number
    assert cell(rec, ["base"]) == "0.273 ±0.010 [0.253, 0.293]"  # not significant: no marker
    assert cell(rec, ["base"], pad=True) == "0.273 ±0.010 [0.253, 0.293] "  # aligns with marked cells
    assert cell(rec, ["x-x-mono", "x-y"], ci=False) == "0.273 ±0.010▲¹▼²"
    assert cell(rec, ["x-x-mono", "x-y"], latex=True) == \
        "0.273 ±0.010 {\\scriptsize [0.253, 0.293]}$^{\\uparrow1}$$^{\\downarrow2}$"
    assert cell(rec, ["x-y"], latex=True).endswith("]}$^{\\downarrow}$")
    assert cell(_rec("base", 0.05, n_seeds=1), ["x-x-mono"]) == "0.050 [0.030, 0.070]"  # one seed: no ±
    assert cell(_rec("base", 0.05, ci=[None, None]), []) == "0.050 ±0.010 [–, –]"
    assert cell(None, []) == "–"


def test_digits_are_the_registry_decimals_shifted_alike():
    rd = _rec("hybrid", 96.704, metric="rank_distance", sd=7.861, ci=[96.68, 96.72])
    assert cell(rd, []) == "96.7 ±7.9 [96.7, 96.7]"
    assert cell(rd, [], digits=5) == "96.704 ±7.861 [96.680, 96.720]"
    assert cell(_rec("x", 0.2734), [], digits=5) == "0.27340 ±0.01000 [0.25340, 0.29340]"
    assert cell(rd, [], digits=1) == "96.7 ±7.9 [96.7, 96.7]"  # never fewer than one decimal
    for measure in REGISTRY.values():
        spelled = f"{measure.name}@10" if measure.cutoff else measure.name
        assert decimals(spelled) == measure.decimals
        # a 0-1 value shows three decimals, a rank (unbounded) one
        assert measure.decimals == (3 if measure.bounded else 1)


def test_labels():
    assert column_label("map", "mono") == "Mo. mAP" and column_label("recall@10", "cross") == "Cr. R@10"
    assert column_label("rank_distance", "multi") == "Rank dist."  # pooled-only: one setting, no prefix
    assert column_label("same_lang@10", "multi") == "SameLang@10"
    assert system_label("x-y", ["x-y"]) == "x-y (baseline)"
    assert system_label("base", ["x-y", "base"]) == "base (baseline²)"
    assert system_label("hybrid", ["x-y", "base"]) == "hybrid"


def test_markdown_table_aligns_numbers_right():
    assert md_table(["System", "Mo. mAP"], [["a", "0.1"], ["b", "0.2"]]) == [
        "| System | Mo. mAP |", "|:---|---:|", "| a | 0.1 |", "| b | 0.2 |"]


def _doc():
    """A comparison JSON: systems a (the baseline) and b, languages de and en, map in every setting
    and rank distance (pooled only); b's en bar is missing in cross."""
    records = []
    for setting in ("mono", "cross", "multi"):
        for lang, va, vb in (("de", 0.30, 0.50), ("en", 0.40, 0.35)):
            records.append(_rec("a", va, setting=setting, lang=lang, n_seeds=1))
            if not (setting == "cross" and lang == "en"):
                vs = {"a": _sig(vb > va) if lang == "de" else {"significant": False}}
                records.append(_rec("b", vb, setting=setting, lang=lang, ci=[vb - 0.1, vb + 0.05], vs=vs))
    records += [_rec(n, v, metric="rank_distance", lang="de", n_seeds=1) for n, v in (("a", 12.0), ("b", 9.0))]
    return {"systems": [{"name": "a"}, {"name": "b"}], "baselines": ["a"], "langs": ["de", "en"],
            "metrics": ["map", "rank_distance"], "results": records, "confidence": 0.95,
            "interval": "query-level only"}


def test_bar_plot_data_is_the_comparison_json():
    plot = bar_plot_data(_doc())
    assert plot.title == "mAP by query language, 95% CI, query-level only (▲/▼ vs a, Holm)"
    assert plot.langs == ["de", "en"]
    assert [p.ylabel for p in plot.panels] == ["Mo. mAP", "Cr. mAP", "Mul. mAP"]
    mono_a, mono_b = plot.panels[0].bars
    assert (mono_a.name, mono_a.heights, mono_a.markers) == ("a", [0.30, 0.40], ["", ""])
    assert mono_a.err_low == pytest.approx([0.02, 0.02]) and mono_a.err_high == pytest.approx([0.02, 0.02])
    assert mono_b.heights == [0.50, 0.35] and mono_b.markers == ["▲", ""]
    assert mono_b.err_low == pytest.approx([0.1, 0.1]) and mono_b.err_high == pytest.approx([0.05, 0.05])
    cross_b = plot.panels[1].bars[1]
    assert cross_b.heights[0] == 0.5 and math.isnan(cross_b.heights[1])  # no record: no bar, no error
    assert (cross_b.err_low[1], cross_b.err_high[1], cross_b.markers[1]) == (0.0, 0.0, "")
    rd = bar_plot_data(_doc(), "rank_distance", prefix="xquad-r: ")
    assert [p.ylabel for p in rd.panels] == ["Rank dist."] and rd.title.startswith("xquad-r: Rank dist. by query")
    assert [b.heights[0] for b in rd.panels[0].bars] == [12.0, 9.0]
    assert all(math.isnan(b.heights[1]) for b in rd.panels[0].bars)  # no en record


def test_bar_figure_draws_the_data():
    plot = bar_plot_data(_doc())
    fig = bar_figure(plot)
    fig.canvas.draw()  # rendered on its Agg canvas
    axes = fig.get_axes()
    assert len(axes) == 3 and axes[0].get_title() == plot.title
    assert [ax.get_ylabel() for ax in axes] == ["Mo. mAP", "Cr. mAP", "Mul. mAP"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["de", "en"]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["a", "b"]
    for ax, panel in zip(axes, plot.panels):
        bars = [c for c in ax.containers if hasattr(c, "patches")]
        assert len(bars) == len(panel.bars) == 2
        for drawn, data in zip(bars, panel.bars):
            np.testing.assert_allclose([p.get_height() for p in drawn.patches], data.heights)
            spans = drawn.errorbar.lines[2][0].get_segments()  # per bar: (x, low) -> (x, high)
            for span, value, low, high in zip(spans, data.heights, data.err_low, data.err_high):
                if np.isfinite(value):
                    assert span[:, 1] == pytest.approx([value - low, value + high])
    # the marker sits above b's de bar's interval in every panel (b's en bar is not significant)
    marks = [(t.get_text(), t.xy) for t in axes[0].texts]
    b_de = [c for c in axes[0].containers if hasattr(c, "patches")][1].patches[0]
    assert marks == [("▲", pytest.approx((b_de.get_x() + b_de.get_width() / 2, 0.55)))]
    assert all(len(ax.texts) == 1 for ax in axes)
