"""BEIR-style multilingual collections, read as a stream.

Two layouts (the registry finds them by ``corpus.jsonl``):

* one directory: ``corpus.jsonl`` (``_id``, ``text``, optional ``title``, ``lang``),
  ``queries.jsonl`` (``_id``, ``text``, ``lang``, optional ``xling_id`` = parallel-group id) and
  ``qrels/{split}.tsv`` (header ``query-id corpus-id score``, then one graded judgement a line);
* one such directory per language, as MIRACL ships it (``ROOT/{lang}/corpus.jsonl`` ...): the
  language is the directory's name (a record's ``lang``, if given, must agree), and ids become
  ``{lang}:{_id}`` because MIRACL's ids repeat across languages.

Candidate text is ``title + " " + text`` when the title is non-empty, as BEIR's dense models
encode it. The split is the only ``qrels/*.tsv``, else ``test``, else ``dev``. Only judged
queries (a qrels row in the split, within the kept languages) are kept.

Opening validates everything in one streaming pass over each corpus (ids kept as Arrow arrays,
no text); :meth:`BeirDataset.iter_candidates` streams the text again in batches.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from fastir.data.dataset import Candidates, Qrels, Queries, check_qrels, dataset_checksum, sha256_file
from fastir.core.errors import InputError
from fastir.core.names import check_lang, check_langs
from fastir.core.numbers import INT32_MAX, parse_int
from fastir.core.textfiles import parse_json, text_lines

CORPUS, QUERIES, QRELS_DIR = "corpus.jsonl", "queries.jsonl", "qrels"
SPLIT_PREFERENCE = ("test", "dev")
QRELS_HEADER = ("query-id", "corpus-id", "score")
GROUP_FIELD = "xling_id"
_ID_CHUNK = 65536


@dataclass
class _Part:
    """One directory of the collection; ``lang`` is None when each record names its language."""

    root: Path
    lang: str | None
    prefix: str = ""

    def record_lang(self, path: Path, line: int, rec: dict) -> str:
        lang = rec.get("lang")
        if lang is not None and not isinstance(lang, str):
            raise InputError(path, f"line {line}: lang", f"expected a string, found {type(lang).__name__}")
        if self.lang is None:
            if not lang:
                raise InputError(path, f"line {line}: lang", "missing")
            return check_lang(lang, path, f"line {line}: lang")
        if lang is not None and lang != self.lang:
            raise InputError(path, f"line {line}: lang", f"{lang!r} in the directory of language {self.lang!r}")
        return self.lang


def _records(path: Path, digest=None) -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) of every non-blank line; ``digest`` (a hashlib object) sees the bytes."""
    if not path.is_file():
        raise InputError(path, None, "missing")
    for number, text in text_lines(path, digest):
        if not text.strip():
            continue
        rec = parse_json(text, path, f"line {number}")
        if not isinstance(rec, dict):
            raise InputError(path, f"line {number}", f"expected a JSON object, found {type(rec).__name__}")
        yield number, rec


def _text(path: Path, line: int, rec: dict, key: str, required: bool = True) -> str:
    value = rec.get(key)
    if value is None:
        if required:
            raise InputError(path, f"line {line}: {key}", "missing")
        return ""
    if key == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InputError(path, f"line {line}: {key}", f"expected a string, found {type(value).__name__}")
    return value


def _candidate_text(path: Path, line: int, rec: dict) -> str:
    title, text = _text(path, line, rec, "title", required=False), _text(path, line, rec, "text")
    return f"{title} {text}" if title else text


