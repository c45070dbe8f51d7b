"""fastir.eval.certified: the certified engines' ranks equal float32 ranks on exactly representable
scores even when the bound decides nothing, and the undecided / candidate-gold counters of each cell
against a brute-force count. (The certified ranks against a float64 reference, for every engine:
tests/eval/test_precision.py.)"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import fastir.eval.precision as precision
from fastir.eval.cells import Cell
from fastir.eval.certified import cell_counters
from fastir.eval.score import score_run

LANGS = ("aa", "bb", "cc")


def _columns(seed=0, n_q=18, n_cand=45):
    rng = np.random.default_rng(seed)
    qrels = [(q, int(c)) for q in range(n_q) for c in rng.choice(n_cand, int(rng.integers(1, 4)), replace=False)]
    return dict(q_emb=rng.integers(-2, 3, (n_q, 4)).astype(np.float32), q_langs=[LANGS[q % 3] for q in range(n_q)],
                c_emb=rng.integers(-2, 3, (n_cand, 4)).astype(np.float32),
                c_langs=[LANGS[(c * 7) % 3] for c in range(n_cand)], qrels=qrels)


def _candidate_gold_pairs(cols, cells, with_self=True):
    """sum over the cells' queries of |golds in S| * |S| (queries of the cell's language with a gold in S);
    ``with_self=False``: without the pair of each gold with itself (a tie, never undecided)."""
    langs = np.asarray(cols["c_langs"])
    total = 0
    for cell in cells:
        members = set(range(len(langs))) if cell.cand_lang == "all" else set(np.flatnonzero(langs == cell.cand_lang))
        for q, x in enumerate(cols["q_langs"]):
            if x == cell.query_lang:
                total += sum(c in members for qq, c in cols["qrels"] if qq == q) * (len(members) - (not with_self))
    return total


@pytest.mark.parametrize("pairs", ["all", "mono", "aa-bb,cc-all"])
def test_counters_of_a_bound_that_decides_nothing(tmp_path, make_run, monkeypatch, pairs):
    """An infinite bound leaves every candidate-gold pair to the exact recomputation: the ranks still
    equal the float32 ones (integer embeddings: exact scores, many ties) and every pair but each gold with
    itself counts as undecided."""
    cols = _columns()
    path = make_run(tmp_path, **cols)
    fp32 = score_run(path, pairs=pairs, metrics="map,mrr,recall@1,5,ndcg@10")
    real = precision.product

    def undecided_everywhere(name, cand):
        engine = real(name, cand)
        block = engine.block
        engine.block = lambda q, out, prepared=None: np.full(len(q), np.inf) + 0 * block(q, out, prepared)
        return engine

    monkeypatch.setattr(precision, "product", undecided_everywhere)
    exact = score_run(path, pairs=pairs, metrics="map,mrr,recall@1,5,ndcg@10", precision="exact")
    assert np.array_equal(exact.metrics.nrel, fp32.metrics.nrel)
    assert np.allclose(exact.metrics.values, fp32.metrics.values, rtol=0, atol=1e-12, equal_nan=True)
    info = exact.precision
    assert info["candidate_gold_pairs"] == _candidate_gold_pairs(cols, exact.cells)
    assert info["undecided_pairs"] == _candidate_gold_pairs(cols, exact.cells, with_self=False) > 0
    assert info["undecided_fraction"] == info["undecided_pairs"] / info["candidate_gold_pairs"]
    assert info["ran"] == "exact" and info["device"] == "cpu" and info["recomputed_candidates"] > 0
    assert sum(exact.cell_stats[c]["undecided"] for c in exact.cells) == info["undecided_pairs"]
    for cell in exact.cells:
        assert exact.cell_stats[cell]["undecided"] == _candidate_gold_pairs(cols, [cell], with_self=False)


def test_unmodified_bound_decides_most_pairs(tmp_path, make_run):
    rng = np.random.default_rng(3)
    cols = _columns(3)
    cols["q_emb"] = rng.standard_normal(cols["q_emb"].shape).astype(np.float32)  # no ties: the bound decides
    cols["c_emb"] = rng.standard_normal(cols["c_emb"].shape).astype(np.float32)
    result = score_run(make_run(tmp_path, **cols), precision="exact")
    info = result.precision
    assert info["candidate_gold_pairs"] == _candidate_gold_pairs(cols, result.cells)
    assert 0 <= info["undecided_pairs"] < info["candidate_gold_pairs"] / 10
    assert info["undecided_fraction"] == info["undecided_pairs"] / info["candidate_gold_pairs"]


def test_cell_counters_hand_computed():
    # candidates: aa aa bb (3 in all); queries 0, 1 in aa, 2 in bb; relevant counts per set (aa, bb, all)
    nrel = np.array([[2, 1, 3], [0, 1, 1], [1, 0, 1]])
    undecided = np.array([[1, 0, 4], [0, 2, 2], [5, 0, 6]])
    cells = [Cell("aa", "aa"), Cell("aa", "bb"), Cell("aa", "all"), Cell("bb", "all")]
    query_lang_id = np.array([0, 0, 1])

    def cell_rows(cell):
        s = ["aa", "bb", "all"].index(cell.cand_lang)
        return s, np.flatnonzero((query_lang_id == ["aa", "bb"].index(cell.query_lang)) & (nrel[:, s] > 0))

    result = SimpleNamespace(cand_langs=["aa", "bb"], cells=cells, cell_rows=cell_rows,
                             run=SimpleNamespace(candidates=SimpleNamespace(lang_codes=lambda: (["aa", "bb"],
                                                                                               np.array([0, 0, 1])))),
                             metrics=SimpleNamespace(nrel=nrel), cell_stats={c: {} for c in cells})
    totals = cell_counters(result, undecided, ran="exact")
    # aa-aa: query 0 only (query 1 has no gold in aa): 1 undecided, 2 golds x 2 candidates
    # aa-bb: queries 0, 1: 0 + 2 undecided, (1 + 1) x 1;  aa-all: 4 + 2, (3 + 1) x 3;  bb-all: 6, 1 x 3
    assert [result.cell_stats[c]["undecided"] for c in cells] == [1, 2, 6, 6]
    assert totals == {"device": "cpu", "undecided_pairs": 15, "candidate_gold_pairs": 4 + 2 + 12 + 3,
                      "undecided_fraction": 15 / 21}
    assert "device" not in cell_counters(result, undecided)
    assert cell_counters(result, np.zeros_like(undecided))["undecided_fraction"] == 0.0


def test_auto_chooser_probe_and_later_blocks():
    from fastir.eval.certified import AUTO_MAX_RECOMPUTED, AutoChooser, Fixed, Float32Instead

    below, above = int(AUTO_MAX_RECOMPUTED * 1000), int(AUTO_MAX_RECOMPUTED * 1000) + 1
    leaving = AutoChooser("bf16", "why")
    with pytest.raises(Float32Instead, match="in the probe block"):
        leaving.observe("bf16", above, 1000)
    staying = AutoChooser("bf16", "why", may_leave=False)  # shards and ranks: certified throughout
    staying.observe("bf16", above, 1000)
    assert staying.current == "exact" and "certified float32" in staying.reason
    later = AutoChooser("bf16", "why")
    later.observe("bf16", below, 1000)
    assert later.current == "bf16"
    later.observe("bf16", above, 1000)
    assert later.current == "exact" and later.blocks == {"exact": 0, "bf16": 2, "int8": 0}
    later.observe("exact", 1000, 1000)  # float32 blocks never switch back
    assert later.current == "exact"
    fixed = Fixed("int8")
    fixed.observe("int8", 1000, 1000)
    assert fixed.current == "int8" and fixed.blocks == {"int8": 1}


def test_auto_chooser_times_the_probe_product():
    from fastir.eval.certified import AUTO_MAX_PRODUCT_SHARE, AutoChooser, Float32Instead

    fast = AutoChooser("bf16", "why")
    assert fast.probing("bf16") and not fast.probing("exact")
    fast.timed(0.4, 1.0)
    assert fast.current == "bf16" and fast.timing == "bf16 product 0.40x the float32 one on the probe block"
    fast.observe("bf16", 0, 1000)
    assert not fast.probing("bf16")
    slow = AutoChooser("bf16", "why")
    with pytest.raises(Float32Instead, match="not faster enough on this CPU"):
        slow.timed(AUTO_MAX_PRODUCT_SHARE + 0.1, 1.0)
    ranks = AutoChooser("bf16", "why", may_leave=False)  # shards and ranks keep certifying
    ranks.timed(2.0, 1.0)
    assert ranks.current == "bf16" and "2.00x" in ranks.timing
