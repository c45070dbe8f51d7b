"""``fastir import``: a run dir from embeddings computed elsewhere (bring your own embeddings).

Inputs, for each side (queries, candidates):

* ``X.parquet`` with columns ``id`` (string), ``lang`` (string), ``embedding`` (list, large_list
  or fixed_size_list of float16/32/64, one fixed length) and, for queries, an optional
  ``xling_id`` (parallel-group id); other columns are ignored; or
* ``X.npy``, an (N, D) float16/32/64 matrix, with a sidecar Parquet of ``id``, ``lang``
  (``xling_id``) in the same row order: ``X.ids.parquet`` beside it unless named explicitly.

and a TREC qrels file (``qid 0 docid grade``, whitespace-separated, integer grade >= 0; grade-0
rows are judged not relevant). Parquet is read record batch by record batch into one
preallocated (N, D) array of the stored dtype (an ``.npy`` through a memory map), so no Python
list of floats is ever built. Everything is checked as :func:`fastir.runs.rundir.read_run`
checks a run dir, with the same helpers, but errors name the input file (and the qrels line);
the run dir is then written by :func:`~fastir.runs.rundir.write_run`, atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.core.errors import InputError
from fastir.core.names import check_langs
from fastir.runs.qrels import Qrels, read_trec_qrels
from fastir.runs.reader import EmbeddingTable, _check_finite, _check_unique
from fastir.runs.schema import DTYPES, GROUP, RUN_DIR_ENTRIES
from fastir.core.outputs import check_output_dir
from fastir.runs.writer import write_run

SIDECAR_SUFFIX = ".ids.parquet"  # X.npy -> X.ids.parquet
IMPORTED_MODEL = "imported"
# |norm - 1| below this on every row records the embeddings as L2-normalised (run.json ``normalized``).
_UNIT_NORM_TOL = 1e-3
_BATCH_ROWS = 8192


@dataclass
class Side:
    """One side read from its files: labels as Arrow string arrays, (N, D) embeddings."""

    file: Path  # the embedding file
    labels_file: Path  # where ids / langs came from (the file itself, or the .npy's sidecar)
    ids: pa.Array
    langs: pa.Array
    groups: pa.Array | None
    embeddings: np.ndarray
    source_dtype: str
    normalized: bool


def import_run(out: str | os.PathLike, *, queries: str | os.PathLike, candidates: str | os.PathLike,
               qrels: str | os.PathLike, queries_ids: str | os.PathLike | None = None,
               candidates_ids: str | os.PathLike | None = None, dtype: str = "float32",
               dataset: str | None = None, overwrite: bool = False) -> dict:
    """Validate the inputs and write the run dir ``out``; returns its run.json content (less ``format``).

    ``queries_ids`` / ``candidates_ids``: the sidecar of an ``.npy`` input (default
    ``X.ids.parquet``). ``dataset``: what run.json records as the dataset (default: the qrels
    file's name). Any bad input raises :class:`InputError` before anything is written.
    """
    if dtype not in DTYPES:
        raise InputError(None, "--dtype", f"unsupported embedding dtype {dtype!r}; use float16 or float32")
    check_output_dir(out, overwrite=overwrite, inputs=[queries, candidates, qrels, queries_ids, candidates_ids],
                     written=RUN_DIR_ENTRIES)
    q = read_side(queries, queries_ids, dtype, allow_groups=True)
    c = read_side(candidates, candidates_ids, dtype, allow_groups=False)
    if q.embeddings.shape[1] != c.embeddings.shape[1]:
        raise InputError(c.file, "embedding", f"dimension {c.embeddings.shape[1]} does not match the queries' "
                                              f"{q.embeddings.shape[1]} ({q.file})")
    judged = read_trec_qrels(qrels)
    check_qrels_ids(judged, qrels, q, c)
    meta = {
        "dataset": dataset or Path(qrels).name,
        "model": IMPORTED_MODEL,
        "normalized": bool(q.normalized and c.normalized),
        "dtype": dtype,
        "langs": list(dict.fromkeys(q.langs.unique().to_pylist() + c.langs.unique().to_pylist())),
        "num_queries": len(q.ids), "num_candidates": len(c.ids), "num_qrels": len(judged.grades),
        "dataset_checksum": evaluation_checksum(q, c, judged),
        "source": {
            "queries": _source(q), "candidates": _source(c), "qrels": os.fspath(qrels),
        },
    }
    _write(out, meta, q, c, judged, overwrite)
    return {**meta, "dim": int(q.embeddings.shape[1])}


def evaluation_checksum(q: Side, c: Side, judged: Qrels) -> str:
    """SHA-256 of what an imported run is evaluated on, in any row order: the queries' and the
    candidates' (id, language, group) and the judgments (query, candidate, grade). Two systems
    imported on the same data get the same checksum, so ``fastir compare`` pairs them; the
    embeddings do not enter it."""
    import hashlib

    import pyarrow.compute as pc

    h = hashlib.sha256(b"fastir-imported-evaluation/1")
    for name, columns in (("queries", {"id": q.ids, "lang": q.langs, "group": q.groups}),
                          ("candidates", {"id": c.ids, "lang": c.langs}),
                          ("qrels", {"query": judged.query_ids, "candidate": judged.candidate_ids,
                                     "grade": pa.array(judged.grades, pa.int64())})):
        table = pa.table({k: v for k, v in columns.items() if v is not None})
        keys = [(k, "ascending") for k in table.column_names if k in ("id", "query", "candidate")]
        table = table.take(pc.sort_indices(table, sort_keys=keys))
        h.update(f"\0{name}:{table.num_rows}".encode())
        for column in table.columns:
            h.update(_column_bytes(column.combine_chunks()))
    return h.hexdigest()


def _column_bytes(arr: pa.Array) -> bytes:
    """A null-free string or integer array's values as bytes: lengths and characters, or the numbers."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr.to_numpy().tobytes()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], width)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    return np.diff(offsets).astype(np.int64).tobytes() + (data.to_pybytes()[offsets[0]:offsets[-1]] if data is not None else b"")


def _source(side: Side) -> dict:
    out = {"file": os.fspath(side.file), "dtype": side.source_dtype}
    if side.labels_file != side.file:
        out["ids_file"] = os.fspath(side.labels_file)
    return out


def _write(out, meta: dict, q: Side, c: Side, judged: Qrels, overwrite: bool) -> None:
    from fastir.core.outputs import claim_output

    with claim_output(out):  # OS failures reach the CLI's one error path (fastir.core.errors.from_environment)
        write_run(
            out, meta,
            query_ids=q.ids, query_langs=q.langs, query_groups=q.groups, query_embeddings=q.embeddings,
            candidate_ids=c.ids, candidate_langs=c.langs, candidate_embeddings=c.embeddings,
            qrels_query_ids=judged.query_ids, qrels_candidate_ids=judged.candidate_ids,
            qrels_relevance=judged.grades, overwrite=overwrite,
        )


# ------------------------------------------------------------------------------------- one side


def read_side(path: str | os.PathLike, ids_path: str | os.PathLike | None, dtype: str, *,
              allow_groups: bool) -> Side:
    """Read and validate one side (``.parquet``, or ``.npy`` + sidecar) into ``dtype`` embeddings."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file, None, "missing")
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        if ids_path is not None:
            raise InputError(ids_path, None, "an ids file goes with an .npy input only (a Parquet input has its ids)")
        labels_file = file
        parquet = _open_parquet(file)
        labels = _read_labels(parquet, file, allow_groups)
        emb, source_dtype, normalized = _parquet_embeddings(parquet, file, labels[0], dtype)
    elif suffix == ".npy":
        labels_file = Path(ids_path) if ids_path is not None else sidecar_path(file)
        if not labels_file.is_file():
            raise InputError(labels_file, None, f"missing (the ids and languages of {file.name}; "
                                                "--queries-ids / --candidates-ids name another file)")
        labels = _read_labels(_open_parquet(labels_file), labels_file, allow_groups)
        emb, source_dtype, normalized = _npy_embeddings(file, labels_file, len(labels[0]), dtype)
    else:
        raise InputError(file, None, "expected a .parquet or .npy file")
    ids, langs, groups = labels
    side = Side(file, labels_file, ids, langs, groups, emb, source_dtype, normalized)
    _check_unique(pa.chunked_array([ids]), labels_file, "id")
    _check_finite(EmbeddingTable(file, pa.table({"id": ids}), emb), file)
    return side


def sidecar_path(npy: str | os.PathLike) -> Path:
    """The default id/lang sidecar of ``X.npy``: ``X.ids.parquet`` in the same directory."""
    npy = Path(npy)
    return npy.with_name(npy.name[: -len(npy.suffix)] + SIDECAR_SUFFIX)


def _open_parquet(file: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(file, None, f"not a readable Parquet file ({' '.join(str(exc).split())})") from None


def _read_labels(parquet, file: Path, allow_groups: bool) -> tuple[pa.Array, pa.Array, pa.Array | None]:
    """``id``, ``lang`` (and ``xling_id``) as string arrays, checked: no nulls, languages usable as codes."""
    names = parquet.schema_arrow.names
    wanted = ["id", "lang"] + ([GROUP] if allow_groups and GROUP in names else [])
    for name in wanted:
        if name not in names:
            raise InputError(file, name, "column missing")
    try:
        table = parquet.read(columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(file, None, f"not a readable Parquet file ({' '.join(str(exc).split())})") from None
    if table.num_rows == 0:
        raise InputError(file, None, "no rows")
    columns = [_string_column(table.column(name), file, name) for name in wanted]
    check_langs(columns[1].unique().to_pylist(), file, "lang")  # the run-dir reader's language-code check
    return columns[0], columns[1], columns[2] if len(columns) > 2 else None


def _string_column(column: pa.ChunkedArray, file: Path, name: str) -> pa.Array:
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputError(file, name, f"expected type string, found {column.type}")
    if column.null_count:
        import pyarrow.compute as pc

        row = int(pc.index(pc.is_null(column), True).as_py())
        raise InputError(file, name, f"null in row {row}")
    return column.cast(pa.string()).combine_chunks()


# ------------------------------------------------------------------------------------- embeddings


class _Filler:
    """Fills a preallocated (N, D) array block by block, tracking whether every row has unit norm."""

    def __init__(self, rows: int, dim: int, dtype: str):
        self.out = np.empty((rows, dim), dtype=np.dtype(dtype))
        self.filled = 0
        self.normalized = True

    def add(self, block: np.ndarray) -> None:
        n = len(block)
        # a float64 value beyond float16/32 becomes inf, which the finite check reports as one line:
        # numpy's overflow warnings would print before it
        with np.errstate(over="ignore", invalid="ignore"):
            self.out[self.filled:self.filled + n] = block  # casts to the stored dtype
            if self.normalized:
                b = block.astype(np.float32, copy=False)
                norms = np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float32))
                self.normalized = bool(np.all(np.abs(norms - 1) < _UNIT_NORM_TOL))
        self.filled += n


def _parquet_embeddings(parquet, file: Path, ids: pa.Array, dtype: str) -> tuple[np.ndarray, str, bool]:
    """The ``embedding`` column, read batch by batch into a preallocated array; ragged rows raise."""
    if "embedding" not in parquet.schema_arrow.names:
        raise InputError(file, "embedding", "column missing")
    kind = parquet.schema_arrow.field("embedding").type
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    if not is_list or not pa.types.is_floating(kind.value_type):
        raise InputError(file, "embedding", f"expected a list of float16/32/64, found {kind}")
    rows = len(ids)
    dim = kind.list_size if pa.types.is_fixed_size_list(kind) else None
    filler = None
    start = 0
    try:
        batches = parquet.iter_batches(batch_size=_BATCH_ROWS, columns=["embedding"])
        for batch in batches:
            chunk = batch.column(0)
            if not len(chunk):
                continue
            if dim is None:
                dim = _first_length(chunk, file, ids, start)
            if filler is None:
                if dim <= 0:
                    raise InputError(file, "embedding", "empty embedding lists (dimension 0)")
                filler = _Filler(rows, dim, dtype)
            filler.add(_block(chunk, dim, file, ids, start))
            start += len(chunk)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(file, "embedding", f"not readable ({' '.join(str(exc).split())})") from None
    return filler.out, np.dtype(kind.value_type.to_pandas_dtype()).name, filler.normalized


def _first_length(chunk: pa.Array, file: Path, ids: pa.Array, start: int) -> int:
    if chunk.null_count:
        _raise_null_row(chunk, file, ids, start)
    offsets = chunk.offsets.to_numpy()
    return int(offsets[1] - offsets[0])


def _raise_null_row(chunk: pa.Array, file: Path, ids: pa.Array, start: int):
    row = start + int(np.argmax(chunk.is_null().to_numpy(zero_copy_only=False)))
    raise InputError(file, "embedding", f"null embedding in row {row} (id {ids[row].as_py()!r})")


def _block(chunk: pa.Array, dim: int, file: Path, ids: pa.Array, start: int) -> np.ndarray:
    """One record batch's embeddings as an (n, dim) array (zero-copy where Arrow allows)."""
    if chunk.null_count:
        _raise_null_row(chunk, file, ids, start)
    if not pa.types.is_fixed_size_list(chunk.type):
        lengths = np.diff(chunk.offsets.to_numpy())
        ragged = lengths != dim
        if ragged.any():
            i = int(np.argmax(ragged))
            raise InputError(file, "embedding", f"ragged: row {start + i} (id {ids[start + i].as_py()!r}) has "
                                                f"{lengths[i]} values, row 0 has {dim}")
    values = chunk.flatten()
    if values.null_count:
        row = start + int(np.argmax(values.is_null().to_numpy(zero_copy_only=False))) // dim
        raise InputError(file, "embedding", f"null value in the embedding of row {row} (id {ids[row].as_py()!r})")
    return values.to_numpy(zero_copy_only=False).reshape(len(chunk), dim)


def _npy_embeddings(file: Path, labels_file: Path, rows: int, dtype: str) -> tuple[np.ndarray, str, bool]:
    """An (N, D) float .npy matrix, memory-mapped and copied block by block into ``dtype``."""
    try:
        matrix = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(file, None, f"not a readable .npy file ({' '.join(str(exc).split())})") from None
    if matrix.ndim != 2:
        raise InputError(file, "embedding", f"expected an (N, D) matrix, found shape {matrix.shape}")
    if matrix.dtype.kind != "f":
        raise InputError(file, "embedding", f"expected float16/32/64 values, found {matrix.dtype}")
    if matrix.shape[0] != rows:
        raise InputError(file, "embedding", f"{matrix.shape[0]} rows, but {labels_file.name} has {rows} ids")
    if matrix.shape[1] == 0:
        raise InputError(file, "embedding", "dimension 0")
    filler = _Filler(rows, matrix.shape[1], dtype)
    for begin in range(0, rows, _BATCH_ROWS):
        filler.add(np.asarray(matrix[begin:begin + _BATCH_ROWS]))
    return filler.out, str(matrix.dtype), filler.normalized


def check_qrels_ids(judged: Qrels, path: str | os.PathLike, q: Side, c: Side) -> None:
    """Every qrels row names a known query and candidate, and no (query, candidate) pair twice."""
    import pyarrow.compute as pc

    rows = []
    for column, side, what in ((judged.query_ids, q, "query"), (judged.candidate_ids, c, "candidate")):
        idx = pc.index_in(column, value_set=side.ids)
        if idx.null_count:
            i = int(np.argmax(idx.is_null().to_numpy(zero_copy_only=False)))
            raise InputError(path, f"line {judged.lines[i]}", f"unknown {what} id {column[i].as_py()!r} "
                                                              f"(not in {side.labels_file.name})")
        rows.append(idx.to_numpy().astype(np.int64))
    key = rows[0] * len(c.ids) + rows[1]
    order = np.argsort(key, kind="stable")
    repeated = key[order][1:] == key[order][:-1]
    if repeated.any():
        first, again = order[int(np.argmax(repeated))], order[int(np.argmax(repeated)) + 1]
        raise InputError(path, f"line {judged.lines[again]}", f"duplicate judgement of (query "
                                                              f"{judged.query_ids[again].as_py()!r}, candidate "
                                                              f"{judged.candidate_ids[again].as_py()!r}); "
                                                              f"first on line {judged.lines[first]}")
