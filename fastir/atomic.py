"""Write outputs under a temporary name, then rename: no partial output is ever left behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    beforehand; an existing empty directory is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _publish(tmp, is_dir=True)
        if path.exists():
            if not overwrite and any(path.iterdir()):
                raise FileExistsError(path)
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
