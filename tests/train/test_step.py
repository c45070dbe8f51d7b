"""One training step: the inputs are padded exactly as the tokenizer pads, and the step updates."""

from __future__ import annotations

import pytest
import torch

from fastir.core.distributed import Distributed
from fastir.encoding.encoder import load_encoder
from fastir.train.config import TrainConfig
from fastir.train.setup import build_trainer, open_run
from fastir.train.step import model_inputs, train_step


@pytest.mark.parametrize("prefix", ["", "aa "])
def test_inputs_equal_the_tokenizers_padded_batch(train_tiny_bert, prefix):
    enc = load_encoder(train_tiny_bert, pooling="mean", device="cpu", dtype="fp32", max_length=5)
    texts = ["f3 t7", "aa f3 t7 bb f3 t7 bb", "bb", "t7 t7 t7"]
    got = model_inputs(enc, texts, prefix)
    want = enc.tokenizer([prefix + t for t in texts], padding=True, truncation=True, max_length=5,
                         return_tensors="pt")
    assert set(got) == {"input_ids", "attention_mask", "token_type_ids"}  # BERT uses token types
    for name, tensor in got.items():
        assert tensor.dtype == torch.int64 and torch.equal(tensor, want[name]), name


def test_a_step_updates_the_weights(train_tiny_bert, train_table_arrow, tmp_path):
    cfg = TrainConfig(data=[train_table_arrow], model=train_tiny_bert, out=str(tmp_path / "run"), batch_size=8,
                      steps=4, warmup_steps=0, lr=1e-3, pooling="mean", progress=False)
    run = open_run(cfg, Distributed())
    trainer = build_trainer(run)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    result = train_step(run, trainer, run.first_batch)
    assert result.loss > 0 and result.grad_norm > 0 and result.lr == pytest.approx(1e-3)
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, before[k])]
    assert "backbone.embeddings.word_embeddings.weight" in changed
    assert all(p.grad is None for p in trainer.model.parameters())  # zeroed for the next step
    assert trainer.scheduler.get_last_lr()[0] < 1e-3  # linear decay after the step
