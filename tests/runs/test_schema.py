"""fastir.runs.schema: the v2 spec and what fastir-run/1 differs in."""

from __future__ import annotations

import pyarrow as pa

from fastir.runs import schema


def test_spec_is_v2_and_reads_v1():
    spec = schema.run_format_spec()
    assert spec["format"] == schema.RUN_FORMAT == "fastir-run/2"
    assert schema.READ_FORMATS == ("fastir-run/2", "fastir-run/1")
    assert "fastir-run/1" in spec["previous_formats"]


def test_v2_fields_optional_group_and_int32_relevance():
    queries = {f.name: opt for f, opt in schema.table_fields("queries", "float16", 8)}
    assert queries == {"id": False, "lang": False, "xling_id": True, "embedding": False}
    qrels = schema.table_schema("qrels")
    assert qrels.names == ["query_id", "candidate_id", "relevance"] and qrels.field("relevance").type == pa.int32()
    assert schema.table_schema("queries", "float16", 8, optional=False).names == ["id", "lang", "embedding"]


def test_v1_fields_require_group_and_have_no_relevance():
    queries = {f.name: opt for f, opt in schema.table_fields("queries", fmt=schema.RUN_FORMAT_V1)}
    assert queries["xling_id"] is False
    assert [f.name for f, _ in schema.table_fields("qrels", fmt=schema.RUN_FORMAT_V1)] == ["query_id", "candidate_id"]
    assert schema.RELEVANT_GRADE == 1
