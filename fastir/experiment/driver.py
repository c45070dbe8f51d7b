"""``fastir experiment``: train several batch strategies from several seeds, embed and score each,
compare them against one or more baselines, and write one report.

For each strategy S and seed s (and, with ``include_base``, the untrained model as ``base``)::

    OUT/S/seed-s/model/            fastir train output (checkpoint-NNNNNN/, final/, train.jsonl)
    OUT/S/seed-s/runs/<dataset>/   fastir embed run dir of final/ on each evaluation dataset
    OUT/S/seed-s/scores/<dataset>/ fastir score output, with per_query.parquet
    OUT/base/{runs,scores}/<dataset>/
    OUT/results.json               every setting, number, timing, batch share and curve (fastir-experiment/2)
    OUT/report.md, OUT/figures/    the report (fastir.experiment.report)

Every strategy gets the same settings, so within a seed they differ only in how batches are drawn.
Before any work every option, strategy and dataset is checked and the training tables are checked
against every evaluation dataset (and the held-out set, :mod:`fastir.data.overlap`): an overlap
refuses the run unless ``allow_overlap``; the counts go into ``results.json`` either way. Every
model, the base included, is embedded at ``eval_max_length`` (default: the base model's own length),
whatever training's ``max_length``. Re-running the same command resumes: finished training runs,
run dirs and scores are reused per strategy and seed (training refuses to resume from a run with
different settings), so a new seed can be added to a finished experiment.

Learning curves: with ``eval_every`` > 0 each training run evaluates the held-out set (default: the
first evaluation dataset at ``eval_langs``) every ``eval_every`` steps with
:mod:`fastir.train.heldout`. The reported model is always the last step: curves are descriptive,
never used to pick a checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from fastir.core.errors import InputError
from fastir.core.numbers import parse_int
from fastir.core.outputs import check_not_a_link, check_not_an_input
from fastir.sampling.choices import STRATEGIES
from fastir.train.config import TrainConfig
from fastir.experiment.stages import RunSpec
from fastir.eval.result import PER_QUERY_PARQUET
from fastir.runs.experiment_dir import BASE, RESULTS_FORMAT, model_dir, run_root, scores_digest

MAX_SEED = 2**63 - 1  # torch.manual_seed's range
# The TrainConfig fields the experiment sets for each run itself (its strategy, seed and model dir, and
# its own options --data, --model, --heldout, ...): every other one comes from ``train``, and
# ``fastir experiment`` offers each as an option (the ``experiment`` verb of their metadata).
PER_RUN = ("data", "model", "out", "strategy", "seed", "resume", "overwrite", "progress", "eval_data", "eval_every",
           "eval_langs", "eval_max_queries", "eval_max_length", "allow_overlap")


@dataclass
class ExperimentConfig:
    data: list[str]
    model: str
    out: str
    strategies: list[str] = field(default_factory=lambda: ["x-x-mono", "x-y", "hybrid"])
    seeds: list[int] | None = None  # None: one seed, train's "seed" (default 0)
    baselines: list[str] | None = None  # strategies (or "base") the others are tested against; None: the first
    eval_datasets: list[str] = field(default_factory=lambda: ["xquad-r"])
    eval_langs: list[str] | None = None
    include_base: bool = False
    candidates: str = "sentence"  # fastir embed --candidates
    embed_dtype: str = "auto"
    store: str = "fp16"  # fastir embed --store: the stored embeddings' dtype
    eval_max_length: int | None = None  # None: the base model's own length (training's max_length does not apply)
    eval_every: int = 0  # held-out pooled mAP every N training steps (0: loss curve only)
    heldout: str | None = None  # held-out data of the curves; None: the first evaluation dataset
    heldout_max_queries: int = 0  # 0: every held-out query
    allow_overlap: bool = False  # run even if the training tables overlap an evaluation dataset
    samples: int = 10000  # compare's bootstrap / randomization resamples
    metrics: list[str] = field(default_factory=list)  # registry metrics scored and compared beside the report's
    compare_seed: int = 0
    train: dict = field(default_factory=dict)  # any other TrainConfig field (steps, lr, ...)
    progress: bool = True


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 0,1,2`` -> [0, 1, 2]; None stays None. Checks are those of :func:`check_seeds`."""
    if text is None:
        return None
    if not text.strip():
        raise InputError(None, "--seeds", "no seed given")
    seeds = []
    for item in text.split(","):
        seeds.append(parse_int(item, "--seeds", lo=0, hi=MAX_SEED))
    check_seeds(seeds)
    return seeds


