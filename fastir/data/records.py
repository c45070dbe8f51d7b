"""A collection read through another library (MTEB-format Hugging Face folders, ir_datasets), as a
:class:`fastir.data.beir.BeirDataset`: the same validation, judged-query rule, summary and table.

A reader hands :func:`build` one :class:`Part` per language: its query rows, qrels rows and document
ids, all already prefixed ``{lang}:`` (ids repeat across languages, as in MIRACL), plus a
``stream`` function that yields the part's documents again as ``(id, text)`` in the order of its
ids; :meth:`RecordsDataset.iter_candidates` streams them batch by batch. Only judged queries (a qrels
row of grade >= 0 whose query and document are known) are kept; a qrels id that names no query or
document is one line naming the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from fastir.core.errors import InputError
from fastir.data.beir import BeirDataset, _languages_with_data
from fastir.data.dataset import Candidates, Qrels, Queries, check_qrels


@dataclass
class Part:
    """One language of the collection (ids prefixed ``{lang}:``)."""

    lang: str
    source: str  # what the rows were read from, for messages (a folder's config, a dataset id)
    queries: list[tuple[str, str]]  # (id, text)
    qrels: list[tuple[str, str, int]]  # (query id, document id, grade)
    doc_ids: list[str]
    stream: Callable[[], Iterator[tuple[str, str]]] = field(repr=False)


@dataclass
class RecordsDataset(BeirDataset):
    """A :class:`BeirDataset` whose documents come from each part's ``stream``."""

    records: list[Part] = field(default_factory=list, repr=False)

    def iter_candidates(self, batch_size: int) -> Iterator[Candidates]:
        ids, langs, texts = [], [], []
        for part in self.records:
            if part.lang not in self.langs:
                continue
            for doc_id, text in part.stream():
                ids.append(doc_id)
                langs.append(part.lang)
                texts.append(text)
                if len(ids) == batch_size:
                    yield Candidates(ids, langs, texts)
                    ids, langs, texts = [], [], []
        if ids:
            yield Candidates(ids, langs, texts)


def build(name: str, root: str, layout: str, split: str, parts: list[Part], asked: list[str] | None,
          checksum: str) -> RecordsDataset:
    """Validate the parts and keep their judged queries (see the module docstring)."""
    q_ids, q_langs, q_texts, qrels = [], [], [], ([], [], [])
    skipped = 0
    for part in parts:
        docs = set(part.doc_ids)
        if len(docs) != len(part.doc_ids):
            raise InputError(part.source, "corpus", f"duplicate document id {_duplicate(part.doc_ids)!r}")
        known = dict(part.queries)
        if len(known) != len(part.queries):
            raise InputError(part.source, "queries", f"duplicate query id {_duplicate([q for q, _ in part.queries])!r}")
        judged = set()
        for qid, did, grade in part.qrels:
            if qid not in known:
                raise InputError(part.source, "qrels", f"unknown query {qid!r}")
            if did not in docs:
                raise InputError(part.source, "qrels", f"unknown document {did!r}")
            qrels[0].append(qid), qrels[1].append(did), qrels[2].append(grade)
            judged.add(qid)
        for qid, text in part.queries:
            if qid in judged:
                q_ids.append(qid), q_langs.append(part.lang), q_texts.append(text)
            else:
                skipped += 1
    out = Qrels(*qrels)
    check_qrels(out, root)
    if len(set(zip(out.query_ids, out.candidate_ids))) != len(out):
        raise InputError(root, "qrels", "a (query, document) pair is judged twice")
    counts = {part.lang: len(part.doc_ids) for part in parts}
    kept = _languages_with_data(tuple(counts), q_langs, counts, asked, Path(root), split)
    return RecordsDataset(name=name, root=Path(root), layout=layout, split=split, langs=kept, checksum=checksum,
                          parts=[], _queries=Queries(q_ids, q_langs, q_texts), _qrels=out,
                          candidate_counts={lang: counts[lang] for lang in kept}, skipped_queries=skipped,
                          records=parts)


def _duplicate(ids: list[str]) -> str:
    seen = set()
    for x in ids:
        if x in seen:
            return x
        seen.add(x)
    return ""
