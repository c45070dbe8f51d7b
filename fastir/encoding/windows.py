"""``fastir embed`` streams each side in windows of at most ``window`` rows.

A 10 M-line corpus cannot be tokenized whole. The rows are read from the dataset in chunks
(:meth:`fastir.data.dataset.Dataset.iter_candidates`), cut into consecutive windows, and each window
is tokenized, sorted by length and batched by the token budget on its own. Only one window's text
and tokens are in memory at a time, and the benefit of length-sorted batches stays (a window of
65,536 texts sorts as well as a whole corpus). A side that fits in one window gets exactly the
plan of a whole-side sort, so the bundled datasets give the same run dir byte for byte.

The work dir holds, per window, ``window-<side>-<w>.arrow`` (the window's ids and languages;
its schema metadata records the first row and the number of batches the window was cut into) and
a few ``part-<side>-<w>-r<rank>-<k>.arrow`` (dataset rows, batch numbers and embeddings of the
batches a rank encoded, written each time it holds :data:`PART_ROWS` rows, and at the window's end).
So the number of work files is bounded by the windows, not by the batches: a 10 M-passage corpus
with small batches once left hundreds of thousands of part files. Every file is written under a
temporary name then renamed, so each exists whole or not at all: ``--resume`` reads which batches
the parts hold, skips a window whose batches of this rank are all there without tokenizing it again,
and the merge reads the ids from the window files instead of holding them while encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from fastir.core.errors import FastirError
from fastir.runs.rundir import DTYPES, embedding_array, write_table

# Rows per window: bounds the text and tokens held at once (~65k texts; BEIR passages of ~100
# words are ~40 MB of text and ~60 MB of int32 tokens), large enough that length sorting within
# a window batches almost as tightly as a whole-corpus sort. The bundled datasets fit in one.
WINDOW = 65536
# Rows read from the dataset per chunk (``iter_candidates``).
READ_CHUNK = 8192


@dataclass
class Window:
    """Rows [start, start + len) of one side, in dataset order."""

    side: str
    index: int
    start: int
    ids: list[str]
    langs: list[str]
    texts: list[str]
    contexts: list[str] | None

    def __len__(self) -> int:
        return len(self.ids)


def iter_windows(side: str, chunks: Iterable, size: int) -> Iterator[Window]:
    """Consecutive windows of ``size`` rows (the last one shorter) from ``chunks``, objects with
    ``ids``, ``langs``, ``texts`` and optionally ``contexts`` (Queries, Candidates); none when empty."""
    if size <= 0:
        raise ValueError(f"window size must be positive, found {size}")
    ids: list[str] = []
    langs: list[str] = []
    texts: list[str] = []
    contexts: list[str] | None = None
    index = start = 0
    for chunk in chunks:
        ctx = getattr(chunk, "contexts", None)
        if contexts is None and ctx is not None:
            contexts = []
        ids += chunk.ids
        langs += chunk.langs
        texts += chunk.texts
        if contexts is not None:
            contexts += ctx
        while len(ids) >= size:
            yield Window(side, index, start, ids[:size], langs[:size], texts[:size],
                         contexts[:size] if contexts is not None else None)
            del ids[:size], langs[:size], texts[:size]
            if contexts is not None:
                del contexts[:size]
            index, start = index + 1, start + size
    if ids:
        yield Window(side, index, start, ids, langs, texts, contexts)


# ---------------------------------------------------------------------------------- work-dir files


# Rows a rank holds before it writes them as one part file (embeddings of a window's batches).
PART_ROWS = 16384


def part_paths(work: Path, side: str, window: int) -> list[Path]:
    """The part files of a window, any rank's, in name order."""
    return sorted(work.glob(f"part-{side}-{window:06d}-r*.arrow"))


def new_part_path(work: Path, side: str, window: int, rank: int) -> Path:
    """The next free part name of ``rank`` in ``window`` (a resumed run adds to those there)."""
    taken = {p.name for p in work.glob(f"part-{side}-{window:06d}-r{rank}-*.arrow")}
    k = 0
    while f"part-{side}-{window:06d}-r{rank}-{k:04d}.arrow" in taken:
        k += 1
    return work / f"part-{side}-{window:06d}-r{rank}-{k:04d}.arrow"


