"""Train tables: reading Parquet / Arrow IPC / JSONL, validation, text access, the pair index."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.errors import InputError
from fastir.train.table import build_pair_index, open_train_table, write_lareqa_train_table


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


def rows_frame(n_ids=30, langs=("en", "de", "fr"), seed=0, negative=False, source=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_ids):
        for lang in langs:
            if rng.random() < 0.8 or lang == langs[0]:
                rec = {"xling_id": f"q{i:04d}", "lang": lang, "query": f"frage {i} {lang} ü",
                       "passage": f"antwort {i} {lang} 答"}
                if negative:
                    rec["negative"] = f"neg {i} {lang}"
                if source:
                    rec["source"] = source
                records.append(rec)
    df = pd.DataFrame.from_records(records)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # row order must not matter


def write(df: pd.DataFrame, path, chunk_rows=None):
    path = str(path)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if path.endswith(".parquet"):
        pq.write_table(table, path, row_group_size=chunk_rows or len(df))
    elif path.endswith(".arrow"):
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table, max_chunksize=chunk_rows)
    else:
        with open(path, "w", encoding="utf-8") as fh:
            for rec in df.to_dict("records"):
                rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_formats_read_the_same_rows(tmp_path, suffix):
    df = rows_frame(negative=True, source="demo")
    t = open_train_table(write(df, tmp_path / f"t{suffix}", chunk_rows=7))
    assert t.num_rows == len(df) and t.has_negative and t.has_source
    got = t.table.select(["xling_id", "lang", "query", "passage", "negative", "source"]).to_pandas()
    pd.testing.assert_frame_equal(got, df[got.columns])
    rows = np.array([0, len(df) - 1, 5, 5, 12])
    for col in ("query", "passage", "negative", "xling_id"):
        assert t.texts(col, rows) == [df[col][int(r)] for r in rows]


def test_multi_chunk_arrow_is_mapped_not_copied(tmp_path):
    df = rows_frame(n_ids=200)
    t = open_train_table(write(df, tmp_path / "t.arrow", chunk_rows=13))
    assert t.table.column("query").num_chunks > 10
    assert t.mapped_from == tmp_path / "t.arrow"
    rows = np.random.default_rng(1).integers(0, len(df), 500)
    assert t.texts("query", rows) == df["query"].to_numpy()[rows].tolist()


def test_parquet_is_converted_once_into_the_cache(tmp_path):
    path = write(rows_frame(), tmp_path / "t.parquet")
    first = open_train_table(path)
    stamp = os.stat(first.mapped_from).st_mtime_ns
    second = open_train_table(path)
    assert second.mapped_from == first.mapped_from and os.stat(second.mapped_from).st_mtime_ns == stamp
    assert str(first.mapped_from).startswith(str(tmp_path / "cache"))
    write(rows_frame(n_ids=5), path)  # the file changes: a new cache entry
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert open_train_table(path).num_rows != first.num_rows


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_integer_ids_are_read_as_strings(tmp_path, suffix):
    df = rows_frame(n_ids=4)
    df["xling_id"] = df["xling_id"].str[1:].astype(int)
    t = open_train_table(write(df, tmp_path / f"t{suffix}"))
    assert t.table.column("xling_id").type == pa.string()
    assert t.texts("xling_id", np.array([0])) == [str(df["xling_id"][0])]


def test_pickle_remaps(tmp_path):
    t = open_train_table(write(rows_frame(), tmp_path / "t.arrow"))
    u = pickle.loads(pickle.dumps(t))
    assert u.texts("passage", np.array([3, 1])) == t.texts("passage", np.array([3, 1]))


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
@pytest.mark.parametrize("missing", ["xling_id", "lang", "query", "passage"])
def test_missing_column(tmp_path, suffix, missing):
    path = write(rows_frame(n_ids=3).drop(columns=[missing]), tmp_path / f"t{suffix}")
    with pytest.raises(InputError) as err:
        open_train_table(path)
    assert err.value.field == missing and err.value.path == path


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_null_text(tmp_path, suffix):
    df = rows_frame(n_ids=3)
    df.loc[1, "query"] = None
    with pytest.raises(InputError) as err:
        open_train_table(write(df, tmp_path / f"t{suffix}"))
    assert err.value.field == "query" and "null" in err.value.message


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
@pytest.mark.parametrize("problem", ["null", "lang", "duplicate"])
def test_rejected_table_leaves_no_converted_copy_in_the_cache(tmp_path, suffix, problem):
    df = rows_frame(n_ids=4)
    if problem == "null":
        df.loc[1, "query"] = None
    elif problem == "lang":
        df.loc[1, "lang"] = "../x"
    else:
        df = pd.concat([df, df.iloc[[2]]], ignore_index=True)
    path = write(df, tmp_path / f"t{suffix}")
    with pytest.raises(InputError) as err:
        build_pair_index([open_train_table(path)])
    assert err.value.path == path
    assert not list((tmp_path / "cache").glob("**/*.arrow"))
    good = write(rows_frame(n_ids=4), tmp_path / f"good{suffix}")
    build_pair_index([open_train_table(good)])  # an accepted table keeps its copy
    assert len(list((tmp_path / "cache").glob("**/*.arrow"))) == 1


@pytest.mark.parametrize("code", ["../x", "", "a b"])
def test_language_codes_are_checked(tmp_path, code):
    df = rows_frame(n_ids=3)
    df.loc[2, "lang"] = code
    path = write(df, tmp_path / "t.arrow")
    with pytest.raises(InputError) as err:
        open_train_table(path)
    assert err.value.one_line().startswith(f"{path}: lang: invalid language code {code!r}")


def test_table_without_rows_names_the_field(tmp_path):
    path = write(rows_frame(n_ids=3).iloc[:0], tmp_path / "t.arrow")
    with pytest.raises(InputError, match=r"t\.arrow: rows: the table has no rows"):
        open_train_table(path)


def test_non_string_column(tmp_path):
    df = rows_frame(n_ids=3)
    df["passage"] = 1.5
    with pytest.raises(InputError) as err:
        open_train_table(write(df, tmp_path / "t.parquet"))
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


def test_duplicate_pair_language(tmp_path):
    df = rows_frame(n_ids=5)
    df = pd.concat([df, df.iloc[[2]]], ignore_index=True)
    t = open_train_table(write(df, tmp_path / "t.arrow"))
    with pytest.raises(InputError, match="more than once") as err:
        build_pair_index([t])
    assert err.value.field == "xling_id"


def test_pair_in_two_sources(tmp_path):
    a = open_train_table(write(rows_frame(n_ids=4, langs=("en",), source="a"), tmp_path / "a.arrow"))
    b = open_train_table(write(rows_frame(n_ids=4, langs=("de",), source="b"), tmp_path / "b.arrow"))
    with pytest.raises(InputError) as err:
        build_pair_index([a, b])
    assert err.value.field == "source"


# --- the index against a dict reference ------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(n_ids=st.integers(1, 40), n_tables=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_pair_index_matches_dict_reference(tmp_path_factory, n_ids, n_tables, seed):
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
        t = open_train_table(write(df, tmp / f"src{k}.arrow", chunk_rows=int(rng.integers(1, 9))))
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


# --- LAReQA -> train table --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_write_lareqa_train_table(tmp_path, suffix):
    from fastir.data.lareqa import load_dataset

    ds = load_dataset("xquad-r", langs=["en", "de"])
    out = tmp_path / f"train{suffix}"
    n = write_lareqa_train_table(ds, out)
    assert n == ds.num_questions
    t = open_train_table(out)
    df = t.table.to_pandas()
    expected = pd.DataFrame({"xling_id": ds.question_xling_id, "lang": ds.question_lang,
                             "query": ds.question_text, "passage": ds.question_answer,
                             "source": ["xquad-r"] * n})
    pd.testing.assert_frame_equal(df[expected.columns], expected)
    with pytest.raises(InputError, match="exists"):
        write_lareqa_train_table(ds, out)
    assert write_lareqa_train_table(ds, out, overwrite=True) == n


def test_cli_data_to_train(tmp_path, capsys):
    from fastir.cli import main

    out = tmp_path / "t.parquet"
    assert main(["data", "to-train", "xquad-r", str(out), "--langs", "en,es"]) == 0
    assert "wrote" in capsys.readouterr().out and open_train_table(out).num_rows > 0
    assert main(["data", "to-train", "xquad-r", str(out)]) == 2
    assert main(["data", "to-train", "xquad-r", str(tmp_path / "t.csv")]) == 2
    assert not (tmp_path / "t.csv").exists()


def test_texts_from_compressed_ipc_fall_back_to_chunk_views(tmp_path):
    # LZ4 buffers are decompressed into memory, outside the mapping: the per-chunk path serves them
    df = rows_frame(n_ids=50)
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = tmp_path / "t.arrow"
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as w:
        w.write_table(table, max_chunksize=11)
    t = open_train_table(path)
    rows = np.random.default_rng(3).integers(0, len(df), 200)
    assert t.texts("passage", rows) == df["passage"].to_numpy()[rows].tolist()
    assert t._columns["passage"]._file is None


def test_texts_from_arrow_stream_format(tmp_path):
    df = rows_frame(n_ids=20)
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = tmp_path / "t.arrows"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=7)
    t = open_train_table(path)
    rows = np.arange(len(df))[::-1]
    assert t.texts("query", rows) == df["query"].to_numpy()[rows].tolist()
    assert t._columns["query"]._file is not None
