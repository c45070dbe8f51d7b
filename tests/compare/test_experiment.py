"""fastir compare on an experiment dir and on seeded runs: names, seed statistics, several baselines,
outputs, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastir.cli import main
from fastir.compare.comparison import compare
from fastir.compare.experiment import experiment_inputs
from fastir.compare.inputs import default_names
from fastir.compare.report import render
from fastir.compare.stats import holm
from fastir.runs.experiment_dir import scores_digest
from tests.compare.test_comparison import record, synth_rows, write_per_query

LANGS = ("de", "en", "zh")
SEEDS = (0, 1, 2)


def write_experiment(out: Path, *, seeds=SEEDS, strategies=("x-x-mono", "x-y", "hybrid"), base=True,
                     dataset="xquad-r", n=30, meta=None, results=None) -> Path:
    """A fastir experiment OUT dir (format fastir-experiment/2) with per_query.parquet for every run.
    Strategy j is 0.04 * j better than x-x-mono, plus a per-seed offset (the seed variance) and small
    per-row noise."""
    out.mkdir(parents=True, exist_ok=True)
    info = {"dataset": dataset, **(meta or {})}
    written = {}  # run name -> its scores dir
    if base:
        written["base"] = out / "base" / "scores" / dataset
        write_per_query(written["base"], synth_rows(list(LANGS), n, 99, shift=-0.1), meta=info)
    for j, strategy in enumerate(strategies):
        for s in seeds:
            offset = 0.04 * j + 0.01 * (s - 1)
            written[f"{strategy}@{s}"] = out / strategy / f"seed-{s}" / "scores" / dataset
            write_per_query(written[f"{strategy}@{s}"],
                            synth_rows(list(LANGS), n, 10 * j + s, shift=offset, noise=0.03), meta=info)
    settings = {"strategies": list(strategies), "seeds": list(seeds), "baselines": ["x-x-mono"],
                "eval_datasets": [dataset]}
    doc = {"format": "fastir-experiment/2", "settings": settings, "names": list(written), "runs": {}}
    doc.update(results or {})
    (out / "results.json").write_text(json.dumps(doc))
    return record_scores(out, dataset)


def record_scores(out: Path, dataset: str = "xquad-r") -> Path:
    """As ``fastir experiment`` does at its end: results.json lists every run whose per_query.parquet
    is there (base, strategy@seed) with the file's SHA-256."""
    doc = json.loads((out / "results.json").read_text())
    found = sorted(out.glob(f"*/scores/{dataset}/per_query.parquet")) + sorted(
        out.glob(f"*/seed-*/scores/{dataset}/per_query.parquet"))
    names = {f: ("base" if f.parents[3] == out else f"{f.parents[3].name}@{f.parents[2].name[5:]}") for f in found}
    doc["names"] = [n for n in names.values()]
    doc["runs"] = {n: {"scores_sha256": {dataset: scores_digest(f)}} for f, n in names.items()}
    (out / "results.json").write_text(json.dumps(doc))
    return out


