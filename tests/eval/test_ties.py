"""fastir.eval.ties: ``fastir score --ties`` on integer embeddings (exact float32 ties) against brute force:
optimistic = ties broken in the golds' favour (sklearn AP on tie-broken scores), expected = the mean over
many random tie orders, optimistic >= expected >= pessimistic; the torch engine, tiles, static shards and
torchrun carry the tie counts; bad options are one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fastir.cli import main
from fastir.core.errors import InputError
from fastir.eval import gpu
from fastir.eval.score import score_run
from fastir.eval.ties import tie_spread
from fastir.runs.rundir import read_run

LANGS = ("aa", "bb", "cc")
METRICS = "map,mrr,recall@1,3,ndcg@3,ndcg@10"


def _columns(seed, n_q=24, n_c=90, dim=4, dtype=np.float32):
    """Integer embeddings in [-1, 1]: few distinct scores, ties everywhere; graded qrels (1 or 2)."""
    rng = np.random.default_rng(seed)
    qrels = [(q, int(c)) for q in range(n_q) for c in rng.choice(n_c, int(rng.integers(1, 6)), replace=False)]
    grades = [int(g) for g in rng.integers(1, 3, len(qrels))]
    return dict(q_emb=rng.integers(-1, 2, (n_q, dim)).astype(dtype), q_langs=[LANGS[i % 3] for i in range(n_q)],
                c_emb=rng.integers(-1, 2, (n_c, dim)).astype(dtype), c_langs=[LANGS[int(x)] for x in
                                                                                rng.integers(0, 3, n_c)],
                qrels=qrels, relevance=grades)


@pytest.fixture
def cols():
    return _columns(0)


@pytest.fixture
def run(tmp_path, make_run, cols):
    return read_run(make_run(tmp_path, **cols))


# ----------------------------------------------------------------------------------- brute force


def _reference_values(order, gain, relevant):
    """map, mrr, recall@1, recall@3, ndcg@3, ndcg@10 of one strict order (``gain``/``relevant`` per candidate)."""
    ranked_rel = relevant[order]
    pos = np.flatnonzero(ranked_rel) + 1
    n_rel = relevant.sum()
    ap = np.mean(np.arange(1, len(pos) + 1) / pos)
    out = [ap, 1.0 / pos[0], np.sum(pos <= 1) / n_rel, np.sum(pos <= 3) / n_rel]
    ideal = np.sort(gain[gain > 0])[::-1]
    for k in (3, 10):
        g = gain[order][:k]
        dcg = np.sum(g / np.log2(np.arange(2, len(g) + 2)))
        out.append(dcg / np.sum(ideal[:k] / np.log2(np.arange(2, min(k, len(ideal)) + 2))))
    return np.array(out)


def _sets(cols):
    scores = np.asarray(cols["q_emb"], np.float64) @ np.asarray(cols["c_emb"], np.float64).T
    gain = np.zeros(scores.shape)
    for (q, c), g in zip(cols["qrels"], cols["relevance"]):
        gain[q, c] = g
    c_langs = np.asarray(cols["c_langs"])
    for q in range(len(scores)):
        for name in (*LANGS, "all"):
            members = np.flatnonzero(np.ones(len(c_langs), bool) if name == "all" else c_langs == name)
            if gain[q, members].any():
                yield q, name, scores[q, members], gain[q, members]


def _fastir(result, q, name):
    return result.metrics.values[q, result.set_index(name), :6]


def test_optimistic_equals_ties_broken_in_the_golds_favour(run, cols):
    result = score_run(run, metrics=METRICS, ties="optimistic")
    for q, name, score, gain in _sets(cols):
        # tied golds first, higher grade first, then candidate order: scores are integers, so a bonus
        # below 1 only breaks ties (sklearn then sees no tie at all)
        favoured = score + gain / 3 - np.arange(len(score)) * 1e-6
        order = np.argsort(-favoured, kind="stable")
        ref = _reference_values(order, gain, gain >= 1)
        assert np.allclose(_fastir(result, q, name), ref, rtol=0, atol=1e-12), (q, name)
        assert abs(ref[0] - average_precision_score(gain >= 1, favoured)) < 1e-12


def test_expected_equals_the_mean_over_random_tie_orders(run, cols):
    result = score_run(run, metrics=METRICS, ties="expected")
    rng = np.random.default_rng(1)
    draws = 1500
    for q, name, score, gain in _sets(cols):
        samples = np.empty((draws, 6))
        for i in range(draws):  # a random order of every tie: a random key below the integer steps
            order = np.lexsort((rng.random(len(score)), -score))
            samples[i] = _reference_values(order, gain, gain >= 1)
        mean, se = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(draws)
        assert np.all(np.abs(_fastir(result, q, name) - mean) <= 5 * se + 1e-12), (q, name, _fastir(result, q, name), mean)


def test_optimistic_at_least_expected_at_least_pessimistic(run, cols):
    """Everywhere for the metrics of ranks; AP's pessimistic value (sklearn's: hits(d) counts every gold tied
    with d) is no order's AP, so AP is held to the worst order (golds last, lower grade first) instead."""
    extra = ",map@5,p@3,success@3,mrr@3"
    got = {mode: score_run(run, metrics=METRICS + extra, ties=mode).metrics.values
           for mode in ("pessimistic", "optimistic")}
    got["expected"] = score_run(run, metrics=METRICS, ties="expected").metrics.values
    high, mid, low = (got[m][..., :6] for m in ("optimistic", "expected", "pessimistic"))
    scored = ~np.isnan(low)
    assert scored.any() and np.array_equal(scored, ~np.isnan(high)) and np.array_equal(scored, ~np.isnan(mid))
    assert np.all(high[scored] >= mid[scored] - 1e-12)
    assert np.all(mid[..., 1:][scored[..., 1:]] >= low[..., 1:][scored[..., 1:]] - 1e-12)
    assert (high[scored] > low[scored]).any()  # the ties matter on this data
    cut = ~np.isnan(got["pessimistic"][..., 7:10])  # p@3, success@3, mrr@3 (map@5 is AP's; rank distance last)
    assert np.all(got["optimistic"][..., 7:10][cut] >= got["pessimistic"][..., 7:10][cut])
    expected = score_run(run, metrics=METRICS, ties="expected")
    for q, name, score, gain in _sets(cols):
        worst = np.argsort(-(score - gain / 3 + np.arange(len(score)) * 1e-6), kind="stable")
        assert _fastir(expected, q, name)[0] >= _reference_values(worst, gain, gain >= 1)[0] - 1e-12


