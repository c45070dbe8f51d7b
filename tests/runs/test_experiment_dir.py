"""fastir.runs.experiment_dir: the layout's names, results.json written and read back, the runs found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastir.core.errors import InputError
from fastir.runs.experiment_dir import (
    BASE, RESULTS_FORMAT, RESULTS_JSON, is_experiment_dir, model_dir, read_results, run_dir, run_name, run_root,
    scan_runs, scores_digest, scores_dir, settings_of, write_results,
)


def test_paths_and_names_of_a_run():
    out = Path("exp")
    root = run_root(out, "hybrid", 2)
    assert root == out / "hybrid" / "seed-2" and run_root(out, "hybrid", None) == out / BASE
    assert (model_dir(root), run_dir(root, "xquad-r"), scores_dir(root, "xquad-r")) == (
        root / "model", root / "runs" / "xquad-r", root / "scores" / "xquad-r")
    assert (run_name("hybrid", 2), run_name("hybrid", None)) == ("hybrid@2", "base")


def test_results_round_trip_and_format_check(tmp_path):
    assert not is_experiment_dir(tmp_path)
    settings = {"eval_datasets": ["xquad-r"], "seeds": [0, 1]}
    write_results({"format": RESULTS_FORMAT, "settings": settings, "runs": {}}, tmp_path)
    assert is_experiment_dir(tmp_path) and settings_of(read_results(tmp_path)) == settings
    (tmp_path / RESULTS_JSON).write_text(json.dumps({"format": "fastir-experiment/1", "eval_datasets": ["x"]}))
    with pytest.raises(InputError, match="format: expected 'fastir-experiment/2', got 'fastir-experiment/1'"):
        read_results(tmp_path)
    (tmp_path / RESULTS_JSON).write_text(json.dumps({"format": RESULTS_FORMAT, "settings": {"eval_datasets": []}}))
    with pytest.raises(InputError, match="eval_datasets: missing or not a list"):
        read_results(tmp_path)
    (tmp_path / RESULTS_JSON).write_text("{")
    with pytest.raises(InputError, match="malformed JSON"):
        read_results(tmp_path)


def test_scan_finds_base_then_strategies_in_order_then_seeds(tmp_path):
    for name, seed in (("x-y", 1), ("hybrid", 10), ("hybrid", 2), (BASE, None), ("zzz", 0)):
        d = scores_dir(run_root(tmp_path, name, seed), "ds")
        d.mkdir(parents=True)
        (d / "per_query.parquet").write_bytes(b"")
    (tmp_path / "hybrid" / "seed-x").mkdir()  # not a seed folder
    scores_dir(run_root(tmp_path, "x-y", 3), "other").mkdir(parents=True)  # another dataset only
    found = scan_runs(tmp_path, "ds", "per_query.parquet", ["hybrid", "x-y"])
    assert [name for _, name in found] == ["base", "hybrid@2", "hybrid@10", "x-y@1", "zzz@0"]
    assert found[1][0] == tmp_path / "hybrid" / "seed-2" / "scores" / "ds" / "per_query.parquet"


def test_scores_digest_is_the_sha256_of_the_file(tmp_path):
    import hashlib

    f = tmp_path / "per_query.parquet"
    f.write_bytes(bytes(range(256)) * 5000)  # over one read block
    assert scores_digest(f) == hashlib.sha256(f.read_bytes()).hexdigest()
