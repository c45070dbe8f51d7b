"""The CLI boundary: failures of the environment (permission denied, disk full, out of memory, a
truncated model file) and oversized requests end in ONE line ``error: <file>: <field>: <message>``,
exit 2, nothing left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from fastir.core import outputs
from fastir.cli import main
from fastir.core.errors import from_environment
from tests.cli.conftest import one_line_error

COMMANDS = ("score", "score-trec", "compare", "data-export", "data-to-train", "sample", "import")


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _fail_on_publish(monkeypatch, exc_factory):
    """Every atomic output fails just before its rename: the state of a disk filling up mid-write."""
    def publish(tmp, is_dir):
        raise exc_factory(os.fspath(tmp))

    monkeypatch.setattr(outputs, "_publish", publish)


# ------------------------------------------------------------------------------------ disk full


@pytest.mark.parametrize("name", COMMANDS)
def test_disk_full_is_one_line_and_leaves_nothing(name, argv_of, tmp_path, capsys, monkeypatch):
    _fail_on_publish(monkeypatch, lambda p: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), p))
    capsys.readouterr()
    assert main(argv_of(name, tmp_path / "out")) == 2
    line = one_line_error(capsys.readouterr().err, ": disk: ", "No space left on device", "[ENOSPC]")
    assert "fastir-tmp" not in line  # names the output, not our temporary
    assert _listing(tmp_path) == []


def test_pyarrow_io_error_without_errno_is_disk_full():
    exc = OSError("[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert from_environment(exc).field == "disk"


def test_embed_disk_full_during_merge(embed_tiny_bert, embed_tiny_dataset, tmp_path, capsys, monkeypatch):
    """A full disk while the merge streams the candidates table: one line, nothing of OUT left, the
    encoded parts stay for --resume, which then finishes."""
    from fastir.runs import writer

    def full(self, table):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "run"
    argv = ["embed", "--no-progress", "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", str(out),
            "--device", "cpu"]
    monkeypatch.setattr(writer.TableStream, "write", full)
    assert main(argv) == 2
    one_line_error(capsys.readouterr().err, ": disk: ", "[ENOSPC]")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.fastir-embed"]  # the resumable parts only
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0


def test_train_disk_full_at_the_first_checkpoint_leaves_nothing(train_tiny_bert, inputs, tmp_path, capsys,
                                                                monkeypatch):
    _fail_on_publish(monkeypatch, lambda p: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), p))
    out = tmp_path / "deep" / "train"
    assert main(["train", "--data", str(inputs["train_arrow"]), "--model", train_tiny_bert, "--out", str(out),
                 "--batch-size", "4", "--steps", "2", "--device", "cpu", "--no-progress"]) == 2
    one_line_error(capsys.readouterr().err, "checkpoint-000002: disk: ")
    assert _listing(tmp_path) == []  # no train.jsonl, no checkpoint temp, no created parent


# ------------------------------------------------------------------------------- permission denied


@pytest.mark.parametrize("name", COMMANDS)
def test_permission_denied_is_one_line_and_leaves_nothing(name, argv_of, tmp_path, capsys, monkeypatch):
    _fail_on_publish(monkeypatch, lambda p: PermissionError(errno.EACCES, os.strerror(errno.EACCES), p))
    capsys.readouterr()
    assert main(argv_of(name, tmp_path / "out")) == 2
    one_line_error(capsys.readouterr().err, ": permission: ", "[EACCES]")
    assert _listing(tmp_path) == []


_AS_NOBODY = textwrap.dedent("""
    import io, json, sys, contextlib
    from fastir.cli import main
    results = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        results.append([code, err.getvalue()])
    print(json.dumps(results))
