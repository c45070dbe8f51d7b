"""fastir's batch strategies inside ``SentenceTransformerTrainer`` (docs/sentence-transformers.md).

:func:`pair_dataset` views a Hugging Face dataset with query, passage, language and parallel-group
columns (one row per (group, language), fastir's training-table layout) as the trainer's
``train_dataset``; :meth:`FastirBatchSampler.using` is the trainer's ``batch_sampler``. Each batch is
drawn by :class:`fastir.sampling.sampler.BatchSampler` itself (x-x-mono, x-x, x-y, hybrid with
``alpha_mode="exact"`` or ``"random"``, en-en), so it holds no parallel group twice, depends only
on (seed, epoch) and is the batch ``fastir sample`` audits for the same table, seed and batch size.

A batch item may take its query from one row and its passage from another (x-y: the same group in
two languages), which a plain row index cannot say: the sampler yields ``query_row * N +
passage_row`` (N rows) and the view's ``__getitems__`` (what the DataLoader calls for a batch)
decodes it into the query and passage texts (and the negative of the passage's row), without the
language and group columns, which the trainer would otherwise encode as texts.

Under DDP, accelerate hands rank r every W-th batch of the sequence (each a whole per-device batch
of ``per_device_train_batch_size``); every rank computes the same sequence, so every rank must
hold the same data: ranks that disagree raise :class:`InputError` on every rank.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from fastir.core.errors import InputError
from fastir.interop.st_evaluator import built_on_first_use, require

SOURCE = "train_dataset"  # where the one-line errors point: the dataset the trainer was given


def _columns_table(dataset, columns: dict[str, str]):
    """The dataset's Arrow table as a training table: ``columns`` maps fastir's names to the dataset's."""
    import pyarrow as pa

    found = list(dataset.column_names)
    for name in columns.values():
        if name not in found:
            raise InputError(SOURCE, name, f"missing column (found: {', '.join(found) or 'none'}); fastir's "
                                           "batch sampler needs query, passage, language and parallel-group columns")
    flat = dataset if getattr(dataset, "_indices", None) is None else dataset.flatten_indices()
    table = flat.data.table.select(list(columns.values()))
    # a group id may be an integer column: the sampler keys groups by their text
    arrays = [c.cast(pa.string()) if key == "xling_id" and pa.types.is_integer(c.type) else c
              for key, c in zip(columns, table.columns)]
    return pa.Table.from_arrays(arrays, names=list(columns))


def pair_dataset(dataset, *, query: str = "query", passage: str = "passage", language: str = "language",
                 group: str = "xling_id", negative: str | None = None):
    """``dataset`` (a ``datasets.Dataset``, one row per (group, language)) as the train dataset of
    :class:`FastirBatchSampler`: batches read the ``query`` and ``passage`` (and ``negative``) texts
    under those names; ``language`` and ``group`` (the parallel-group id: translations share it) are
    read by the sampler only. A missing column is an :class:`InputError`."""
    columns = {"xling_id": group, "lang": language, "query": query, "passage": passage}
    if negative is not None:
        columns["negative"] = negative
    table = _columns_table(dataset, columns)
    view = __getattr__("PairDataset")(dataset.data, info=dataset.info.copy(), split=dataset.split,
                       indices_table=getattr(dataset, "_indices", None))
    view._fastir_table, view._fastir_texts = table, (query, passage, negative)
    return view


