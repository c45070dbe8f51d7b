"""Ranked runs of any system (BM25, SPLADE, fusion, rerankers): the files ``fastir score-run`` reads.

A run is read as a stream of :class:`RunChunk` (Arrow ids, numpy scores), never whole:

* TREC run: ``qid Q0 docid rank score tag`` per line, fields separated by single spaces or by
  tabs (as the first line has them), no blank line; read in blocks of :data:`BLOCK_BYTES`, each
  parsed by pyarrow's CSV reader in a thread one block ahead of the scoring; the rank is checked
  against the scores and otherwise ignored, as trec_eval does;
* ranx JSON: ``{"qid": {"docid": score, ...}, ...}`` (read whole: JSON has no streaming form);
* Parquet: columns ``query_id``, ``doc_id``, ``score`` and optionally ``rank``, read record batch
  by record batch.

Languages of queries and documents come from a :class:`LangSpec`: a TSV file (``id<TAB>lang`` per
line, no header) or Parquet file (columns ``id``, ``lang``), or the rule ``prefix:SEP`` (the
language is the id's text before the first SEP, e.g. ``prefix::`` for ``de:doc17``).
Scores must be finite numbers; every message names the file and the line (JSON: the query and document).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fastir.core.arrow import as_numpy, numeric_array, string_array, string_buffers
from fastir.core.errors import InputError
from fastir.core.textfiles import read_json, text_lines

BLOCK_BYTES = 1 << 23  # bytes per block of a TREC run (~230,000 lines); 3 blocks in memory at most
JSON_QUERIES = 4096  # queries per chunk of a ranx JSON run
TREC_FIELDS = ("qid", "q0", "docid", "rank", "score", "tag")
TREC_USED = ("qid", "docid", "rank", "score")
PARQUET_COLUMNS = ("query_id", "doc_id", "score")
RULE_PREFIX = "prefix:"


@dataclass
class RunChunk:
    """Consecutive lines of a run: ids as Arrow strings, float64 scores, ranks (or None)."""

    path: Path
    qids: pa.Array
    docids: pa.Array
    scores: np.ndarray
    ranks: np.ndarray | None
    first_line: int  # 1-based line (Parquet: row) of the first entry; 0 for JSON

    def where(self, i: int) -> str:
        """Where entry ``i`` stands in the file, for messages: ``line N`` (JSON: its query and document)."""
        if self.first_line == 0:
            return f"query {self.qids[i].as_py()!r}, document {self.docids[i].as_py()!r}"
        kind = "row" if self.path.suffix == ".parquet" else "line"
        return f"{kind} {self.first_line + i}"

    def take(self, index) -> RunChunk:
        """The entries ``index`` (a slice), keeping their file positions."""
        start = index.start or 0
        first = self.first_line + start if self.first_line else 0
        return RunChunk(self.path, self.qids[index], self.docids[index], self.scores[index],
                        None if self.ranks is None else self.ranks[index], first)


def run_format(path: str | os.PathLike) -> str:
    """``trec``, ``json`` or ``parquet``, from the file name's suffix (anything else: TREC)."""
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".parquet": "parquet"}.get(suffix, "trec")


