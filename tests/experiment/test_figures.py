"""Figures drawn from hand-made results: curves (loss and held-out) and per-language bars."""

from __future__ import annotations

from fastir.experiment.figures import curves, language_bars

PNG = b"\x89PNG\r\n\x1a\n"


def test_curves_and_language_bars_are_pngs(tmp_path):
    def run(strategy, seed, shift):
        return {"strategy": strategy, "seed": seed, "curve": {
            "step": [1, 2, 3, 4], "loss": [2.0 - shift, 1.8, 1.7, 1.5],
            "eval": [{"step": 0, "eval_pooled_map": 0.1}, {"step": 4, "eval_pooled_map": 0.2 + shift}]}}

    results = {"settings": {"strategies": ["x-y", "hybrid"], "heldout": "/data/xquad-r"},
               "runs": {"base": {"strategy": "base", "seed": None, "curve": None},
                        "x-y@0": run("x-y", 0, 0.0), "x-y@1": run("x-y", 1, 0.1), "hybrid@0": run("hybrid", 0, 0.2)}}
    assert curves(results, tmp_path) == "figures/curves.png"
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG

    recs = [{"level": "language", "setting": s, "metric": "map", "lang": lang, "run": name, "value": v,
             "ci": [v - 0.05, v + 0.05], "vs": {} if name == "x-y" else {"x-y": {"significant": True, "better": True}}}
            for s in ("mono", "cross", "multi") for lang in ("de", "en") for name, v in (("x-y", 0.3), ("hybrid", 0.5))]
    cmp = {"results": recs, "langs": ["de", "en"], "systems": [{"name": "x-y"}, {"name": "hybrid"}],
           "baselines": ["x-y"], "confidence": 0.95, "interval": "query-level only"}
    assert language_bars(cmp, "xquad-r", tmp_path) == "figures/xquad-r-languages.png"
    assert (tmp_path / "xquad-r-languages.png").read_bytes()[:8] == PNG
