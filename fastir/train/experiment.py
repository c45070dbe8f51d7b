"""``fastir experiment``: train several batch strategies from one seed, embed and score each,
and print the comparison shaped like Tables 1 and 2 of arXiv 2408.10536.

For each strategy S (and, with ``include_base``, the untrained starting model as row ``base``)::

    OUT/S/model/            fastir train output (checkpoint-NNNNNN/, final/, train.jsonl)
    OUT/S/runs/<dataset>/   fastir embed run dir of final/ on each evaluation dataset
    OUT/S/scores/<dataset>/ fastir score output (summary.json, pairs.csv, ...)
    OUT/results.json        every number of the tables below, plus the settings
    OUT/tables.md           the tables as Markdown

Every strategy gets the same settings and seed, so they differ only in how batches are drawn.
Before any work the training tables are checked against every evaluation dataset
(:mod:`fastir.data.overlap`): an overlap refuses the run unless ``allow_overlap``; the counts go
into ``results.json`` either way. Every model, the base included, is embedded at
``eval_max_length`` (default: the base model's own length), whatever training's ``max_length``.
Re-running the same command resumes: finished training runs, run dirs and scores are reused
(training refuses to resume from a run with different settings).

Table 1: mAP per evaluation dataset for the mono / cross / multi summaries of ``fastir score``
(Mo., Cr., Mul.; defined in docs/score.md). Table 2: R@1 for the same three settings and the macro
rank distance (lower is better).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from fastir.errors import InputError
from fastir.train.choices import STRATEGIES
from fastir.train.config import TrainConfig

SETTINGS = (("mono", "Mo."), ("cross", "Cr."), ("multi", "Mul."))
# results.json key suffix -> registry metric of Table 1 (mAP) and Table 2 (R@1)
TABLE_METRICS = {"map": "map", "r1": "recall@1"}
BASE = "base"


@dataclass
class ExperimentConfig:
    data: list[str]
    model: str
    out: str
    strategies: list[str] = field(default_factory=lambda: ["x-x-mono", "x-y", "hybrid"])
    eval_datasets: list[str] = field(default_factory=lambda: ["xquad-r"])
    eval_langs: list[str] | None = None
    include_base: bool = False
    candidates: str = "sentence"  # fastir embed --candidates
    embed_dtype: str = "auto"
    eval_max_length: int | None = None  # None: the base model's own length (training's max_length does not apply)
    allow_overlap: bool = False  # run even if the training tables overlap an evaluation dataset
    train: dict = field(default_factory=dict)  # any other TrainConfig field (steps, lr, seed, ...)
    progress: bool = True


def _check_everything(cfg: ExperimentConfig, out: Path) -> tuple[dict, int, dict | None]:
    """Every strategy, dataset and option checked before the first long step starts: the training
    configs per strategy, the evaluation length and the zero-shot overlap counts."""
    if not cfg.strategies:
        raise InputError(None, "--strategies", "no strategy given")
    bad = [s for s in cfg.strategies if s not in STRATEGIES]
    if bad:
        raise InputError(None, "--strategies", f"unknown strategy {bad[0]!r}; choose from {', '.join(STRATEGIES)}")
    if len(set(cfg.strategies)) != len(cfg.strategies):
        raise InputError(None, "--strategies", "a strategy is listed twice")
    if not cfg.eval_datasets:
        raise InputError(None, "--eval", "no evaluation dataset given")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(cfg.train) - fields
    if unknown:
        raise InputError(None, "train", f"unknown training setting(s) {', '.join(sorted(unknown))}")
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "output path exists and is not a directory")
    # Validate every training config (and the datasets) before the first long step starts.
    configs = {s: _train_config(cfg, s, out) for s in cfg.strategies}
    from fastir.data.registry import open_dataset
    from fastir.train.config import validate

    for c in configs.values():
        validate(dataclasses.replace(c, resume=False))
    _check_samplers(list(configs.values()))
    for ds in cfg.eval_datasets:
        open_dataset(ds, langs=cfg.eval_langs)
    eval_max_length = _eval_max_length(cfg)
    from fastir.data.overlap import guard

    overlap = guard(cfg.data, cfg.eval_datasets, allow=cfg.allow_overlap)
    return configs, eval_max_length, overlap


def run_experiment(cfg: ExperimentConfig) -> dict:
    """Train, embed and score every strategy; returns (and writes) ``results.json``'s content."""
    from fastir.encoding.embed import EmbedOptions, embed_dataset
    from fastir.eval.score import score_run
    from fastir.eval.report import write_scores

    out = Path(cfg.out)
    configs, eval_max_length, overlap = _check_everything(cfg, out)
    from fastir.train.loop import train

    rows: dict[str, dict] = {}
    models = {BASE: cfg.model} if cfg.include_base else {}
    for strategy, tcfg in configs.items():
        result = train(tcfg)
        models[strategy] = str(result.final)
    for name, model in models.items():
        rows[name] = {}
        for ds in cfg.eval_datasets:
            ds_key = _ds_key(ds)
            run_dir = out / name / "runs" / ds_key
            t = configs.get(name) or next(iter(configs.values()))
            embed_dataset(EmbedOptions(
                dataset=ds, model=model, out=str(run_dir), langs=cfg.eval_langs,
                pooling=t.pooling,  # None: the base folder's default, which training recorded too
                query_prefix=t.query_prefix, passage_prefix=t.passage_prefix, candidates=cfg.candidates,
                max_length=eval_max_length, device=t.device, dtype=cfg.embed_dtype, resume=True,
                progress=cfg.progress))
            scored = score_run(run_dir, ks=(1, 5, 10))
            write_scores(scored, out / name / "scores" / ds_key, overwrite=True)
            rows[name][ds_key] = _numbers(scored.summary)
    results = {"format": "fastir-experiment/1", "model": cfg.model, "data": cfg.data,
               "strategies": list(models), "eval_datasets": [_ds_key(d) for d in cfg.eval_datasets],
               "train_settings": cfg.train, "eval_max_length": eval_max_length, "overlap": overlap,
               "results": rows}
    from fastir.atomic import atomic_file

    with atomic_file(out / "results.json", "w") as fh:
        json.dump(results, fh, indent=2)
    with atomic_file(out / "tables.md", "w") as fh:
        fh.write(format_tables(results) + "\n")
    return results


