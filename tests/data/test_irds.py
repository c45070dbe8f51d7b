"""fastir.data.irds: ``irds:ID[,ID...]`` read through ir_datasets, on local collections registered in this
test (TSV docs and queries, TREC qrels; no network): ids prefixed by language, the IDs' union one pool,
judged queries only, embedded and scored end to end; the refusals."""

from __future__ import annotations

import uuid

import pytest

from fastir.core.errors import InputError
from fastir.data.registry import open_dataset


def register_local(root, lang, docs=6, queries=4, lang_known=True):
    """A MIRACL-like ``fastir-test-<uuid>/<lang>/dev`` over local files; ids repeat across languages, grades
    2, 1 and 0 per query, the last query unjudged. Returns its ID."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    folder = root / lang
    folder.mkdir(parents=True)
    (folder / "docs.tsv").write_text("".join(f"d{i}\t{lang} w{i} w{i + 1} w{2 * i}\n" for i in range(docs)))
    (folder / "queries.tsv").write_text("".join(f"q{i}\tw{i} w{i + 1} ?\n" for i in range(queries)))
    (folder / "qrels").write_text("".join(f"q{i} 0 d{(i + j) % docs} {2 - j}\n"
                                          for i in range(queries - 1) for j in range(3)))
    dataset_id = f"fastir-test-{uuid.uuid4().hex[:8]}/{lang}/dev"
    ir_datasets.registry.register(dataset_id, Dataset(
        TsvDocs(LocalDownload(folder / "docs.tsv"), lang=lang if lang_known else None),
        TsvQueries(LocalDownload(folder / "queries.tsv"), lang=lang),
        TrecQrels(LocalDownload(folder / "qrels"), {0: "not relevant", 1: "relevant", 2: "highly relevant"})))
    return dataset_id


@pytest.fixture
def ids(tmp_path):
    return [register_local(tmp_path, lang) for lang in ("sw", "yo")]


def test_the_union_of_ids_is_one_pool_with_language_prefixed_ids(ids):
    ds = open_dataset(f"irds:{ids[0]},{ids[1]}")
    assert ds.langs == ("sw", "yo") and ds.layout == "irds" and ds.split == "dev" and ds.skipped_queries == 2
    queries, candidates, qrels = ds.queries(), ds.candidates(), ds.qrels()
    assert queries.ids == [f"{lang}:q{i}" for lang in ("sw", "yo") for i in range(3)]
    assert candidates.ids[:2] == ["sw:d0", "sw:d1"] and candidates.texts[0] == "sw w0 w1 w0"
    assert candidates.langs == ["sw"] * 6 + ["yo"] * 6
    assert list(zip(qrels.query_ids, qrels.candidate_ids, qrels.relevance))[:3] == [
        ("sw:q0", "sw:d0", 2), ("sw:q0", "sw:d1", 1), ("sw:q0", "sw:d2", 0)]
    assert open_dataset(f"irds:{ids[0]},{ids[1]}", ["yo"]).queries().ids == ["yo:q0", "yo:q1", "yo:q2"]
    again = open_dataset(f"irds:{ids[1]},{ids[0]}")
    assert again.checksum == ds.checksum and again.queries().ids == queries.ids  # order of the IDs is not meaning


def test_embed_and_score_the_pooled_cell(ids, embed_tiny_bert, tmp_path):
    import json

    from fastir.cli import main

    run = tmp_path / "run"
    assert main(["embed", "--model", str(embed_tiny_bert), "--dataset", f"irds:{ids[0]},{ids[1]}",
                 "--out", str(run)]) == 0
    assert main(["score", str(run), "--pairs", "sw-all,yo-all", "--metrics", "map,ndcg@10"]) == 0
    summary = json.loads((run / "scores" / "summary.json").read_text())
    assert summary["candidates"] == 12 and summary["queries"] == 6 and summary["cand_langs"] == ["sw", "yo"]


def test_refusals(tmp_path, ids):
    cases = [
        ("irds:", "no ir_datasets ID after 'irds:'"),
        (f"irds:{ids[0]},{ids[0]}", "an ID is given twice"),
        ("irds:no/such/id", "^dataset: unknown ir_datasets ID 'no/such/id'$"),
        (f"irds:{ids[0]},{register_local(tmp_path / 'b', 'sw')}", "are both in language 'sw': one ID per language"),
        (f"irds:{register_local(tmp_path / 'c', 'xx', lang_known=False)}", "records no document language"),
    ]
    for source, message in cases:
        with pytest.raises(InputError, match=message):
            open_dataset(source)
    with pytest.raises(InputError, match="langs: unknown language.s. fr; available: sw,yo"):
        open_dataset(f"irds:{ids[0]},{ids[1]}", ["fr"])
