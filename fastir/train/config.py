"""What a training run is asked to do: :class:`TrainConfig`, its checks, the settings a
checkpoint records (and a resume must match), and :class:`TrainResult`."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from fastir.core.errors import InputError
from fastir.train.checkpoint import TRAIN_JSON
from fastir.sampling.choices import ALPHA_MODES, PRECISIONS, STRATEGIES

# Settings that change the numbers: a resumed run must match the checkpoint on all of them.
RESUME_KEYS = (
    "data", "model", "strategy", "alpha", "batch_size", "steps", "lr", "temperature", "warmup_steps",
    "weight_decay", "max_grad_norm", "seed", "pooling", "max_length", "query_prefix", "passage_prefix",
    "lang_weights", "source_mode", "hard_negatives", "precision", "alpha_mode",
)
# Resume keys added after checkpoints were first written: a checkpoint without one used this value.
ADDED_LATER = {"alpha_mode": "random"}


@dataclass
class TrainConfig:
    data: list[str]
    model: str
    out: str
    strategy: str = "hybrid"
    alpha: float = 0.5
    alpha_mode: str = "random"  # hybrid: "random" (a seeded draw per step) or "exact" (a fixed interleaving)
    batch_size: int = 32
    steps: int = 1000
    lr: float = 3e-5
    temperature: float = 0.05
    warmup_steps: int | None = None  # None: 10% of steps
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping
    seed: int = 0
    pooling: str | None = None  # None: the model folder's default, as fastir embed
    max_length: int | None = None  # None: the model's limit, as fastir embed
    query_prefix: str = ""
    passage_prefix: str = ""
    lang_weights: dict[str, float] | None = None
    source_mode: str = "proportional"
    hard_negatives: bool = True  # use the table's `negative` column when present
    device: str = "auto"
    precision: str = "auto"
    save_steps: int = 0  # 0: only the final step
    keep_checkpoints: int = 0  # 0: keep all
    eval_data: str | None = None
    eval_every: int = 0
    eval_langs: list[str] | None = None
    eval_max_queries: int = 0
    eval_max_length: int | None = None  # None: the base model's own length, not --max-length
    allow_overlap: bool = False  # train even if the training tables overlap --eval-data
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    log_batches: bool = False  # write each rank's batch composition (xling_ids) per step


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