@dataclass
class BeirDataset:
    """A BEIR-style collection (see the module docstring); implements :class:`fastir.data.dataset.Dataset`."""

    name: str
    root: Path
    layout: str  # "single" or "per-language"
    split: str
    langs: tuple[str, ...]
    checksum: str
    parts: list[_Part]
    _queries: Queries
    _qrels: Qrels
    candidate_counts: dict[str, int]
    skipped_queries: int = 0  # queries of kept languages without a judgement in the split
    file_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def num_candidates(self) -> int:
        """Candidates in the kept languages (counted when the collection was opened)."""
        return sum(self.candidate_counts.values())

    def queries(self) -> Queries:
        return self._queries

    def qrels(self) -> Qrels:
        return self._qrels

    def iter_candidates(self, batch_size: int) -> Iterator[Candidates]:
        keep = set(self.langs)
        ids, langs, texts = [], [], []
        for part in self.parts:
            path = part.root / CORPUS
            for line, rec in _records(path):
                lang = part.record_lang(path, line, rec)
                if lang not in keep:
                    continue
                ids.append(part.prefix + _text(path, line, rec, "_id"))
                langs.append(lang)
                texts.append(_candidate_text(path, line, rec))
                if len(ids) == batch_size:
                    yield Candidates(ids, langs, texts)
                    ids, langs, texts = [], [], []
        if ids:
            yield Candidates(ids, langs, texts)

    def candidates(self) -> Candidates:
        out = Candidates([], [], [])
        for batch in self.iter_candidates(_ID_CHUNK):
            out.ids += batch.ids
            out.langs += batch.langs
            out.texts += batch.texts
        return out

    def summary(self) -> dict:
        per = {lang: {"queries": 0, "candidates": self.candidate_counts.get(lang, 0), "qrels": 0, "relevant": 0}
               for lang in self.langs}
        lang_of = dict(zip(self._queries.ids, self._queries.langs))
        for lang in self._queries.langs:
            per[lang]["queries"] += 1
        for qid, grade in zip(self._qrels.query_ids, self._qrels.relevance):
            per[lang_of[qid]]["qrels"] += 1
            per[lang_of[qid]]["relevant"] += grade >= 1
        totals = {key: sum(row[key] for row in per.values()) for key in ("queries", "candidates", "qrels", "relevant")}
        return {"dataset": self.name, "path": str(self.root), "layout": self.layout, "split": self.split,
                "checksum": self.checksum, "languages": per, "totals": totals,
                "skipped_queries": self.skipped_queries}

    def describe(self) -> str:
        s = self.summary()
        lines = [f"{s['dataset']}  ({len(s['languages'])} languages, {s['layout']} layout, split {s['split']}, "
                 f"sha256 {s['checksum'][:12]}…)",
                 f"{'lang':<6}{'queries':>11}{'candidates':>12}{'qrels':>10}{'relevant':>10}"]
        for lang, r in list(s["languages"].items()) + [("total", s["totals"])]:
            lines.append(f"{lang:<6}{r['queries']:>11,}{r['candidates']:>12,}{r['qrels']:>10,}{r['relevant']:>10,}")
        if s["skipped_queries"]:
            lines.append(f"({s['skipped_queries']} queries skipped: no judgement in split {s['split']})")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------- opening


def open_directory(path: str | os.PathLike, langs: list[str] | None = None) -> BeirDataset:
    """Registry opener: read and validate a BEIR-style directory (either layout)."""
    root = Path(path)
    parts, layout = _parts(root, langs)
    split = _split(parts)
    shas: dict[str, str] = {}
    corpus = [_scan_corpus(part, root, shas) for part in parts]
    query_rows = [_read_queries(part, root, shas) for part in parts]
    # Query languages count too: a collection may query in languages its corpus does not hold.
    all_langs = sorted({lang for _, per_lang in corpus for lang in per_lang} | {p.lang for p in parts if p.lang}
                       | {row[1] for rows in query_rows for row in rows})
    if langs is not None:
        unknown = [lang for lang in langs if lang not in all_langs]
        if unknown:
            raise InputError(root, "langs", f"unknown language(s) {','.join(unknown)}; available: {','.join(all_langs)}")
    if langs is not None:
        check_langs(langs, None, "--langs")
    kept = tuple(lang for lang in all_langs if langs is None or lang in langs)
    queries, qrels, skipped = _judged(parts, corpus, query_rows, split, set(kept), root, shas)
    counts: dict[str, int] = {}
    for _, per_lang in corpus:
        for lang, n in per_lang.items():
            counts[lang] = counts.get(lang, 0) + n
    kept = _languages_with_data(kept, queries.langs, counts, langs, root, split)
    return BeirDataset(name=root.name, root=root, layout=layout, split=split, langs=kept,
                       checksum=dataset_checksum(shas), parts=parts, _queries=queries, _qrels=qrels,
                       candidate_counts={lang: counts.get(lang, 0) for lang in kept}, skipped_queries=skipped,
                       file_sha256=shas)


