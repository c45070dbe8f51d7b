"""The run dir: the contract between ``fastir embed`` (writer) and ``fastir score`` (reader).

``RUN/run.json`` plus three Arrow IPC files (schemas in ``data_specs/run-format.json``)::

    queries.arrow     id: string, lang: string, [xling_id: string], embedding: fixed_size_list<T>[D]
    candidates.arrow  id: string, lang: string, embedding: fixed_size_list<T>[D]
    qrels.arrow       query_id: string, candidate_id: string, relevance: int32

T is float16 or float32 (``run.json`` ``dtype``). ``xling_id`` (the queries' parallel-group id)
is optional; ``relevance`` is an integer grade >= 0 and binary metrics count grade >= 1 as
relevant. ``fastir-run/1`` dirs (xling_id required, no relevance) still read, as all grade 1.
Readers memory-map the files and hand out zero-copy numpy views of the embeddings; writers
write under a temporary name and rename.

The code lives by concern in :mod:`~fastir.runs.schema` (names, schemas),
:mod:`~fastir.runs.writer` and :mod:`~fastir.runs.reader`; this module is their one public face.
"""

from __future__ import annotations

from fastir.runs.reader import (
    EmbeddingTable, Run, embeddings_view, read_run, read_run_json, read_table, run_from_arrays,
)
from fastir.runs.schema import (
    CANDIDATES, DTYPES, GROUP, QRELS, QUERIES, READ_FORMATS, RELEVANCE, RELEVANT_GRADE, RUN_FORMAT, RUN_FORMAT_V1,
    RUN_JSON, run_format_spec, table_fields, table_schema,
)
from fastir.runs.writer import (
    candidates_table, embedding_array, full_meta, qrels_table, queries_table, relevance_array,
    write_run, write_run_json, write_table,
)

__all__ = [
    "EmbeddingTable", "Run", "embeddings_view", "read_run", "read_run_json", "read_table", "run_from_arrays",
    "CANDIDATES", "DTYPES", "GROUP", "QRELS", "QUERIES", "READ_FORMATS", "RELEVANCE", "RELEVANT_GRADE", "RUN_FORMAT",
    "RUN_FORMAT_V1", "RUN_JSON", "run_format_spec", "table_fields", "table_schema",
    "candidates_table", "embedding_array", "full_meta", "qrels_table", "queries_table",
    "relevance_array", "write_run", "write_run_json", "write_table",
]