def read_chunks(path: str | os.PathLike) -> Iterator[RunChunk]:
    """The run's entries in file order, chunk by chunk (see the module docstring for the formats)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(file, None, "missing" if not file.exists() else "not a file")
    reader = {"trec": _trec_chunks, "json": _json_chunks, "parquet": _parquet_chunks}[run_format(file)]
    empty = True
    for chunk in reader(file):
        empty = False
        _check_scores(chunk)
        yield chunk
    if empty:
        raise InputError(file, None, "empty run: no line")


def _trec_chunks(file: Path) -> Iterator[RunChunk]:
    import pyarrow.csv as pacsv

    if file.stat().st_size == 0:
        return
    first = next(text_lines(file), (1, ""))[1]
    delimiter = "\t" if "\t" in first else " "
    bad: list = []  # (first line of the block, the invalid row)
    read = pacsv.ReadOptions(column_names=list(TREC_FIELDS), use_threads=False)
    # Rank and score parsed as numbers by the reader (pyarrow's parser, as pc.cast's), no null values;
    # a block where that fails is read again as text, where _numbers names the line that is no number.
    typed, text = (pacsv.ConvertOptions(column_types={"qid": pa.string(), "docid": pa.string(), **numbers},
                                        include_columns=list(TREC_USED), null_values=[], strings_can_be_null=False,
                                        quoted_strings_can_be_null=False)  # Q0, tag: not kept
                   for numbers in ({"rank": pa.int64(), "score": pa.float64()},
                                   {"rank": pa.string(), "score": pa.string()}))

    def chunks():
        line = 1
        for block in _blocks(file):
            def invalid(row, first=line):
                bad.append((first, row))
                return "error"

            parse = pacsv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=False,
                                       invalid_row_handler=invalid)
            try:
                table = pacsv.read_csv(pa.BufferReader(block), read_options=read, parse_options=parse,
                                       convert_options=typed)
            except pa.ArrowInvalid:
                if bad:
                    raise
                table = pacsv.read_csv(pa.BufferReader(block), read_options=read, parse_options=parse,
                                       convert_options=text)
            table = table.combine_chunks()
            if not table.num_rows:
                continue
            batch = table.to_batches()[0]
            ranks = _numbers(batch.column("rank"), file, line, "rank", pa.int64())
            yield RunChunk(file, batch.column("qid"), batch.column("docid"),
                           _numbers(batch.column("score"), file, line, "score", pa.float64()), ranks, line)
            line += batch.num_rows

    try:
        yield from _read_ahead(chunks())
    except pa.ArrowInvalid as exc:
        if bad:
            first, row = bad[0]
            where = f"line {first + row.number - 1}" if row.number is not None else "line"
            raise InputError(file, where, f"expected 6 fields separated by {'tabs' if delimiter == chr(9) else 'single spaces'} "
                                          f"(qid Q0 docid rank score tag), found {row.actual_columns}") from None
        raise InputError(file, None, f"not a TREC run: {exc}") from None


def _blocks(file: Path) -> Iterator[memoryview]:
    """The file's bytes in blocks of about :data:`BLOCK_BYTES`, each ending after a line end (the last:
    at the end of the file), read into one reused buffer: each block must be parsed before the next
    is asked for. Read here, not by pyarrow's streaming reader, which reads up to 32 blocks ahead:
    memory stays at a few blocks whatever the file's size."""
    buffer = bytearray(BLOCK_BYTES)
    view = memoryview(buffer)
    held = 0  # bytes at the buffer's start carried over from the last block (a line not yet ended)
    with open(file, "rb") as fh:
        while True:
            if held == len(buffer):  # a line longer than the buffer: a larger one
                buffer = bytearray(2 * held)
                buffer[:held] = view[:held]
                view = memoryview(buffer)
            got = fh.readinto(view[held:])
            end = held + got
            if not got:
                if held:
                    yield view[:held]
                return
            cut = buffer.rfind(b"\n", 0, end) + 1 or buffer.rfind(b"\r", 0, end - 1) + 1
            if not cut:  # no line end yet: read on
                held = end
                continue
            yield view[:cut]
            buffer[:end - cut] = buffer[cut:end]
            held = end - cut


def _read_ahead(items: Iterator, depth: int = 1) -> Iterator:
    """``items`` produced ``depth`` ahead in a daemon thread: pyarrow parses a block without the GIL, so
    the next block of a run is parsed while the caller scores this one (memory: ``depth`` + 1 blocks).
    The producer's exceptions are raised here, in order; leaving early stops the producer."""
    import queue
    import threading

    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put((None, exc))

    threading.Thread(target=produce, name="fastir-read-ahead", daemon=True).start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item
    finally:
        stop.set()


