"""fastir.kernels.ties: the golds' ranks under each tie mode against brute force, the expected finalisers
against the mean over many random orders of the ties, and optimistic >= expected >= pessimistic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.eval.metrics import expected_program, kernel_program, parse_metrics
from fastir.kernels.ranking import NOT_IN_SET, UNRANKED, metrics_from_ranks
from fastir.kernels.ties import MODES, expected_metrics, run_ranks

METRICS = parse_metrics("map,mrr,recall@1,3,8,ndcg@1,3,10,rank_distance")


def one_query(rng, n_docs, n_langs, value_range, unretrieved):
    """A query's run (trec_eval order: score desc, then a fixed tie order), its golds and their grades."""
    score = np.sort(rng.integers(0, value_range + 1, n_docs).astype(np.float64))[::-1].copy()
    lang = rng.integers(0, n_langs + 1, n_docs).astype(np.int32)  # n_langs: a language of no gold
    n_golds = int(rng.integers(1, min(n_docs, 6) + 1))
    at = rng.choice(n_docs, n_golds, replace=False)
    lang[at] = rng.integers(0, n_langs, n_golds)
    gold = np.full(n_docs, -1, np.int64)
    gold[at] = np.arange(n_golds)
    gold_lang = lang[at].astype(np.int32)
    grade = rng.integers(1, 4, n_golds).astype(np.int64)
    if unretrieved:  # one gold more, not in the run
        gold_lang = np.append(gold_lang, np.int32(rng.integers(0, n_langs)))
        grade = np.append(grade, np.int64(rng.integers(1, 4)))
    return score, lang, gold, gold_lang, grade


def ranks_of_order(order, score, lang, gold, gold_lang, n_langs):
    """Each gold's rank per set when the run's lines come in ``order`` (a permutation)."""
    ranks = np.full((len(gold_lang), n_langs + 1), NOT_IN_SET, np.int64)
    for j, lg in enumerate(gold_lang):
        ranks[j, lg] = ranks[j, n_langs] = UNRANKED
    seen = np.zeros(n_langs + 1, np.int64)
    for t in order:
        if lang[t] < n_langs:
            seen[lang[t]] += 1
        seen[n_langs] += 1
        if gold[t] >= 0:
            ranks[gold[t], lang[t]] = seen[lang[t]]
            ranks[gold[t], n_langs] = seen[n_langs]
    return ranks


def values(mode, score, lang, gold, gold_lang, grade, n_langs, threshold=1):
    q_ptr = np.array([0, len(score)])
    gold_ptr = np.array([0, len(grade)])
    ranks, tied, ndocs = run_ranks(q_ptr, score, lang, gold, gold_ptr, gold_lang, grade, n_langs, MODES[mode])
    assert ndocs[0, n_langs] == len(score)
    if mode == "expected":
        return expected_metrics(gold_ptr, grade, ranks, tied, expected_program(METRICS), threshold)[1][0]
    return metrics_from_ranks(gold_ptr, grade, ranks, kernel_program(METRICS), threshold)[1][0]


def test_trec_eval_mode_is_the_run_order_and_pessimistic_counts_ties_against_the_gold():
    rng = np.random.default_rng(3)
    for _ in range(50):
        score, lang, gold, gold_lang, grade = one_query(rng, 30, 3, 4, unretrieved=True)
        q_ptr, gold_ptr = np.array([0, 30]), np.array([0, len(grade)])
        trec = run_ranks(q_ptr, score, lang, gold, gold_ptr, gold_lang, grade, 3, MODES["trec_eval"])[0]
        np.testing.assert_array_equal(trec, ranks_of_order(np.arange(30), score, lang, gold, gold_lang, 3))
        pess = run_ranks(q_ptr, score, lang, gold, gold_ptr, gold_lang, grade, 3, MODES["pessimistic"])[0]
        for t in np.flatnonzero(gold >= 0):
            j = gold[t]
            assert pess[j, 3] == (score >= score[t]).sum()
            assert pess[j, lang[t]] == ((score >= score[t]) & (lang == lang[t])).sum()
        assert (pess[-1] == trec[-1]).all() and UNRANKED in pess[-1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_docs=st.integers(1, 12), value_range=st.sampled_from([0, 1, 2, 5]),
       threshold=st.integers(1, 2), unretrieved=st.booleans())
