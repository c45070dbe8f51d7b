"""fastir.runs.writer: fastir-run/2 tables, optional group column, grades checked before writing."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from fastir.core.errors import InputError
from fastir.runs import writer


def _write(tmp_path, name="run", **overrides):
    args = dict(query_ids=["q0", "q1"], query_langs=["en", "de"], query_embeddings=np.ones((2, 4), np.float32),
                candidate_ids=["c0", "c1", "c2"], candidate_langs=["en", "de", "de"],
                candidate_embeddings=np.ones((3, 4), np.float32),
                qrels_query_ids=["q0", "q0", "q1"], qrels_candidate_ids=["c0", "c1", "c2"], qrels_relevance=[2, 0, 1])
    args.update(overrides)
    meta = {"dataset": "d", "model": "m", "normalized": False, "format": "fastir-run/1"}
    return writer.write_run(tmp_path / name, meta, **args)


def _table(path, file):
    return pa.ipc.open_file(pa.memory_map(str(path / file))).read_all()


def test_writes_v2_with_grades_and_no_group_column_when_none(tmp_path):
    path = _write(tmp_path)
    assert json.loads((path / "run.json").read_text())["format"] == "fastir-run/2"  # whatever meta said
    assert _table(path, "queries.arrow").column_names == ["id", "lang", "embedding"]
    qrels = _table(path, "qrels.arrow")
    assert qrels.schema.field("relevance").type == pa.int32()
    assert qrels.column("relevance").to_pylist() == [2, 0, 1]


def test_group_column_written_when_given(tmp_path):
    path = _write(tmp_path, query_groups=["x0", "x0"])
    queries = _table(path, "queries.arrow")
    assert queries.column_names == ["id", "lang", "xling_id", "embedding"]
    assert queries.column("xling_id").to_pylist() == ["x0", "x0"]


@pytest.mark.parametrize("grades, message", [
    ([1, -1, 1], "row 1 has -1"),
    ([1, 0.5, 1], "expected integer grades, found 0.5"),
    ([1, True, 1], "expected integer grades, found True"),
    ([1, "2", 1], "expected integer grades, found '2'"),
    ([1, 1], "2 grades for 3 qrels"),
    ([1, 2**31, 1], "row 1 has 2147483648"),
])
def test_bad_grades_refused_and_nothing_written(tmp_path, grades, message):
    with pytest.raises(InputError, match="relevance") as err:
        _write(tmp_path, qrels_relevance=grades)
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_relevance_array_accepts_numpy_integers():
    out = writer.relevance_array(np.array([0, 3, 1], np.uint8), 3)
    assert out.dtype == np.int32 and out.tolist() == [0, 3, 1]
    assert writer.relevance_array([], 0).dtype == np.int32
