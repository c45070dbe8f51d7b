"""Writing parallel QA train tables (Parquet, Arrow IPC or JSONL, atomically), and the LAReQA
dataset -> train table conversion behind ``fastir data to-train``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from fastir.data.train_table_ingest import table_format


def lareqa_train_table(ds) -> pa.Table:
    """Each kept LAReQA question with its own-language answer sentence; ``source`` = dataset name."""
    n = ds.num_questions
    return pa.table(
        {
            "xling_id": pa.array(ds.question_xling_id, pa.string()),
            "lang": pa.array(ds.question_lang, pa.string()),
            "query": pa.array(ds.question_text, pa.string()),
            "passage": pa.array(ds.question_answer, pa.string()),
            "source": pa.array([ds.name] * n, pa.string()),
        }
    )


def write_train_table(table: pa.Table, out: str | os.PathLike, overwrite: bool = False, inputs=()) -> int:
    """Write ``table`` as Parquet, Arrow IPC or JSONL (by ``out``'s suffix), atomically; ``out`` is
    never one of ``inputs`` (what ``table`` was read from) nor inside one."""
    from fastir.core.outputs import check_output_file

    out = Path(out)
    fmt = table_format(out)
    check_output_file(out, overwrite, inputs=inputs)
    write_rows(table, out, fmt)
    return table.num_rows


def write_rows(table: pa.Table, out: Path, fmt: str) -> None:
    """``table`` to ``out`` as ``fmt`` (parquet, arrow or jsonl: one JSON object per row), atomically."""
    from fastir.core.outputs import atomic_file, atomic_path

    if fmt == "parquet":
        import pyarrow.parquet as pq

        with atomic_path(out) as tmp:
            pq.write_table(table, str(tmp))
    elif fmt == "arrow":
        from fastir.core.arrow import write_table

        write_table(out, table)
    else:
        with atomic_file(out, "w") as fh:
            for row in table.to_pylist():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_lareqa_train_table(ds, out: str | os.PathLike, overwrite: bool = False, inputs=()) -> int:
    """``fastir data to-train``: write ``ds`` as a parallel QA table; returns the rows written."""
    return write_train_table(lareqa_train_table(ds), out, overwrite=overwrite, inputs=inputs)
