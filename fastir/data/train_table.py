"""Parallel QA training tables: one row per (pair, language), read as memory-mapped Arrow.

Columns: ``xling_id`` (the pair: every translation of one question shares it), ``lang``,
``query``, ``passage``, optional ``negative`` (a hard-negative passage in the row's language),
optional ``source`` (dataset name; default: the file's stem). Parquet, Arrow IPC (file or
stream) and JSONL are accepted. Uncompressed Arrow IPC is memory-mapped in place; Parquet and
JSONL are converted once into an Arrow IPC cache file, then memory-mapped
(:mod:`fastir.data.train_table_ingest`). Texts are decoded on demand from the mapped buffers, so memory holds
integer indices only (:mod:`fastir.sampling.pair_index`). Writing tables: :mod:`fastir.data.train_table_writer`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.core.errors import InputError
from fastir.core.names import check_langs
from fastir.data.train_table_ingest import REQUIRED, TEXT_COLUMNS, cached_conversion, map_ipc, stem, table_format

__all__ = ["TrainTable", "open_train_table", "table_format", "train_table_from_arrow"]

_STRING_TYPES = (pa.string(), pa.large_string())


def _file_views(mapped: pa.Buffer) -> dict:
    """One uint8 / int32 / int64 view of a mapped file (zero-copy), shared by all its columns."""
    size = mapped.size
    return {
        "buffer": mapped,
        0: np.frombuffer(mapped, dtype=np.uint8),
        4: np.frombuffer(mapped, dtype=np.int32, count=size // 4),
        8: np.frombuffer(mapped, dtype=np.int64, count=size // 8),
    }


class _TextColumn:
    """Random access to one string column of a (chunked) memory-mapped table, no copies.

    ``ChunkedArray.take`` concatenates the chunks (copying every string) before taking. When
    every chunk's buffers lie inside the mapped file (uncompressed IPC), the file is viewed as
    one byte array and a compiled gather reads the requested rows of any chunk in one call;
    otherwise per-chunk views are decoded one row at a time.
    """

    def __init__(self, column: pa.ChunkedArray, views: dict | None):
        chunks = [c for c in column.chunks if len(c)]
        self._starts = np.cumsum([0] + [len(c) for c in chunks], dtype=np.int64)
        offset_type = np.int64 if pa.types.is_large_string(column.type) else np.int32
        self._offsets, self._data = [], []
        for chunk in chunks:
            _, offsets, data = chunk.buffers()
            view = np.frombuffer(offsets, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
            self._offsets.append(view)
            self._data.append(memoryview(data) if data is not None else memoryview(b""))
        self._file = self._file_view(chunks, views, offset_type)

    @staticmethod
    def _file_view(chunks, views, offset_type):
        if views is None or not chunks:
            return None
        mapped = views["buffer"]
        base, size, item = mapped.address, mapped.size, np.dtype(offset_type).itemsize
        word_base, data_base = [], []
        for chunk in chunks:
            _, offsets, data = chunk.buffers()
            off = offsets.address - base
            if not (0 <= off and off + offsets.size <= size and off % item == 0):
                return None
            word_base.append(off // item + chunk.offset)
            if data is None or data.size == 0:
                data_base.append(0)
            else:
                dat = data.address - base
                if not (0 <= dat and dat + data.size <= size):
                    return None
                data_base.append(dat)
        return views[0], views[item], np.array(word_base, dtype=np.int64), np.array(data_base, dtype=np.int64)

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chunk, row within the chunk) of table rows."""
        if len(self._starts) == 2:
            return np.zeros(len(rows), dtype=np.int64), rows
        chunk = np.searchsorted(self._starts, rows, side="right") - 1
        return chunk, rows - self._starts[chunk]

    def take(self, rows: np.ndarray) -> list[str]:
        """Row-at-a-time decoding from the per-chunk views (buffers outside the mapping)."""
        chunk, local = self.locate(rows)
        out = []
        for c, r in zip(chunk.tolist(), local.tolist()):
            offsets = self._offsets[c]
            out.append(self._data[c][offsets[r] : offsets[r + 1]].tobytes().decode("utf-8"))
        return out


