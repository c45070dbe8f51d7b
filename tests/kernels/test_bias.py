"""fastir.kernels.bias against brute-force numpy / scipy references, on scores with ties.

References: the strict pooled order by ``np.lexsort`` (score descending, candidate row ascending),
Jensen-Shannon divergence as ``scipy.spatial.distance.jensenshannon(p, t, base=2) ** 2`` (scipy
returns the distance, the square root of the divergence), and PEER re-implemented from the formulas
of hltcoe/peer_measure (its ``kruskal`` and ``assign_rels_langs_ranks``) with scipy's chi-squared tail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2

from fastir.kernels import bias


# ------------------------------------------------------------------------------- references


def strict_order(row_scores, col_row):
    """Columns by score descending, then candidate row ascending."""
    return np.lexsort((col_row, -row_scores.astype(np.float64)))


def peer_kruskal_reference(samples):
    """hltcoe/peer_measure's kruskal p-value: ``samples`` = one list per language, NaN = unretrieved."""
    flat = [x for s in samples for x in s]
    if not flat or all(math.isnan(x) for x in flat):
        return 1.0
    total = sum(len(s) for s in samples)  # the reference's max_rank: a count, not the largest rank
    missing = [sum(math.isnan(x) for x in s) for s in samples]
    filler = (2 * total + sum(missing) + 1) / 2
    groups = [np.asarray([x for x in s if not math.isnan(x)] + [filler] * u, dtype=float)
              for s, u in zip(samples, missing)]
    groups = [g for g in groups if len(g)]
    if len(groups) < 2:
        return 1.0
    sizes = np.array([len(g) for g in groups], dtype=float)
    data = np.concatenate(groups)
    grand = data.mean()
    between = (np.array([g.mean() for g in groups]) - grand) ** 2 @ sizes
    within = ((data - grand) ** 2).sum()
    if within == 0:  # every value equal: the reference divides 0 by 0 (NaN); fastir documents p = 1 here
        return 1.0
    return float(chi2.sf((sizes.sum() - 1) * between / within, len(groups) - 1))


def peer_reference(ranked_docs, qrel, doc_lang, langs, k, weights):
    """PEER@k of one query: ``ranked_docs`` the run best first, ``qrel`` doc -> level (0 = not
    relevant; unjudged docs are level 0), ``weights`` level -> weight."""
    levels = set(qrel.values()) | {0}
    ranks = {level: {lang: [] for lang in langs} for level in levels}
    top = ranked_docs[:k]
    for i, doc in enumerate(top):
        ranks[qrel.get(doc, 0)][doc_lang[doc]].append(i + 1)
    retrieved = set(top)
    for doc, level in qrel.items():
        if level > 0 and doc not in retrieved:
            ranks[level][doc_lang[doc]].append(float("nan"))
    return sum(peer_kruskal_reference(list(by_lang.values())) * weights.get(level, 0)
               for level, by_lang in ranks.items())


def reference_values(row_scores, col_row, c_lang, golds, grades, threshold, q_lang, n_langs, k):
    order = strict_order(row_scores, col_row)
    top = order[:k]
    n = len(top)
    langs = c_lang[top]
    relevant = [g for g, gr in zip(golds, grades) if gr >= threshold]
    e = np.bincount(langs, weights=1.0 / np.log2(np.arange(n) + 2.0), minlength=n_langs)
    p = e / e.sum()
    r = np.bincount(c_lang[relevant], minlength=n_langs) / len(relevant)
    qrel = {int(g): 1 for g in relevant}
    doc_lang = {c: int(c_lang[c]) for c in range(len(c_lang))}
    ranked = [int(c) for c in order]
    return {
        "same_language_share": float((langs == q_lang).sum() / n),
        "exposure_jsd_uniform": float(jensenshannon(p, np.full(n_langs, 1.0 / n_langs), base=2) ** 2),
        "exposure_jsd_relevant": float(jensenshannon(p, r, base=2) ** 2),
        "peer": peer_reference(ranked, qrel, doc_lang, range(n_langs), k, {0: 0.5, 1: 0.5}),
        "peer_nonrelevant": peer_reference(ranked, qrel, doc_lang, range(n_langs), k, {0: 1.0}),
    }