def _eval_max_length(cfg: ExperimentConfig) -> int:
    """Every model is embedded at ``--eval-max-length``, by default the base model's own length."""
    from fastir.encoding.hf import check_max_length, model_max_lengths

    if cfg.eval_max_length is not None and cfg.eval_max_length <= 0:
        raise InputError(None, "--eval-max-length", f"must be positive, found {cfg.eval_max_length}")
    own, limit = model_max_lengths(cfg.model)
    return check_max_length(cfg.eval_max_length, own, limit, "--eval-max-length")


def _check_samplers(configs: list[TrainConfig]) -> None:
    """Each strategy's data checks (e.g. x-y needs xling_ids in >= 2 languages), run before the
    first strategy trains: build its sampler over the tables (opened once) and draw one batch."""
    from fastir.train.sampler import BatchSampler
    from fastir.train.table import open_train_table

    tables = [open_train_table(p) for p in configs[0].data]
    for c in configs:
        sampler = BatchSampler(tables, strategy=c.strategy, batch_size=c.batch_size, seed=c.seed, alpha=c.alpha,
                               alpha_mode=c.alpha_mode,
                               lang_weights=c.lang_weights, source_mode=c.source_mode)
        next(iter(sampler))


def _train_config(cfg: ExperimentConfig, strategy: str, out: Path) -> TrainConfig:
    kw = dict(cfg.train)
    kw.update(data=list(cfg.data), model=cfg.model, out=str(out / strategy / "model"), strategy=strategy,
              resume=True, overwrite=False, progress=cfg.progress)
    return TrainConfig(**kw)


def _ds_key(ds: str) -> str:
    return Path(ds).name or str(ds)


def _numbers(summary: dict) -> dict:
    """The table metrics per setting plus the macro rank distance, from a fastir score summary."""
    from fastir.eval.metrics import RANK_DISTANCE

    row = {}
    for key, _ in SETTINGS:
        cell = summary.get(key) or {}
        for suffix, name in TABLE_METRICS.items():
            row[f"{key}_{suffix}"] = cell.get(name)
    rd = summary.get(RANK_DISTANCE.name) or {}
    row[RANK_DISTANCE.name] = rd.get("macro")
    row["micro_multi_map"] = summary.get("micro_multi_map")
    return row


def format_tables(results: dict) -> str:
    """Table 1 (mAP) and Table 2 (R@1, rank distance) as Markdown, values x100 except rank distance."""
    from fastir.eval.metrics import RANK_DISTANCE, metric

    (k1, m1), (k2, m2) = ((k, metric(name)) for k, name in TABLE_METRICS.items())
    names = results["strategies"]
    datasets = results["eval_datasets"]

    def pct(x):
        return "–" if x is None else f"{100 * x:.2f}"

    def table(title, columns):
        head = ["strategy"] + [f"{ds} {label}" for ds in datasets for label, _ in columns]
        lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in names:
            cells = [name] + [fmt(results["results"][name][ds].get(key)) for ds in datasets for _, (key, fmt) in columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    t1 = table(f"Table 1: {m1.label} (x100)", [(label, (f"{key}_{k1}", pct)) for key, label in SETTINGS])
    t2 = table(f"Table 2: {m2.label} (x100) and rank distance (lower is better)",
               [(f"{m2.label} {label}", (f"{key}_{k2}", pct)) for key, label in SETTINGS]
               + [("RD", (RANK_DISTANCE.name, lambda x: "–" if x is None else f"{x:.2f}"))])
    return t1 + "\n\n" + t2
