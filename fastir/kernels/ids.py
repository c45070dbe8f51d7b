"""Kernels on ids held in Arrow string buffers: an array's ``offsets`` (int32, n + 1) and ``data`` (bytes).

``fastir score-run`` reads a ranked run's ids into the buffers of pyarrow's CSV reader and works on
those bytes in place: no Python string, no joined (query, document) key, no Arrow hash table per
block of lines. Within each query (lines ``q_ptr[b]:q_ptr[b+1]``, queries independent, in parallel):

* :func:`trec_order`: the lines in trec_eval order — score descending, then (``by_id``) document id
  descending, bytewise as C's ``strcmp`` (trec_eval's order). Lines already in score order (as every
  TREC tool writes them) are not sorted; only their groups of tied scores are, by id;
* :func:`match_lines`: each line's gold (a judged document of its query: 64-bit FNV-1a hash, then
  byte equality) and the first document the query lists twice;
* :func:`prefix_codes`: each id's language under the rule "the bytes before the first ``sep``", as
  its position in a list of languages.

Array-in/array-out, no IO.
"""

from __future__ import annotations

import numpy as np
from numba import boolean, float64, int32, int64, njit, prange, types, uint8, void

from fastir.kernels.lazy import lazy_njit

OFFSETS = types.Array(int32, 1, "C", readonly=True)  # the id buffers, read-only views of Arrow's memory
BYTES = types.Array(uint8, 1, "C", readonly=True)

NO_LANGUAGE = -1  # prefix_codes: the id has no separator, or nothing before it
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
_INSERTION = 16  # tie groups up to this size are sorted by insertion


@njit(cache=True, nogil=True, inline="always")
def _hash(off, data, i):
    """FNV-1a (64 bits) of id ``i``'s bytes."""
    h = _FNV_OFFSET
    for p in range(off[i], off[i + 1]):
        h = (h ^ np.uint64(data[p])) * _FNV_PRIME
    return h


@njit(cache=True, nogil=True, inline="always")
def _compare(off_a, data_a, i, off_b, data_b, j):
    """strcmp of id ``i`` of a and id ``j`` of b: -1, 0 or 1 (bytes unsigned; a prefix sorts first)."""
    la = off_a[i + 1] - off_a[i]
    lb = off_b[j + 1] - off_b[j]
    for k in range(min(la, lb)):
        x = data_a[off_a[i] + k]
        y = data_b[off_b[j] + k]
        if x != y:
            return -1 if x < y else 1
    return (la > lb) - (la < lb)


@njit(cache=True, nogil=True, inline="always")
def _table_size(n):
    size = 2
    while size < 2 * n:
        size *= 2
    return size


# ---------------------------------------------------------------------------------------------- order


@njit(cache=True, nogil=True)
def _sort_ids_desc(order, lo, hi, off, data, tmp):
    """``order[lo:hi]`` sorted by id descending (stable): insertion for small groups, else bottom-up merge."""
    if hi - lo <= _INSERTION:
        for i in range(lo + 1, hi):
            x = order[i]
            k = i
            while k > lo and _compare(off, data, order[k - 1], off, data, x) < 0:
                order[k] = order[k - 1]
                k -= 1
            order[k] = x
        return
    width = 1
    n = hi - lo
    while width < n:
        for left in range(lo, hi, 2 * width):
            mid = min(left + width, hi)
            right = min(left + 2 * width, hi)
            a, b, t = left, mid, left
            while a < mid and b < right:
                if _compare(off, data, order[b], off, data, order[a]) > 0:
                    tmp[t] = order[b]
                    b += 1
                else:
                    tmp[t] = order[a]
                    a += 1
                t += 1
            while a < mid:
                tmp[t] = order[a]
                a += 1
                t += 1
            while b < right:
                tmp[t] = order[b]
                b += 1
                t += 1
        for t in range(lo, hi):
            order[t] = tmp[t]
        width *= 2


@njit(cache=True, nogil=True)
def _query_order(b, q_ptr, score, off, data, by_id, order):
    s = q_ptr[b]
    e = q_ptr[b + 1]
    in_order = True
    for i in range(s + 1, e):
        if score[i] > score[i - 1]:
            in_order = False
            break
    if in_order:
        for i in range(s, e):
            order[i] = i
    else:
        local = np.argsort(-score[s:e], kind="mergesort")  # stable: ties keep the file's order
        for i in range(e - s):
            order[s + i] = s + local[i]
    if not by_id:
        return
    tmp = np.empty(0, np.int64)
    i = s
    while i < e:
        g = i + 1
        while g < e and score[order[g]] == score[order[i]]:
            g += 1
        if g - i > 1:
            if g - i > _INSERTION and tmp.shape[0] < e:
                tmp = np.empty(e, np.int64)
            _sort_ids_desc(order, i, g, off, data, tmp)
        i = g


@lazy_njit(void(int64[::1], float64[::1], OFFSETS, BYTES, boolean, int64[::1]), cache=True, parallel=True)
def _order_block(q_ptr, score, off, data, by_id, order):
    for b in prange(q_ptr.shape[0] - 1):
        _query_order(b, q_ptr, score, off, data, by_id, order)


