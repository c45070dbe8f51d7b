"""fastir.eval.rows: query groups by the candidate languages they need, golds in block columns, the query
blocks, and whole-row scoring against a brute-force AP / Recall@k on numpy scores with ties."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fastir.eval.metrics import parse_metrics, with_rank_distance
from fastir.eval.rows import GroupBlocks, groups, local_golds, score_rows
from fastir.eval.score import _plan
from fastir.runs.rundir import read_run

LANGS = ("aa", "bb", "cc")


def _plan_of(want, query_lang_id, nrel):
    return SimpleNamespace(query_langs=[f"x{i}" for i in range(len(want))], cand_langs=list(LANGS),
                           want=np.asarray(want, bool), query_lang_id=np.asarray(query_lang_id, np.int32),
                           nrel=np.asarray(nrel, np.int64))


def test_groups_by_needed_candidate_languages():
    want = [[True, False, False, False],  # x0: mono-like, needs aa
            [False, True, True, False],   # x1: needs bb, cc
            [True, False, False, True],   # x2: a pooled cell: needs every language
            [False, False, False, False],  # x3: wants nothing
            [True, False, False, False],  # x4: needs aa, like x0
            [False, False, False, True]]  # x5: pooled only
    query_lang_id = [0, 1, 2, 3, 4, 5, 0, 1, 2, 4, 5, 0]
    nrel = np.zeros((12, 4), int)
    for q, langs in {0: [0], 1: [2], 2: [1], 3: [0], 4: [0], 5: [2], 6: [1], 7: [0], 8: [], 9: [], 10: [0],
                     11: [0, 1]}.items():
        for s in langs:
            nrel[q, s] += 1
    nrel[:, 3] = nrel[:, :3].sum(axis=1)
    got = {tuple(mask.tolist()): rows.tolist() for mask, rows in groups(_plan_of(want, query_lang_id, nrel))}
    # brute force: a query is in the group of its language's needs if it has a gold among them
    want_a = np.asarray(want, bool)
    expect: dict[tuple, list] = {}
    for q, x in enumerate(query_lang_id):
        w = want_a[x]
        if not w.any():
            continue
        mask = (True, True, True) if w[3] else tuple(w[:3].tolist())
        if nrel[q, :3][list(mask)].sum() > 0:
            expect.setdefault(mask, []).append(q)
    assert got == expect
    assert got[(True, False, False)] == [0, 4, 11] and 6 not in got[(True, False, False)]  # 6: gold in bb only
    assert 3 not in sum(got.values(), [])  # x3 wants nothing


@pytest.mark.parametrize("cols", [None, "aa", "bb+cc"])
def test_local_golds_against_brute_force(cols):
    rng = np.random.default_rng(4)
    n_cand, n_q = 30, 8
    cand_lang = rng.integers(0, 3, n_cand)
    perm = np.argsort(cand_lang, kind="stable")
    position = np.empty(n_cand, np.int64)
    position[perm] = np.arange(n_cand)
    golds = [sorted(rng.choice(n_cand, int(rng.integers(0, 5)), replace=False).tolist()) for _ in range(n_q)]
    grades = [[int(rng.integers(1, 4)) for _ in g] for g in golds]
    plan = SimpleNamespace(gold_ptr=np.cumsum([0] + [len(g) for g in golds]),
                           gold_cand=np.array(sum(golds, []), np.int64), gold_grade=np.array(sum(grades, []), np.int64))
    keep_langs = {None: [0, 1, 2], "aa": [0], "bb+cc": [1, 2]}[cols]
    block_cols = None if cols is None else np.flatnonzero(np.isin(cand_lang[perm], keep_langs))
    rows = np.array([6, 1, 3, 0], np.int64)
    ptr, col, grade = local_golds(plan, rows, position, block_cols)
    block = perm if block_cols is None else perm[block_cols]  # candidate row of each block column
    for i, q in enumerate(rows):
        want = [(int(np.flatnonzero(block == c)[0]), g) for c, g in zip(golds[q], grades[q]) if cand_lang[c] in keep_langs]
        assert list(zip(col[ptr[i]:ptr[i + 1]].tolist(), grade[ptr[i]:ptr[i + 1]].tolist())) == want
    assert col.dtype == grade.dtype == ptr.dtype == np.int64 and ptr[-1] == len(col)


def _columns(rng, n_q=24, n_cand=60):
    qrels = [(q, int(c)) for q in range(n_q) for c in rng.choice(n_cand, int(rng.integers(1, 4)), replace=False)]
    return dict(q_emb=rng.integers(-2, 3, (n_q, 4)).astype(np.float32), q_langs=[LANGS[q % 3] for q in range(n_q)],
                c_emb=rng.integers(-2, 3, (n_cand, 4)).astype(np.float32),
                c_langs=[LANGS[int(x)] for x in rng.integers(0, 3, n_cand)], qrels=qrels)


def test_group_blocks_cover_the_rows_in_equal_blocks(tmp_path, make_run):
    cols = _columns(np.random.default_rng(5))
    run = read_run(make_run(tmp_path, dtype="float16", **cols))
    plan = _plan(run, "all")
    rows = np.array([3, 0, 7, 22, 9, 14, 2], np.int64)
    cand_rows = plan.perm[:40]
    c_lang = plan.cand_lang_id[cand_rows]
    g_col = np.array([0, 39, 5], np.int64)
    blocks = GroupBlocks(run, rows, cand_rows, c_lang, 3, g_col, block_mb=3 * 40 * 4 / 2**20)
    assert blocks.rows_per_block == 3
    np.testing.assert_array_equal(blocks.c_block, cols["c_emb"][cand_rows])
    assert blocks.lang_ptr.tolist() == np.searchsorted(c_lang, [0, 1, 2, 3]).tolist()
    assert blocks.g_lang.tolist() == c_lang[g_col].tolist()
    seen = []
    for s, e, b_rows, q in blocks:
        assert e - s == len(b_rows) == len(q) <= 3 and b_rows.tolist() == rows[s:e].tolist()
        np.testing.assert_array_equal(q, cols["q_emb"][b_rows])  # float16 storage upcast exactly
        seen.append((s, e))
    assert seen == [(0, 3), (3, 6), (6, 7)]


def _brute_force(cols, plan, q, s, ks):
    """AP and Recall@k of query q in set s (ties against the gold) on the numpy score matrix."""
    scores = cols["q_emb"] @ cols["c_emb"].T
    langs = np.asarray(cols["c_langs"])
    members = np.arange(len(langs)) if s == len(plan.cand_langs) else np.flatnonzero(langs == plan.cand_langs[s])
    golds = [c for qq, c in cols["qrels"] if qq == q and c in members]
    rank = np.array([(scores[q, members] >= scores[q, g]).sum() for g in golds])
    hits = np.array([sum(scores[q, h] >= scores[q, g] for h in golds) for g in golds])
    return {"map": float(np.mean(hits / rank)), **{f"recall@{k}": float(np.mean(rank <= k)) for k in ks}}


@pytest.mark.parametrize("pairs, block_mb", [("all", 256), ("all", 1e-4), ("mono", 1e-3), ("aa-bb,cc-all,bb-cc", 256)])
def test_score_rows_equals_brute_force_with_ties(tmp_path, make_run, pairs, block_mb):
    cols = _columns(np.random.default_rng(6))
    run = read_run(make_run(tmp_path, **cols))
    plan = _plan(run, pairs)
    metrics = with_rank_distance(parse_metrics("map,recall@1,5"))
    values, top = score_rows(run, plan, metrics, block_mb, None, 1)
    assert top is None
    checked = 0
    for q in range(len(cols["q_emb"])):
        for s in range(len(plan.cand_langs) + 1):
            if not (plan.want[plan.query_lang_id[q], s] and plan.nrel[q, s] > 0):
                assert np.isnan(values.values[q, s]).all()
                continue
            want = _brute_force(cols, plan, q, s, (1, 5))
            assert {name: float(values[name][q, s]) for name in want} == pytest.approx(want, abs=1e-12), (q, s)
            checked += 1
    assert checked >= 10
