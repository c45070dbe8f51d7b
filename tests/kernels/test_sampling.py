"""Sampler kernels against numpy / pyarrow references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastir.kernels.sampling import draw_languages


def _numpy_draw(rows, pairs, u, weights, cross):
    # reference: cumulative weights over the cells in row-major order, first cell above u * total
    w = (rows[pairs] >= 0) * weights
    L = rows.shape[1]
    if cross:
        joint = w[:, :, None] * w[:, None, :]
        joint[:, np.arange(L), np.arange(L)] = 0
        cells = joint.reshape(len(pairs), L * L)
    else:
        cells = w
    cum = np.cumsum(cells, axis=1)
    target = np.minimum(u * cum[:, -1], cum[:, -1] * (1 - 1e-12))
    flat = np.argmax(cum > target[:, None], axis=1)
    return (flat // L, flat % L) if cross else (flat, flat)


@pytest.mark.parametrize("cross", [False, True])
def test_draw_languages_matches_the_numpy_inverse_cdf(cross):
    rng = np.random.default_rng(0)
    rows = np.where(rng.random((500, 6)) < 0.6, rng.integers(0, 10**6, (500, 6)), -1).astype(np.int32)
    rows[:, 2] = 7  # every pair has at least two languages
    rows[:, 4] = 9
    weights = np.array([1.0, 0.0, 2.0, 0.5, 3.0, 1.0])
    pairs = rng.integers(0, 500, 4000)
    u = rng.random(4000)
    u[:5] = [0.0, 1 - 1e-17, 0.5, 0.999999, 1e-300]
    q, p = draw_languages(rows, pairs, u, weights, cross)
    rq, rp = _numpy_draw(rows, pairs, u, weights, cross)
    np.testing.assert_array_equal(q, rq)
    np.testing.assert_array_equal(p, rp)
    assert (rows[pairs, q] >= 0).all() and (rows[pairs, p] >= 0).all() and (weights[q] > 0).all()
    assert (q != p).all() if cross else (q == p).all()


def test_texts_with_empty_strings_and_nul_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))
    from fastir.data.train_table import open_train_table

    n = 40
    queries = [f"q{i} ü" if i % 3 else "" for i in range(n)]
    passages = [f"p{i}" + ("\x00tail" if i == 7 else "") for i in range(n)]
    table = pa.table({"xling_id": [f"x{i}" for i in range(n)], "lang": ["en"] * n,
                      "query": queries, "passage": passages})
    path = tmp_path / "t.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=9)
    t = open_train_table(path)
    rows = np.random.default_rng(1).integers(0, n, 300)
    q, p = t.texts_many([("query", rows), ("passage", rows)])
    assert q == [queries[r] for r in rows]
    assert p == [passages[r] for r in rows]  # the U+0000 row falls back to per-row decoding
    assert t.texts_many([("query", np.array([], dtype=np.int64))]) == [[]]
