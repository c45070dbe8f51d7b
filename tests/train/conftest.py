"""Shared helpers of the train-table tests (table, ingest, pair_index, writer)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


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


@pytest.fixture(scope="session")
def table_rows():
    """``rows_frame(n_ids, langs, seed, negative, source)``: a shuffled parallel table as a DataFrame."""
    return rows_frame


@pytest.fixture(scope="session")
def write_rows_file():
    """``write(df, path, chunk_rows)``: ``df`` as .parquet / .arrow / .jsonl by the path's suffix."""
    return write
