"""The ``score-pool-matmul`` pair alternated in one process, round by round, with fastir's own products.

    python bench/pool_alternate.py POOL_DIR [ROUNDS] [SCALE]

Writes the pool of ``bench/test_bench_score_pool.py`` to POOL_DIR when it is missing (SCALE, default 1:
1,309 queries x 1,301,400 candidates, 1.9 GB), reads its candidates into float32 once for the peer,
then per round: the peer's blocked fp32 matmuls, then ``score_run(POOL_DIR)`` (read, validate, stream,
count, every cell). One pytest-benchmark round per side is too few on a VM whose speed drifts by
20 % from one minute to the next, so each round also prints the time fastir spent in its own
products (the same shapes as the peer's): (score_run) / (its own products) is the ratio without
the drift between the two sides' clocks.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# As the CLI and bench/conftest.py: OpenBLAS threads sleep after a product instead of spinning on the
# cores the Numba gathers and counts use next. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.test_bench_score_pool import DIM, blocked_matmul, write_pool  # noqa: E402
from fastir.eval.score import score_run  # noqa: E402
from fastir.eval.stream import NumpyEngine, block_plan  # noqa: E402
from fastir.runs.rundir import read_run  # noqa: E402


def timed_products(engine_cls) -> list[float]:
    """Wrap ``engine_cls.scores`` (query gather + product) to add its wall time to the returned cell."""
    spent = [0.0]
    scores = engine_cls.scores

    def timed(self, *args):
        t = time.perf_counter()
        out = scores(self, *args)
        spent[0] += time.perf_counter() - t
        return out

    engine_cls.scores = timed
    return spent


def main(pool: Path, rounds: int, scale: float) -> None:
    if not pool.exists():
        write_pool(pool, scale)
    run = read_run(pool)
    q = np.asarray(run.queries.embeddings, dtype=np.float32)
    c = np.concatenate([np.asarray(chunk, dtype=np.float32) for chunk in run.candidates.chunks])
    cols = block_plan(len(q), len(c), DIM, 256).cols
    out = np.empty((len(q), cols), np.float32)
    del run
    score_run(pool)  # warm: Numba kernels loaded, the run's pages in the page cache
    spent = timed_products(NumpyEngine)
    print(f"{len(q)} queries x {len(c)} candidates, d = {DIM}, column blocks of {cols}; load {os.getloadavg()[0]:.2f}")
    for r in range(rounds):
        t = time.perf_counter()
        blocked_matmul(q, c, cols, out)
        peer = time.perf_counter() - t
        spent[0] = 0.0
        t = time.perf_counter()
        score_run(pool)
        fastir = time.perf_counter() - t
        print(f"round {r}: peer {peer:.2f} s, score_run {fastir:.2f} s ({fastir / peer:.3f} x); "
              f"its products {spent[0]:.2f} s, score_run / its products {fastir / spent[0]:.3f} x; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3,
         float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
