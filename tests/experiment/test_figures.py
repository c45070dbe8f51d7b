"""Figures drawn from hand-made results, tested on what they show: the learning curves (loss and
held-out) and the per-language bars (fastir compare's plot, tests/compare/test_render.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.experiment.figures import curves_figure, language_bars_figure


def _run(strategy, seed, shift):
    return {"strategy": strategy, "seed": seed, "curve": {
        "step": [1, 2, 3, 4], "loss": [2.0 - shift, 1.8, 1.7, 1.5],
        "eval": [{"step": 0, "eval_pooled_map": 0.1}, {"step": 4, "eval_pooled_map": 0.2 + shift}]}}


def _lines(ax, width):
    return [line for line in ax.get_lines() if line.get_linewidth() == width]


def test_curves_show_each_seed_thin_and_the_mean_over_seeds_thick():
    results = {"settings": {"strategies": ["x-y", "hybrid"], "heldout": "/data/xquad-r"},
               "runs": {"base": {"strategy": "base", "seed": None, "curve": None},
                        "x-y@0": _run("x-y", 0, 0.0), "x-y@1": _run("x-y", 1, 0.1), "hybrid@0": _run("hybrid", 0, 0.2)}}
    fig = curves_figure(results)
    fig.canvas.draw()
    loss, heldout = fig.get_axes()
    # 4 steps: the moving-average window is one step, so the thin lines are the logged losses
    assert [list(line.get_ydata()) for line in _lines(loss, 0.5)] == [
        [2.0, 1.8, 1.7, 1.5], [1.9, 1.8, 1.7, 1.5], [1.8, 1.8, 1.7, 1.5]]
    thick = {line.get_label(): line for line in _lines(loss, 1.6)}
    np.testing.assert_allclose(thick["x-y"].get_ydata(), [1.95, 1.8, 1.7, 1.5])
    assert list(thick["x-y"].get_xdata()) == [1, 2, 3, 4] and list(thick["hybrid"].get_ydata()) == [1.8, 1.8, 1.7, 1.5]
    means = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in _lines(heldout, 1.6)}
    assert means["x-y"][0] == [0, 4] and means["x-y"][1] == pytest.approx([0.1, 0.25])
    assert means["hybrid"][1] == pytest.approx([0.1, 0.4])
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("step", "training loss (moving average)")
    assert heldout.get_ylabel() == "held-out pooled mAP (xquad-r)"
    assert heldout.get_title() == "descriptive only: never used to choose a checkpoint"
    assert [t.get_text() for t in heldout.get_legend().get_texts()] == ["x-y", "hybrid"]


def test_curves_without_held_out_evaluations_have_one_panel():
    run = _run("x-y", 0, 0.0)
    run["curve"]["eval"] = []
    fig = curves_figure({"settings": {"strategies": ["x-y"], "heldout": None}, "runs": {"x-y@0": run}})
    assert len(fig.get_axes()) == 1 and [line.get_label() for line in _lines(fig.get_axes()[0], 1.6)] == ["x-y"]


def test_language_bars_are_the_comparisons_plot_with_the_dataset_named():
    recs = [{"level": "language", "setting": s, "metric": "map", "lang": lang, "run": name, "value": v,
             "ci": [v - 0.05, v + 0.05], "vs": {} if name == "x-y" else {"x-y": {"significant": True, "better": True}}}
            for s in ("mono", "cross", "multi") for lang in ("de", "en") for name, v in (("x-y", 0.3), ("hybrid", 0.5))]
    cmp = {"results": recs, "langs": ["de", "en"], "systems": [{"name": "x-y"}, {"name": "hybrid"}],
           "baselines": ["x-y"], "metrics": ["map"], "confidence": 0.95, "interval": "query-level only"}
    fig = language_bars_figure(cmp, "xquad-r")
    fig.canvas.draw()
    axes = fig.get_axes()
    assert axes[0].get_title() == "xquad-r: mAP by query language, 95% CI, query-level only (▲/▼ vs x-y, Holm)"
    assert [ax.get_ylabel() for ax in axes] == ["Mo. mAP", "Cr. mAP", "Mul. mAP"]
    for ax in axes:
        bars = [c for c in ax.containers if hasattr(c, "patches")]
        assert [[p.get_height() for p in b.patches] for b in bars] == [[0.3, 0.3], [0.5, 0.5]]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["de", "en"]
        assert [(t.get_text(), t.xy[1]) for t in ax.texts] == [("▲", pytest.approx(0.55))] * 2