def trec_order(q_ptr, score, ids, by_id: bool) -> np.ndarray:
    """The lines' order (int64 positions): by query (``q_ptr``, lines of a query together), score
    descending, then, with ``by_id``, id descending bytewise; else ties in file order.
    ``ids``: (offsets, data) of the lines' document ids (:func:`fastir.core.arrow.string_buffers`)."""
    order = np.empty(len(score), np.int64)
    _order_block(np.ascontiguousarray(q_ptr, np.int64), np.ascontiguousarray(score, np.float64), ids[0], ids[1],
                 bool(by_id), order)
    return order


# --------------------------------------------------------------------------------------- golds, twins


@njit(cache=True, nogil=True)
def _query_match(b, q_ptr, off, data, gold_ptr, gold_rows, g_off, g_data, gold, again, first):
    s = q_ptr[b]
    e = q_ptr[b + 1]
    j0 = gold_ptr[b]
    ng = gold_ptr[b + 1] - j0
    g_mask = _table_size(ng) - 1
    g_slots = np.full(g_mask + 1, -1, np.int64)
    g_hash = np.empty(max(ng, 1), np.uint64)
    for t in range(ng):
        h = _hash(g_off, g_data, gold_rows[j0 + t])
        g_hash[t] = h
        p = h & g_mask
        while g_slots[p] >= 0:
            p = (p + 1) & g_mask
        g_slots[p] = t
    mask = _table_size(e - s) - 1
    slots = np.full(mask + 1, -1, np.int64)
    hashes = np.empty(max(e - s, 1), np.uint64)
    k = -1
    for i in range(s, e):
        h = _hash(off, data, i)
        hashes[i - s] = h
        p = h & mask
        twin = False
        while slots[p] >= 0:
            k = slots[p]
            if hashes[k - s] == h and _compare(off, data, k, off, data, i) == 0:
                twin = True
                break
            p = (p + 1) & mask
        if twin:
            if again[b] < 0:
                again[b] = i
                first[b] = k
        else:
            slots[p] = i
        gold[i] = -1
        p = h & g_mask
        while g_slots[p] >= 0:
            t = g_slots[p]
            if g_hash[t] == h and _compare(g_off, g_data, gold_rows[j0 + t], off, data, i) == 0:
                gold[i] = j0 + t
                break
            p = (p + 1) & g_mask


@lazy_njit(void(int64[::1], OFFSETS, BYTES, int64[::1], int64[::1], OFFSETS, BYTES, int64[::1], int64[::1],
                int64[::1]), cache=True, parallel=True)
def _match_block(q_ptr, off, data, gold_ptr, gold_rows, g_off, g_data, gold, again, first):
    for b in prange(q_ptr.shape[0] - 1):
        _query_match(b, q_ptr, off, data, gold_ptr, gold_rows, g_off, g_data, gold, again, first)


def match_lines(q_ptr, ids, gold_ptr, gold_rows, gold_ids):
    """Each line's gold and the lines that repeat a document of their query.

    Lines of query b are ``q_ptr[b]:q_ptr[b+1]`` with document ids ``ids`` ((offsets, data)); its golds
    are ``gold_ptr[b]:gold_ptr[b+1]``, gold j having id number ``gold_rows[j]`` of ``gold_ids`` (distinct
    within a query). Returns (gold: int64 per line, its gold or -1; again, first: int64 per query, the
    first line repeating an earlier line's document and that earlier line, or -1)."""
    n_queries = len(q_ptr) - 1
    gold = np.empty(int(q_ptr[-1]), np.int64)
    again = np.full(n_queries, -1, np.int64)
    first = np.full(n_queries, -1, np.int64)
    c = np.ascontiguousarray
    _match_block(c(q_ptr, np.int64), ids[0], ids[1], c(gold_ptr, np.int64), c(gold_rows, np.int64), gold_ids[0],
                 gold_ids[1], gold, again, first)
    return gold, again, first


# ------------------------------------------------------------------------------------------- languages


@lazy_njit(void(OFFSETS, BYTES, BYTES, OFFSETS, BYTES, int32[::1]), cache=True, parallel=True)
def _prefix_block(off, data, sep, l_off, l_data, out):
    n_langs = l_off.shape[0] - 1
    m = sep.shape[0]
    for i in prange(off.shape[0] - 1):
        s = off[i]
        e = off[i + 1]
        at = -1
        for p in range(s, e - m + 1):
            hit = True
            for k in range(m):
                if data[p + k] != sep[k]:
                    hit = False
                    break
            if hit:
                at = p
                break
        if at <= s:  # no separator (-1), or nothing before it
            out[i] = NO_LANGUAGE
            continue
        code = n_langs
        for lang in range(n_langs):
            if l_off[lang + 1] - l_off[lang] != at - s:
                continue
            same = True
            for k in range(at - s):
                if l_data[l_off[lang] + k] != data[s + k]:
                    same = False
                    break
            if same:
                code = lang
                break
        out[i] = code


def prefix_codes(ids, sep: bytes, langs) -> np.ndarray:
    """For each id of ``ids`` ((offsets, data)): the position in ``langs`` ((offsets, data)) of its bytes
    before the first ``sep``; ``len(langs)`` for a language not listed; :data:`NO_LANGUAGE` when the id
    has no ``sep`` or nothing before it. int32."""
    out = np.empty(len(ids[0]) - 1, np.int32)
    _prefix_block(ids[0], ids[1], np.frombuffer(sep, np.uint8), langs[0], langs[1], out)
    return out