class FastirBatchSampler:
    """A sentence-transformers batch sampler (``__iter__``, ``__len__``, ``set_epoch``) over a
    :func:`pair_dataset`, drawing fastir's strategies; build it with :meth:`using`.

    ``batch_size`` and ``seed`` come from the trainer (``per_device_train_batch_size``, ``seed``);
    an epoch is ``usable pairs // batch_size`` full batches whatever ``drop_last``; ``generator``
    is unused (the draws are fastir's seeded streams).
    """

    def __init__(self, dataset, batch_size: int, drop_last: bool = True, valid_label_columns=None, generator=None,
                 seed: int = 0, *, strategy: str = "hybrid", alpha: float = 0.5, alpha_mode: str = "random",
                 lang_weights: dict[str, float] | None = None):
        from fastir.data.train_table import train_table_from_arrow
        from fastir.sampling.sampler import BatchSampler

        table = getattr(dataset, "_fastir_table", None)
        if table is None:
            raise InputError(SOURCE, None, "not a fastir pair dataset: pass "
                                           "fastir.interop.st_sampler.pair_dataset(dataset, ...) as train_dataset")
        self.sampler = BatchSampler(train_table_from_arrow(table, SOURCE), strategy=strategy, batch_size=batch_size,
                                    seed=seed, alpha=alpha, alpha_mode=alpha_mode, lang_weights=lang_weights)
        self.batch_size, self.drop_last, self.seed = int(batch_size), True, int(seed)
        self.rows = len(dataset)
        self.epoch = 0
        check_ranks_agree(self.sampler)

    @classmethod
    def using(cls, **options):
        """The ``batch_sampler`` argument: ``SentenceTransformerTrainingArguments(batch_sampler=
        FastirBatchSampler.using(strategy="hybrid", alpha=0.5, alpha_mode="exact"))``."""
        return functools.partial(cls, **options)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.sampler.steps_per_epoch

    def __iter__(self):
        """Epoch ``self.epoch``'s batches, each ``query_row * N + passage_row`` per item."""
        sampler, rows = self.sampler, self.sampler.index.rows
        sampler.set_epoch(self.epoch)  # from the epoch's start, even when that epoch was drawn before
        for _ in range(len(self)):
            plan = sampler.next_plan()
            q = rows[plan.pairs, plan.query_lang].astype(np.int64)
            p = rows[plan.pairs, plan.passage_lang].astype(np.int64)
            yield (q * self.rows + p).tolist()


def check_ranks_agree(sampler) -> None:
    """Under DDP every rank draws the same batch sequence from its own copy of the data: refuse
    copies that differ (pairs, languages, rows), on every rank."""
    import sys

    td = sys.modules.get("torch.distributed")
    if td is None or not td.is_available() or not td.is_initialized() or td.get_world_size() < 2:
        return
    from fastir.core.distributed import Distributed

    dist = Distributed(td.get_rank(), td.get_world_size())
    mine = {"pairs": int(sampler.index.num_pairs), "langs": list(sampler.langs),
            "rows": int(sampler.index.table_starts[-1]),
            "index": hashlib.sha256(np.ascontiguousarray(sampler.index.rows, dtype=np.int64).tobytes()).hexdigest()}
    everyone = dist.gather_objects(mine)
    for rank, theirs in enumerate(everyone):
        if theirs != everyone[0]:
            raise InputError(SOURCE, None, f"ranks disagree on the data: rank 0 has {everyone[0]['pairs']} groups in "
                                           f"{everyone[0]['rows']} rows, rank {rank} has {theirs['pairs']} in "
                                           f"{theirs['rows']} (or other rows); every rank must load the same dataset")


def _make_pair_dataset():
    datasets = require("datasets")

    class PairDataset(datasets.Dataset):
        """A ``datasets.Dataset`` whose batches (``__getitems__``) decode :class:`FastirBatchSampler`'s
        ``query_row * N + passage_row`` items; every other access reads the rows as they are."""

        def __getitems__(self, keys: list) -> list:
            query, passage, negative = self._fastir_texts
            q_rows, p_rows = np.divmod(np.asarray(keys, dtype=np.int64), len(self))
            q = datasets.Dataset.__getitem__(self, q_rows.tolist())
            p = datasets.Dataset.__getitem__(self, p_rows.tolist())
            out = [{query: a, passage: b} for a, b in zip(q[query], p[passage])]
            if negative is not None:
                for item, text in zip(out, p[negative]):
                    item[negative] = text
            return out

    PairDataset.__module__, PairDataset.__qualname__ = __name__, "PairDataset"  # picklable (spawned workers)
    return PairDataset


def __getattr__(name):
    return built_on_first_use(globals(), {"PairDataset": _make_pair_dataset}, name)
