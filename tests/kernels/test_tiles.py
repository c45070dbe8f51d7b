"""fastir.kernels.tiles: counts summed over tiles = one-pass counts; merged top-k = one-pass top-k."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.kernels.ranking import gold_rank_counts, language_columns
from fastir.kernels.tiles import count_tile, merge_top
from fastir.kernels.topk import top_k_by_language


def _case(rng, n_rows=7, n_cand=300, n_langs=3):
    """Integer scores (exact ties), columns grouped by language, 0-5 distinct golds per row."""
    lang = np.sort(rng.integers(0, n_langs, n_cand)).astype(np.int32)
    scores = rng.integers(-4, 5, (n_rows, n_cand)).astype(np.float32)
    ptr, cols = [0], []
    for _ in range(n_rows):
        cols += list(rng.choice(n_cand, int(rng.integers(0, 6)), replace=False))
        ptr.append(len(cols))
    return scores, lang, np.array(ptr, np.int64), np.array(cols, np.int64)


@pytest.mark.parametrize("width", [1, 2, 37, 64, 300])
def test_counts_over_tiles_equal_one_pass(width):
    rng = np.random.default_rng(width)
    scores, lang, ptr, cols = _case(rng)
    n_langs = 3
    expected, _ = gold_rank_counts(scores, lang, ptr, cols, n_langs)
    owner = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    gold_score = scores[owner, cols].copy()
    cnt = np.zeros((len(cols), n_langs), np.int64)
    for t0 in range(0, scores.shape[1], width):
        t1 = min(t0 + width, scores.shape[1])
        tile = np.ascontiguousarray(scores[:, t0:t1])
        t_lang = lang[t0:t1]
        lang_ptr = np.searchsorted(t_lang, np.arange(t_lang[0], t_lang[-1] + 2)).astype(np.int64)
        count_tile(tile, lang_ptr, ptr, cols, gold_score, t0, int(t_lang[0]), np.arange(len(cols)), cnt)
    assert np.array_equal(cnt, expected)


@pytest.mark.parametrize("width", [1, 37, 300])
def test_tied_counts_over_tiles_equal_brute_force(width):
    rng = np.random.default_rng(width + 1)
    scores, lang, ptr, cols = _case(rng)
    owner = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    gold_score = scores[owner, cols].copy()
    cnt = np.zeros((len(cols), 3), np.int64)
    tied = np.zeros_like(cnt)
    for t0 in range(0, scores.shape[1], width):
        t1 = min(t0 + width, scores.shape[1])
        t_lang = lang[t0:t1]
        lang_ptr = np.searchsorted(t_lang, np.arange(t_lang[0], t_lang[-1] + 2)).astype(np.int64)
        count_tile(np.ascontiguousarray(scores[:, t0:t1]), lang_ptr, ptr, cols, gold_score, t0, int(t_lang[0]),
                   np.arange(len(cols)), cnt, tied=tied)
    for j in range(len(cols)):
        row = scores[owner[j]]
        for k in range(3):
            assert cnt[j, k] == np.sum((row >= gold_score[j]) & (lang == k))
            assert tied[j, k] == np.sum((row == gold_score[j]) & (lang == k))
    assert (tied.sum(axis=1) >= 1).all()  # each gold ties with itself


def test_take_reads_gold_scores_and_pin_overrides_the_tile():
    rng = np.random.default_rng(3)
    scores, lang, ptr, cols = _case(rng)
    lang_ptr = np.searchsorted(lang, np.arange(4)).astype(np.int64)
    owner = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    taken = np.full(len(cols), np.nan, np.float32)
    cnt = np.zeros((len(cols), 3), np.int64)
    count_tile(scores.copy(), lang_ptr, ptr, cols, taken, 0, 0, np.arange(len(cols)), cnt, take=True)
    assert np.array_equal(taken, scores[owner, cols])
    assert np.array_equal(cnt, gold_rank_counts(scores, lang, ptr, cols, 3)[0])
    # A gold pinned far above every candidate counts only itself.
    high = np.full(len(cols), 100, np.float32)
    tile = scores.copy()
    pinned = np.zeros((len(cols), 3), np.int64)
    count_tile(tile, lang_ptr, ptr, cols, high, 0, 0, np.arange(len(cols)), pinned)
    own = np.zeros_like(pinned)
    for j in range(len(cols)):
        for k in cols[ptr[owner[j]]:ptr[owner[j] + 1]]:  # the golds of the row, all pinned at 100
            own[j, lang[k]] += 1
    assert np.array_equal(pinned, own)
    assert (tile[owner, cols] == 100).all()


@pytest.mark.parametrize("width", [5, 64, 300])
def test_merged_tile_top_k_equals_one_pass(width):
    rng = np.random.default_rng(width)
    scores, lang, _, _ = _case(rng)
    want = np.ones((1, 4), bool)
    group = np.zeros(len(scores), np.int32)
    k = 9
    e_score, e_col, e_len = top_k_by_language(scores, lang, want, group, k)
    score = np.zeros((len(scores), 4, k), np.float32)
    key = np.zeros((len(scores), 4, k), np.int64)
    length = np.zeros((len(scores), 4), np.int32)
    for t0 in range(0, scores.shape[1], width):
        tile = np.ascontiguousarray(scores[:, t0:t0 + width])
        t_score, t_col, t_len = top_k_by_language(tile, lang[t0:t0 + width], want, group, k)
        merge_top(score, key, length, t_score, t0 + t_col.astype(np.int64), t_len, np.arange(len(scores)))
    assert np.array_equal(length, e_len)
    assert np.array_equal(score, e_score) and np.array_equal(key, e_col)