def run_kernel(scores, col_row, c_lang, gold_lists, grade_lists, threshold, q_lang, n_langs, ks):
    names = list(bias.FINALISERS)
    codes = np.array([bias.FINALISERS[n] for n in names for _ in ks], np.int64)
    cutoffs = np.array([k for _ in names for k in ks], np.int64)
    index = np.arange(len(codes), dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum([len(g) for g in gold_lists])]).astype(np.int64)
    gold_col = np.concatenate([np.asarray(g, np.int64) for g in gold_lists]) if ptr[-1] else np.zeros(0, np.int64)
    gold_grade = np.concatenate([np.asarray(g, np.int64) for g in grade_lists]) if ptr[-1] else np.zeros(0, np.int64)
    b = scores.shape[0]
    values = np.full((b, n_langs + 1, len(codes)), np.nan)
    active = np.array([any(gr >= threshold for gr in g) for g in grade_lists])
    bias.bias_block(scores, col_row, c_lang, ptr, gold_col, gold_grade, np.arange(b), q_lang, active,
                    (codes, cutoffs, index), threshold, values)
    assert np.isnan(values[:, :n_langs]).all()
    return {(name, k): values[:, n_langs, i] for i, (name, k) in enumerate((n, k) for n in names for k in ks)}, active


# ----------------------------------------------------------------------------------- tests


def test_chi2_sf_equals_scipy():
    for df in range(1, 64):
        for x in (0.0, 1e-12, 1e-3, 0.5, 1.0, df - 1.0, df, 3.0 * df, 40.0, 250.0, 1200.0):
            assert bias.chi2_sf(float(x), df) == pytest.approx(chi2.sf(x, df), rel=1e-11, abs=1e-14)
    assert np.isnan(bias.chi2_sf(np.nan, 3))


def test_top_k_over_many_chunks_equals_a_full_sort():
    """Rows longer than the kernel's chunk (64): chunks skipped once the heap is full lose nothing."""
    rng = np.random.default_rng(4)
    for value_range in (2, 50, 10**6):
        scores = rng.integers(-value_range, value_range + 1, (8, 1000)).astype(np.float32)
        col_row = rng.permutation(1000)
        for k in (1, 7, 64, 65, 300):
            want = [strict_order(r, col_row)[:k].tolist() for r in scores]
            assert bias.pooled_top_k(scores, col_row, k).tolist() == want


def test_top_k_breaks_ties_by_candidate_row():
    scores = np.array([[1, 3, 3, 2, 3, 3]], np.float32)
    col_row = np.array([5, 4, 3, 2, 1, 0])  # columns in an order other than the rows (language-grouped)
    assert bias.pooled_top_k(scores, col_row, 4).tolist() == [[5, 4, 2, 1]]
    assert bias.pooled_top_k(scores, col_row, 10).tolist() == [strict_order(scores[0], col_row).tolist()]


def random_case(rng, n_q, n_c, n_langs, value_range):
    """Integer scores in [-value_range, value_range] (many ties), a column order, candidate languages, up to
    9 golds per query with grades 1-2, and query languages (-1: none of the candidates')."""
    scores = rng.integers(-value_range, value_range + 1, (n_q, n_c)).astype(np.float32)
    col_row = rng.permutation(n_c)
    c_lang = rng.integers(0, n_langs, n_c).astype(np.int32)
    gold_lists, grade_lists = [], []
    for _ in range(n_q):
        m = int(rng.integers(0, min(n_c, 9) + 1))
        gold_lists.append(list(rng.choice(n_c, m, replace=False)))
        grade_lists.append(list(rng.integers(1, 3, m)))
    return scores, col_row, c_lang, gold_lists, grade_lists, rng.integers(-1, n_langs, n_q)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_q=st.integers(1, 6), n_c=st.integers(1, 300), n_langs=st.integers(1, 4),
       value_range=st.sampled_from([0, 1, 2, 1000]), threshold=st.integers(1, 2))
