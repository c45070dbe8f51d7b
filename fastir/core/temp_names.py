"""The names of fastir's own temporary and lock entries beside an output, and the way back from
them to the output they stand for (:mod:`fastir.core.outputs` creates and removes them;
:mod:`fastir.core.errors` names the output, not the temporary, in its one-line errors)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

NAME_MAX = 255  # bytes of one file name (Linux, macOS)
# What a temporary adds to the output's name: '.', '.fastir-tmp-', a pid, '-', mkstemp's 8 random
# characters, '-old' (an old output moved aside): 33 bytes at most; kept under 40.
TMP_RESERVED = 40

TMP_TAG = ".fastir-tmp-"
LEFTOVER = re.compile(r"^\.(?P<name>.+)\.fastir-tmp-(?P<pid>\d+)-[^/]*$")
_OURS = re.compile(r"^\.(?P<name>.+)\.fastir-(?:tmp-\d+-[^/]*|lock)$")  # temporaries and lock files
LOCK_TAG = ".fastir-lock"


def fit_name(name: str, reserved: int) -> str:
    """``name`` when ``reserved`` more bytes still make a legal file name; else its longest prefix
    that leaves room, then ``~`` and 12 hex digits of its SHA-256 (unique, and the same every time):
    fastir's own temporary, lock and work names never push a legal output name over the limit."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) + reserved <= NAME_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:12]
    head = raw[:NAME_MAX - reserved - 13].decode("utf-8", "ignore")  # a prefix on a character boundary
    return f"{head}~{digest}"


def lock_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.parent / f".{fit_name(path.name, 1 + len(LOCK_TAG))}{LOCK_TAG}"


def temp_prefix(path: str | os.PathLike) -> str:
    """Name prefix of this process's temporary siblings of ``path``."""
    return f".{fit_name(Path(path).name, TMP_RESERVED)}{TMP_TAG}{os.getpid()}-"


def output_name(temp: str | os.PathLike) -> Path:
    """The output a temporary entry (or a path inside one) stands for: every component named like
    our temporaries or lock files is replaced by the output's name."""
    parts = []
    for part in Path(temp).parts:
        while (m := _OURS.match(part)) is not None:
            part = m.group("name")
        parts.append(part)
    return Path(*parts)


def base_name(name: str) -> str:
    """The output a temporary name stands for, through temporaries of temporaries (a TREC dir
    staged for ``score``'s two-output publish is itself written through a temporary)."""
    while (m := LEFTOVER.match(name)) is not None:
        name = m.group("name")
    return name


def is_temporary_or_lock(name: str) -> bool:
    """Whether ``name`` is one of fastir's own temporary or lock entries."""
    return _OURS.match(name) is not None
