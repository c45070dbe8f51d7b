"""``fastir train``: contrastive fine-tuning of a dual encoder (see fastir/train/loop.py and docs/train.md)."""

from __future__ import annotations

import click

from fastir.cli.options import config_options
from fastir.core.options import TRAIN
from fastir.train.config import TrainConfig
from fastir.cli import echo


@click.command()
@config_options(TrainConfig, TRAIN)
def train(**kw):
    """Fine-tune a shared-weight dual encoder with InfoNCE (in-batch + hard negatives).

    Several GPUs: torchrun --standalone --nproc-per-node N --no-python fastir train ...
    (--batch-size is the global batch; negatives are gathered across ranks).
    """
    from fastir.train.loop import train as run_train

    result = run_train(TrainConfig(**kw))
    if result.rank != 0:
        return  # under torchrun, rank 0 reports
    msg = f"trained {result.steps} steps (from step {result.start_step}); final model: {result.final}"
    if result.last_loss is not None:
        msg += f"; last loss {result.last_loss:.4f}"
    if result.eval:
        msg += f"; pooled mAP {result.eval['eval_pooled_map']:.4f}"
    echo(msg)
