"""fastir.eval.shards: torchrun ranks and static shards give the single process's files, byte for
byte; every inconsistent rank or shard file is one line, exit 2, nothing written; a dead rank
makes the others fail after --timeout instead of hanging."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastir.cli import main
from fastir.eval.certified import choose_precision
from fastir.eval import shards
from fastir.eval.shards import parse_shard, shard_range

LANGS = ("aa", "bb", "cc")


def _columns(seed, n_q=30, n_c=200, dim=6):
    """Integer embeddings: exact scores, many ties across shard boundaries."""
    rng = np.random.default_rng(seed)
    qrels = [(q, int(c)) for q in range(n_q) for c in rng.choice(n_c, int(rng.integers(1, 5)), replace=False)]
    return dict(q_emb=rng.integers(-2, 3, (n_q, dim)), q_langs=[LANGS[i % 3] for i in range(n_q)],
                c_emb=rng.integers(-2, 3, (n_c, dim)), c_langs=[LANGS[int(x)] for x in rng.integers(0, 3, n_c)],
                qrels=qrels)


@pytest.fixture
def run_dir(tmp_path, make_run):
    return make_run(tmp_path, **_columns(0), dtype="float16")


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _single(run_dir, out, *extra):
    assert main(["score", str(run_dir), "--out", str(out / "scores"), "--trec", str(out / "trec"), "--per-query",
                 "--trec-depth", "7", "--device", "cpu", *extra]) == 0


def test_shard_ranges_and_parsing():
    assert [shard_range(10, i, 3) for i in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert parse_shard("2/3") == (2, 3)


def test_static_shards_merge_to_the_single_process_files(run_dir, tmp_path, capsys):
    _single(run_dir, tmp_path / "one")
    files = []
    for i in range(3):
        f = tmp_path / "shards" / f"s{i}.npz"
        assert main(["score", str(run_dir), "--shard", f"{i}/3", "--out", str(f), "--trec-depth", "7",
                     "--block-mb", "0.001", "--device", "cpu"]) == 0
        files.append(str(f))
    assert main(["score", str(run_dir), *files[::-1], "--merge-shards", "--out", str(tmp_path / "merged/scores"),
                 "--trec", str(tmp_path / "merged/trec"), "--trec-depth", "7", "--per-query"]) == 0
    _same_files(tmp_path / "one", tmp_path / "merged")
    # default shard file location
    assert main(["score", str(run_dir), "--shard", "0/1"]) == 0
    assert (Path(run_dir) / "shards" / "shard-0-of-1.npz").is_file()


def _error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def test_bad_shards(run_dir, tmp_path, make_run, capsys):
    out = tmp_path / "merged"
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"s{i}.npz"))
        assert main(["score", str(run_dir), "--shard", f"{i}/3", "--out", files[-1]]) == 0
    capsys.readouterr()
    for shard in ("3/3", "-1/2", "1/0", "x"):
        _error(capsys, main(["score", str(run_dir), "--shard", shard, "--out", str(tmp_path / "bad.npz")]), "--shard")
    assert not (tmp_path / "bad.npz").exists()
    merge = ["score", str(run_dir), "--merge-shards", "--out", str(out)]
    _error(capsys, main(merge + files[:2]), "--merge-shards", "shard 2/3 is missing")
    _error(capsys, main(merge + files + files[:1]), "s0.npz: shard", "given twice")
    _error(capsys, main(merge + files + ["--pairs", "mono"]), "s0.npz: settings")
    other = make_run(tmp_path / "other", **_columns(1), dtype="float16")
    f_other = str(tmp_path / "other.npz")
    assert main(["score", str(other), "--shard", "1/3", "--out", f_other]) == 0
    capsys.readouterr()
    _error(capsys, main(merge + [files[0], f_other, files[2]]), "other.npz: run_checksum", "another run dir")
    (tmp_path / "junk.npz").write_bytes(b"not a shard")
    _error(capsys, main(merge + [files[0], str(tmp_path / "junk.npz")]), "junk.npz: format")
    _error(capsys, main(merge + [files[0], str(tmp_path / "absent.npz")]), "absent.npz: missing")
    _error(capsys, main(["score", str(run_dir), files[0], "--out", str(out)]), "need --merge-shards")
    _error(capsys, main(["score", str(run_dir), "--merge-shards", "--out", str(out)]), "no shard files")
    # float32 counts do not add to exact ones (the default, auto, counts exact ones where bf16 is fast)
    other = "fp32" if choose_precision("auto", None, [], "cpu").certified else "exact"
    assert main(["score", str(run_dir), "--shard", "0/3", "--precision", other, "--out", str(tmp_path / "p.npz")]) == 0
    capsys.readouterr()
    _error(capsys, main(merge + [str(tmp_path / "p.npz"), files[1], files[2]]), "p.npz: settings")
    _error(capsys, main(["score", str(run_dir), "--shard", "0/3", "--out", files[0]]), "exists")
    assert not out.exists() and not list(tmp_path.glob(".merged*"))


def _forge(src: str, dst: Path, *, digest: bool = True, drop=(), **changes) -> str:
    """A copy of shard file ``src`` with header fields or arrays changed (``top_length`` = an array),
    its digest recomputed unless ``digest`` is False: what a careless or hostile edit leaves."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    for key, value in changes.items():
        (arrays if isinstance(value, np.ndarray) else header)[key] = value
    for key in drop:
        (arrays if key in arrays else header).pop(key)
    if digest:
        header["sha256"] = shards._digest(header, arrays)
    np.savez(dst, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return str(dst)


def test_forged_or_damaged_shards_are_refused_before_any_kernel_reads_them(run_dir, tmp_path, capsys):
    # issue 31, item 2: each of these merged with exit 0 and wrong metrics (or read out of bounds)
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"s{i}.npz"))
        assert main(["score", str(run_dir), "--shard", f"{i}/3", "--out", files[-1], "--trec-depth", "5"]) == 0
    capsys.readouterr()
    merge = ["score", str(run_dir), "--merge-shards", "--trec-depth", "5", "--out", str(tmp_path / "m"),
             "--trec", str(tmp_path / "t")]
    with np.load(files[1]) as npz:
        cnt, top_length, top_key = npz["cnt"], npz["top_length"], npz["top_key"]
    cases = [
        (_forge(files[1], tmp_path / "relabelled.npz", shard=0, shards=1), [], "candidates"),
        (_forge(files[1], tmp_path / "five.npz", shard=5), files, "shard 5 of 3 is out of range"),
        (_forge(files[1], tmp_path / "negative.npz", cnt=cnt - cnt.max() - 1), [files[0], files[2]], "cnt: counts out"),
        (_forge(files[1], tmp_path / "short.npz", top_length=top_length[:-1]), [files[0], files[2]], "top_length"),
        (_forge(files[1], tmp_path / "deep.npz", top_length=top_length + 100), [files[0], files[2]], "top_length"),
        (_forge(files[1], tmp_path / "keys.npz", top_key=top_key + 10**12), [files[0], files[2]], "top_key"),
        (_forge(files[1], tmp_path / "edited.npz", digest=False, cnt=cnt + 1), [files[0], files[2]], "sha256"),
        (_forge(files[1], tmp_path / "nocnt.npz", drop=["cnt"]), [files[0], files[2]], "cnt: expected int64"),
        (_forge(files[1], tmp_path / "noshards.npz", drop=["shards"]), [files[0], files[2]], "shards: missing"),
        (_forge(files[1], tmp_path / "v1.npz", format="fastir-score-shard/1"), [], "without a digest"),
    ]
    for forged, others, needle in cases:
        _error(capsys, main(merge + [forged, *others]), Path(forged).name, needle)
    assert not (tmp_path / "m").exists() and not (tmp_path / "t").exists()
    assert main(merge + files) == 0  # the genuine set still merges


