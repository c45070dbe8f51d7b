"""The graded suite's three main sides interleaved in one process, round by round.

    python bench/graded_interleaved.py [ROUNDS]

fastir's ``score_run`` (the default precision), the fp32 floor and faiss top-100 + pytrec_eval, the
functions of ``bench/test_bench_graded.py`` on its cached scale-1 run dir (generated there first if
missing), each warmed up once; then ROUNDS (default 2) rounds of the three in turn, each printed
with the load average. Interleaving keeps a drift of the machine's speed out of the ratios, which
the suite's one round per side (each taken at its own moment) cannot.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")  # as the CLI sets it: idle BLAS threads sleep

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

import test_bench_graded as graded  # noqa: E402
from fastir.eval.score import score_run  # noqa: E402
from fastir.runs.rundir import read_run  # noqa: E402


def main(rounds: int = 2) -> None:
    path = graded.cache_dir() / f"graded-s1-g{graded.GENERATOR}"  # the suite's scale-1 run dir
    if not (path / "run.json").is_file():
        graded.write_run(path, **graded.graded_like(1.0), overwrite=True)
    run = read_run(path)
    q32 = np.asarray(run.queries.embeddings, dtype=np.float32)
    c32 = np.asarray(run.candidates.embeddings, dtype=np.float32)
    peers = graded.Peers(read_run(path))
    score_run(path, pairs="all", metrics=graded.METRICS)
    graded.blocked_matmul(q32, c32)
    for r in range(rounds):
        t = time.perf_counter()
        res = score_run(path, pairs="all", metrics=graded.METRICS)
        a = time.perf_counter() - t
        t = time.perf_counter()
        graded.blocked_matmul(q32, c32)
        b = time.perf_counter() - t
        t = time.perf_counter()
        graded.faiss_pytrec_eval(peers)
        c = time.perf_counter() - t
        print(f"round {r}: fastir {a:.2f} s (ran {(res.precision or {}).get('ran')}), floor {b:.2f} s, "
              f"faiss + pytrec_eval {c:.2f} s: fastir {c / a:.2f}x faster than the peer, {a / b:.2f}x the floor; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
