"""Setting up a run: nothing written before the inputs pass, the trainer's pieces, --overwrite (open_run and
build_trainer return the two phases of fastir.train.state: TrainingRun, Trainer)."""

from __future__ import annotations

import pytest
import torch

from fastir.core.distributed import Distributed
from fastir.core.errors import InputError
from fastir.train.config import TrainConfig
from fastir.train.setup import (build_trainer, open_run, param_groups, prepare_out, resolve_precision,
                                 run_precision)


def _cfg(data, model, out, **kw) -> TrainConfig:
    return TrainConfig(**{"data": [data], "model": model, "out": str(out), "batch_size": 8, "steps": 4,
                          "pooling": "mean", "progress": False, "precision": "fp32", **kw})


def test_open_run_then_build_trainer(train_tiny_bert, train_table_arrow, tmp_path):
    out = tmp_path / "run"
    run = open_run(_cfg(train_table_arrow, train_tiny_bert, out, warmup_steps=0), Distributed())
    assert out.is_dir() and list(out.iterdir()) == []  # prepared, nothing written yet
    assert (run.start_step, run.ckpt, run.precision, run.device.type) == (0, None, "fp32", "cpu")
    assert len(run.first_batch) == 8 and run.settings["pooling"] == "mean"
    trainer = build_trainer(run)
    assert trainer.wrapped is trainer.model and trainer.model.backbone is run.encoder.model and trainer.model.training
    assert trainer.amp_dtype is None and not trainer.scaler.is_enabled()
    assert trainer.scheduler.get_last_lr() == [run.cfg.lr, run.cfg.lr]  # decay and no-decay groups


def test_bad_input_writes_nothing(train_tiny_bert, train_table_arrow, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(InputError, match="fewer than the batch size"):
        open_run(_cfg(train_table_arrow, train_tiny_bert, out, batch_size=500), Distributed())
    with pytest.raises(InputError):
        open_run(_cfg(train_table_arrow, str(tmp_path / "no-model"), out), Distributed())
    assert not out.exists()


def test_overwrite_removes_only_what_training_writes(tmp_path):
    out = tmp_path / "run"
    for name in ("checkpoint-000002", "final", "notes"):
        (out / name).mkdir(parents=True)
    (out / "checkpoint-000002" / "fastir-train.json").write_text("{}")
    (out / "train.jsonl").write_text("{}\n")
    (out / "keep.txt").write_text("mine")
    prepare_out(TrainConfig(data=["t"], model="m", out=str(out), overwrite=True), out, Distributed())
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "notes"]


def test_param_groups_skip_decay_on_biases_and_layer_norms():
    model = torch.nn.Sequential()
    model.add_module("dense", torch.nn.Linear(3, 3))
    model.add_module("LayerNorm", torch.nn.LayerNorm(3))
    frozen = torch.nn.Linear(2, 2)
    frozen.weight.requires_grad_(False)
    model.add_module("frozen", frozen)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["params"] == [model.dense.weight] and decay["weight_decay"] == 0.1
    assert no_decay["params"] == [model.dense.bias, model.LayerNorm.weight, model.LayerNorm.bias, frozen.bias]
    assert no_decay["weight_decay"] == 0.0


def test_precision(monkeypatch):
    from fastir.core.cpu import FLAGS_ENV

    cpu = torch.device("cpu")
    monkeypatch.setenv(FLAGS_ENV, "avx2")
    assert resolve_precision("auto", cpu) == ("fp32", "auto: this CPU has no AVX512_BF16 or AMX_BF16")
    assert resolve_precision("fp16", cpu) == ("fp16", "asked for")  # the CPU GradScaler tests use it
    with pytest.raises(InputError, match="--precision: bf16 on the CPU needs bf16 matrix instructions"):
        resolve_precision("bf16", cpu)
    monkeypatch.setenv(FLAGS_ENV, "avx512_bf16 amx_bf16")
    assert resolve_precision("auto", cpu) == ("bf16", "auto: this CPU has AVX512_BF16 and AMX_BF16")
    assert resolve_precision("bf16", cpu) == ("bf16", "asked for")
    assert run_precision("auto", cpu, {"settings": {"precision": "fp32"}}) == (
        "fp32", "auto on resume: the checkpoint's precision (asked for)")
