"""Outputs: written under a temporary name, flushed to disk, then renamed; one writer each.

**Atomic writes.** Every temporary entry fastir creates beside (or inside) an output is named
``.<name>.fastir-tmp-<pid>-<random>`` (:func:`temp_prefix`), so that it can be recognised: a
failing process removes its own on the way out, and :func:`remove_leftovers` removes those of
processes that died without cleaning up (``kill -9``, power loss) when the next run claims the
same output (:func:`claim_output`). Before the rename, every file of the temporary entry and the
entry itself are ``fsync``ed, and after it the directory that holds the output: a power loss
leaves either the old output or the whole new one, never a renamed entry whose data never
reached the disk.

**One writer per output.** :func:`claim_output` holds ``fcntl.flock`` on ``.<name>.fastir-lock``
next to the output (the output itself may not exist yet, and :func:`atomic_dir` replaces it
whole). The kernel drops a flock when its process dies, even by ``kill -9``, so a lock file left
by a dead process is simply taken over; the file holds the holder's pid only to name it in the
second writer's error. The holder unlinks the file before it unlocks, and a taker checks that the
file it locked is still the one at that name, so two processes never both believe they hold it.
Claiming also removes the temporary entries that dead processes left for that output, and on
failure removes the parent directories that the claim created, so a command that fails leaves
the output location as it was.

**The output-dir check.** :func:`check_output_dir` refuses an existing non-empty directory unless
asked to replace it.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from fastir.core.errors import InputError
from fastir.core.stop import temporary
from fastir.core.temp_names import (
    LEFTOVER, TMP_RESERVED, TMP_TAG, base_name, fit_name, is_temporary_or_lock, lock_file, temp_prefix,
)



def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str | os.PathLike, is_dir: bool) -> None:
    """Give an output the modes of a file the user creates (0666/0777 less the umask).

    mkstemp/mkdtemp create private 0600/0700 entries, and so do libraries that write through their
    own temporary file (safetensors' save_file: model.safetensors was 0600), so every entry of an
    output directory is set, not only its top. Executable files keep their execute bits.
    """
    mask = _umask()
    os.chmod(tmp, (0o777 if is_dir else 0o666) & ~mask)
    if not is_dir:
        return
    for root, dirs, files in os.walk(tmp):
        for name in dirs + files:
            entry = os.path.join(root, name)
            st = os.lstat(entry)  # symbolic links are left alone (chmod would follow them)
            if stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_mode & 0o111):
                os.chmod(entry, 0o777 & ~mask)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(entry, 0o666 & ~mask)


def _fsync(path: str | os.PathLike) -> None:
    """Flush one file's or directory's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system that cannot sync (pipes, some FUSE)
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file below ``root``, then each directory after its entries (``root`` last)."""
    if not os.path.isdir(root):
        _fsync(root)
        return
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                _fsync(path)
        _fsync(directory)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary entries of dead processes for ``path``; returns what was removed.

    Looks at ``path``'s siblings named ``.<path.name>.fastir-tmp-*`` and, when ``path`` is a
    directory, at every ``.*.fastir-tmp-*`` entry directly inside it (e.g. a checkpoint being
    written when training was killed). Entries of live processes are left alone.
    """
    path = Path(path)
    candidates: list[Path] = []
    with contextlib.suppress(OSError):
        names = {path.name, fit_name(path.name, TMP_RESERVED)}  # a long name's temporaries carry its fitted form
        candidates += [e for e in path.parent.iterdir() if TMP_TAG in e.name and base_name(e.name) in names]
    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(OSError):
            candidates += [e for e in path.iterdir() if TMP_TAG in e.name]
    removed = []
    for entry in candidates:
        m = LEFTOVER.match(entry.name)
        if m and int(m.group("pid")) != os.getpid() and not pid_alive(int(m.group("pid"))):
            _remove(entry)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    Text modes write UTF-8 whatever the locale (outputs hold text in every LAReQA language).
    """
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
        yield fh


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path for a writer that opens files itself; rename on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=path.parent)
    os.close(fd)
    try:
        with temporary(tmp):
            yield Path(tmp)
            _publish(tmp, is_dir=False)
            _fsync(tmp)
            os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path``.

    With ``overwrite=False`` an existing non-empty ``path`` is an error raised by the caller
    beforehand; an existing empty directory is replaced. If the swap itself fails, the old
    ``path`` is put back.
    """
    with atomic_dirs([path], overwrite=overwrite) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_dirs(paths, overwrite: bool = False) -> Iterator[list[Path]]:
    """:func:`atomic_dir` for outputs that appear together or not at all (``fastir score --trec``):
    all are swapped in at the end, and if one swap fails the ones already made are undone."""
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        with contextlib.ExitStack() as live:
            for path in paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmps.append(Path(tempfile.mkdtemp(prefix=temp_prefix(path), dir=path.parent)))
                live.enter_context(temporary(tmps[-1]))
            yield tmps
            for tmp in tmps:
                _publish(tmp, is_dir=True)
                _fsync_tree(tmp)
            _swap_in(paths, tmps, overwrite)
        for parent in dict.fromkeys(path.parent for path in paths):
            _fsync(parent)
    except BaseException:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(paths: list[Path], tmps: list[Path], overwrite: bool) -> None:
    done: list[tuple[Path, Path, Path | None]] = []  # (output, its temporary name, the old output aside)
    try:
        for path, tmp in zip(paths, tmps):
            old = None
            if path.exists():
                if not overwrite and any(path.iterdir()):
                    raise FileExistsError(errno.EEXIST, "output appeared while this command ran", str(path))
                old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix="-old", dir=path.parent))
                try:
                    os.replace(path, old)
                except BaseException:
                    old.rmdir()
                    raise
            try:
                os.replace(tmp, path)
            except BaseException:
                if old is not None:
                    os.replace(old, path)
                raise
            done.append((path, tmp, old))
    except BaseException:
        for path, tmp, old in reversed(done):  # undo: the new output back to its temporary name
            os.replace(path, tmp)
            if old is not None:
                os.replace(old, path)
        raise
    for _, _, old in done:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------ one writer per output

