"""Atomic writers publish outputs with the modes of the user's umask (fastir/atomic.py)."""

from __future__ import annotations

import os
import tempfile

import pytest

from fastir.atomic import atomic_dir, atomic_path


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_atomic_dir_gives_every_entry_umask_modes(tmp_path, umask):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "sub").mkdir(mode=0o700)
        # a library writing through its own temporary file (safetensors does) leaves it 0600
        fd, private = tempfile.mkstemp(dir=tmp / "sub")
        os.close(fd)
        os.rename(private, tmp / "sub" / "model.safetensors")
        (tmp / "tool.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "tool.sh", 0o700)
        os.symlink("/nonexistent-target", tmp / "link")  # left alone, not followed
    out = tmp_path / "out"
    assert _mode(out) == _mode(out / "sub") == 0o777 & ~umask
    assert _mode(out / "sub" / "model.safetensors") == 0o666 & ~umask
    assert _mode(out / "tool.sh") == 0o777 & ~umask
    assert os.path.islink(out / "link")


def test_atomic_path_gives_the_file_umask_modes(tmp_path, umask):
    with atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("x")
    assert _mode(tmp_path / "f.txt") == 0o666 & ~umask
