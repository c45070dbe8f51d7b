"""Sampler speed and memory: fastir's BatchSampler vs a plain-Python shuffle loop.

* ``sampler-throughput``: hybrid batches (alpha 0.5), texts included, pairs/s on one core.
  Peer: the usual script: the whole table loaded into Python dicts, ``random.shuffle`` per
  language / per epoch, languages drawn with ``random``.
* ``sampler-rss``: a fresh process opens the table, builds the index and draws 20,000 hybrid
  batches of 32 with texts (the timed unit); its anonymous RSS is reported at 100k, 1M and 10M
  rows (the peer: 100k and 1M; it holds every text in Python objects). Memory-mapped file pages
  (reclaimable page cache) are reported apart. Target: anonymous RSS beyond the index within
  300 MB, flat in the row count.

Data is generated from a seed into a temporary directory (9 languages, ~10% of translations
missing), in a child process. ``FASTIR_BENCH_SCALE`` scales the throughput table (1.0 = 1M
rows); the RSS sizes are fixed, divided by 100 under ``--benchmark-disable`` (CI).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fastir.sampling.sampler import BatchSampler

LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "zh")
BATCHES_PER_ROUND = 2000
FILLER = (
    " It was built in the late nineteenth century and has been rebuilt twice since then, "
    "most recently after the flood that destroyed the old harbour district."
)


def generate_table(path: str, n_rows: int, seed: int = 0, chunk_ids: int = 1 << 17) -> int:
    """Write an Arrow IPC parallel QA table of about ``n_rows`` rows in bounded memory."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, int(np.ceil(n_rows / (len(LANGS) * 0.9))))
    schema = pa.schema([(n, pa.string()) for n in ("xling_id", "lang", "query", "passage")])
    written = 0
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for lo in range(0, n_ids, chunk_ids):
            ids = np.arange(lo, min(n_ids, lo + chunk_ids))
            keep = rng.random((len(ids), len(LANGS))) < 0.9
            keep[:, 3] = True  # every question has its English original
            pid, lid = np.nonzero(keep)
            order = rng.permutation(len(pid))  # rows in no particular order
            pid, lid = ids[pid[order]], lid[order]
            xid = pc.cast(pa.array(pid), pa.string())
            lang = pa.array(np.array(LANGS, dtype=object)[lid], pa.string())
            xling = pc.binary_join_element_wise("q", xid, "")
            query = pc.binary_join_element_wise("Which year was landmark ", xid, " in ", lang, " opened to the public?", "")
            passage = pc.binary_join_element_wise("Landmark ", xid, " (", lang, ") opened in 1875.", FILLER, "")
            writer.write_batch(pa.record_batch([xling, lang, query, passage], schema=schema))
            written += len(pid)
    return written


class PythonShuffleLoop:
    """The plain-Python peer: texts in dicts, shuffled lists and cursors, ``random`` draws."""

    def __init__(self, path: str, batch_size: int, alpha: float, seed: int):
        table = pa.ipc.open_file(pa.memory_map(path)).read_all()
        cols = [table.column(n).to_pylist() for n in ("xling_id", "lang", "query", "passage")]
        self.data: dict[str, dict[str, tuple[str, str]]] = {}
        for x, lang, q, p in zip(*cols):
            self.data.setdefault(x, {})[lang] = (q, p)
        self.by_lang = {lang: [x for x, d in self.data.items() if lang in d] for lang in LANGS}
        self.cross = [x for x, d in self.data.items() if len(d) >= 2]
        self.rng = random.Random(seed)
        self.batch_size, self.alpha = batch_size, alpha
        self.cursor = {}

    def _next_ids(self, name, pool):
        pos = self.cursor.get(name, len(pool))
        if pos + self.batch_size > len(pool):
            self.rng.shuffle(pool)
            pos = 0
        self.cursor[name] = pos + self.batch_size
        return pool[pos : pos + self.batch_size]

    def next_batch(self) -> dict:
        if self.rng.random() < self.alpha:
            lang = self.rng.choice(LANGS)
            ids = self._next_ids(lang, self.by_lang[lang])
            qs = ps = [lang] * len(ids)
            kind = "mono"
        else:
            ids = self._next_ids("cross", self.cross)
            qs, ps = zip(*(self.rng.sample(sorted(self.data[x]), 2) for x in ids))
            kind = "cross"
        return {
            "kind": kind,
            "xling_ids": list(ids),
            "queries": [self.data[x][q][0] for x, q in zip(ids, qs)],
            "passages": [self.data[x][p][1] for x, p in zip(ids, ps)],
            "query_langs": list(qs),
            "passage_langs": list(ps),
        }


