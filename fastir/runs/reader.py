"""Reading run dirs (``fastir-run/2`` and ``fastir-run/1``): memory-mapped tables, validated whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.core.errors import InputError
from fastir.kernels import NONFINITE_KERNEL
from fastir.core.names import check_langs
from fastir.core.arrow import numeric_array, to_numpy
from fastir.runs.schema import (
    CANDIDATES, DTYPES, GROUP, MAX_DIM, QRELS, QUERIES, READ_FORMATS, RELEVANCE, RELEVANT_GRADE, RUN_FORMAT_V1, RUN_JSON,
    table_fields,
)
from fastir.runs.writer import full_meta, qrels_table, relevance_array



class EmbeddingTable:
    """One side of a run (queries or candidates): ids, languages and an (N, D) embedding matrix.

    ``ids`` / ``langs`` / ``xling_ids`` are Python lists built on first use from the Arrow columns
    (``table``), so that reading and validating a run stays vectorised.
    """

    def __init__(self, path: Path, table: pa.Table, embeddings: np.ndarray | list[np.ndarray]):
        self.path = path
        self.table = table
        # (N, D) float16 or float32, or its record batches as a list of (n_i, D) zero-copy views of
        # the mmap: ``chunks`` reads a pool beyond RAM batch by batch, ``embeddings`` joins them.
        self.chunks = list(embeddings) if isinstance(embeddings, list) else [embeddings]
        self._whole = self.chunks[0] if len(self.chunks) == 1 else None
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
        """The queries' parallel-group ids, or None when the run has none (optional in v2)."""
        return self._column(GROUP)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def embeddings(self) -> np.ndarray:
        """The (N, D) matrix: zero-copy for a single record batch, else joined (a copy) on first use."""
        if self._whole is None:
            self._whole = np.concatenate(self.chunks)
        return self._whole

    def lang_codes(self) -> tuple[list[str], np.ndarray]:
        """(languages in order of first appearance, int32 index of each row's language in that list)."""
        if self._lang_codes is None:
            encoded = self.table.column("lang").combine_chunks().dictionary_encode()
            self._lang_codes = (encoded.dictionary.to_pylist(),
                                to_numpy(encoded.indices).astype(np.int32))
        return self._lang_codes


@dataclass
class Run:
    path: Path
    meta: dict
    queries: EmbeddingTable
    candidates: EmbeddingTable
    qrels: pa.Table  # query_id, candidate_id, relevance (int32; a v1 run reads as all 1)

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def qrels_query_id(self) -> list[str]:
        return self.qrels.column("query_id").to_pylist()

    @property
    def qrels_candidate_id(self) -> list[str]:
        return self.qrels.column("candidate_id").to_pylist()

    @property
    def qrels_relevance(self) -> np.ndarray:
        """int32 grade of every qrels row (table order), >= 0; grade 0 is judged not relevant."""
        return to_numpy(self.qrels.column(RELEVANCE))

    def qrels_graded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every qrels row as (query row, candidate row, grade): int64, int64, int32 arrays."""
        if self._qrels_rows is None:
            self._qrels_rows = _qrels_rows(self.qrels, self.queries.table, self.candidates.table)
        q, c = self._qrels_rows
        return q, c, self.qrels_relevance

    def qrels_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The relevant pairs (grade >= RELEVANT_GRADE) as (query row, candidate row) int64 index
        arrays into the two tables: what the binary metrics count as golds."""
        q, c, grade = self.qrels_graded()
        if (grade >= RELEVANT_GRADE).all():
            return q, c
        keep = grade >= RELEVANT_GRADE
        return q[keep], c[keep]

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
        rows.append(to_numpy(idx).astype(np.int64))
    q, c = rows
    key = np.sort(q * max(1, candidates.num_rows) + c)
    if len(key) > 1 and (key[1:] == key[:-1]).any():
        raise InputError(file, "query_id", "duplicate (query_id, candidate_id) rows")
    return q, c


def run_from_arrays(
    path: str | os.PathLike, meta: dict, *,
    query_ids, query_langs, query_embeddings: np.ndarray,
    candidate_ids, candidate_langs, candidate_embeddings: np.ndarray,
    qrels_query_ids, qrels_candidate_ids, qrels_relevance,
    query_groups=None,
) -> Run:
    """An in-memory :class:`Run` (nothing written), e.g. for a quick evaluation while training.

    Embeddings are stored as ``meta['dtype']`` (default float32) and checked for NaN/inf like
    :func:`read_run` does; grades are checked like the writer does; ids are not validated.
    """
    path = Path(path)
    meta = full_meta(meta, "float32", int(query_embeddings.shape[1]))
    dtype = meta["dtype"]
    columns = {"id": pa.array(query_ids, pa.string()), "lang": pa.array(query_langs, pa.string())}
    if query_groups is not None:
        columns[GROUP] = pa.array(query_groups, pa.string())
    queries = pa.table(columns)
    candidates = pa.table({"id": pa.array(candidate_ids, pa.string()), "lang": pa.array(candidate_langs, pa.string())})
    sides = []
    for name, table, emb in ((QUERIES, queries, query_embeddings), (CANDIDATES, candidates, candidate_embeddings)):
        side = EmbeddingTable(path, table, np.ascontiguousarray(emb, dtype=np.dtype(dtype)))
        _check_finite(side, path / name)
        sides.append(side)
    return Run(path=path, meta=meta, queries=sides[0], candidates=sides[1],
               qrels=qrels_table(qrels_query_ids, qrels_candidate_ids, qrels_relevance))


