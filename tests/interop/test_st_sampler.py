"""fastir.interop.st_sampler: fastir's strategies as SentenceTransformerTrainer's batch sampler. The batches
a real trainer run consumes are the ones `fastir sample` audits for the same table, seed and batch size."""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("datasets")

LANGS = ("en", "de", "fr")
GROUPS = 16


def _rows(groups=GROUPS, langs=LANGS):
    rows = {"query": [], "passage": [], "language": [], "group": []}
    for g in range(groups):
        for lang in langs:
            rows["query"].append(f"question {g} in {lang}")
            rows["passage"].append(f"answer {g} in {lang}")
            rows["language"].append(lang)
            rows["group"].append(g)
    return rows


def _parse(text: str) -> tuple[str, str]:
    _, g, _, lang = text.split()
    return g, lang


def test_trainer_batches_are_fastir_sample_batches(tmp_path, minilm_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from fastir.cli import main
    from fastir.interop.st_sampler import FastirBatchSampler, pair_dataset

    rows = _rows()
    train = pair_dataset(Dataset.from_dict(rows), group="group")
    model = SentenceTransformer(minilm_path, device="cpu")
    model.max_seq_length = 16
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=4, seed=7,
        batch_sampler=FastirBatchSampler.using(strategy="hybrid", alpha=0.5, alpha_mode="exact"),
        report_to="none", use_cpu=True, save_strategy="no", logging_steps=100)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                         loss=MultipleNegativesRankingLoss(model))
    seen = []

    class Recording:
        """The trainer's collator, recording the (group, query lang, passage lang, passage group) of each item."""

        def __init__(self, collate):
            self.collate = collate

        def __getattr__(self, name):
            return getattr(self.collate, name)

        def __call__(self, features):
            seen.append([(*_parse(f["query"]), _parse(f["passage"])[1], _parse(f["passage"])[0]) for f in features])
            assert list(features[0]) == ["query", "passage"]  # no language or group column reaches the model
            return self.collate(features)

    trainer.data_collator = Recording(trainer.data_collator)
    trainer.train()
    steps = GROUPS // 4 * 2  # hybrid: every group is usable; two epochs
    assert len(seen) == steps and trainer.state.global_step == steps

    table = tmp_path / "table.parquet"
    pq.write_table(pa.table({"xling_id": [str(g) for g in rows["group"]], "lang": rows["language"],
                             "query": rows["query"], "passage": rows["passage"]}), table)
    audit = tmp_path / "audit.parquet"
    assert main(["sample", str(table), "--strategy", "hybrid", "--alpha", "0.5", "--alpha-mode", "exact",
                 "--batch-size", "4", "--seed", "7", "--steps", str(steps), "--out", str(audit)]) == 0
    audited = pq.read_table(audit).to_pylist()
    for step, batch in enumerate(seen):
        mine = [r for r in audited if r["step"] == step]
        assert [(r["xling_id"], r["query_lang"], r["passage_lang"]) for r in mine] == [
            (g, q, p) for g, q, p, _ in batch]
        assert all(g == g2 for g, _, _, g2 in batch)  # a query and its passage: one group
        assert len({g for g, *_ in batch}) == len(batch)  # no group twice in a batch
        assert {r["batch_kind"] for r in mine} <= {"mono", "cross"}
    kinds = [next(r["batch_kind"] for r in audited if r["step"] == s) for s in range(steps)]
    assert kinds.count("mono") == steps // 2  # exact alpha: half the batches mono


def test_deterministic_per_seed_and_epoch():
    from datasets import Dataset

    from fastir.interop.st_sampler import FastirBatchSampler, pair_dataset

    train = pair_dataset(Dataset.from_dict(_rows()), group="group")
    make = FastirBatchSampler.using(strategy="x-y")
    a, b = make(train, 4, False, seed=1), make(train, 4, False, seed=1)
    first = list(a)
    assert first == list(b) == list(a)  # one epoch, replayed
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b.set_epoch(1)
    assert list(b) == second
    assert list(make(train, 4, False, seed=2)) != first
    for batch in first:  # x-y: query and passage of one group, in two languages
        items = train.__getitems__(batch)
        assert all(_parse(i["query"])[0] == _parse(i["passage"])[0] != None for i in items)  # noqa: E711
        assert all(_parse(i["query"])[1] != _parse(i["passage"])[1] for i in items)


