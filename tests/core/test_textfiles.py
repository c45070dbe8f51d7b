"""fastir.core.textfiles, the one strict reader of text and JSON inputs (issue 31, item 7): bytes
that are not UTF-8, lone surrogate escapes and JSON nested too deeply are one InputError each."""

from __future__ import annotations

import json

import pytest

from fastir.core.errors import InputError
from fastir.core.textfiles import decode, parse_json, read_json, text_lines


def test_utf8_errors_name_the_line(tmp_path):
    f = tmp_path / "q.tsv"
    f.write_bytes("query-id\tcorpus-id\tscore\nq1\td\xc3\xa9\t1\nq2\td\xff\t1\n".encode("latin-1"))
    lines = text_lines(f)
    assert next(lines) == (1, "query-id\tcorpus-id\tscore\n")
    assert next(lines) == (2, "q1\tdé\t1\n")
    with pytest.raises(InputError, match=r"q\.tsv: line 3: not UTF-8 \(byte 4 of the line"):
        list(lines)
    with pytest.raises(InputError, match="line 3: field: not UTF-8"):
        decode(b"a\nb\n\xffc", "f", "field")
    assert decode("日本\n".encode(), "f") == "日本\n"


@pytest.mark.parametrize("text", [r'{"a": "\ud800"}', r'{"a": "x\udc00"}', r'["\ud83d", "\ude00"]',
                                  r'{"\ud800": 1}', '{"a": 1,\n "b": "\\udbff!"}'])
def test_lone_surrogate_escapes_are_refused(text):
    with pytest.raises(InputError, match="lone surrogate"):
        parse_json(text, "f.json")
    json.loads(text)  # which Python's reader lets through


@pytest.mark.parametrize("text, value", [(r'{"a": "\ud83d\ude00"}', {"a": "😀"}), (r'{"a": "\\ud800"}', {"a": "\\ud800"}),
                                         (r'"\\\ud83d\ude00"', "\\😀"), ('{"a": "plain"}', {"a": "plain"})])
def test_pairs_and_escaped_backslashes_are_kept(text, value):
    assert parse_json(text, "f.json") == value


def test_nesting_too_deep_is_one_line_not_a_recursion_error(tmp_path):
    f = tmp_path / "run.json"
    f.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError, match=r"run\.json: json: JSON nested too deeply to read"):
        read_json(f)
    nested = read_json(_write(tmp_path / "ok.json", "[" * 50 + "]" * 50))
    for _ in range(49):
        (nested,) = nested
    assert nested == []


def test_malformed_json_names_line_and_column():
    with pytest.raises(InputError, match=r"x\.json: json: malformed JSON at line 2 column 1"):
        parse_json('{"a": 1,\n}', "x.json")


def _write(path, text):
    path.write_text(text)
    return path
