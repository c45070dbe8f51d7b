"""fastir.sampling.audit: the composition table of a sampler's next batches (one row per pair, equal to the
batches the same sampler would train on), the --out checks, the written files read back, and the summary
against a hand count. (``fastir sample`` itself: tests/sampling/test_sampler.py.)"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastir.core.errors import InputError
from fastir.sampling.audit import (COLUMNS, check_composition_out, composition_summary, composition_table,
                                   format_summary, write_composition)
from fastir.sampling.sampler import BatchSampler


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def tables(tmp_path, table_rows, write_rows_file):
    a = write_rows_file(table_rows(n_ids=25, seed=1, source="wiki"), tmp_path / "a.arrow")
    news = table_rows(n_ids=15, langs=("en", "de"), seed=2, source="news")
    b = write_rows_file(news.assign(xling_id="news-" + news["xling_id"]), tmp_path / "b.parquet")
    return [a, b]


@pytest.mark.parametrize("strategy, world_size", [("hybrid", 1), ("x-y", 1), ("hybrid", 2)])
def test_the_table_lists_the_pairs_of_the_global_batches(tables, strategy, world_size):
    kwargs = dict(strategy=strategy, batch_size=6, seed=3, alpha=0.5)
    steps = 14  # more than an epoch: the step keeps counting across epochs
    table = composition_table(BatchSampler(tables, world_size=world_size, **kwargs), steps)
    assert tuple(table.column_names) == COLUMNS
    assert table.schema.field("step").type == pa.int64()
    reference = BatchSampler(tables, **kwargs)  # one process: the whole global batch
    assert reference.steps_per_epoch < steps
    want = [(b.step, b.kind, x, q, p, s) for b in (next(reference) for _ in range(steps))
            for x, q, p, s in zip(b.xling_ids, b.query_langs, b.passage_langs, b.sources)]
    assert [tuple(r.values()) for r in table.to_pylist()] == want
    assert len(want) == 6 * steps and want[-1][0] == steps - 1


def test_steps_must_be_positive(tables):
    with pytest.raises(InputError, match=r"^--steps: must be >= 1, got 0$"):
        composition_table(BatchSampler(tables, strategy="hybrid", batch_size=4), 0)


def test_out_checks(tmp_path):
    assert check_composition_out(tmp_path / "c.JSONL") == tmp_path / "c.JSONL"
    assert check_composition_out(str(tmp_path / "c.parquet")) == tmp_path / "c.parquet"
    for name, message in (("c.csv", "expected a file ending in .jsonl or .parquet"), ("jsonl", "expected a file")):
        with pytest.raises(InputError, match=message):
            check_composition_out(tmp_path / name)
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_composition_out(tmp_path / "d.jsonl", overwrite=True)
    (tmp_path / "e.parquet").write_text("old")
    with pytest.raises(InputError) as info:
        check_composition_out(tmp_path / "e.parquet")
    assert str(info.value) == f"{tmp_path / 'e.parquet'}: --out: file exists; pass --overwrite"
    assert check_composition_out(tmp_path / "e.parquet", overwrite=True) == tmp_path / "e.parquet"


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_written_files_read_back_to_the_table(tables, tmp_path, suffix):
    table = composition_table(BatchSampler(tables, strategy="hybrid", batch_size=5, seed=1), 4)
    out = tmp_path / f"comp{suffix}"
    write_composition(table, out)
    back = (pq.read_table(out).to_pylist() if suffix == ".parquet"
            else [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()])
    assert back == table.to_pylist() and list(back[0]) == list(COLUMNS)
    with pytest.raises(InputError, match="file exists"):
        write_composition(table.slice(0, 1), out)
    write_composition(table.slice(0, 1), out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries left
    assert (len(pq.read_table(out)) if suffix == ".parquet" else len(out.read_text().splitlines())) == 1


def _hand_table():
    rows = [  # step, kind, query lang, passage lang, source
        (0, "mono", "en", "en", "a"), (0, "mono", "en", "en", "a"),
        (1, "cross", "en", "de", "a"), (1, "cross", "de", "fr", "b"),
        (2, "mono", "de", "de", "b"), (2, "mono", "de", "de", "b"),
        (3, "mono", "fr", "fr", "a"), (3, "mono", "fr", "fr", "a"),
    ]
    return pa.table({"step": pa.array([r[0] for r in rows], pa.int64()), "batch_kind": [r[1] for r in rows],
                     "xling_id": [f"x{i}" for i in range(len(rows))], "query_lang": [r[2] for r in rows],
                     "passage_lang": [r[3] for r in rows], "source": [r[4] for r in rows]})


def test_summary_hand_counted():
    summary = composition_summary(_hand_table())
    assert summary == {
        "batches": 4, "pairs": 8,
        "batch_kinds": {"cross": {"batches": 1, "share": 0.25}, "mono": {"batches": 3, "share": 0.75}},
        "mono_pair_share": 6 / 8, "cross_pair_share": 2 / 8,
        "lang_pairs": {"de->de": 2, "de->fr": 1, "en->de": 1, "en->en": 2, "fr->fr": 2},
        "sources": {"a": 5, "b": 3},
    }


def test_format_summary_shows_shares_and_the_language_matrix():
    lines = format_summary(composition_summary(_hand_table())).splitlines()
    assert lines[0] == "4 batches, 8 pairs"
    assert lines[1].split() == ["cross", "1", "batches", "25.00%"] and lines[2].split() == ["mono", "3", "batches",
                                                                                              "75.00%"]
    assert lines[3] == "pairs: same-language 75.00%, cross-language 25.00%"
    assert lines[5].split() == ["de", "en", "fr"]
    assert lines[6].split() == ["de", "25.00", "0.00", "12.50"]  # row: query language; columns: passage language
    assert lines[7].split() == ["en", "12.50", "25.00", "0.00"]
    assert lines[8].split() == ["fr", "0.00", "0.00", "25.00"]
    assert lines[9] == "sources: a 62.5%, b 37.5%"
    one_source = _hand_table().drop_columns(["source"]).append_column("source", pa.array(["a"] * 8))
    assert "sources" not in format_summary(composition_summary(one_source))