# -------------------------------------------------------------------------------- torchrun / ranks

_RANK_SCRIPT = """
import os, sys
if os.environ.get("FASTIR_TEST_DIE") == os.environ["RANK"]:
    import fastir.eval.score as score
    def die(*args, **kwargs):
        os._exit(3)
    score.count_range = die
from fastir.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(argvs, die=None, timeout=180):
    """One process per rank with torchrun's environment; argvs[r] are rank r's arguments."""
    port = _free_port()
    procs = []
    for rank, argv in enumerate(argvs):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(len(argvs)),
               "LOCAL_WORLD_SIZE": str(len(argvs)), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": "1", "FASTIR_TEST_DIE": "" if die is None else str(die)}
        procs.append(subprocess.Popen([sys.executable, "-c", _RANK_SCRIPT, *argv], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return [(p.wait(timeout=timeout), *p.communicate()) for p in procs]


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_write_the_single_process_files(run_dir, tmp_path):
    _single(run_dir, tmp_path / "one", "--block-mb", "0.001")
    fastir_bin = shutil.which("fastir") or str(Path(sys.executable).parent / "fastir")
    out = tmp_path / "two"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
         fastir_bin, "score", str(run_dir), "--out", str(out / "scores"), "--trec", str(out / "trec"),
         "--per-query", "--trec-depth", "7", "--device", "cpu", "--block-mb", "0.001"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _same_files(tmp_path / "one", out)


@pytest.mark.slow
def test_ranks_seeing_different_run_dirs_fail_with_one_line(run_dir, tmp_path, make_run):
    other = make_run(tmp_path / "other", **_columns(1), dtype="float16")
    out = tmp_path / "scores"
    results = _launch([["score", str(run_dir), "--out", str(out), "--device", "cpu", "--timeout", "60"],
                       ["score", str(other), "--out", str(out), "--device", "cpu", "--timeout", "60"]])
    for code, _, err in results:
        assert code == 2 and err.count("\n") == 1 and "sees a different run dir than rank 0" in err, err
    assert not out.exists()


@pytest.mark.slow
def test_a_dead_rank_makes_the_other_fail_not_hang(run_dir, tmp_path):
    out = tmp_path / "scores"
    argv = ["score", str(run_dir), "--out", str(out), "--device", "cpu", "--timeout", "10"]
    (code0, _, err0), (code1, _, _) = _launch([argv, argv], die=1, timeout=120)
    assert code1 == 3
    assert code0 == 2 and err0.count("\n") == 1 and "another rank died or did not answer" in err0, err0
    assert not out.exists() and not list(tmp_path.glob(".scores*"))


def test_bad_options(run_dir, tmp_path, capsys):
    out = tmp_path / "scores"
    _error(capsys, main(["score", str(run_dir), "--timeout", "0", "--out", str(out)]), "--timeout", "positive")
    _error(capsys, main(["score", str(run_dir), "--shard", "0/2", "--merge-shards", "--out", str(out)]), "--shard")
    _error(capsys, main(["score", str(run_dir), "--shard", "0/2", "--trec", str(tmp_path / "t"),
                         "--out", str(tmp_path / "s.npz")]), "--trec")
    _error(capsys, main(["score", str(run_dir), "--device", "tpu", "--out", str(out)]), "--device")
    # the language-bias suite ranks whole pooled rows, which per-shard counts do not add up to
    _error(capsys, main(["score", str(run_dir), "--shard", "0/2", "--metrics", "map,same_lang@3",
                         "--out", str(tmp_path / "s.npz")]), "--metrics")
    assert not out.exists() and not (tmp_path / "s.npz").exists() and not (tmp_path / "t").exists()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["exact", "bf16"])
def test_two_ranks_sum_certified_counts_to_the_single_process_files(run_dir, tmp_path, precision):
    """Certified counts are exact per candidate range, so ranks add them (and the undecided counters)
    into the single process's files (bf16 where this machine runs it fast)."""
    from fastir.eval.precision import mkl_gemm

    if precision == "bf16" and not mkl_gemm()[0]:
        pytest.skip("no fast bf16 product here")
    args = ["--per-query", "--device", "cpu", "--block-mb", "0.001", "--precision", precision]
    assert main(["score", str(run_dir), "--out", str(tmp_path / "one" / "scores"), *args]) == 0
    results = _launch([["score", str(run_dir), "--out", str(tmp_path / "two" / "scores"), *args]] * 2)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    _same_files(tmp_path / "one", tmp_path / "two")
    summary = json.loads((tmp_path / "two" / "scores" / "summary.json").read_text())
    assert summary["precision"]["ran"] == precision and summary["precision"]["candidate_gold_pairs"] > 0
