"""The state of one training run, in the two phases that make it.

:func:`fastir.train.setup.open_run` checks every input and loads what the run reads
(:class:`TrainingRun`); :func:`fastir.train.setup.build_trainer` then makes what the steps update
(:class:`Trainer`). The step, checkpoint and driver code take both; nothing is filled in later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from fastir.core.distributed import Distributed
    from fastir.encoding.hf import Encoder
    from fastir.sampling.sampler import Batch, BatchSampler
    from fastir.train.config import TrainConfig
    from fastir.train.heldout import EvalSet


@dataclass
class TrainingRun:
    """One training run's checked inputs and loaded encoder (nothing in ``out`` written yet)."""

    cfg: TrainConfig
    dist: Distributed
    out: Path
    sampler: BatchSampler
    encoder: Encoder  # its model is the backbone being trained
    eval_encoder: Encoder  # the same weights, truncating at the evaluation length
    device: torch.device
    precision: str  # resolved: fp32, fp16 or bf16
    settings: dict  # as recorded in fastir-train.json
    ckpt: Path | None  # the checkpoint resumed from
    start_step: int
    batches: Iterator[Batch]
    first_batch: Batch | None  # drawn before anything is written (lazy sampler checks fail early); None when done
    eval_set: EvalSet | None  # rank 0 with --eval-data only
    overlap: dict | None  # the zero-shot check against --eval-data (None without it)


@dataclass
class Trainer:
    """What the steps update: the model, its optimizer, schedule and loss scaler."""

    model: torch.nn.Module  # the DualEncoder
    wrapped: torch.nn.Module  # the model, or DistributedDataParallel around it
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # torch.float16 / torch.bfloat16, None for fp32