def read_run_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    file = path / RUN_JSON
    if path.exists() and not path.is_dir():
        raise InputError(path, "RUN", "not a directory (a run dir holds run.json and the Arrow tables)")
    if not path.is_dir():
        raise InputError(path, "RUN", "run dir does not exist")
    if not file.is_file():
        raise InputError(file, None, "missing (not a fastir run dir)")
    from fastir.core.textfiles import read_json

    meta = read_json(file)
    if not isinstance(meta, dict):
        raise InputError(file, "json", f"expected a JSON object, found {type(meta).__name__}")
    if meta.get("format") not in READ_FORMATS:
        expected = " or ".join(repr(f) for f in READ_FORMATS)
        raise InputError(file, "format", f"expected {expected}, found {meta.get('format')!r}")
    for key, kind in (("dataset", str), ("model", str), ("dim", int), ("dtype", str), ("normalized", bool)):
        if key not in meta:
            raise InputError(file, key, "missing")
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise InputError(file, key, f"expected {kind.__name__}, found {type(meta[key]).__name__}")
    if not 0 < meta["dim"] <= MAX_DIM:
        raise InputError(file, "dim", f"must be 1 to {MAX_DIM}, found {meta['dim']}")
    if meta["dtype"] not in DTYPES:
        raise InputError(file, "dtype", f"expected float16 or float32, found {meta['dtype']!r}")
    if "langs" in meta:
        if not isinstance(meta["langs"], list):
            raise InputError(file, "langs", f"expected a list of language codes, found {type(meta['langs']).__name__}")
        check_langs(meta["langs"], file, "langs")
    return meta


def read_table(file: Path, expected: list[tuple[pa.Field, bool]]) -> pa.Table:
    """Memory-map an Arrow IPC file and check its columns: each (field, optional) present unless
    optional, of the field's type (any integer type for an int32 field), without nulls."""
    if file.is_dir():
        raise InputError(file, None, "is a directory, expected an Arrow IPC file")
    if not file.is_file():
        raise InputError(file, None, "missing")
    try:
        source = pa.memory_map(str(file), "r")
        table = pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(file, None, f"not a readable Arrow IPC file ({' '.join(str(exc).split())})") from None
    for f, optional in expected:
        if f.name not in table.schema.names:
            if optional:
                continue
            raise InputError(file, f.name, "column missing")
        got = table.schema.field(f.name).type
        integer_ok = pa.types.is_integer(f.type) and pa.types.is_integer(got)
        if got != f.type and not integer_ok:
            kind = "an integer type" if pa.types.is_integer(f.type) else f"type {f.type}"
            raise InputError(file, f.name, f"expected {kind}, found {got}")
        if table.column(f.name).null_count:
            raise InputError(file, f.name, "contains nulls")
    return table


