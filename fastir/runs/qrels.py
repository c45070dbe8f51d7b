"""TREC qrels files (``qid iteration docid grade``), the format ``fastir import``, ``score-run`` and
``preference-run`` read: :func:`read_trec_qrels` into :class:`Qrels`, with the line of each row
for messages. The iteration is ignored, as trec_eval does; blank lines are skipped; grades are
integers >= 0 (grade-0 rows are judged not relevant).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fastir.core.arrow import as_numpy, string_array
from fastir.core.errors import InputError
from fastir.core.numbers import INT32_MAX, parse_int
from fastir.core.textfiles import text_lines


@dataclass
class Qrels:
    query_ids: pa.Array
    candidate_ids: pa.Array
    grades: np.ndarray  # int64, >= 0
    lines: np.ndarray  # 1-based line number of each row, for messages


def read_trec_qrels(path: str | os.PathLike) -> Qrels:
    """A TREC qrels file: ``qid iteration docid grade`` per line (the iteration is ignored, as
    trec_eval does); blank lines are skipped; grades are integers >= 0.

    Read in chunks of :data:`_QRELS_CHUNK` lines, each turned into Arrow and numpy arrays at once:
    memory holds the arrays (about the file's size) and one chunk of Python strings, not a Python
    list per column of the whole file (a 45 MB file peaked near 1 GB that way). A plain file
    (:func:`_plain_qrels`) is parsed by pyarrow instead, to the same arrays, ten times faster."""
    file = Path(path)
    plain = _plain_qrels(file)
    if plain is not None:
        return plain
    chunks: list[tuple[pa.Array, pa.Array, np.ndarray, np.ndarray]] = []
    qids, dids, grades, lines = [], [], [], []
    try:
        for number, line in text_lines(file):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise InputError(file, f"line {number}", f"expected 4 whitespace-separated fields "
                                                         f"(qid 0 docid grade), found {len(parts)}")
            grades.append(parse_int(parts[3], f"line {number}: grade", path=file, lo=0, hi=INT32_MAX))
            qids.append(parts[0])
            dids.append(parts[2])
            lines.append(number)
            if len(lines) == _QRELS_CHUNK:
                chunks.append(_qrels_chunk(qids, dids, grades, lines))
                qids, dids, grades, lines = [], [], [], []
    except FileNotFoundError:
        raise InputError(file, None, "missing") from None
    except OSError as exc:
        raise InputError(file, None, f"cannot read ({exc.strerror or exc})") from None
    if lines:
        chunks.append(_qrels_chunk(qids, dids, grades, lines))
    if not chunks:
        raise InputError(file, None, "no judgements")
    q, d, g, n = zip(*chunks)
    return Qrels(pa.concat_arrays(list(q)), pa.concat_arrays(list(d)), np.concatenate(g), np.concatenate(n))


_QRELS_CHUNK = 1 << 18  # lines per chunk of read_trec_qrels
_PLAIN_BYTES = bytes(range(0x21, 0x7F)) + b" \n"  # printable ASCII, single spaces, \n line ends


def _plain_qrels(file: Path) -> Qrels | None:
    """The qrels parsed by pyarrow when every line is plain — printable ASCII, 4 fields separated by
    single spaces, a grade of 1 to 10 ASCII digits up to INT32_MAX, no blank line, ``\n`` line ends:
    lines that the Python reading above splits into exactly these fields. None for any other file,
    which that reading then parses (and names what is wrong with it)."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        data = file.read_bytes()
    except OSError:
        return None  # the Python reading reports it
    if not data or data.translate(None, _PLAIN_BYTES):
        return None
    names, invalid = ["qid", "iteration", "docid", "grade"], []
    parse = pacsv.ParseOptions(delimiter=" ", quote_char=False, ignore_empty_lines=False,
                               invalid_row_handler=lambda row: invalid.append(row) or "skip")
    try:
        table = pacsv.read_csv(pa.py_buffer(data), read_options=pacsv.ReadOptions(column_names=names),
                               parse_options=parse,
                               convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                                    include_columns=["qid", "docid", "grade"]))
    except pa.ArrowInvalid:
        return None
    grade = table.column("grade")
    if invalid or not pc.all(pc.match_substring_regex(grade, "^[0-9]{1,10}$")).as_py():
        return None
    grades = as_numpy(pc.cast(grade, pa.int64()).combine_chunks()).astype(np.int64)
    if grades.max(initial=0) > INT32_MAX:
        return None
    return Qrels(table.column("qid").combine_chunks(), table.column("docid").combine_chunks(), grades,
                 np.arange(1, table.num_rows + 1, dtype=np.int64))


def _qrels_chunk(qids: list[str], dids: list[str], grades: list[int], lines: list[int]):
    return (string_array(qids), string_array(dids), np.array(grades, np.int64),
            np.array(lines, np.int64))
