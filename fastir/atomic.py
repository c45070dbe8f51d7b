"""Write outputs under a temporary name, then rename: no partial output is ever left behind.

Every temporary entry fastir creates beside (or inside) an output is named
``.<name>.fastir-tmp-<pid>-<random>`` (:func:`temp_prefix`), so that it can be recognised: a
failing process removes its own on the way out, and :func:`remove_leftovers` removes those of
processes that died without cleaning up (``kill -9``, power loss) when the next run claims the
same output (:func:`fastir.lock.claim_output`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

TMP_TAG = ".fastir-tmp-"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.fastir-tmp-(?P<pid>\d+)-[^/]*$")
_OURS = re.compile(r"^\.(?P<name>.+)\.fastir-(?:tmp-\d+-[^/]*|lock)$")  # temporaries and fastir.lock's files


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


def temp_prefix(path: str | os.PathLike) -> str:
    """Name prefix of this process's temporary siblings of ``path``."""
    return f".{Path(path).name}{TMP_TAG}{os.getpid()}-"


def output_name(temp: str | os.PathLike) -> Path:
    """The output a temporary entry (or a path inside one) stands for: every component named like
    our temporaries or lock files is replaced by the output's name."""
    parts = []
    for part in Path(temp).parts:
        while (m := _OURS.match(part)) is not None:
            part = m.group("name")
        parts.append(part)
    return Path(*parts)


def _base_name(name: str) -> str:
    """The output a temporary name stands for, through temporaries of temporaries (a TREC dir
    staged for ``score``'s two-output publish is itself written through a temporary)."""
    while (m := _LEFTOVER.match(name)) is not None:
        name = m.group("name")
    return name


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
        candidates += [e for e in path.parent.iterdir() if TMP_TAG in e.name and _base_name(e.name) == path.name]
    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(OSError):
            candidates += [e for e in path.iterdir() if TMP_TAG in e.name]
    removed = []
    for entry in candidates:
        m = _LEFTOVER.match(entry.name)
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
        yield Path(tmp)
        _publish(tmp, is_dir=False)
        os.replace(tmp, path)
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
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmps.append(Path(tempfile.mkdtemp(prefix=temp_prefix(path), dir=path.parent)))
        yield tmps
        for tmp in tmps:
            _publish(tmp, is_dir=True)
        _swap_in(paths, tmps, overwrite)
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