_HELD: dict[str, int] = {}  # this process's claims (re-entrant: experiment -> train on the same out)


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


# ------------------------------------------------------------------------------ the output-dir check


def check_output_dir(path: str | os.PathLike, overwrite: bool = False, resume: bool = False, *,
                     inputs: Iterable[str | os.PathLike] = (), written: Iterable[str] | None = None) -> None:
    """Refuse, before any work, an output that would destroy an input or anything fastir did not write.

    * The output may not be, contain or lie inside any of ``inputs`` (the files and directories the
      command reads; symbolic links resolved): ``--overwrite`` would remove them.
    * An existing non-empty directory needs ``overwrite`` (or ``resume``), and with ``overwrite`` it
      is replaced only when every entry is one this kind of output holds: ``written``, the names
      (glob patterns) that the owning module writes there, or fastir's own temporary and lock
      entries. ``written=None``: the caller removes only what it wrote itself (``fastir train``).
    """
    path = Path(path)
    check_not_an_input(path, inputs)
    check_not_a_link(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, None, "output path exists and is not a directory")
    entries = sorted(path.iterdir()) if path.is_dir() else []
    if entries and not (overwrite or resume):
        raise InputError(path, None, "output directory exists and is not empty; pass --overwrite (or --resume)")
    if entries and overwrite and written is not None:
        patterns = tuple(written)
        foreign = [e.name for e in entries if not (any(fnmatch.fnmatchcase(e.name, p) for p in patterns)
                                                   or is_temporary_or_lock(e.name))]
        if foreign:
            raise InputError(path, None, f"holds {foreign[0]!r}, which this command does not write; --overwrite "
                                         "replaces only an output fastir wrote: choose another output or remove it "
                                         "yourself")


def check_output_file(path: str | os.PathLike, overwrite: bool = False, *,
                      inputs: Iterable[str | os.PathLike] = ()) -> None:
    """An output file: never one of ``inputs`` or inside one, never a directory, replaced only with ``overwrite``."""
    path = Path(path)
    check_not_an_input(path, inputs)
    check_not_a_link(path)
    if path.is_dir():
        raise InputError(path, None, "output path is a directory; name a file")
    if path.exists() and not overwrite:
        raise InputError(path, None, "output file exists; pass --overwrite")


def check_not_a_link(output: str | os.PathLike) -> None:
    """An output is replaced by renaming a new entry onto its name, which would replace a symbolic
    link, not what it points to: refuse one before any work (its target is the place to name)."""
    if os.path.islink(output):
        raise InputError(output, None, f"is a symbolic link (to {os.readlink(output)!r}); name the real location")


def check_outputs_apart(first: str | os.PathLike, second: str | os.PathLike, field: str) -> None:
    """Two outputs of one command (``field`` names the second's option) are neither the same path nor nested."""
    a, b = Path(os.path.realpath(first)), Path(os.path.realpath(second))
    if a == b or a.is_relative_to(b) or b.is_relative_to(a):
        raise InputError(second, field, f"must lie apart from {os.fspath(first)!r}, this command's other output")


def check_not_an_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an ``output`` that is, contains or lies inside one of ``inputs`` (links resolved; an
    input that is not on disk, such as a hub id, cannot be harmed and is skipped)."""
    out = Path(os.path.realpath(output))
    for given in inputs:
        if given is None or not os.path.lexists(given):
            continue
        source = Path(os.path.realpath(given))
        if out == source or source.is_relative_to(out):
            raise InputError(output, None, f"would replace {os.fspath(given)!r}, an input of this command: "
                                           "choose another output")
        if out.is_relative_to(source):
            raise InputError(output, None, f"lies inside {os.fspath(given)!r}, an input of this command: "
                                           "choose another output")