def test_expected_is_the_mean_over_random_tie_orders(seed, n_docs, value_range, threshold, unretrieved):
    rng = np.random.default_rng(seed)
    score, lang, gold, gold_lang, grade = one_query(rng, n_docs, 2, value_range, unretrieved)
    program = kernel_program(METRICS)
    gold_ptr = np.array([0, len(grade)])
    draws = []
    for _ in range(2500):  # a random order inside every tie group: sort by (score desc, random key)
        order = np.lexsort((rng.random(n_docs), -score))
        ranks = ranks_of_order(order, score, lang, gold, gold_lang, 2)
        draws.append(metrics_from_ranks(gold_ptr, grade, ranks, program, threshold)[1][0])
    draws = np.array(draws)
    got = values("expected", score, lang, gold, gold_lang, grade, 2, threshold)
    with np.errstate(invalid="ignore"):
        mean, sd = draws.mean(axis=0), draws.std(axis=0)
    finite = ~np.isnan(got)
    assert (np.isnan(mean) == ~finite).all()
    if unretrieved:  # rank distance: the huge sentinel rank of the unretrieved gold; skip that column
        finite[:, -1] = False
    bound = 5 * sd[finite] / np.sqrt(len(draws)) + 1e-9
    assert (np.abs(got[finite] - mean[finite]) <= bound).all()


def test_expected_is_exact_on_a_hand_computed_tie():
    # 4 tied documents, golds 2 of them (grade 1): AP = E over the 6 placements; RR = sum P(first at j) / j.
    score = np.zeros(4)
    lang = np.zeros(4, np.int32)
    gold = np.array([0, -1, 1, -1])
    got = values("expected", score, lang, gold, np.zeros(2, np.int32), np.ones(2, np.int64), 1)
    placements = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    ap = np.mean([(1 / a + 2 / b) / 2 for a, b in placements])
    rr = np.mean([1 / a for a, _ in placements])
    assert got[1, 0] == pytest.approx(ap, abs=1e-15)
    assert got[1, 1] == pytest.approx(rr, abs=1e-15)
    assert got[1, 2] == pytest.approx(np.mean([(a == 1) / 2 for a, _ in placements]), abs=1e-15)  # recall@1
    assert got[1, -1] == pytest.approx(np.mean([b - a for a, b in placements]), abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_docs=st.integers(1, 40), value_range=st.sampled_from([0, 1, 3, 100]),
       unretrieved=st.booleans())
def test_optimistic_at_least_expected_at_least_pessimistic(seed, n_docs, value_range, unretrieved):
    rng = np.random.default_rng(seed)
    case = one_query(rng, n_docs, 2, value_range, unretrieved)
    opt, exp, pes = (values(mode, *case, 2) for mode in ("optimistic", "expected", "pessimistic"))
    quality = [i for i, m in enumerate(METRICS) if m.higher_is_better]
    known = ~np.isnan(exp[:, quality])
    assert (opt[:, quality][known] >= exp[:, quality][known] - 1e-12).all()
    # expected >= pessimistic for every metric but AP: pessimistic AP (sklearn's, all tied golds at the tie's
    # end, each with every tied gold counted) can exceed the mean over orders (see the next test)
    no_ap = [i for i in quality if METRICS[i].name != "map"]
    known = ~np.isnan(exp[:, no_ap])
    assert (exp[:, no_ap][known] >= pes[:, no_ap][known] - 1e-12).all()


def test_pessimistic_ap_is_sklearns_and_may_exceed_the_expected_ap():
    # One document above two tied golds: any order puts them at 2 and 3 (AP (1/2 + 2/3) / 2); pessimistic
    # AP counts both at rank 3 with 2 hits (2/3), as sklearn's average_precision_score does.
    score = np.array([2.0, 1.0, 1.0])
    case = (score, np.zeros(3, np.int32), np.array([-1, 0, 1]), np.zeros(2, np.int32), np.ones(2, np.int64))
    assert values("pessimistic", *case, 1)[1, 0] == pytest.approx(2 / 3)
    assert values("expected", *case, 1)[1, 0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert values("optimistic", *case, 1)[1, 0] == pytest.approx((1 / 2 + 2 / 3) / 2)
