"""ir_datasets collections: ``irds:ID[,ID...]`` (``irds:miracl/sw/dev,miracl/yo/dev``), one pool.

Each ID is read through ``ir_datasets.load(ID)``: its queries (``default_text()``), qrels (grades
>= 0) and documents (``default_text()``: title and body as the dataset defines them). The language
of an ID is its ``docs_lang()`` (ir_datasets records it for MIRACL, Mr. TyDi, NeuMARCO, ...); ids
become ``{lang}:{id}`` as the BEIR reader's per-language layout makes them, so the union of the IDs
is one pool whose X→all cells rank every ID's documents; two IDs of one language are refused (their
ids would collide). The split is the IDs' own (``dev`` in ``miracl/sw/dev``); only judged queries
are kept. The checksum covers every id and text read. ``pip install 'fastir[irds]'``; ir_datasets
downloads what it has not cached yet, as it always does.
"""

from __future__ import annotations

import hashlib

from fastir.core.errors import InputError, require
from fastir.core.names import check_lang, check_langs
from fastir.data.records import Part, RecordsDataset, build

PREFIX = "irds:"
EXTRA = "irds"


def parse_ids(source: str) -> list[str]:
    """The dataset IDs of ``irds:ID[,ID...]`` (at least one, no repeats)."""
    ids = [x.strip() for x in source[len(PREFIX):].split(",") if x.strip()]
    if not ids:
        raise InputError(None, "dataset", f"{source!r}: no ir_datasets ID after {PREFIX!r}")
    if len(set(ids)) != len(ids):
        raise InputError(None, "dataset", f"{source!r}: an ID is given twice")
    return ids


def open_ids(source: str, langs: list[str] | None = None) -> RecordsDataset:
    """Registry opener of ``irds:ID[,ID...]``; ``langs`` keeps those IDs' languages."""
    ir_datasets = require("ir_datasets", EXTRA, "reading an irds: dataset")
    loaded = {i: _load(ir_datasets, i) for i in parse_ids(source)}
    by_lang: dict[str, str] = {}
    for dataset_id, ds in loaded.items():
        lang = _lang(dataset_id, ds)
        if lang in by_lang:
            raise InputError(None, "dataset", f"{by_lang[lang]} and {dataset_id} are both in language {lang!r}: "
                                              "one ID per language")
        by_lang[lang] = dataset_id
    if langs is not None:
        check_langs(langs, None, "--langs")
        unknown = [lang for lang in langs if lang not in by_lang]
        if unknown:
            raise InputError(source, "langs", f"unknown language(s) {','.join(unknown)}; available: {','.join(by_lang)}")
    digest = hashlib.sha256()
    parts = [_part(dataset_id, lang, loaded[dataset_id], digest)
             for lang, dataset_id in sorted(by_lang.items()) if langs is None or lang in langs]
    splits = sorted({dataset_id.rsplit("/", 1)[-1] for dataset_id in by_lang.values()})
    return build(source, source, "irds", ",".join(splits), parts, langs, digest.hexdigest())


def _load(ir_datasets, dataset_id: str):
    try:
        ds = ir_datasets.load(dataset_id)
    except KeyError:
        raise InputError(None, "dataset", f"unknown ir_datasets ID {dataset_id!r}") from None
    for what in ("docs", "queries", "qrels"):
        if not getattr(ds, f"has_{what}")():
            raise InputError(None, "dataset", f"{dataset_id} has no {what}")
    return ds


def _lang(dataset_id: str, ds) -> str:
    lang = ds.docs_lang()
    if not lang:
        raise InputError(None, "dataset", f"{dataset_id} records no document language (docs_lang)")
    return check_lang(lang, None, f"{dataset_id}: docs_lang")


def _part(dataset_id: str, lang: str, ds, digest) -> Part:
    prefix = f"{lang}:"
    queries = []
    for q in _iterate(dataset_id, "queries", ds.queries_iter()):
        queries.append((prefix + q.query_id, _text(dataset_id, "queries", q.query_id, q.default_text())))
        digest.update(f"q\t{queries[-1][0]}\t{queries[-1][1]}\n".encode())
    qrels = []
    for r in _iterate(dataset_id, "qrels", ds.qrels_iter()):
        if not isinstance(r.relevance, int) or r.relevance < 0:
            raise InputError(None, f"{dataset_id}: qrels", f"({r.query_id!r}, {r.doc_id!r}): expected a grade >= 0, "
                                                           f"found {r.relevance!r}")
        qrels.append((prefix + r.query_id, prefix + r.doc_id, int(r.relevance)))
        digest.update(f"r\t{qrels[-1]}\n".encode())
    doc_ids = []
    for doc_id, text in _documents(dataset_id, ds, prefix):
        doc_ids.append(doc_id)
        digest.update(f"d\t{doc_id}\t{text}\n".encode())
    return Part(lang, f"irds:{dataset_id}", queries, qrels, doc_ids, lambda: _documents(dataset_id, ds, prefix))


def _documents(dataset_id: str, ds, prefix: str):
    for doc in _iterate(dataset_id, "docs", ds.docs_iter()):
        yield prefix + doc.doc_id, _text(dataset_id, "docs", doc.doc_id, doc.default_text())


def _iterate(dataset_id: str, what: str, rows):
    """``rows``, with a failure of ir_datasets (a download refused, a malformed file) as one line."""
    try:
        yield from rows
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - ir_datasets raises many types for unreadable data
        raise InputError(None, f"{dataset_id}: {what}", f"cannot read: {' '.join(str(exc).split())[:300]}") from None


def _text(dataset_id: str, what: str, record_id: str, text) -> str:
    if not isinstance(text, str):
        raise InputError(None, f"{dataset_id}: {what}", f"{record_id!r}: expected text, found {type(text).__name__}")
    return text
