"""The run dir: the contract between ``fastir embed`` (writer) and ``fastir score`` (reader).

``RUN/run.json`` plus three Arrow IPC files (schemas in ``data_specs/run-format.json``)::

    queries.arrow     id: string, lang: string, xling_id: string, embedding: fixed_size_list<T>[D]
    candidates.arrow  id: string, lang: string, embedding: fixed_size_list<T>[D]
    qrels.arrow       query_id: string, candidate_id: string

T is float16 or float32 (``run.json`` ``dtype``). Readers memory-map the files and hand out
zero-copy numpy views of the embeddings; writers write under a temporary name and rename.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.atomic import atomic_dir, atomic_path
from fastir.errors import InputError
from fastir.names import check_langs

RUN_FORMAT = "fastir-run/1"
RUN_JSON = "run.json"
QUERIES = "queries.arrow"
CANDIDATES = "candidates.arrow"
QRELS = "qrels.arrow"
DTYPES = {"float16": pa.float16(), "float32": pa.float32()}
# Rows per record batch when writing whole arrays (~64 MiB of embeddings per batch).
_BATCH_BYTES = 64 << 20


def run_format_spec() -> dict:
    with open(Path(str(resources.files("fastir.data_specs"))) / "run-format.json", encoding="utf-8") as fh:
        return json.load(fh)


def _arrow_type(type_name: str, dtype: str, dim: int) -> pa.DataType:
    if type_name == "string":
        return pa.string()
    if type_name.startswith("fixed_size_list"):
        return pa.list_(DTYPES[dtype], dim)
    raise ValueError(f"unknown type {type_name!r} in run-format.json")


def table_schema(table: str, dtype: str = "float32", dim: int = 1) -> pa.Schema:
    """Arrow schema of ``queries`` / ``candidates`` / ``qrels`` for a given embedding dtype and dim."""
    fields = run_format_spec()["tables"][table]
    return pa.schema([pa.field(f["name"], _arrow_type(f["type"], dtype, dim), nullable=False) for f in fields])


def embedding_array(embeddings: np.ndarray, dtype: str) -> pa.FixedSizeListArray:
    """A (N, D) numpy array as an Arrow fixed_size_list<dtype>[D] column (zero-copy when possible)."""
    emb = np.ascontiguousarray(embeddings, dtype=np.dtype(dtype))
    n, dim = emb.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), type=DTYPES[dtype]), dim)


class EmbeddingTable:
    """One side of a run (queries or candidates): ids, languages and an (N, D) embedding matrix.

    ``ids`` / ``langs`` / ``xling_ids`` are Python lists built on first use from the Arrow columns
    (``table``), so that reading and validating a run stays vectorised.
    """

    def __init__(self, path: Path, table: pa.Table, embeddings: np.ndarray):
        self.path = path
        self.table = table
        self.embeddings = embeddings  # (N, D) float16 or float32; zero-copy view of the mmap when possible
        self._lists: dict[str, list[str]] = {}
        self._lang_codes: tuple[list[str], np.ndarray] | None = None

    def _column(self, name: str) -> list[str] | None:
        if name not in self.table.column_names:
            return None
        if name not in self._lists:
            self._lists[name] = self.table.column(name).to_pylist()
        return self._lists[name]

    @property
    def ids(self) -> list[str]:
        return self._column("id")

    @property
    def langs(self) -> list[str]:
        return self._column("lang")

    @property
    def xling_ids(self) -> list[str] | None:
        return self._column("xling_id")

    def __len__(self) -> int:
        return self.table.num_rows

    def lang_codes(self) -> tuple[list[str], np.ndarray]:
        """(languages in order of first appearance, int32 index of each row's language in that list)."""
        if self._lang_codes is None:
            encoded = self.table.column("lang").combine_chunks().dictionary_encode()
            self._lang_codes = (encoded.dictionary.to_pylist(),
                                encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32))
        return self._lang_codes


