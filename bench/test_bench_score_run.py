"""Ranked runs: ``fastir score-run`` vs pytrec_eval vs ranx on one TREC run file, whole process (issue 29, "Speed"),
and the peak memory of ``fastir score-run`` on runs of N and 10N lines ("streams runs in bounded memory").

Data (``FASTIR_BENCH_SCALE=1``): 10,000 queries x 1,000 documents each = 10^7 lines of a TREC run over 11
languages (ids ``xx:...``, so ``--doc-langs prefix::``), scores rounded to 2 decimals (many ties),
graded qrels of 20 judgements a query (half of them beyond the run's depth). Without
``FASTIR_BENCH_SCALE`` this suite runs at :data:`DEFAULT_SCALE` (1,000 x 1,000 = 10^6 lines), so a
plain run is quick. Written once per shape under ``$FASTIR_BENCH_CACHE`` (default ``~/.cache/fastir-bench``).

Group ``score-run-trec``, each a fresh Python process (interpreter start, imports, file read included):

* fastir: ``fastir score-run RUN --qrels Q --query-langs prefix:: --doc-langs prefix:: --ties trec_eval
  --metrics map,mrr,ndcg@10,recall@100`` — every X→Y cell (121) and X→all (11), per-query table
  and summary written. Target: >= 3x the faster peer.
* peer ``pytrec_eval``: the run and qrels parsed into dicts (as its README does), one
  ``RelevanceEvaluator`` over the pooled run only (map, recip_rank, ndcg_cut_10, recall_100).
* peer ``ranx``: ``Qrels.from_file`` / ``Run.from_file`` (TREC) and ``evaluate`` of the same four
  metrics over the pooled run only.

The peers compute one cell of the 132; fastir's pooled values equal pytrec_eval's (tests/eval/test_score_ranked.py).

Group ``score-run-rss`` (fastir only, ``compare=False``): the peak RSS (``os.wait4``'s ``ru_maxrss``)
of the same fastir command on 1,000 queries x 1,000 and x 10,000 lines (10^6 and 10^7 lines, at
any timed scale). Target: the peak at 10^7 within 15% of the peak at 10^6.

    FASTIR_BENCH_SCALE=1 pytest bench/test_bench_score_run.py --benchmark-enable --benchmark-only -s
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
QUERIES, DEPTH, DOCS_PER_LANG, JUDGED = 10_000, 1_000, 100_000, 20
GENERATOR = 2  # bump when the data changes: the cache key
GROUP = "score-run-trec"
RSS_GROUP = "score-run-rss"
DEFAULT_SCALE = 0.1  # without FASTIR_BENCH_SCALE: 1,000 queries x 1,000 (10^6 lines)
RSS_QUERIES = 1_000  # the memory runs: 1,000 queries x 1,000 and 10x as deep (10^6 and 10^7 lines)
_PEAKS: dict[int, dict] = {}
ROOT = Path(__file__).resolve().parents[1]

FASTIR = """
import sys
from fastir.cli import executable  # the `fastir` command itself: a process of its own
sys.argv = ["fastir", "score-run", sys.argv[1], "--qrels", sys.argv[2], "--query-langs", "prefix::", "--doc-langs",
            "prefix::", "--ties", "trec_eval", "--metrics", "map,mrr,ndcg@10,recall@100", "--per-query",
            "--out", sys.argv[3], "--overwrite", "--format", "json"]
sys.exit(executable())
"""
PYTREC = """
import sys, pytrec_eval
run, qrels = {}, {}
with open(sys.argv[1]) as f:
    for line in f:
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
with open(sys.argv[2]) as f:
    for line in f:
        q, _, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
