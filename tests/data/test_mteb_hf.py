"""fastir.data.mteb_hf: an MTEB-format Hugging Face dataset folder (configs {lang}-corpus / -queries / -qrels,
parquet files, README.md configs) read as mteb 2.26's own RetrievalDatasetLoader reads it, ids prefixed by
language; embedded and scored end to end with a pooled X->all cell; the refusals."""

from __future__ import annotations

import pytest

from fastir.core.errors import InputError
from fastir.data.registry import layout_of, open_dataset

LANGS = ("de", "en", "sw")


def make_mteb_folder(root, langs=LANGS, docs=8, queries=5, split="test", seed=0):
    """The folder ``datasets``' push_to_hub leaves for an MTEB retrieval dataset, over the tiny vocabulary:
    ``{lang}-{kind}/{split}-00000-of-00001.parquet`` and README.md declaring the configs. Ids repeat across
    languages; every query has two golds (grade 1 and 2) and a judged non-relevant document (grade 0); the
    last query of each language is unjudged."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)

    def sentence(n):
        return " ".join(f"w{k}" for k in rng.integers(0, 60, n))

    configs = []
    for lang in langs:
        tables = {
            "corpus": pa.table({"_id": [f"d{i}" for i in range(docs)],
                                "title": [f"w{i}" if i % 2 else "" for i in range(docs)],
                                "text": [sentence(6) for _ in range(docs)]}),
            "queries": pa.table({"_id": [f"q{i}" for i in range(queries)], "text": [sentence(3) for _ in range(queries)]}),
            "qrels": pa.table({"query-id": [f"q{i}" for i in range(queries - 1) for _ in range(3)],
                               "corpus-id": [f"d{(i + j) % docs}" for i in range(queries - 1) for j in range(3)],
                               "score": pa.array([2, 1, 0] * (queries - 1), pa.int64())}),
        }
        for kind, table in tables.items():
            folder = root / f"{lang}-{kind}"
            folder.mkdir(parents=True)
            pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
            configs.append(f"- config_name: {lang}-{kind}\n  data_files:\n  - split: {split}\n"
                           f"    path: {lang}-{kind}/{split}-*\n")
    (root / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n# a tiny MTEB-format dataset\n")
    return root


@pytest.fixture
def folder(tmp_path):
    return make_mteb_folder(tmp_path / "tiny-mteb")


def test_reads_what_mtebs_own_loader_reads(folder):
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader

    assert layout_of(folder).name == "mteb"
    ds = open_dataset(folder)
    assert ds.langs == LANGS and ds.split == "test" and ds.layout == "mteb" and ds.skipped_queries == 3
    candidates, queries, qrels = ds.candidates(), ds.queries(), ds.qrels()
    for lang in LANGS:
        theirs = RetrievalDatasetLoader(str(folder), None, split="test", config=lang).load()
        corpus = {f"{lang}:{r['id']}": f"{r['title']} {r['text']}" if r["title"] else r["text"]
                  for r in theirs["corpus"]}
        assert {i: t for i, t, x in zip(candidates.ids, candidates.texts, candidates.langs) if x == lang} == corpus
        want_queries = {f"{lang}:{r['id']}": r["text"] for r in theirs["queries"]}  # judged queries only
        assert {i: t for i, t, x in zip(queries.ids, queries.texts, queries.langs) if x == lang} == want_queries
        want_qrels = {(f"{lang}:{q}", f"{lang}:{d}", g) for q, docs in theirs["relevant_docs"].items()
                      for d, g in docs.items()}
        assert {r for r in zip(qrels.query_ids, qrels.candidate_ids, qrels.relevance) if r[0].startswith(lang)} \
            == want_qrels
    assert [len(b) for b in ds.iter_candidates(5)] == [5, 5, 5, 5, 4]
    assert open_dataset(folder, ["sw", "de"]).langs == ("de", "sw")
    assert "de" in ds.describe() and ds.summary()["totals"]["queries"] == 12


def test_embed_and_score_a_pooled_cell(folder, embed_tiny_bert, tmp_path, capsys):
    import json

    from fastir.cli import main

    run = tmp_path / "run"
    assert main(["embed", "--model", str(embed_tiny_bert), "--dataset", str(folder), "--out", str(run)]) == 0
    assert main(["score", str(run), "--pairs", "de-all,en-all,sw-sw", "--metrics", "map,ndcg@10",
                 "--relevance-threshold", "2"]) == 0
    summary = json.loads((run / "scores" / "summary.json").read_text())
    assert summary["cand_langs"] == list(LANGS) and summary["candidates"] == 24 and summary["queries"] == 12
    capsys.readouterr()


def test_refusals(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = make_mteb_folder(tmp_path / "a")
    with pytest.raises(InputError, match="langs: unknown language"):
        open_dataset(folder, ["fr"])
    pq.write_table(pa.table({"query-id": ["q0"], "corpus-id": ["nope"], "score": [1]}),
                   folder / "de-qrels" / "test-00000-of-00001.parquet")
    with pytest.raises(InputError, match="de: qrels: unknown document 'de:nope'"):
        open_dataset(folder)
    pq.write_table(pa.table({"query-id": ["q0"], "corpus-id": ["d0"], "grade": [1]}),
                   folder / "de-qrels" / "test-00000-of-00001.parquet")
    with pytest.raises(InputError, match="de-qrels: score: missing column"):
        open_dataset(folder)
    other = make_mteb_folder(tmp_path / "b", langs=("de",))
    readme = (other / "README.md").read_text()
    (other / "README.md").write_text(readme.replace("config_name: de-queries", "config_name: xx-other"))
    with pytest.raises(InputError, match="de-queries: config missing"):
        open_dataset(other)