def _numbers(column: pa.Array, file: Path, first_line: int, field: str, type: pa.DataType) -> np.ndarray:
    """``column`` (strings, or numbers already) as numbers of ``type``; the first entry that is not one
    names its line."""
    if not pa.types.is_string(column.type):
        return as_numpy(column)
    try:
        return as_numpy(pc.cast(column, type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for i, text in enumerate(column.to_pylist()):
            try:
                pc.cast(string_array([text]), type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputError(file, f"line {first_line + i}: {field}", f"not a number: {text!r}") from None
        raise


def _json_chunks(file: Path) -> Iterator[RunChunk]:
    data = read_json(file)
    if not isinstance(data, dict):
        raise InputError(file, "json", "a ranx run is an object {query id: {document id: score}}")
    items = list(data.items())
    for start in range(0, len(items), JSON_QUERIES):
        qids, docids, scores = [], [], []
        for qid, docs in items[start:start + JSON_QUERIES]:
            if not isinstance(docs, dict):
                raise InputError(file, f"query {qid!r}", "expected an object {document id: score}")
            for docid, score in docs.items():
                if isinstance(score, bool) or not isinstance(score, (int, float)):
                    raise InputError(file, f"query {qid!r}, document {docid!r}: score", f"not a number: {score!r}")
                qids.append(qid)
                docids.append(docid)
                scores.append(float(score))
        if qids:
            yield RunChunk(file, string_array(qids), string_array(docids),
                           np.asarray(scores, np.float64), None, 0)


def _parquet_chunks(file: Path) -> Iterator[RunChunk]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(file, None, f"not a Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    missing = [c for c in PARQUET_COLUMNS if c not in names]
    if missing:
        raise InputError(file, missing[0], f"missing column (a Parquet run has {', '.join(PARQUET_COLUMNS)}[, rank])")
    columns = [*PARQUET_COLUMNS, *(["rank"] if "rank" in names else [])]
    row = 1
    for batch in parquet.iter_batches(columns=columns):
        ids = []
        for name in ("query_id", "doc_id"):
            col = batch.column(name)
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) or col.null_count:
                raise InputError(file, name, f"must be strings without nulls, found {col.type}")
            ids.append(col.cast(pa.string()))
        scores = _typed(batch.column("score"), file, "score", pa.float64())
        ranks = _typed(batch.column("rank"), file, "rank", pa.int64()) if "rank" in columns else None
        yield RunChunk(file, ids[0], ids[1], scores, ranks, row)
        row += batch.num_rows


def _typed(column: pa.Array, file: Path, name: str, type: pa.DataType) -> np.ndarray:
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)) or column.null_count:
        raise InputError(file, name, f"must be numbers without nulls, found {column.type}")
    return as_numpy(pc.cast(column, type))


def _check_scores(chunk: RunChunk) -> None:
    bad = ~np.isfinite(chunk.scores)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(chunk.path, f"{chunk.where(i)}: score", f"not a finite number: {chunk.scores[i]}")


# ------------------------------------------------------------------------------------- languages


@dataclass
class LangSpec:
    """Where ids' languages come from: a map (``ids`` -> ``langs``) or the rule prefix-before-``sep``."""

    source: str  # the option's text, as given
    option: str  # --query-langs / --doc-langs, for messages
    sep: str | None = None
    path: Path | None = None
    ids: pa.Array | None = None
    langs: pa.Array | None = None

    def languages(self, ids: pa.Array, file, where) -> pa.Array:
        """The language of each id; an id the spec does not cover is InputError(file, where(i), ...)."""
        if self.sep is not None:
            found = pc.find_substring(ids, self.sep)
            miss = pc.less_equal(found, numeric_array([0], pa.int32())[0])  # -1: no separator; 0: an empty language
            if pc.any(miss).as_py():
                i = int(np.argmax(as_numpy(miss)))
                raise InputError(file, where(i), f"id {ids[i].as_py()!r} has no language before {self.sep!r} "
                                                 f"({self.option} {self.source})")
            return pc.list_element(pc.split_pattern(ids, pattern=self.sep, max_splits=1), numeric_array([0], pa.int32())[0])
        index = pc.index_in(ids, value_set=self.ids)
        if index.null_count:
            i = int(np.argmax(as_numpy(index.is_null())))
            raise InputError(file, where(i), f"id {ids[i].as_py()!r} is not in the language map {self.path.name}")
        return self.langs.take(index)

    def codes(self, ids: pa.Array, langs: list[str], buffers: tuple, file, where) -> np.ndarray:
        """Each id's language as its position in ``langs`` (``buffers``: the same as Arrow (offsets, data)),
        ``len(langs)`` for another language; int32. An id the spec does not cover: as :meth:`languages`."""
        if self.sep is None:
            index = pc.index_in(self.languages(ids, file, where), value_set=string_array(langs))
            return np.where(as_numpy(index.is_null()), len(langs),
                            as_numpy(index.fill_null(numeric_array([0], pa.int32())[0]))).astype(np.int32)
        from fastir.kernels.ids import NO_LANGUAGE, prefix_codes

        codes = prefix_codes(string_buffers(ids), self.sep.encode("utf-8"), buffers)
        if (codes == NO_LANGUAGE).any():
            i = int(np.argmax(codes == NO_LANGUAGE))
            self.languages(ids[i:i + 1], file, lambda _: where(i))  # raises, naming line i
        return codes

    def one(self, identifier: str, file, where: str) -> str:
        """The language of one id (queries, looked up one by one)."""
        if self.sep is not None:
            lang, found, _ = identifier.partition(self.sep)
            if found and lang:
                return lang
        elif self._index is not None and identifier in self._index:
            return self._index[identifier]
        return self.languages(string_array([identifier]), file, lambda i: where)[0].as_py()

    @functools.cached_property
    def _index(self) -> dict | None:
        return None if self.ids is None else dict(zip(self.ids.to_pylist(), self.langs.to_pylist()))


def parse_lang_spec(value: str, option: str) -> LangSpec:
    """``prefix:SEP`` or a .tsv / .parquet map file; InputError naming ``option`` otherwise."""
    if value.startswith(RULE_PREFIX):
        sep = value[len(RULE_PREFIX):]
        if not sep:
            raise InputError(None, option, f"{value!r}: give the separator after {RULE_PREFIX!r}, e.g. prefix::")
        return LangSpec(value, option, sep=sep)
    path = Path(value)
    if not path.is_file():
        raise InputError(path, option, f"{'missing' if not path.exists() else 'not a file'} (a .tsv or .parquet "
                                       f"map of id and lang, or the rule {RULE_PREFIX}SEP)")
    ids, langs = _read_map(path)
    index = pc.value_counts(ids)
    repeated = pc.filter(index, pc.greater(index.field("counts"), 1))
    if len(repeated):
        raise InputError(path, "id", f"id {repeated[0]['values'].as_py()!r} appears {repeated[0]['counts'].as_py()} times")
    return LangSpec(value, option, path=path, ids=ids, langs=langs)


def _read_map(path: Path) -> tuple[pa.Array, pa.Array]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(path, None, f"not a Parquet file ({exc})") from None
        for name in ("id", "lang"):
            if name not in table.column_names or table.column(name).null_count:
                raise InputError(path, name, "missing column, or nulls in it (a language map has id, lang)")
        return (table.column("id").cast(pa.string()).combine_chunks(),
                table.column("lang").cast(pa.string()).combine_chunks())
    ids, langs = [], []
    for number, line in text_lines(path):
        text = line.rstrip("\r\n")
        if not text:
            continue
        parts = text.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InputError(path, f"line {number}", "expected id<TAB>lang")
        ids.append(parts[0])
        langs.append(parts[1])
    if not ids:
        raise InputError(path, None, "empty language map")
    return string_array(ids), string_array(langs)