def test_pessimistic_default_is_unchanged_and_ties_are_recorded(run):
    default = score_run(run, metrics=METRICS)
    assert default.extra == {"ties": "pessimistic"}  # float32 run: no tie counts, no spread
    optimistic = score_run(run, metrics=METRICS, ties="optimistic")
    assert optimistic.precision["ran"] == "fp32" and "--ties optimistic" in optimistic.precision["reason"]
    spread = optimistic.extra["tie_spread"]
    for cell in default.cells:
        for m in ("map", "mrr", "recall@1"):
            assert spread[cell.name][m] == pytest.approx(optimistic.cell_stats[cell][m] - default.cell_stats[cell][m],
                                                         abs=1e-12)
        assert spread[cell.name]["mrr"] >= 0 and spread[cell.name]["recall@1"] >= 0
    assert spread == tie_spread(default, optimistic.metrics, default.metrics)


@pytest.mark.parametrize("block_mb", [0.002, 256])  # many tiles (gold scores computed first) / one tile
def test_torch_engine_and_tiles_count_the_same_ties(run, monkeypatch, block_mb):
    kwargs = dict(metrics=METRICS, ties="expected", precision="fp32")
    one = score_run(run, **kwargs)
    numba = score_run(run, block_mb=block_mb, device="cpu", **kwargs)
    monkeypatch.setattr(gpu, "make_engine", lambda device, dist=None, run=None: gpu.TorchEngine("cpu"))
    torch_cpu = score_run(run, block_mb=block_mb, device="cpu", **kwargs)
    for other in (numba, torch_cpu):
        assert np.array_equal(other.metrics.values, one.metrics.values, equal_nan=True)
        assert other.extra == one.extra