def _languages_with_data(kept: tuple[str, ...], query_langs, counts: dict[str, int], asked, root: Path,
                         split: str) -> tuple[str, ...]:
    """The languages holding a judged query or a document: one whose queries are all unjudged and
    that has no document (MIRACL's unjudged topics) has nothing to score, and a run dir naming it
    would be refused by ``fastir score``. Dropped unless asked for by name (then one line)."""
    judged = set(query_langs)
    empty = [lang for lang in kept if lang not in judged and not counts.get(lang)]
    if asked is not None and empty:
        raise InputError(root, "langs", f"language {empty[0]!r} has no judged query in split {split!r} "
                                        "and no document: nothing to score")
    return tuple(lang for lang in kept if lang not in empty)


def _parts(root: Path, langs: list[str] | None) -> tuple[list[_Part], str]:
    if (root / CORPUS).is_file():
        parts, layout = [_Part(root, None)], "single"
    else:
        dirs = sorted(d for d in root.iterdir() if (d / CORPUS).is_file())
        if not dirs:
            raise InputError(root, CORPUS, "missing (nor in any language subdirectory)")
        for d in dirs:
            check_lang(d.name, d, "language directory name")
        if langs is not None:
            check_langs(langs, None, "--langs")
            unknown = [lang for lang in langs if lang not in {d.name for d in dirs}]
            if unknown:
                raise InputError(root, "langs", f"unknown language(s) {','.join(unknown)}; "
                                                f"available: {','.join(d.name for d in dirs)}")
            dirs = [d for d in dirs if d.name in langs]
        parts, layout = [_Part(d, d.name, f"{d.name}:") for d in dirs], "per-language"
    for part in parts:
        if not (part.root / QUERIES).is_file():
            raise InputError(part.root / QUERIES, None, "missing")
    return parts, layout


def _split(parts: list[_Part]) -> str:
    """The qrels split: the only ``qrels/*.tsv``, else test, else dev; the same in every part."""
    chosen = set()
    for part in parts:
        splits = sorted(p.stem for p in (part.root / QRELS_DIR).glob("*.tsv"))
        if not splits:
            raise InputError(part.root / QRELS_DIR, None, "no {split}.tsv qrels file")
        pick = splits[0] if len(splits) == 1 else next((s for s in SPLIT_PREFERENCE if s in splits), None)
        if pick is None:
            raise InputError(part.root / QRELS_DIR, None, f"several splits ({', '.join(splits)}) and none is "
                                                          f"{' or '.join(SPLIT_PREFERENCE)}; keep one")
        chosen.add(pick)
    if len(chosen) > 1:
        raise InputError(parts[0].root.parent, QRELS_DIR, f"the languages use different splits ({', '.join(sorted(chosen))})")
    return chosen.pop()