@dataclass
class Run:
    path: Path
    meta: dict
    queries: EmbeddingTable
    candidates: EmbeddingTable
    qrels: pa.Table

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def qrels_query_id(self) -> list[str]:
        return self.qrels.column("query_id").to_pylist()

    @property
    def qrels_candidate_id(self) -> list[str]:
        return self.qrels.column("candidate_id").to_pylist()

    def qrels_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Qrels as (query row, candidate row) int64 index arrays into the two tables."""
        if self._qrels_rows is None:
            self._qrels_rows = _qrels_rows(self.qrels, self.queries.table, self.candidates.table)
        return self._qrels_rows

    _qrels_rows: tuple[np.ndarray, np.ndarray] | None = None


def _qrels_rows(qrels: pa.Table, queries: pa.Table, candidates: pa.Table, file: Path | None = None):
    """Row indices of the qrels' ids in the two tables; unknown ids and duplicate pairs raise."""
    import pyarrow.compute as pc

    rows = []
    for column, side, what, where in (("query_id", queries, "query", QUERIES),
                                      ("candidate_id", candidates, "candidate", CANDIDATES)):
        idx = pc.index_in(qrels.column(column), value_set=side.column("id").combine_chunks())
        if idx.null_count:
            first = qrels.column(column).filter(pc.is_null(idx))[0].as_py()
            raise InputError(file, column, f"unknown {what} id {first!r} (not in {where})")
        rows.append(idx.to_numpy().astype(np.int64))
    q, c = rows
    key = np.sort(q * max(1, candidates.num_rows) + c)
    if len(key) > 1 and (key[1:] == key[:-1]).any():
        raise InputError(file, "query_id", "duplicate (query_id, candidate_id) rows")
    return q, c


def run_from_arrays(
    path: str | os.PathLike, meta: dict, *,
    query_ids, query_langs, query_xling_ids, query_embeddings: np.ndarray,
    candidate_ids, candidate_langs, candidate_embeddings: np.ndarray,
    qrels_query_ids, qrels_candidate_ids,
) -> Run:
    """An in-memory :class:`Run` (nothing written), e.g. for a quick evaluation while training.

    Embeddings are stored as ``meta['dtype']`` (default float32) and checked for NaN/inf like
    :func:`read_run` does; the tables' ids and qrels are not validated.
    """
    path = Path(path)
    meta = _full_meta(meta, "float32", int(query_embeddings.shape[1]))
    dtype = meta["dtype"]
    queries = pa.table({"id": pa.array(query_ids, pa.string()), "lang": pa.array(query_langs, pa.string()),
                        "xling_id": pa.array(query_xling_ids, pa.string())})
    candidates = pa.table({"id": pa.array(candidate_ids, pa.string()), "lang": pa.array(candidate_langs, pa.string())})
    sides = []
    for name, table, emb in ((QUERIES, queries, query_embeddings), (CANDIDATES, candidates, candidate_embeddings)):
        side = EmbeddingTable(path, table, np.ascontiguousarray(emb, dtype=np.dtype(dtype)))
        _check_finite(side, path / name)
        sides.append(side)
    return Run(path=path, meta=meta, queries=sides[0], candidates=sides[1],
               qrels=qrels_table(qrels_query_ids, qrels_candidate_ids))


# ----------------------------------------------------------------------------------------- writing


def check_output_dir(path: str | os.PathLike, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse an existing non-empty output directory unless ``overwrite`` (or ``resume``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, None, "output path exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not (overwrite or resume):
        raise InputError(path, None, "output directory exists and is not empty; pass --overwrite (or --resume)")


def write_table(path: str | os.PathLike, table: pa.Table) -> None:
    """Write an Arrow IPC file (uncompressed, memory-mappable) under a temporary name, then rename."""
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=_rows_per_batch(table))


def _rows_per_batch(table: pa.Table) -> int:
    if "embedding" not in table.column_names:
        return max(1, table.num_rows)
    t = table.schema.field("embedding").type
    row_bytes = t.list_size * t.value_type.bit_width // 8
    return max(1, _BATCH_BYTES // max(1, row_bytes))


def queries_table(ids, langs, xling_ids, embeddings: np.ndarray, dtype: str) -> pa.Table:
    dim = embeddings.shape[1]
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(langs, pa.string()), pa.array(xling_ids, pa.string()),
         embedding_array(embeddings, dtype)],
        schema=table_schema("queries", dtype, dim),
    )


def candidates_table(ids, langs, embeddings: np.ndarray, dtype: str) -> pa.Table:
    dim = embeddings.shape[1]
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(langs, pa.string()), embedding_array(embeddings, dtype)],
        schema=table_schema("candidates", dtype, dim),
    )


def qrels_table(query_ids, candidate_ids) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(query_ids, pa.string()), pa.array(candidate_ids, pa.string())], schema=table_schema("qrels")
    )


