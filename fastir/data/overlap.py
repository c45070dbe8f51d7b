"""Overlap between training tables and evaluation datasets: the zero-shot guard.

Zero-shot (arXiv 2408.10536, footnote 2) means no evaluation question, passage or parallel group
was seen in training. A training row *overlaps* an evaluation dataset when

* its ``xling_id`` equals a parallel-group id of the dataset's questions (exact string), or
* its ``query`` equals one of the dataset's question texts, after :func:`normalise`, or
* its ``passage`` or ``negative`` equals one of the dataset's passage texts (candidate sentences
  and the paragraphs they were cut from), after :func:`normalise`.

Every key is hashed to an 8-byte blake2b digest; the evaluation side is a sorted ``uint64`` array
per key, and the training tables are read in slices of ``batch_rows`` rows from their memory
map, so memory holds one slice of text plus the evaluation digests. A digest hit is confirmed by
comparing the normalised strings, so a hash collision never counts.

:func:`_read_dataset` is the one place that reads an evaluation dataset.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastir.core.errors import InputError

# Training-table column -> the evaluation key set it is compared with.
TRAIN_KEYS = {"xling_id": "groups", "query": "questions", "passage": "passages", "negative": "passages"}
EVAL_SIDE = {"groups": "parallel-group id", "questions": "question", "passages": "passage"}
BATCH_ROWS = 1 << 16


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace runs collapsed to one space and stripped.

    NFKC again after case folding: folding can produce sequences NFKC would compose differently.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def digests(texts: list[str]) -> np.ndarray:
    """8-byte blake2b digest of each text's UTF-8 bytes, as ``uint64``."""
    joined = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest() for t in texts)
    return np.frombuffer(joined, dtype="<u8").astype(np.uint64, copy=False)


class KeySet:
    """The distinct normalised (or, for ids, exact) values of one evaluation key, hashed and sorted,
    each remembered with the id of the first row that had it (to name it in a report)."""

    def __init__(self, ids: list[str], values: list[str], normalised: bool):
        first: dict[str, str] = {}
        for i, v in zip(ids, values):
            first.setdefault(normalise(v) if normalised else v, i)
        first.pop("", None)  # an empty text is no evidence of overlap
        self.normalised = normalised
        self._keys = list(first)
        self._ids = list(first.values())
        h = digests(self._keys)
        self._order = np.argsort(h, kind="stable")
        self.digests = h[self._order]

    def __len__(self) -> int:
        return len(self._keys)

    def match(self, values: list[str]) -> list[tuple[int, str]]:
        """(position in ``values``, matched evaluation id) for every value in the set, in order."""
        if not self._keys:
            return []
        keys = [normalise(v) for v in values] if self.normalised else values
        h = digests(keys)
        lo = np.searchsorted(self.digests, h, side="left")
        hi = np.searchsorted(self.digests, h, side="right")
        out = []
        for i in np.flatnonzero(hi > lo).tolist():
            # Confirm on the strings: a digest collision is not an overlap.
            for j in self._order[lo[i]:hi[i]].tolist():
                if keys[i] == self._keys[j]:
                    out.append((i, self._ids[j]))
                    break
        return out


@dataclass
class EvalKeys:
    name: str
    groups: KeySet
    questions: KeySet
    passages: KeySet


def eval_keys(source: str | os.PathLike) -> EvalKeys:
    """The keys of an evaluation dataset (a bundled name, a dataset directory, or a training table
    used as held-out data), every language of it: a translation of an evaluation question is
    evaluation data too."""
    path = Path(os.fspath(source))
    if path.is_file():
        return _table_keys(path)
    name, queries, candidates = _read_dataset(source)
    q_ids, groups, q_texts = queries
    c_ids, c_texts, contexts = candidates
    context_ids: dict[str, str] = {}  # each paragraph once, named by its first sentence
    for cid, ctx in zip(c_ids, contexts or []):
        context_ids.setdefault(ctx, f"paragraph of {cid}")
    return EvalKeys(
        name=name,
        groups=KeySet(q_ids, groups or [], normalised=False),
        questions=KeySet(q_ids, q_texts, normalised=True),
        passages=KeySet(list(c_ids) + list(context_ids.values()), list(c_texts) + list(context_ids), normalised=True),
    )


def _read_dataset(source) -> tuple[str, tuple, tuple]:
    """The one place that reads an evaluation dataset: (name, (query ids, parallel-group ids or
    None, query texts), (candidate ids, candidate texts, contexts or None))."""
    from fastir.data.registry import open_dataset

    ds = open_dataset(source)
    queries, candidates = ds.queries(), ds.candidates()
    return (ds.name, (queries.ids, queries.groups, queries.texts),
            (candidates.ids, candidates.texts, candidates.contexts))


def _table_keys(path: Path) -> EvalKeys:
    from fastir.data.train_table import open_train_table

    table = open_train_table(path).table
    cols = {n: table.column(n).to_pylist() for n in ("xling_id", "lang", "query", "passage")}
    ids = [f"{x}_{lang}" for x, lang in zip(cols["xling_id"], cols["lang"])]
    return EvalKeys(name=path.name, groups=KeySet(ids, cols["xling_id"], normalised=False),
                    questions=KeySet(ids, cols["query"], normalised=True),
                    passages=KeySet(ids, cols["passage"], normalised=True))


