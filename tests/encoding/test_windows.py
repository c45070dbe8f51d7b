"""fastir.encoding.windows: ``fastir embed`` streams each side in windows; a large BEIR corpus is
embedded with bounded memory, windowed runs resume byte-identically."""

from __future__ import annotations

import json
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from fastir.data.dataset import Candidates
from fastir.encoding.embed import EmbedOptions, embed_dataset, work_dir_for
from fastir.encoding.windows import iter_windows

TABLES = ("queries.arrow", "candidates.arrow", "qrels.arrow")


def _tables(run_dir) -> dict[str, bytes]:
    return {name: (Path(run_dir) / name).read_bytes() for name in TABLES}


def test_windows_are_consecutive_and_cut_across_chunks():
    chunks = [Candidates([f"d{i}" for i in range(a, b)], ["en"] * (b - a), [f"t{i}" for i in range(a, b)],
                         contexts=[f"c{i}" for i in range(a, b)]) for a, b in ((0, 3), (3, 4), (4, 11))]
    wins = list(iter_windows("candidates", chunks, 4))
    assert [(w.index, w.start, len(w)) for w in wins] == [(0, 0, 4), (1, 4, 4), (2, 8, 3)]
    assert wins[1].ids == ["d4", "d5", "d6", "d7"] and wins[2].contexts == ["c8", "c9", "c10"]
    assert wins[0].texts == ["t0", "t1", "t2", "t3"]
    assert list(iter_windows("queries", [], 4)) == []
    with pytest.raises(ValueError):
        list(iter_windows("queries", chunks, 0))


class Recorder:
    """A deterministic per-text encoder that records the largest call it was given."""

    dim = 8
    model = "recorder"

    def __init__(self):
        self.largest = 0
        self.calls = 0

    def encode(self, texts):
        self.largest = max(self.largest, len(texts))
        self.calls += 1
        seeds = np.array([zlib.crc32(t.encode()) for t in texts], dtype=np.float64)
        return np.cos(np.outer(seeds, np.arange(1, self.dim + 1))).astype(np.float32)


def make_corpus(root: Path, docs: int) -> int:
    """A single-layout BEIR collection of ``docs`` passages of ~1.5 KB; returns the corpus's size in bytes."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    block = [" ".join(f"w{k}" for k in rng.integers(0, 60, 400)) for _ in range(50)]
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i in range(docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": f"t{i}", "text": block[i % 50],
                                 "lang": "en" if i % 3 else "de"}) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as fh:
        for q in range(20):
            fh.write(json.dumps({"_id": f"q{q}", "text": f"w{q} ?", "lang": "en" if q % 2 else "de"}) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{q}\td{q * 7}\t{1 + q % 3}\n" for q in range(20)))
    return (root / "corpus.jsonl").stat().st_size


def _traced_embed(opts: EmbedOptions) -> int:
    tracemalloc.start()
    try:
        embed_dataset(opts)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_corpus_is_embedded_with_bounded_memory(tmp_path):
    """Each encoder call sees at most one window, the traced peak stays far under the corpus's text
    and does not grow with it (12,000 vs 6,000 passages: only the ids, ~60 B a row, grow), and the
    windowed run equals a run that holds the whole corpus in one window."""
    window = 300
    make_corpus(tmp_path / "warm", 1000)  # first-use imports and caches are not the corpus's
    embed_dataset(EmbedOptions(dataset=str(tmp_path / "warm"), model=Recorder(), out=str(tmp_path / "rw"),
                               window=window))
    peaks, sizes = {}, {}
    for docs in (6_000, 12_000):
        root = tmp_path / f"c{docs}"
        sizes[docs] = make_corpus(root, docs)
        enc = Recorder()
        peaks[docs] = _traced_embed(EmbedOptions(dataset=str(root), model=enc, out=str(tmp_path / f"r{docs}"),
                                                 window=window))
        assert enc.largest <= window and enc.calls >= docs // window
    assert peaks[12_000] < sizes[12_000] / 8, (peaks, sizes)
    assert peaks[12_000] - peaks[6_000] < sizes[6_000] / 10, (peaks, sizes)
    whole = tmp_path / "whole"
    embed_dataset(EmbedOptions(dataset=str(tmp_path / "c6000"), model=Recorder(), out=str(whole), window=10**6))
    assert _tables(whole) == _tables(tmp_path / "r6000")


def test_windowed_hf_run_resumes_byte_identically(embed_tiny_dataset, embed_tiny_bert, tmp_path):
    """Windows of 7 rows: interrupted after four batches, resumed, equal to an uninterrupted run."""
    base = dict(dataset=embed_tiny_dataset, model=embed_tiny_bert, batch_tokens=120, device="cpu", window=7)
    full = embed_dataset(EmbedOptions(out=str(tmp_path / "full"), **base))
    total = full.meta["num_queries"] + full.meta["num_candidates"]

    class Interrupt(Exception):
        pass

    seen = []

    def stop(side, index):
        seen.append((side, index))
        if len(seen) == 4:
            raise Interrupt

    out = tmp_path / "part"
    with pytest.raises(Interrupt):
        embed_dataset(EmbedOptions(out=str(out), **base), on_batch=stop)
    assert work_dir_for(out).is_dir() and not out.exists()
    assert seen == [("queries", i) for i in range(4)]
    res = embed_dataset(EmbedOptions(out=str(out), resume=True, **base))
    assert 0 < res.encoded < total
    assert _tables(out) == _tables(tmp_path / "full") and not work_dir_for(out).exists()


def test_resume_with_another_window_is_refused(embed_tiny_dataset, embed_tiny_bert, tmp_path):
    from fastir.core.errors import InputError

    base = dict(dataset=embed_tiny_dataset, model=embed_tiny_bert, batch_tokens=120, device="cpu")

    def stop(side, index):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(EmbedOptions(out=str(out), window=7, **base), on_batch=stop)
    with pytest.raises(InputError, match="window: the interrupted run used 7"):
        embed_dataset(EmbedOptions(out=str(out), window=9, resume=True, **base))
    with pytest.raises(InputError, match="window: must be a positive number of rows"):
        embed_dataset(EmbedOptions(out=str(tmp_path / "other"), window=0, **base))
    assert not (tmp_path / "other").exists()