def test_float16_run_reports_the_tie_spread(tmp_path, make_run):
    run = make_run(tmp_path, **_columns(2, dtype=np.float16), dtype="float16")
    out = tmp_path / "scores"
    assert main(["score", str(run), "--precision", "fp32", "--out", str(out), "--metrics", METRICS]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ties"] == "pessimistic"
    assert set(summary["tie_spread"]) == {c.name for c in score_run(run, precision="fp32").cells}
    assert all(v["mrr"] >= 0 for v in summary["tie_spread"].values())
    assert any(v["mrr"] > 0 for v in summary["tie_spread"].values())


@pytest.mark.parametrize("mode", ["optimistic", "expected"])
def test_static_shards_merge_to_the_single_process_result(run, tmp_path, mode):
    single = tmp_path / "one"
    assert main(["score", str(run.path), "--out", str(single), "--per-query", "--ties", mode, "--device", "cpu",
                 "--metrics", METRICS]) == 0
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"s{i}.npz"))
        assert main(["score", str(run.path), "--shard", f"{i}/3", "--out", files[-1], "--ties", mode,
                     "--block-mb", "0.002", "--device", "cpu", "--metrics", METRICS]) == 0
    merged = tmp_path / "merged"
    assert main(["score", str(run.path), *files, "--merge-shards", "--out", str(merged), "--per-query", "--ties",
                 mode, "--metrics", METRICS]) == 0
    for name in ("summary.json", "pairs.csv", "per_query.parquet"):
        assert (single / name).read_bytes() == (merged / name).read_bytes(), name
    # shards of another tie mode do not add up to this one
    code = main(["score", str(run.path), *files, "--merge-shards", "--out", str(tmp_path / "x"), "--metrics", METRICS])
    assert code == 2 and not (tmp_path / "x").exists()


def _error(capsys, code, *needles):
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def test_bad_tie_options(run, tmp_path, capsys):
    out = tmp_path / "scores"
    _error(capsys, main(["score", str(run.path), "--ties", "trec_eval", "--out", str(out)]), "--ties",
           "fastir score-run")
    _error(capsys, main(["score", str(run.path), "--ties", "optimistic", "--precision", "bf16", "--out", str(out)]),
           "--precision", "fp32 or auto")
    _error(capsys, main(["score", str(run.path), "--ties", "expected", "--metrics", "map@5", "--out", str(out)]),
           "--ties", "map@5")
    _error(capsys, main(["score", str(run.path), "--ties", "optimistic", "--metrics", "map,same_lang@5",
                         "--out", str(out)]), "--ties", "same_lang@5")
    code = main(["score", str(run.path), "--ties", "random", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--ties" in err and "random" in err
    assert not out.exists()
    with pytest.raises(InputError, match="--ties: must be one of pessimistic, optimistic, expected"):
        score_run(run, ties="random")


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_carry_the_tie_counts(run, tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    options = ["--per-query", "--ties", "expected", "--device", "cpu", "--block-mb", "0.002", "--metrics", METRICS]
    assert main(["score", str(run.path), "--out", str(tmp_path / "one"), *options]) == 0
    fastir_bin = shutil.which("fastir") or str(Path(sys.executable).parent / "fastir")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
         fastir_bin, "score", str(run.path), "--out", str(tmp_path / "two"), *options],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("summary.json", "pairs.csv", "per_query.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_per_query_tables_of_two_tie_modes_are_not_paired(cols, tmp_path, make_run, capsys):
    run = make_run(tmp_path, **cols, meta={"dataset_checksum": "0" * 64})
    for mode in ("pessimistic", "expected"):
        assert main(["score", str(run), "--out", str(tmp_path / mode), "--per-query", "--ties", mode]) == 0
    capsys.readouterr()  # the same run under two definitions of its metrics: not a paired comparison
    assert main(["compare", str(tmp_path / "pessimistic"), str(tmp_path / "expected"), "--out",
                 str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ties: tie mode 'expected' differs from" in err, err
    assert not (tmp_path / "cmp").exists()
    assert main(["compare", str(tmp_path / "expected"), str(tmp_path / "expected"), "--out",
                 str(tmp_path / "cmp")]) == 0  # one mode on both sides pairs as before


def test_per_query_metadata_names_a_tie_mode_other_than_the_default(tmp_path, make_run):
    """fastir compare reads it to refuse pairing two modes (tests/compare/test_inputs.py)."""
    import json

    rng = np.random.default_rng(3)
    path = make_run(tmp_path, q_emb=rng.integers(-1, 2, (6, 3)).astype(np.float32), q_langs=["aa", "bb"] * 3,
                    c_emb=rng.integers(-1, 2, (8, 3)).astype(np.float32), c_langs=["aa", "bb"] * 4,
                    qrels=[(q, q) for q in range(6)])
    for mode, meta_has in (("pessimistic", None), ("expected", "expected")):
        table = score_run(path, pairs="mono", metrics="map", per_query=True, ties=mode, precision="fp32").per_query
        meta = json.loads(table.schema.metadata[b"fastir"])
        assert meta.get("ties") == meta_has
