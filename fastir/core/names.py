"""Names that come from data: language codes, and paths built from them under an output directory.

Language codes end up in file names (a dataset's ``{lang}.json``, ``fastir score --trec``'s
``X-Y.run``), so every boundary that admits one (dataset loaders, the run-dir reader, training
tables, ``--langs``-style options) checks it here, and every path built from data is checked to
stay inside its output directory (defence in depth: a code that passed no check still cannot
write elsewhere).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from fastir.core.errors import InputError

# Letters, digits, '_' and '-', starting with a letter or digit: ISO 639 codes, BCP 47 tags
# (zh-Hans), and names like en_US; never '/', '.', whitespace or an empty string.
LANG_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
_LANG_RE = re.compile(rf"{LANG_PATTERN}\Z")


def is_lang_code(code: object) -> bool:
    return isinstance(code, str) and _LANG_RE.match(code) is not None


def check_lang(code: object, path: str | os.PathLike | None, field: str) -> str:
    """``code`` if it is a valid language code, else InputError naming ``path``, ``field`` and the value."""
    if not is_lang_code(code):
        raise InputError(path, field, f"invalid language code {code!r}: expected 1-32 letters, digits, '_' or '-', "
                                      "starting with a letter or digit")
    return code


def check_langs(codes: Iterable[object], path: str | os.PathLike | None, field: str) -> list:
    """Every code of ``codes`` checked by :func:`check_lang`; returns them as a list."""
    codes = list(codes)
    for code in codes:
        check_lang(code, path, field)
    return codes


def path_inside(root: str | os.PathLike, name: str, field: str, shown: str | os.PathLike | None = None) -> Path:
    """``root / name``, refusing a ``name`` (built from data) that would resolve outside ``root``.

    The error names ``shown`` (default ``root``): the output the user asked for when ``root`` is
    its temporary stand-in."""
    root = Path(root)
    target = root / name
    base = os.path.realpath(root)
    if not os.path.realpath(target).startswith(base.rstrip(os.sep) + os.sep):
        raise InputError(root if shown is None else shown, field, f"{name!r} would be written outside the output directory")
    return target


# What a terminal or a figure must not receive from data: C0/C1 controls (ESC starts escape
# sequences that retitle or rewrite a terminal; NUL), DEL and the bidi controls that reorder text.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, one_line: bool = False, limit: int | None = None) -> str:
    """``text`` with every control character written as its escape (``\\x1b``, ``\\u202e``), so
    text that came from data cannot drive a terminal; ``one_line``: newlines and tabs too;
    ``limit``: at most that many characters, the rest cut to ``…``."""
    pattern = _UNPRINTABLE_LINE if one_line else _UNPRINTABLE
    shown = pattern.sub(lambda m: repr(m.group(0))[1:-1], text)
    return shown if limit is None or len(shown) <= limit else shown[:max(0, limit - 1)] + "…"
