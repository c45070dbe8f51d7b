"""fastir.kernels.ranking / topk against brute-force numpy counts and sklearn's average_precision_score."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from fastir.eval.metrics import kernel_program, parse_metrics
from fastir.kernels.ranking import CHUNK, gold_rank_counts, metrics_from_counts
from fastir.kernels.topk import top_k_by_language

KS = (1, 2, 5, 10)


def measure(gold_ptr, gold_lang, cnt, want, ks):
    """(nrel, ap, rr, recall (B, sets, len(ks)), pooled rank distance (B,)) from the registry's finalisers."""
    metrics = parse_metrics(["map", "mrr", *(f"recall@{k}" for k in ks), "rank_distance"])
    nrel, values = metrics_from_counts(gold_ptr, gold_lang, cnt, want, kernel_program(metrics))
    return nrel, values[..., 0], values[..., 1], values[..., 2:-1], values[:, -1, -1]


def random_case(rng, n_rows, n_cand, n_langs, max_golds, value_range):
    """Integer-valued float32 scores (exact ties), languages, and a CSR of distinct gold columns."""
    scores = rng.integers(-value_range, value_range + 1, (n_rows, n_cand)).astype(np.float32)
    lang = rng.integers(0, n_langs, n_cand).astype(np.int32)
    ptr, cols = [0], []
    for _ in range(n_rows):
        m = int(rng.integers(0, min(max_golds, n_cand) + 1))
        cols += list(rng.choice(n_cand, m, replace=False))
        ptr.append(len(cols))
    return scores, lang, np.array(ptr, np.int64), np.array(cols, np.int64)


def brute_counts(scores, lang, ptr, cols, n_langs):
    cnt = np.zeros((len(cols), n_langs), np.int64)
    gcnt = np.zeros((len(cols), n_langs), np.int64)
    for b in range(len(ptr) - 1):
        golds = cols[ptr[b]:ptr[b + 1]]
        for j in range(ptr[b], ptr[b + 1]):
            s = scores[b, cols[j]]
            for L in range(n_langs):
                cnt[j, L] = np.sum((scores[b] >= s) & (lang == L))
                gcnt[j, L] = np.sum((scores[b, golds] >= s) & (lang[golds] == L))
    return cnt, gcnt


def check_against_references(scores, lang, ptr, cols, n_langs):
    cnt, gcnt = gold_rank_counts(scores, lang, ptr, cols, n_langs)
    want_cnt, want_gcnt = brute_counts(scores, lang, ptr, cols, n_langs)
    np.testing.assert_array_equal(cnt, want_cnt)
    np.testing.assert_array_equal(gcnt, want_gcnt)
    want = np.ones((len(ptr) - 1, n_langs + 1), bool)
    nrel, ap, rr, recall, rd = measure(ptr, lang[cols], cnt, want, KS)
    for b in range(len(ptr) - 1):
        golds = cols[ptr[b]:ptr[b + 1]]
        for s in range(n_langs + 1):
            members = np.ones(len(lang), bool) if s == n_langs else lang == s
            y = np.zeros(len(lang), bool)
            y[golds] = True
            y = y[members]
            row = scores[b, members]
            assert nrel[b, s] == y.sum()
            if not y.any():
                assert np.isnan(ap[b, s]) and np.isnan(rr[b, s]) and np.isnan(recall[b, s]).all()
                continue
            assert ap[b, s] == pytest.approx(average_precision_score(y, row), abs=1e-12)
            ranks = np.array([(row >= v).sum() for v in row[y]])
            assert rr[b, s] == pytest.approx(1.0 / ranks.min(), abs=1e-15)
            np.testing.assert_allclose(recall[b, s], [(ranks <= k).mean() for k in KS], atol=1e-15)
            if s == n_langs:
                if y.sum() >= 2:
                    assert rd[b] == ranks.max() - ranks.min()
                else:
                    assert np.isnan(rd[b])


def test_hand_computed_ties():
    # Candidates: scores 5, 3, 3, 1 (one language). Golds: columns 1 and 2, tied at 3.
    # rank = 3 for both (ties count against the gold), hits = 2 -> AP = 2/3, RR = 1/3.
    scores = np.array([[5, 3, 3, 1]], np.float32)
    lang = np.zeros(4, np.int32)
    ptr, cols = np.array([0, 2]), np.array([1, 2])
    cnt, gcnt = gold_rank_counts(scores, lang, ptr, cols, 1)
    assert cnt[:, 0].tolist() == [3, 3] and gcnt[:, 0].tolist() == [2, 2]
    nrel, ap, rr, recall, rd = measure(ptr, lang[cols], cnt, np.ones((1, 2), bool), (1, 3))
    assert ap[0, 0] == pytest.approx(2 / 3) and rr[0, 0] == pytest.approx(1 / 3)
    assert recall[0, 0].tolist() == [0.0, 1.0]
    assert rd[0] == 0.0
    assert ap[0, 0] == pytest.approx(average_precision_score([0, 1, 1, 0], [5, 3, 3, 1]))


