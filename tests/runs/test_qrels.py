"""fastir.runs.qrels: TREC qrels read in bounded chunks, the plain-file fast path equal to the Python reading,
and refusals naming the line."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.core.errors import InputError


def test_qrels_read_in_chunks_equal_one_read(tmp_path, monkeypatch):
    # issue 31, item 17: the qrels are read in bounded chunks, not as Python lists of the whole file
    from fastir.runs import qrels

    f = tmp_path / "qrels.txt"
    f.write_text("q1 0 d1 1\n\nq1 0 d2 0\nq2 0 d2 3\nq2 0 d1 2\nq3 0 d1 1\n")
    whole = qrels.read_trec_qrels(f)
    monkeypatch.setattr(qrels, "_QRELS_CHUNK", 2)
    chunked = qrels.read_trec_qrels(f)
    assert chunked.query_ids.equals(whole.query_ids) and chunked.candidate_ids.equals(whole.candidate_ids)
    assert chunked.grades.tolist() == whole.grades.tolist() == [1, 0, 3, 2, 1]
    assert chunked.lines.tolist() == whole.lines.tolist() == [1, 3, 4, 5, 6]


@pytest.mark.parametrize("text", [
    "q1 0 d1 1\nq1 0 d2 0\nq2 Q0 d1 12\n",  # plain: parsed by pyarrow
    "q1 0 d1 1\nq1 0 d2 007\nq2 0 d1 2147483647",  # leading zeros, no final line end
    "q1 0 d1 1\n\nq1 0 d2 0\n",  # a blank line
    "q1\t0\td1\t1\nq1 0  d2 0\n",  # tabs, two spaces
    "q1 0 d1 1\r\nq1 0 d2 +2\r\n",  # CRLF, a sign
    "q1 0 d1 1 \n q1 0 d2 0\n",  # spaces around
    "qé 0 d1 1\nq1 0 d\u00a0x 0\n",  # non-ASCII ids, a no-break space (Python's split splits there)
])
def test_plain_qrels_read_by_pyarrow_equal_the_python_reading(tmp_path, monkeypatch, text):
    from fastir.runs import qrels

    f = tmp_path / "qrels.txt"
    f.write_text(text, encoding="utf-8")
    plain = qrels._plain_qrels(f)
    assert (plain is not None) == text.startswith(("q1 0 d1 1\nq1 0 d2 0\nq2", "q1 0 d1 1\nq1 0 d2 007"))
    monkeypatch.setattr(qrels, "_plain_qrels", lambda file: None)
    try:
        python = qrels.read_trec_qrels(f)
    except InputError as exc:
        assert plain is None, exc
        return
    if plain is not None:
        assert plain.query_ids.equals(python.query_ids) and plain.candidate_ids.equals(python.candidate_ids)
        assert plain.grades.tolist() == python.grades.tolist() and plain.lines.tolist() == python.lines.tolist()
        assert plain.grades.dtype == python.grades.dtype == np.int64


def test_qrels_with_too_large_a_grade_are_refused_by_the_python_reading(tmp_path):
    from fastir.runs import qrels

    f = tmp_path / "qrels.txt"
    f.write_text("q1 0 d1 2147483648\n")
    assert qrels._plain_qrels(f) is None
    with pytest.raises(InputError, match="line 1: grade: 2147483648 is out of range"):
        qrels.read_trec_qrels(f)
