"""One optimisation step of contrastive training.

Queries, passages (and hard negatives) are tokenized and padded as ``fastir embed`` does
(:meth:`fastir.encoding.hf.Encoder.model_inputs`), go through the shared backbone in one
forward, are gathered across ranks and scored with InfoNCE over cosine similarity / temperature
(:mod:`fastir.train.losses`); then the scaled backward, clipping, optimizer, scaler and schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastir.train.state import Trainer, TrainingRun


@dataclass
class StepResult:
    loss: float
    grad_norm: float | None  # total norm before clipping; None when clipping is off
    lr: float  # the learning rate the step used


def model_inputs(encoder, texts: list[str], prefix: str) -> dict:
    """``texts`` (each behind ``prefix``) as one padded batch of model inputs on the encoder's device."""
    tok = encoder.tokenize(texts, prefix=prefix)
    return encoder.model_inputs(tok, np.arange(len(tok)))


def train_step(run: TrainingRun, trainer: Trainer, batch) -> StepResult:
    """Forward, InfoNCE over the global batch, backward and update on ``batch`` (this rank's slice)."""
    import torch

    from fastir.train.losses import gather_with_local_grad, info_nce

    cfg, encoder = run.cfg, run.encoder
    negatives = batch.negatives if cfg.hard_negatives else None
    q_in = model_inputs(encoder, batch.queries, cfg.query_prefix)
    p_in = model_inputs(encoder, batch.passages, cfg.passage_prefix)
    n_in = model_inputs(encoder, negatives, cfg.passage_prefix) if negatives else None
    amp = trainer.amp_dtype
    with torch.autocast(device_type=run.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        q, p, n = trainer.wrapped(q_in, p_in, n_in)
    q, p = gather_with_local_grad(q), gather_with_local_grad(p)
    n = gather_with_local_grad(n) if n is not None else None
    loss = info_nce(q, p, n, temperature=cfg.temperature)
    # DDP averages gradients over ranks; every rank holds the same global loss, so scale by the
    # world size to get the single-process gradient of the global loss.
    trainer.scaler.scale(loss * run.dist.world_size).backward()
    grad_norm = None
    if cfg.max_grad_norm > 0:
        trainer.scaler.unscale_(trainer.optimizer)
        # the total norm before clipping (inf/nan on an fp16 overflow: the scaler skips the step)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), cfg.max_grad_norm))
    lr = trainer.scheduler.get_last_lr()[0]
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return StepResult(float(loss.detach()), grad_norm, lr)
