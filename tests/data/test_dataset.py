"""fastir.data.dataset: the column sets, the Protocol, grade checks and the streaming export."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pytest

from fastir.data.dataset import Candidates, Dataset, Qrels, Queries, check_qrels, export_dataset
from fastir.core.errors import InputError


@dataclass
class _Columns:
    """The smallest Dataset: columns held in memory (what a new implementation must provide)."""

    name: str = "cols"
    langs: tuple[str, ...] = ("en", "de")
    checksum: str = "0" * 64
    batches_served: int = 0

    def queries(self):
        return Queries(["q1", "q2"], ["en", "de"], ["who?", "wer?"])

    def candidates(self):
        return Candidates([f"c{i}" for i in range(5)], ["en", "de", "en", "de", "en"], [f"t{i}" for i in range(5)])

    def iter_candidates(self, batch_size):
        whole = self.candidates()
        for start in range(0, len(whole), batch_size):
            self.batches_served += 1
            yield whole.slice(start, start + batch_size)

    def qrels(self):
        return Qrels(["q1", "q2", "q2"], ["c0", "c1", "c3"], [2, 1, 0])

    def summary(self):
        return {"dataset": self.name}

    def describe(self):
        return self.name


def test_protocol_is_checkable():
    assert isinstance(_Columns(), Dataset)
    assert not isinstance(object(), Dataset)


def test_arrow_columns_optional_group_and_context():
    q = Queries(["a"], ["en"], ["x"])
    assert q.to_arrow().column_names == ["id", "lang", "text"]
    q = Queries(["a"], ["en"], ["x"], groups=["g"])
    assert q.to_arrow().column_names == ["id", "lang", "xling_id", "text"]
    c = Candidates(["a"], ["en"], ["x"], contexts=["ctx"])
    assert c.to_arrow().column_names == ["id", "lang", "text", "context"]
    r = Qrels(["q"], ["c"], [3]).to_arrow()
    assert r.schema.field("relevance").type == pa.int32() and r.column("relevance").to_pylist() == [3]


def test_slice_cuts_every_list_and_keeps_the_class():
    c = Candidates(["a", "b", "c"], ["en", "de", "en"], ["x", "y", "z"], contexts=["p", "q", "r"])
    part = c.slice(1, 3)
    assert type(part) is Candidates and part.ids == ["b", "c"] and part.contexts == ["q", "r"]
    assert Candidates(["a"], ["en"], ["x"]).slice(0, 1).contexts is None


@pytest.mark.parametrize("grades, message", [
    ([1, -1], "row 1 ('q', 'd'): expected an integer >= 0, found -1"),
    ([1, 1.5], "found 1.5"),
    ([True, 1], "found True"),
    ([1], "1 grades for 2 qrels"),
])
def test_check_qrels(grades, message):
    with pytest.raises(InputError, match="qrels.tsv: relevance") as err:
        check_qrels(Qrels(["q", "q"], ["c", "d"], grades), "qrels.tsv")
    assert message in str(err.value)
    check_qrels(Qrels(["q", "q"], ["c", "d"], [0, 3]), "qrels.tsv")


def test_export_streams_candidates_and_writes_grades(tmp_path):
    ds = _Columns()
    rows = export_dataset(ds, tmp_path / "out", batch_size=2)
    assert rows == {"queries": 2, "candidates": 5, "qrels": 3} and ds.batches_served == 3
    read = {name: pa.ipc.open_file(pa.memory_map(str(tmp_path / "out" / name))).read_all()
            for name in ("questions.arrow", "candidates.arrow", "qrels.arrow")}
    assert read["candidates.arrow"].column("id").to_pylist() == [f"c{i}" for i in range(5)]
    assert read["qrels.arrow"].column("relevance").to_pylist() == [2, 1, 0]
    with pytest.raises(InputError, match="not empty"):
        export_dataset(ds, tmp_path / "out")


def test_export_failure_leaves_nothing(tmp_path):
    class Broken(_Columns):
        def iter_candidates(self, batch_size):
            yield self.candidates().slice(0, 2)
            raise InputError("corpus.jsonl", "line 3", "malformed JSON")

    with pytest.raises(InputError, match="line 3"):
        export_dataset(Broken(), tmp_path / "out", batch_size=2)
    assert list(tmp_path.iterdir()) == []