def write_run(
    path: str | os.PathLike,
    meta: dict,
    *,
    query_ids, query_langs, query_xling_ids, query_embeddings: np.ndarray,
    candidate_ids, candidate_langs, candidate_embeddings: np.ndarray,
    qrels_query_ids, qrels_candidate_ids,
    overwrite: bool = False,
) -> Path:
    """Write a complete run dir atomically (temporary directory, then rename).

    ``meta`` must hold at least dataset, model and normalized; format, dim and dtype are filled in
    (dtype from ``meta['dtype']``, default float16).
    """
    path = Path(path)
    check_output_dir(path, overwrite=overwrite)
    meta = _full_meta(meta, "float16", int(query_embeddings.shape[1]))
    dtype, dim = meta["dtype"], meta["dim"]
    if candidate_embeddings.shape[1] != dim:
        raise InputError(None, "dim", f"queries have dim {dim}, candidates {candidate_embeddings.shape[1]}")
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_table(tmp / QUERIES, queries_table(query_ids, query_langs, query_xling_ids, query_embeddings, dtype))
        write_table(tmp / CANDIDATES, candidates_table(candidate_ids, candidate_langs, candidate_embeddings, dtype))
        write_table(tmp / QRELS, qrels_table(qrels_query_ids, qrels_candidate_ids))
        write_run_json(tmp, meta)
    return path


def _full_meta(meta: dict, default_dtype: str, dim: int) -> dict:
    """``meta`` with format, dim and a checked embedding dtype (``meta['dtype']`` or the default)."""
    dtype = meta.get("dtype", default_dtype)
    if dtype not in DTYPES:
        raise InputError(None, "dtype", f"unsupported embedding dtype {dtype!r}; use float16 or float32")
    return {"format": RUN_FORMAT, **meta, "dim": dim, "dtype": dtype}


def write_run_json(directory: str | os.PathLike, meta: dict) -> None:
    with atomic_path(Path(directory) / RUN_JSON) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------- reading


def read_run_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    file = path / RUN_JSON
    if path.exists() and not path.is_dir():
        raise InputError(path, "RUN", "not a directory (a run dir holds run.json and the Arrow tables)")
    if not path.is_dir():
        raise InputError(path, "RUN", "run dir does not exist")
    if not file.is_file():
        raise InputError(file, None, "missing (not a fastir run dir)")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(file, "json", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(meta, dict):
        raise InputError(file, "json", f"expected a JSON object, found {type(meta).__name__}")
    if meta.get("format") != RUN_FORMAT:
        raise InputError(file, "format", f"expected {RUN_FORMAT!r}, found {meta.get('format')!r}")
    for key, kind in (("dataset", str), ("model", str), ("dim", int), ("dtype", str), ("normalized", bool)):
        if key not in meta:
            raise InputError(file, key, "missing")
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise InputError(file, key, f"expected {kind.__name__}, found {type(meta[key]).__name__}")
    if meta["dim"] <= 0:
        raise InputError(file, "dim", f"must be positive, found {meta['dim']}")
    if meta["dtype"] not in DTYPES:
        raise InputError(file, "dtype", f"expected float16 or float32, found {meta['dtype']!r}")
    if "langs" in meta:
        if not isinstance(meta["langs"], list):
            raise InputError(file, "langs", f"expected a list of language codes, found {type(meta['langs']).__name__}")
        check_langs(meta["langs"], file, "langs")
    return meta


def read_table(file: Path, expected: pa.Schema) -> pa.Table:
    """Memory-map an Arrow IPC file and check its schema (names and types, in order)."""
    if file.is_dir():
        raise InputError(file, None, "is a directory, expected an Arrow IPC file")
    if not file.is_file():
        raise InputError(file, None, "missing")
    try:
        source = pa.memory_map(str(file), "r")
        table = pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(file, None, f"not a readable Arrow IPC file ({' '.join(str(exc).split())})") from None
    names = table.schema.names
    want = expected.names
    for name in want:
        if name not in names:
            raise InputError(file, name, "column missing")
    for f in expected:
        got = table.schema.field(f.name).type
        if got != f.type:
            raise InputError(file, f.name, f"expected type {f.type}, found {got}")
        if table.column(f.name).null_count:
            raise InputError(file, f.name, "contains nulls")
    return table


def embeddings_view(table: pa.Table, file: Path, dim: int, dtype: str) -> np.ndarray:
    """(N, D) numpy view of the embedding column: zero-copy for a single record batch."""
    col = table.column("embedding")
    np_dtype = np.dtype(dtype)
    parts = []
    for chunk in col.chunks:
        values = chunk.values
        if chunk.offset or len(values) != len(chunk) * dim:
            values = values.slice(chunk.offset * dim, len(chunk) * dim)
        parts.append(values.to_numpy(zero_copy_only=True).reshape(-1, dim))
    if not parts:
        return np.empty((0, dim), dtype=np_dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _check_finite(side: EmbeddingTable, file: Path) -> None:
    from fastir.kernels.upcast import first_nonfinite_row

    row = first_nonfinite_row(side.embeddings)
    if row >= 0:
        raise InputError(file, "embedding", f"NaN or inf in the embedding of row {row} (id {side.table.column('id')[row].as_py()!r})")


def _check_unique(column: pa.ChunkedArray, file: Path, field_name: str) -> None:
    import pyarrow.compute as pc

    if pc.count_distinct(column).as_py() != len(column):
        counts = pc.value_counts(column)
        dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))[0].as_py()
        raise InputError(file, field_name, f"duplicate id {dup!r}")