""")


@pytest.fixture
def world_readable_root():
    """A directory other users can reach (pytest's own tmp dirs are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="fastir-ro-test-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    for p in root.rglob("*"):
        if p.is_dir():
            os.chmod(p, 0o755)
    shutil.rmtree(root)


def _share_numba_cache(cache_dir: Path) -> None:
    """Copy the compiled kernels where NUMBA_CACHE_DIR=cache_dir finds them (nobody cannot write
    the in-tree cache, and compiling them all again would take most of the test's time)."""
    import fastir.kernels
    from numba.core.caching import _CacheLocator

    src = Path(fastir.kernels.__path__[0])
    dst = cache_dir / _CacheLocator.get_suitable_cache_subpath(str(src / "x.py"))
    if (src / "__pycache__").is_dir():
        # not Numba's *.tmp.* files: another xdist worker may be saving (then renaming) a kernel
        shutil.copytree(src / "__pycache__", dst, ignore=shutil.ignore_patterns("*.pyc", "*.tmp.*"))
    for p in [cache_dir, *cache_dir.rglob("*")]:
        os.chmod(p, 0o777 if p.is_dir() else 0o666)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_read_only_locations_as_a_non_root_user(inputs, world_readable_root):
    """The issue's cases, for real: a user without write permission (nobody, via setpriv)."""
    root = world_readable_root
    src = root / "src"
    scratch = root / "scratch"  # where nobody may write: caches, and the one output that must succeed
    ro = root / "ro"
    for d in (src, scratch, ro):
        d.mkdir()
    os.chmod(scratch, 0o777)
    copies = {k: shutil.copytree(inputs[k], src / k) for k in ("run", "score_a", "score_b", "lareqa")}
    copies["train_arrow"] = shutil.copy(inputs["train_arrow"], src / "train.arrow")
    copies["train_jsonl"] = shutil.copy(inputs["train_jsonl"], src / "train.jsonl")
    run = shutil.copytree(inputs["run"], ro / "run")
    for p in [*src.rglob("*"), ro, *ro.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    cases = [
        (["score", str(run)], "ro/run/scores: permission: "),
        (["score", str(copies["run"]), "--out", str(ro / "x")], "ro/x: permission: "),
        (["score", str(copies["run"]), "--out", str(scratch / "s"), "--trec", str(ro / "t")], "ro/t: permission: "),
        (["compare", str(copies["score_a"]), str(copies["score_b"]), "--samples", "50", "--out", str(ro / "c")],
         "ro/c: permission: "),
        (["sample", str(copies["train_arrow"]), "--batch-size", "4", "--steps", "2", "--out", str(ro / "b.jsonl")],
         "ro/b.jsonl: permission: "),
        (["data", "export", str(copies["lareqa"]), str(ro / "e")], "ro/e: permission: "),
        (["sample", str(copies["train_jsonl"]), "--batch-size", "4", "--steps", "2"], "ro/cache: permission: "),
    ]
    before = _listing(ro)
    _share_numba_cache(scratch / "numba")
    env = {**os.environ, "FASTIR_CACHE_DIR": str(ro / "cache"), "NUMBA_CACHE_DIR": str(scratch / "numba"),
           "MPLCONFIGDIR": str(scratch / "mpl"), "HOME": str(scratch)}
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", _AS_NOBODY,
         json.dumps([argv for argv, _ in cases])], env=env, capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, needle), (code, err) in zip(cases, results):
        assert code == 2, (argv, err)
        one_line_error(err, needle, "[EACCES]")
    assert _listing(ro) == before
    assert not (scratch / "s").exists()


# ----------------------------------------------------------------------------------------- memory


def test_memory_error_anywhere_is_one_line(argv_of, tmp_path, capsys, monkeypatch):
    import fastir.eval.score as score

    def oom(*args, **kwargs):
        raise MemoryError("Unable to allocate 2.95 TiB for an array with shape (1000, 4, 1000000000)")

    monkeypatch.setattr(score, "count_range", oom)  # the fp32 pass
    assert main(argv_of("score", tmp_path / "out")) == 2
    one_line_error(capsys.readouterr().err, "error: memory: out of memory (Unable to allocate 2.95 TiB")
    assert _listing(tmp_path) == []


