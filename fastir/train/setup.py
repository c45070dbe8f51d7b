"""Setting up a training run: every input check before anything is written, then the model,
optimizer, schedule and (on ``--resume``) the checkpoint's state.

:func:`open_run` fails with an :class:`InputError` on bad input while ``cfg.out`` is untouched;
:func:`build_trainer` adds what the steps need. The order of the RNG-consuming calls (seeding,
model loading, resume) is part of the bit-identical-resume contract: keep it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fastir.core.distributed import Distributed
from fastir.core.errors import InputError
from fastir.train.checkpoint import FINAL
from fastir.train.config import TrainConfig, check_resume_settings, default_warmup, settings
from fastir.train.resume import find_resume, restore_trainer_state, seed_everything
from fastir.train.state import Trainer, TrainingRun


def open_run(cfg: TrainConfig, dist: Distributed) -> TrainingRun:
    """Check every input, load the encoder (from the checkpoint on resume), then prepare ``out``."""
    from fastir.encoding.encoder import load_encoder, resolve_device
    from fastir.core.outputs import check_output_dir

    out = Path(cfg.out)
    check_output_dir(out, overwrite=cfg.overwrite, resume=cfg.resume, inputs=[*cfg.data, cfg.model, cfg.eval_data])
    sampler = open_sampler(cfg, dist)
    overlap = None
    if cfg.eval_data:
        from fastir.data.overlap import guard

        overlap = guard(cfg.data, [cfg.eval_data], allow=cfg.allow_overlap)
    ckpt, ckpt_meta = find_resume(cfg, out)
    device = resolve_device(dist.device(cfg.device))  # under torchrun: this rank's GPU
    precision, precision_reason = run_precision(cfg.precision, device, ckpt_meta)
    seed_everything(cfg.seed)  # weights the checkpoint lacks (e.g. a new pooler) start the same everywhere
    # Resuming without --pooling takes the recorded pooling; an explicit one is compared below.
    pooling = cfg.pooling or (ckpt_meta["settings"]["pooling"] if ckpt_meta else None)
    # Likewise the training length (a checkpoint's sentence-transformers file holds the evaluation one).
    max_length = cfg.max_length if cfg.max_length is not None or not ckpt_meta else ckpt_meta["settings"]["max_length"]
    encoder = load_encoder(str(ckpt) if ckpt else cfg.model, pooling=pooling, device=str(device), dtype="fp32",
                           max_length=max_length)
    eval_encoder = evaluation_encoder(cfg, encoder)
    current = settings(cfg, pooling=encoder.pooling, max_length=encoder.max_length, precision=precision,
                       eval_max_length=eval_encoder.max_length)
    current["precision_reason"] = precision_reason
    start_step = 0
    if ckpt_meta:
        check_resume_settings(ckpt, ckpt_meta, current)
        start_step = int(ckpt_meta["step"])
        sampler.load_state_dict(ckpt_meta["sampler"])
    eval_set = None
    if cfg.eval_data and dist.rank == 0:
        from fastir.train.heldout import load_eval_set

        eval_set = load_eval_set(cfg.eval_data, langs=cfg.eval_langs, max_queries=cfg.eval_max_queries, seed=cfg.seed)
    batches = iter(sampler)
    first_batch = next(batches) if start_step < cfg.steps else None  # lazy sampler checks fail here
    prepare_out(cfg, out, dist)
    dist.barrier()  # rank 0 has prepared the output directory
    return TrainingRun(cfg=cfg, dist=dist, out=out, sampler=sampler, encoder=encoder, device=device, precision=precision,
               settings=current, ckpt=ckpt, start_step=start_step, batches=batches, first_batch=first_batch,
               eval_set=eval_set, eval_encoder=eval_encoder, overlap=overlap)


def evaluation_encoder(cfg: TrainConfig, encoder):
    """``encoder`` (the same weights) truncating at ``--eval-max-length``, by default at the base
    model's own length: training's ``--max-length`` does not apply to evaluation."""
    import dataclasses

    from fastir.encoding.hf import check_max_length, model_max_lengths

    own, limit = model_max_lengths(cfg.model)
    length = check_max_length(cfg.eval_max_length, own, limit, "--eval-max-length")
    return dataclasses.replace(encoder, max_length=length)


def open_sampler(cfg: TrainConfig, dist: Distributed):
    from fastir.sampling.sampler import BatchSampler
    from fastir.data.train_table import open_train_table

    if cfg.batch_size % dist.world_size:
        raise InputError(None, "--batch-size",
                         f"{cfg.batch_size} is not divisible by the world size {dist.world_size}")
    tables = [open_train_table(p) for p in cfg.data]
    return BatchSampler(tables, strategy=cfg.strategy, batch_size=cfg.batch_size, seed=cfg.seed, alpha=cfg.alpha,
                        alpha_mode=cfg.alpha_mode, lang_weights=cfg.lang_weights, source_mode=cfg.source_mode,
                        rank=dist.rank, world_size=dist.world_size)


def prepare_out(cfg: TrainConfig, out: Path, dist: Distributed) -> None:
    """Create ``out`` (rank 0), after every input check passed; --overwrite clears the old run."""
    from fastir.train.checkpoint import list_checkpoints

    if dist.rank != 0:
        return
    if cfg.overwrite and out.is_dir():
        # Remove only what a training run writes; anything else in the directory is left alone.
        for _, path in list_checkpoints(out):
            shutil.rmtree(path)
        shutil.rmtree(out / FINAL, ignore_errors=True)
        for child in out.glob("*.jsonl"):
            child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def build_trainer(run: TrainingRun) -> Trainer:
    """The dual encoder (DDP-wrapped under torchrun), AdamW, the schedule, the scaler; on resume
    their state and this rank's RNG from the checkpoint."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    cfg, encoder = run.cfg, run.encoder
    backbone = encoder.model
    backbone.train()
    model = wrapped = _dual_encoder_class()(backbone, encoder.pooling).to(run.device)
    if run.dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # A pooler layer is unused unless pooling == "pooler": let DDP skip its missing gradients.
        unused = encoder.pooling != "pooler" and getattr(backbone, "pooler", None) is not None
        wrapped = DistributedDataParallel(model, find_unused_parameters=unused,
                                              device_ids=[run.device.index] if run.device.type == "cuda" else None)
    # The fused kernel (one pass over each tensor instead of a dozen elementwise ops): about 5x less
    # optimizer time on the CPU (0.03 against 0.14 CPU-s a step for MiniLM); the trainer of
    # transformers uses it by default too. Same update up to rounding.
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, fused=True)
    trainer = Trainer(model=model, wrapped=wrapped, optimizer=optimizer,
                      scheduler=get_linear_schedule_with_warmup(optimizer, default_warmup(cfg), cfg.steps),
                      scaler=torch.amp.GradScaler(run.device.type, enabled=run.precision == "fp16"),
                      amp_dtype={"fp16": torch.float16, "bf16": torch.bfloat16}.get(run.precision))
    if run.ckpt is not None:
        restore_trainer_state(run, trainer)
    return trainer


