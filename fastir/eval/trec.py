"""TREC run and qrels export of ``fastir score --trec DIR``, for cross-checks with trec_eval tools.

For every selected cell X→S: ``X-S.run`` (``qid Q0 docid rank score fastir``, the top
``--trec-depth`` candidates of S per scorable query of X, best first) and ``X-S.qrels``
(``qid 0 docid 1``, the relevant candidates inside S). With a depth below |S|, trec_eval's map is
the truncated AP (golds below the depth count as not retrieved); fastir's own AP is over the full
ranking, so compare ``recall_k`` / ``P_k`` for k <= depth, or map with depth >= |S|.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from fastir.core.outputs import atomic_dir
from fastir.core.errors import InputError
from fastir.core.names import path_inside
from fastir.core.outputs import check_output_dir
from fastir.eval.result import concat_ranges
from fastir.eval.cells import POOLED

RUN_TAG = "fastir"
TREC_FILES = ("*.run", "*.qrels")  # what --trec DIR holds
_NOT_IN_TREC = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")  # fields are whitespace-separated lines


def write_trec(result, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``<X>-<S>.run`` and ``<X>-<S>.qrels`` for each cell of ``result`` (needs ``trec_depth``)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from fastir.core.arrow import numeric_array, repeat_string

    if result.top is None:
        raise InputError(None, "--trec", "scores were computed without trec_depth")
    run = result.run
    for side in (run.queries, run.candidates):
        bad = next((x for x in side.ids if _NOT_IN_TREC.search(x)), None)
        if bad is not None:
            raise InputError(side.path, "id", f"id {bad!r} contains whitespace or a control character, which TREC files cannot hold")
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite, written=TREC_FILES)
    qids = run.queries.table.column("id").combine_chunks()
    cids = run.candidates.table.column("id").combine_chunks()
    options = pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for cell in result.cells:
            q_rep, cand, ranks, score = cell_top(result, cell)
            table = pa.table({
                "qid": qids.take(numeric_array(q_rep, pa.int64())),
                "q0": repeat_string("Q0", len(q_rep)),
                "docid": cids.take(numeric_array(cand, pa.int64())),
                "rank": numeric_array(ranks, pa.int32()),
                "score": numeric_array(score, pa.float32()),
                "tag": repeat_string(RUN_TAG, len(q_rep)),
            })
            pacsv.write_csv(table, str(path_inside(tmp, f"{cell.name}.run", "lang", out_dir)), options)
            g_rows, g_cand, g_grade = cell_golds(result, cell)
            qrels = pa.table({
                "qid": qids.take(numeric_array(g_rows, pa.int64())),
                "iter": numeric_array(np.zeros(len(g_rows), np.int32), pa.int32()),
                "docid": cids.take(numeric_array(g_cand, pa.int64())),
                "rel": numeric_array(g_grade, pa.int32()),
            })
            pacsv.write_csv(qrels, str(path_inside(tmp, f"{cell.name}.qrels", "lang", out_dir)), options)
    return out_dir



def cell_top(result, cell) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kept top of ``cell`` (``result.top``): (query row, candidate row, rank from 1, float32 score)
    per entry, query by query in row order, each query's best first; only queries scored in the cell."""
    top = result.top
    s, rows = result.cell_rows(cell)
    lengths = top.length[rows, s].astype(np.int64)
    keep = np.arange(top.depth)[None, :] < lengths[:, None]
    ranks = (np.nonzero(keep)[1] + 1).astype(np.int32)
    return np.repeat(rows, lengths), top.cand[rows, s][keep], ranks, top.score[rows, s][keep]


def cell_golds(result, cell) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The judged candidates of grade >= 1 inside ``cell``'s candidate set, for the queries scored in
    it: (query row, candidate row, grade)."""
    _, cand_lang_id = result.run.candidates.lang_codes()  # codes index result.cand_langs
    s, rows = result.cell_rows(cell)
    g_lengths = result.gold_ptr[rows + 1] - result.gold_ptr[rows]
    g_rows = np.repeat(rows, g_lengths)
    golds = concat_ranges(result.gold_ptr[rows], g_lengths)
    g_cand = result.gold_cand[golds]
    g_grade = np.ones(len(golds), np.int32) if result.gold_grade is None else result.gold_grade[golds]
    if cell.cand_lang != POOLED:
        inside = cand_lang_id[g_cand] == s
        g_rows, g_cand, g_grade = g_rows[inside], g_cand[inside], g_grade[inside]
    return g_rows, g_cand, g_grade
