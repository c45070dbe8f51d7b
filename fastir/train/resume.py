"""What a checkpoint captures of a running training, and how ``--resume`` gets it back.

A checkpoint holds the weights, optimizer, scheduler, scaler, every rank's RNG states and the
sampler position (:mod:`fastir.train.checkpoint` lays out the files); restoring all of them makes
a resumed run continue with bit-identical weights to an uninterrupted one (same device and world
size).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fastir.train.checkpoint import TRAIN_FORMAT, checkpoint_name

if TYPE_CHECKING:  # pragma: no cover
    from fastir.train.config import TrainConfig
    from fastir.train.state import Trainer, TrainingRun


# ------------------------------------------------------------------------------------------- RNG


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------- resume


def find_resume(cfg: "TrainConfig", out: Path) -> tuple[Path | None, dict | None]:
    """With ``--resume``: the newest checkpoint in ``out`` and its fastir-train.json; else (None, None)."""
    from fastir.train.checkpoint import list_checkpoints, read_train_json

    found = list_checkpoints(out) if cfg.resume else []
    if not found:
        return None, None
    ckpt = found[-1][1]
    return ckpt, read_train_json(ckpt)


def restore_trainer_state(run: "TrainingRun", trainer: "Trainer") -> None:
    """Optimizer, scheduler, scaler and this rank's RNG from ``run.ckpt``."""
    from fastir.train.checkpoint import load_trainer_state

    state = load_trainer_state(run.ckpt)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    rngs, dist = state["rng"], run.dist
    if len(rngs) == dist.world_size:
        set_rng_state(rngs[dist.rank])
    else:
        from fastir.core.errors import warn

        warn(f"checkpoint was written by {len(rngs)} ranks, this run has {dist.world_size}; "
             "dropout RNG is reseeded, so the run will not be bit-identical")
        seed_everything(run.cfg.seed + run.start_step + dist.rank)


def trim_log(file: Path, keep_upto: int) -> None:
    """On resume drop log lines past the resumed step (they belong to the interrupted tail)."""
    if not file.is_file():
        return
    from fastir.core.outputs import atomic_file

    lines = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= keep_upto:
                lines.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by the interruption
    with atomic_file(file, "w") as fh:
        fh.write("".join(x + "\n" for x in lines))


# ------------------------------------------------------------------------------------------ save


def save_step(run: "TrainingRun", trainer: "Trainer", step: int) -> Path:
    """Checkpoint ``run`` after ``step`` (every rank's RNG gathered, rank 0 writes); prunes old ones."""
    from fastir.train.checkpoint import prune_checkpoints, save_checkpoint

    cfg, dist, encoder = run.cfg, run.dist, run.encoder
    rngs = dist.gather_objects(rng_state())
    sampler_state = run.sampler.state_dict()
    path = run.out / checkpoint_name(step)
    if dist.rank == 0:
        meta = {
            "format": TRAIN_FORMAT, "step": step, "seed": cfg.seed, "world_size": dist.world_size,
            "settings": run.settings, "sampler": sampler_state, "base_model": cfg.model,
            "pooling": encoder.pooling, "normalize": True, "query_prefix": cfg.query_prefix,
            "passage_prefix": cfg.passage_prefix, "device": str(run.device), "versions": _versions(),
            "overlap": run.overlap, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # The saved model's inference length is the evaluation one: `fastir embed final/` embeds
        # as this run evaluated, not with the (often shorter) training truncation.
        st_files = dict(pooling=encoder.pooling, dim=encoder.dim, max_length=run.eval_encoder.max_length,
                        query_prefix=cfg.query_prefix, passage_prefix=cfg.passage_prefix, normalize=True)
        save_checkpoint(run.out, step, model=encoder.model, tokenizer=encoder.tokenizer, meta=meta,
                        st_files=st_files, optimizer=trainer.optimizer, scheduler=trainer.scheduler, scaler=trainer.scaler,
                        rng_states=rngs)
        prune_checkpoints(run.out, cfg.keep_checkpoints)
    dist.barrier()
    return path


def _versions() -> dict:
    import torch
    import transformers

    from fastir.core import __version__

    return {"fastir": __version__, "torch": torch.__version__, "transformers": transformers.__version__}