def check_seeds(seeds: list[int]) -> None:
    if not seeds:
        raise InputError(None, "--seeds", "no seed given")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise InputError(None, "--seeds", f"{s!r} is not an integer in [0, 2**63 - 1]")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise InputError(None, "--seeds", f"seed {repeated[0]} is listed twice")


def resolved_seeds(cfg: ExperimentConfig) -> list[int]:
    if cfg.seeds is None:
        return [int(cfg.train.get("seed", 0))]
    if "seed" in cfg.train:
        raise InputError(None, "--seeds", "give --seed or --seeds, not both")
    check_seeds(list(cfg.seeds))
    return list(cfg.seeds)


def resolved_baselines(cfg: ExperimentConfig) -> list[str]:
    """``baselines`` checked against the strategies (``base`` only with ``include_base``)."""
    if cfg.baselines is None:
        return list(cfg.strategies[:1])
    if not cfg.baselines:
        raise InputError(None, "--baselines", "no baseline given")
    known = list(cfg.strategies) + ([BASE] if cfg.include_base else [])
    for b in cfg.baselines:
        if b not in known:
            hint = " (add --include-base to compare against the untrained model)" if b == BASE else ""
            raise InputError(None, "--baselines", f"{b!r} is not among the strategies {', '.join(known)}{hint}")
    if len(set(cfg.baselines)) != len(cfg.baselines):
        raise InputError(None, "--baselines", "a baseline is listed twice")
    return list(cfg.baselines)


def _check_strategies(cfg: ExperimentConfig) -> None:
    if not cfg.strategies:
        raise InputError(None, "--strategies", "no strategy given")
    bad = [s for s in cfg.strategies if s not in STRATEGIES]
    if bad:
        raise InputError(None, "--strategies", f"unknown strategy {bad[0]!r}; choose from {', '.join(STRATEGIES)}")
    if len(set(cfg.strategies)) != len(cfg.strategies):
        raise InputError(None, "--strategies", "a strategy is listed twice")
    if not cfg.eval_datasets:
        raise InputError(None, "--eval", "no evaluation dataset given")
    _check_eval_keys(cfg.eval_datasets)
    unknown = set(cfg.train) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise InputError(None, "train", f"unknown training setting(s) {', '.join(sorted(unknown))}")
    own = {"eval_data", "eval_every", "eval_langs", "eval_max_queries", "eval_max_length", "allow_overlap"}
    if own & set(cfg.train):
        raise InputError(None, "train", f"{sorted(own & set(cfg.train))[0]} is an experiment setting, not a train one")


def _check_heldout(cfg: ExperimentConfig) -> str | None:
    """The held-out data of the learning curves (None when ``eval_every`` is 0)."""
    if cfg.eval_every < 0:
        raise InputError(None, "--eval-every", f"must be non-negative, found {cfg.eval_every}")
    if cfg.samples < 1:
        raise InputError(None, "--samples", f"must be positive, found {cfg.samples}")
    if cfg.heldout_max_queries < 0:
        raise InputError(None, "--heldout-max-queries", f"must be non-negative, found {cfg.heldout_max_queries}")
    if not cfg.eval_every:
        if cfg.heldout is not None:
            raise InputError(None, "--heldout", "needs --eval-every N (the steps between held-out evaluations)")
        return None
    return cfg.heldout or cfg.eval_datasets[0]


@dataclass
class Plan:
    """What an experiment will do, every input checked."""

    specs: list[RunSpec]
    seeds: list[int]
    baselines: list[str]
    heldout: str | None
    eval_max_length: int
    overlap: dict
    train_langs: list[str]  # the training tables' languages: the report sets the others apart


