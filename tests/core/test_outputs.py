"""fastir.core.outputs: umask modes of published outputs, recognisable temporary names, cleanup on
failure, data on the disk before the rename, leftovers of dead processes; one writer per output (the
holder named by pid, stale locks taken over); the output-dir check."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time

import pytest

from fastir.core import outputs
from fastir.core.errors import InputError
from fastir.core.outputs import (atomic_dir, atomic_file, atomic_path, check_output_dir, claim_output,
                                 remove_leftovers)
from fastir.core.temp_names import lock_file, output_name, temp_prefix


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

    monkeypatch.setattr(outputs.os, "replace", replace)
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


# ------------------------------------------------------------------------ one writer per output

_HOLD = """
import sys, time
from pathlib import Path
from fastir.core.outputs import claim_output
with claim_output(sys.argv[1]):
    Path(sys.argv[2]).write_text("held")
    time.sleep(60)
"""


def _holder(out, flag):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(out), str(flag)])
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def test_a_second_writer_fails_at_once_naming_the_holder_and_takes_over_after_kill_9(tmp_path):
    out = tmp_path / "out"
    proc = _holder(out, tmp_path / "flag")
    try:
        with pytest.raises(InputError) as info:
            with claim_output(out):
                pass
        assert info.value.field == "lock" and f"pid {proc.pid}" in info.value.message
        assert info.value.path == str(out)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs, the lock file stays behind
        proc.wait()
    assert lock_file(out).exists()
    with claim_output(out):  # the kernel dropped the dead holder's flock: taken over
        assert lock_file(out).read_text().strip() == str(os.getpid())
    assert not lock_file(out).exists()


def test_claims_are_reentrant_and_leave_nothing(tmp_path):
    out = tmp_path / "out"
    with claim_output(out, None, tmp_path / "trec"):
        with claim_output(out):
            assert lock_file(out).exists()
        assert lock_file(out).exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_command_removes_the_parents_its_claim_created(tmp_path):
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError):
        with claim_output(out):
            raise RuntimeError("bad input found after the claim")
    assert list(tmp_path.iterdir()) == []
    with claim_output(out):
        out.mkdir()
    assert out.is_dir()


def test_claiming_removes_dead_processes_temporaries(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    leftover = tmp_path / f".out.fastir-tmp-{proc.pid}-abc"
    leftover.mkdir()
    with claim_output(out):
        assert not leftover.exists()


# ------------------------------------------------------------------------------ fsync before rename


def test_every_file_and_directory_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def replace(src, dst):
        renamed.append((str(src), len(synced)))
        return real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "fsync", fsync)
    monkeypatch.setattr(outputs.os, "replace", replace)
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "a").write_text("a")
        (tmp / "sub" / "b").write_text("b")
    (tmp_dir, synced_before), = renamed
    before = synced[:synced_before]  # each directory after its entries, the top one last
    assert sorted(before) == sorted([f"{tmp_dir}/a", f"{tmp_dir}/sub/b", f"{tmp_dir}/sub", tmp_dir])
    assert before[-1] == tmp_dir and before.index(f"{tmp_dir}/sub") > before.index(f"{tmp_dir}/sub/b")
    assert synced[synced_before:] == [str(tmp_path)]  # the rename itself, in the parent directory
    synced.clear()
    renamed.clear()
    with atomic_file(tmp_path / "f.json", "w") as fh:
        fh.write("{}")
    (tmp_file, synced_before), = renamed
    assert synced == [tmp_file, str(tmp_path)] and synced_before == 1


def test_check_output_dir_refuses_a_file_and_a_non_empty_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_output_dir(tmp_path / "f")
    (tmp_path / "d").mkdir()
    check_output_dir(tmp_path / "d")  # empty: fine
    (tmp_path / "d" / "x").write_text("x")
    with pytest.raises(InputError, match="not empty; pass --overwrite"):
        check_output_dir(tmp_path / "d")
    check_output_dir(tmp_path / "d", overwrite=True)
    check_output_dir(tmp_path / "d", resume=True)


def test_an_output_is_never_an_input_nor_holds_one_nor_lies_inside_one(tmp_path):
    from fastir.core.outputs import check_not_an_input

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "in.txt").write_text("x")
    for output, message in ((tmp_path / "d", "would replace"), (tmp_path, "would replace"),
                            (tmp_path / "d" / "in.txt", "would replace"), (tmp_path / "d" / "out", "lies inside")):
        with pytest.raises(InputError, match=message):
            check_not_an_input(output, [tmp_path / "d" / "in.txt"] if "in.txt" in str(output) else [tmp_path / "d"])
    check_not_an_input(tmp_path / "e", [tmp_path / "d", None, tmp_path / "hub-id-not-on-disk"])
    os.symlink(tmp_path / "d", tmp_path / "link")
    with pytest.raises(InputError, match="would replace"):
        check_not_an_input(tmp_path / "link", [tmp_path / "d"])


def test_overwrite_replaces_only_what_the_output_kind_holds(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / ".summary.json.fastir-tmp-1-x").write_text("")  # our own leftover does not count
    check_output_dir(out, overwrite=True, written=["summary.json", "*.run"])
    (out / "a.run").write_text("")
    check_output_dir(out, overwrite=True, written=["summary.json", "*.run"])
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds 'notes.txt', which this command does not write"):
        check_output_dir(out, overwrite=True, written=["summary.json", "*.run"])
    check_output_dir(out, overwrite=True)  # written=None: the caller removes only its own files
