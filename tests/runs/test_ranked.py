"""fastir.runs.ranked: the three run formats read chunk by chunk, line numbers across the streaming reader's
blocks, and the language specs (rule and map files)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.core.errors import InputError
from fastir.runs import ranked


def lines(n, bad_at=None, bad="x"):
    return "".join(f"q{i // 10} Q0 d{i} {i % 10 + 1} {bad if i + 1 == bad_at else 100 - i % 10} tag\n"
                   for i in range(n))


def test_trec_chunks_keep_file_order_and_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(ranked, "BLOCK_BYTES", 1 << 9)  # ~20 lines a block
    (tmp_path / "r.run").write_text(lines(200))
    chunks = list(ranked.read_chunks(tmp_path / "r.run"))
    assert len(chunks) > 5
    assert [c.first_line for c in chunks] == list(np.cumsum([1] + [len(c.qids) for c in chunks[:-1]]))
    docids = sum((c.docids.to_pylist() for c in chunks), [])
    assert docids == [f"d{i}" for i in range(200)]
    assert np.concatenate([c.scores for c in chunks])[:3].tolist() == [100.0, 99.0, 98.0]
    assert chunks[3].where(2) == f"line {chunks[3].first_line + 2}"


@pytest.mark.parametrize("bad, message", [("x", "line 150: score: not a number: 'x'"),
                                          ("inf", "line 150: score: not a finite number")])
def test_bad_score_far_into_the_file_names_its_line(tmp_path, monkeypatch, bad, message):
    monkeypatch.setattr(ranked, "BLOCK_BYTES", 1 << 9)
    (tmp_path / "r.run").write_text(lines(200, bad_at=150, bad=bad))
    with pytest.raises(InputError, match=message):
        list(ranked.read_chunks(tmp_path / "r.run"))


def test_field_count_tabs_and_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(ranked, "BLOCK_BYTES", 1 << 9)
    text = lines(100)
    broken = text.splitlines()
    broken[76] += " extra"
    (tmp_path / "r.run").write_text("\n".join(broken) + "\n")
    with pytest.raises(InputError, match="line 77: expected 6 fields separated by single spaces.*found 7"):
        list(ranked.read_chunks(tmp_path / "r.run"))
    (tmp_path / "t.run").write_text(text.replace(" ", "\t"))
    assert sum(len(c.qids) for c in ranked.read_chunks(tmp_path / "t.run")) == 100
    (tmp_path / "e.run").write_text("")
    with pytest.raises(InputError, match="empty run"):
        list(ranked.read_chunks(tmp_path / "e.run"))


def test_json_and_parquet(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"q1": {"d1": 2, "d2": 1.5}, "q2": {"d1": 0}}))
    (c,) = ranked.read_chunks(tmp_path / "r.json")
    assert c.qids.to_pylist() == ["q1", "q1", "q2"] and c.scores.tolist() == [2.0, 1.5, 0.0] and c.ranks is None
    (tmp_path / "b.json").write_text(json.dumps({"q1": {"d1": "high"}}))
    with pytest.raises(InputError, match="query 'q1', document 'd1': score: not a number"):
        list(ranked.read_chunks(tmp_path / "b.json"))
    pq.write_table(pa.table({"query_id": ["q1", "q1"], "doc_id": ["a", "b"], "score": [1.0, 0.5], "rank": [1, 2]}),
                   tmp_path / "r.parquet")
    (c,) = ranked.read_chunks(tmp_path / "r.parquet")
    assert c.ranks.tolist() == [1, 2] and c.where(1) == "row 2"
    pq.write_table(pa.table({"query_id": ["q1"], "doc": ["a"], "score": [1.0]}), tmp_path / "m.parquet")
    with pytest.raises(InputError, match="doc_id: missing column"):
        list(ranked.read_chunks(tmp_path / "m.parquet"))


def test_language_specs(tmp_path):
    rule = ranked.parse_lang_spec("prefix::", "--doc-langs")
    ids = pa.array(["de:1", "zh-cn:x:y"])
    assert rule.languages(ids, "f", str).to_pylist() == ["de", "zh-cn"]
    for bad in (["nolang"], [":empty"]):
        with pytest.raises(InputError, match="has no language before ':' \\(--doc-langs prefix::\\)"):
            rule.languages(pa.array(bad), "f", lambda i: f"line {i + 1}")
    with pytest.raises(InputError, match="give the separator"):
        ranked.parse_lang_spec("prefix:", "--doc-langs")
    (tmp_path / "m.tsv").write_text("a\ten\nb\tde\n")
    spec = ranked.parse_lang_spec(str(tmp_path / "m.tsv"), "--doc-langs")
    assert spec.languages(pa.array(["b", "a"]), "f", str).to_pylist() == ["de", "en"]
    (tmp_path / "d.tsv").write_text("a\ten\na\tde\n")
    with pytest.raises(InputError, match="id 'a' appears 2 times"):
        ranked.parse_lang_spec(str(tmp_path / "d.tsv"), "--doc-langs")
    with pytest.raises(InputError, match="missing"):
        ranked.parse_lang_spec(str(tmp_path / "none.tsv"), "--doc-langs")


@pytest.mark.parametrize("text", ["a b\nc d\n", "a b\r\nc d", "a\rb\rc", "x" * 3000 + "\n" + "y\n" * 500, ""])
def test_blocks_end_at_line_ends_and_rebuild_the_file(tmp_path, monkeypatch, text):
    monkeypatch.setattr(ranked, "BLOCK_BYTES", 64)
    (tmp_path / "f").write_bytes(text.encode())
    blocks = [bytes(b) for b in ranked._blocks(tmp_path / "f")]
    assert b"".join(blocks) == text.encode()
    assert all(b.endswith((b"\n", b"\r")) for b in blocks[:-1])
    assert all(len(b) <= 64 + 64 for b in blocks if not b.startswith(b"x"))


def test_read_ahead_keeps_order_raises_in_order_and_stops_when_left():
    import threading

    assert list(ranked._read_ahead(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        raise ValueError("bad block")

    got = []
    with pytest.raises(ValueError, match="bad block"):
        for item in ranked._read_ahead(failing()):
            got.append(item)
    assert got == [1]
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield len(produced)

    ahead = ranked._read_ahead(endless())
    assert next(ahead) == 1
    ahead.close()
    threading.Event().wait(0.5)
    count = len(produced)
    threading.Event().wait(0.3)
    assert len(produced) == count <= 4  # stopped, never more than a step or two ahead