@pytest.fixture(scope="module")
def table_path(tmp_path_factory, bench_scale):
    path = str(tmp_path_factory.mktemp("sampler") / "train.arrow")
    generate_table(path, max(5000, int(1_000_000 * bench_scale)))
    return path


def _check(batches, batch_size):
    mono = 0
    for b in batches:
        ids, q, p = b["xling_ids"], b["query_langs"], b["passage_langs"]
        assert len(ids) == batch_size and len(set(ids)) == len(ids)
        if b["kind"] == "mono":
            assert len(set(q)) == 1 and list(q) == list(p)
            mono += 1
        else:
            assert all(a != c for a, c in zip(q, p))
        for x, lang, text in zip(ids, q, b["queries"]):
            assert text.startswith(f"Which year was landmark {x[1:]} in {lang} ")
        for x, lang, text in zip(ids, p, b["passages"]):
            assert text.startswith(f"Landmark {x[1:]} ({lang})")
    return mono / len(batches)


def _record_rate(benchmark, pairs):
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["pairs_per_s"] = round(pairs / stats.stats.mean)


@pytest.mark.parametrize("batch_size", [32, 256])
@pytest.mark.benchmark(group="sampler-throughput")
def test_throughput_fastir(benchmark, table_path, batch_size, pinned_threads):
    sampler = BatchSampler(table_path, strategy="hybrid", alpha=0.5, batch_size=batch_size, seed=0)
    it = iter(sampler)
    n = BATCHES_PER_ROUND * 32 // batch_size

    def run():
        return [next(it) for _ in range(n)]

    benchmark.extra_info.update(role="fastir", target=">= 200k pairs/s (texts included) on one core")
    batches = benchmark.pedantic(run, warmup_rounds=1, rounds=5)
    _record_rate(benchmark, n * batch_size)
    share = _check([vars(b) for b in batches], batch_size)
    assert 0.5 - 0.2 < share < 0.5 + 0.2


@pytest.mark.parametrize("batch_size", [32, 256])
@pytest.mark.benchmark(group="sampler-throughput")
def test_throughput_python_shuffle_loop(benchmark, table_path, batch_size, pinned_threads):
    peer = PythonShuffleLoop(table_path, batch_size=batch_size, alpha=0.5, seed=0)
    n = BATCHES_PER_ROUND * 32 // batch_size

    def run():
        return [peer.next_batch() for _ in range(n)]

    benchmark.extra_info.update(role="peer", peer="plain Python dict + random.shuffle loop")
    batches = benchmark.pedantic(run, warmup_rounds=1, rounds=5)
    _record_rate(benchmark, n * batch_size)
    share = _check(batches, batch_size)  # the same guarantees as fastir's batches
    assert 0.5 - 0.2 < share < 0.5 + 0.2


