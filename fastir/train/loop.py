"""``fastir train``: contrastive fine-tuning of a shared-weight dual encoder on the sampler engine.

The driver: :func:`fastir.train.setup.open_run` checks every input and loads the encoder,
:func:`~fastir.train.setup.build_trainer` adds the model, optimizer and schedule,
:func:`fastir.train.step.train_step` runs each step, :func:`fastir.train.resume.save_step`
writes the checkpoints; this module loops, logs, evaluates and publishes ``final/``.

One step: the sampler yields this rank's slice of the global batch; queries, passages (and hard
negatives) go through the same backbone, are pooled as ``fastir embed`` pools them, gathered
across ranks, and scored with InfoNCE over cosine similarity / temperature (``fastir.train.losses``).
AdamW (weight decay on all but biases and LayerNorm weights), linear warm-up then linear decay to
0 (``transformers.get_linear_schedule_with_warmup``), gradient clipping, fp16 autocast + GradScaler
on CUDA (bf16 without a scaler where the GPU supports it); on the CPU bf16 autocast where it has
bf16 matrix instructions, else fp32 (``--precision auto``; the choice and its reason are recorded
in ``fastir-train.json`` → ``settings.precision`` / ``settings.precision_reason``).

Everything that changes the numbers is recorded in each checkpoint's ``fastir-train.json``; a
``--resume`` run refuses a checkpoint whose recorded settings differ, then restores the weights,
optimizer, scheduler, scaler, every rank's RNG and the sampler position, so it continues with
bit-identical weights to an uninterrupted run (same device and world size).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

from fastir.core.distributed import Distributed
from fastir.core.outputs import claim_output
from fastir.train.checkpoint import FINAL, checkpoint_name
from fastir.train.config import TrainConfig, TrainResult, validate
from fastir.train.resume import save_step, trim_log

__all__ = ["TrainConfig", "TrainResult", "train", "validate"]

LOG_FILE = "train.jsonl"
BATCH_LOG = "batches.rank{rank}.jsonl"


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) a training run; see the module docstring. Raises InputError on bad input
    before anything is written to ``cfg.out``."""
    validate(cfg)
    from transformers.utils import logging as hf_logging

    # Our own progress bar only: transformers' "Loading weights" / "Writing model shards" bars
    # would interleave with it (and turn one-line errors into three lines).
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    dist = Distributed.from_env(collective_device=cfg.device)
    try:
        with contextlib.ExitStack() as stack:
            # One writer per OUT (rank 0 holds the lock; dead runs' temporaries go), taken through
            # run_on_rank0 so that a refused claim stops every rank instead of leaving them waiting.
            dist.run_on_rank0(lambda: (stack.enter_context(claim_output(cfg.out)),
                                       stack.enter_context(_removed_unless_resumable(Path(cfg.out)))))
            return _train(cfg, dist)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        dist.close()


@contextlib.contextmanager
def _removed_unless_resumable(out: Path):
    """A run that fails before its first checkpoint removes the OUT it created (its log, nothing
    to resume from): a failed command leaves the output location as it was."""
    from fastir.train.checkpoint import list_checkpoints

    fresh = not out.exists()
    try:
        yield
    except BaseException:
        if fresh and out.is_dir() and not list_checkpoints(out):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train(cfg: TrainConfig, dist: Distributed) -> TrainResult:
    from fastir.train.setup import build_trainer, open_run
    from fastir.train.step import train_step

    run = open_run(cfg, dist)
    trainer = build_trainer(run)
    log = _Log(run)
    last_loss = last_eval = None
    last_saved = run.start_step if run.ckpt is not None else -1
    try:
        if run.eval_set is not None and cfg.eval_every and run.start_step == 0:
            last_eval = _evaluate(run, 0, log)  # the baseline before any update
        for step in range(run.start_step, cfg.steps):
            t0 = time.perf_counter()
            batch = run.first_batch if step == run.start_step else next(run.batches)
            result = train_step(run, trainer, batch)
            last_loss, done = result.loss, step + 1
            log.step(done, batch, result, time.perf_counter() - t0)
            if run.eval_set is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                last_eval = _evaluate(run, done, log)
            if cfg.save_steps and done % cfg.save_steps == 0 and done < cfg.steps:
                save_step(run, trainer, done)
                last_saved = done
        if last_saved != cfg.steps:
            save_step(run, trainer, cfg.steps)
        if run.eval_set is not None and run.start_step < cfg.steps:  # a finished run was evaluated already
            last_eval = _evaluate(run, cfg.steps, log)
    finally:
        log.close()
    return _finish(run, last_loss, last_eval)