def embeddings_view(table: pa.Table, file: Path, dim: int, dtype: str) -> np.ndarray:
    """(N, D) numpy view of the embedding column: zero-copy for a single record batch."""
    parts = embedding_chunks(table, file, dim, dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def embedding_chunks(table: pa.Table, file: Path, dim: int, dtype: str) -> list[np.ndarray]:
    """The embedding column's record batches as (n_i, D) zero-copy numpy views of the mmap."""
    col = table.column("embedding")
    np_dtype = np.dtype(dtype)
    parts = []
    for chunk in col.chunks:
        values = chunk.values
        if chunk.offset or len(values) != len(chunk) * dim:
            values = values.slice(chunk.offset * dim, len(chunk) * dim)
        # The buffer itself, not values.to_numpy(): pyarrow imports pandas there when it is installed.
        parts.append(np.frombuffer(values.buffers()[1], dtype=np_dtype, count=len(values),
                                   offset=values.offset * np_dtype.itemsize).reshape(-1, dim))
    return parts or [np.empty((0, dim), dtype=np_dtype)]


def _check_no_null_values(column: pa.ChunkedArray, file: Path) -> None:
    """No null inside an embedding (the list is there, a value of it is not): its bytes would be
    read as a number. The validity bitmap, not the values, is read: cheap for any pool."""
    start = 0
    for chunk in column.chunks:
        values = chunk.values.slice(chunk.offset * chunk.type.list_size, len(chunk) * chunk.type.list_size)
        if values.null_count:
            import pyarrow.compute as pc

            first = pc.index(pc.is_null(values), True).as_py() // chunk.type.list_size
            raise InputError(file, "embedding", f"a null value inside the embedding of row {start + first}")
        start += len(chunk)


def _check_finite(side: EmbeddingTable, file: Path) -> None:
    row, start = -1, 0
    for chunk in side.chunks:  # batch by batch: a pool beyond RAM is never joined
        row = first_nonfinite_row(chunk)
        if row >= 0:
            row += start
            break
        start += len(chunk)
    if row >= 0:
        raise InputError(file, "embedding", f"NaN or inf in the embedding of row {row} (id {side.table.column('id')[row].as_py()!r})")


_EXPONENT = {np.dtype(np.float16): (np.uint16, 0x7C00), np.dtype(np.float32): (np.uint32, 0x7F800000)}


def first_nonfinite_row(chunk: np.ndarray, rows_per_step: int = 8192) -> int:
    """Index of the first row of ``chunk`` (N, D) float16/float32 holding a NaN or ±inf; -1 if none.

    Numba's two-core scan (:func:`fastir.kernels.upcast.first_nonfinite_row`); while a command's
    preload thread is still loading it (:mod:`fastir.eval.preload`), the same test on the exponent
    bits in numpy, ``rows_per_step`` rows at a time, instead of waiting.
    """
    from fastir.kernels.lazy import pending

    if not pending(NONFINITE_KERNEL):
        from fastir.kernels.upcast import first_nonfinite_row as scan

        return scan(chunk)
    uint, exponent = _EXPONENT[chunk.dtype]
    bits = chunk.view(uint)
    for s in range(0, len(bits), rows_per_step):
        bad = ((bits[s:s + rows_per_step] & uint(exponent)) == exponent).any(axis=1)
        if bad.any():
            return s + int(np.argmax(bad))
    return -1


def _check_unique(column: pa.ChunkedArray, file: Path, field_name: str) -> None:
    """No id twice (the column has no nulls: checked by :func:`read_table`)."""
    import pyarrow.compute as pc

    # ``unique`` hashes once; ``count_distinct`` takes 2.3x as long (1.3 M ids: 0.21 s against 0.48 s).
    if len(pc.unique(column)) != len(column):
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


def _read_side(path: Path, name: str, file_name: str, meta: dict) -> EmbeddingTable:
    file = path / file_name
    dim, dtype = meta["dim"], meta["dtype"]
    # The embedding column's dim/dtype are checked below, with a clearer message.
    fields = [(f, opt) for f, opt in table_fields(name, dtype, dim, meta["format"]) if f.name != "embedding"]
    table = read_table(file, fields)
    if "embedding" not in table.column_names:
        raise InputError(file, "embedding", "column missing")
    emb_type = table.schema.field("embedding").type
    if not isinstance(emb_type, pa.FixedSizeListType):
        raise InputError(file, "embedding", f"expected fixed_size_list<{dtype}>[{dim}], found {emb_type}")
    if table.column("embedding").null_count:
        raise InputError(file, "embedding", "contains nulls")
    _check_no_null_values(table.column("embedding"), file)
    if emb_type.list_size != dim:
        raise InputError(file, "embedding", f"dimension {emb_type.list_size} does not match run.json dim {dim}")
    if emb_type.value_type != DTYPES[dtype]:
        raise InputError(file, "embedding", f"element type {emb_type.value_type} does not match run.json dtype {dtype}")
    _check_unique(table.column("id"), file, "id")
    _check_langs(table, file, meta, RUN_JSON)
    return EmbeddingTable(path=file, table=table, embeddings=embedding_chunks(table, file, dim, dtype))


def _read_qrels(path: Path, meta: dict) -> pa.Table:
    """qrels.arrow with ``relevance`` as int32 >= 0 (v1: added, all 1)."""
    file = path / QRELS
    table = read_table(file, table_fields("qrels", fmt=meta["format"]))
    if meta["format"] == RUN_FORMAT_V1:
        grades = np.ones(table.num_rows, np.int32)
    else:
        grades = relevance_array(to_numpy(table.column(RELEVANCE)), table.num_rows, file)
    return table.select(["query_id", "candidate_id"]).append_column(RELEVANCE, numeric_array(grades, pa.int32()))


def read_run(path: str | os.PathLike, check_finite: bool = True) -> Run:
    """Open a run dir: memory-map its tables and validate the whole contract.

    Checks: run.json fields; each table's schema and dimension against run.json; no nulls;
    no duplicate ids; qrels naming only known ids, with integer grades >= 0; no NaN/inf
    embeddings. Any failure raises :class:`InputError` naming the file and field.
    """
    path = Path(path)
    meta = read_run_json(path)
    queries = _read_side(path, "queries", QUERIES, meta)
    candidates = _read_side(path, "candidates", CANDIDATES, meta)
    qrels = _read_qrels(path, meta)
    _check_counts(meta, path / RUN_JSON, {"queries": queries, "candidates": candidates}, qrels)
    run = Run(path=path, meta=meta, queries=queries, candidates=candidates, qrels=qrels)
    run._qrels_rows = _qrels_rows(qrels, queries.table, candidates.table, path / QRELS)
    if check_finite:  # last: the only check that needs a Numba kernel, which a command may still be loading
        _check_finite(queries, path / QUERIES)
        _check_finite(candidates, path / CANDIDATES)
    return run
