"""What a training run is asked to do: :class:`TrainConfig` (each field also its command-line option),
its checks, the settings a checkpoint records (and a resume must match), and :class:`TrainResult`."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastir.core.errors import InputError
from fastir.core.options import EXPERIMENT, SAMPLE, TRAIN, cli
from fastir.encoding.device import DEVICES
from fastir.encoding.hf_folder import POOLINGS
from fastir.eval.cells import split_list
from fastir.sampling.choices import ALPHA_MODES, PRECISIONS, SOURCE_MODES, STRATEGIES
from fastir.sampling.lang_weights import parse_lang_weights
from fastir.train.checkpoint import TRAIN_JSON

# Settings that change the numbers: a resumed run must match the checkpoint on all of them.
RESUME_KEYS = (
    "data", "model", "strategy", "alpha", "batch_size", "steps", "lr", "temperature", "warmup_steps",
    "weight_decay", "max_grad_norm", "seed", "pooling", "max_length", "query_prefix", "passage_prefix",
    "lang_weights", "source_mode", "hard_negatives", "precision", "alpha_mode",
)
# Resume keys added after checkpoints were first written: a checkpoint without one used this value.
ADDED_LATER = {"alpha_mode": "random"}

# The commands offering a training option: the sampler's settings are in all three, the rest in the two that train.
SAMPLER_VERBS = (TRAIN, EXPERIMENT, SAMPLE)
TRAINING_VERBS = (TRAIN, EXPERIMENT)
ALPHA_MODE_HELP = ("random: each step is mono with probability alpha (seeded); exact: mono and cross interleaved "
                   "so the mono share is within one batch of alpha at every step.")


def _langs(text: str | None) -> list[str] | None:
    """``--eval-langs en,de`` -> ["en", "de"]; not given or empty -> None (every language)."""
    return split_list(text) if text else None


@dataclass
class TrainConfig:
    """Every setting of a training run. Each field's ``cli`` metadata is its command-line option in
    ``fastir train`` and, where it lists them, ``fastir experiment`` (every run of the experiment gets
    it) and ``fastir sample`` (:mod:`fastir.core.options`, :mod:`fastir.cli.options`)."""

    data: list[str] = field(metadata=cli(TRAIN, path=True, help=(
        "Train table (.parquet, .arrow, .jsonl); repeat for several sources.")))
    model: str = field(metadata=cli(TRAIN, help="Hub id or local folder to start from."))
    out: str = field(metadata=cli(TRAIN, path=True, help="Output dir: checkpoint-NNNNNN/, final/, train.jsonl."))
    strategy: str = field(default="hybrid", metadata=cli(TRAIN, SAMPLE, choices=STRATEGIES))
    alpha: float = field(default=0.5, metadata=cli(*SAMPLER_VERBS, help="Hybrid: probability of a mono batch."))
    alpha_mode: str = field(default="random", metadata=cli(*SAMPLER_VERBS, choices=ALPHA_MODES, help=ALPHA_MODE_HELP))
    batch_size: int = field(default=32, metadata=cli(*SAMPLER_VERBS, help="Global batch size (all ranks)."))
    steps: int = field(default=1000, metadata=cli(*SAMPLER_VERBS, per_verb={
        SAMPLE: {"default": None, "help": "Batches to draw (default: one epoch)."}}))
    lr: float = field(default=3e-5, metadata=cli(*TRAINING_VERBS))
    temperature: float = field(default=0.05, metadata=cli(*TRAINING_VERBS, help="Cosine similarity is divided by it."))
    warmup_steps: int | None = field(default=None, metadata=cli(
        *TRAINING_VERBS, help="Linear warm-up steps [default: 10% of --steps]."))
    weight_decay: float = field(default=0.01, metadata=cli(*TRAINING_VERBS))
    max_grad_norm: float = field(default=1.0, metadata=cli(*TRAINING_VERBS, help="0 disables clipping."))
    # the experiment trains from each of --seeds, by default from --seed (itself by default 0)
    seed: int = field(default=0, metadata=cli(*SAMPLER_VERBS, per_verb={
        EXPERIMENT: {"default": None, "help": "One training seed [default: 0]; --seeds for several."}}))
    pooling: str | None = field(default=None, metadata=cli(
        *TRAINING_VERBS, choices=POOLINGS,
        help="Default: the model folder's (sentence-transformers) pooling, else cls — as fastir embed."))
    max_length: int | None = field(default=None, metadata=cli(
        *TRAINING_VERBS, help="Truncate texts to this many tokens [default: model limit]."))
    query_prefix: str = field(default="", metadata=cli(*TRAINING_VERBS, help="Prepended to every query."))
    passage_prefix: str = field(default="", metadata=cli(
        *TRAINING_VERBS, help="Prepended to every passage and hard negative."))
    lang_weights: dict[str, float] | None = field(default=None, metadata=cli(
        *SAMPLER_VERBS, parse=parse_lang_weights, help="Language weights, e.g. en=2,de=1 (default uniform)."))
    source_mode: str = field(default="proportional", metadata=cli(*SAMPLER_VERBS, choices=SOURCE_MODES))
    hard_negatives: bool = field(default=True, metadata=cli(
        *TRAINING_VERBS, help="Use the table's negative column when present."))
    device: str = field(default="auto", metadata=cli(*TRAINING_VERBS, choices=DEVICES))
    precision: str = field(default="auto", metadata=cli(*TRAINING_VERBS, choices=PRECISIONS, help=(
        "auto: bf16 (or fp16 + GradScaler) autocast on CUDA; on the CPU bf16 autocast where it has AMX_BF16 or "
        "AVX512_BF16, else fp32.")))
    save_steps: int = field(default=0, metadata=cli(*TRAINING_VERBS, help="Checkpoint every N steps (0: final only)."))
    keep_checkpoints: int = field(default=0, metadata=cli(*TRAINING_VERBS, help="Keep the newest N (0: all)."))
    # The held-out evaluation: the experiment sets it per run from its own options (--heldout, ...).
    eval_data: str | None = field(default=None, metadata=cli(TRAIN, aliases=("--eval-run",), help=(
        "Held-out data for a quick pooled mAP: xquad-r, mlqa-r, a LAReQA dir, or a train table.")))
    eval_every: int = field(default=0, metadata=cli(TRAIN, help="Evaluate every N steps (and at the end)."))
    eval_langs: list[str] | None = field(default=None, metadata=cli(
        TRAIN, parse=_langs, help="Comma-separated languages of the held-out data."))
    eval_max_queries: int = field(default=0, metadata=cli(TRAIN, help="Random subset of queries (0: all)."))
    eval_max_length: int | None = field(default=None, metadata=cli(
        TRAIN, help="Truncate held-out texts to this many tokens [default: the base model's own length, "
                    "not --max-length]."))
    allow_overlap: bool = field(default=False, metadata=cli(
        TRAIN, help="Train even if a training row shares an xling_id, question or passage with --eval-data."))
    resume: bool = field(default=False, metadata=cli(TRAIN, help="Continue from the newest checkpoint in --out."))
    overwrite: bool = field(default=False, metadata=cli(TRAIN, help="Replace a previous run in --out."))
    log_batches: bool = field(default=False, metadata=cli(  # each rank's batch composition
        *TRAINING_VERBS, help="Write batches.rankR.jsonl (xling_ids per step) for auditing."))
    progress: bool = field(default=True, metadata=cli(TRAIN))


@dataclass
class TrainResult:
    out: Path
    final: Path
    steps: int
    start_step: int
    last_loss: float | None
    eval: dict | None
    rank: int = 0


def validate(cfg: TrainConfig) -> None:
    """Argument checks that need no file: raise InputError naming the option."""
    if not cfg.data:
        raise InputError(None, "--data", "at least one train table is required")
    if cfg.strategy not in STRATEGIES:
        raise InputError(None, "--strategy", f"expected one of {', '.join(STRATEGIES)}, found {cfg.strategy!r}")
    checks = [
        ("--alpha", 0.0 <= cfg.alpha <= 1.0, f"must be in [0, 1], found {cfg.alpha}"),
        ("--alpha-mode", cfg.alpha_mode in ALPHA_MODES, f"expected one of {', '.join(ALPHA_MODES)}, "
                                                        f"found {cfg.alpha_mode!r}"),
        ("--batch-size", cfg.batch_size >= 2, f"must be at least 2 (in-batch negatives), found {cfg.batch_size}"),
        ("--steps", cfg.steps >= 1, f"must be positive, found {cfg.steps}"),
        ("--lr", cfg.lr > 0, f"must be positive, found {cfg.lr}"),
        ("--temperature", cfg.temperature > 0, f"must be positive, found {cfg.temperature}"),
        ("--weight-decay", cfg.weight_decay >= 0, f"must be non-negative, found {cfg.weight_decay}"),
        ("--max-grad-norm", cfg.max_grad_norm >= 0, f"must be non-negative, found {cfg.max_grad_norm}"),
        ("--save-steps", cfg.save_steps >= 0, f"must be non-negative, found {cfg.save_steps}"),
        ("--eval-every", cfg.eval_every >= 0, f"must be non-negative, found {cfg.eval_every}"),
        ("--max-length", cfg.max_length is None or cfg.max_length > 0, f"must be positive, found {cfg.max_length}"),
        ("--eval-max-length", cfg.eval_max_length is None or cfg.eval_max_length > 0,
         f"must be positive, found {cfg.eval_max_length}"),
        ("--precision", cfg.precision in PRECISIONS, f"expected one of {', '.join(PRECISIONS)}"),
    ]
    for name, ok, message in checks:
        if not ok:
            raise InputError(None, name, message)
    if cfg.warmup_steps is not None and not 0 <= cfg.warmup_steps <= cfg.steps:
        raise InputError(None, "--warmup-steps", f"must be in [0, --steps], found {cfg.warmup_steps}")
    if cfg.eval_every and not cfg.eval_data:
        raise InputError(None, "--eval-every", "needs --eval-data")
    if cfg.resume and cfg.overwrite:
        raise InputError(None, "--resume", "--resume and --overwrite exclude each other")


def settings(cfg: TrainConfig, *, pooling: str, max_length: int, precision: str,
             eval_max_length: int | None = None) -> dict:
    """Every setting, resolved (defaults filled in), as recorded in fastir-train.json."""
    s = dataclasses.asdict(cfg)
    s.update(pooling=pooling, max_length=max_length, precision=precision,
             eval_max_length=cfg.eval_max_length if eval_max_length is None else eval_max_length,
             warmup_steps=default_warmup(cfg), data=[os.path.abspath(p) for p in cfg.data])
    for transient in ("resume", "overwrite", "progress"):
        s.pop(transient)
    return s


def default_warmup(cfg: TrainConfig) -> int:
    return cfg.warmup_steps if cfg.warmup_steps is not None else cfg.steps // 10


def check_resume_settings(ckpt: Path, meta: dict, current: dict) -> None:
    """A resume must use the checkpoint's settings: every one of :data:`RESUME_KEYS` equal."""
    recorded = meta.get("settings", {})
    for key in RESUME_KEYS:
        saved = recorded.get(key, ADDED_LATER.get(key))
        if saved != current.get(key):
            raise InputError(ckpt / TRAIN_JSON, f"settings.{key}",
                             f"checkpoint has {saved!r}, this command {current.get(key)!r}: "
                             "resume with the same settings (or start a new --out)")