def _scan_corpus(part: _Part, root: Path, shas: dict) -> tuple[dict, dict[str, int]]:
    """One pass over a corpus: ids (Arrow, no text) with their languages, per-language counts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = part.root / CORPUS
    digest = hashlib.sha256()
    ids, langs, chunks, counts = [], [], [], {}
    for line, rec in _records(path, digest):
        ids.append(part.prefix + _text(path, line, rec, "_id"))
        _candidate_text(path, line, rec)  # checks text and title
        lang = part.record_lang(path, line, rec)
        langs.append(lang)
        counts[lang] = counts.get(lang, 0) + 1
        if len(ids) == _ID_CHUNK:
            chunks.append((pa.array(ids, pa.string()), pa.array(langs, pa.string()).dictionary_encode()))
            ids, langs = [], []
    chunks.append((pa.array(ids, pa.string()), pa.array(langs, pa.string()).dictionary_encode()))
    shas[str(path.relative_to(root))] = digest.hexdigest()
    id_col = pa.chunked_array([c[0] for c in chunks], pa.string())
    if len(pc.unique(id_col)) != len(id_col):  # faster than count_distinct (fastir.runs.reader._check_unique)
        counts_by_id = pc.value_counts(id_col)
        dup = counts_by_id.field("values").filter(pc.greater(counts_by_id.field("counts"), 1))[0].as_py()
        raise InputError(path, "_id", f"duplicate id {dup[len(part.prefix):]!r}")
    lang_col = pa.chunked_array([c[1].cast(pa.string()) for c in chunks], pa.string())
    return {"ids": id_col, "langs": lang_col}, counts


def _read_queries(part: _Part, root: Path, shas: dict) -> list[tuple[str, str, str, str | None]]:
    path = part.root / QUERIES
    digest = hashlib.sha256()
    rows, seen = [], set()
    for line, rec in _records(path, digest):
        qid = part.prefix + _text(path, line, rec, "_id")
        if qid in seen:
            raise InputError(path, f"line {line}: _id", f"duplicate id {qid[len(part.prefix):]!r}")
        seen.add(qid)
        group = rec.get(GROUP_FIELD)
        if group is not None:
            group = _text(path, line, rec, GROUP_FIELD)
        rows.append((qid, part.record_lang(path, line, rec), _text(path, line, rec, "text"), group))
    shas[str(path.relative_to(root))] = digest.hexdigest()
    return rows


def _read_qrels(path: Path, prefix: str) -> list[tuple[int, str, str, int]]:
    """(line, query id, corpus id, grade) rows of a BEIR qrels TSV; the header is required."""
    rows, seen = [], set()
    for number, line in text_lines(path):
        fields = line.split()
        if number == 1:
            if tuple(fields) != QRELS_HEADER:
                raise InputError(path, "line 1", f"expected the header {' '.join(QRELS_HEADER)!r}, found {line.strip()!r}")
            continue
        if not fields:
            continue
        if len(fields) != 3:
            raise InputError(path, f"line {number}", f"expected 3 fields (query-id corpus-id score), found {len(fields)}")
        qid, did, score = fields
        grade = parse_int(score, f"line {number}: score", path=path, lo=0, hi=INT32_MAX)
        key = (qid, did)
        if key in seen:
            raise InputError(path, f"line {number}", f"duplicate judgement of ({qid!r}, {did!r})")
        seen.add(key)
        rows.append((number, prefix + qid, prefix + did, grade))
    return rows


def _judged(parts, corpus, query_rows, split, kept: set, root: Path, shas: dict) -> tuple[Queries, Qrels, int]:
    """Queries and qrels within the kept languages; every qrels id checked against its files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    q_rows, qrels = [], ([], [], [])
    for part, (ids, _), rows in zip(parts, corpus, query_rows):
        lang_of = {qid: lang for qid, lang, _, _ in rows}
        path = part.root / QRELS_DIR / f"{split}.tsv"
        judged = _read_qrels(path, part.prefix)
        shas[str(path.relative_to(root))] = sha256_file(path)
        for number, qid, _, _ in judged:
            if qid not in lang_of:
                raise InputError(path, f"line {number}: query-id", f"unknown query {qid[len(part.prefix):]!r} "
                                                                   f"(not in {QUERIES})")
        docs = pa.array([did for _, _, did, _ in judged], pa.string())
        where = pc.index_in(docs, value_set=ids["ids"].combine_chunks())
        if where.null_count:
            first = int(pc.index(pc.is_null(where), True).as_py())
            raise InputError(path, f"line {judged[first][0]}: corpus-id",
                             f"unknown document {judged[first][2][len(part.prefix):]!r} (not in {CORPUS})")
        doc_lang = ids["langs"].combine_chunks().take(where).to_pylist()
        for (_, qid, did, grade), dlang in zip(judged, doc_lang):
            if lang_of[qid] in kept and dlang in kept:
                qrels[0].append(qid), qrels[1].append(did), qrels[2].append(grade)
        q_rows += [r for r in rows if r[1] in kept]
    judged_ids = set(qrels[0])
    keep = [r for r in q_rows if r[0] in judged_ids]
    groups = [r[3] for r in keep]
    has_groups = any(g is not None for g in groups)
    if has_groups and None in groups:
        raise InputError(root, GROUP_FIELD, "some queries have a parallel-group id and some not")
    queries = Queries([r[0] for r in keep], [r[1] for r in keep], [r[2] for r in keep],
                      groups=groups if has_groups else None)
    out = Qrels(*qrels)
    check_qrels(out, root)
    return queries, out, len(q_rows) - len(keep)
