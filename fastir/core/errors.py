"""Errors that the CLI turns into a one-line message and exit code 2, and warnings it prints.

Bad input raises :class:`InputError`; failures of the environment (permission denied, disk full,
out of memory, a corrupt model file) are turned into one by :func:`from_environment` at the CLI
boundary, with the same exit code: a script sees 2 for "this command cannot work as asked here".

Library code never prints: a fallback worth knowing about is a :class:`FastirWarning` through
:mod:`warnings` (:func:`warn`), which the Python API shows as any warning and the CLI prints as
one line, ``warning: <message>`` (:func:`fastir.cli.main`).
"""

from __future__ import annotations

import os
import warnings

EXIT_BAD_INPUT = 2


class FastirWarning(UserWarning):
    """Something ran other than asked, and the result says so (a CPU fallback, a reseeded RNG)."""


def warn(message: str) -> None:
    """Warn the caller of the function that called this one (a :class:`FastirWarning`)."""
    warnings.warn(message, FastirWarning, stacklevel=3)


class FastirError(Exception):
    """A user-facing error: bad input, bad arguments, or a contract violation.

    The CLI prints ``error: <message>`` on one line and exits with code 2.
    """

    exit_code = EXIT_BAD_INPUT

    def one_line(self) -> str:
        return " ".join(str(self).split())


class InputError(FastirError):
    """Bad input, located by file (or directory) and field.

    A path inside one of fastir's temporary entries is shown as the output it stands for.
    """

    def __init__(self, path: str | os.PathLike | None, field: str | None, message: str):
        self.path = None if path is None else _shown(os.fspath(path))
        self.field = field
        self.message = message
        where = ": ".join(p for p in (self.path, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


def _shown(path):
    if isinstance(path, str) and ".fastir-" in path:
        from fastir.core.temp_names import output_name

        return str(output_name(path))
    return path


# Field names of the failures of the environment rather than of the input (see from_environment).
_OS_FIELDS = {"EACCES": "permission", "EPERM": "permission", "EROFS": "permission", "ENOSPC": "disk",
              "EDQUOT": "disk", "EFBIG": "disk", "ENOMEM": "memory", "EIO": "io"}
_HINTS = {"disk": "free some space (or write elsewhere) and rerun (embed and train: with --resume)",
          "permission": "choose a location you can write to (or fix its permissions)",
          "memory": "ask for less (--k, --trec-depth, --samples, --batch-size, --batch-tokens, --block-mb) "
                    "or use a machine with more memory"}


def from_environment(exc: BaseException) -> InputError | None:
    """The one-line error for a failure of the environment (OS, memory, a corrupt library file),
    or ``None`` for an exception that is a bug and should keep its traceback.

    OSError -> ``<file>: permission|disk|io|os: <strerror>; <hint>`` (the file is the output a
    temporary entry stood for); MemoryError or torch's out-of-memory errors -> ``memory: ...``;
    safetensors' error (a truncated or corrupt weights file) -> ``weights: ...``.
    """
    import errno

    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
            isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)):  # torch: CUDA / CPU allocator
        detail = " ".join(str(exc).split())
        return InputError(None, "memory", f"out of memory{f' ({detail})' if detail else ''}; {_HINTS['memory']}")
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "")
        text = " ".join(str(exc.strerror or exc).split())
        if not code and "No space left on device" in str(exc):  # pyarrow's IO errors carry no errno
            code = "ENOSPC"
        field = _OS_FIELDS.get(code, "os")
        filename = exc.filename if isinstance(exc.filename, (str, bytes, os.PathLike)) else None
        filename = None if filename is None else os.fsdecode(filename)
        hint = _HINTS.get(field)
        return InputError(filename, field, f"{text}{f' [{code}]' if code else ''}{f'; {hint}' if hint else ''}")
    if type(exc).__name__ == "SafetensorError":
        os_error = os_error_in(exc)
        if os_error is not None:  # the OS failed it (a full disk while saving), not a damaged file
            return from_environment(os_error)
        return InputError(None, "weights", f"unreadable safetensors file ({' '.join(str(exc).split())}): "
                                           "the model file is truncated or corrupt")
    return None


def os_error_in(exc: BaseException, filename: str | os.PathLike | None = None) -> OSError | None:
    """The OS error a library reports only in its message (safetensors: ``IoError(Os { code: 28,
    kind: StorageFull, ... })``), as an OSError, or None."""
    import re

    found = re.search(r"\bOs \{ code: (\d+)", str(exc))
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code), None if filename is None else os.fspath(filename))


def require(module: str, extra: str, purpose: str, distribution: str | None = None):
    """Import the optional package ``module`` (a peer kept in the extra ``extra``), or raise the one
    line ``<purpose> needs the <distribution> package, which is not installed: pip install 'fastir[<extra>]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        name = distribution or module
        raise InputError(None, None, f"{purpose} needs the {name} package, which is not installed: "
                                     f"pip install 'fastir[{extra}]'") from None
