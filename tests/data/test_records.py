"""fastir.data.records: parts read through another library become a BeirDataset: judged queries kept,
documents streamed in batches across parts, a language left out by --langs not streamed; the refusals."""

from __future__ import annotations

import pytest

from fastir.core.errors import InputError
from fastir.data.records import Part, build


def _part(lang, queries=("q0", "q1"), qrels=(("q0", "d0", 1),), docs=("d0", "d1", "d2")):
    p = f"{lang}:"
    return Part(lang, f"src {lang}", [(p + q, f"text {q}") for q in queries], [(p + q, p + d, g) for q, d, g in qrels],
                [p + d for d in docs], lambda: iter([(p + d, f"doc {d}") for d in docs]))


def test_build_keeps_judged_queries_and_streams_documents():
    ds = build("x", "root", "test-layout", "dev", [_part("aa"), _part("bb", qrels=(("q1", "d2", 2),))], None, "c")
    assert ds.queries().ids == ["aa:q0", "bb:q1"] and ds.skipped_queries == 2
    assert ds.qrels().relevance == [1, 2] and ds.langs == ("aa", "bb")
    assert [b.ids for b in ds.iter_candidates(4)] == [["aa:d0", "aa:d1", "aa:d2", "bb:d0"], ["bb:d1", "bb:d2"]]
    assert ds.candidates().texts[0] == "doc d0" and ds.summary()["totals"]["candidates"] == 6
    ds.langs = ("bb",)
    assert ds.candidates().ids == ["bb:d0", "bb:d1", "bb:d2"]


@pytest.mark.parametrize("part, message", [
    (_part("aa", docs=("d0", "d0")), "src aa: corpus: duplicate document id 'aa:d0'"),
    (_part("aa", queries=("q0", "q0")), "src aa: queries: duplicate query id 'aa:q0'"),
    (_part("aa", qrels=(("q9", "d0", 1),)), "src aa: qrels: unknown query 'aa:q9'"),
    (_part("aa", qrels=(("q0", "d9", 1),)), "src aa: qrels: unknown document 'aa:d9'"),
    (_part("aa", qrels=(("q0", "d0", 1), ("q0", "d0", 2))), "root: qrels: a .query, document. pair is judged twice"),
    (_part("aa", qrels=(("q0", "d0", -1),)), "root: relevance: row 0"),
])
def test_refusals(part, message):
    with pytest.raises(InputError, match=message):
        build("x", "root", "test-layout", "dev", [part], None, "c")
