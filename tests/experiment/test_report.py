"""report.md tables and sections from a comparison JSON (no training: records built by hand); the
cells themselves are fastir.compare.render's (tests/compare/test_render.py)."""

from __future__ import annotations

from fastir.experiment.report import format_report, language_table, summary_table


def _rec(run, value, *, metric="map", setting="multi", lang=None, n_seeds=3, sd=0.01, vs=None, baseline=False):
    return {"level": "summary" if lang is None else "language", "setting": setting, "metric": metric, "lang": lang,
            "run": run, "value": value, "ci": [value - 0.02, value + 0.02], "baseline": baseline,
            "n_seeds": n_seeds, "seed_sd": sd if n_seeds > 1 else None, "vs": vs or {}}


def _sig(better):
    return {"diff": 0.1, "significant": True, "better": better}


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
    assert table[:2] == ["| System | Mo. mAP | Mul. mAP |", "|:---|---:|---:|"]
    assert table[2] == "| x-x-mono (baseline) | 0.100 ±0.010 [0.080, 0.120] | 0.100 ±0.010 [0.080, 0.120] |"
    assert table[3].endswith("| 0.200 ±0.010 [0.180, 0.220]▲ |")
    assert language_table(_cmp(), "map", "cross")[3] == "| hybrid | 0.200 ±0.010 [0.180, 0.220]▲ |"


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
    assert heldout_table(results) == ["| strategy | step 0 | step 5 |", "|:---|---:|---:|",
                                      "| x-y | 0.100 ±0.000 | 0.400 ±0.141 |", "| hybrid | 0.100 | 0.600 |"]
    many = {"runs": {"x-y@0": run("x-y", [(s, s / 100) for s in range(0, 101, 5)])}}
    assert heldout_table(many)[0] == "| strategy | " + " | ".join(f"step {s}" for s in range(0, 101, 10)) + " |"


def test_report_of_one_system_lists_the_runs_and_says_nothing_was_compared():
    md = format_report(_results(None))
    assert "One system: nothing to compare." in md
    assert "| hybrid@0 | 0.100 | 0.200 | 0.300 |" in md and "| 12.0 |" in md  # rank distance: one decimal
    assert "mono 1 (0.50)" in md and "ds: 0 of 4 training rows overlap" in md
    assert "no held-out curve: `--eval-every 0`" in md and "no checkpoint is chosen" in md


def test_report_tables_hold_fastir_compares_cells(tmp_path):
    """The report renders a comparison's records as `fastir compare --format markdown` does: same cells,
    same labels, same digits (rank distance included)."""
    from fastir.compare.comparison import compare
    from fastir.compare.experiment import experiment_inputs
    from fastir.compare.render import md_table
    from fastir.compare.report import summary_grid
    from fastir.experiment.report import TABLE_1, TABLE_2
    from tests.compare.test_experiment import write_experiment

    exp = experiment_inputs(write_experiment(tmp_path / "exp", strategies=("x-x-mono", "hybrid"), seeds=(0, 1)))
    cmp = compare(exp.paths, names=exp.names, baselines=["x-x-mono", "base"], samples=100, seed=1,
                  metrics=["map", "recall@1", "recall@10"])
    header, rows = summary_grid(cmp)
    table = summary_table(cmp.to_json(), TABLE_1 + TABLE_2)
    assert table[0] == "| System | " + " | ".join(header[1:]) + " |"
    assert table[1:] == md_table(header, rows)[1:]
    assert table[-1].startswith("| hybrid | ") and "▲" in table[-1]


def test_languages_the_training_table_lacks_get_their_own_tables():
    from fastir.experiment.report import language_groups

    cmp = _cmp()
    cmp["langs"] = ["de", "el", "en"]
    assert language_groups(cmp, ["de", "en", "es"]) == [("languages in the training table", ["de", "en"]),
                                                        ("languages the training table lacks", ["el"])]
    assert language_groups(cmp, None) == [("", ["de", "el", "en"])]  # results.json without train_langs
    assert language_groups(cmp, ["de", "el", "en", "es"]) == [("", ["de", "el", "en"])]
    assert language_table(cmp, "map", "cross", ["de"])[0] == "| System | de |"
    results = _results(cmp)
    results["settings"]["train_langs"] = ["de", "en"]
    report = format_report(results)
    assert "**Cr. mAP by query language, languages the training table lacks**" in report
    assert "**Cr. mAP by query language, languages in the training table**" in report
    unseen = report.split("**Cr. mAP by query language, languages the training table lacks**")[1].split("\n\n")[1]
    assert unseen.splitlines()[0] == "| System | el |"
