"""Errors that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

import os

EXIT_BAD_INPUT = 2


class FastirError(Exception):
    """A user-facing error: bad input, bad arguments, or a contract violation.

    The CLI prints ``error: <message>`` on one line and exits with code 2.
    """

    exit_code = EXIT_BAD_INPUT

    def one_line(self) -> str:
        return " ".join(str(self).split())


class InputError(FastirError):
    """Bad input, located by file (or directory) and field."""

    def __init__(self, path: str | os.PathLike | None, field: str | None, message: str):
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.message = message
        where = ": ".join(p for p in (self.path, field) if p)
        super().__init__(f"{where}: {message}" if where else message)