def plan_experiment(cfg: ExperimentConfig) -> Plan:
    """Every strategy, seed, dataset and option checked before the first long step starts: the
    training configs per strategy and seed, the evaluation length and the zero-shot overlap counts."""
    _check_strategies(cfg)
    seeds = resolved_seeds(cfg)
    baselines = resolved_baselines(cfg)
    heldout = _check_heldout(cfg)
    extra_metrics(cfg)
    out = Path(cfg.out)
    check_not_an_input(out, [*cfg.data, cfg.model, *cfg.eval_datasets])
    check_not_a_link(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "output path exists and is not a directory")
    eval_max_length = _eval_max_length(cfg)
    specs = [RunSpec(BASE, None, run_root(out, BASE, None), None)] if cfg.include_base else []
    for seed in seeds:
        specs += [RunSpec(s, seed, run_root(out, s, seed), _train_config(cfg, s, seed, out, heldout))
                  for s in cfg.strategies]
    from fastir.data.registry import open_dataset
    from fastir.train.config import validate

    for spec in specs:
        if spec.train is not None:
            validate(dataclasses.replace(spec.train, resume=False))
    train_langs = _check_samplers([spec.train for spec in specs if spec.train is not None and spec.seed == seeds[0]])
    for ds in cfg.eval_datasets:
        open_dataset(ds, langs=cfg.eval_langs)
    if heldout is not None and heldout not in cfg.eval_datasets:
        from fastir.train.heldout import load_eval_set

        load_eval_set(heldout, langs=cfg.eval_langs)
    from fastir.data.overlap import guard

    checked = list(cfg.eval_datasets) + ([heldout] if heldout is not None and heldout not in cfg.eval_datasets else [])
    overlap = guard(cfg.data, checked, allow=cfg.allow_overlap)
    return Plan(specs, seeds, baselines, heldout, eval_max_length, overlap, train_langs)


def extra_metrics(cfg: ExperimentConfig) -> list[str]:
    """``--metrics``: registry names (e.g. ``ndcg@10,same_lang@10,lang_jsd@10``) scored, compared and
    reported beside the report's own (map, mrr, R@1/5/10, rank distance); checked before any work."""
    if not cfg.metrics:
        return []
    from fastir.eval.metrics import parse_metrics
    from fastir.experiment.stages import SCORE_METRICS

    return [m.name for m in parse_metrics(cfg.metrics, option="--metrics") if m.name not in SCORE_METRICS]


def run_experiment(cfg: ExperimentConfig) -> dict:
    """Train, embed and score every strategy and seed, compare, report; returns (and writes)
    ``results.json``'s content."""
    from fastir.experiment.stages import embed_stage, score_stage, train_stage

    plan = plan_experiment(cfg)
    summaries: dict[str, dict[str, dict]] = {}
    for spec in plan.specs:
        model = train_stage(spec, cfg.model)
        summaries[spec.name] = {}
        for ds in cfg.eval_datasets:
            embed_stage(spec, ds, ds_key(ds), _embed_options(cfg, spec, model, plan))
            summaries[spec.name][ds_key(ds)] = score_stage(spec, ds_key(ds), extra_metrics(cfg))
    from fastir.experiment.report import run_comparisons, write_report

    results = _results(cfg, plan, summaries)
    results["compare"], results["compare_s"] = run_comparisons(
        plan.specs, [ds_key(d) for d in cfg.eval_datasets], plan.baselines, samples=cfg.samples,
        seed=cfg.compare_seed, extra=extra_metrics(cfg))
    write_report(results, Path(cfg.out))
    return results


def _embed_options(cfg: ExperimentConfig, spec: RunSpec, model: str, plan: Plan) -> dict:
    t = spec.train or next(s.train for s in plan.specs if s.train is not None)
    return dict(model=model, langs=cfg.eval_langs,
                pooling=t.pooling,  # None: the base folder's default, which training recorded too
                query_prefix=t.query_prefix, passage_prefix=t.passage_prefix, candidates=cfg.candidates,
                max_length=plan.eval_max_length, device=t.device, dtype=cfg.embed_dtype, store=cfg.store,
                progress=cfg.progress)


def _results(cfg: ExperimentConfig, plan: Plan, summaries: dict) -> dict:
    from fastir.experiment.stages import (
        batch_shares,
        learning_curve,
        read_stages,
        read_train_log,
        train_seconds,
        train_settings,
    )

    runs = {}
    for spec in plan.specs:
        log = read_train_log(spec)
        runs[spec.name] = {
            "strategy": spec.strategy, "seed": spec.seed, "dir": str(spec.root.relative_to(Path(cfg.out))),
            "stages_s": read_stages(spec), "train_log_s": train_seconds(log),
            "train_settings": train_settings(spec),
            "batches": batch_shares(log) if spec.train is not None else None,
            "curve": learning_curve(log) if spec.train is not None else None,
            "results": {ds: numbers(summary["summary"]) for ds, summary in summaries[spec.name].items()},
            "scores_sha256": {ds: scores_digest(spec.scores_dir(ds) / PER_QUERY_PARQUET)
                              for ds in summaries[spec.name]},
        }
    return {"format": RESULTS_FORMAT, "settings": _settings(cfg, plan), "overlap": plan.overlap,
            "names": [s.name for s in plan.specs], "runs": runs}


