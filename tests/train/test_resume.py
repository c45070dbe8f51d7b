"""What a checkpoint captures for --resume: RNG states and the trimmed logs. (A whole resumed run
is bit-identical: tests/train/test_loop.py.)"""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from fastir.train.resume import find_resume, rng_state, seed_everything, set_rng_state, trim_log
from fastir.train.config import TrainConfig


def _draws():
    return random.random(), float(np.random.random()), float(torch.rand(1))


def test_rng_state_round_trip():
    seed_everything(7)
    state = rng_state()
    first = _draws()
    _draws()
    set_rng_state(state)
    assert _draws() == first
    seed_everything(7)
    assert _draws() == first


def test_trim_log_keeps_steps_up_to_the_resumed_one(tmp_path):
    log = tmp_path / "train.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / (s + 1)}) for s in range(6)]
    log.write_text("\n".join(lines) + "\n" + '{"step": 6, "lo')  # the interrupted tail
    trim_log(log, 3)
    assert log.read_text() == "".join(x + "\n" for x in lines[:4])
    trim_log(tmp_path / "absent.jsonl", 3)
    assert not (tmp_path / "absent.jsonl").exists()


def test_find_resume_takes_the_newest_checkpoint(tmp_path):
    cfg = TrainConfig(data=["t"], model="m", out=str(tmp_path), resume=True)
    assert find_resume(cfg, tmp_path) == (None, None)
    for step in (2, 10):
        ckpt = tmp_path / f"checkpoint-{step:06d}"
        ckpt.mkdir()
        (ckpt / "fastir-train.json").write_text(json.dumps({"format": "fastir-train/1", "step": step}))
    ckpt, meta = find_resume(cfg, tmp_path)
    assert ckpt.name == "checkpoint-000010" and meta["step"] == 10
    assert find_resume(TrainConfig(data=["t"], model="m", out=str(tmp_path)), tmp_path) == (None, None)
