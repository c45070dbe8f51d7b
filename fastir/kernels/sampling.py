"""Batch-assembly kernels for the sampler: language draws per pair and string gathers.

Both run once per batch on a few dozen pairs, so what they save is interpreter overhead and
serialised cache misses (a compiled loop keeps many independent loads in flight), not flops.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _draw_languages(rows, pairs, u, weights, cross, q_out, p_out):
    n_langs = rows.shape[1]
    for i in range(pairs.shape[0]):
        row = rows[pairs[i]]
        total = 0.0
        if cross:
            for a in range(n_langs):
                if row[a] >= 0:
                    for b in range(n_langs):
                        if b != a and row[b] >= 0:
                            total += weights[a] * weights[b]
        else:
            for a in range(n_langs):
                if row[a] >= 0:
                    total += weights[a]
        target = min(u[i] * total, total * (1.0 - 1e-12))
        # first cell whose cumulative weight exceeds the target (cells in row-major order)
        acc = 0.0
        q_out[i] = -1
        if cross:
            for a in range(n_langs):
                if row[a] < 0:
                    continue
                for b in range(n_langs):
                    if b == a or row[b] < 0:
                        continue
                    acc += weights[a] * weights[b]
                    if acc > target and q_out[i] < 0:
                        q_out[i] = a
                        p_out[i] = b
        else:
            for a in range(n_langs):
                if row[a] < 0:
                    continue
                acc += weights[a]
                if acc > target and q_out[i] < 0:
                    q_out[i] = a
                    p_out[i] = a


def draw_languages(rows: np.ndarray, pairs: np.ndarray, u: np.ndarray, weights: np.ndarray, cross: bool):
    """Per pair i, one cell drawn by inverse CDF with uniform ``u[i]``:

    * same-language (``cross=False``): language l with P(l) = w_l / sum_{k in A_i} w_k,
    * cross-language (``cross=True``): (q, p), q != p, with P = w_q w_p / sum_{a != b in A_i} w_a w_b,

    where A_i = {l : rows[pairs[i], l] >= 0} are the pair's languages; cells are scanned in
    row-major (q, p) order. Returns (query_lang, passage_lang) int64 arrays.
    """
    q = np.empty(len(pairs), dtype=np.int64)
    p = np.empty(len(pairs), dtype=np.int64)
    _draw_languages(rows, pairs, u, weights, bool(cross), q, p)
    return q, p


@njit(cache=True)
def _gather_size(file_bytes, words, word_base, data_base, column, chunk, local):
    # Also touches each string's first and last byte: these loads are independent of one
    # another, so their cache misses overlap here instead of queueing behind the copies.
    total = 0
    touched = 0
    for i in range(chunk.shape[0]):
        k, c = column[i], chunk[i]
        w = word_base[k, c] + local[i]
        a = words[w]
        n = words[w + 1] - a
        total += n
        if n > 0:
            start = data_base[k, c] + a
            touched += file_bytes[start] + file_bytes[start + n - 1]
    return total, touched  # touched is returned only to keep its loads alive


@njit(cache=True)
def _gather_bytes(file_bytes, words, word_base, data_base, column, chunk, local, out):
    # strings separated by one 0 byte (never inside UTF-8 text but for U+0000 itself)
    pos = 0
    for i in range(chunk.shape[0]):
        k, c = column[i], chunk[i]
        w = word_base[k, c] + local[i]
        a = data_base[k, c] + words[w]
        n = words[w + 1] - words[w]
        if i > 0:
            out[pos] = 0
            pos += 1
        out[pos : pos + n] = file_bytes[a : a + n]
        pos += n


def gather_strings(file_bytes, words, word_base, data_base, column, chunk, local) -> list[str] | None:
    """Strings i = 0..m-1 of string columns whose buffers all lie in one mapped file.

    ``file_bytes`` is the file as uint8, ``words`` the same bytes as offset-sized integers;
    string i belongs to column ``column[i]``, chunk ``chunk[i]``, row ``local[i]`` in the chunk,
    and spans the bytes ``data_base[k, c] + words[word_base[k, c] + r + (0, 1)]``. One compiled
    gather, one UTF-8 decode and one split for all of them. Returns None when a string holds
    U+0000 (the separator): the caller decodes those rows one by one.
    """
    m = len(chunk)
    if m == 0:
        return []
    total, _ = _gather_size(file_bytes, words, word_base, data_base, column, chunk, local)
    out = np.empty(total + m - 1, dtype=np.uint8)
    _gather_bytes(file_bytes, words, word_base, data_base, column, chunk, local, out)
    strings = out.tobytes().decode("utf-8").split("\x00")
    return strings if len(strings) == m else None
