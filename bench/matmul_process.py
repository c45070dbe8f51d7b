"""The floor of ``fastir score`` as a whole process: load a run dir and do the fp32 product, nothing else.

    python bench/matmul_process.py RUN

Imports numpy and pyarrow only, memory-maps the run's three Arrow tables as fastir does
(``pyarrow.memory_map`` + ``ipc.open_file().read_all()``), takes the two embedding columns as
zero-copy numpy views, upcasts them to float32 and computes Q·Cᵀ in one numpy matmul, then exits.
No validation, no metrics, no outputs: the peer of the ``score-process`` group of
``bench/test_bench_score.py`` (target: the whole ``fastir score --pairs all`` within 1.25x of it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa


def _table(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def _embeddings(table: pa.Table, dim: int, dtype: str) -> np.ndarray:
    values = table.column("embedding").chunk(0).values
    np_dtype = np.dtype(dtype)
    return np.frombuffer(values.buffers()[1], dtype=np_dtype, count=len(values),
                         offset=values.offset * np_dtype.itemsize).reshape(-1, dim)


def main(run: str) -> tuple[int, int]:
    run = Path(run)
    meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    queries, candidates, _qrels = (_table(run / name) for name in ("queries.arrow", "candidates.arrow", "qrels.arrow"))
    q = _embeddings(queries, meta["dim"], meta["dtype"]).astype(np.float32)
    c = _embeddings(candidates, meta["dim"], meta["dtype"]).astype(np.float32)
    return (q @ c.T).shape


if __name__ == "__main__":
    print(main(sys.argv[1]))
