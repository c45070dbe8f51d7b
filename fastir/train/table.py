"""Parallel QA training tables: one row per (pair, language), read as memory-mapped Arrow.

Columns: ``xling_id`` (the pair: every translation of one question shares it), ``lang``,
``query``, ``passage``, optional ``negative`` (a hard-negative passage in the row's language),
optional ``source`` (dataset name; default: the file's stem). Parquet, Arrow IPC (file or
stream) and JSONL are accepted. Uncompressed Arrow IPC is memory-mapped in place; Parquet and
JSONL are converted once, in bounded memory, into an Arrow IPC cache file (``$FASTIR_CACHE_DIR``,
default ``~/.cache/fastir/train-tables``) keyed by the input's path, size and mtime, then
memory-mapped. Texts are decoded on demand from the mapped buffers, so memory holds integer
indices only (see :class:`PairIndex`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.errors import InputError
from fastir.names import check_langs

REQUIRED = ("xling_id", "lang", "query", "passage")
OPTIONAL = ("negative", "source")
TEXT_COLUMNS = REQUIRED + OPTIONAL
_STRING_TYPES = (pa.string(), pa.large_string())
_CACHE_FORMAT = "fastir-train-cache/1"
_CONVERT_ROWS = 1 << 17  # rows per record batch when converting Parquet / JSONL


# File-name suffixes of each train-table format.
SUFFIXES = {"parquet": (".parquet", ".pq"), "arrow": (".arrow", ".ipc", ".feather", ".arrows"),
            "jsonl": (".jsonl", ".ndjson", ".json")}


def table_format(path: str | os.PathLike) -> str:
    """``parquet`` | ``arrow`` | ``jsonl`` from the file name."""
    name = os.fspath(path).lower()
    for fmt, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    raise InputError(path, None, "unknown table format: expected .parquet, .arrow (Arrow IPC) or .jsonl")


def cache_dir() -> Path:
    env = os.environ.get("FASTIR_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastir"
    return base / "train-tables"


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
        self.name = _stem(path)
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
        table, mapped = _map_ipc(state["mapped_from"], state["path"])
        self.__init__(state["path"], state["format"], table, state["mapped_from"], mapped)

    def __repr__(self) -> str:
        return f"TrainTable({os.fspath(self.path)!r}, rows={self.num_rows}, format={self.format!r})"


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (s for suffixes in SUFFIXES.values() for s in suffixes):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def open_train_table(path: str | os.PathLike) -> TrainTable:
    """Open and validate a parallel QA table (Parquet, Arrow IPC or JSONL) as memory-mapped Arrow."""
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(path, None, "no such file")
    if fmt == "arrow":
        mapped = path
    else:
        mapped = _cached_conversion(path, fmt)
    try:
        table, buffer = _map_ipc(mapped, path)
        _validate(table, path)
    except InputError:
        if mapped != path:  # a rejected table's converted copy must not stay in the cache
            mapped.unlink(missing_ok=True)
        raise
    return TrainTable(path, fmt, table, mapped, buffer)


def _map_ipc(mapped: Path, shown: Path) -> tuple[pa.Table, pa.Buffer]:
    try:
        source = pa.memory_map(str(mapped), "r")
        try:
            reader = pa.ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_stream(source)
        table = reader.read_all()
        source.seek(0)
        return table, source.read_buffer(source.size())  # zero-copy view of the mapping
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(shown, None, f"cannot read Arrow IPC: {exc}") from None


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
    _release_arrow_memory()


def _release_arrow_memory() -> None:
    # Arrow's allocator keeps freed pages for reuse; the transient arrays of validation and
    # indexing (tens of MB per 10M rows) would otherwise stay in the process's RSS.
    pa.default_memory_pool().release_unused()


# --- Parquet / JSONL -> Arrow IPC cache ---------------------------------------------------------


def _cache_key(path: Path, fmt: str) -> str:
    st = path.stat()
    ident = json.dumps([_CACHE_FORMAT, str(path.resolve()), st.st_size, st.st_mtime_ns, fmt])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def _cached_conversion(path: Path, fmt: str) -> Path:
    target = cache_dir() / f"{_stem(path)}.{_cache_key(path, fmt)}.arrow"
    if target.is_file():
        return target
    try:
        _convert(path, fmt, target, numeric_ids=False)
    except _NumericIds:
        _convert(path, fmt, target, numeric_ids=True)
    return target


class _NumericIds(Exception):
    """JSON lines with numeric xling_ids: parse them as integers, then cast to strings."""


def _convert(path: Path, fmt: str, target: Path, numeric_ids: bool) -> None:
    from fastir.atomic import atomic_path

    with atomic_path(target) as tmp:
        batches = _parquet_batches(path) if fmt == "parquet" else _jsonl_batches(path, numeric_ids)
        first = next(batches, None)
        if first is None:
            raise InputError(path, "rows", "the table has no rows")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, first.schema) as writer:
            writer.write_batch(first)
            for batch in batches:
                writer.write_batch(batch)


def _target_schema(present: list[str]) -> pa.Schema:
    return pa.schema([pa.field(n, pa.string()) for n in TEXT_COLUMNS if n in present])


def _conform(batch: pa.RecordBatch, schema: pa.Schema, path: Path) -> pa.RecordBatch:
    arrays = []
    for field in schema:
        column = batch.column(field.name)
        if column.type != pa.string():
            # Integer ids are common (e.g. SQuAD-style numeric ids): read them as strings.
            if field.name == "xling_id" and pa.types.is_integer(column.type):
                column = column.cast(pa.string())
            elif pa.types.is_large_string(column.type) or pa.types.is_dictionary(column.type):
                column = column.cast(pa.string())
            elif pa.types.is_null(column.type):
                raise InputError(path, field.name, f"{len(column)} null value(s)")
            else:
                raise InputError(path, field.name, f"expected a string column, found {column.type}")
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _parquet_batches(path: Path):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(str(path), memory_map=True)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, None, f"cannot read Parquet: {exc}") from None
    names = pf.schema_arrow.names
    for name in REQUIRED:
        if name not in names:
            raise InputError(path, name, f"missing column (found: {', '.join(names) or 'none'})")
    schema = _target_schema(names)
    try:
        for batch in pf.iter_batches(batch_size=_CONVERT_ROWS, columns=schema.names):
            yield _conform(batch, schema, path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, None, f"cannot read Parquet: {exc}") from None


def _jsonl_batches(path: Path, numeric_ids: bool):
    import pyarrow.json as pj

    # Read every text column as a string; other fields are ignored.
    explicit = pa.schema(
        [pa.field(n, pa.int64() if numeric_ids and n == "xling_id" else pa.string()) for n in TEXT_COLUMNS]
    )
    parse = pj.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="ignore")
    try:
        reader = pj.open_json(str(path), read_options=pj.ReadOptions(block_size=16 << 20), parse_options=parse)
        present: list[str] | None = None
        for batch in reader:
            if present is None:
                present = [n for n in TEXT_COLUMNS if n in batch.schema.names and batch.column(n).null_count < len(batch)]
                for name in REQUIRED:
                    if name not in present:
                        raise InputError(path, name, "missing field in the JSON lines")
                schema = _target_schema(present)
            yield _conform(batch.select(schema.names), schema, path)
    except (pa.ArrowInvalid, OSError) as exc:
        if not numeric_ids and "Column(/xling_id) changed from string to number" in str(exc):
            raise _NumericIds() from None
        import re

        column = re.search(r"Column\(/([^)]*)\)", str(exc))
        raise InputError(path, column.group(1) if column else None, f"cannot read JSON lines: {' '.join(str(exc).split())}") from None


# --- LAReQA -> train table ---------------------------------------------------------------------


def lareqa_train_table(ds) -> pa.Table:
    """Each kept LAReQA question with its own-language answer sentence; ``source`` = dataset name."""
    n = ds.num_questions
    return pa.table(
        {
            "xling_id": pa.array(ds.question_xling_id, pa.string()),
            "lang": pa.array(ds.question_lang, pa.string()),
            "query": pa.array(ds.question_text, pa.string()),
            "passage": pa.array(ds.question_answer, pa.string()),
            "source": pa.array([ds.name] * n, pa.string()),
        }
    )


def write_train_table(table: pa.Table, out: str | os.PathLike, overwrite: bool = False) -> int:
    """Write ``table`` as Parquet, Arrow IPC or JSONL (by ``out``'s suffix), atomically."""
    out = Path(out)
    fmt = table_format(out)
    if out.exists() and not overwrite:
        raise InputError(out, None, "output file exists; pass --overwrite")
    if out.is_dir():
        raise InputError(out, None, "output path is a directory")
    write_rows(table, out, fmt)
    return table.num_rows


def write_rows(table: pa.Table, out: Path, fmt: str) -> None:
    """``table`` to ``out`` as ``fmt`` (parquet, arrow or jsonl: one JSON object per row), atomically."""
    from fastir.atomic import atomic_file, atomic_path

    if fmt == "parquet":
        import pyarrow.parquet as pq

        with atomic_path(out) as tmp:
            pq.write_table(table, str(tmp))
    elif fmt == "arrow":
        from fastir.runs.rundir import write_table

        write_table(out, table)
    else:
        with atomic_file(out, "w") as fh:
            for row in table.to_pylist():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_lareqa_train_table(ds, out: str | os.PathLike, overwrite: bool = False) -> int:
    """``fastir data to-train``: write ``ds`` as a parallel QA table; returns the rows written."""
    return write_train_table(lareqa_train_table(ds), out, overwrite=overwrite)


# --- the integer index over one or more tables -------------------------------------------------


@dataclass
class PairIndex:
    """Integer index over parallel QA tables: every pair (xling_id) is a dense int.

    ``rows[i, l]`` is the global row of pair ``i`` in language ``langs[l]`` (-1 when missing);
    global rows number the tables one after another (``table_starts``). ``pair_source[i]`` indexes
    ``sources``. Dense ids follow the sorted xling_id strings, so the same rows in any order or
    file format give the same index.
    """

    tables: list[TrainTable]
    langs: tuple[str, ...]
    sources: tuple[str, ...]
    rows: np.ndarray  # (num_pairs, num_langs) int32/int64
    pair_source: np.ndarray  # (num_pairs,) int32
    table_starts: np.ndarray  # (num_tables + 1,) int64

    @property
    def num_pairs(self) -> int:
        return self.rows.shape[0]

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.pair_source.nbytes

    def __post_init__(self):
        self.has_negative = all(t.has_negative for t in self.tables)

    def texts(self, column: str, rows: np.ndarray) -> list[str]:
        """Decode ``column`` at global ``rows`` (any mix of tables), in order."""
        return self.texts_many([(column, rows)])[0]

    def texts_many(self, requests: list[tuple[str, np.ndarray]]) -> list[list[str]]:
        """Decode several (column, global rows) requests, each in order."""
        rows = [np.asarray(r, dtype=np.int64) for _, r in requests]
        if len(self.tables) == 1:
            return self.tables[0].texts_many([(name, r) for (name, _), r in zip(requests, rows)])
        out: list[list] = [[None] * len(r) for r in rows]
        which = [np.searchsorted(self.table_starts, r, side="right") - 1 for r in rows]
        for t in np.unique(np.concatenate(which)).tolist():
            positions = [np.flatnonzero(w == t) for w in which]
            sub = [(name, r[p] - self.table_starts[t]) for (name, _), r, p in zip(requests, rows, positions)]
            for k, texts in enumerate(self.tables[t].texts_many(sub)):
                for pos, text in zip(positions[k].tolist(), texts):
                    out[k][pos] = text
        return out


def build_pair_index(tables: list[TrainTable]) -> PairIndex:
    """The :class:`PairIndex` of ``tables``; see :func:`_build_pair_index`."""
    try:
        index = _build_pair_index(tables)
    except InputError as exc:
        for t in tables:  # the rejected table's converted copy must not stay in the cache
            if t.mapped_from != t.path and exc.path == os.fspath(t.path):
                t.mapped_from.unlink(missing_ok=True)
        raise
    _release_arrow_memory()  # the encodings were transient
    return index


def _build_pair_index(tables: list[TrainTable]) -> PairIndex:
    """Vectorised index (Arrow dictionary encoding + numpy scatter, chunk by chunk, so the
    transient memory is one chunk's worth); validates (xling_id, lang) uniqueness and that every
    pair belongs to one source."""
    import pyarrow.compute as pc

    if not tables:
        raise InputError(None, "DATA", "no training table given")
    encoded = [t.table.column("xling_id").dictionary_encode() for t in tables]
    dictionaries = [_dictionary(e) for e in encoded]
    if len(tables) == 1:
        uniq = dictionaries[0]
    else:
        uniq = pc.unique(pa.chunked_array([d.cast(pa.large_string()) for d in dictionaries], pa.large_string()))
    uniq = uniq.take(pc.sort_indices(uniq))  # dense ids follow the sorted xling_id strings
    langs = sorted(set().union(*(pc.unique(t.table.column("lang")).to_pylist() for t in tables)))
    sources = sorted(
        set().union(*(pc.unique(t.table.column("source")).to_pylist() if t.has_source else [t.name] for t in tables))
    )
    num_pairs, num_langs = len(uniq), len(langs)
    starts = np.cumsum([0] + [t.num_rows for t in tables], dtype=np.int64)
    index_type = np.int32 if starts[-1] < np.iinfo(np.int32).max else np.int64
    rows = np.full(num_pairs * num_langs, -1, dtype=index_type)
    pair_source = np.full(num_pairs, -1, dtype=np.int32)
    for k, t in enumerate(tables):
        to_pair = _positions(dictionaries[k], uniq)
        lang_enc = t.table.column("lang").dictionary_encode()
        to_lang = _positions(_dictionary(lang_enc), pa.array(langs, pa.string()))
        if t.has_source:
            source_enc = t.table.column("source").dictionary_encode()
            to_source = _positions(_dictionary(source_enc), pa.array(sources, pa.string()))
            source_chunks = source_enc.chunks
        else:
            source_chunks = None
        offset = int(starts[k])
        for c, chunk in enumerate(encoded[k].chunks):
            n = len(chunk)
            if n == 0:
                continue
            pair = to_pair[_indices(chunk)]
            lang = to_lang[_indices(lang_enc.chunk(c))]
            key = pair.astype(np.int64) * num_langs + lang
            global_rows = np.arange(offset, offset + n, dtype=index_type)
            before = rows[key]
            rows[key] = global_rows
            # a key written twice (in this chunk, or before) is a duplicate (xling_id, lang)
            clash = np.flatnonzero((before >= 0) | (rows[key] != global_rows))
            if clash.size:
                r = int(clash[0])
                raise InputError(
                    t.path, "xling_id",
                    f"({uniq[int(pair[r])].as_py()!r}, lang {langs[int(lang[r])]!r}) appears more than once "
                    f"(row {offset - int(starts[k]) + r})",
                )
            if source_chunks is not None:
                src = to_source[_indices(source_chunks[c])]
            else:
                src = np.full(n, sources.index(t.name), dtype=np.int32)
            seen = pair_source[pair]
            pair_source[pair] = src
            bad = np.flatnonzero(((seen >= 0) & (seen != src)) | (pair_source[pair] != src))
            if bad.size:
                r = int(bad[0])
                raise InputError(
                    t.path, "source", f"xling_id {uniq[int(pair[r])].as_py()!r} has rows in more than one source"
                )
            offset += n
    return PairIndex(
        tables=list(tables),
        langs=tuple(langs),
        sources=tuple(sources),
        rows=rows.reshape(num_pairs, num_langs),
        pair_source=pair_source,
        table_starts=starts,
    )


def _dictionary(encoded: pa.ChunkedArray) -> pa.Array:
    # ChunkedArray.dictionary_encode shares one dictionary between all chunks
    return encoded.chunk(0).dictionary


def _indices(chunk) -> np.ndarray:
    return chunk.indices.to_numpy(zero_copy_only=False)


def _positions(values: pa.Array, sorted_set: pa.Array) -> np.ndarray:
    """For each of ``values`` (distinct), its position in ``sorted_set`` (which holds them all)."""
    import pyarrow.compute as pc

    if values.type != sorted_set.type:
        sorted_set = sorted_set.cast(values.type)
    return pc.index_in(values, value_set=sorted_set).to_numpy(zero_copy_only=False).astype(np.int32)