def _dual_encoder_class():
    import torch

    from fastir.encoding.encoder import pool

    class DualEncoder(torch.nn.Module):
        """One backbone for queries, passages and negatives, in a single forward (one DDP call)."""

        def __init__(self, backbone, pooling: str):
            super().__init__()
            self.backbone = backbone
            self.pooling = pooling

        def embed(self, inputs: dict):
            out = self.backbone(**inputs)
            return pool(out.last_hidden_state, inputs["attention_mask"], self.pooling,
                        pooler_output=getattr(out, "pooler_output", None))

        def forward(self, queries: dict, passages: dict, negatives: dict | None = None):
            return self.embed(queries), self.embed(passages), (self.embed(negatives) if negatives else None)

    return DualEncoder


def param_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on weights, none on biases and LayerNorm weights (BERT/sentence-transformers custom)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def run_precision(precision: str, device, ckpt_meta: dict | None) -> tuple[str, str]:
    """:func:`resolve_precision`; resuming with ``auto`` keeps the checkpoint's precision (a run
    started as fp32 before auto chose bf16 on this CPU continues bit-identically as fp32)."""
    recorded = (ckpt_meta or {}).get("settings", {}).get("precision")
    if precision == "auto" and recorded is not None:
        chosen, why = resolve_precision(recorded, device)
        return chosen, f"auto on resume: the checkpoint's precision ({why})"
    return resolve_precision(precision, device)


def resolve_precision(precision: str, device) -> tuple[str, str]:
    """(precision that runs, why). auto: on CUDA bf16 autocast where the GPU supports it, else
    fp16 + GradScaler; on the CPU bf16 autocast where it has bf16 matrix instructions
    (:func:`fastir.core.cpu.cpu_bf16`), else fp32. An explicit bf16 on a CPU without them is an
    InputError (it would run slower than fp32); an explicit fp16 is honoured on the CPU (slow; it
    lets CPU tests run the GradScaler path)."""
    import torch

    from fastir.core.cpu import cpu_bf16

    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        gpu = f"CUDA GPU {torch.cuda.get_device_name(device)}"
        if precision == "auto":
            return ("bf16", f"auto: {gpu} supports bf16") if bf16 else ("fp16", f"auto: {gpu} has no bf16")
        return precision, f"asked for; {gpu}"
    if precision in ("auto", "bf16"):
        fast, why = cpu_bf16()
        if precision == "bf16" and not fast:
            raise InputError(None, "--precision", f"bf16 on the CPU needs bf16 matrix instructions: {why} "
                                                  "(use --precision fp32 or auto)")
        if precision == "auto":
            return ("bf16" if fast else "fp32"), f"auto: {why}"
    return precision, "asked for"
