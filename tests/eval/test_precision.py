"""--precision: the certified bounds hold, and certified scoring equals a float64 brute-force reference
(mAP, MRR, Recall@k, nDCG@k, rank distance per query) on random, integer-tie, near-tie and float16 runs."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.cli import main
from fastir.cli.score import DEFAULT_PRECISION, PRECISION_CHOICES
from fastir.core.errors import InputError
from fastir.eval import precision as prec
from fastir.eval.score import score_run

CERTIFIED = ("exact", "bf16", "int8")
LANGS = ("aa", "bb", "cc")
KS = (1, 3, 10)
METRICS = "map,mrr,recall@1,3,10,ndcg@10"


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(CERTIFIED + ("int8-cuda-layout",)), st.integers(1, 4096), st.integers(-60, 40), st.integers(0, 2**32 - 1),
       st.booleans())
def test_bound_holds_for_every_pair(name, d, log_scale, seed, half):
    rng = np.random.default_rng(seed)
    n_q, n_c = (3, 4) if d > 512 else (9, 11)
    dtype = np.float16 if half else np.float32
    scale = 1.0 if half else 2.0 ** log_scale
    spread = (lambda n: 2.0 ** rng.integers(-8, 4, n)) if half else (lambda n: 2.0 ** rng.integers(-30, 31, n))
    q = (rng.standard_normal((n_q, d)) * scale * spread((n_q, 1))).astype(dtype).astype(np.float32)
    c = (rng.standard_normal((n_c, d)) * spread((n_c, d))).astype(dtype).astype(np.float32)
    # int8-cuda-layout: the CUDA branch's padded, column-major int8 code, run by the CPU's torch.
    engine = prec._Int8(c, padded=True) if name == "int8-cuda-layout" else prec.product(name, c)
    out = np.empty((n_q, n_c), engine.out_dtype)
    bound = engine.block(q, out)
    approx = prec.as_float32(out)
    for i in range(n_q):
        if np.isinf(bound[i]):  # ‖q‖ max‖c‖ > 2^100: no approximation, every candidate is recomputed
            assert (approx[i] == 0).all() and np.linalg.norm(q[i].astype(float)) * max(
                np.linalg.norm(c.astype(float), axis=1)) > 2.0 ** 99
            continue
        for j in range(n_c):
            exact = sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(q[i], c[j])), Fraction(0))
            allowed = Fraction(float(bound[i])) + Fraction(engine.w) * abs(Fraction(float(approx[i, j])))
            assert abs(Fraction(float(approx[i, j])) - exact) <= allowed


# ------------------------------------------------------------------------ against a float64 reference


def run_columns(kind, rng, n_q=8, n_extra=6, d=24):
    """Parallel runs: query i of each language has the i-th sentence of every language as golds."""
    c_langs = [lang for lang in LANGS for _ in range(n_q + n_extra)]
    q_langs = [lang for lang in LANGS for _ in range(n_q)]
    qrels = [(qi, LANGS.index(other) * (n_q + n_extra) + qi % n_q) for qi in range(len(q_langs)) for other in LANGS]
    n_c = len(c_langs)
    if kind == "ties":  # integer-valued: many exact ties
        q = rng.integers(-2, 3, (len(q_langs), d)).astype(np.float32)
        c = rng.integers(-2, 3, (n_c, d)).astype(np.float32)
    else:
        q = rng.standard_normal((len(q_langs), d)).astype(np.float32)
        c = rng.standard_normal((n_c, d)).astype(np.float32)
        if kind == "fp16":
            q, c = q.astype(np.float16), c.astype(np.float16)
        if kind == "near-ties":  # the extra sentences: a gold moved by one ulp in one coordinate, or copied
            for j, lang in enumerate(c_langs):
                if j % (n_q + n_extra) >= n_q:
                    src = c[rng.integers(n_c) // (n_q + n_extra) * (n_q + n_extra) + rng.integers(n_q)].copy()
                    k = rng.integers(d)
                    src[k] = np.nextafter(src[k], np.float32(rng.choice([-np.inf, np.inf]))) if j % 3 else src[k]
                    c[j] = src
    return dict(q_emb=q, q_langs=q_langs, c_emb=c, c_langs=c_langs, qrels=qrels)


def reference_metrics(cols):
    """Every score in float64 (exact here: see the docstring of each case), ranks with ties against the gold."""
    q = np.asarray(cols["q_emb"], np.float64)
    c = np.asarray(cols["c_emb"], np.float64)
    scores = np.array([[float(sum(Fraction(a) * Fraction(b) for a, b in zip(qi, cj))) for cj in c] for qi in q]) \
        if cols.get("exact") else q @ c.T
    c_langs = np.asarray(cols["c_langs"])
    golds = {}
    for qi, cj in cols["qrels"]:
        golds.setdefault(qi, []).append(cj)
    out = {}
    for qi, g in golds.items():
        for s, name in enumerate([*LANGS, "all"]):
            members = np.flatnonzero(np.ones(len(c_langs), bool) if name == "all" else c_langs == name)
            gs = [j for j in g if j in set(members)]
            if not gs:
                continue
            rank = np.array([(scores[qi, members] >= scores[qi, j]).sum() for j in gs])
            hits = np.array([(scores[qi, gs] >= scores[qi, j]).sum() for j in gs])
            row = {"ap": sum(int(h) / int(r) for h, r in zip(hits, rank)) / len(gs), "rr": 1 / int(rank.min())}
            row.update({f"recall@{k}": int((rank <= k).sum()) / len(gs) for k in KS})
            ideal = sum(1 / math.log2(i + 1) for i in range(1, min(10, len(gs)) + 1))
            row["ndcg@10"] = sum(1 / math.log2(int(r) + 1) for r in rank if r <= 10) / ideal
            if name == "all" and len(gs) >= 2:
                row["rd"] = float(rank.max() - rank.min())
            out[(qi, s)] = row
    return out


def fastir_metrics(result):
    m = result.metrics
    out = {}
    for qi, s in zip(*np.nonzero(m.nrel > 0)):
        row = {"ap": float(m["map"][qi, s]), "rr": float(m["mrr"][qi, s])}
        row.update({f"recall@{k}": float(m[f"recall@{k}"][qi, s]) for k in KS})
        row["ndcg@10"] = float(m["ndcg@10"][qi, s])
        if s == len(LANGS) and m.nrel[qi, s] >= 2:
            row["rd"] = float(m["rank_distance"][qi, s])
        out[(int(qi), int(s))] = row
    return out


@pytest.mark.parametrize("kind", ["random", "ties", "near-ties", "fp16"])
def test_certified_equals_float64_reference(kind, tmp_path, make_run):
    rng = np.random.default_rng(["random", "ties", "near-ties", "fp16"].index(kind))
    cols = run_columns(kind, rng)
    path = make_run(tmp_path / "run", **cols)
    # Exact rational scores for near-ties (float64 sums of 24 products could round a 1-ulp gap away).
    want = reference_metrics({**cols, "exact": kind == "near-ties"})
    for name in CERTIFIED:
        result = score_run(path, pairs="all", metrics=METRICS, precision=name)
        got = fastir_metrics(result)
        assert got.keys() == want.keys()
        for key, row in want.items():  # identical floats (nDCG: log2 from two libraries, to 1e-15)
            mine, ref = dict(got[key]), dict(row)
            assert mine.pop("ndcg@10") == pytest.approx(ref.pop("ndcg@10"), rel=1e-15, abs=0), (name, key)
            assert mine == ref, (name, key)
        info = result.precision
        assert info["requested"] == name and info["candidate_gold_pairs"] > 0
        assert sum(result.cell_stats[c]["undecided"] for c in result.cells) == info["undecided_pairs"]
        if kind in ("ties", "near-ties"):
            assert info["undecided_pairs"] > 0


def _assert_reference(result, want, name):
    got = fastir_metrics(result)
    assert got.keys() == want.keys()
    for key, row in want.items():
        mine, ref = dict(got[key]), dict(row)
        assert mine.pop("ndcg@10") == pytest.approx(ref.pop("ndcg@10"), rel=1e-15, abs=0), (name, key)
        assert mine == ref, (name, key)


@pytest.mark.parametrize("kind", ["ties", "near-ties"])
@pytest.mark.parametrize("block_mb, gold_share", [(2e-4, 0.25), (3e-3, 0.25), (3e-3, 1e9)])
def test_streamed_tiles_and_shards_equal_the_reference(kind, block_mb, gold_share, tmp_path, make_run, monkeypatch):
    """Tiny --block-mb: many candidate tiles, most golds outside the tile being counted (their vectors
    passed beside it: gathered per block, or once per group with ``gold_share``), several query blocks
    (kept across tiles with ``gold_share``); and three candidate shards merged: identical metrics."""
    from fastir.eval import certified
    from fastir.eval.score import score_shard

    monkeypatch.setattr(certified.GoldVectors, "SHARE", gold_share)
    monkeypatch.setattr(certified.QueryBlocks, "SHARE", gold_share)  # query blocks kept across tiles, or not

    cols = run_columns(kind, np.random.default_rng(11))
    path = make_run(tmp_path / "run", **cols)
    want = reference_metrics({**cols, "exact": kind == "near-ties"})
    for name in CERTIFIED:
        _assert_reference(score_run(path, pairs="all", metrics=METRICS, precision=name, block_mb=block_mb), want, name)
    files = [tmp_path / f"s{i}.npz" for i in range(3)]
    for i, f in enumerate(files):
        score_shard(path, i, 3, f, pairs="all", metrics=METRICS, block_mb=block_mb, precision="exact")
    merged = score_run(path, pairs="all", metrics=METRICS, precision="exact", shard_files=files)
    _assert_reference(merged, want, "shards")
    one = score_run(path, pairs="all", metrics=METRICS, precision="exact", block_mb=block_mb)
    assert merged.precision["undecided_pairs"] == one.precision["undecided_pairs"]


def test_auto_mixes_engines_block_by_block_and_stays_exact(tmp_path, make_run, monkeypatch):
    """auto switching from bf16 to certified float32 after its first block (forced: every share is too
    high, and the probe may not leave) gives the reference metrics, and records both engines."""
    from fastir.eval import certified, screen

    if not prec.mkl_gemm()[0]:
        pytest.skip("no oneMKL bfloat16 product on this machine: auto scores float32 products")
    cols = run_columns("near-ties", np.random.default_rng(12))
    path = make_run(tmp_path / "run", **cols)
    monkeypatch.setattr(certified, "AUTO_MIN_WORK", 0.0)
    monkeypatch.setattr(certified, "AUTO_MAX_PRODUCT_SHARE", float("inf"))  # tiny blocks time nothing useful
    monkeypatch.setattr(certified, "AUTO_MAX_RECOMPUTED", -1.0)
    monkeypatch.setattr(screen, "SCREEN_MAX", float("inf"))  # the probe and the blocks decide, not the sample
    monkeypatch.setattr(certified, "PROBE_ROWS", 4)
    stay = certified.PrecisionChoice.engine
    monkeypatch.setattr(certified.PrecisionChoice, "engine", lambda self, may_leave=True: stay(self, False))
    result = score_run(path, pairs="all", metrics=METRICS, block_mb=1e-3)
    _assert_reference(result, reference_metrics({**cols, "exact": True}), "auto")
    info = result.precision
    assert info["ran"] == "bf16+exact" or info["ran"] == "exact+bf16"
    assert info["blocks"]["bf16"] == 1 and info["blocks"]["exact"] >= 1 and "certified float32" in info["reason"]


def test_auto_leaves_for_float32_where_bf16_cannot_decide_or_is_missing(tmp_path, make_run, monkeypatch):
    from fastir.eval import certified, screen

    path = make_run(tmp_path / "run", **run_columns("random", np.random.default_rng(13)))
    fp32 = score_run(path, pairs="all", metrics=METRICS, precision="fp32")
    small = score_run(path, pairs="all", metrics=METRICS)
    assert small.precision["ran"] == "fp32" and "multiply-adds, below" in small.precision["reason"]
    assert np.array_equal(small.metrics.values, fp32.metrics.values, equal_nan=True)
    monkeypatch.setattr(certified, "AUTO_MIN_WORK", 0.0)
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    missing = score_run(path, pairs="all", metrics=METRICS)
    assert missing.precision["ran"] == "fp32" and "no fast bfloat16 product" in missing.precision["reason"]
    assert np.array_equal(missing.metrics.values, fp32.metrics.values, equal_nan=True)
    monkeypatch.undo()
    monkeypatch.setattr(certified, "AUTO_MIN_WORK", 0.0)
    if prec.mkl_gemm()[0]:
        monkeypatch.setattr(certified, "AUTO_MAX_PRODUCT_SHARE", float("inf"))
        monkeypatch.setattr(certified, "AUTO_MAX_RECOMPUTED", -1.0)
        monkeypatch.setattr(screen, "SCREEN_MAX", float("inf"))  # the probe decides, not the sample
        probe = score_run(path, pairs="all", metrics=METRICS)
        assert probe.precision["ran"] == "fp32" and "in the probe block" in probe.precision["reason"]
        assert np.array_equal(probe.metrics.values, fp32.metrics.values, equal_nan=True)
        monkeypatch.setattr(certified, "AUTO_MAX_PRODUCT_SHARE", -1.0)  # bf16 never fast enough: timed out of it
        slow = score_run(path, pairs="all", metrics=METRICS)
        assert slow.precision["ran"] == "fp32" and "not faster enough on this CPU" in slow.precision["reason"]
        assert np.array_equal(slow.metrics.values, fp32.metrics.values, equal_nan=True)
    trec = score_run(path, pairs="all", metrics=METRICS, trec_depth=3)
    assert trec.precision["ran"] == "fp32" and "--trec" in trec.precision["reason"]


def test_fp32_has_no_precision_block_and_auto_is_the_default(tmp_path, make_run):
    path = make_run(tmp_path / "run", **run_columns("random", np.random.default_rng(5)))
    result = score_run(path, pairs="all", ks=KS, precision="fp32")
    assert result.precision is None and "undecided" not in result.cell_stats[result.cells[0]]
    assert DEFAULT_PRECISION == prec.DEFAULT_PRECISION == "auto" and set(PRECISION_CHOICES) == set(prec.PRECISIONS)
    auto = score_run(path, pairs="all", ks=KS)
    assert auto.precision["requested"] == "auto" and auto.precision["reason"]
    assert "undecided" not in auto.cell_stats[auto.cells[0]]  # the default pairs table keeps its columns


def test_asking_for_what_the_cpu_lacks_is_one_line(tmp_path, make_run, monkeypatch, capsys):
    """Explicit bf16 / int8 without the instructions: exit 2, nothing written (auto falls back instead)."""
    path = make_run(tmp_path / "run", **run_columns("random", np.random.default_rng(6)))
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(InputError, match="bf16: this CPU has no AVX512_BF16 or AMX_BF16: use --precision auto"):
        score_run(path, pairs="all", ks=KS, precision="bf16")
    capsys.readouterr()
    assert main(["score", str(path), "--precision", "int8", "--out", str(tmp_path / "s"), "--format", "json"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --precision: int8: this CPU has no AVX512_VNNI or AVX_VNNI or AMX_INT8: use --precision auto or "
        "exact"]
    assert not (tmp_path / "s").exists()
    assert score_run(path, pairs="all", ks=KS, precision="exact").precision["ran"] == "exact"


def test_certified_outputs_and_refusals(tmp_path, make_run):
    path = make_run(tmp_path / "run", **run_columns("ties", np.random.default_rng(7)))
    assert main(["score", str(path), "--precision", "exact", "--out", str(tmp_path / "s")]) == 0
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["precision"]["ran"] == "exact" and summary["precision"]["undecided_pairs"] > 0
    assert pq.read_table(tmp_path / "s" / "pairs.parquet").column("undecided").to_pylist()
    with pytest.raises(InputError, match="--trec"):
        score_run(path, precision="bf16", trec_depth=5)
    with pytest.raises(InputError, match="--precision"):
        score_run(path, precision="fp8")


def test_int8_runs_on_cuda_where_it_has_tensor_cores(tmp_path, make_run, monkeypatch, capsys):
    path = make_run(tmp_path / "run", **run_columns("random", np.random.default_rng(8)))
    assert score_run(path, ks=KS, precision="int8").precision["device"] == prec.device_for("int8")
    monkeypatch.setattr(prec, "cuda_int8", lambda: (True, None))
    assert prec.resolve("int8") == ("int8", None) and prec.device_for("int8") == "cuda"
    assert prec.device_for("bf16") == "cpu"
    old = "Tesla V100 (compute capability 7.0) has no int8 tensor cores"
    monkeypatch.setattr(prec, "cuda_int8", lambda: (False, old))
    assert prec.resolve("int8") == ("int8", f"--precision int8: {old}; ran on the CPU")
    capsys.readouterr()
    assert main(["score", str(path), "--precision", "int8", "--out", str(tmp_path / "g"), "--format", "json"]) == 0
    assert capsys.readouterr().err.splitlines() == [f"warning: --precision int8: {old}; ran on the CPU"]
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    assert main(["score", str(path), "--precision", "int8", "--out", str(tmp_path / "s"), "--format", "json"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --precision: int8: {old}, and this CPU has no AVX512_VNNI or AVX_VNNI or AMX_INT8: use --precision "
        "auto or exact"]


@pytest.mark.skipif(not prec.cuda_int8()[0], reason="needs a CUDA GPU with int8 tensor cores")
def test_cuda_int8_equals_the_cpu_approximations():
    """Exact int32 sums and the same three float32 roundings: CUDA's approximations are the CPU's, bit for bit."""
    rng = np.random.default_rng(9)
    c = rng.standard_normal((1001, 768)).astype(np.float16).astype(np.float32)
    q = rng.standard_normal((37, 768)).astype(np.float16).astype(np.float32)
    got, want = np.empty((37, 1001), np.float32), np.empty((37, 1001), np.float32)
    bound = prec._Int8(c, device="cuda").block(q, got)
    np.testing.assert_array_equal(bound, prec._Int8(c).block(q, want))
    np.testing.assert_array_equal(got, want)
