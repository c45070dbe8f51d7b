"""The finalisers of fastir.kernels.ranking against sklearn and brute-force definitions, on scores with ties and graded golds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from fastir.kernels import ranking as fin


def case(rng, n_cand, n_golds, value_range, max_grade):
    """Integer scores (ties), gold columns with grades 0..max_grade, and the golds' ranks (ties against them)."""
    scores = rng.integers(-value_range, value_range + 1, n_cand).astype(np.float64)
    golds = rng.choice(n_cand, n_golds, replace=False)
    grade = rng.integers(0, max_grade + 1, n_golds).astype(np.int64)
    rank = np.array([(scores >= scores[g]).sum() for g in golds], dtype=np.int64)
    return scores, golds, grade, rank


def relevant_labels(n_cand, golds, grade, threshold):
    y = np.zeros(n_cand, bool)
    y[golds[grade >= threshold]] = True
    return y


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_cand=st.integers(1, 60), value_range=st.sampled_from([0, 1, 3, 1000]),
       max_grade=st.integers(1, 3), threshold=st.integers(1, 3), k=st.integers(1, 20))
def test_finalisers_against_references(seed, n_cand, value_range, max_grade, threshold, k):
    rng = np.random.default_rng(seed)
    n_golds = int(rng.integers(0, min(n_cand, 8) + 1))
    scores, golds, grade, rank = case(rng, n_cand, n_golds, value_range, max_grade)
    y = relevant_labels(n_cand, golds, grade, threshold)
    r = rank[grade >= threshold]
    values = {code: fin.finalise(code, rank, grade, threshold, k) for code in fin.FINALISERS.values()}
    if not y.any():
        assert all(np.isnan(v) for v in values.values())
        return
    assert values[fin.AP] == pytest.approx(average_precision_score(y, scores), abs=1e-12)
    assert values[fin.RR] == pytest.approx(1.0 / r.min(), abs=1e-15)
    assert values[fin.RECALL] == pytest.approx((r <= k).mean(), abs=1e-15)
    if len(r) >= 2:
        assert values[fin.RANK_DISTANCE] == r.max() - r.min()
    else:
        assert np.isnan(values[fin.RANK_DISTANCE])
    # nDCG@k by its definition, straight from the scores (ties: every tied gold at the block's last rank),
    # gain = grade (trec_eval ndcg_cut), ideal = the judged grades >= 1 sorted in decreasing order,
    # whatever the threshold (trec_eval's ndcg_cut ignores relevance_level).
    relevant = [(golds[i], int(grade[i])) for i in range(len(golds)) if grade[i] >= 1]
    dcg = sum(g / np.log2((scores >= scores[c]).sum() + 1) for c, g in relevant if (scores >= scores[c]).sum() <= k)
    ideal = sum(g / np.log2(i + 2) for i, g in enumerate(sorted((g for _, g in relevant), reverse=True)[:k]))
    assert values[fin.NDCG] == pytest.approx(dcg / ideal, abs=1e-12)


def test_hand_computed_ties_and_grades():
    # Scores 5, 3, 3, 1; golds: the two 3s (grade 2 and 1) and the 1 (grade 0, judged not relevant at threshold 1).
    rank = np.array([3, 3, 4], np.int64)
    grade = np.array([2, 1, 0], np.int64)
    assert fin.average_precision(rank, grade, 1, 0) == pytest.approx(2 / 3)  # hits 2 at rank 3, twice
    assert fin.reciprocal_rank(rank, grade, 1, 0) == pytest.approx(1 / 3)  # ties count against the gold
    assert fin.recall_at(rank, grade, 1, 2) == 0.0 and fin.recall_at(rank, grade, 1, 3) == 1.0
    assert fin.rank_distance(rank, grade, 1, 0) == 0.0
    # Threshold 2: only the first gold is relevant; the others are ordinary candidates.
    assert fin.average_precision(rank, grade, 2, 0) == pytest.approx(1 / 3)
    assert np.isnan(fin.rank_distance(rank, grade, 2, 0))
    assert np.isnan(fin.average_precision(rank, grade, 3, 0))  # nothing relevant
    # nDCG@3, gain = grade: both relevant golds at rank 3 -> DCG = (2 + 1) / log2(4) = 1.5;
    # IDCG = 2 / log2(2) + 1 / log2(3).
    assert fin.ndcg_at(rank, grade, 1, 3) == pytest.approx(1.5 / (2 + 1 / np.log2(3)))
    assert fin.ndcg_at(rank, grade, 1, 2) == 0.0 and np.isnan(fin.ndcg_at(rank, grade, 3, 2))
    # Threshold 2: the grade-1 gold still has gain 1 (as trec_eval ndcg_cut with relevance_level 2).
    assert fin.ndcg_at(rank, grade, 2, 3) == fin.ndcg_at(rank, grade, 1, 3)


