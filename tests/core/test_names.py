"""Language codes and paths built from data (fastir/core/names.py)."""

from __future__ import annotations

import pytest

from fastir.core.errors import InputError
from fastir.core.names import check_lang, check_langs, is_lang_code, path_inside


@pytest.mark.parametrize("code", ["en", "zh-Hans", "en_US", "x1", "A" * 32])
def test_valid_language_codes(code):
    assert is_lang_code(code) and check_lang(code, "f", "lang") == code


@pytest.mark.parametrize("code", ["", "../a", "a/b", ".", "-en", "_x", "en de", "en\n", "é", "a" * 33, None, 3])
def test_invalid_language_codes_name_file_field_and_value(code):
    assert not is_lang_code(code)
    with pytest.raises(InputError) as err:
        check_langs(["en", code], "data.parquet", "lang")
    msg = err.value.one_line()
    assert msg.startswith(f"data.parquet: lang: invalid language code {code!r}"), msg


def test_path_inside_refuses_names_that_leave_the_directory(tmp_path):
    (tmp_path / "out").mkdir()
    assert path_inside(tmp_path / "out", "en-de.run", "lang") == tmp_path / "out" / "en-de.run"
    for name in ("../a-en.run", "/etc/x.run", "sub/../../x", ".."):
        with pytest.raises(InputError, match=r"shown: lang: .* would be written outside the output directory"):
            path_inside(tmp_path / "out", name, "lang", shown="shown")


def test_printable_escapes_what_would_drive_a_terminal():
    from fastir.core.names import printable

    assert printable("a\x1b]0;owned\x07b") == "a\\x1b]0;owned\\x07b"
    assert printable("x\x00y\x7f\x9bz") == "x\\x00y\\x7f\\x9bz"
    assert printable("r\u202el \u2066i\u2069") == "r\\u202el \\u2066i\\u2069"  # bidi overrides reorder text
    assert printable("table\n\tline", one_line=False) == "table\n\tline"  # our own layout stays
    assert printable("one\nline\t", one_line=True) == "one\\nline\\t"
    assert printable("ünïcode 日本") == "ünïcode 日本"
    assert printable("abcdef", limit=4) == "abc…" and printable("abc", limit=4) == "abc"
