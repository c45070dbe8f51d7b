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
