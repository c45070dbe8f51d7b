"""What experiment reads back from a training run's train.jsonl: batch kinds, curves, compute time."""

from __future__ import annotations

from pathlib import Path

from fastir.experiment.stages import RunSpec, batch_shares, learning_curve, train_seconds
from fastir.runs.experiment_dir import run_root

LOG = [
    {"event": "eval", "step": 0, "eval_pooled_map": 0.1, "eval_time_s": 1.5},
    {"event": "train", "step": 1, "loss": 2.0, "kind": "mono", "step_time_s": 0.5},
    {"event": "train", "step": 2, "loss": 1.5, "kind": "cross", "step_time_s": 0.25},
    {"event": "train", "step": 3, "loss": 1.0, "kind": "cross", "step_time_s": 0.25},
    {"event": "eval", "step": 3, "eval_pooled_map": 0.3, "eval_time_s": 1.0},
]


def test_batch_shares_count_the_logged_kinds():
    assert batch_shares(LOG) == {"steps": 3, "kinds": {"mono": 1, "cross": 2},
                                 "shares": {"mono": round(1 / 3, 6), "cross": round(2 / 3, 6)}}
    assert batch_shares([]) == {"steps": 0, "kinds": {}, "shares": {}}


def test_learning_curve_and_compute_time():
    curve = learning_curve(LOG)
    assert curve["step"] == [1, 2, 3] and curve["loss"] == [2.0, 1.5, 1.0]
    assert [(e["step"], e["eval_pooled_map"]) for e in curve["eval"]] == [(0, 0.1), (3, 0.3)]
    assert train_seconds(LOG) == {"steps_s": 1.0, "eval_s": 2.5}


def test_run_layout_and_names():
    out = Path("exp")
    assert run_root(out, "hybrid", 2) == out / "hybrid" / "seed-2"
    assert run_root(out, "base", None) == out / "base"
    spec = RunSpec("hybrid", 2, run_root(out, "hybrid", 2), None)
    assert spec.name == "hybrid@2"
    assert spec.scores_dir("xquad-r") == out / "hybrid" / "seed-2" / "scores" / "xquad-r"
    assert RunSpec("base", None, out / "base", None).name == "base"
