"""One writer per output: ``claim_output(path)`` holds a lock beside ``path`` while a command writes it.

The lock is ``fcntl.flock`` on ``.<name>.fastir-lock`` next to the output (the output itself may
not exist yet, and :func:`fastir.atomic.atomic_dir` replaces it whole). The kernel drops a flock
when its process dies, even by ``kill -9``, so a lock file left by a dead process is simply taken
over; the file holds the holder's pid only to name it in the second writer's error. The holder
unlinks the file before it unlocks, and a taker checks that the file it locked is still the one
at that name, so two processes never both believe they hold it.

Claiming also removes the temporary entries that dead processes left for that output
(:func:`fastir.atomic.remove_leftovers`), and on failure removes the parent directories that the
claim created, so a command that fails leaves the output location as it was.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from fastir.atomic import remove_leftovers
from fastir.errors import InputError

LOCK_TAG = ".fastir-lock"
_HELD: dict[str, int] = {}  # this process's claims (re-entrant: experiment -> train on the same out)


def lock_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}{LOCK_TAG}"


@contextlib.contextmanager
def claim_output(*paths: str | os.PathLike | None) -> Iterator[None]:
    """Lock each output in ``paths`` (``None`` entries are skipped) for this process, or raise
    :class:`InputError` naming the pid that holds one; remove dead processes' leftovers."""
    with contextlib.ExitStack() as stack:
        for path in sorted({os.path.abspath(p) for p in paths if p is not None}):
            stack.enter_context(_claim(Path(path)))
        yield


@contextlib.contextmanager
def _claim(path: Path) -> Iterator[None]:
    key = str(path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    created = _make_parents(path.parent)
    try:
        fd = _lock(path)
    except BaseException:
        _remove_empty(created)
        raise
    _HELD[key] = 1
    try:
        remove_leftovers(path)
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(lock_file(path))
        os.close(fd)
        _remove_empty(created)


def _lock(path: Path) -> int:
    import fcntl

    file = lock_file(path)
    for _ in range(100):
        fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise InputError(path, "lock", f"another fastir command ({who}) is writing this output; "
                                           f"wait for it to finish or stop it") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the holder unlinked it between our open and our lock: try the new file
    raise InputError(path, "lock", "could not take the lock (it keeps being replaced)")


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing ancestors; returns those created, deepest first."""
    missing = []
    for d in (directory, *directory.parents):
        if d.exists():
            break
        missing.append(d)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except BaseException:
        _remove_empty(missing)
        raise
    return missing


def _remove_empty(created: list[Path]) -> None:
    for d in created:
        try:
            d.rmdir()
        except FileNotFoundError:
            continue  # never made (a failure part way through)
        except OSError:
            break  # not empty: the command wrote something there
