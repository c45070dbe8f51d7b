"""Query groups, and scoring on whole score rows: the language-bias suite.

The float32 and certified passes (:mod:`fastir.eval.stream`, :mod:`fastir.eval.certified`) add
per-gold counts over tiles of Q·Cᵀ, so they can stream, shard and (float32) run on a GPU. The
language-bias suite (:mod:`fastir.kernels.bias`: the top k of the pooled ranking) needs each query's
whole row of float32 scores at once instead: it scores here, one group of query languages at a
time, block of query rows by block, on the CPU.
"""

from __future__ import annotations

import numpy as np

from fastir.eval.metrics import bias_metrics, bias_program, exposure_cutoffs, kernel_program
from fastir.eval.result import QueryMetrics, TopK, concat_ranges
from fastir.core.resources import require_memory, score_block_rows


def groups(plan):
    """(candidate-language mask, query rows) per distinct set of needed candidate languages.

    A query language whose cells need only some candidate languages (``--pairs mono``, a LIST)
    multiplies only against those candidates; any pooled cell needs them all.
    """
    n_langs = len(plan.cand_langs)
    needs: dict[bytes, list[int]] = {}
    masks: dict[bytes, np.ndarray] = {}
    for x in range(len(plan.query_langs)):
        w = plan.want[x]
        if not w.any():
            continue
        mask = np.ones(n_langs, dtype=np.bool_) if w[n_langs] else w[:n_langs].copy()
        key = mask.tobytes()
        masks[key] = mask
        needs.setdefault(key, []).append(x)
    for key, langs in needs.items():
        mask = masks[key]
        in_group = np.isin(plan.query_lang_id, langs)
        # Queries with no gold among the needed candidates are skipped in every wanted cell.
        has_gold = plan.nrel[:, :n_langs][:, mask].sum(axis=1) > 0
        rows = np.flatnonzero(in_group & has_gold).astype(np.int64)
        if len(rows):
            yield mask, rows


def score_rows(run, plan, metrics, block_mb: float, trec_depth: int | None, threshold: int):
    """(QueryMetrics, TopK or None) of every group, from whole rows of float32 scores (the bias suite)."""
    from fastir.kernels.ranking import empty_outputs

    n_queries, n_langs = len(run.queries), len(plan.cand_langs)
    out = empty_outputs(n_queries, n_langs, len(metrics))
    top = _top_buffer(n_queries, n_langs, trec_depth)
    # Score columns grouped by language (column i holds candidate row perm[i]), upcast on the way.
    perm, position = plan.perm, plan.position
    lang_sorted = np.ascontiguousarray(plan.cand_lang_id[perm])
    program = kernel_program(metrics)
    bias = bias_program(metrics) if bias_metrics(metrics) else None
    exposure_ks = exposure_cutoffs(metrics)
    shares = np.full((n_queries, len(exposure_ks), n_langs), np.nan)
    for cand_mask, rows in groups(plan):
        cols = None if cand_mask.all() else np.flatnonzero(cand_mask[lang_sorted])
        cand_rows = perm if cols is None else perm[cols]  # candidate row of each block column
        c_lang = lang_sorted if cols is None else np.ascontiguousarray(lang_sorted[cols])
        g_ptr, g_col, g_grade = local_golds(plan, rows, position, cols)
        blocks = GroupBlocks(run, rows, cand_rows, c_lang, n_langs, g_col, block_mb)
        group_bias = bias if cols is None else None  # the pooled set needs every candidate
        _score_group(blocks, plan, cand_rows, c_lang, g_ptr, g_col, g_grade, program, out, top, threshold, group_bias,
                     shares)
        del blocks  # the next group's candidate block is not allocated while this one is alive
    nrel, values = out
    return QueryMetrics(tuple(metrics), nrel, values, {k: shares[:, i] for i, k in enumerate(exposure_ks)}), top


def _top_buffer(n_queries: int, n_langs: int, trec_depth: int | None) -> TopK | None:
    if not trec_depth:
        return None
    depth = int(trec_depth)
    require_memory(n_queries * (n_langs + 1) * depth * 8, "--trec-depth",
                   f"the TREC top-{depth} buffer ({n_queries} queries x {n_langs + 1} candidate sets)")
    return TopK(depth, np.zeros((n_queries, n_langs + 1, depth), np.float32),
                np.zeros((n_queries, n_langs + 1, depth), np.int32), np.zeros((n_queries, n_langs + 1), np.int32))


