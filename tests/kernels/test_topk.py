"""fastir.kernels.topk: the top k of each score row per candidate language and pooled, against numpy's
stable argsort (score descending, then column ascending), on rows full of ties, with query groups that
want only some sets, and k beyond a set's size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.kernels.topk import top_k_by_language


def reference(scores, lang, want, group, k):
    """Per row b and set s wanted by b's group: a stable argsort of -score over the set's columns."""
    n_sets = want.shape[1]
    out = {}
    for b in range(scores.shape[0]):
        for s in range(n_sets):
            if not want[group[b], s]:
                continue
            members = np.arange(scores.shape[1]) if s == n_sets - 1 else np.flatnonzero(lang == s)
            order = members[np.argsort(-scores[b, members], kind="stable")][:k]
            out[(b, s)] = order
    return out


def check(scores, lang, want, group, k):
    t_score, t_col, t_len = top_k_by_language(scores, lang, want, group, k)
    n_sets = want.shape[1]
    assert t_score.shape == t_col.shape == (scores.shape[0], n_sets, k) and t_len.shape == (scores.shape[0], n_sets)
    assert t_score.dtype == np.float32 and t_col.dtype == np.int32 and t_len.dtype == np.int32
    ref = reference(scores, lang, want, group, k)
    for b in range(scores.shape[0]):
        for s in range(n_sets):
            if (b, s) not in ref:
                assert t_len[b, s] == 0  # a set the row's group does not want is left empty
                continue
            expect = ref[(b, s)]
            n = t_len[b, s]
            assert n == len(expect)
            assert t_col[b, s, :n].tolist() == expect.tolist(), (b, s)
            assert t_score[b, s, :n].tolist() == scores[b, expect].tolist()


def test_hand_computed_ties():
    # columns: 0 1 2 3 4 5, languages 0 1 0 1 0 1
    scores = np.array([[3, 5, 5, 3, 5, 1]], np.float32)
    lang = np.array([0, 1, 0, 1, 0, 1], np.int32)
    want = np.ones((1, 3), bool)
    t_score, t_col, t_len = top_k_by_language(scores, lang, want, np.zeros(1, np.int32), 4)
    assert t_col[0, 2].tolist() == [1, 2, 4, 0]  # pooled: the three 5s by column, then the first 3
    assert t_col[0, 0, :3].tolist() == [2, 4, 0] and t_len[0, 0] == 3  # language 0 has three columns only
    assert t_col[0, 1, :3].tolist() == [1, 3, 5] and t_len[0, 1] == 3
    assert t_score[0, 2].tolist() == [5, 5, 5, 3]


@pytest.mark.parametrize("k", [1, 2, 7, 50])
def test_every_score_equal(k):
    scores = np.zeros((3, 20), np.float32)
    lang = np.arange(20, dtype=np.int32) % 2
    check(scores, lang, np.ones((1, 3), bool), np.zeros(3, np.int32), k)


def test_query_groups_want_different_sets():
    rng = np.random.default_rng(3)
    scores = rng.integers(-2, 3, (6, 40)).astype(np.float32)
    lang = rng.integers(0, 3, 40).astype(np.int32)
    want = np.array([[True, False, False, False],    # group 0: its own language only
                     [False, False, False, True],    # group 1: pooled only
                     [False, True, True, True],      # group 2: two languages and pooled
                     [False, False, False, False]])  # group 3: nothing
    check(scores, lang, want, np.array([0, 1, 2, 3, 2, 0], np.int32), 5)


def test_negative_infinite_and_extreme_scores():
    scores = np.array([[-np.inf, -3.4e38, 3.4e38, -np.inf, 0.0, -0.0, 1e-45]], np.float32)
    lang = np.zeros(7, np.int32)
    check(scores, lang, np.ones((1, 2), bool), np.zeros(1, np.int32), 7)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(1, 5), n_cand=st.integers(1, 90), k=st.integers(1, 25),
       n_langs=st.integers(1, 4), levels=st.sampled_from([1, 2, 4, 1000]))
def test_random_blocks_against_stable_argsort(seed, n_rows, n_cand, k, n_langs, levels):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, (n_rows, n_cand)).astype(np.float32)
    lang = rng.integers(0, n_langs, n_cand).astype(np.int32)
    want = rng.random((2, n_langs + 1)) < 0.7
    check(scores, lang, want, rng.integers(0, 2, n_rows).astype(np.int32), k)


def test_inputs_of_other_dtypes_and_layouts_are_converted():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((4, 30))  # float64, then a non-contiguous view
    lang = rng.integers(0, 2, 30)  # int64
    want = np.ones((1, 3), np.int8)
    got = top_k_by_language(scores[:, ::1].T.copy().T, lang, want, [0, 0, 0, 0], 6)
    want_out = top_k_by_language(scores.astype(np.float32), lang.astype(np.int32), np.ones((1, 3), bool),
                                 np.zeros(4, np.int32), 6)
    for a, b in zip(got, want_out):
        np.testing.assert_array_equal(a, b)
