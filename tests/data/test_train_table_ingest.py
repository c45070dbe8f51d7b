"""Parquet / JSONL -> the Arrow IPC cache: converted once, keyed by the file, ids read as strings."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fastir.core.errors import InputError
from fastir.sampling.pair_index import build_pair_index
from fastir.data.train_table import open_train_table


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


def test_parquet_is_converted_once_into_the_cache(tmp_path, table_rows, write_rows_file):
    path = write_rows_file(table_rows(), tmp_path / "t.parquet")
    first = open_train_table(path)
    stamp = os.stat(first.mapped_from).st_mtime_ns
    second = open_train_table(path)
    assert second.mapped_from == first.mapped_from and os.stat(second.mapped_from).st_mtime_ns == stamp
    assert str(first.mapped_from).startswith(str(tmp_path / "cache"))
    write_rows_file(table_rows(n_ids=5), path)  # the file changes: a new cache entry
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert open_train_table(path).num_rows != first.num_rows


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_integer_ids_are_read_as_strings(tmp_path, suffix, table_rows, write_rows_file):
    df = table_rows(n_ids=4)
    df["xling_id"] = df["xling_id"].str[1:].astype(int)
    t = open_train_table(write_rows_file(df, tmp_path / f"t{suffix}"))
    assert t.table.column("xling_id").type == pa.string()
    assert t.texts("xling_id", np.array([0])) == [str(df["xling_id"][0])]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
@pytest.mark.parametrize("problem", ["null", "lang", "duplicate"])
def test_rejected_table_leaves_no_converted_copy_in_the_cache(tmp_path, suffix, problem, table_rows,
                                                              write_rows_file):
    df = table_rows(n_ids=4)
    if problem == "null":
        df.loc[1, "query"] = None
    elif problem == "lang":
        df.loc[1, "lang"] = "../x"
    else:
        df = pd.concat([df, df.iloc[[2]]], ignore_index=True)
    path = write_rows_file(df, tmp_path / f"t{suffix}")
    with pytest.raises(InputError) as err:
        build_pair_index([open_train_table(path)])
    assert err.value.path == path
    assert not list((tmp_path / "cache").glob("**/*.arrow"))
    good = write_rows_file(table_rows(n_ids=4), tmp_path / f"good{suffix}")
    build_pair_index([open_train_table(good)])  # an accepted table keeps its copy
    assert len(list((tmp_path / "cache").glob("**/*.arrow"))) == 1
