"""The sampler's pools: language weights, eligible pairs per batch kind, fill checks, source choice."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastir.core.errors import InputError
from fastir.sampling.pair_index import build_pair_index
from fastir.sampling.pools import build_pools, pool_probs, resolve_weights
from fastir.sampling.strategies import ANY, CROSS, MONO, REGISTRY
from fastir.data.train_table import open_train_table


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


def _index(tmp_path, present: dict[str, tuple[str, ...]], source=None):
    """A pair index over pairs ``present`` = {xling_id: languages}."""
    rows = [{"xling_id": x, "lang": l, "query": f"q{x}{l}", "passage": f"p{x}{l}", **({"source": source(x)} if source else {})}
            for x, langs in present.items() for l in langs]
    path = tmp_path / "t.arrow"
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return build_pair_index([open_train_table(path)])


def _pools(index, strategy, weights=None, alpha=0.5, batch_size=2, source_mode="proportional"):
    w = resolve_weights(REGISTRY[strategy], index.langs, weights, None)
    avail = (index.rows >= 0) & (w > 0)
    return build_pools(index, avail, w, REGISTRY[strategy], alpha=alpha, batch_size=batch_size,
                       source_mode=source_mode, path_hint=None)


def test_weights():
    langs = ("de", "en", "fr")
    assert resolve_weights(REGISTRY["x-x"], langs, None, None).tolist() == [1, 1, 1]
    assert resolve_weights(REGISTRY["x-x"], langs, {"en": 2, "fr": 0.5}, None).tolist() == [0, 2, 0.5]
    assert resolve_weights(REGISTRY["en-en"], langs, {"de": 3}, None).tolist() == [0, 1, 0]  # fixed languages win
    for bad, needle in (({"xx": 1}, "not in the data"), ({"en": -1}, ">= 0"), ({"en": "a"}, "not a number"),
                        ({"en": 0}, "every language has weight 0")):
        with pytest.raises(InputError, match=needle):
            resolve_weights(REGISTRY["x-x"], langs, bad, None)
    with pytest.raises(InputError, match="strategy en-en needs rows with lang 'en'"):
        resolve_weights(REGISTRY["en-en"], ("de", "fr"), None, None)


def test_streams_and_epoch_size(tmp_path):
    present = {"a": ("de", "en"), "b": ("en",), "c": ("de", "en", "fr"), "d": ("fr",)}
    index = _index(tmp_path, present)
    (pool,) = _pools(index, "hybrid")
    ids = {i: x for i, x in enumerate(sorted(present))}
    names = lambda arr: sorted(ids[int(i)] for i in arr)  # noqa: E731
    assert names(pool.stream(ANY, -1)) == ["a", "b", "c", "d"]
    assert names(pool.stream(CROSS, -1)) == ["a", "c"]
    assert [names(pool.stream(MONO, l)) for l in range(3)] == [["a", "c"], ["a", "b", "c"], ["c", "d"]]
    assert pool.size == 4 and _pools(index, "x-y")[0].size == 2 and _pools(index, "en-en")[0].size == 3
    assert pool.mono_cum.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    # a zero-weight language leaves every stream
    (pool,) = _pools(index, "x-x", weights={"de": 1, "en": 1})
    assert names(pool.stream(ANY, -1)) == ["a", "b", "c"] and names(pool.stream(CROSS, -1)) == ["a", "c"]
    assert pool.mono_cum[-1] == 1.0 and pool.mono_cum[1] == 1.0


def test_fill_checks_follow_the_kinds_drawn(tmp_path):
    index = _index(tmp_path, {"a": ("de", "en"), "b": ("en",), "c": ("en",)})
    with pytest.raises(InputError, match="language 'de' has 1 distinct xling_ids in source 't'"):
        _pools(index, "x-x-mono")
    with pytest.raises(InputError, match=r"x-y batches need .* has 1 such ids \(2 exist in one language only\)"):
        _pools(index, "x-y")
    with pytest.raises(InputError, match="has 3 distinct xling_ids, fewer than the batch size 4"):
        _pools(index, "x-x", batch_size=4)
    assert _pools(index, "hybrid", alpha=1.0, weights={"en": 1})[0].size == 3  # mono only: no x-y check
    with pytest.raises(InputError, match="x-y batches"):
        _pools(index, "hybrid", alpha=0.9, weights={"en": 1})


def test_sources(tmp_path):
    present = {f"x{i}": ("en", "de") for i in range(9)}
    index = _index(tmp_path, present, source=lambda x: "big" if int(x[1:]) < 6 else "small")
    pools = _pools(index, "x-x")
    assert [p.size for p in pools] == [6, 3] and [p.source for p in pools] == [0, 1]
    assert pool_probs(pools, "proportional").tolist() == pytest.approx([2 / 3, 1 / 3])
    assert pool_probs(pools, "uniform").tolist() == [0.5, 0.5]
    (mixed,) = _pools(index, "x-x", source_mode="mixed")
    assert mixed.source == -1 and mixed.size == 9
    assert np.array_equal(np.sort(mixed.stream(ANY, -1)), np.arange(9))


def test_a_source_without_the_fixed_languages_takes_no_part(tmp_path):
    present = {"a": ("en",), "b": ("en", "de"), "c": ("de",), "d": ("de",)}
    index = _index(tmp_path, present, source=lambda x: "with" if x in "ab" else "without")
    pools = _pools(index, "en-en")
    assert [index.sources[p.source] for p in pools] == ["with"]
    index = _index(tmp_path, {"c": ("de",)}, source=lambda x: "without")
    with pytest.raises(InputError, match="strategy en-en needs rows with lang 'en'"):
        _pools(index, "en-en")
