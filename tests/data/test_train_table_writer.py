"""Writing train tables and LAReQA -> train table (the command ``fastir data to-train``: tests/cli/test_data.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from fastir.core.errors import InputError
from fastir.data.train_table import open_train_table
from fastir.data.train_table_writer import write_lareqa_train_table


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


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


