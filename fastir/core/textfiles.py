"""The one strict reader of every text and JSON input: UTF-8, no lone surrogate, bounded nesting.

Python's readers let three kinds of bad input through as tracebacks or as strings that fail much
later: bytes that are not UTF-8 (``UnicodeDecodeError`` from deep inside a loop), JSON escapes of
lone surrogates (``"\\ud800"`` decodes to a ``str`` that no file or terminal can encode), and JSON
nested deeper than the interpreter's recursion limit (``RecursionError``). Every file fastir reads
as text goes through here, and each of these is one :class:`InputError` naming the file, and the
line where there are lines.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from fastir.core.errors import InputError

# A JSON escape of a high surrogate not followed by a low one, or of a low one not after a high one.
_LONE_SURROGATE = re.compile(r"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                             r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})(?<!\\)(?:\\\\)*\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def decode(data: bytes, path: str | os.PathLike | None, field: str | None = None) -> str:
    """``data`` as UTF-8, strictly; the first bad byte is reported with its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"line {line}" if field is None else f"line {line}: {field}"
        raise InputError(path, where, f"not UTF-8 (byte {exc.start}: {exc.reason})") from None


def read_text(path: str | os.PathLike, field: str | None = None) -> str:
    """The whole file as UTF-8 text (OS errors are left to the caller: missing, permission)."""
    return decode(Path(path).read_bytes(), path, field)


def parse_json(text: str | bytes, path: str | os.PathLike | None, field: str | None = None):
    """``text`` as JSON: malformed JSON, lone surrogates and nesting too deep to read are one line."""
    if isinstance(text, bytes):
        text = decode(text, path, field)
    where = "json" if field is None else field
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, where, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(path, where, "JSON nested too deeply to read") from None
    lone = _LONE_SURROGATE.search(text) if "\\u" in text else None
    if lone is not None:
        line = text.count("\n", 0, lone.start()) + 1
        at = f" at line {line}" if "\n" in text.strip() else ""  # a JSONL record's line is in ``field``
        raise InputError(path, where, f"a lone surrogate escape (\\ud800-\\udfff without its pair){at}: "
                                      "not text any file or terminal can hold")
    return value


def read_json(path: str | os.PathLike, field: str | None = None):
    """The file's JSON value, read strictly (:func:`read_text`, :func:`parse_json`)."""
    return parse_json(read_text(path, field), path, field)


def text_lines(path: str | os.PathLike, digest=None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a file, each decoded strictly as UTF-8 (a bad byte is
    reported with its line); ``digest`` (a hashlib object) sees the bytes."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if digest is not None:
                digest.update(raw)
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, f"line {number}", f"not UTF-8 (byte {exc.start} of the line: "
                                                         f"{exc.reason})") from None
