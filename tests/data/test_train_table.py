"""Train tables: reading Arrow IPC (file or stream) / Parquet / JSONL, validation, text access."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fastir.core.errors import InputError
from fastir.data.train_table import open_train_table


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_formats_read_the_same_rows(tmp_path, suffix, table_rows, write_rows_file):
    df = table_rows(negative=True, source="demo")
    t = open_train_table(write_rows_file(df, tmp_path / f"t{suffix}", chunk_rows=7))
    assert t.num_rows == len(df) and t.has_negative and t.has_source
    assert t.langs == sorted(set(df["lang"]))
    got = t.table.select(["xling_id", "lang", "query", "passage", "negative", "source"]).to_pandas()
    pd.testing.assert_frame_equal(got, df[got.columns])
    rows = np.array([0, len(df) - 1, 5, 5, 12])
    for col in ("query", "passage", "negative", "xling_id"):
        assert t.texts(col, rows) == [df[col][int(r)] for r in rows]


def test_multi_chunk_arrow_is_mapped_not_copied(tmp_path, table_rows, write_rows_file):
    df = table_rows(n_ids=200)
    t = open_train_table(write_rows_file(df, tmp_path / "t.arrow", chunk_rows=13))
    assert t.table.column("query").num_chunks > 10
    assert t.mapped_from == tmp_path / "t.arrow"
    rows = np.random.default_rng(1).integers(0, len(df), 500)
    assert t.texts("query", rows) == df["query"].to_numpy()[rows].tolist()


def test_pickle_remaps(tmp_path, table_rows, write_rows_file):
    t = open_train_table(write_rows_file(table_rows(), tmp_path / "t.arrow"))
    u = pickle.loads(pickle.dumps(t))
    assert u.texts("passage", np.array([3, 1])) == t.texts("passage", np.array([3, 1]))


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
@pytest.mark.parametrize("missing", ["xling_id", "lang", "query", "passage"])
def test_missing_column(tmp_path, suffix, missing, table_rows, write_rows_file):
    path = write_rows_file(table_rows(n_ids=3).drop(columns=[missing]), tmp_path / f"t{suffix}")
    with pytest.raises(InputError) as err:
        open_train_table(path)
    assert err.value.field == missing and err.value.path == path


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_null_text(tmp_path, suffix, table_rows, write_rows_file):
    df = table_rows(n_ids=3)
    df.loc[1, "query"] = None
    with pytest.raises(InputError) as err:
        open_train_table(write_rows_file(df, tmp_path / f"t{suffix}"))
    assert err.value.field == "query" and "null" in err.value.message


@pytest.mark.parametrize("code", ["../x", "", "a b"])
def test_language_codes_are_checked(tmp_path, code, table_rows, write_rows_file):
    df = table_rows(n_ids=3)
    df.loc[2, "lang"] = code
    path = write_rows_file(df, tmp_path / "t.arrow")
    with pytest.raises(InputError) as err:
        open_train_table(path)
    assert err.value.one_line().startswith(f"{path}: lang: invalid language code {code!r}")


def test_table_without_rows_names_the_field(tmp_path, table_rows, write_rows_file):
    path = write_rows_file(table_rows(n_ids=3).iloc[:0], tmp_path / "t.arrow")
    with pytest.raises(InputError, match=r"t\.arrow: rows: the table has no rows"):
        open_train_table(path)


def test_non_string_column(tmp_path, table_rows, write_rows_file):
    df = table_rows(n_ids=3)
    df["passage"] = 1.5
    with pytest.raises(InputError) as err:
        open_train_table(write_rows_file(df, tmp_path / "t.parquet"))
    assert err.value.field == "passage"


@pytest.mark.parametrize("name", ["t.parquet", "t.arrow", "t.jsonl"])
def test_unreadable_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00garbage{not json\n")
    with pytest.raises(InputError) as err:
        open_train_table(path)
    assert err.value.path == str(path)
    assert not list((tmp_path / "cache").glob("**/*.arrow"))  # no partial cache entry


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(InputError):
        open_train_table(tmp_path / "t.csv")
    with pytest.raises(InputError, match="no such file"):
        open_train_table(tmp_path / "t.parquet")


def test_texts_from_compressed_ipc_fall_back_to_chunk_views(tmp_path, table_rows):
    # LZ4 buffers are decompressed into memory, outside the mapping: the per-chunk path serves them
    df = table_rows(n_ids=50)
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = tmp_path / "t.arrow"
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as w:
        w.write_table(table, max_chunksize=11)
    t = open_train_table(path)
    rows = np.random.default_rng(3).integers(0, len(df), 200)
    assert t.texts("passage", rows) == df["passage"].to_numpy()[rows].tolist()
    assert t._columns["passage"]._file is None


def test_texts_from_arrow_stream_format(tmp_path, table_rows):
    df = table_rows(n_ids=20)
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = tmp_path / "t.arrows"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=7)
    t = open_train_table(path)
    rows = np.arange(len(df))[::-1]
    assert t.texts("query", rows) == df["query"].to_numpy()[rows].tolist()
    assert t._columns["query"]._file is not None


def test_train_table_from_arrow_validates_like_a_file():
    from fastir.data.train_table import train_table_from_arrow

    table = pa.table({"xling_id": ["a", "a", "b"], "lang": ["en", "de", "en"], "query": ["q1", "q2", "q3"],
                      "passage": ["p1", "p2", "p3"]})
    t = train_table_from_arrow(table, "train_dataset")
    assert (len(t), t.name, t.has_negative) == (3, "train_dataset", False)
    assert t.texts("passage", np.array([2, 0])) == ["p3", "p1"]
    with pytest.raises(InputError, match="^train_dataset: lang: missing column"):
        train_table_from_arrow(table.drop(["lang"]), "train_dataset")
