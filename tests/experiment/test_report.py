"""report.md cells and sections from a comparison JSON (no training: records built by hand)."""

from __future__ import annotations

from fastir.experiment.report import fmt_cell, format_report, language_table, summary_table


def _rec(run, value, *, metric="map", setting="multi", lang=None, n_seeds=3, sd=0.01, vs=None, baseline=False):
    return {"level": "summary" if lang is None else "language", "setting": setting, "metric": metric, "lang": lang,
            "run": run, "value": value, "ci": [value - 0.02, value + 0.02], "baseline": baseline,
            "n_seeds": n_seeds, "seed_sd": sd if n_seeds > 1 else None, "vs": vs or {}}


def _sig(better):
    return {"diff": 0.1, "significant": True, "better": better}


def test_cell_shows_mean_sd_interval_and_a_marker_per_baseline():
    rec = _rec("hybrid", 0.2734, vs={"x-x-mono": _sig(True), "x-y": _sig(False), "base": {"significant": False}})
    assert fmt_cell(rec, ["x-x-mono", "x-y"]) == "0.273 ±0.010 [0.253, 0.293] ▲¹▼²"
    assert fmt_cell(rec, ["x-y"]) == "0.273 ±0.010 [0.253, 0.293] ▼"
    one_seed = _rec("base", 0.05, n_seeds=1)
    assert fmt_cell(one_seed, ["x-x-mono"]) == "0.050 [0.030, 0.070]"
    rd = _rec("hybrid", 96.704, metric="rank_distance", sd=7.861)
    assert fmt_cell(rd, []) == "96.70 ±7.86 [96.68, 96.72]"
    assert fmt_cell(None, []) == "–"


def _cmp():
    systems = [{"name": "x-x-mono", "seeds": [0, 1], "runs": ["x-x-mono@0", "x-x-mono@1"]},
               {"name": "hybrid", "seeds": [0, 1], "runs": ["hybrid@0", "hybrid@1"]}]
    records = []
    for name, v in (("x-x-mono", 0.1), ("hybrid", 0.2)):
        vs = {} if name == "x-x-mono" else {"x-x-mono": _sig(True)}
        for setting in ("mono", "cross", "multi"):
            records.append(_rec(name, v, setting=setting, vs=vs, baseline=name == "x-x-mono"))
            records.append(_rec(name, v, setting=setting, lang="de", vs=vs))
    return {"systems": systems, "baselines": ["x-x-mono"], "langs": ["de"], "results": records,
            "confidence": 0.95, "interval": "two-level (seeds, queries)", "test": "two-level", "alpha": 0.05,
            "samples": 100, "paired": {"queries": 10}}


def test_tables_have_one_row_per_system_and_the_baseline_named():
    table = summary_table(_cmp(), [("map", "mono"), ("map", "multi")])
    assert table[0] == "| System | Mo. mAP | Mul. mAP |"
    assert table[2] == "| x-x-mono (baseline) | 0.100 ±0.010 [0.080, 0.120] | 0.100 ±0.010 [0.080, 0.120] |"
    assert table[3].endswith("| 0.200 ±0.010 [0.180, 0.220] ▲ |")
    assert language_table(_cmp(), "map", "cross")[3] == "| hybrid | 0.200 ±0.010 [0.180, 0.220] ▲ |"


def _results(compare):
    row = {"mono_map": 0.1, "cross_map": 0.2, "multi_map": 0.3, "rank_distance": 12.0}
    run = {"strategy": "hybrid", "seed": 0, "dir": "hybrid/seed-0", "stages_s": {"train": 1.0},
           "train_log_s": {}, "batches": {"steps": 2, "kinds": {"mono": 1, "cross": 1},
                                          "shares": {"mono": 0.5, "cross": 0.5}},
           "curve": None, "results": {"ds": row}}
    settings = {"model": "m", "data": ["t.parquet"], "strategies": ["hybrid"], "include_base": False, "seeds": [0],
                "baselines": ["hybrid"], "train": {"steps": 2}, "eval_datasets": ["ds"], "eval_langs": None,
                "eval_max_length": 64, "candidates": "sentence", "eval_every": 0, "heldout": None,
                "heldout_max_queries": 0}
    return {"settings": settings, "overlap": {"allowed": False, "datasets": {"ds": {"rows": 0, "train_rows": 4}}},
            "names": ["hybrid@0"], "runs": {"hybrid@0": run}, "compare": {"ds": compare}, "compare_s": {}}


def test_heldout_table_means_and_spreads_over_seeds():
    from fastir.experiment.report import heldout_table

    def run(strategy, maps):
        return {"strategy": strategy, "curve": {"eval": [{"step": s, "eval_pooled_map": m} for s, m in maps]}}

    results = {"runs": {"base": {"strategy": "base", "curve": None},
                        "x-y@0": run("x-y", [(0, 0.1), (5, 0.3)]), "x-y@1": run("x-y", [(0, 0.1), (5, 0.5)]),
                        "hybrid@0": run("hybrid", [(0, 0.1), (5, 0.6)])}}
    assert heldout_table(results) == ["| strategy | step 0 | step 5 |", "|---|---|---|",
                                      "| x-y | 0.100 ±0.000 | 0.400 ±0.141 |", "| hybrid | 0.100 | 0.600 |"]
    many = {"runs": {"x-y@0": run("x-y", [(s, s / 100) for s in range(0, 101, 5)])}}
    assert heldout_table(many)[0] == "| strategy | " + " | ".join(f"step {s}" for s in range(0, 101, 10)) + " |"


def test_report_of_one_system_lists_the_runs_and_says_nothing_was_compared():
    md = format_report(_results(None))
    assert "One system: nothing to compare." in md
    assert "| hybrid@0 | 0.100 | 0.200 | 0.300 |" in md and "| 12.00 |" in md
    assert "mono 1 (0.50)" in md and "ds: 0 of 4 training rows overlap" in md
    assert "no held-out curve: `--eval-every 0`" in md and "no checkpoint is chosen" in md