def test_bias_metrics_against_brute_force(seed, n_q, n_c, n_langs, value_range, threshold):
    rng = np.random.default_rng(seed)
    scores, col_row, c_lang, gold_lists, grade_lists, q_lang = random_case(rng, n_q, n_c, n_langs, value_range)
    ks = (1, 3, 10, 60)
    got, active = run_kernel(scores, col_row, c_lang, gold_lists, grade_lists, threshold, q_lang, n_langs, ks)
    for b in range(n_q):
        for k in ks:
            if not active[b]:
                assert all(np.isnan(got[(name, k)][b]) for name in bias.FINALISERS)
                continue
            ref = reference_values(scores[b], col_row, c_lang, gold_lists[b], grade_lists[b], threshold, q_lang[b],
                                   n_langs, k)
            for name, value in ref.items():
                assert got[(name, k)][b] == pytest.approx(value, abs=1e-12), (name, k, b)


def run_ranked_kernel(scores, col_row, c_lang, gold_lists, grade_lists, threshold, q_lang, n_langs, ks, depths):
    """:func:`bias.ranked_bias_block` on each query's strict order cut at ``depths[b]`` (a ranked run's lists)."""
    names = list(bias.FINALISERS)
    codes = np.array([bias.FINALISERS[n] for n in names for _ in ks], np.int64)
    cutoffs = np.array([k for _ in names for k in ks], np.int64)
    lists = [strict_order(scores[b], col_row)[:depths[b]] for b in range(len(scores))]
    q_ptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    lines = np.concatenate(lists)
    rel_sets = [{g for g, gr in zip(gs, grs) if gr >= threshold} for gs, grs in zip(gold_lists, grade_lists)]
    rel = np.array([c in rel_sets[b] for b, x in enumerate(lists) for c in x], np.bool_)
    golds = [[g for g in gs if g in r] for gs, r in zip(gold_lists, rel_sets)]  # the same order: PEER's sums
    g_ptr = np.concatenate([[0], np.cumsum([len(g) for g in golds])]).astype(np.int64)
    g_lang = np.array([c_lang[c] for g in golds for c in g], np.int32)
    g_pos = np.array([list(x).index(c) if c in x else 10**9 for x, g in zip(lists, golds) for c in g], np.int64)
    values = np.full((len(scores), n_langs + 1, len(codes)), np.nan)
    shares = np.zeros((len(scores), 0, n_langs))
    program = (codes, cutoffs, np.arange(len(codes), dtype=np.int64), np.full(len(codes), -1, np.int64))
    bias.ranked_bias_block(q_ptr, c_lang[lines], rel, g_ptr, g_lang, g_pos, q_lang, np.diff(g_ptr) > 0, program,
                           values, shares)
    assert np.isnan(values[:, :n_langs]).all()
    return {(name, k): values[:, n_langs, i] for i, (name, k) in enumerate((n, k) for n in names for k in ks)}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_q=st.integers(1, 6), n_c=st.integers(1, 200), n_langs=st.integers(1, 4),
       value_range=st.sampled_from([0, 1, 2, 1000]), threshold=st.integers(1, 2))
def test_ranked_lists_equal_the_score_rows_at_min_of_k_and_depth(seed, n_q, n_c, n_langs, value_range, threshold):
    """A ranked run's list in the score rows' strict order, cut at depth D: every bias metric at k equals
    bias_block's at min(k, D), bit for bit (at full depth: at k), on scores with many ties."""
    rng = np.random.default_rng(seed)
    scores, col_row, c_lang, gold_lists, grade_lists, q_lang = random_case(rng, n_q, n_c, n_langs, value_range)
    ks = (1, 3, 10, 60)
    args = (scores, col_row, c_lang, gold_lists, grade_lists, threshold, q_lang, n_langs)
    full = run_kernel(*args, ks + tuple(range(1, n_c + 1)))[0]
    for depths in (np.full(n_q, n_c), rng.integers(1, n_c + 1, n_q)):
        got = run_ranked_kernel(*args, ks, depths)
        for (name, k), values in got.items():
            want = [full[(name, min(k, depths[b], n_c))][b] for b in range(n_q)]
            np.testing.assert_array_equal(values, want, err_msg=f"{name}@{k}")


