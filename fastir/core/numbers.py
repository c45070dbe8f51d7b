"""Numbers written by people and files: ASCII digits only, within bounds, checked where they enter.

Python's ``int()`` and ``float()`` accept far more than a number written in a file or an option
should mean: other scripts' digits (``int("٣") == 3``), superscripts (``"²".isdigit()`` is true, and
``int`` then fails), underscores (``int("1_0") == 10``), ``inf`` and ``nan``, and integers of any
size that overflow the int32/int64 arrays they go into later. Every number fastir reads from text
goes through :func:`parse_int` / :func:`parse_float` instead, and is refused with one line naming
the file (or option) and the field.
"""

from __future__ import annotations

import math
import os
import re

from fastir.core.errors import InputError

INT32_MAX = 2**31 - 1
INT64 = (-(2**63), 2**63 - 1)
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def parse_int(text: str, field: str | None, *, path: str | os.PathLike | None = None,
              lo: int = INT64[0], hi: int = INT64[1]) -> int:
    """``text`` as an integer in ASCII digits (an optional sign), ``lo <= value <= hi``; else InputError."""
    stripped = text.strip() if isinstance(text, str) else text
    if not isinstance(stripped, str) or not _INT.fullmatch(stripped):
        raise InputError(path, field, f"expected an integer in ASCII digits, found {text!r}")
    value = int(stripped)
    if not lo <= value <= hi:
        raise InputError(path, field, f"{stripped} is out of range ({lo} to {hi})")
    return value


def parse_float(text: str, field: str | None, *, path: str | os.PathLike | None = None,
                lo: float = -math.inf, hi: float = math.inf) -> float:
    """``text`` as a finite decimal number in ASCII (``1``, ``-0.5``, ``2e-3``), ``lo <= value <= hi``."""
    stripped = text.strip() if isinstance(text, str) else text
    if not isinstance(stripped, str) or not _FLOAT.fullmatch(stripped):
        raise InputError(path, field, f"expected a decimal number in ASCII, found {text!r}")
    value = float(stripped)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InputError(path, field, f"{stripped} is out of range ({lo} to {hi})")
    return value
