"""fastir.atomic: umask modes of published outputs, recognisable temporary names, cleanup on
failure, leftovers of dead processes, memory maps that report a full disk instead of dying of SIGBUS."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from fastir import atomic
from fastir.atomic import (atomic_dir, atomic_file, atomic_path, output_name,
                           remove_leftovers, temp_prefix)


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


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_carry_the_output_name_and_pid_and_map_back(tmp_path):
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(f".out.json.fastir-tmp-{os.getpid()}-")
        assert output_name(tmp) == target
        tmp.write_text("x")
    with atomic_dir(tmp_path / "d") as tmp:
        assert tmp.name.startswith(temp_prefix(tmp_path / "d"))
    assert output_name(tmp_path / ".d.fastir-lock") == tmp_path / "d"
    assert output_name(tmp_path / "plain") == tmp_path / "plain"
    assert output_name(tmp_path / "..t.fastir-tmp-1-a.fastir-tmp-1-b" / "x.run") == tmp_path / "t" / "x.run"
    assert output_name(tmp_path / f".d.fastir-tmp-{os.getpid()}-x1" / ".p.png.fastir-tmp-1-y") == tmp_path / "d" / "p.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "out.json"]


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_nothing(tmp_path, exc):
    (tmp_path / "keep").write_text("old")
    with pytest.raises(type(exc)):
        with atomic_file(tmp_path / "keep", "w") as fh:
            fh.write("new")
            raise exc
    with pytest.raises(type(exc)):
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "a").write_text("x")
            raise exc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
    assert (tmp_path / "keep").read_text() == "old"


def test_a_failed_swap_puts_the_old_directory_back(tmp_path, monkeypatch):
    old = tmp_path / "d"
    old.mkdir()
    (old / "a").write_text("old")
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append(src)
        if len(calls) == 2:  # the new directory onto the output
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError):
        with atomic_dir(old, overwrite=True) as tmp:
            (tmp / "a").write_text("new")
    assert (old / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_remove_leftovers_takes_dead_processes_entries_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead, alive = _dead_pid(), os.getppid()
    dead_file = tmp_path / f".out.fastir-tmp-{dead}-abc"
    dead_dir = tmp_path / f".out.fastir-tmp-{dead}-def-old"
    inner = out / f".checkpoint-000004.fastir-tmp-{dead}-xyz"  # a checkpoint being written at the kill
    live = tmp_path / f".out.fastir-tmp-{alive}-ghi"
    mine = tmp_path / f".out.fastir-tmp-{os.getpid()}-jkl"
    other_output = tmp_path / f".other.fastir-tmp-{dead}-mno"
    nested = tmp_path / f"..out.fastir-tmp-{dead}-pq.fastir-tmp-{dead}-rs"  # a temporary of a temporary
    dead_file.write_text("x")
    nested.mkdir()
    dead_dir.mkdir()
    (dead_dir / "queries.arrow").write_text("x")
    inner.mkdir()
    for p in (live, mine, other_output):
        p.write_text("x")
    removed = remove_leftovers(out)
    assert sorted(removed) == sorted([dead_file, dead_dir, inner, nested])
    assert not dead_file.exists() and not dead_dir.exists() and not inner.exists()
    assert live.exists() and mine.exists() and other_output.exists()