ev = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recip_rank", "ndcg_cut.10", "recall.100"})
res = ev.evaluate(run)
print(sum(v["map"] for v in res.values()) / len(res))
"""
RANX = """
import sys
from ranx import Qrels, Run, evaluate
qrels = Qrels.from_file(sys.argv[2], kind="trec")
run = Run.from_file(sys.argv[1], kind="trec")
print(evaluate(qrels, run, ["map", "mrr", "ndcg@10", "recall@100"]))
"""


def make_files(scale: float, root: Path) -> tuple[Path, Path]:
    """The TREC run and qrels at ``scale`` (see the module docstring), written in blocks of queries."""
    return make_run(max(len(LANGS), round(QUERIES * scale)), max(20, round(DEPTH * min(1.0, scale * 10))), root)


def make_run(n_q: int, depth: int, root: Path) -> tuple[Path, Path]:
    """A TREC run of ``n_q`` queries x ``depth`` lines and its qrels under ``root`` (kept: the cache)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    run_file = root / f"run-{n_q}x{depth}-v{GENERATOR}.trec"
    qrels_file = root / f"qrels-{n_q}x{depth}-v{GENERATOR}.txt"
    if run_file.exists() and qrels_file.exists():
        return run_file, qrels_file
    rng = np.random.default_rng(GENERATOR)
    options = pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    tmp_run, tmp_qrels = run_file.with_suffix(".tmp"), qrels_file.with_suffix(".tmp")
    with pacsv.CSVWriter(tmp_run, pa.schema([(n, t) for n, t in zip(
            ("q", "q0", "d", "r", "s", "t"), (pa.string(), pa.string(), pa.string(), pa.int32(), pa.string(),
                                               pa.string()))]), write_options=options) as out:
        qrels = []
        step = max(1, 500_000 // depth)  # queries per block written
        for start in range(0, n_q, step):
            qs = np.arange(start, min(n_q, start + step))
            q_ids = np.array([f"{LANGS[q % len(LANGS)]}:q{q}" for q in qs])
            lang = rng.integers(0, len(LANGS), (len(qs), depth))
            doc = rng.integers(0, DOCS_PER_LANG, (len(qs), 1)) + rng.permutation(depth)  # distinct in a query
            score = np.sort(np.round(rng.random((len(qs), depth)) * 20, 2), axis=1)[:, ::-1]
            d_ids = np.char.add(np.char.add(np.array(LANGS)[lang], ":d"), doc.astype(str))
            out.write_table(pa.table({
                "q": np.repeat(q_ids, depth), "q0": np.full(len(qs) * depth, "Q0"), "d": d_ids.ravel(),
                "r": np.tile(np.arange(1, depth + 1, dtype=np.int32), len(qs)),
                "s": np.char.mod("%.2f", score.ravel()), "t": np.full(len(qs) * depth, "bench")}))
            for i, qid in enumerate(q_ids):
                seen = set()
                picked = list(d_ids[i, rng.choice(depth, JUDGED // 2, replace=False)])
                picked += [f"{LANGS[rng.integers(0, len(LANGS))]}:x{qs[i]}-{j}" for j in range(JUDGED // 2)]
                for d in picked:
                    if d not in seen:
                        seen.add(d)
                        qrels.append(f"{qid} 0 {d} {rng.integers(0, 3)}\n")
                qrels.append(f"{qid} 0 {picked[-1]}-rel 1\n")  # every query has a relevant document
    tmp_qrels.write_text("".join(qrels))
    tmp_run.rename(run_file)
    tmp_qrels.rename(qrels_file)
    return run_file, qrels_file


def cache_root() -> Path:
    root = Path(os.environ.get("FASTIR_BENCH_CACHE", Path.home() / ".cache" / "fastir-bench")) / "score-run"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="module")
def scale(bench_scale, bench_timing_disabled) -> float:
    """This suite's scale: ``FASTIR_BENCH_SCALE`` when set (1: the issue's 10^7 lines), else
    :data:`DEFAULT_SCALE` (10^6 lines: quick); tiny under ``--benchmark-disable``."""
    if bench_timing_disabled or "FASTIR_BENCH_SCALE" in os.environ:
        return bench_scale
    return DEFAULT_SCALE


@pytest.fixture(scope="module")
def files(scale):
    return make_files(scale, cache_root())


def process(script: str, *args) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", script, *map(str, args)], check=True, env=env, capture_output=True)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("who", ["fastir", "pytrec_eval", "ranx"])
def test_score_run_whole_process(benchmark, files, tmp_path, pinned_threads, who):
    run_file, qrels_file = files
    script = {"fastir": FASTIR, "pytrec_eval": PYTREC, "ranx": RANX}[who]
    if who == "fastir":
        benchmark.extra_info.update(role="fastir", target="3x the faster peer")
    else:
        benchmark.extra_info.update(role="peer", peer=who)
    benchmark.extra_info["lines"] = sum(1 for _ in open(run_file, "rb"))
    benchmark.pedantic(process, args=(script, run_file, qrels_file, tmp_path / "scores"), warmup_rounds=1, rounds=3)


def peak_rss(script: str, *args) -> dict:
    """Run ``script`` in a fresh process; its peak RSS (MiB, the child's ``ru_maxrss`` from ``os.wait4``)
    and wall seconds."""
    import tempfile
    import time

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        assert proc.returncode == 0, err.read().decode()[-2000:]
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.perf_counter() - t0, 1)}


@pytest.mark.benchmark(group=RSS_GROUP)
@pytest.mark.parametrize("factor", [1, 10])
def test_score_run_peak_rss(benchmark, scale, tmp_path, factor):
    """Peak RSS of a whole ``fastir score-run`` on runs of N and 10N lines (1,000 queries, 10x as deep):
    the run is read in blocks, so once it spans a few blocks the peak does not grow with its length.
    Target: the peak at 10N within 15% of the peak at N (checked when N spans more than 4 blocks:
    not on the tiny data of ``--benchmark-disable``)."""
    from fastir.runs.ranked import BLOCK_BYTES

    n_q = RSS_QUERIES if scale >= DEFAULT_SCALE else 200  # as make_files at the smoke scale
    depth = max(20, round(DEPTH * min(1.0, scale * 10))) * factor
    run_file, qrels_file = make_run(n_q, depth, cache_root())
    run_bytes = run_file.stat().st_size
    benchmark.extra_info.update(role="fastir", compare=False, lines=n_q * depth, run_mb=round(run_bytes / 2**20, 1),
                                block_mb=BLOCK_BYTES >> 20, target="peak RSS at 10N within 15% of the peak at N")
    result = benchmark.pedantic(lambda: peak_rss(FASTIR, run_file, qrels_file, tmp_path / "scores"), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(result)
    _PEAKS[factor] = {"lines": n_q * depth, "run_bytes": run_bytes, **result}
    print(_PEAKS[factor])
    if factor == 10 and 1 in _PEAKS and _PEAKS[1]["run_bytes"] > 4 * BLOCK_BYTES:
        small, large = _PEAKS[1]["peak_rss_mb"], _PEAKS[10]["peak_rss_mb"]
        assert large <= 1.15 * small, _PEAKS