def test_unknown_code_is_nan():
    assert np.isnan(fin.finalise(-1, np.array([1], np.int64), np.array([1], np.int64), 1, 1))


def xtreme_ap_at_k(relevant_rows, ranked_rows, k):
    """XTREME-R's LAReQA AP@k (google-research/xtreme, utils_lareqa.average_precision_at_k), restated:
    precision at each relevant row of the first k, summed, over min(|relevant|, k)."""
    hits, total = 0, 0.0
    for i, row in enumerate(ranked_rows[:k]):
        if row in relevant_rows:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant_rows), k)


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_cand=st.integers(1, 60), value_range=st.sampled_from([0, 1, 3, 1000]),
       max_grade=st.integers(1, 3), threshold=st.integers(1, 3), k=st.integers(1, 70))
def test_cutoff_variants_against_brute_force_with_ties(seed, n_cand, value_range, max_grade, threshold, k):
    """map@k, lareqa_map@k, mrr@k, p@k, success@k, judged@k by their definitions, straight from the
    scores: rank(d) = |{c : score(c) >= score(d)}| (ties against the gold), grade-0 golds judged."""
    rng = np.random.default_rng(seed)
    n_golds = int(rng.integers(0, min(n_cand, 8) + 1))
    scores, golds, grade, rank = case(rng, n_cand, n_golds, value_range, max_grade)
    got = {name: fin.finalise(fin.FINALISERS[name], rank, grade, threshold, k)
           for name in ("average_precision_at", "lareqa_average_precision_at", "reciprocal_rank_at", "precision_at",
                        "success_at", "judged_at")}
    rel = golds[grade >= threshold]
    if len(rel) == 0:
        assert all(np.isnan(v) for v in got.values())
        return
    pess = {int(c): int((scores >= scores[c]).sum()) for c in golds}  # each gold's rank, ties against it
    top_rel = [c for c in rel if pess[c] <= k]
    prec = sum(sum(pess[g] <= pess[c] for g in rel) / pess[c] for c in top_rel)
    assert got["average_precision_at"] == pytest.approx(prec / len(rel), abs=1e-12)
    assert got["lareqa_average_precision_at"] == pytest.approx(prec / min(len(rel), k), abs=1e-12)
    best = min(pess[c] for c in rel)
    assert got["reciprocal_rank_at"] == (1.0 / best if best <= k else 0.0)
    assert got["precision_at"] == pytest.approx(len(top_rel) / k, abs=1e-15)
    assert got["success_at"] == float(len(top_rel) > 0)
    assert got["judged_at"] == pytest.approx(sum(pess[int(c)] <= k for c in golds) / k, abs=1e-15)
    if k >= n_cand:  # the whole ranking: map@k is AP (= sklearn, ties included), mrr@k is RR
        assert got["average_precision_at"] == pytest.approx(fin.average_precision(rank, grade, threshold, 0), abs=1e-12)
        assert got["reciprocal_rank_at"] == fin.reciprocal_rank(rank, grade, threshold, 0)
    if value_range == 1000 and len(np.unique(scores)) == n_cand:  # tie-free: XTREME-R's own loop over the ranking
        order = list(np.argsort(-scores, kind="stable"))
        assert got["lareqa_average_precision_at"] == pytest.approx(xtreme_ap_at_k(set(rel), order, k), abs=1e-12)


def test_cutoff_variants_hand_computed():
    # Scores 5, 3, 3, 1 as above: golds the two 3s (grades 2, 1) at rank 3 and the 1 (grade 0) at rank 4.
    rank = np.array([3, 3, 4], np.int64)
    grade = np.array([2, 1, 0], np.int64)
    assert fin.average_precision_at(rank, grade, 1, 2) == 0.0  # both relevant golds past k = 2
    assert fin.average_precision_at(rank, grade, 1, 3) == pytest.approx(2 / 3)  # (2/3 + 2/3) / 2
    assert fin.average_precision_at(rank, grade, 2, 3) == pytest.approx(1 / 3)  # R = {grade 2}: hits 1 at rank 3
    assert fin.lareqa_average_precision_at(rank, grade, 1, 1) == 0.0
    assert fin.reciprocal_rank_at(rank, grade, 1, 2) == 0.0 and fin.reciprocal_rank_at(rank, grade, 1, 3) == 1 / 3
    assert fin.precision_at(rank, grade, 1, 3) == pytest.approx(2 / 3) and fin.precision_at(rank, grade, 1, 4) == 0.5
    assert fin.success_at(rank, grade, 1, 2) == 0.0 and fin.success_at(rank, grade, 1, 3) == 1.0
    assert fin.judged_at(rank, grade, 1, 3) == pytest.approx(2 / 3) and fin.judged_at(rank, grade, 1, 4) == 0.75
    assert np.isnan(fin.judged_at(rank, grade, 3, 4))  # no relevant gold: the query is not scored