@pytest.mark.parametrize("strategy", ["x-x-mono", "x-x", "x-y", "hybrid"])
def test_every_strategy_draws_fastir_sample_plans(strategy):
    from datasets import Dataset

    from fastir.data.train_table import train_table_from_arrow
    from fastir.interop.st_sampler import FastirBatchSampler, pair_dataset
    from fastir.sampling.audit import composition_table
    from fastir.sampling.sampler import BatchSampler

    train = pair_dataset(Dataset.from_dict(_rows()), group="group")
    ours = FastirBatchSampler.using(strategy=strategy, alpha=0.25)(train, 4, False, seed=3)
    reference = BatchSampler(train_table_from_arrow(train._fastir_table, "t"), strategy=strategy, batch_size=4,
                             seed=3, alpha=0.25)
    audit = composition_table(reference, len(ours)).to_pylist()
    drawn = [(_parse(i["query"])[0], _parse(i["query"])[1], _parse(i["passage"])[1])
             for batch in ours for i in train.__getitems__(batch)]
    assert drawn == [(r["xling_id"], r["query_lang"], r["passage_lang"]) for r in audit]


def test_pair_dataset_pickles_for_spawned_workers():
    import pickle

    from datasets import Dataset

    from fastir.interop.st_sampler import FastirBatchSampler, pair_dataset

    train = pair_dataset(Dataset.from_dict(_rows()), group="group")
    batch = next(iter(FastirBatchSampler.using(strategy="x-y")(train, 4, False, seed=0)))
    assert pickle.loads(pickle.dumps(train)).__getitems__(batch) == train.__getitems__(batch)


def test_bad_input_is_one_line():
    from datasets import Dataset

    from fastir.core.errors import InputError
    from fastir.interop.st_sampler import FastirBatchSampler, pair_dataset

    rows = _rows()
    del rows["language"]
    with pytest.raises(InputError, match=r"^train_dataset: language: missing column \(found: query, passage, group\)"):
        pair_dataset(Dataset.from_dict(rows), group="group")
    with pytest.raises(InputError, match=r"^train_dataset: xling_id: missing column"):
        pair_dataset(Dataset.from_dict(_rows()))
    with pytest.raises(InputError, match="not a fastir pair dataset"):
        FastirBatchSampler.using()(Dataset.from_dict(_rows()), 4, False)
    train = pair_dataset(Dataset.from_dict(_rows()), group="group")
    with pytest.raises(InputError, match="--strategy: unknown strategy 'y-y'"):
        FastirBatchSampler.using(strategy="y-y")(train, 4, False)


def _rank(rank: int, groups: int, port: int, errors) -> None:
    import torch.distributed as td
    from datasets import Dataset

    from fastir.core.errors import InputError
    from fastir.interop.st_sampler import FastirBatchSampler, pair_dataset

    td.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        FastirBatchSampler.using(strategy="x-x")(pair_dataset(Dataset.from_dict(_rows(groups)), group="group"), 4, False)
        errors.put((rank, None))
    except InputError as exc:
        errors.put((rank, str(exc)))
    finally:
        td.destroy_process_group()


def test_ranks_that_disagree_on_the_data_are_refused():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, GROUPS + 4 * r, port, errors)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    got = dict(errors.get(timeout=5) for _ in procs)
    for rank in (0, 1):
        assert got[rank].startswith("train_dataset: ranks disagree on the data: rank 0 has 16 groups in 48 rows, "
                                    "rank 1 has 20 in 60")
