"""fastir.kernels.preference against scipy (Spearman, average ranks), the MLRS loop of the paper's code
(restated) and brute-force definitions, on integer scores with many ties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata, spearmanr

from fastir.kernels import preference as pref


def tied_scores(rng, rows, n, value_range):
    return rng.integers(-value_range, value_range + 1, (rows, n)).astype(np.float32)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 50), value_range=st.sampled_from([0, 1, 2, 1000]))
def test_average_ranks_equal_scipy_rankdata(seed, n, value_range):
    x = tied_scores(np.random.default_rng(seed), 1, n, value_range)[0]
    assert np.array_equal(pref.average_ranks(x), rankdata(x))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), value_range=st.sampled_from([0, 1, 2, 1000]))
def test_mean_rank_correlation_equals_scipy_spearmanr(seed, n, value_range):
    """Per row: the mean of scipy's Spearman correlation with each other row of its group, over the
    rows where it is defined (a constant row has none: NaN)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, int(rng.integers(1, 5)))
    group_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    scores = tied_scores(rng, int(group_ptr[-1]), n, value_range)
    if value_range == 1 and len(scores) > 1:
        scores[1] = 0.0  # a constant row: no correlation with it
    got = pref.mean_rank_correlation(scores, group_ptr)
    for g in range(len(sizes)):
        members = range(group_ptr[g], group_ptr[g + 1])
        for a in members:
            rc = [spearmanr(scores[a], scores[b]).statistic for b in members if b != a
                  and np.ptp(scores[a]) > 0 and np.ptp(scores[b]) > 0]
            if rc:
                assert got[a] == pytest.approx(np.mean(rc), abs=1e-12)
            else:
                assert np.isnan(got[a])


def test_mean_rank_correlation_hand_computed():
    scores = np.array([[3, 2, 1, 0], [0, 1, 2, 3], [3, 2, 1, 0], [5, 5, 1, 1]], np.float32)
    got = pref.mean_rank_correlation(scores, np.array([0, 3, 4]))
    assert got[:3].tolist() == pytest.approx([0.0, -1.0, 0.0]) and np.isnan(got[3])  # (-1 + 1) / 2; alone: NaN


def ranking(row):
    """Columns by score descending, ties by column ascending."""
    return sorted(range(len(row)), key=lambda c: (-float(row[c]), c))


def mlrs_reference(row, target_col, k):
    """The score loop of jeonghyunpark2002/LanguagePreference mlrs.py, restated: initial ranks 1..K,
    re-ranked by the replaced candidates' scores with Python's stable sort (reverse=True keeps ties
    in the initial order), sum of max(initial - new, 0) over sum of (initial - 1); divided by 100."""
    passages = [{"initial_rank": i + 1, "score": float(row[target_col[c]])} for i, c in enumerate(ranking(row)[:k])]
    if any(target_col[c] < 0 for c in ranking(row)[:k]):
        return np.nan
    ranked = sorted(passages, key=lambda p: p["score"], reverse=True)
    improvement = sum(max(p["initial_rank"] - new, 0) for new, p in enumerate(ranked, start=1))
    most = sum(p["initial_rank"] - 1 for p in passages)
    return improvement / most if most > 0 else 0.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_items=st.integers(1, 12), n_langs=st.integers(1, 4),
       value_range=st.sampled_from([1, 3, 1000]), k=st.integers(1, 30), pivot=st.integers(0, 3))
def test_pivot_share_and_mlrs_against_references(seed, n_items, n_langs, value_range, k, pivot):
    """A parallel pool: item i in language L is column i * n_langs + L; target language 0 (its column
    of item i is i * n_langs); some items lack a target version (-1)."""
    rng = np.random.default_rng(seed)
    n = n_items * n_langs
    scores = tied_scores(rng, 3, n, value_range)
    c_lang = np.tile(np.arange(n_langs, dtype=np.int32), n_items)
    missing = rng.random(n_items) < 0.2
    target_col = np.array([-1 if missing[c // n_langs] else (c // n_langs) * n_langs for c in range(n)], np.int64)
    share, shift = pref.top_measures(scores, c_lang, pivot, k, target_col, k)
    for b in range(3):
        top = ranking(scores[b])[:min(k, n)]
        assert share[b] == pytest.approx(np.mean([c_lang[c] == pivot for c in top]), abs=1e-15)
        expect = mlrs_reference(scores[b], target_col, k)
        assert (np.isnan(shift[b]) and np.isnan(expect)) or shift[b] == pytest.approx(expect, abs=1e-15)
    share, shift = pref.top_measures(scores, c_lang, -1, k)
    assert np.isnan(share).all() and np.isnan(shift).all()


def test_mlrs_hand_computed():
    # Top 3: columns 0, 1, 2 (scores 9, 8, 7); their target versions 5, 4, 3 score 1, 2, 3: fully reversed.
    row = np.array([9, 8, 7, 3, 2, 1], np.float32)
    target = np.array([5, 4, 3, 3, 4, 5], np.int64)
    assert pref.mlrs(row, target, 3) == pytest.approx(2 / 3)  # initial 3 -> new 1 (+2), 2 -> 2, 1 -> 3; max 0 + 1 + 2
    assert pref.mlrs(row, np.arange(6), 3) == 0.0  # every candidate already in the target: no move
    assert pref.mlrs(row, target, 1) == 0.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_golds=st.integers(0, 8), n_langs=st.integers(1, 4),
       value_range=st.sampled_from([0, 1, 1000]))
def test_query_language_preference_against_brute_force(seed, n_golds, n_langs, value_range):
    rng = np.random.default_rng(seed)
    gold_score = rng.integers(-value_range, value_range + 1, n_golds).astype(np.float32)
    gold_lang = rng.integers(0, n_langs, n_golds).astype(np.int32)
    q_lang = int(rng.integers(-1, n_langs))
    pairs = [(gold_score[i] > gold_score[j]) for i in range(n_golds) for j in range(n_golds)
             if gold_lang[i] == q_lang and gold_lang[j] != q_lang]
    got = pref.query_language_preferences(gold_score, gold_lang, np.array([0, n_golds]), np.array([q_lang]))[0]
    assert (np.isnan(got) and not pairs) or got == pytest.approx(np.mean(pairs), abs=1e-15)