def _cli_error(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_experiment_inputs_names_and_order(tmp_path):
    out = write_experiment(tmp_path / "exp", strategies=("x-y", "hybrid"))
    exp = experiment_inputs(out)
    assert exp.dataset == "xquad-r" and exp.baselines == ["x-x-mono"]
    assert exp.names == ["base", "x-y@0", "x-y@1", "x-y@2", "hybrid@0", "hybrid@1", "hybrid@2"]
    assert exp.paths[4] == out / "hybrid" / "seed-0" / "scores" / "xquad-r" / "per_query.parquet"


def test_default_names_follow_the_experiment_layout(tmp_path):
    out = write_experiment(tmp_path / "exp", strategies=("x-y",), seeds=(0, 1))
    files = [out / "x-y" / f"seed-{s}" / "scores" / "xquad-r" / "per_query.parquet" for s in (0, 1)]
    files.append(out / "base" / "scores" / "xquad-r" / "per_query.parquet")
    assert default_names(files) == ["x-y@0", "x-y@1", "base"]
    # the case: `fastir score x-x-mono/runs/xquad-r --per-query` -> named x-x-mono, not x-x-mono/runs/xquad-r
    mono = write_per_query(tmp_path / "x-x-mono" / "runs" / "xquad-r" / "scores", synth_rows(["en"], 3, 1))
    xy = write_per_query(tmp_path / "x-y" / "runs" / "xquad-r" / "scores", synth_rows(["en"], 3, 2))
    assert default_names([mono / "per_query.parquet", xy / "per_query.parquet"]) == ["x-x-mono", "x-y"]
    cmp = compare([mono.parent, xy.parent], baseline="x-x-mono", samples=20)
    assert cmp.names == ["x-x-mono", "x-y"]


def test_seed_statistics_equal_the_per_seed_comparisons(tmp_path):
    out = write_experiment(tmp_path / "exp")
    exp = experiment_inputs(out)
    cmp = compare(exp.paths, names=exp.names, baselines=["x-x-mono", "base"], samples=300, seed=2)
    assert cmp.names == ["base", "x-x-mono", "x-y", "hybrid"] and cmp.seeded and cmp.test == "two-level"
    assert [cmp.names[b] for b in cmp.baselines] == ["x-x-mono", "base"]
    # the value of each seed = a one-seed comparison of that run alone (up to summation order)
    per_seed = {}
    for s in SEEDS:
        one = compare([out / "base" / "scores" / "xquad-r", out / "hybrid" / f"seed-{s}" / "scores" / "xquad-r"],
                      names=["base", "hybrid"], samples=10)
        per_seed[s] = record(one, "hybrid", "cross", "map")["value"]
    rec = record(cmp, "hybrid", "cross", "map")
    assert rec["seed_values"] == pytest.approx([per_seed[s] for s in SEEDS], rel=1e-13)
    assert rec["value"] == pytest.approx(np.mean(rec["seed_values"]), abs=1e-15)
    assert rec["seed_sd"] == pytest.approx(np.std(rec["seed_values"], ddof=1))
    assert rec["seed_range"] == [min(rec["seed_values"]), max(rec["seed_values"])] and rec["n_seeds"] == 3
    assert rec["ci"][0] < rec["value"] < rec["ci"][1]
    base = record(cmp, "base", "cross", "map")
    assert base["n_seeds"] == 1 and base["seed_sd"] is None and base["baseline"]
    # differences against each baseline; the first baseline's also flat
    assert set(rec["vs"]) == {"x-x-mono", "base"}
    assert rec["diff"] == rec["vs"]["x-x-mono"]["diff"]
    assert rec["vs"]["base"]["diff"] == pytest.approx(rec["value"] - base["value"], abs=1e-12)
    assert set(record(cmp, "base", "cross", "map")["vs"]) == {"x-x-mono"}  # base vs x-x-mono, once
    assert record(cmp, "x-x-mono", "cross", "map")["vs"] == {}
    summary = [d for r in cmp.records if r["level"] == "summary" for d in r["vs"].values()]
    np.testing.assert_allclose([d["p_holm"] for d in summary], holm([d["p"] for d in summary]))
    assert rec["vs"]["base"]["significant"] and rec["vs"]["base"]["better"]  # +0.18 over base: far beyond noise
    for r in cmp.records:  # no interval collapses or explodes (a seed spread small by chance, rank distance)
        width = r["ci"][1] - r["ci"][0]
        assert r["ci"][0] <= r["value"] <= r["ci"][1] and 0 < width < (r["value"] if r["metric"] == "rank_distance" else 1.0)
    doc = cmp.to_json()
    assert doc["interval"] == "two-level (seeds, queries)" and doc["baselines"] == ["x-x-mono", "base"]
    assert {"name": "hybrid", "seeds": [0, 1, 2], "runs": ["hybrid@0", "hybrid@1", "hybrid@2"]} in doc["systems"]
    assert doc["runs"][1]["system"] == "x-x-mono" and doc["runs"][1]["seed"] == 0


def test_one_seed_experiment_is_query_level_only_and_unchanged(tmp_path):
    out = write_experiment(tmp_path / "exp", seeds=(0,))
    exp = experiment_inputs(out)
    cmp = compare(exp.paths, names=exp.names, baseline="x-x-mono", samples=200, seed=1)
    plain = compare(exp.paths, names=["base", "x-x-mono", "x-y", "hybrid"], baseline="x-x-mono", samples=200,
                    seed=1)
    assert cmp.to_json()["interval"] == "query-level only" and cmp.test == "randomization"
    assert cmp.records == plain.records
    assert "query-level only" in render(cmp, "table")


def test_cli_on_an_experiment_dir_every_format(tmp_path, capsys):
    out = write_experiment(tmp_path / "exp")
    cmp_dir = tmp_path / "cmp"
    assert main(["compare", str(out), "--baselines", "x-x-mono,base", "--samples", "200", "--out", str(cmp_dir),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["interval"] == "two-level (seeds, queries)" and doc["test"] == "two-level"
    assert [s["name"] for s in doc["systems"]] == ["base", "x-x-mono", "x-y", "hybrid"]
    txt = (cmp_dir / "compare.txt").read_text()
    assert "±" in txt and "x-x-mono (baseline¹)" in txt and "base (baseline²)" in txt and "▲²" in txt
    assert "two-level (seeds, queries)" in txt
    assert "$^{\\uparrow2}$" in (cmp_dir / "compare.tex").read_text()
    assert "| hybrid |" in (cmp_dir / "compare.md").read_text()
    # without --baseline(s): the experiment's own baselines
    assert main(["compare", str(out), "--samples", "50", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["baselines"] == ["x-x-mono"]


# ----------------------------------------------------------------------------- bad input


def _no_output(args, capsys, tmp_path):
    out = tmp_path / "never"
    err = _cli_error([*args, "--out", str(out), "--samples", "20"], capsys)
    assert not out.exists()
    return err


def test_bad_experiment_inputs(tmp_path, capsys):
    out = write_experiment(tmp_path / "exp", seeds=(0, 1))
    assert "'mono' is not one of the systems" in _no_output(["compare", str(out), "--baselines", "x-y,mono"], capsys,
                                                             tmp_path)
    assert "--baseline: 'x-y@0'" in _no_output(["compare", str(out), "--baseline", "x-y@0"], capsys, tmp_path)
    err = _no_output(["compare", str(out), "--dataset", "mlqa-r"], capsys, tmp_path)
    assert "--dataset" in err and "not an evaluation dataset" in err
    assert "no baseline named" in _no_output(["compare", str(out), "--baselines", ","], capsys, tmp_path)
    err = _no_output(["compare", str(out), "--test", "randomization"], capsys, tmp_path)
    assert "--test" in err and "queries only" in err
    plain = [str(out / "x-y" / "seed-0" / "scores" / "xquad-r"), str(out / "base" / "scores" / "xquad-r")]
    assert "several seeds" in _no_output(["compare", *plain, "--test", "two-level"], capsys, tmp_path)
    assert "--dataset" in _no_output(["compare", *plain, "--dataset", "xquad-r"], capsys, tmp_path)
    err = _no_output(["compare", *plain, plain[0], "--names", "hybrid@1,base,hybrid@1"], capsys, tmp_path)
    assert "'hybrid@1' given twice" in err
    assert "at least two systems" in _no_output(["compare", *plain, "--names", "hybrid@0,hybrid@1"], capsys, tmp_path)


def test_experiment_from_another_dataset_or_mixed(tmp_path, capsys):
    other = write_experiment(tmp_path / "other", seeds=(0, 1), meta={"dataset": "mlqa-r"})
    err = _no_output(["compare", str(other)], capsys, tmp_path)
    assert "metadata.dataset" in err and "another dataset" in err
    mixed = write_experiment(tmp_path / "mixed", seeds=(0, 1))
    write_per_query(mixed / "x-y" / "seed-1" / "scores" / "xquad-r", synth_rows(list(LANGS), 30, 5),
                    checksum="sha-other", meta={"dataset": "xquad-r"})
    record_scores(mixed)  # an experiment whose runs were scored on different data
    assert "dataset_checksum" in _no_output(["compare", str(mixed)], capsys, tmp_path)
    # an experiment next to a run of another dataset
    good = write_experiment(tmp_path / "good", seeds=(0, 1))
    foreign = write_per_query(tmp_path / "foreign" / "scores", synth_rows(list(LANGS), 30, 6), checksum="sha-mlqa")
    assert "different datasets" in _no_output(["compare", str(good), str(foreign.parent)], capsys, tmp_path)


def test_experiment_without_per_query_files_or_results(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.json").write_text(json.dumps({"format": "fastir-experiment/2",
                                                    "settings": {"eval_datasets": ["xquad-r"]}}))
    (empty / "x-y" / "seed-0" / "scores" / "xquad-r").mkdir(parents=True)
    err = _no_output(["compare", str(empty)], capsys, tmp_path)
    assert "per_query.parquet" in err and "no run of 'xquad-r'" in err
    (empty / "results.json").write_text(json.dumps({"format": "fastir-experiment/1"}))
    assert "fastir-experiment/2" in _no_output(["compare", str(empty)], capsys, tmp_path)
    two = write_experiment(tmp_path / "two", seeds=(0, 1))
    doc = json.loads((two / "results.json").read_text())
    doc["settings"]["eval_datasets"] = ["xquad-r", "mlqa-r"]
    (two / "results.json").write_text(json.dumps(doc))
    assert "choose one" in _no_output(["compare", str(two)], capsys, tmp_path)
    (two / "hybrid" / "seed-1" / "scores" / "xquad-r" / "per_query.parquet").unlink()  # an unfinished run
    err = _no_output(["compare", str(two), "--dataset", "xquad-r"], capsys, tmp_path)
    assert "hybrid@1" in err and "missing" in err
    write_experiment(two, seeds=(1,), strategies=("hybrid",))  # finished now (results.json: xquad-r only)
    record_scores(two)
    assert main(["compare", str(two), "--dataset", "xquad-r", "--samples", "20"]) == 0


def test_seed_noise_is_not_significant_where_one_seed_would_be(tmp_path):
    """The issue's case: two recipes equal in expectation, whose seeds differ by more than the query
    noise. One seed each: 'significant' (in either direction, depending on the seed); three seeds each:
    not, because the seed spread is part of the test."""
    out = tmp_path / "exp"
    offsets = {"x-y": (0.03, -0.03, 0.0), "hybrid": (-0.03, 0.03, 0.0)}
    for strategy, offs in offsets.items():
        for s, off in enumerate(offs):
            write_per_query(out / strategy / f"seed-{s}" / "scores" / "xquad-r",
                            synth_rows(list(LANGS), 60, 50 + s + 10 * len(strategy), shift=off, noise=0.02),
                            meta={"dataset": "xquad-r"})
    (out / "results.json").write_text(json.dumps({"format": "fastir-experiment/2", "settings": {
        "strategies": ["x-y", "hybrid"], "seeds": [0, 1, 2], "eval_datasets": ["xquad-r"]}}))
    record_scores(out)
    seeded = compare(experiment_inputs(out).paths, names=experiment_inputs(out).names, baseline="x-y", samples=500)
    assert not record(seeded, "hybrid", "cross", "map")["significant"]
    for s in (0, 1):
        one = compare([out / "x-y" / f"seed-{s}" / "scores" / "xquad-r", out / "hybrid" / f"seed-{s}" / "scores" /
                       "xquad-r"], names=["x-y", "hybrid"], samples=500)
        rec = record(one, "hybrid", "cross", "map")
        assert rec["significant"] and rec["better"] == (s == 1)


def test_only_the_runs_results_json_lists_and_scored_count(tmp_path, capsys):
    # issue 31, item 5: a stray seed folder is no seed of the experiment; a seed folder holding
    # another experiment's scores, or an experiment without digests, is refused
    exp = write_experiment(tmp_path / "exp", strategies=("x-y",), seeds=(0, 1))
    other = write_experiment(tmp_path / "other", strategies=("x-y",), seeds=(0, 1, 7), n=31)
    (exp / "x-y" / "seed-7").symlink_to(other / "x-y" / "seed-7", target_is_directory=True)
    assert experiment_inputs(exp).names == ["base", "x-y@0", "x-y@1"]
    target = exp / "x-y" / "seed-1" / "scores" / "xquad-r" / "per_query.parquet"
    target.write_bytes((other / "x-y" / "seed-1" / "scores" / "xquad-r" / "per_query.parquet").read_bytes())
    err = _cli_error(["compare", str(exp)], capsys)
    assert "seed-1/scores/xquad-r/per_query.parquet: is not the file this experiment scored for x-y@1" in err
    doc = json.loads((other / "results.json").read_text())
    del doc["runs"]["x-y@0"]["scores_sha256"]
    (other / "results.json").write_text(json.dumps(doc))
    err = _cli_error(["compare", str(other)], capsys)
    assert "runs.x-y@0.scores_sha256: missing: this experiment predates score digests" in err
