"""``fastir score``: exact metrics (mAP, MRR, Recall@k, ... and rank distance) for every language pair of a run.

The metrics are defined in docs/score.md, the one place they are written down; the metric registry
(:mod:`fastir.eval.metrics`) names them and selects their kernels.

Computation: Q·Cᵀ block by block (float32 BLAS into a reused buffer of ``block_mb`` MiB, never the
whole matrix), each block handed to one parallel Numba pass (:mod:`fastir.kernels.ranking`) that
counts, per query, the candidates of every language scoring at or above each gold. One pass yields
every X→Y cell, the pooled cell and the rank distance; the language-bias suite, when asked for,
reads the pooled top k of the same block (:mod:`fastir.kernels.bias`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastir.errors import InputError
from fastir.resources import require_memory, score_block_rows
from fastir.eval.aggregate import aggregate
from fastir.eval.cells import DEFAULT_BLOCK_MB, DEFAULT_KS, POOLED, Cell, parse_ks, parse_pairs
from fastir.eval.metrics import (
    RANK_DISTANCE,
    bias_metrics,
    bias_program,
    default_metrics,
    exposure_cutoffs,
    kernel_program,
    parse_metrics,
    with_rank_distance,
)
from fastir.eval.result import QueryMetrics, ScoreResult, TopK, concat_ranges
from fastir.runs.rundir import QRELS, Run, read_run

# A judged candidate is relevant at grade >= the relevance threshold (default 1, trec_eval's
# relevance_level); every candidate judged >= 1 is passed to the kernels with its grade, the gain
# of nDCG whatever the threshold, as trec_eval's ndcg_cut (binary runs: every grade is 1).
RELEVANCE_THRESHOLD = 1
THRESHOLD_OPTION = "--relevance-threshold"


def score_run(
    run_or_path,
    pairs: str = "all",
    ks=DEFAULT_KS,
    per_query: bool = False,
    block_mb: float = DEFAULT_BLOCK_MB,
    trec_depth: int | None = None,
    metrics=None,
    precision: str = "fp32",
    relevance_threshold: int = RELEVANCE_THRESHOLD,
) -> ScoreResult:
    """Score a run dir (path or :class:`fastir.runs.rundir.Run`) on the cells selected by ``pairs``.

    ``metrics``: registry names (``"map,mrr,recall@1,5"`` or a list; default map, mrr and
    recall@k for each k of ``ks``); rank distance is always added. ``per_query``: also build the
    per-query table (``result.per_query``); ``block_mb``: memory budget of one float32 score block;
    ``trec_depth``: also keep the top ``trec_depth`` candidates per query and cell for
    :func:`fastir.runs.trec.write_trec`. ``precision``: ``fp32`` (float32 scores) or a certified one
    (``exact``, ``bf16``, ``int8``: exact ranks, see :mod:`fastir.eval.precision`; one the CPU cannot
    run falls back to ``exact`` and ``result.precision["note"]`` says so). ``relevance_threshold``: a
    judged candidate is relevant at grade >= it (integer >= 1; nDCG's gains are every grade >= 1).
    Bad input (invalid run, unknown language or metric, k <= 0, a threshold < 1, a cell without any
    scorable query) raises :class:`InputError` before any heavy work.
    """
    t0 = time.perf_counter()
    run = run_or_path if isinstance(run_or_path, Run) else read_run(run_or_path)
    chosen = _chosen_metrics(ks, metrics)
    ks = tuple(m.k for m in chosen if m.measure.name == "recall")
    threshold = parse_threshold(relevance_threshold)
    trec_depth, certified, ran, note = _check_options(run, block_mb, trec_depth, precision)
    if certified and bias_metrics(chosen):
        raise InputError(None, "--precision", f"{bias_metrics(chosen)[0].name} ranks the top k by float32 scores: "
                                              f"use --precision fp32, not {precision}")
    plan = _plan(run, pairs, threshold)
    t_plan = time.perf_counter()
    counters = None
    if certified:
        counters = (ran, np.zeros((len(run.queries), len(plan.cand_langs) + 1), np.int64),
                    np.zeros(len(run.queries), np.int64))
    values, top = _score_blocks(run, plan, chosen, block_mb, trec_depth, counters, threshold)
    t_scored = time.perf_counter()

    result = ScoreResult(
        run=run, ks=ks, pairs=str(pairs), query_langs=plan.query_langs, cand_langs=plan.cand_langs,
        query_lang_id=plan.query_lang_id, cells=plan.cells, cell_stats={}, summary={}, per_language={},
        metrics=values, gold_ptr=plan.gold_ptr, gold_cand=plan.gold_cand, top=top, gold_grade=plan.gold_grade,
        relevance_threshold=threshold,
    )
    aggregate(result)
    if certified:
        from fastir.eval.certified import cell_counters

        result.precision = {"requested": precision, "ran": ran, "note": note, **cell_counters(result, counters[1], ran),
                            "recomputed_candidates": int(counters[2].sum())}
    if per_query:
        from fastir.eval.report import per_query_table

        result.per_query = per_query_table(result)
    result.elapsed_s = {"read": t_plan - t0, "score": t_scored - t_plan, "total": time.perf_counter() - t0}
    return result


def _chosen_metrics(ks, metrics):
    """The metrics to score (default map, mrr, recall@k for each k of ``ks``), rank distance last."""
    chosen = default_metrics(parse_ks(ks)) if metrics is None else parse_metrics(metrics)
    if all(m == RANK_DISTANCE for m in chosen):
        raise InputError(None, "--metrics", "rank distance is always reported; name a metric besides it")
    if all(m.pooled_only for m in chosen):
        raise InputError(None, "--metrics", "pooled-only metrics need a metric of every cell beside them "
                                            "(map, mrr, recall@K, ndcg@K)")
    return with_rank_distance(chosen)


def parse_threshold(value) -> int:
    """The relevance threshold as an int >= 1 (``value``: int or the option's text), else InputError."""
    text = str(value).strip()
    if isinstance(value, bool) or not (isinstance(value, int) or text.lstrip("+-").isdigit()):
        raise InputError(None, THRESHOLD_OPTION, f"must be an integer grade >= 1, found {value!r}")
    if int(text) < 1:
        raise InputError(None, THRESHOLD_OPTION, f"must be >= 1 (grade-0 judgments are never relevant), found {text}")
    return int(text)


def _check_options(run: Run, block_mb, trec_depth, precision: str):
    """(TREC depth capped by the pool, certified?, precision that runs, fallback note), or InputError."""
    if not (isinstance(block_mb, (int, float)) and np.isfinite(block_mb) and block_mb > 0):
        raise InputError(None, "--block-mb", f"must be positive, found {block_mb}")
    if trec_depth is not None:
        if int(trec_depth) <= 0:
            raise InputError(None, "--trec-depth", f"must be positive, found {trec_depth}")
        # No candidate set holds more than every candidate: a deeper buffer could never fill.
        trec_depth = min(int(trec_depth), max(1, len(run.candidates)))
    from fastir.eval.precision import PRECISIONS, resolve

    if precision not in PRECISIONS:
        raise InputError(None, "--precision", f"must be one of {', '.join(PRECISIONS)}, found {precision!r}")
    certified = PRECISIONS[precision].certified
    if certified and trec_depth is not None:
        raise InputError(None, "--trec", f"TREC files carry float32 scores: use --precision fp32, not {precision}")
    ran, note = resolve(precision) if certified else (precision, None)
    return trec_depth, certified, ran, note


# -------------------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    query_langs: list[str]
    cand_langs: list[str]
    query_lang_id: np.ndarray  # int32 (n_queries,)
    cand_lang_id: np.ndarray  # int32 (n_candidates,)
    cells: list[Cell]
    want: np.ndarray  # bool (n_query_langs, n_langs + 1): sets to score per query language
    query_cand_lang: np.ndarray  # int64 (n_query_langs,): each query language as a candidate language id, -1: none
    gold_ptr: np.ndarray  # int64 (n_queries + 1,)
    gold_cand: np.ndarray  # int64 candidate rows, grouped by query row
    gold_grade: np.ndarray  # int64 grade of each gold, aligned with gold_cand
    nrel: np.ndarray  # int64 (n_queries, n_langs + 1) relevant candidates per set, from the qrels


def _plan(run: Run, pairs: str, threshold: int = RELEVANCE_THRESHOLD) -> _Plan:
    query_langs, q_lang_id = run.queries.lang_codes()
    cand_langs, c_lang_id = run.candidates.lang_codes()
    for side, langs in (("queries", query_langs), ("candidates", cand_langs)):
        if POOLED in langs:
            raise InputError(getattr(run, side).path, "lang", f"{POOLED!r} is reserved for the pooled setting")
    if not query_langs or not cand_langs:
        raise InputError(run.path, None, "run has no queries or no candidates")
    cells = parse_pairs(pairs, query_langs, cand_langs)
    n_queries, n_langs = len(run.queries), len(cand_langs)

    q_rows, c_rows, grades = run.qrels_graded()
    positive = grades >= 1  # the kernels' golds: gains of nDCG; relevant = grade >= threshold
    if not positive.all():
        q_rows, c_rows, grades = q_rows[positive], c_rows[positive], grades[positive]
    if not (grades >= threshold).any():
        at = "" if threshold == RELEVANCE_THRESHOLD else f" at {THRESHOLD_OPTION} {threshold}"
        raise InputError(run.path / QRELS, "query_id", f"empty qrels: no query has a relevant candidate{at}")
    order = np.argsort(q_rows, kind="stable")
    gold_cand = np.ascontiguousarray(c_rows[order], dtype=np.int64)
    gold_grade = np.ascontiguousarray(grades[order], dtype=np.int64)
    gold_ptr = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(np.bincount(q_rows, minlength=n_queries), out=gold_ptr[1:])
    nrel = np.zeros((n_queries, n_langs + 1), dtype=np.int64)
    rel = grades >= threshold
    nrel[:, :n_langs] = np.bincount(q_rows[rel] * n_langs + c_lang_id[c_rows[rel]],
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
    as_cand = np.array([c_index.get(x, -1) if x != POOLED else -1 for x in query_langs], dtype=np.int64)
    return _Plan(query_langs, cand_langs, q_lang_id, c_lang_id, cells, want, as_cand, gold_ptr, gold_cand,
                 gold_grade, nrel)


# --------------------------------------------------------------------------------------- scoring


def _score_blocks(run: Run, plan: _Plan, metrics, block_mb: float, trec_depth: int | None, certified=None,
                  threshold: int = RELEVANCE_THRESHOLD):
    from fastir.kernels.ranking import empty_outputs, language_columns

    n_queries, n_langs = len(run.queries), len(plan.cand_langs)
    out = empty_outputs(n_queries, n_langs, len(metrics))
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
    program = kernel_program(metrics)
    bias = bias_program(metrics) if bias_metrics(metrics) else None
    exposure_ks = exposure_cutoffs(metrics)
    shares = np.full((n_queries, len(exposure_ks), n_langs), np.nan)
    for cand_mask, rows in _groups(plan):
        cols = None if cand_mask.all() else np.flatnonzero(cand_mask[lang_sorted])
        cand_rows = perm if cols is None else perm[cols]  # candidate row of each block column
        c_lang = lang_sorted if cols is None else np.ascontiguousarray(lang_sorted[cols])
        g_ptr, g_col, g_grade = _local_golds(plan, rows, position, cols)
        if certified is not None:  # --precision exact|bf16|int8: (engine, undecided, recomputed)
            from fastir.eval.certified import score_group

            score_group(run, plan, rows, cand_rows, c_lang, g_ptr, g_col, g_grade, program, block_mb, out, *certified,
                        threshold)
            continue
        group_bias = bias if cols is None else None  # the pooled set needs every candidate
        _score_group(run, plan, rows, cand_rows, c_lang, g_ptr, g_col, g_grade, program, block_mb, out, top, threshold,
                     group_bias, shares)
    nrel, values = out
    return QueryMetrics(tuple(metrics), nrel, values, {k: shares[:, i] for i, k in enumerate(exposure_ks)}), top


def _score_group(run: Run, plan: _Plan, rows, cand_rows, c_lang, g_ptr, g_col, g_grade, program, block_mb, out,
                 top, threshold, bias=None, shares=None):
    """Score the query ``rows`` of one group against its candidates (``cand_rows``), block by block;
    ``bias``: the language-bias program (:func:`fastir.eval.metrics.bias_program`) when the group
    holds every candidate, computed on the same score block (exposure distributions into ``shares``)."""
    from fastir.kernels.ranking import score_block
    from fastir.kernels.upcast import gather_float32

    n_langs = len(plan.cand_langs)
    c_block = gather_float32(run.candidates.embeddings, cand_rows)
    lang_ptr = np.searchsorted(c_lang, np.arange(n_langs + 1)).astype(np.int64)
    g_lang = np.ascontiguousarray(c_lang[g_col], dtype=np.int32)
    q_emb = run.queries.embeddings
    n_cols = c_block.shape[0]
    rows_per_block = score_block_rows(len(rows), n_cols, block_mb)
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
        score_block(scores, lang_ptr, g_ptr[s:e + 1] - lo, g_col[lo:hi], g_lang[lo:hi], g_grade[lo:hi], b_rows,
                    q_group, plan.want, program, threshold, out)
        if bias is not None:
            from fastir.kernels.bias import bias_block

            active = plan.want[q_group, n_langs] & (plan.nrel[b_rows, n_langs] > 0)
            bias_block(scores, cand_rows, c_lang, g_ptr[s:e + 1] - lo, g_col[lo:hi], g_grade[lo:hi], b_rows,
                       plan.query_cand_lang[q_group], active, bias, threshold, out[1], shares)
        if top is not None:
            _keep_top(top, scores, c_lang, plan.want, q_group, b_rows, cand_rows)


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


def _keep_top(top: TopK, scores, c_lang, want, q_group, b_rows, cand_of_col):
    from fastir.kernels.topk import top_k_by_language

    t_score, t_col, t_len = top_k_by_language(scores, c_lang, want, q_group, top.depth)
    top.score[b_rows] = t_score
    top.cand[b_rows] = cand_of_col[t_col]
    top.length[b_rows] = t_len


def default_out_dir(run_path: str | os.PathLike) -> Path:
    return Path(run_path) / "scores"