def _settings(cfg: ExperimentConfig, plan: Plan) -> dict:
    """Every setting of the experiment, resolved, plus each strategy's recorded training settings."""
    s = dataclasses.asdict(cfg)
    s.pop("progress")
    s.update(seeds=plan.seeds, baselines=plan.baselines, heldout=plan.heldout, metrics=extra_metrics(cfg),
             train_langs=plan.train_langs,
             eval_max_length=plan.eval_max_length, eval_datasets=[ds_key(d) for d in cfg.eval_datasets])
    return s


def _eval_max_length(cfg: ExperimentConfig) -> int:
    """Every model is embedded at ``--eval-max-length``, by default the base model's own length."""
    from fastir.encoding.hf import check_max_length, model_max_lengths

    if cfg.eval_max_length is not None and cfg.eval_max_length <= 0:
        raise InputError(None, "--eval-max-length", f"must be positive, found {cfg.eval_max_length}")
    own, limit = model_max_lengths(cfg.model)
    return check_max_length(cfg.eval_max_length, own, limit, "--eval-max-length")


def _check_samplers(configs: list[TrainConfig]) -> list[str]:
    """Each strategy's data checks (e.g. x-y needs xling_ids in >= 2 languages), run before the
    first strategy trains: build its sampler over the tables (opened once) and draw one batch.
    Returns the tables' languages."""
    from fastir.sampling.sampler import BatchSampler
    from fastir.data.train_table import open_train_table

    tables = [open_train_table(p) for p in configs[0].data]
    for c in configs:
        sampler = BatchSampler(tables, strategy=c.strategy, batch_size=c.batch_size, seed=c.seed, alpha=c.alpha,
                               alpha_mode=c.alpha_mode,
                               lang_weights=c.lang_weights, source_mode=c.source_mode)
        next(iter(sampler))
    return sorted({lang for t in tables for lang in t.langs})


def _train_config(cfg: ExperimentConfig, strategy: str, seed: int, out: Path, heldout: str | None) -> TrainConfig:
    kw = dict(cfg.train)
    kw.update(data=list(cfg.data), model=cfg.model, out=str(model_dir(run_root(out, strategy, seed))),
              strategy=strategy, seed=seed, resume=True, overwrite=False, progress=cfg.progress,
              eval_data=heldout, eval_every=cfg.eval_every if heldout else 0, eval_langs=cfg.eval_langs,
              eval_max_queries=cfg.heldout_max_queries, eval_max_length=cfg.eval_max_length,
              allow_overlap=cfg.allow_overlap)
    return TrainConfig(**kw)


def ds_key(ds: str) -> str:
    """An evaluation dataset's key: its folder name under each run's ``runs/`` and ``scores/``."""
    return Path(ds).name or str(ds)


def _check_eval_keys(datasets: list[str]) -> None:
    """Every evaluation dataset has a key of its own that stays inside ``runs/`` and ``scores/``,
    checked before any training (two datasets of one key would score into one folder)."""
    seen: dict[str, str] = {}
    for ds in datasets:
        key = ds_key(ds)
        if key in ("", ".", "..") or "/" in key or "\0" in key:
            raise InputError(None, "--eval", f"{ds!r}: its folder name {key!r} cannot name runs/<dataset>/; "
                                             "give the dataset's own folder")
        if key in seen:
            raise InputError(None, "--eval", f"{seen[key]!r} and {ds!r} share the folder name {key!r} "
                                             "(runs/<name>/, scores/<name>/): give each evaluation dataset its own")
        seen[key] = ds


SETTINGS = ("mono", "cross", "multi")
TABLE_METRICS = ("map", "mrr", "recall@1", "recall@10")


def numbers(summary: dict) -> dict:
    """The report's metrics per setting plus the macro rank distance, from a fastir score summary."""
    from fastir.eval.metrics import RANK_DISTANCE

    row = {f"{key}_{name}": (summary.get(key) or {}).get(name) for key in SETTINGS for name in TABLE_METRICS}
    row[RANK_DISTANCE.name] = (summary.get(RANK_DISTANCE.name) or {}).get("macro")
    row["micro_multi_map"] = summary.get("micro_multi_map")
    return row