def test_peer_relevant_term_is_constant_with_one_relevant_item_per_language():
    """LAReQA's shape: each query has exactly one relevant candidate in each of L languages. Every
    language group of PEER's relevant level holds one value, so H = N - 1 = df whatever the ranks:
    the term is chi2.sf(L - 1, L - 1) once any relevant item is in the top k (1 when none is)."""
    rng = np.random.default_rng(0)
    n_langs, per_lang = 5, 8
    c_lang = np.repeat(np.arange(n_langs), per_lang).astype(np.int32)
    n_c = len(c_lang)
    constant = chi2.sf(n_langs - 1, n_langs - 1)
    seen = set()
    for trial in range(40):
        scores = rng.standard_normal((1, n_c)).astype(np.float32)
        golds = [lang * per_lang + int(rng.integers(per_lang)) for lang in range(n_langs)]
        order = strict_order(scores[0], np.arange(n_c))
        for k in (1, 5, 12):
            retrieved = set(order[:k].tolist()) & set(golds)
            got, _ = run_kernel(scores, np.arange(n_c), c_lang, [golds], [[1] * n_langs], 1, np.array([0]), n_langs,
                                (k,))
            p_rel = 2 * got[("peer", k)][0] - got[("peer_nonrelevant", k)][0]
            assert p_rel == pytest.approx(constant if retrieved else 1.0, abs=1e-12)
            seen.add(bool(retrieved))
    assert seen == {True, False}


def test_hand_computed_case():
    # 6 candidates, languages 0 0 1 1 2 2, scores 5 4 4 3 2 1 (columns = rows): top 4 = rows 0, 1, 2, 3.
    scores = np.array([[5, 4, 4, 3, 2, 1]], np.float32)
    c_lang = np.array([0, 0, 1, 1, 2, 2], np.int32)
    got, _ = run_kernel(scores, np.arange(6), c_lang, [[1, 4]], [[1, 1]], 1, np.array([0]), 3, (4,))
    assert got[("same_language_share", 4)][0] == 0.5
    e = np.array([1 + 1 / np.log2(3), 1 / np.log2(4) + 1 / np.log2(5), 0.0])
    p = e / e.sum()
    m = (p + 1 / 3) / 2
    jsd = 0.5 * sum(x * np.log2(x / y) for x, y in zip(p, m) if x > 0) + 0.5 * sum(
        (1 / 3) * np.log2((1 / 3) / y) for y in m)
    assert got[("exposure_jsd_uniform", 4)][0] == pytest.approx(jsd, abs=1e-15)
    # Non-relevant in the top 4: rows 0 (lang 0, position 1), 2 (lang 1, position 3), 3 (lang 1, position 4):
    # N = 3, groups {1}, {3, 4}: mean 8/3, SSG = (1 - 8/3)^2 + 2 (3.5 - 8/3)^2 = 25/6, SSA = 14/3, H = 2 * 25/28.
    assert got[("peer_nonrelevant", 4)][0] == pytest.approx(chi2.sf(50 / 28, 1), abs=1e-14)
    # Relevant: rows 1 (position 2) and 4 (outside): N = 2, U = 1, u = (4 + 1 + 1) / 2 = 3 -> values 2, 3:
    # mean 2.5, SSG = SSA = 0.5, H = 1. PEER = 1/2 p_0 + 1/2 chi2.sf(1, 1).
    assert got[("peer", 4)][0] == pytest.approx(0.5 * chi2.sf(50 / 28, 1) + 0.5 * chi2.sf(1, 1), abs=1e-14)


def test_peer_all_equal_values_give_one_not_nan():
    # Relevant rows 2 (position 3) and 5 (outside): N = 2, U = 1, u = 3 = the retrieved position, every
    # value equal: the reference's H is 0/0; fastir's p_1 is 1.
    scores = np.array([[5, 4, 3, 2, 1, 0]], np.float32)
    c_lang = np.array([0, 1, 0, 1, 0, 1], np.int32)
    got, _ = run_kernel(scores, np.arange(6), c_lang, [[2, 5]], [[1, 1]], 1, np.array([0]), 2, (4,))
    assert got[("peer", 4)][0] == pytest.approx(0.5 * got[("peer_nonrelevant", 4)][0] + 0.5)
