"""The dataset interface: what every evaluation collection gives ``embed``, ``experiment``,
in-training evaluation and ``fastir data``.

A dataset is three column sets (plain Python lists, one entry per row):

* :class:`Queries`: ``ids``, ``langs``, ``texts`` and an optional parallel-group id per query
  (``groups``: translations of one question share it, LAReQA's ``xling_id``).
* :class:`Candidates`: ``ids``, ``langs``, ``texts`` and an optional ``contexts`` (the passage a
  sentence was cut from; ``embed --candidates sentence+context`` encodes it as a text pair).
* :class:`Qrels`: ``query_ids``, ``candidate_ids`` and an integer grade ``relevance`` >= 0 per
  row. A grade of 0 is a judged non-relevant pair; binary metrics count grade >= 1 as relevant.

Implementations follow :class:`Dataset` (a Protocol, so no base class is needed) and are found by
name or by directory layout through :mod:`fastir.data.registry`. ``iter_candidates`` lets a large
collection hand out its candidates in batches without holding all their text at once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, fields
from typing import Iterator, Protocol, runtime_checkable

from fastir.core.errors import InputError

# The parallel-group id's column name in every Arrow file (run dirs, exports, train tables).
GROUP_COLUMN = "xling_id"
EXPORT_FILES = ("questions.arrow", "candidates.arrow", "qrels.arrow")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dataset_checksum(file_sha256: dict[str, str]) -> str:
    """One checksum for a dataset: sha256 over its sorted ``{file name} {sha256}`` lines."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(file_sha256.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass
class Queries:
    ids: list[str]
    langs: list[str]
    texts: list[str]
    groups: list[str] | None = None  # parallel-group id per query, or None when the collection has none

    def __len__(self) -> int:
        return len(self.ids)

    def to_arrow(self):
        import pyarrow as pa

        columns = {"id": self.ids, "lang": self.langs}
        if self.groups is not None:
            columns[GROUP_COLUMN] = self.groups
        columns["text"] = self.texts
        return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


@dataclass
class Candidates:
    ids: list[str]
    langs: list[str]
    texts: list[str]
    contexts: list[str] | None = None  # the passage each candidate belongs to, or None

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, start: int, stop: int) -> "Candidates":
        """Rows [start, stop) as a new object of the same class (every list-valued field cut)."""
        cut = {f.name: (v[start:stop] if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)}
        return type(self)(**cut)

    def arrow_columns(self) -> dict[str, list[str]]:
        columns = {"id": self.ids, "lang": self.langs, "text": self.texts}
        if self.contexts is not None:
            columns["context"] = self.contexts
        return columns

    def to_arrow(self):
        import pyarrow as pa

        return pa.table({name: pa.array(values, pa.string()) for name, values in self.arrow_columns().items()})


@dataclass
class Qrels:
    query_ids: list[str]
    candidate_ids: list[str]
    relevance: list[int] = field(default_factory=list)  # integer grade >= 0 per row

    def __len__(self) -> int:
        return len(self.query_ids)

    def to_arrow(self):
        import pyarrow as pa

        return pa.table({"query_id": pa.array(self.query_ids, pa.string()),
                         "candidate_id": pa.array(self.candidate_ids, pa.string()),
                         "relevance": pa.array(self.relevance, pa.int32())})


@runtime_checkable
class Dataset(Protocol):
    """One evaluation collection. ``name`` is what a run records; ``checksum`` identifies the bytes
    read (a resumed ``embed`` refuses a changed dataset); ``langs`` are the languages kept."""

    name: str
    langs: tuple[str, ...]
    checksum: str

    def queries(self) -> Queries: ...

    def candidates(self) -> Candidates: ...

    def iter_candidates(self, batch_size: int) -> Iterator[Candidates]:
        """The candidates in :meth:`candidates`' order, ``batch_size`` rows at a time."""
        ...

    def qrels(self) -> Qrels: ...

    def summary(self) -> dict:
        """Per-language counts and totals as a JSON-able dict (``fastir data show --format json``)."""
        ...

    def describe(self) -> str:
        """The summary as the table ``fastir data show`` prints."""
        ...


def check_qrels(qrels: Qrels, source: str | os.PathLike | None) -> None:
    """Every grade an int >= 0 (bool is not an int here); raised as ``source: relevance: ...``."""
    for i, grade in enumerate(qrels.relevance):
        if not isinstance(grade, int) or isinstance(grade, bool) or grade < 0:
            raise InputError(source, "relevance", f"row {i} ({qrels.query_ids[i]!r}, {qrels.candidate_ids[i]!r}): "
                                                  f"expected an integer >= 0, found {grade!r}")
    if len(qrels.relevance) != len(qrels.query_ids):
        raise InputError(source, "relevance", f"{len(qrels.relevance)} grades for {len(qrels.query_ids)} qrels")


def export_dataset(ds: Dataset, out: str | os.PathLike, overwrite: bool = False,
                   batch_size: int = 65536, inputs=()) -> dict[str, int]:
    """``fastir data export``: questions.arrow, candidates.arrow (written batch by batch from
    :meth:`Dataset.iter_candidates`) and qrels.arrow, as Arrow IPC, atomically into ``out``.
    Returns the rows written per table (queries, candidates, qrels). ``inputs``: the paths ``ds``
    was read from, which ``out`` may not be, hold or lie inside."""
    import pyarrow as pa

    from fastir.core.outputs import atomic_dir
    from fastir.core.arrow import write_table
    from fastir.core.outputs import check_output_dir

    check_output_dir(out, overwrite=overwrite, inputs=inputs, written=EXPORT_FILES)
    rows = {"queries": 0, "candidates": 0, "qrels": 0}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        queries = ds.queries().to_arrow()
        write_table(tmp / EXPORT_FILES[0], queries)
        rows["queries"] = queries.num_rows
        writer = None
        with pa.OSFile(str(tmp / EXPORT_FILES[1]), "wb") as sink:
            for batch in ds.iter_candidates(batch_size):
                table = batch.to_arrow()
                if writer is None:
                    writer = pa.ipc.new_file(sink, table.schema)
                writer.write_table(table)
                rows["candidates"] += table.num_rows
            if writer is None:  # no candidate at all: an empty table of the full-dataset schema
                writer = pa.ipc.new_file(sink, ds.candidates().to_arrow().schema)
            writer.close()
        qrels = ds.qrels().to_arrow()
        write_table(tmp / EXPORT_FILES[2], qrels)
        rows["qrels"] = qrels.num_rows
    return rows
