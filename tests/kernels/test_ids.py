"""fastir.kernels.ids: trec_eval order, golds and repeated documents, language prefixes — all on Arrow's
string buffers — against plain-Python references on data with many ties, shared prefixes and non-ASCII ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastir.core.arrow import string_array, string_buffers
from fastir.kernels.ids import NO_LANGUAGE, match_lines, prefix_codes, trec_order

IDS = ["d1", "d10", "d2", "d", "é", "e", "ä:x", "zz", "d1\u00e9", "D1", "a", "ab", "abc", "b"]


def random_run(rng, n_queries, tied_values):
    """Queries of 1..40 lines with distinct ids per query, scores from ``tied_values`` values, in
    random order (or sorted by score, half the queries)."""
    sizes = rng.integers(1, 41, n_queries)
    pool = IDS + [f"x{i}" for i in range(60)]
    ids, scores = [], []
    for size in sizes:
        docs = list(rng.choice(pool, size, replace=False))
        s = rng.integers(0, tied_values, size).astype(np.float64) / 4
        if rng.random() < 0.5:
            s = np.sort(s)[::-1]
        ids += docs
        scores.append(s)
    q_ptr = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    return q_ptr, ids, np.concatenate(scores)


@pytest.mark.parametrize("tied_values", [1, 3, 1000])
def test_trec_order_is_score_then_id_descending_bytewise(tied_values):
    rng = np.random.default_rng(tied_values)
    q_ptr, ids, scores = random_run(rng, 60, tied_values)
    array = string_array(ids).slice(0)  # as the CSV reader's
    for by_id in (True, False):
        order = trec_order(q_ptr, scores, string_buffers(array), by_id)
        for b in range(len(q_ptr) - 1):
            lines = range(q_ptr[b], q_ptr[b + 1])
            if by_id:
                want = sorted(lines, key=lambda i: (scores[i], ids[i].encode()), reverse=True)
            else:  # stable: ties in file order
                want = sorted(lines, key=lambda i: -scores[i])
            assert order[q_ptr[b]:q_ptr[b + 1]].tolist() == want


def test_trec_order_of_a_large_tie_and_a_sliced_array():
    ids = [f"doc{i:05d}" for i in np.random.default_rng(0).permutation(5000)]
    array = string_array(["pad"] * 7 + ids).slice(7)
    order = trec_order(np.array([0, 5000]), np.zeros(5000), string_buffers(array), True)
    assert [ids[i] for i in order] == sorted(ids, reverse=True)


def test_match_lines_finds_golds_and_the_first_repeated_document():
    rng = np.random.default_rng(1)
    q_ptr, ids, _ = random_run(rng, 40, 3)
    golds, gold_ptr = [], [0]
    for b in range(len(q_ptr) - 1):
        docs = ids[q_ptr[b]:q_ptr[b + 1]]
        golds += list(rng.choice(docs, min(3, len(docs)), replace=False)) + ["not-retrieved"]
        gold_ptr.append(len(golds))
    gold_ids = string_array(["unused"] + golds)
    rows = np.arange(1, len(golds) + 1)
    gold, again, first = match_lines(q_ptr, string_buffers(string_array(ids)), np.array(gold_ptr), rows,
                                     string_buffers(gold_ids))
    assert (again == -1).all() and (first == -1).all()
    for b in range(len(q_ptr) - 1):
        for i in range(q_ptr[b], q_ptr[b + 1]):
            own = golds[gold_ptr[b]:gold_ptr[b + 1]]
            assert gold[i] == (gold_ptr[b] + own.index(ids[i]) if ids[i] in own else -1)
    twice = list(ids)
    twice[q_ptr[5] + 0] = twice[q_ptr[4] + 0]  # another query's document: allowed
    q5 = twice[q_ptr[5]:q_ptr[6]]
    if len(q5) > 2:
        twice[q_ptr[5] + 2] = q5[1]
    twice[q_ptr[9] + len(twice[q_ptr[9]:q_ptr[10]]) - 1] = twice[q_ptr[9]]
    _, again, first = match_lines(q_ptr, string_buffers(string_array(twice)), np.array(gold_ptr), rows,
                                  string_buffers(gold_ids))
    repeated = {b for b in range(len(q_ptr) - 1) if len(set(twice[q_ptr[b]:q_ptr[b + 1]])) < q_ptr[b + 1] - q_ptr[b]}
    assert set(np.flatnonzero(again >= 0)) == repeated
    for b in repeated:
        assert twice[again[b]] == twice[first[b]] and first[b] < again[b]


def test_prefix_codes():
    ids = string_array(["de:d1", "en:x:y", "fr:d", ":d", "nosep", "dé:1", "de", "zh::q", ""])
    langs = string_buffers(string_array(["de", "dé", "en", "zh"]))
    codes = prefix_codes(string_buffers(ids), b":", langs)
    assert codes.tolist() == [0, 2, 4, NO_LANGUAGE, NO_LANGUAGE, 1, NO_LANGUAGE, 3, NO_LANGUAGE]
    wide = prefix_codes(string_buffers(string_array(["de::d1", "de:d1", "en::"])), b"::", langs)
    assert wide.tolist() == [0, NO_LANGUAGE, 2]
    sliced = string_array(["xx", "en:1", "de:2"]).slice(1)
    assert prefix_codes(string_buffers(sliced), b":", langs).tolist() == [2, 0]
    assert prefix_codes(string_buffers(pa.array([], pa.string())), b":", langs).tolist() == []