@dataclass
class Match:
    table: str  # the training table's path
    row: int  # 0-based row index in that table
    key: str  # the training column that matched (xling_id, query, passage, negative)
    eval_id: str  # the evaluation question / candidate / paragraph id it matched

    def describe(self, dataset: str) -> str:
        side = EVAL_SIDE[TRAIN_KEYS[self.key]]
        return f"row {self.row}: {self.key} equals the {side} of {self.eval_id} in {dataset}"


@dataclass
class DatasetOverlap:
    """What one evaluation dataset shares with the training tables."""

    dataset: str
    train_rows: int = 0  # rows scanned
    rows: int = 0  # training rows with at least one matching key
    by_key: dict[str, int] = field(default_factory=lambda: {k: 0 for k in TRAIN_KEYS})
    examples: list[Match] = field(default_factory=list)  # the first matches, in table and row order

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "train_rows": self.train_rows, "rows": self.rows, "by_key": dict(self.by_key),
                "examples": [m.__dict__ for m in self.examples]}


def find_overlap(train: list[str | os.PathLike], evals: list[str | os.PathLike], *, examples: int = 10,
                 batch_rows: int = BATCH_ROWS) -> list[DatasetOverlap]:
    """One :class:`DatasetOverlap` per evaluation source, over every row of every training table."""
    from fastir.data.train_table import open_train_table

    if not train:
        raise InputError(None, "TRAIN", "no training table given")
    if not evals:
        raise InputError(None, "EVAL", "no evaluation dataset given")
    keys = [eval_keys(e) for e in evals]
    tables = [open_train_table(p) for p in train]  # every input checked before the scan
    reports = [DatasetOverlap(k.name) for k in keys]
    for table in tables:
        for start in range(0, table.num_rows, batch_rows):
            part = table.table.slice(start, batch_rows)
            columns = {c: part.column(c).to_pylist() for c in TRAIN_KEYS if c in part.column_names}
            for report, ek in zip(reports, keys):
                _scan(report, ek, columns, os.fspath(table.path), start, part.num_rows, examples)
    return reports


def _scan(report: DatasetOverlap, ek: EvalKeys, columns: dict, table: str, start: int, n: int, examples: int) -> None:
    hit = np.zeros(n, dtype=bool)
    wanted = len(report.examples) < examples
    found: list[Match] = []
    for column, values in columns.items():
        matches = getattr(ek, TRAIN_KEYS[column]).match(values)
        report.by_key[column] += len(matches)
        for i, eval_id in matches:
            hit[i] = True
        if wanted:
            found.extend(Match(table, start + i, column, eval_id) for i, eval_id in matches)
    report.train_rows += n
    report.rows += int(hit.sum())
    if found:
        order = list(TRAIN_KEYS)
        found.sort(key=lambda m: (m.row, order.index(m.key)))
        report.examples.extend(found[: examples - len(report.examples)])


def summary(reports: list[DatasetOverlap]) -> dict:
    """Counts per evaluation dataset, as recorded in ``fastir-train.json`` / ``results.json``."""
    return {r.dataset: {"train_rows": r.train_rows, "rows": r.rows, "by_key": dict(r.by_key)} for r in reports}


def refuse_overlap(reports: list[DatasetOverlap]) -> None:
    """Raise an :class:`InputError` naming the first overlapping row, if any dataset overlaps."""
    for r in reports:
        if r.rows:
            m = r.examples[0]
            raise InputError(m.table, f"row {m.row}", f"{m.key} equals the {EVAL_SIDE[TRAIN_KEYS[m.key]]} of "
                             f"{m.eval_id} in evaluation dataset {r.dataset} ({r.rows} of {r.train_rows} training "
                             "rows overlap; see fastir data overlap): not zero-shot; pass --allow-overlap to run anyway")


def format_reports(reports: list[DatasetOverlap]) -> str:
    """The per-dataset table ``fastir data overlap`` prints, then the first matches of each."""
    head = f"{'eval':<14}{'train rows':>12}{'overlapping':>13}" + "".join(f"{k:>10}" for k in TRAIN_KEYS)
    lines = [head]
    for r in reports:
        lines.append(f"{r.dataset:<14}{r.train_rows:>12,}{r.rows:>13,}"
                     + "".join(f"{r.by_key[k]:>10,}" for k in TRAIN_KEYS))
    for r in reports:
        if r.examples:
            lines.append(f"first overlapping rows with {r.dataset}:")
            lines.extend(f"  {m.table}: {m.describe(r.dataset)}" for m in r.examples)
    if not any(r.rows for r in reports):
        lines.append("no overlap: no training row shares a parallel-group id, question or passage text")
    return "\n".join(lines)


def guard(train: list[str | os.PathLike], evals: list[str | os.PathLike], *, allow: bool) -> dict:
    """The check ``fastir train --eval-data`` and ``fastir experiment`` run before any work: refuse
    an overlap unless ``allow``; the record they keep (fastir-train.json / results.json) either way."""
    reports = find_overlap(train, evals, examples=1)
    if not allow:
        refuse_overlap(reports)
    return {"allowed": allow, "datasets": summary(reports)}