def test_compare_samples_checked_against_memory_before_allocating(argv_of, tmp_path, capsys, monkeypatch):
    import fastir.core.resources as resources

    monkeypatch.setattr(resources, "available_memory", lambda: 1 << 30)
    assert main(argv_of("compare", tmp_path / "out")[:-4] + ["--samples", "100000000"]) == 2
    one_line_error(capsys.readouterr().err, "error: --samples: 100000000 resamples", "GiB")


def test_trec_buffer_checked_against_memory(argv_of, tmp_path, capsys, monkeypatch):
    import fastir.core.resources as resources

    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    assert main(argv_of("score-trec", tmp_path / "out")) == 2
    one_line_error(capsys.readouterr().err, "error: --trec-depth: the TREC top-", "GiB")
    assert _listing(tmp_path) == []


def test_bugs_keep_their_traceback(argv_of, tmp_path, monkeypatch):
    import fastir.eval.score as score

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(score, "count_range", bug)  # the fp32 pass
    with pytest.raises(ZeroDivisionError):
        main(argv_of("score", tmp_path / "out"))
    assert _listing(tmp_path) == []


# ------------------------------------------------------------------------------------------ sizes


def test_huge_k_is_one_line(inputs, tmp_path, capsys):
    assert main(["score", str(inputs["run"]), "--out", str(tmp_path / "o"), "--k", "9999999999"]) == 2
    one_line_error(capsys.readouterr().err, "error: --k: must be at most 2147483647")
    assert main(["score", str(inputs["run"]), "--out", str(tmp_path / "o"), "--k", "99999999999999999999"]) == 2
    one_line_error(capsys.readouterr().err, "error: --k: 99999999999999999999 is out of range")  # beyond int64
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("args", [["--trec-depth", "9223372036854775807"], ["--k", "1000000000"],
                                  ["--k", "100000000"]])
def test_trec_depth_is_capped_by_the_candidates(inputs, tmp_path, capsys, args):
    """A depth beyond the candidate count cannot fill: the buffer is capped, the files are those of
    depth = |candidates| (24 here)."""
    run = str(inputs["run"])
    assert main(["score", run, "--out", str(tmp_path / "ref"), "--trec", str(tmp_path / "ref_trec"),
                 "--trec-depth", "24"]) == 0
    assert main(["score", run, "--out", str(tmp_path / "big"), "--trec", str(tmp_path / "big_trec"), *args]) == 0
    files = sorted(p.name for p in (tmp_path / "ref_trec").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "big_trec").iterdir()) and files
    for name in files:
        assert (tmp_path / "ref_trec" / name).read_bytes() == (tmp_path / "big_trec" / name).read_bytes()


# ------------------------------------------------------------------------------- corrupt model file


@pytest.fixture
def truncated_model(train_tiny_bert, tmp_path):
    model = Path(shutil.copytree(train_tiny_bert, tmp_path / "model"))
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return str(model)


def test_truncated_safetensors_in_embed_and_train(truncated_model, embed_tiny_dataset, inputs, tmp_path, capsys):
    assert main(["embed", "--no-progress", "--dataset", embed_tiny_dataset, "--model", truncated_model,
                 "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    one_line_error(capsys.readouterr().err, f"error: {truncated_model}: weights: unreadable safetensors file")
    assert main(["train", "--data", str(inputs["train_arrow"]), "--model", truncated_model,
                 "--out", str(tmp_path / "train"), "--batch-size", "4", "--steps", "1", "--device", "cpu",
                 "--no-progress"]) == 2
    one_line_error(capsys.readouterr().err, f"error: {truncated_model}: weights: unreadable safetensors file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_help_documents_the_exit_status():
    from click.testing import CliRunner

    from fastir.cli import cli

    text = CliRunner().invoke(cli, ["--help"]).output
    assert "Exit status" in text and "2 bad input or a failure of the environment" in text