def _finish(run, last_loss: float | None, last_eval: dict | None) -> TrainResult:
    """Publish the last checkpoint as ``final/`` (rank 0) once every rank is done."""
    from fastir.train.checkpoint import publish_final

    cfg, out = run.cfg, run.out
    final = out / FINAL
    if run.dist.rank == 0:
        final = publish_final(out, out / checkpoint_name(cfg.steps))
    run.dist.barrier()
    return TrainResult(out=out, final=final, steps=cfg.steps, start_step=run.start_step, last_loss=last_loss,
                       eval=last_eval, rank=run.dist.rank)


class _Log:
    """``train.jsonl`` (rank 0), ``batches.rankR.jsonl`` (--log-batches) and the progress bar;
    on resume the logs are trimmed back to the resumed step first."""

    def __init__(self, run):
        from tqdm import tqdm

        cfg, rank = run.cfg, run.dist.rank
        self.batch_size = cfg.batch_size
        log_file = run.out / LOG_FILE
        batch_log = (run.out / BATCH_LOG.format(rank=rank)) if cfg.log_batches else None
        if rank == 0:
            trim_log(log_file, run.start_step)
        if batch_log is not None:
            trim_log(batch_log, run.start_step)
        self.bar = tqdm(total=cfg.steps, initial=run.start_step, unit="step", dynamic_ncols=True, mininterval=0.5,
                        disable=not cfg.progress or rank != 0, file=sys.stderr)
        self.log = open(log_file, "a", encoding="utf-8") if rank == 0 else None
        self.blog = open(batch_log, "a", encoding="utf-8") if batch_log is not None else None
        self.start = time.perf_counter()

    def step(self, done: int, batch, result, dt: float) -> None:
        if self.log is not None:
            self.write({"event": "train", "step": done, "loss": result.loss, "lr": result.lr,
                        "grad_norm": result.grad_norm, "kind": batch.kind,
                        "step_time_s": round(dt, 6), "steps_per_s": round(1.0 / dt, 4),
                        "pairs_per_s": round(self.batch_size / dt, 2),
                        "elapsed_s": round(time.perf_counter() - self.start, 3)})
        if self.blog is not None:
            self.blog.write(json.dumps({"step": done, "kind": batch.kind, "xling_ids": list(batch.xling_ids),
                                        "loss": result.loss, "grad_norm": result.grad_norm}) + "\n")
            self.blog.flush()
        self.bar.set_postfix(loss=f"{result.loss:.4f}", lr=f"{result.lr:.2e}", refresh=False)
        self.bar.update(1)

    def write(self, record: dict) -> None:
        if self.log is not None:
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()

    def close(self) -> None:
        self.bar.close()
        for fh in (self.log, self.blog):
            if fh is not None:
                fh.close()


def _evaluate(run, step: int, log: _Log) -> dict:
    from fastir.train.heldout import evaluate

    cfg = run.cfg
    t0 = time.perf_counter()
    res = evaluate(run.eval_encoder, run.eval_set, query_prefix=cfg.query_prefix, passage_prefix=cfg.passage_prefix)
    res = {"event": "eval", "step": step, **res, "eval_time_s": round(time.perf_counter() - t0, 3)}
    log.write(res)
    return res