class TrainTable:
    """A validated, memory-mapped parallel QA table. Build with :func:`open_train_table`."""

    def __init__(self, path: Path, fmt: str, table: pa.Table, mapped_from: Path, mapped: pa.Buffer | None = None):
        layouts = {tuple(len(c) for c in col.chunks) for col in table.columns}
        if len(layouts) > 1:  # align the columns' chunks (zero-copy slices) for chunk-wise indexing
            table = pa.Table.from_batches(table.to_batches(), schema=table.schema)
        self.path = path
        self.format = fmt
        self.table = table
        self.mapped_from = mapped_from  # the Arrow IPC file actually mapped (the cache for Parquet/JSONL)
        self.has_negative = "negative" in table.column_names
        self.has_source = "source" in table.column_names
        self.name = stem(path)
        self._mapped = mapped  # the whole mapped file, zero-copy (None: buffers live elsewhere)
        self._views: dict | None = None
        self._gathers: dict[tuple, tuple] = {}  # column names -> (columns, gather tables or None)
        self._column_ids: dict[tuple, np.ndarray] = {}  # request lengths -> column of each string
        self._columns: dict[str, _TextColumn] = {}

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def langs(self) -> list[str]:
        """The table's languages, sorted."""
        import pyarrow.compute as pc

        return sorted(pc.unique(self.table.column("lang")).to_pylist())

    def texts(self, column: str, rows: np.ndarray) -> list[str]:
        """Decode ``column`` at integer ``rows`` from the mapped buffers."""
        return self.texts_many([(column, rows)])[0]

    def texts_many(self, requests: list[tuple[str, np.ndarray]]) -> list[list[str]]:
        """Decode several (column, rows) requests; one compiled gather serves them all when
        every column's buffers lie in the mapped file."""
        names = tuple(name for name, _ in requests)
        plan = self._gathers.get(names)
        if plan is None:
            plan = self._gathers[names] = self._gather_plan(names)
        cols, bases = plan
        rows = [r if isinstance(r, np.ndarray) and r.dtype == np.int64 else np.asarray(r, dtype=np.int64)
                for _, r in requests]
        if bases is not None:
            from fastir.kernels.sampling import gather_strings

            lengths = tuple(len(r) for r in rows)
            if len(cols[0]._starts) == 2:  # one chunk: no search
                local = np.concatenate(rows) if len(rows) > 1 else rows[0]
                chunk = self._zeros(len(local))
            else:
                located = [c.locate(r) for c, r in zip(cols, rows)]
                chunk = np.concatenate([l[0] for l in located])
                local = np.concatenate([l[1] for l in located])
            column = self._column_ids.get(lengths)
            if column is None:
                column = np.repeat(np.arange(len(rows)), lengths)
                if len(self._column_ids) < 64:  # batch shapes repeat; bound the cache anyway
                    self._column_ids[lengths] = column
            flat = gather_strings(bases[0], bases[1], bases[2], bases[3], column, chunk, local)
            if flat is not None:
                out, pos = [], 0
                for n in lengths:
                    out.append(flat[pos : pos + n])
                    pos += n
                return out
        return [c.take(r) for c, r in zip(cols, rows)]

    def _zeros(self, n: int) -> np.ndarray:
        z = self._column_ids.get(("zeros", n))
        if z is None:
            z = np.zeros(n, dtype=np.int64)
            if len(self._column_ids) < 64:
                self._column_ids[("zeros", n)] = z
        return z

    def _gather_plan(self, names: tuple[str, ...]):
        cols = [self._column(name) for name in names]
        fast = [c._file for c in cols]
        if any(f is None for f in fast) or len({id(f[1]) for f in fast}) != 1:
            return cols, None
        word_base = np.stack([f[2] for f in fast])
        data_base = np.stack([f[3] for f in fast])
        return cols, (fast[0][0], fast[0][1], word_base, data_base)

    def _column(self, name: str) -> _TextColumn:
        col = self._columns.get(name)
        if col is None:
            if self._views is None and self._mapped is not None:
                self._views = _file_views(self._mapped)
            col = self._columns[name] = _TextColumn(self.table.column(name), self._views)
        return col

    def __getstate__(self):
        # Memory maps don't pickle; DataLoader workers started by spawn re-map the same file.
        return {"path": self.path, "format": self.format, "mapped_from": self.mapped_from}

    def __setstate__(self, state):
        table, mapped = map_ipc(state["mapped_from"], state["path"])
        self.__init__(state["path"], state["format"], table, state["mapped_from"], mapped)

    def __repr__(self) -> str:
        return f"TrainTable({os.fspath(self.path)!r}, rows={self.num_rows}, format={self.format!r})"


def open_train_table(path: str | os.PathLike) -> TrainTable:
    """Open and validate a parallel QA table (Parquet, Arrow IPC or JSONL) as memory-mapped Arrow."""
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(path, None, "no such file")
    if fmt == "arrow":
        mapped = path
    else:
        mapped = cached_conversion(path, fmt)
    try:
        table, buffer = map_ipc(mapped, path)
        _validate(table, path)
    except InputError:
        if mapped != path:  # a rejected table's converted copy must not stay in the cache
            mapped.unlink(missing_ok=True)
        raise
    return TrainTable(path, fmt, table, mapped, buffer)


def train_table_from_arrow(table: pa.Table, name: str | os.PathLike) -> TrainTable:
    """A validated :class:`TrainTable` over an Arrow table already in memory (a Hugging Face dataset's);
    ``name`` stands for its path in messages. Its texts decode row by row (no mapped file)."""
    path = Path(name)
    _validate(table, path)
    return TrainTable(path, "arrow", table, path)


def _validate(table: pa.Table, path: Path) -> None:
    names = table.column_names
    for name in REQUIRED:
        if name not in names:
            raise InputError(path, name, f"missing column (found: {', '.join(names) or 'none'})")
    if table.num_rows == 0:
        raise InputError(path, "rows", "the table has no rows")
    for name in TEXT_COLUMNS:
        if name not in names:
            continue
        if names.count(name) > 1:
            raise InputError(path, name, "column appears more than once")
        column = table.column(name)
        if column.type not in _STRING_TYPES:
            raise InputError(path, name, f"expected a string column, found {column.type}")
        if column.null_count:
            raise InputError(path, name, f"{column.null_count} null value(s)")
    import pyarrow.compute as pc

    check_langs(pc.unique(table.column("lang")).to_pylist(), path, "lang")
    release_arrow_memory()


def release_arrow_memory() -> None:
    # Arrow's allocator keeps freed pages for reuse; the transient arrays of validation and
    # indexing (tens of MB per 10M rows) would otherwise stay in the process's RSS.
    pa.default_memory_pool().release_unused()
