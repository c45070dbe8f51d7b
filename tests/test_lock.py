"""fastir.lock: one writer per output, the holder named by pid, stale locks taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from fastir.errors import InputError
from fastir.lock import claim_output, lock_file

_HOLD = """
import sys, time
from pathlib import Path
from fastir.lock import claim_output
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