def window_path(work: Path, side: str, window: int) -> Path:
    return work / f"window-{side}-{window:06d}.arrow"


def part_schema(store: str, dim: int) -> pa.Schema:
    return pa.schema([pa.field("row", pa.int64(), nullable=False), pa.field("batch", pa.int32(), nullable=False),
                      pa.field("embedding", pa.list_(DTYPES[store], dim), nullable=False)])


def write_part(path: Path, pieces: list[tuple[int, np.ndarray, np.ndarray]], store: str) -> None:
    """One part file of ``pieces``: (batch number, dataset rows, embeddings) of each batch."""
    rows = np.concatenate([r for _, r, _ in pieces]).astype(np.int64)
    batch = np.concatenate([np.full(len(r), b, np.int32) for b, r, _ in pieces])
    emb = np.concatenate([e for _, _, e in pieces])
    table = pa.Table.from_arrays([pa.array(rows), pa.array(batch), embedding_array(emb, store)],
                                 schema=part_schema(store, emb.shape[1]))
    write_table(path, table)


def done_batches(work: Path, side: str, window: int) -> set[int]:
    """The batch numbers the window's part files hold."""
    done: set[int] = set()
    for path in part_paths(work, side, window):
        table = _read_work_file(path)
        if "batch" not in table.column_names:
            raise FastirError(f"{path}: a part file of an earlier fastir; rerun with --overwrite")
        done.update(np.unique(table.column("batch").to_numpy()).tolist())
    return done


def write_window(path: Path, window: Window, batches: int) -> None:
    """The window's ids and languages, with its first row and batch count in the schema metadata."""
    meta = {b"start": str(window.start).encode(), b"batches": str(batches).encode()}
    schema = pa.schema([pa.field("id", pa.string()), pa.field("lang", pa.string())], metadata=meta)
    write_table(path, pa.Table.from_arrays([pa.array(window.ids, pa.string()), pa.array(window.langs, pa.string())],
                                           schema=schema))


def _read_work_file(path: Path, schema_only: bool = False):
    """A work file's table (or schema): a damaged one (a crash or a full disk mid-write on some file
    system, an edit) is one line, not pyarrow's ArrowInvalid."""
    try:
        with pa.memory_map(str(path), "r") as source:
            reader = pa.ipc.open_file(source)
            return reader.schema if schema_only else reader.read_all()
    except pa.ArrowInvalid as exc:
        raise FastirError(f"{path}: damaged work file ({' '.join(str(exc).split())[:120]}); rerun with "
                          "--overwrite") from None


def read_window(path: Path) -> tuple[pa.Table, int, int]:
    """(ids + langs table, first row, batches) of a window file."""
    table = _read_work_file(path)
    meta = table.schema.metadata or {}
    try:
        return table, int(meta[b"start"]), int(meta[b"batches"])
    except (KeyError, ValueError):
        raise FastirError(f"{path}: window file without start/batches; rerun with --overwrite") from None


def window_batches(path: Path) -> int | None:
    """The batch count a window file records, or None when there is none (not planned yet)."""
    if not path.is_file():
        return None
    meta = _read_work_file(path, schema_only=True).metadata or {}
    return int(meta[b"batches"]) if b"batches" in meta else None


def gather_window(work: Path, side: str, index: int, store: str, dim: int) -> tuple[pa.Table, np.ndarray]:
    """(ids + langs, (rows, dim) embeddings in dataset order) of one window, from its parts."""
    table, start, batches = read_window(window_path(work, side, index))
    n = table.num_rows
    out = np.zeros((n, dim), dtype=np.dtype(store))
    seen = np.zeros(n, dtype=bool)
    expected = part_schema(store, dim)
    for path in part_paths(work, side, index):
        part = _read_work_file(path)
        if part.schema != expected:
            raise FastirError(f"{path}: unexpected schema {part.schema}; rerun with --overwrite")
        rows = part.column("row").to_numpy() - start
        values = part.column("embedding").combine_chunks().values.to_numpy(zero_copy_only=False)
        out[rows] = values.reshape(len(rows), dim)
        seen[rows] = True
    if not seen.all():
        raise FastirError(f"{work}: {side} row {start + int(np.argmin(seen))} was never encoded (of the "
                          f"{batches} batches of window {index}, a rank did not finish); rerun with --resume")
    return table, out
