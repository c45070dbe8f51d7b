"""IO: reading and writing a run dir (fastir.runs.rundir) against the usual ways of storing embeddings.

The same synthetic run (XQuAD-R shape: 13,090 queries x 13,014 candidates x 768 dims, float16,
11 languages, 11 relevant candidates per query, times ``bench_scale``) is stored four ways:

* fastir run dir: Arrow IPC, memory-mapped; ``read_run`` also validates the whole contract
  (schemas, unique ids, qrels ids, no NaN/inf) — the peers below validate nothing.
* ``numpy.save`` .npy per side + JSON for ids/langs/qrels (the common research-code layout).
* ``pyarrow.parquet`` (one Parquet file per table, default compression).
* ``pandas`` ``read_parquet`` / ``to_parquet`` of the same tables.

Every reader returns the same thing — ids, langs, xling ids, the (N, D) embedding matrices and
the qrels lists — and the test checks that it equals what was written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.runs.rundir import candidates_table, qrels_table, queries_table, read_run, write_run

XQUAD_R_QUERIES, XQUAD_R_CANDIDATES, DIM = 13_090, 13_014, 768
LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
RELEVANT_PER_QUERY = 11


def rounds(scale: float) -> int:
    # Disk writes are noisy on a shared machine: more rounds give a steadier min at small scale.
    return 7 if scale <= 2 else 3


def synthetic_run(scale: float, seed: int = 0) -> dict:
    """A run's columns at ``scale`` x XQuAD-R size, generated from ``seed`` (unit vectors, float16)."""
    nq = max(len(LANGS), round(XQUAD_R_QUERIES * scale))
    nc = max(RELEVANT_PER_QUERY, round(XQUAD_R_CANDIDATES * scale))
    rng = np.random.default_rng(seed)

    def unit_fp16(n: int) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float16)
        for start in range(0, n, 8192):  # in blocks: the fp32 draw of the 10x pool would be 400 MB
            block = rng.standard_normal((min(8192, n - start), DIM), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start : start + len(block)] = block
        return out

    cand_of = (np.arange(nq)[:, None] * 7 + np.arange(RELEVANT_PER_QUERY)[None, :] * (nc // RELEVANT_PER_QUERY)) % nc
    return {
        "query_ids": [f"q{i:07d}" for i in range(nq)],
        "query_langs": [LANGS[i % len(LANGS)] for i in range(nq)],
        "query_groups": [f"x{i // len(LANGS):06d}" for i in range(nq)],
        "query_embeddings": unit_fp16(nq),
        "candidate_ids": [f"c{i:07d}" for i in range(nc)],
        "candidate_langs": [LANGS[i % len(LANGS)] for i in range(nc)],
        "candidate_embeddings": unit_fp16(nc),
        "qrels_query_ids": [f"q{i:07d}" for i in np.repeat(np.arange(nq), RELEVANT_PER_QUERY)],
        "qrels_candidate_ids": [f"c{j:07d}" for j in cand_of.reshape(-1)],
        "qrels_relevance": [1 + k % 2 for k in range(nq * RELEVANT_PER_QUERY)],  # graded: 1 and 2
    }


META = {"dataset": "synthetic", "model": "synthetic", "normalized": True, "dtype": "float16"}


# ------------------------------------------------------------------------------ writers (peers too)


def write_fastir(cols: dict, out: Path) -> None:
    write_run(out, META, **cols, overwrite=True)


def write_npy(cols: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "queries.npy", cols["query_embeddings"])
    np.save(out / "candidates.npy", cols["candidate_embeddings"])
    text = {k: v for k, v in cols.items() if not k.endswith("_embeddings")}
    (out / "meta.json").write_text(json.dumps(text), encoding="utf-8")


def _tables(cols: dict) -> dict[str, pa.Table]:
    return {
        "queries": queries_table(cols["query_ids"], cols["query_langs"], cols["query_groups"],
                                 cols["query_embeddings"], "float16"),
        "candidates": candidates_table(cols["candidate_ids"], cols["candidate_langs"],
                                       cols["candidate_embeddings"], "float16"),
        "qrels": qrels_table(cols["qrels_query_ids"], cols["qrels_candidate_ids"], cols["qrels_relevance"]),
    }


def write_parquet(cols: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, table in _tables(cols).items():
        pq.write_table(table, out / f"{name}.parquet")


def write_pandas(cols: dict, out: Path) -> None:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": cols["query_ids"], "lang": cols["query_langs"], "xling_id": cols["query_groups"],
                  "embedding": list(cols["query_embeddings"])}).to_parquet(out / "queries.parquet")
    pd.DataFrame({"id": cols["candidate_ids"], "lang": cols["candidate_langs"],
                  "embedding": list(cols["candidate_embeddings"])}).to_parquet(out / "candidates.parquet")
    pd.DataFrame({"query_id": cols["qrels_query_ids"], "candidate_id": cols["qrels_candidate_ids"],
                  "relevance": cols["qrels_relevance"]}).to_parquet(out / "qrels.parquet")


# ------------------------------------------------------------------------------ readers


def read_fastir(path: Path) -> dict:
    run = read_run(path)
    return {
        "query_ids": run.queries.ids, "query_langs": run.queries.langs, "query_groups": run.queries.xling_ids,
        "query_embeddings": run.queries.embeddings,
        "candidate_ids": run.candidates.ids, "candidate_langs": run.candidates.langs,
        "candidate_embeddings": run.candidates.embeddings,
        "qrels_query_ids": run.qrels_query_id, "qrels_candidate_ids": run.qrels_candidate_id,
        "qrels_relevance": run.qrels_relevance,
    }


def read_npy(path: Path) -> dict:
    cols = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    cols["query_embeddings"] = np.load(path / "queries.npy")
    cols["candidate_embeddings"] = np.load(path / "candidates.npy")
    return cols


def _embeddings(column: pa.ChunkedArray) -> np.ndarray:
    flat = pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
    return flat.to_numpy(zero_copy_only=False).reshape(len(column), -1)


def read_parquet(path: Path) -> dict:
    q = pq.read_table(path / "queries.parquet")
    c = pq.read_table(path / "candidates.parquet")
    r = pq.read_table(path / "qrels.parquet")
    return {
        "query_ids": q.column("id").to_pylist(), "query_langs": q.column("lang").to_pylist(),
        "query_groups": q.column("xling_id").to_pylist(), "query_embeddings": _embeddings(q.column("embedding")),
        "candidate_ids": c.column("id").to_pylist(), "candidate_langs": c.column("lang").to_pylist(),
        "candidate_embeddings": _embeddings(c.column("embedding")),
        "qrels_query_ids": r.column("query_id").to_pylist(), "qrels_candidate_ids": r.column("candidate_id").to_pylist(),
        "qrels_relevance": r.column("relevance").to_pylist(),
    }


def read_pandas(path: Path) -> dict:
    import pandas as pd

    q = pd.read_parquet(path / "queries.parquet")
    c = pd.read_parquet(path / "candidates.parquet")
    r = pd.read_parquet(path / "qrels.parquet")
    return {
        "query_ids": q["id"].tolist(), "query_langs": q["lang"].tolist(), "query_groups": q["xling_id"].tolist(),
        "query_embeddings": np.stack(q["embedding"].to_numpy()),
        "candidate_ids": c["id"].tolist(), "candidate_langs": c["lang"].tolist(),
        "candidate_embeddings": np.stack(c["embedding"].to_numpy()),
        "qrels_query_ids": r["query_id"].tolist(), "qrels_candidate_ids": r["candidate_id"].tolist(),
        "qrels_relevance": r["relevance"].tolist(),
    }


FORMATS = {
    # name: (writer, reader, peer label or None for fastir)
    "fastir": (write_fastir, read_fastir, None),
    "npy": (write_npy, read_npy, "numpy.save/.load + JSON"),
    "parquet": (write_parquet, read_parquet, "pyarrow.parquet"),
    "pandas": (write_pandas, read_pandas, "pandas parquet"),
}
# Goals, not measurements: read_run validates the whole contract, so within 2x of a raw np.load.
READ_TARGET = ">= 0.5x numpy; >= 2x pyarrow.parquet; >= 2x pandas"
WRITE_TARGET = ">= 0.5x numpy; >= 2x pyarrow.parquet; >= 2x pandas"


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if key.endswith("_embeddings"):
            assert got[key].shape == value.shape and got[key].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            assert list(got[key]) == list(value), key


@pytest.fixture(scope="module")
def columns(bench_scale) -> dict:
    return synthetic_run(bench_scale)


@pytest.fixture(scope="module")
def stored(columns, tmp_path_factory) -> dict[str, Path]:
    """The synthetic run written once in each format (reading benches share these)."""
    root = tmp_path_factory.mktemp("io-stored")
    paths = {}
    for name, (writer, _, _) in FORMATS.items():
        writer(columns, root / name)
        paths[name] = root / name
    return paths


def _label(benchmark, fmt: str, target: str) -> None:
    peer = FORMATS[fmt][2]
    if peer is None:
        benchmark.extra_info.update(role="fastir", target=target)
    else:
        benchmark.extra_info.update(role="peer", peer=peer)


@pytest.mark.benchmark(group="io-read-run")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_read(benchmark, pinned_threads, bench_scale, stored, columns, fmt):
    _label(benchmark, fmt, READ_TARGET)
    reader = FORMATS[fmt][1]
    got = benchmark.pedantic(reader, args=(stored[fmt],), warmup_rounds=1, rounds=rounds(bench_scale))
    assert_same(got, columns)


@pytest.mark.benchmark(group="io-write-run")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_write(benchmark, pinned_threads, bench_scale, columns, tmp_path, fmt):
    _label(benchmark, fmt, WRITE_TARGET)
    writer, reader, _ = FORMATS[fmt]
    out = tmp_path / "out"

    def fresh():  # untimed: every round writes into an empty place, like a first write
        shutil.rmtree(out, ignore_errors=True)
        return (columns, out), {}

    benchmark.pedantic(writer, setup=fresh, warmup_rounds=1, rounds=rounds(bench_scale))
    assert_same(reader(out), columns)
