"""The stages of one ``fastir experiment`` run (one strategy and seed, or the untrained ``base``):
train, embed each evaluation dataset, score it; each stage reused when a previous call finished it.

A run's directory and what it holds are laid out by :mod:`fastir.runs.experiment_dir`.

Reading back what training recorded: the realised batch kinds and the learning curve come from
``train.jsonl`` (one ``train`` line per step, one ``eval`` line per held-out evaluation).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from fastir.runs.experiment_dir import STAGES_JSON, model_dir, run_dir, run_name, scores_dir
from fastir.train.config import TrainConfig

SCORE_KS = (1, 5, 10)  # map, mrr, recall@1/5/10 and rank distance: every metric the report shows
SCORE_METRICS = ("map", "mrr", "recall@1", "recall@5", "recall@10", "rank_distance")  # what SCORE_KS scores


@dataclass
class RunSpec:
    """One row of the experiment: a strategy trained from one seed, or the untrained model."""

    strategy: str  # a batch strategy, or BASE
    seed: int | None  # None for BASE
    root: Path
    train: TrainConfig | None  # None for BASE

    @property
    def name(self) -> str:
        """The run's name in the comparison: ``strategy@seed`` (``base`` for the untrained model)."""
        return run_name(self.strategy, self.seed)

    @property
    def model_dir(self) -> Path:
        return model_dir(self.root)

    def run_dir(self, ds_key: str) -> Path:
        return run_dir(self.root, ds_key)

    def scores_dir(self, ds_key: str) -> Path:
        return scores_dir(self.root, ds_key)


# ------------------------------------------------------------------------------------------ stages


def read_stages(spec: RunSpec) -> dict:
    path = spec.root / STAGES_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _record_stage(spec: RunSpec, key: str, seconds: float) -> None:
    """Keep the wall time of the call that did the work (a reused stage keeps its old time)."""
    from fastir.core.outputs import atomic_file

    stages = read_stages(spec)
    stages[key] = round(seconds, 3)
    with atomic_file(spec.root / STAGES_JSON, "w") as fh:
        json.dump(stages, fh, indent=2, sort_keys=True)


def train_stage(spec: RunSpec, base_model: str) -> str:
    """Train (or resume, or reuse) the run's model; returns the folder to embed (``base_model`` for base)."""
    if spec.train is None:
        return base_model
    from fastir.train.loop import train

    t0 = time.perf_counter()
    result = train(spec.train)
    if result.start_step < result.steps:  # this call trained (the rest of) the run
        before = read_stages(spec).get("train", 0.0) if result.start_step > 0 else 0.0
        _record_stage(spec, "train", before + time.perf_counter() - t0)
    return str(result.final)


def embed_stage(spec: RunSpec, ds: str, ds_key: str, opts: dict) -> Path:
    """Embed ``ds`` with the run's model into ``runs/<ds_key>/`` (reused when complete)."""
    from fastir.encoding.embed import EmbedOptions, embed_dataset

    run_dir = spec.run_dir(ds_key)
    t0 = time.perf_counter()
    result = embed_dataset(EmbedOptions(dataset=ds, out=str(run_dir), resume=True, **opts))
    if not result.already_complete:
        _record_stage(spec, f"embed:{ds_key}", time.perf_counter() - t0)
    return run_dir


def score_stage(spec: RunSpec, ds_key: str, extra: list[str] = ()) -> dict:
    """Score ``runs/<ds_key>/`` into ``scores/<ds_key>/`` with per_query.parquet (the report's
    metrics plus ``extra``); reused when the scores were computed from this very run dir and hold every
    metric asked. Returns summary.json's content."""
    from fastir.compare.inputs import held_metrics
    from fastir.eval.report import summary_json, write_scores
    from fastir.eval.result import PER_QUERY_PARQUET, SUMMARY_JSON
    from fastir.eval.score import score_run
    from fastir.runs.rundir import read_run

    run = read_run(spec.run_dir(ds_key))
    scores = spec.scores_dir(ds_key)
    if (scores / PER_QUERY_PARQUET).is_file() and (scores / SUMMARY_JSON).is_file():
        old = json.loads((scores / SUMMARY_JSON).read_text(encoding="utf-8"))
        if old.get("run") == run.meta and set(extra) <= set(held_metrics(scores / PER_QUERY_PARQUET)):
            return old  # run.json is plain JSON: no NaN to clean
    t0 = time.perf_counter()
    # Without extra metrics, exactly fastir score's default call (its outputs byte for byte).
    metrics = [*SCORE_METRICS[:-1], *extra] if extra else None
    scored = score_run(run, ks=SCORE_KS, per_query=True, metrics=metrics)
    write_scores(scored, scores, overwrite=True)
    _record_stage(spec, f"score:{ds_key}", time.perf_counter() - t0)
    return summary_json(scored)


# --------------------------------------------------------------------------- what training recorded


def read_train_log(spec: RunSpec) -> list[dict]:
    from fastir.train.loop import LOG_FILE

    path = spec.model_dir / LOG_FILE
    if spec.train is None or not path.is_file():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


def train_settings(spec: RunSpec) -> dict | None:
    """The run's training settings as its final checkpoint recorded them (defaults resolved)."""
    from fastir.train.checkpoint import FINAL, TRAIN_JSON

    path = spec.model_dir / FINAL / TRAIN_JSON
    if spec.train is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("settings")


def batch_shares(log: list[dict]) -> dict:
    """The realised batch kinds of the run (one ``train`` line per step): counts and shares."""
    kinds: dict[str, int] = {}
    for rec in log:
        if rec.get("event") == "train":
            kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
    steps = sum(kinds.values())
    return {"steps": steps, "kinds": kinds,
            "shares": {k: round(n / steps, 6) for k, n in kinds.items()} if steps else {}}


def learning_curve(log: list[dict]) -> dict:
    """Training loss per step and the held-out evaluations (step, pooled mAP, ...) of ``train.jsonl``."""
    train = [rec for rec in log if rec.get("event") == "train"]
    evals = [rec for rec in log if rec.get("event") == "eval"]
    return {"step": [r["step"] for r in train], "loss": [r["loss"] for r in train],
            "eval": [{k: v for k, v in r.items() if k != "event"} for r in evals]}


def train_seconds(log: list[dict]) -> dict:
    """Compute time recorded in ``train.jsonl`` (summed over resumed calls): steps and evaluations."""
    return {"steps_s": round(sum(r.get("step_time_s", 0.0) for r in log if r.get("event") == "train"), 3),
            "eval_s": round(sum(r.get("eval_time_s", 0.0) for r in log if r.get("event") == "eval"), 3)}