class GroupBlocks:
    """The set-up and loop of the whole-row scorer for one group (:func:`_score_group`): the group's
    candidates ``cand_rows`` as one float32
    block (``c_block``, columns grouped by language ``c_lang``, language L owning columns
    ``lang_ptr[L]:lang_ptr[L+1]``), the languages ``g_lang`` of the golds ``g_col``, and, iterated,
    the query ``rows`` in blocks of ``rows_per_block`` (an (n, N) score block within ``block_mb``):
    (start, end, the block's rows, their float32 embeddings in a reused buffer).
    """

    def __init__(self, run, rows, cand_rows, c_lang, n_langs: int, g_col, block_mb: float):
        from fastir.kernels.upcast import gather_float32

        self._gather, self._queries, self._rows = gather_float32, run.queries.embeddings, rows
        self.c_block = gather_float32(run.candidates.embeddings, cand_rows)
        self.lang_ptr = np.searchsorted(c_lang, np.arange(n_langs + 1)).astype(np.int64)
        self.g_lang = np.ascontiguousarray(c_lang[g_col], dtype=np.int32)
        self.rows_per_block = score_block_rows(len(rows), self.c_block.shape[0], block_mb)

    def __iter__(self):
        q_buf = np.empty((self.rows_per_block, self._queries.shape[1]), dtype=np.float32)
        for s in range(0, len(self._rows), self.rows_per_block):
            e = min(s + self.rows_per_block, len(self._rows))
            b_rows = self._rows[s:e]
            yield s, e, b_rows, self._gather(self._queries, b_rows, q_buf[:e - s])


def _score_group(blocks: GroupBlocks, plan, cand_rows, c_lang, g_ptr, g_col, g_grade, program, out, top, threshold,
                 bias=None, shares=None):
    """Score one group's query rows against its candidates (``cand_rows``, languages ``c_lang``),
    block by block (``blocks``); ``bias``: the language-bias program
    (:func:`fastir.eval.metrics.bias_program`) when the group holds every candidate, computed on the
    same score block (exposure distributions into ``shares``)."""
    from fastir.kernels.ranking import score_block

    n_langs = len(plan.cand_langs)
    s_buf = np.empty((blocks.rows_per_block, blocks.c_block.shape[0]), dtype=np.float32)
    for s, e, b_rows, q in blocks:
        scores = s_buf[:e - s]
        np.matmul(q, blocks.c_block.T, out=scores)
        q_group = plan.query_lang_id[b_rows]
        lo, hi = g_ptr[s], g_ptr[e]
        score_block(scores, blocks.lang_ptr, g_ptr[s:e + 1] - lo, g_col[lo:hi], blocks.g_lang[lo:hi],
                    g_grade[lo:hi], b_rows, q_group, plan.want, program, threshold, out)
        if bias is not None:
            from fastir.kernels.bias import bias_block

            active = plan.want[q_group, n_langs] & (plan.nrel[b_rows, n_langs] > 0)
            bias_block(scores, cand_rows, c_lang, g_ptr[s:e + 1] - lo, g_col[lo:hi], g_grade[lo:hi], b_rows,
                       plan.query_cand_lang[q_group], active, bias, threshold, out[1], shares)
        if top is not None:
            _keep_top(top, scores, c_lang, plan.want, q_group, b_rows, cand_rows)


def _keep_top(top: TopK, scores, c_lang, want, q_group, b_rows, cand_of_col):
    from fastir.kernels.topk import top_k_by_language

    t_score, t_col, t_len = top_k_by_language(scores, c_lang, want, q_group, top.depth)
    top.score[b_rows] = t_score
    top.cand[b_rows] = cand_of_col[t_col]
    top.length[b_rows] = t_len


def local_golds(plan, rows: np.ndarray, position: np.ndarray, cols: np.ndarray | None):
    """Golds of ``rows`` as CSR over those rows, in column indices of the candidate block, with their grades.

    ``position[c]`` is candidate row c's column in the language-grouped table, ``cols`` the
    columns of that table in the block (None = all); golds outside the block are dropped.
    """
    starts = plan.gold_ptr[rows]
    lengths = plan.gold_ptr[rows + 1] - starts
    golds = concat_ranges(starts, lengths)
    col, grade = position[plan.gold_cand[golds]], plan.gold_grade[golds]
    owner = np.repeat(np.arange(len(rows)), lengths)
    if cols is not None:
        local = np.full(len(position), -1, dtype=np.int64)
        local[cols] = np.arange(len(cols))
        col = local[col]
        keep = col >= 0
        col, grade, owner = col[keep], grade[keep], owner[keep]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=len(rows)), out=ptr[1:])
    return ptr, np.ascontiguousarray(col, dtype=np.int64), np.ascontiguousarray(grade, dtype=np.int64)
