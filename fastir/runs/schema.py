"""The run dir's names and Arrow schemas, from ``data_specs/run-format.json``.

``fastir-run/2`` (written now) and ``fastir-run/1`` (still read) differ in two places: in v2 the
queries' parallel-group id ``xling_id`` is optional and the qrels carry an integer ``relevance``;
a v1 run reads as if every qrel had relevance 1.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pyarrow as pa

RUN_FORMAT = "fastir-run/2"
RUN_FORMAT_V1 = "fastir-run/1"
READ_FORMATS = (RUN_FORMAT, RUN_FORMAT_V1)
RUN_JSON = "run.json"
QUERIES = "queries.arrow"
CANDIDATES = "candidates.arrow"
QRELS = "qrels.arrow"
RUN_FILES = (RUN_JSON, QUERIES, CANDIDATES, QRELS)
MAX_DIM = 2**31 - 1  # an Arrow fixed-size list is at most int32 long
# What a run dir may hold besides its files: the default --out of `fastir score` and `fastir preference`, shard files.
RUN_DIR_ENTRIES = (*RUN_FILES, "scores", "shards", "preference")
GROUP = "xling_id"  # the queries' optional parallel-group id column
RELEVANCE = "relevance"
# Binary metrics count a qrel as relevant iff its grade is at least this (trec_eval's default).
RELEVANT_GRADE = 1
DTYPES = {"float16": pa.float16(), "float32": pa.float32()}


@lru_cache(maxsize=1)
def _spec_text() -> str:
    return (Path(str(resources.files("fastir.data_specs"))) / "run-format.json").read_text(encoding="utf-8")


def run_format_spec() -> dict:
    return json.loads(_spec_text())


def _arrow_type(type_name: str, dtype: str, dim: int) -> pa.DataType:
    if type_name == "string":
        return pa.string()
    if type_name == "int32":
        return pa.int32()
    if type_name.startswith("fixed_size_list"):
        return pa.list_(DTYPES[dtype], dim)
    raise ValueError(f"unknown type {type_name!r} in run-format.json")


def table_fields(table: str, dtype: str = "float32", dim: int = 1, fmt: str = RUN_FORMAT) -> list[tuple[pa.Field, bool]]:
    """(field, optional) for every column of ``queries`` / ``candidates`` / ``qrels`` in format ``fmt``."""
    out = []
    for f in run_format_spec()["tables"][table]:
        optional = bool(f.get("optional"))
        if fmt == RUN_FORMAT_V1:
            if f["name"] == RELEVANCE:
                continue  # v1 qrels have no grade
            optional = False  # v1 requires xling_id
        out.append((pa.field(f["name"], _arrow_type(f["type"], dtype, dim), nullable=False), optional))
    return out


def table_schema(table: str, dtype: str = "float32", dim: int = 1, *, optional: bool = True) -> pa.Schema:
    """Arrow schema of a ``fastir-run/2`` table for an embedding dtype and dim (``optional=False``
    leaves the optional columns out)."""
    return pa.schema([f for f, opt in table_fields(table, dtype, dim) if optional or not opt])
