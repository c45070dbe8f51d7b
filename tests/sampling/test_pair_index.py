"""The pair index over train tables: uniqueness checks and a dict reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.core.errors import InputError
from fastir.sampling.pair_index import build_pair_index
from fastir.data.train_table import open_train_table


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


def test_duplicate_pair_language(tmp_path, table_rows, write_rows_file):
    df = table_rows(n_ids=5)
    df = pd.concat([df, df.iloc[[2]]], ignore_index=True)
    t = open_train_table(write_rows_file(df, tmp_path / "t.arrow"))
    with pytest.raises(InputError, match="more than once") as err:
        build_pair_index([t])
    assert err.value.field == "xling_id"


def test_pair_in_two_sources(tmp_path, table_rows, write_rows_file):
    a = open_train_table(write_rows_file(table_rows(n_ids=4, langs=("en",), source="a"), tmp_path / "a.arrow"))
    b = open_train_table(write_rows_file(table_rows(n_ids=4, langs=("de",), source="b"), tmp_path / "b.arrow"))
    with pytest.raises(InputError) as err:
        build_pair_index([a, b])
    assert err.value.field == "source"


@settings(max_examples=25, deadline=None)
@given(n_ids=st.integers(1, 40), n_tables=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_pair_index_matches_dict_reference(tmp_path_factory, n_ids, n_tables, seed, write_rows_file):
    tmp = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(seed)
    langs = ["de", "en", "zh", "ar"]
    tables, ref = [], {}
    ids = rng.permutation(n_ids)
    for k, part in enumerate(np.array_split(ids, n_tables)):
        recs = []
        for i in part.tolist():
            for lang in langs:
                if rng.random() < 0.6:
                    recs.append({"xling_id": f"x{i}", "lang": lang, "query": f"q{i}{lang}", "passage": f"p{i}{lang}"})
        if not recs:
            recs.append({"xling_id": f"x{part[0] if len(part) else 'e' + str(k)}", "lang": "en", "query": "q", "passage": "p"})
        df = pd.DataFrame.from_records(recs)
        t = open_train_table(write_rows_file(df, tmp / f"src{k}.arrow", chunk_rows=int(rng.integers(1, 9))))
        tables.append(t)
        for r, rec in enumerate(recs):
            ref[(rec["xling_id"], rec["lang"])] = (f"src{k}", rec["query"])
    index = build_pair_index(tables)
    assert list(index.langs) == sorted({lang for _, lang in ref})
    got = {}
    xids = sorted({x for x, _ in ref})
    assert index.num_pairs == len(xids)
    for i, x in enumerate(xids):  # dense ids follow sorted xling_id strings
        for l, lang in enumerate(index.langs):
            row = int(index.rows[i, l])
            if row >= 0:
                assert index.texts("xling_id", np.array([row])) == [x]
                got[(x, lang)] = (index.sources[index.pair_source[i]], index.texts("query", np.array([row]))[0])
    assert got == ref
