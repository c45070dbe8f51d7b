"""fastir.eval.stream: the tiled pass equals one pass (ties included), its plan, and its memory bound."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from fastir.eval.score import score_run
from fastir.eval.stream import MAX_ROWS, block_plan
from fastir.runs.rundir import read_run

LANGS = ("aa", "bb", "cc")


def tied_columns(rng, n_cand=240, n_q=30, dim=5, integer=True):
    """Integer embeddings (exact, frequent ties) or Gaussian ones; 1-4 golds per query, any language."""
    draw = (lambda n: rng.integers(-2, 3, (n, dim)).astype(np.float32)) if integer else \
        (lambda n: rng.standard_normal((n, dim)).astype(np.float32))
    qrels = [(q, int(c)) for q in range(n_q) for c in rng.choice(n_cand, int(rng.integers(1, 5)), replace=False)]
    return dict(q_emb=draw(n_q), q_langs=[LANGS[i % 3] for i in range(n_q)], c_emb=draw(n_cand),
                c_langs=[LANGS[int(x)] for x in rng.integers(0, 3, n_cand)], qrels=qrels)


def same(a, b) -> bool:
    return (np.array_equal(a.metrics.values, b.metrics.values, equal_nan=True)
            and np.array_equal(a.metrics.nrel, b.metrics.nrel))


@pytest.mark.parametrize("pairs", ["all", "mono", "aa-bb,cc-all"])
def test_tiles_equal_one_pass_with_ties(tmp_path, make_run, pairs):
    run = read_run(make_run(tmp_path, **tied_columns(np.random.default_rng(1))))
    whole = score_run(run, pairs=pairs, trec_depth=6, metrics="map,mrr,recall@1,3,ndcg@5")
    assert block_plan(30, 240, 5, 256).n_tiles == 1
    for block_mb in (0.0005, 0.003, 0.02):  # 1-row blocks, narrow tiles, a few tiles
        tiled = score_run(run, pairs=pairs, block_mb=block_mb, trec_depth=6, metrics="map,mrr,recall@1,3,ndcg@5")
        assert same(tiled, whole), block_mb
        assert np.array_equal(tiled.top.length, whole.top.length)
        assert np.array_equal(tiled.top.cand, whole.top.cand) and np.array_equal(tiled.top.score, whole.top.score)


def test_one_query_and_one_candidate_per_tile(tmp_path, make_run):
    """1-row and 1-column products are padded to 2, so BLAS keeps its matrix-matrix rounding."""
    run = read_run(make_run(tmp_path, **tied_columns(np.random.default_rng(2), n_cand=40, n_q=4, dim=96,
                                                     integer=False)))
    pooled = "aa-all,bb-all,cc-all"
    whole = score_run(run, pairs=pooled)
    assert same(score_run(run, pairs=pooled, block_mb=96 * 4 * 5 / 2**20), whole)


@pytest.mark.parametrize("block_mb", [256, 0.05])
def test_gold_scores_in_batches_equal_the_tiles_products(tmp_path, make_run, block_mb):
    """Gold scores computed apart (query batches times their own golds' columns) are bit-equal to
    the same pairs' entries of the whole product, which a pool in one tile reads them from; a
    batch whose golds exceed ``--block-mb`` is cut into tiles within it."""
    from fastir.eval.stream import GOLD_MIN_MACS, gold_scores, group_golds

    rng = np.random.default_rng(5)
    cols = tied_columns(rng, n_cand=3_000, n_q=400, dim=96, integer=False)
    cols["qrels"] = [(q, int(c)) for q in range(400) for c in rng.choice(3_000, 6, replace=False)]
    run = read_run(make_run(tmp_path, **cols))
    from fastir.eval.score import _prepare
    from fastir.eval.stream import NumpyEngine

    plan = _prepare(run, "all", (1,), None, 256, None, "fp32", "cpu", False, 1, "pessimistic")[5]
    rows = np.arange(400)
    mask = np.ones(len(plan.cand_langs), bool)
    g_ptr, g_id = group_golds(plan, mask, rows)
    out = np.zeros(len(plan.gold_cand), np.float32)
    engine, products, tiles = NumpyEngine(), [], []
    scores, tile = engine.scores, engine.tile
    engine.scores = lambda q_side, q_rows, t: products.append(len(q_rows)) or scores(q_side, q_rows, t)
    engine.tile = lambda side, rows: tiles.append(len(rows)) or tile(side, rows)
    gold_scores(run, plan, rows, g_ptr, g_id, None, block_mb, engine, out)
    q = np.asarray(run.queries.embeddings, np.float32)
    c = np.asarray(run.candidates.embeddings, np.float32)
    whole = q @ c.T
    owner = np.repeat(rows, np.diff(g_ptr))
    assert len(g_id) == 2_400 and len(products) >= 3  # several batches, each of its own golds' columns
    if block_mb == 256:
        assert min(products) * 6 * min(products) * 96 >= GOLD_MIN_MACS or min(products) == 400 % max(products)
    assert max(tiles) * 96 * 4 <= block_mb * 2**20
    if block_mb == 256:
        assert np.array_equal(out[g_id], whole[owner, plan.gold_cand[g_id]])
    else:  # tiles this small may go to BLAS's small-matrix kernel: float32 rounding apart
        np.testing.assert_allclose(out[g_id], whole[owner, plan.gold_cand[g_id]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("integer, batched", [(True, False), (False, False), (True, True)])
def test_float16_product_of_onemkl_equals_numpys(tmp_path, make_run, monkeypatch, integer, batched):
    """The float32 pass over a float16 run with oneMKL's float16 product (tiles that are views of
    the table, gathered tiles, gold scores apart) gives numpy's counts: equal on exact integer
    scores with ties; on Gaussian ones the same ranks, scores within float32 rounding (tiny tiles
    may go to either library's small-matrix kernel, which sums in another order)."""
    from fastir.eval import stream
    from fastir.eval.mkl_gemm import load_f16

    if load_f16()[0] is None:
        pytest.skip(load_f16()[1])
    rng = np.random.default_rng(7)
    cols = tied_columns(rng, n_cand=900, n_q=60, dim=48, integer=integer)
    order = np.argsort(cols["c_langs"], kind="stable")  # language-grouped: tiles are views of the table
    cols["c_emb"], cols["c_langs"] = cols["c_emb"][order], [cols["c_langs"][i] for i in order]
    if batched:  # record batches of 37 candidates: tiles straddle them (gathered) or lie inside one (views)
        import fastir.core.arrow as arrow

        monkeypatch.setattr(arrow, "_BATCH_BYTES", 48 * 2 * 37)
    run = read_run(make_run(tmp_path, dtype="float16", **cols))
    assert len(run.candidates.chunks) == (25 if batched else 1)
    monkeypatch.setattr(stream, "F16_MIN_WORK", 0)
    for block_mb in (256, 0.02):  # one tile (gold scores read from it) / many tiles (gold scores apart)
        monkeypatch.setenv("FASTIR_CPU_VENDOR", "GenuineIntel")
        mkl = score_run(run, block_mb=block_mb, trec_depth=5, metrics="map,mrr,recall@1,10,ndcg@5")
        monkeypatch.setenv("FASTIR_CPU_VENDOR", "AuthenticAMD")
        numpy = score_run(run, block_mb=block_mb, trec_depth=5, metrics="map,mrr,recall@1,10,ndcg@5")
        assert mkl.compute["product"] == "cblas_gemm_f16f16f32" and numpy.compute is None
        assert same(mkl, numpy) and np.array_equal(mkl.top.cand, numpy.top.cand), block_mb
        if integer:
            assert np.array_equal(mkl.top.score, numpy.top.score)
        else:
            np.testing.assert_allclose(mkl.top.score, numpy.top.score, rtol=1e-5, atol=1e-5)


def test_cpu_engine_uses_onemkl_for_large_float16_runs_on_intel_only(tmp_path, make_run, monkeypatch):
    from fastir.eval import stream

    cols = tied_columns(np.random.default_rng(8), n_cand=50, n_q=8, dim=4)
    f16, f32 = (read_run(make_run(tmp_path / d, dtype=d, **cols)) for d in ("float16", "float32"))
    monkeypatch.setenv("FASTIR_CPU_VENDOR", "GenuineIntel")
    assert stream.f16_product(f16)[1].startswith("below 1e+11")
    monkeypatch.setattr(stream, "F16_MIN_WORK", 0)
    assert stream.f16_product(f32) == (None, "not a float16 run")
    gemm, why = stream.f16_product(f16)
    assert stream.cpu_engine(f16)._f16 is gemm and (gemm is not None or "libtorch_cpu" in why)
    monkeypatch.setenv("FASTIR_CPU_VENDOR", "AuthenticAMD")
    assert stream.f16_product(f16) == (None, "measured on Intel CPUs only (this one: AuthenticAMD)")
    assert stream.cpu_engine(f16).compute is None


def test_block_plan_fits_the_budget():
    # XQuAD-R: every candidate in one tile, query blocks fill the rest.
    p = block_plan(13_090, 13_014, 768, 256)
    assert p.n_tiles == 1 and p.nbytes <= 256 * 2**20
    # 100x pool: tiles of columns, query blocks of at most MAX_ROWS rows, within the budget whatever the pool.
    for n_cols in (1_301_400, 2_602_800, 10**8):
        p = block_plan(1_309, n_cols, 768, 256)
        assert p.rows == 1_309 <= MAX_ROWS and p.nbytes <= 256 * 2**20 and p.cols < n_cols
    p = block_plan(50_000, 10**7, 768, 64)
    assert p.rows <= MAX_ROWS and p.nbytes <= 64 * 2**20


def _peak_bytes(run) -> int:
    tracemalloc.start()
    score_run(run, pairs="mono,aa-all,bb-all,cc-all", block_mb=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_peak_memory_does_not_follow_the_pool(tmp_path, make_run):
    """Float16 pools of N and 2N candidates (d = 64): the traced peak (numpy buffers included) grows
    by the per-candidate bookkeeping (~30 bytes: language ids, order), not by the float32 copy of
    the pool (256 bytes a candidate) that a non-streaming pass would hold."""
    rng = np.random.default_rng(0)
    n, dim, n_q = 20_000, 64, 24
    peaks = []
    for size in (n, 2 * n):
        cols = dict(q_emb=rng.standard_normal((n_q, dim)), q_langs=[LANGS[i % 3] for i in range(n_q)],
                    c_emb=rng.standard_normal((size, dim)), c_langs=[LANGS[i % 3] for i in range(size)],
                    qrels=[(q, q) for q in range(n_q)])
        run = read_run(make_run(tmp_path, **cols, dtype="float16", name=f"run{size}"))
        _peak_bytes(run)  # compile and warm up
        peaks.append(_peak_bytes(run))
    growth_per_candidate = (peaks[1] - peaks[0]) / n
    assert growth_per_candidate < 64, peaks
    assert peaks[1] < 1 * 2**20 + 2 * n * 64 + 4 * 2**20, peaks  # --block-mb + bookkeeping + small arrays


def test_a_pool_of_many_record_batches_is_never_joined(tmp_path, make_run, monkeypatch):
    """A run written in several record batches is read batch by batch (zero-copy views of the
    memory map), scored without joining them into one matrix, and scores as the joined pool."""
    import fastir.core.arrow as arrow

    cols = tied_columns(np.random.default_rng(4), n_cand=500, n_q=30, dim=8, integer=False)
    joined = score_run(read_run(make_run(tmp_path, **cols, dtype="float16")), trec_depth=4)
    monkeypatch.setattr(arrow, "_BATCH_BYTES", 8 * 2 * 37)  # 37 candidates a batch
    run = read_run(make_run(tmp_path, **cols, dtype="float16", name="batched"))
    assert len(run.candidates.chunks) == 14 and all(not c.flags.owndata for c in run.candidates.chunks)
    for block_mb in (256, 0.01):
        batched = score_run(run, trec_depth=4, block_mb=block_mb)
        assert same(batched, joined) and np.array_equal(batched.top.cand, joined.top.cand)
    assert run.candidates._whole is None  # never joined


def _all_pending(monkeypatch):
    """As while a command's preload thread is still loading every kernel of fastir.eval.preload."""
    import fastir.kernels.lazy as lazy
    from fastir.eval.preload import FP32_KERNELS
    from fastir.kernels import gather_kernel

    monkeypatch.setattr(lazy, "_PENDING", {n for names in FP32_KERNELS.values() for n in names}
                        | {gather_kernel("float16", 2), gather_kernel("float32", 2)})


@pytest.mark.parametrize("n_chunks", [1, 3])
def test_gather_rows_numpy_stand_in_writes_the_numba_gathers_bits(monkeypatch, n_chunks):
    import fastir.kernels.lazy as lazy
    from fastir.eval.stream import gather_rows
    from fastir.kernels import HALF_COPY_KERNEL

    every_half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    rng = np.random.default_rng(0)
    for table in (every_half, rng.standard_normal((300, 7)).astype(np.float32)):
        chunks = np.array_split(table, n_chunks)
        rows = rng.integers(0, len(table), 500)
        numba_out = gather_rows(chunks, rows, np.empty((len(rows), table.shape[1]), np.float32))
        with monkeypatch.context() as m:
            _all_pending(m)
            numpy_out = gather_rows(chunks, rows, np.empty((len(rows), table.shape[1]), np.float32))
        assert np.array_equal(numba_out.view(np.uint32), numpy_out.view(np.uint32))
        if table.dtype == np.float16:  # float16 rows as stored (oneMKL's float16 product)
            copied = gather_rows(chunks, rows, np.empty((len(rows), table.shape[1]), np.float16))
            with monkeypatch.context() as m:
                _all_pending(m)
                m.setattr(lazy, "_PENDING", lazy._PENDING | {HALF_COPY_KERNEL})
                numpy_copy = gather_rows(chunks, rows, np.empty((len(rows), table.shape[1]), np.float16))
            assert np.array_equal(copied.view(np.uint16), table[rows].view(np.uint16))
            assert np.array_equal(numpy_copy.view(np.uint16), copied.view(np.uint16))


def test_score_while_kernels_load_equals_score_after(tmp_path, make_run, monkeypatch):
    """The numpy stand-ins (gathers, finiteness scan) change no number: a score started while
    the preload thread still loads is identical to one after, for one record batch or many."""
    import fastir.core.arrow as arrow

    cols = tied_columns(np.random.default_rng(5), n_cand=300, n_q=20, dim=8, integer=False)
    for name, batch_bytes in (("one", 1 << 26), ("batched", 8 * 2 * 41)):
        monkeypatch.setattr(arrow, "_BATCH_BYTES", batch_bytes)
        run_dir = make_run(tmp_path, **cols, dtype="float16", name=name)
        assert len(read_run(run_dir).candidates.chunks) == (1 if name == "one" else 8)
        after = score_run(read_run(run_dir), trec_depth=3)
        with monkeypatch.context() as m:
            _all_pending(m)
            during = score_run(read_run(run_dir), trec_depth=3)
        assert same(during, after) and np.array_equal(during.top.cand, after.top.cand)