def test_hand_computed_languages():
    # Two languages; query golds: col 0 (lang 0, score 4) and col 3 (lang 1, score 1).
    # lang 0 scores 4, 2; lang 1 scores 6, 1, 0. Pooled ranks: gold(4) -> 2, gold(1) -> 4.
    scores = np.array([[4, 2, 6, 1, 0]], np.float32)
    lang = np.array([0, 0, 1, 1, 1], np.int32)
    ptr, cols = np.array([0, 2]), np.array([0, 3])
    cnt, gcnt = gold_rank_counts(scores, lang, ptr, cols, 2)
    assert cnt.tolist() == [[1, 1], [2, 2]]
    nrel, ap, rr, recall, rd = measure(ptr, lang[cols], cnt, np.ones((1, 3), bool), (1,))
    assert nrel[0].tolist() == [1, 1, 2]
    assert ap[0].tolist() == pytest.approx([1.0, 0.5, (1 / 2 + 2 / 4) / 2])
    assert rr[0].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert rd[0] == 2.0


def test_random_against_sklearn_across_chunks():
    rng = np.random.default_rng(7)
    # More candidates than one CHUNK per language, so chunk boundaries and recounts are exercised.
    check_against_references(*random_case(rng, 12, 3 * CHUNK + 17, 3, 11, 4), n_langs=3)
    check_against_references(*random_case(rng, 8, 2 * CHUNK, 1, 11, 50), n_langs=1)


def test_metrics_respect_want_mask():
    rng = np.random.default_rng(3)
    scores, lang, ptr, cols = random_case(rng, 6, 40, 2, 5, 3)
    cnt, gcnt = gold_rank_counts(scores, lang, ptr, cols, 2)
    want = np.zeros((6, 3), bool)
    want[:, 2] = True
    nrel, ap, *_ = measure(ptr, lang[cols], cnt, want, KS)
    assert np.isnan(ap[:, :2]).all() and (nrel[:, :2] == 0).all()
    assert (nrel[:, 2] == np.diff(ptr)).all()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_rows=st.integers(1, 6),
    n_cand=st.integers(1, 150),
    n_langs=st.integers(1, 4),
    max_golds=st.integers(0, 11),
    value_range=st.sampled_from([0, 1, 3, 1000]),
)
def test_property_against_brute_force_and_sklearn(seed, n_rows, n_cand, n_langs, max_golds, value_range):
    rng = np.random.default_rng(seed)
    check_against_references(*random_case(rng, n_rows, n_cand, n_langs, max_golds, value_range), n_langs=n_langs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_cand=st.integers(1, 120), k=st.integers(1, 30), n_langs=st.integers(1, 3))
def test_top_k_matches_lexsort(seed, n_cand, k, n_langs):
    rng = np.random.default_rng(seed)
    scores = rng.integers(-3, 4, (4, n_cand)).astype(np.float32)
    lang = rng.integers(0, n_langs, n_cand).astype(np.int32)
    want = np.ones((1, n_langs + 1), bool)
    top_score, top_col, top_len = top_k_by_language(scores, lang, want, np.zeros(4, np.int32), k)
    for b in range(4):
        for s in range(n_langs + 1):
            members = np.flatnonzero(np.ones(n_cand, bool) if s == n_langs else lang == s)
            expect = members[np.lexsort((members, -scores[b, members]))][:k]
            assert top_len[b, s] == len(expect)
            assert top_col[b, s, :len(expect)].tolist() == expect.tolist()
            assert top_score[b, s, :len(expect)].tolist() == scores[b, expect].tolist()


def test_metrics_from_ranks_equal_metrics_from_counts():
    """Ranks summed from the per-language counts give the same values through either entry point."""
    from fastir.eval.metrics import kernel_program, parse_metrics
    from fastir.kernels.ranking import NOT_IN_SET, metrics_from_counts, metrics_from_ranks

    rng = np.random.default_rng(4)
    n_langs, n_rows = 3, 20
    scores = rng.integers(0, 4, (n_rows, 50)).astype(np.float32)
    cand_lang = rng.integers(0, n_langs, 50)
    counts = rng.integers(1, 5, n_rows)
    gold_ptr = np.concatenate(([0], np.cumsum(counts)))
    gold_col = np.concatenate([rng.choice(50, c, replace=False) for c in counts])
    cnt, _ = gold_rank_counts(scores, cand_lang, gold_ptr, gold_col, n_langs)
    gold_lang = cand_lang[gold_col]
    grade = rng.integers(1, 3, len(gold_col))
    program = kernel_program(parse_metrics("map,mrr,recall@3,ndcg@5,rank_distance"))
    want = np.ones((n_rows, n_langs + 1), bool)
    ranks = np.full((len(gold_col), n_langs + 1), NOT_IN_SET, np.int64)
    ranks[np.arange(len(gold_col)), gold_lang] = cnt[np.arange(len(gold_col)), gold_lang]
    ranks[:, n_langs] = cnt.sum(axis=1)
    a = metrics_from_counts(gold_ptr, gold_lang, cnt, want, program, grade, 2)
    b = metrics_from_ranks(gold_ptr, grade, ranks, program, 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
