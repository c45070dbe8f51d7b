"""Writing run dirs (``fastir-run/2``): tables built from columns, then renamed into place."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.core.arrow import embedding_batch_rows, write_table
from fastir.core.outputs import atomic_dir, atomic_path, check_output_dir
from fastir.core.errors import InputError
from fastir.runs.schema import CANDIDATES, DTYPES, GROUP, QRELS, QUERIES, RUN_FORMAT, RUN_JSON, table_schema

class TableStream:
    """An embedding table written piece by piece (``fastir embed`` of a corpus larger than memory).

    Rows are buffered and written in record batches of exactly the rows :func:`write_table` uses,
    so the file is byte-identical to writing the whole table at once; memory holds at most one
    batch plus the piece being appended. Written under a temporary name, renamed by :meth:`close`
    (use it as a context manager: an exception leaves nothing behind).
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema):
        self.schema = schema
        self.batch_rows = embedding_batch_rows(schema)
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._atomic = atomic_path(path)
        tmp = self._atomic.__enter__()
        self._sink = pa.OSFile(str(tmp), "wb")
        self._writer = pa.ipc.new_file(self._sink, schema)

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (of this stream's schema)."""
        if table.schema != self.schema:
            raise ValueError(f"table schema {table.schema} is not the stream's {self.schema}")
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= self.batch_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        merged = pa.concat_tables(self._pending).combine_chunks()
        full = (merged.num_rows // self.batch_rows) * self.batch_rows
        cut = merged.num_rows if final else full
        if cut:
            self._writer.write_table(merged.slice(0, cut), max_chunksize=self.batch_rows)
        rest = merged.slice(cut)
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        if self._pending:
            self._flush(final=True)
        self._writer.close()
        self._sink.close()
        self._atomic.__exit__(None, None, None)

    def __enter__(self) -> "TableStream":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
            return
        self._sink.close()
        self._atomic.__exit__(kind, exc, tb)


def embedding_array(embeddings: np.ndarray, dtype: str) -> pa.FixedSizeListArray:
    """A (N, D) numpy array as an Arrow fixed_size_list<dtype>[D] column (zero-copy when possible)."""
    emb = np.ascontiguousarray(embeddings, dtype=np.dtype(dtype))
    n, dim = emb.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), type=DTYPES[dtype]), dim)


def queries_table(ids, langs, groups, embeddings: np.ndarray, dtype: str) -> pa.Table:
    """The queries table; ``groups`` (parallel-group ids) may be None: the column is then left out."""
    schema = table_schema("queries", dtype, embeddings.shape[1], optional=groups is not None)
    columns = [pa.array(ids, pa.string()), pa.array(langs, pa.string())]
    if groups is not None:
        columns.append(pa.array(groups, pa.string()))
    return pa.Table.from_arrays(columns + [embedding_array(embeddings, dtype)], schema=schema)


def candidates_table(ids, langs, embeddings: np.ndarray, dtype: str) -> pa.Table:
    dim = embeddings.shape[1]
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(langs, pa.string()), embedding_array(embeddings, dtype)],
        schema=table_schema("candidates", dtype, dim),
    )


def qrels_table(query_ids, candidate_ids, relevance) -> pa.Table:
    """The qrels table; ``relevance``: one integer grade >= 0 per row."""
    grades = relevance_array(relevance, len(query_ids))
    return pa.Table.from_arrays(
        [pa.array(query_ids, pa.string()), pa.array(candidate_ids, pa.string()), pa.array(grades, pa.int32())],
        schema=table_schema("qrels"))


def relevance_array(relevance, rows: int, file=None) -> np.ndarray:
    """``relevance`` as int32, checked: ``rows`` integers in [0, 2^31) (no floats, no bools)."""
    if isinstance(relevance, (list, tuple)):  # numpy would turn True into 1 and [1, 0.5] into floats
        bad = next((g for g in relevance if isinstance(g, bool) or not isinstance(g, (int, np.integer))), None)
        if bad is not None:
            raise InputError(file, "relevance", f"expected integer grades, found {bad!r}")
    grades = np.asarray(relevance)
    if len(grades) != rows:
        raise InputError(file, "relevance", f"{len(grades)} grades for {rows} qrels")
    if not rows:
        return np.zeros(0, np.int32)
    if grades.dtype.kind not in "iu":
        raise InputError(file, "relevance", f"expected integer grades, found {grades.dtype}")
    out_of_range = (grades < 0) | (grades > np.iinfo(np.int32).max)
    if out_of_range.any():
        row = int(np.argmax(out_of_range))
        raise InputError(file, "relevance", f"grades must be >= 0 (and < 2^31); row {row} has {grades[row]}")
    return grades.astype(np.int32)


def write_run(
    path: str | os.PathLike,
    meta: dict,
    *,
    query_ids, query_langs, query_embeddings: np.ndarray,
    candidate_ids, candidate_langs, candidate_embeddings: np.ndarray,
    qrels_query_ids, qrels_candidate_ids, qrels_relevance,
    query_groups=None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run dir atomically (temporary directory, then rename).

    ``meta`` must hold at least dataset, model and normalized; format, dim and dtype are filled in
    (dtype from ``meta['dtype']``, default float16). ``query_groups``: optional parallel-group ids.
    """
    path = Path(path)
    check_output_dir(path, overwrite=overwrite)
    meta = full_meta(meta, "float16", int(query_embeddings.shape[1]))
    dtype, dim = meta["dtype"], meta["dim"]
    if candidate_embeddings.shape[1] != dim:
        raise InputError(None, "dim", f"queries have dim {dim}, candidates {candidate_embeddings.shape[1]}")
    qrels = qrels_table(qrels_query_ids, qrels_candidate_ids, qrels_relevance)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_table(tmp / QUERIES, queries_table(query_ids, query_langs, query_groups, query_embeddings, dtype))
        write_table(tmp / CANDIDATES, candidates_table(candidate_ids, candidate_langs, candidate_embeddings, dtype))
        write_table(tmp / QRELS, qrels)
        write_run_json(tmp, meta)
    return path


def full_meta(meta: dict, default_dtype: str, dim: int) -> dict:
    """``meta`` with format, dim and a checked embedding dtype (``meta['dtype']`` or the default)."""
    dtype = meta.get("dtype", default_dtype)
    if dtype not in DTYPES:
        raise InputError(None, "dtype", f"unsupported embedding dtype {dtype!r}; use float16 or float32")
    out = {"format": RUN_FORMAT, **meta, "dim": dim, "dtype": dtype}
    out["format"] = RUN_FORMAT  # the tables are written in this format, whatever ``meta`` says
    return out


def write_run_json(directory: str | os.PathLike, meta: dict) -> None:
    with atomic_path(Path(directory) / RUN_JSON) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")


__all__ = ["GROUP", "check_output_dir", "write_table", "TableStream", "embedding_array", "queries_table", "candidates_table",
           "qrels_table", "relevance_array", "write_run", "full_meta", "write_run_json"]
