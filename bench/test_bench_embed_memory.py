"""Peak RSS of a whole ``fastir embed`` process on a generated BEIR corpus, at two corpus sizes.

``fastir embed`` streams the corpus in windows of 65,536 passages (fastir/encoding/windows.py), so
its peak memory should not depend on the corpus size once the corpus is larger than one window.
Workload: a single-directory BEIR collection of N and 2N passages (N = ``70,000 * bench_scale``; 60
to 140 words, ~0.5 KB each, two languages, 200 judged queries), encoded by a tiny local BERT (hidden
32, 2 layers, inputs truncated to 128 tokens, ``--batch-tokens 32768``: the encoder is not what is
measured). Each size runs
``fastir embed --dataset DIR --model TINY --out RUN`` in a fresh process; its peak RSS is the
child's ``ru_maxrss`` (``os.wait4``).

Group ``embed-rss`` (two fastir benchmarks, no peer, ``compare=False``: a memory measurement).
Target: peak RSS at 2N within 10% of the peak at N. Under ``--benchmark-disable`` (CI) N is 200,
both sizes fit in one window and only the run's row counts are checked.

    FASTIR_BENCH_SCALE=1 pytest bench/test_bench_embed_memory.py --benchmark-enable --benchmark-only -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastir.encoding.windows import WINDOW

BASE_PASSAGES = 70_000
QUERIES = 200
# CI (--benchmark-disable) checks the row counts only: one and two batches of passages are enough.
SMOKE_PASSAGES = 200
WORDS = 500
GROUP = "embed-rss"
# 256 texts of 128 tokens per batch: few part files (each is an atomic write), the encoder stays tiny.
BATCH_TOKENS = 32768
_PEAKS: dict[str, dict] = {}


def write_corpus(root: Path, passages: int, seed: int = 0) -> int:
    """A BEIR directory of ``passages`` passages over w0..w499, written line by line; returns its bytes."""
    rng = np.random.default_rng(seed)
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for start in range(0, passages, 10_000):
            n = min(10_000, passages - start)
            lengths = rng.integers(60, 141, n)
            words = rng.integers(0, WORDS, int(lengths.sum()))
            ends = np.cumsum(lengths)
            for i in range(n):
                text = " ".join(f"w{k}" for k in words[ends[i] - lengths[i]:ends[i]])
                fh.write(json.dumps({"_id": f"d{start + i}", "title": f"w{i % WORDS}", "text": text,
                                     "lang": "en" if (start + i) % 2 else "de"}) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as fh:
        for q in range(QUERIES):
            fh.write(json.dumps({"_id": f"q{q}", "text": f"w{q % WORDS} w{(7 * q) % WORDS} ?",
                                 "lang": "en" if q % 2 else "de"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{q}\td{(q * 997) % passages}\t{1 + q % 2}\n" for q in range(QUERIES)), encoding="utf-8")
    return (root / "corpus.jsonl").stat().st_size


def tiny_bert(root: Path) -> str:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", *[f"w{k}" for k in range(WORDS)]]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizer(vocab=str(root / "vocab.txt"), do_lower_case=False)  # vocab=, not vocab_file=
    assert tok.unk_token_id not in tok("w1 w499 ?")["input_ids"]
    tok.model_max_length = 128
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).eval().save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    return str(root / "model")


def embed_peak_rss(dataset: Path, model: str, out: Path) -> dict:
    """Run ``fastir embed`` in a fresh process; its peak RSS (MiB) and wall seconds."""
    import time

    fastir = Path(sys.executable).parent / "fastir"
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(fastir), "embed", "--dataset", str(dataset), "--model", model, "--out", str(out),
                             "--device", "cpu", "--batch-tokens", str(BATCH_TOKENS), "--no-progress", "--overwrite"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode()
    proc.stdout.close(), proc.stderr.close()
    assert proc.returncode == 0, stderr[-2000:]
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.perf_counter() - t0, 1)}


@pytest.fixture(scope="module")
def embed_setup(tmp_path_factory, bench_scale, bench_timing_disabled):
    root = tmp_path_factory.mktemp("embed-rss")
    n = SMOKE_PASSAGES if bench_timing_disabled else max(1_000, round(BASE_PASSAGES * bench_scale))
    return root, n, tiny_bert(root / "bert")


@pytest.mark.parametrize("factor", [1, 2])
@pytest.mark.benchmark(group=GROUP)
def test_embed_peak_rss(benchmark, embed_setup, factor, bench_timing_disabled):
    from fastir.runs.rundir import read_run_json

    root, n, model = embed_setup
    passages = n * factor
    corpus = root / f"corpus-{passages}"
    corpus_bytes = write_corpus(corpus, passages)
    benchmark.extra_info.update(role="fastir", compare=False, passages=passages,
                                corpus_mb=round(corpus_bytes / 2**20, 1), window=WINDOW,
                                target="peak RSS at 2N within 10% of the peak at N")
    result = benchmark.pedantic(lambda: embed_peak_rss(corpus, model, root / f"run-{passages}"), rounds=1,
                                iterations=1)
    benchmark.extra_info.update(result)
    _PEAKS[f"x{factor}"] = {"passages": passages, **result}
    print(json.dumps({"passages": passages, "corpus_mb": round(corpus_bytes / 2**20, 1), **result}))
    meta = read_run_json(root / f"run-{passages}")
    assert (meta["num_candidates"], meta["num_queries"]) == (passages, QUERIES)
    if factor == 2 and n > WINDOW and "x1" in _PEAKS:
        small, large = _PEAKS["x1"]["peak_rss_mb"], _PEAKS["x2"]["peak_rss_mb"]
        assert large <= 1.10 * small, _PEAKS
