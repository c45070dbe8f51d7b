"""kill -9 at chosen points, and a second writer while the first one runs.

A child process runs a command with :func:`fastir.core.outputs._publish` wrapped so that it pauses just
before the chosen output (temporary path containing MATCH) is renamed into place: every temporary
it created exists, fully written. The test then runs the same command again (it must fail at once
on the lock, naming the child's pid), kills the child with SIGKILL (no cleanup can run), and runs
the command again: it must succeed and leave nothing but its outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fastir.cli import main

pytestmark = pytest.mark.slow  # child processes import torch

_CHILD = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    import fastir.core.outputs as atomic

    flag, match = Path(sys.argv[1]), sys.argv[2]
    real = atomic._publish

    def publish(tmp, is_dir):
        if match in os.fspath(tmp):
            flag.write_text(str(os.getpid()))
            time.sleep(600)
        real(tmp, is_dir)

    atomic._publish = publish
    from fastir.cli import main
    sys.exit(main(json.loads(sys.argv[3])))
""")


def _paused_child(argv: list[str], match: str, flag: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(flag), match, json.dumps(argv)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended ({proc.returncode}) before {match!r}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, "child never reached the pause point"
        time.sleep(0.1)
    return proc


def _kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _second_writer_fails_on_the_lock(argv, capsys, pid: int) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ": lock: " in err and f"pid {pid}" in err, err


def test_score_per_query_trec_killed_then_rerun(argv_of, tmp_path, capsys):
    root = tmp_path / "o"
    argv = argv_of("score-trec", root)
    proc = _paused_child(argv, ".trec.fastir-tmp-", tmp_path / "flag")
    try:
        _second_writer_fails_on_the_lock(argv, capsys, proc.pid)
    finally:
        _kill_9(proc)
    left = _names(root)
    assert any(n.startswith(f".scores.fastir-tmp-{proc.pid}-") for n in left), left
    assert any(n.startswith(f".trec.fastir-tmp-{proc.pid}-") for n in left), left
    assert main(argv) == 0
    assert _names(root) == ["scores", "trec"]  # leftovers and stale locks gone


def test_embed_killed_during_merge_then_resumed_byte_identical(embed_tiny_bert, embed_tiny_dataset, tmp_path, capsys):
    def argv(out, *extra):
        return ["embed", "--no-progress", "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert,
                "--out", str(out), "--device", "cpu", *extra]

    assert main(argv(tmp_path / "ref")) == 0
    root = tmp_path / "o"
    proc = _paused_child(argv(root / "run"), ".run.fastir-tmp-", tmp_path / "flag")  # OUT's temp dir, complete
    try:
        _second_writer_fails_on_the_lock(argv(root / "run"), capsys, proc.pid)
    finally:
        _kill_9(proc)
    left = _names(root)
    assert ".run.fastir-embed" in left and any(n.startswith(f".run.fastir-tmp-{proc.pid}-") for n in left), left
    assert main(argv(root / "run", "--resume")) == 0
    assert _names(root) == ["run"]
    for name in ("queries.arrow", "candidates.arrow", "qrels.arrow"):
        assert (root / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_train_killed_while_writing_a_checkpoint_then_resume_and_overwrite(train_tiny_bert, inputs, tmp_path,
                                                                           capsys):
    out = tmp_path / "o" / "train"
    argv = ["train", "--data", str(inputs["train_arrow"]), "--model", train_tiny_bert, "--out", str(out),
            "--batch-size", "4", "--steps", "4", "--save-steps", "2", "--device", "cpu", "--no-progress"]
    proc = _paused_child(argv, ".checkpoint-000004.fastir-tmp-", tmp_path / "flag")
    try:
        _second_writer_fails_on_the_lock([*argv, "--resume"], capsys, proc.pid)
    finally:
        _kill_9(proc)
    leftover = [out / n for n in _names(out) if n.startswith(f".checkpoint-000004.fastir-tmp-{proc.pid}-")]
    assert len(leftover) == 1, _names(out)
    kept = shutil.copytree(leftover[0], tmp_path / "kept")
    assert main([*argv, "--resume"]) == 0  # resumes from checkpoint-000002, removes the dead temporary
    assert not [n for n in _names(out) if "fastir" in n] and "checkpoint-000004" in _names(out)
    shutil.move(kept, leftover[0])  # the same leftover again, for --overwrite
    assert main([*argv, "--overwrite"]) == 0
    assert not [n for n in _names(out) if "fastir" in n] and _names(out.parent) == ["train"]


def test_sigterm_cleans_up_like_a_failure(argv_of, tmp_path):
    """SIGTERM (what torchrun and schedulers send) runs every cleanup: temporaries and lock go."""
    root = tmp_path / "o"
    proc = _paused_child(argv_of("score-trec", root), ".trec.fastir-tmp-", tmp_path / "flag")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip() == "error: terminated", err
    assert not tmp_path.joinpath("o").exists()  # even the parent the command created
