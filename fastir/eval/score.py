"""``fastir score``: exact mAP, MRR, Recall@k and rank distance for every language pair of a run.

The metrics (AP, RR, Recall@k, rank distance, the mono / cross / multi summaries) are defined in
docs/score.md, the one place they are written down.

Computation: Q·Cᵀ block by block (float32 BLAS into a reused buffer of ``block_mb`` MiB, never the
whole matrix), each block handed to one parallel Numba pass (:mod:`fastir.kernels.ranking`) that
counts, per query, the candidates of every language scoring at or above each gold. One pass yields
every X→Y cell, the pooled cell and the rank distance.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastir.errors import InputError
from fastir.resources import require_memory
from fastir.runs.rundir import QRELS, Run, read_run
from fastir.eval.cells import DEFAULT_BLOCK_MB, DEFAULT_KS, POOLED, Cell, parse_ks, parse_pairs

SCORES_FORMAT = "fastir-scores/1"
PER_QUERY_FORMAT = "fastir-per-query/1"


@dataclass
class QueryMetrics:
    """Per-query results; set index s < n_langs = candidate language s, s == n_langs = pooled."""

    nrel: np.ndarray  # int32 (n_queries, n_langs + 1): |R_q| per candidate set (0 = not scorable)
    ap: np.ndarray  # float64 (n_queries, n_langs + 1), NaN where not scored
    rr: np.ndarray  # float64 (n_queries, n_langs + 1)
    recall: np.ndarray  # float64 (n_queries, n_langs + 1, len(ks))
    rank_distance: np.ndarray  # float64 (n_queries,), NaN unless pooled with |R_q| >= 2


@dataclass
class TopK:
    """Best ``depth`` candidates per query and set, for TREC export (rows of unscored queries unused)."""

    depth: int
    score: np.ndarray  # float32 (n_queries, n_langs + 1, depth)
    cand: np.ndarray  # int32 candidate rows (n_queries, n_langs + 1, depth)
    length: np.ndarray  # int32 (n_queries, n_langs + 1)


@dataclass
class ScoreResult:
    run: Run
    ks: tuple[int, ...]
    pairs: str
    query_langs: list[str]
    cand_langs: list[str]
    query_lang_id: np.ndarray  # int32 per query row
    cells: list[Cell]
    cell_stats: dict[Cell, dict]  # queries, skipped, map, mrr, recall@k, rank_distance
    summary: dict
    per_language: dict
    metrics: QueryMetrics
    gold_ptr: np.ndarray  # qrels as CSR over query rows: golds of q = gold_cand[gold_ptr[q]:gold_ptr[q+1]]
    gold_cand: np.ndarray
    top: TopK | None = None
    per_query: object | None = None  # pyarrow.Table when per_query=True
    elapsed_s: dict = field(default_factory=dict)

    def set_index(self, cand_lang: str) -> int:
        return len(self.cand_langs) if cand_lang == POOLED else self.cand_langs.index(cand_lang)

    def cell_rows(self, cell: Cell) -> tuple[int, np.ndarray]:
        """(set index of ``cell``'s candidates, query rows scored in ``cell``: its language, >= 1 gold)."""
        s = self.set_index(cell.cand_lang)
        x = self.query_langs.index(cell.query_lang)
        return s, np.flatnonzero((self.query_lang_id == x) & (self.metrics.nrel[:, s] > 0))


def score_run(
    run_or_path,
    pairs: str = "all",
    ks=DEFAULT_KS,
    per_query: bool = False,
    block_mb: float = DEFAULT_BLOCK_MB,
    trec_depth: int | None = None,
) -> ScoreResult:
    """Score a run dir (path or :class:`fastir.runs.rundir.Run`) on the cells selected by ``pairs``.

    ``ks``: Recall@k cutoffs; ``per_query``: also build the per-query table (``result.per_query``);
    ``block_mb``: memory budget of one float32 score block; ``trec_depth``: also keep the top
    ``trec_depth`` candidates per query and cell for :func:`fastir.runs.trec.write_trec`.
    Bad input (invalid run, unknown language, k <= 0, a cell without any scorable query) raises
    :class:`InputError` before any heavy work.
    """
    t0 = time.perf_counter()
    run = run_or_path if isinstance(run_or_path, Run) else read_run(run_or_path)
    ks = parse_ks(ks)
    if not (isinstance(block_mb, (int, float)) and np.isfinite(block_mb) and block_mb > 0):
        raise InputError(None, "--block-mb", f"must be positive, found {block_mb}")
    if trec_depth is not None:
        if int(trec_depth) <= 0:
            raise InputError(None, "--trec-depth", f"must be positive, found {trec_depth}")
        # No candidate set holds more than every candidate: a deeper buffer could never fill.
        trec_depth = min(int(trec_depth), max(1, len(run.candidates)))
    plan = _plan(run, pairs, ks)
    t_plan = time.perf_counter()
    metrics, top = _score_blocks(run, plan, ks, block_mb, trec_depth)
    t_scored = time.perf_counter()

    from fastir.eval.report import aggregate, per_query_table

    result = ScoreResult(
        run=run, ks=ks, pairs=str(pairs), query_langs=plan.query_langs, cand_langs=plan.cand_langs,
        query_lang_id=plan.query_lang_id, cells=plan.cells, cell_stats={}, summary={}, per_language={},
        metrics=metrics, gold_ptr=plan.gold_ptr, gold_cand=plan.gold_cand, top=top,
    )
    aggregate(result)
    if per_query:
        result.per_query = per_query_table(result)
    result.elapsed_s = {"read": t_plan - t0, "score": t_scored - t_plan, "total": time.perf_counter() - t0}
    return result


# -------------------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    query_langs: list[str]
    cand_langs: list[str]
    query_lang_id: np.ndarray  # int32 (n_queries,)
    cand_lang_id: np.ndarray  # int32 (n_candidates,)
    cells: list[Cell]
    want: np.ndarray  # bool (n_query_langs, n_langs + 1): sets to score per query language
    gold_ptr: np.ndarray  # int64 (n_queries + 1,)
    gold_cand: np.ndarray  # int64 candidate rows, grouped by query row
    nrel: np.ndarray  # int64 (n_queries, n_langs + 1) relevant candidates per set, from the qrels


def _plan(run: Run, pairs: str, ks: tuple[int, ...]) -> _Plan:
    query_langs, q_lang_id = run.queries.lang_codes()
    cand_langs, c_lang_id = run.candidates.lang_codes()
    for side, langs in (("queries", query_langs), ("candidates", cand_langs)):
        if POOLED in langs:
            raise InputError(getattr(run, side).path, "lang", f"{POOLED!r} is reserved for the pooled setting")
    if not query_langs or not cand_langs:
        raise InputError(run.path, None, "run has no queries or no candidates")
    cells = parse_pairs(pairs, query_langs, cand_langs)
    n_queries, n_langs = len(run.queries), len(cand_langs)

    q_rows, c_rows = run.qrels_index()
    if len(q_rows) == 0:
        raise InputError(run.path / QRELS, "query_id", "empty qrels: no query has a relevant candidate")
    order = np.argsort(q_rows, kind="stable")
    gold_cand = np.ascontiguousarray(c_rows[order], dtype=np.int64)
    gold_ptr = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(np.bincount(q_rows, minlength=n_queries), out=gold_ptr[1:])
    nrel = np.zeros((n_queries, n_langs + 1), dtype=np.int64)
    nrel[:, :n_langs] = np.bincount(q_rows * n_langs + c_lang_id[c_rows],
                                    minlength=n_queries * n_langs).reshape(n_queries, n_langs)
    nrel[:, n_langs] = nrel[:, :n_langs].sum(axis=1)

    # scorable[x, s]: some query of language x has a gold in candidate set s.
    n_sets = n_langs + 1
    key = (q_lang_id.astype(np.int64)[:, None] * n_sets + np.arange(n_sets)).ravel()
    scorable = np.bincount(key[nrel.ravel() > 0], minlength=len(query_langs) * n_sets).reshape(-1, n_sets) > 0
    q_index = {x: i for i, x in enumerate(query_langs)}
    c_index = {y: i for i, y in enumerate(cand_langs)} | {POOLED: n_langs}
    want = np.zeros((len(query_langs), n_sets), dtype=np.bool_)
    for cell in cells:
        x, s = q_index[cell.query_lang], c_index[cell.cand_lang]
        if not scorable[x, s]:
            raise InputError(run.path / QRELS, cell.name,
                             f"no query in {cell.query_lang!r} has a relevant candidate in "
                             f"{'the pooled set' if s == n_langs else repr(cell.cand_lang)}; "
                             "choose other --pairs")
        want[x, s] = True
    return _Plan(query_langs, cand_langs, q_lang_id, c_lang_id, cells, want, gold_ptr, gold_cand, nrel)


# --------------------------------------------------------------------------------------- scoring


def _score_blocks(run: Run, plan: _Plan, ks, block_mb: float, trec_depth: int | None):
    from fastir.kernels.ranking import empty_outputs, language_columns, score_block
    from fastir.kernels.upcast import gather_float32

    n_queries, n_langs = len(run.queries), len(plan.cand_langs)
    out = empty_outputs(n_queries, n_langs, len(ks))
    top = None
    if trec_depth:
        depth = int(trec_depth)
        require_memory(n_queries * (n_langs + 1) * depth * 8, "--trec-depth",
                       f"the TREC top-{depth} buffer ({n_queries} queries x {n_langs + 1} candidate sets)")
        top = TopK(depth, np.zeros((n_queries, n_langs + 1, depth), np.float32),
                   np.zeros((n_queries, n_langs + 1, depth), np.int32), np.zeros((n_queries, n_langs + 1), np.int32))
    # The kernels want score columns grouped by language: each group's candidates are gathered in
    # that order, upcast to float32 on the way (column i holds candidate row perm[i]).
    perm, _ = language_columns(plan.cand_lang_id, n_langs)
    position = np.empty_like(perm)
    position[perm] = np.arange(len(perm))
    lang_sorted = np.ascontiguousarray(plan.cand_lang_id[perm])
    q_emb = run.queries.embeddings
    ks_arr = np.asarray(ks, dtype=np.int64)
    block_bytes = float(block_mb) * (1 << 20)

    for cand_mask, rows in _groups(plan):
        cols = None if cand_mask.all() else np.flatnonzero(cand_mask[lang_sorted])
        cand_rows = perm if cols is None else perm[cols]  # candidate row of each block column
        c_block = gather_float32(run.candidates.embeddings, cand_rows)
        c_lang = lang_sorted if cols is None else np.ascontiguousarray(lang_sorted[cols])
        lang_ptr = np.searchsorted(c_lang, np.arange(n_langs + 1)).astype(np.int64)
        g_ptr, g_col = _local_golds(plan, rows, position, cols)
        g_lang = np.ascontiguousarray(c_lang[g_col], dtype=np.int32)
        n_cols = c_block.shape[0]
        rows_per_block = int(max(1, min(len(rows), block_bytes // max(1, n_cols * 4))))
        # Equal blocks: the same number of products, a smaller buffer to fault in.
        n_blocks = -(-len(rows) // rows_per_block)
        rows_per_block = -(-len(rows) // n_blocks)
        require_memory(rows_per_block * n_cols * 4, "--block-mb",
                       f"a score block of {rows_per_block} x {n_cols} float32")
        s_buf = np.empty((rows_per_block, n_cols), dtype=np.float32)
        q_buf = np.empty((rows_per_block, q_emb.shape[1]), dtype=np.float32)
        for s in range(0, len(rows), rows_per_block):
            e = min(s + rows_per_block, len(rows))
            n = e - s
            b_rows = rows[s:e]
            gather_float32(q_emb, b_rows, q_buf[:n])
            scores = s_buf[:n]
            np.matmul(q_buf[:n], c_block.T, out=scores)
            q_group = plan.query_lang_id[b_rows]
            lo, hi = g_ptr[s], g_ptr[e]
            score_block(scores, lang_ptr, g_ptr[s:e + 1] - lo, g_col[lo:hi], g_lang[lo:hi], b_rows, q_group,
                        plan.want, ks_arr, out)
            if top is not None:
                _keep_top(top, scores, c_lang, plan.want, q_group, b_rows, cand_rows)
    nrel, ap, rr, recall, rd = out
    return QueryMetrics(nrel, ap, rr, recall, rd), top


def _groups(plan: _Plan):
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


def _local_golds(plan: _Plan, rows: np.ndarray, position: np.ndarray, cols: np.ndarray | None):
    """Golds of ``rows`` as CSR over those rows, in column indices of the candidate block.

    ``position[c]`` is candidate row c's column in the language-grouped table, ``cols`` the
    columns of that table in the block (None = all); golds outside the block are dropped.
    """
    starts = plan.gold_ptr[rows]
    lengths = plan.gold_ptr[rows + 1] - starts
    col = position[plan.gold_cand[concat_ranges(starts, lengths)]]
    owner = np.repeat(np.arange(len(rows)), lengths)
    if cols is not None:
        local = np.full(len(position), -1, dtype=np.int64)
        local[cols] = np.arange(len(cols))
        col = local[col]
        keep = col >= 0
        col, owner = col[keep], owner[keep]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=len(rows)), out=ptr[1:])
    return ptr, np.ascontiguousarray(col, dtype=np.int64)


def _keep_top(top: TopK, scores, c_lang, want, q_group, b_rows, cand_of_col):
    from fastir.kernels.topk import top_k_by_language

    t_score, t_col, t_len = top_k_by_language(scores, c_lang, want, q_group, top.depth)
    top.score[b_rows] = t_score
    top.cand[b_rows] = cand_of_col[t_col]
    top.length[b_rows] = t_len


def default_out_dir(run_path: str | os.PathLike) -> Path:
    return Path(run_path) / "scores"


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for each pair, without a Python loop."""
    total = int(lengths.sum())
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else np.zeros(0, np.int64)
    return np.repeat(starts - offsets, lengths) + np.arange(total)
