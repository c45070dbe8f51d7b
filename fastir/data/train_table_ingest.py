"""How a train-table file becomes memory-mapped Arrow: its format from the file name, and the
one-time conversion of Parquet / JSONL into an Arrow IPC cache file.

The cache (``$FASTIR_CACHE_DIR``, default ``~/.cache/fastir/train-tables``) is keyed by the
input's path, size and mtime; conversion runs in bounded memory (record batches of
``_CONVERT_ROWS`` rows) and writes atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa

from fastir.core.errors import InputError

REQUIRED = ("xling_id", "lang", "query", "passage")
OPTIONAL = ("negative", "source")
TEXT_COLUMNS = REQUIRED + OPTIONAL
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


def stem(path: Path) -> str:
    """The file name without its table-format suffix (a table's default source name)."""
    name = path.name
    for suffix in (s for suffixes in SUFFIXES.values() for s in suffixes):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def map_ipc(mapped: Path, shown: Path) -> tuple[pa.Table, pa.Buffer]:
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


# --- Parquet / JSONL -> Arrow IPC cache ---------------------------------------------------------


def _cache_key(path: Path, fmt: str) -> str:
    st = path.stat()
    ident = json.dumps([_CACHE_FORMAT, str(path.resolve()), st.st_size, st.st_mtime_ns, fmt])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def cached_conversion(path: Path, fmt: str) -> Path:
    from fastir.core.temp_names import fit_name

    key = _cache_key(path, fmt)
    target = cache_dir() / f"{fit_name(stem(path), len(key) + len('..arrow'))}.{key}.arrow"
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
    from fastir.core.outputs import atomic_path

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