# --- memory ------------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    def status():
        out = {}
        for line in open("/proc/self/status"):
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
        return out
    path, kind, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import numpy, pyarrow, pyarrow.compute
    from fastir.sampling.sampler import BatchSampler
    sys.path.insert(0, sys.argv[4])
    from test_bench_sampler import PythonShuffleLoop
    base = status()
    t0 = time.perf_counter()
    if kind == "fastir":
        s = BatchSampler(path, strategy="hybrid", alpha=0.5, batch_size=32, seed=0)
        step = lambda: next(s)
    else:
        s = PythonShuffleLoop(path, batch_size=32, alpha=0.5, seed=0)
        step = s.next_batch
    built = status()
    t1 = time.perf_counter()
    for _ in range(batches):
        step()
    t2 = time.perf_counter()
    done = status()
    index = s.memory_bytes() if kind == "fastir" else 0  # the peer has no integer index
    print(json.dumps({"base": base, "built": built, "done": done, "index_bytes": index,
                      "build_s": t1 - t0, "iterate_s": t2 - t1}))
    """
)


def _measure(path: str, kind: str, batches: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, path, kind, str(batches), os.path.dirname(__file__)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


RSS_ROWS = (100_000, 1_000_000, 10_000_000)
RSS_BATCHES = 20_000


@pytest.fixture(scope="module")
def generated(tmp_path_factory, bench_timing_disabled):
    """rows -> path of a generated table (in a child process: the parent never holds the data)."""
    smoke = bench_timing_disabled
    folder = tmp_path_factory.mktemp("rss")
    paths: dict[int, str] = {}

    def get(rows: int) -> tuple[str, int]:
        n = max(2_000, rows // 100) if smoke else rows
        if n not in paths:
            path = str(folder / f"t{n}.arrow")
            code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                    f"from test_bench_sampler import generate_table; generate_table({path!r}, {n})")
            subprocess.run([sys.executable, "-c", code], check=True)
            paths[n] = path
        return paths[n], n

    yield get
    for path in paths.values():
        if os.path.exists(path):
            os.unlink(path)


def _rss_info(r: dict, batches: int) -> dict:
    mb = 1 << 20
    return {
        "index_mb": round(r["index_bytes"] / mb, 1),
        "anon_mb": round((r["done"]["RssAnon"] - r["base"]["RssAnon"]) / mb, 1),
        "anon_beyond_index_mb": round((r["done"]["RssAnon"] - r["base"]["RssAnon"] - r["index_bytes"]) / mb, 1),
        "anon_growth_while_iterating_mb": round((r["done"]["RssAnon"] - r["built"]["RssAnon"]) / mb, 1),
        "peak_rss_mb": round(r["done"]["VmHWM"] / mb, 1),
        "mapped_file_mb": round(r["done"]["RssFile"] / mb, 1),
        "build_s": round(r["build_s"], 2),
        "pairs_per_s": round(batches * 32 / r["iterate_s"]),
    }


@pytest.mark.parametrize("rows", RSS_ROWS)
@pytest.mark.benchmark(group="sampler-rss")
def test_rss_fastir(benchmark, generated, rows, request):
    """A fresh process: open + index + RSS_BATCHES hybrid batches of 32 with texts."""
    path, n = generated(rows)
    batches = RSS_BATCHES if n == rows else 300
    benchmark.extra_info.update(role="fastir", rows=n,
                                target="anonymous RSS beyond the index within 300 MB, flat from 100k to 10M rows")
    result = benchmark.pedantic(lambda: _measure(path, "fastir", batches), rounds=1, iterations=1)
    info = _rss_info(result, batches)
    benchmark.extra_info.update(info)
    print(json.dumps({"rows": n, **info}))
    assert info["anon_beyond_index_mb"] < 300, info
    if rows == RSS_ROWS[-1] and n == rows:
        os.unlink(path)  # 2.7 GB: no peer runs at this size


@pytest.mark.parametrize("rows", RSS_ROWS[:2])  # the peer holds every text in Python objects
@pytest.mark.benchmark(group="sampler-rss")
def test_rss_python_shuffle_loop(benchmark, generated, rows):
    path, n = generated(rows)
    batches = RSS_BATCHES if n == rows else 300
    benchmark.extra_info.update(role="peer", peer="plain Python dict + random.shuffle loop", rows=n)
    result = benchmark.pedantic(lambda: _measure(path, "peer", batches), rounds=1, iterations=1)
    info = _rss_info(result, batches)
    benchmark.extra_info.update(info)
    print(json.dumps({"rows": n, **info}))
