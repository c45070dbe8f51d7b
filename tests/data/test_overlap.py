"""The overlap guard on planted duplicates: same text in other case / spacing / Unicode forms, same
parallel-group id, and rows that only look alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastir.cli import main
from fastir.data import overlap
from fastir.core.errors import InputError
from tests.conftest import write_arrow

QUESTION = "What is the first thing?"
SENTENCES = ["The first sentence is here.", "A second one follows."]


def _lang_file(lang: str, question: str, sentences: list[str], qid: str) -> dict:
    context, breaks = "", []
    for s in sentences:
        breaks.append([len(context), len(context) + len(s)])
        context += s + " "
    qas = [{"id": qid, "question": question, "answers": [{"answer_start": 0, "text": sentences[0]}]}]
    return {"data": [{"title": "t", "paragraphs": [{"context": context.rstrip(), "sentence_breaks": breaks,
                                                    "qas": qas}]}]}


def write_eval_dir(tmp_path) -> str:
    """A two-language LAReQA dir ``ev`` (one question each, parallel-group id g1); also tests/cli/test_data.py's."""
    root = tmp_path / "ev"
    root.mkdir()
    (root / "en.json").write_text(json.dumps(_lang_file("en", QUESTION, SENTENCES, "g1")), encoding="utf-8")
    (root / "de.json").write_text(json.dumps(_lang_file("de", "Was ist das erste Ding?",
                                                        ["Der erste Satz.", "Ein zweiter."], "g1")), encoding="utf-8")
    return str(root)


@pytest.fixture
def eval_dir(tmp_path):
    return write_eval_dir(tmp_path)


def _row(x, query, passage, lang="en", **extra):
    return {"xling_id": x, "lang": lang, "query": query, "passage": passage, **extra}


PLANTED = [
    _row("t0", "an unrelated question", "an unrelated passage"),                   # 0: clean
    _row("g1", "another question", "another passage"),                            # 1: same xling_id
    _row("t2", "  WHAT is the\u00a0 ﬁrst\tthing? ", "x"),                          # 2: case, NBSP, ligature
    _row("t3", "\uff37\uff48\uff41\uff54 is the first thing?", "y"),               # 3: full-width letters
    _row("t4", "q4", "the FIRST   sentence is here."),                            # 4: passage, case + spaces
    _row("t5", "q5", "DER ERSTE SATZ.", lang="de"),                               # 5: passage in another language
    _row("t6", "What is the first thing", "The first sentence is here"),          # 6: near misses only
    _row("t7", "q7", "z", negative=" ".join(SENTENCES)),                          # 7: negative = the paragraph
]


def _negative_default(rows):
    return [{"negative": "", **r} for r in rows]


def test_normalise_forms():
    assert overlap.normalise("  Ｈｅｌｌｏ\u00a0 ﬁne\tWORLD \n") == "hello fine world"
    assert overlap.normalise("Straße") == overlap.normalise("STRASSE")  # full case folding, not lower()
    assert overlap.normalise("e\u0301") == overlap.normalise("\u00e9")  # composed and decomposed
    assert overlap.normalise("a\u200bb") != overlap.normalise("ab")  # a zero-width space is not whitespace


@pytest.mark.parametrize("batch_rows", [overlap.BATCH_ROWS, 3])
def test_planted_duplicates(tmp_path, eval_dir, batch_rows):
    table = write_arrow(tmp_path / "train.arrow", _negative_default(PLANTED))
    [report] = overlap.find_overlap([table], [eval_dir], batch_rows=batch_rows)
    got = {(m.row, m.key, m.eval_id) for m in report.examples}
    assert got == {(1, "xling_id", "g1_de"), (2, "query", "g1_en"), (3, "query", "g1_en"),
                   (4, "passage", "en_1_0"), (5, "passage", "de_1_0"), (7, "negative", "paragraph of en_1_0")}
    assert report.rows == 6 and report.train_rows == len(PLANTED)
    assert report.by_key == {"xling_id": 1, "query": 2, "passage": 2, "negative": 1}
    assert [m.row for m in report.examples] == sorted(m.row for m in report.examples)


def test_no_overlap(tmp_path, eval_dir):
    table = write_arrow(tmp_path / "train.arrow", [PLANTED[0], PLANTED[6]])
    [report] = overlap.find_overlap([table], [eval_dir])
    assert report.rows == 0 and report.examples == [] and set(report.by_key.values()) == {0}
    overlap.refuse_overlap([report])  # nothing to refuse


def test_empty_texts_are_no_evidence(tmp_path, eval_dir):
    table = write_arrow(tmp_path / "train.arrow", [_row("t0", " ", "\u00a0")])
    eval_table = write_arrow(tmp_path / "held.arrow", [_row("h0", "", " ")])
    [report] = overlap.find_overlap([table], [eval_table])
    assert report.rows == 0


def test_a_digest_collision_is_not_an_overlap(tmp_path, eval_dir, monkeypatch):
    table = write_arrow(tmp_path / "train.arrow", [PLANTED[0], PLANTED[2]])
    monkeypatch.setattr(overlap, "digests", lambda texts: np.zeros(len(texts), dtype=np.uint64))
    [report] = overlap.find_overlap([table], [eval_dir])
    assert [(m.row, m.key) for m in report.examples] == [(1, "query")]  # row 0 collides with everything


def test_train_table_as_eval_data_and_several_tables(tmp_path, eval_dir):
    a = write_arrow(tmp_path / "a.arrow", [PLANTED[0]])
    b = write_arrow(tmp_path / "b.arrow", [PLANTED[2], _row("h9", "q", "p")])
    held = write_arrow(tmp_path / "held.arrow", [_row("h9", "held-out question", "held-out passage", lang="de")])
    on_dir, on_table = overlap.find_overlap([a, b], [eval_dir, held])
    assert [(m.table, m.row, m.key) for m in on_dir.examples] == [(b, 0, "query")]
    assert [(m.table, m.row, m.key, m.eval_id) for m in on_table.examples] == [(b, 1, "xling_id", "h9_de")]
    assert on_dir.train_rows == on_table.train_rows == 3


def test_refuse_names_the_first_row(tmp_path, eval_dir):
    table = write_arrow(tmp_path / "train.arrow", _negative_default(PLANTED))
    reports = overlap.find_overlap([table], [eval_dir])
    with pytest.raises(InputError) as exc:
        overlap.refuse_overlap(reports)
    msg = exc.value.one_line()
    assert msg.startswith(f"{table}: row 1: xling_id equals the parallel-group id of g1_de in evaluation dataset ev")
    assert "6 of 8 training rows" in msg and "--allow-overlap" in msg
    assert overlap.summary(reports) == {"ev": {"train_rows": 8, "rows": 6, "by_key": reports[0].by_key}}


def test_bundled_mlqa_and_xquad_share_nothing(tmp_path):
    """The docs' zero-shot recipe: MLQA-R as training data, XQuAD-R as the test."""
    table = tmp_path / "mlqa.arrow"
    assert main(["data", "to-train", "mlqa-r", str(table)]) == 0
    on_xquad, on_mlqa = overlap.find_overlap([table], ["xquad-r", "mlqa-r"], examples=1)
    assert on_xquad.rows == 0 and on_xquad.train_rows == 4199
    assert on_mlqa.rows == 4199 and on_mlqa.by_key == {"xling_id": 4199, "query": 4199, "passage": 4199, "negative": 0}