def _check_langs(table: pa.Table, file: Path, meta: dict, meta_name: str) -> None:
    """The table's language codes are valid and, when run.json lists ``langs``, among them."""
    import pyarrow.compute as pc

    langs = check_langs(pc.unique(table.column("lang")).to_pylist(), file, "lang")
    if "langs" in meta:
        extra = sorted(set(langs) - set(meta["langs"]))
        if extra:
            raise InputError(file, "lang", f"language {extra[0]!r} is not in {meta_name} langs {meta['langs']}")


def _check_counts(meta: dict, file: Path, sides: dict, qrels: pa.Table) -> None:
    """run.json's ``num_*`` and ``langs`` (optional fields) must agree with the tables."""
    import pyarrow.compute as pc

    for key, rows in (("num_queries", len(sides["queries"])), ("num_candidates", len(sides["candidates"])),
                      ("num_qrels", qrels.num_rows)):
        if key in meta and (isinstance(meta[key], bool) or meta[key] != rows):
            raise InputError(file, key, f"run.json says {meta[key]!r}, the table has {rows} rows")
    if "langs" in meta:
        present = set().union(*(pc.unique(side.table.column("lang")).to_pylist() for side in sides.values()))
        absent = [lang for lang in meta["langs"] if lang not in present]
        if absent:
            raise InputError(file, "langs", f"language {absent[0]!r} has no query and no candidate in the tables")


def read_run(path: str | os.PathLike, check_finite: bool = True) -> Run:
    """Open a run dir: memory-map its tables and validate the whole contract.

    Checks: run.json fields; each table's schema and dimension against run.json; no nulls;
    no duplicate ids; qrels naming only known ids; no NaN/inf embeddings. Any failure raises
    :class:`InputError` naming the file and field.
    """
    path = Path(path)
    meta = read_run_json(path)
    dim, dtype = meta["dim"], meta["dtype"]
    sides = {}
    for name, file_name in (("queries", QUERIES), ("candidates", CANDIDATES)):
        file = path / file_name
        expected = table_schema(name, dtype, dim)
        table = read_table(file, _loose_embedding_schema(expected))
        if "embedding" not in table.column_names:
            raise InputError(file, "embedding", "column missing")
        emb_type = table.schema.field("embedding").type
        if not isinstance(emb_type, pa.FixedSizeListType):
            raise InputError(file, "embedding", f"expected fixed_size_list<{dtype}>[{dim}], found {emb_type}")
        if table.column("embedding").null_count:
            raise InputError(file, "embedding", "contains nulls")
        if emb_type.list_size != dim:
            raise InputError(file, "embedding", f"dimension {emb_type.list_size} does not match run.json dim {dim}")
        if emb_type.value_type != DTYPES[dtype]:
            raise InputError(file, "embedding", f"element type {emb_type.value_type} does not match run.json dtype {dtype}")
        _check_unique(table.column("id"), file, "id")
        _check_langs(table, file, meta, RUN_JSON)
        side = EmbeddingTable(path=file, table=table, embeddings=embeddings_view(table, file, dim, dtype))
        if check_finite:
            _check_finite(side, file)
        sides[name] = side
    qfile = path / QRELS
    qrels = read_table(qfile, table_schema("qrels"))
    _check_counts(meta, path / RUN_JSON, sides, qrels)
    run = Run(path=path, meta=meta, queries=sides["queries"], candidates=sides["candidates"], qrels=qrels)
    run._qrels_rows = _qrels_rows(qrels, sides["queries"].table, sides["candidates"].table, qfile)
    return run


def _loose_embedding_schema(expected: pa.Schema) -> pa.Schema:
    # The embedding column's dim/dtype are checked separately, with a clearer message.
    return pa.schema([f for f in expected if f.name != "embedding"])
