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

from fastir.core.errors import InputError
from fastir.eval.aggregate import aggregate
from fastir.eval.cells import DEFAULT_BLOCK_MB, DEFAULT_KS, POOLED, Cell, parse_ks, parse_pairs
from fastir.eval.metrics import (
    DEFAULT_TIES,
    RANK_DISTANCE,
    bias_metrics,
    default_metrics,
    kernel_program,
    parse_metrics,
    reads_unjudged_zero,
    with_rank_distance,
)
from fastir.eval.precision import DEFAULT_PRECISION
from fastir.eval.result import QueryMetrics, ScoreResult, TopK
from fastir.eval.rows import groups, score_rows
from fastir.eval.ties import check_embedding_ties, needs_tie_counts, tie_metrics, tie_precision
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
    precision: str = DEFAULT_PRECISION,
    device: str = "auto",
    dist=None,
    shard_files=None,
    relevance_threshold: int = RELEVANCE_THRESHOLD,
    ties: str = DEFAULT_TIES,
) -> ScoreResult:
    """Score a run dir (path or :class:`fastir.runs.rundir.Run`) on the cells selected by ``pairs``.

    ``metrics``: registry names (``"map,mrr,recall@1,5"`` or a list; default map, mrr and
    recall@k for each k of ``ks``); rank distance is always added. ``per_query``: also build the
    per-query table (``result.per_query``); ``block_mb``: memory budget of one float32 score block;
    ``trec_depth``: also keep the top ``trec_depth`` candidates per query and cell for
    :func:`fastir.eval.trec.write_trec`. ``precision``: ``auto`` (default: exact ranks from the
    fastest certified product block by block, or float32 scores where the command needs them, see
    :func:`fastir.eval.precision.resolve_auto`), ``fp32`` (float32 scores) or a certified one
    (``exact``, ``bf16``, ``int8``: exact ranks, see :mod:`fastir.eval.precision`; one the CPU cannot
    run falls back to ``exact`` and ``result.precision["note"]`` says so). ``relevance_threshold``: a
    judged candidate is relevant at grade >= it (integer >= 1; nDCG's gains are every grade >= 1).
    ``ties``: ``pessimistic`` (default: ties count against the gold), ``optimistic`` or ``expected``
    (float32 scores, :mod:`fastir.eval.ties`); a float16 run scored on float32 products also reports
    the optimistic - pessimistic spread of every cell (``result.extra["tie_spread"]``).
    Bad input (invalid run, unknown language or metric, k <= 0, a threshold < 1, a cell without any
    scorable query) raises :class:`InputError` before any heavy work.
    """
    t0 = time.perf_counter()
    sharded = shard_files is not None or (dist is not None and dist.world_size > 1)
    threshold = parse_threshold(relevance_threshold)
    run, chosen, ks, trec_depth, prec, plan = _prepare(run_or_path, pairs, ks, metrics, block_mb, trec_depth,
                                                       precision, device, sharded, threshold, ties)
    t_plan = time.perf_counter()
    from fastir.eval.gpu import resolve_device

    # The certified precisions run on the CPU, the bias suite on whole rows (fastir.eval.rows).
    device = resolve_device(device, prec.certified or bool(bias_metrics(chosen)))
    shard_settings = settings(pairs, chosen, trec_depth, prec.kind, threshold, ties)
    values, top, compute, counts = _count_and_finalise(run, plan, chosen, block_mb, trec_depth, threshold, prec,
                                                       device, dist, shard_files, shard_settings, ties)
    t_scored = time.perf_counter()
    result = ScoreResult(
        run=run, ks=ks, pairs=str(pairs), query_langs=plan.query_langs, cand_langs=plan.cand_langs,
        query_lang_id=plan.query_lang_id, cells=plan.cells, cell_stats={}, summary={}, per_language={},
        metrics=values, gold_ptr=plan.gold_ptr, gold_cand=plan.gold_cand, top=top, gold_grade=plan.gold_grade,
        relevance_threshold=threshold,
    )
    result.compute = compute
    aggregate(result)
    _record_ties(result, plan, chosen, counts, threshold, ties)
    result.precision = prec.record(result, plan, counts)
    if per_query:
        from fastir.eval.report import per_query_table

        result.per_query = per_query_table(result)
    result.elapsed_s = {"read": t_plan - t0, "score": t_scored - t_plan, "total": time.perf_counter() - t0}
    return result


def _count_and_finalise(run, plan, chosen, block_mb, trec_depth, threshold, prec, device, dist, shard_files,
                        shard_settings, ties=DEFAULT_TIES):
    """(QueryMetrics, TopK or None, the GPU engine's record or None, Counts or None): whole rows for the
    bias suite (:mod:`fastir.eval.rows`), else the per-gold counts of the streaming pass (float32 or
    certified), from shard files, summed over torchrun ranks, or in this process alone."""
    from fastir.eval.gpu import make_engine

    if bias_metrics(chosen):  # the bias suite ranks each query's whole pooled row
        return (*score_rows(run, plan, chosen, block_mb, trec_depth, threshold), None, None)
    if shard_files is not None:
        from fastir.eval.shards import read_shards

        counts = read_shards(shard_files, run, shard_settings, len(plan.gold_cand), len(plan.cand_langs))
        return (*finalise(plan, chosen, counts, threshold, ties), None, counts)
    distributed = dist is not None and dist.world_size > 1
    tie_counts = needs_tie_counts(ties, run)
    if not distributed:  # shards and ranks must agree on what they count: they stay certified
        from fastir.eval.screen import screen

        screen(prec, run, plan)
    engine = prec.engine(may_leave=not distributed) if prec.certified else make_engine(device, dist, run)
    if distributed:
        from fastir.eval.shards import distributed_counts

        counts = distributed_counts(
            run, dist, engine, shard_settings,
            lambda own: np.zeros(len(plan.gold_cand), np.float32) if prec.certified  # exact counts need none
            else group_gold_scores(run, plan, own, block_mb, engine),
            lambda own, gold: count_range(run, plan, own, block_mb, trec_depth, engine, gold, tie_counts))
    else:
        from fastir.eval.certified import Float32Instead

        try:
            counts = count_range(run, plan, (0, len(run.candidates)), block_mb, trec_depth, engine, None, tie_counts)
        except Float32Instead as why:  # auto's probe: bf16 cannot decide this data; the probe is all it cost
            prec.to_float32(str(why))
            engine = make_engine(device, dist, run)
            counts = count_range(run, plan, (0, len(run.candidates)), block_mb, trec_depth, engine, None, tie_counts)
    return (*finalise(plan, chosen, counts, threshold, ties), engine.compute, counts)


def score_shard(run_or_path, index: int, count: int, out_file, pairs: str = "all", ks=DEFAULT_KS,
                block_mb: float = DEFAULT_BLOCK_MB, trec_depth: int | None = None, metrics=None,
                device: str = "auto", relevance_threshold: int = RELEVANCE_THRESHOLD,
                precision: str = DEFAULT_PRECISION, ties: str = DEFAULT_TIES) -> None:
    """Count shard ``index`` of ``count`` (candidate rows :func:`fastir.eval.shards.shard_range`) and
    write its counts to ``out_file`` for ``score_run(..., shard_files=...)`` (no rendezvous)."""
    from fastir.eval.gpu import make_engine, resolve_device
    from fastir.eval.shards import shard_range, write_shard

    threshold = parse_threshold(relevance_threshold)
    run, chosen, ks, trec_depth, prec, plan = _prepare(run_or_path, pairs, ks, metrics, block_mb, trec_depth,
                                                       precision, device, True, threshold, ties)
    if not (isinstance(count, int) and isinstance(index, int) and 0 <= index < count):
        raise InputError(None, "--shard", f"shard {index} of {count} is out of range: expected 0 <= I < N")
    if prec.certified:  # exact counts need no gold scores: each tile decides against the golds' vectors
        engine, gold = prec.engine(may_leave=False), None
    else:
        engine = make_engine(resolve_device(device), None, run)
        gold = group_gold_scores(run, plan, None, block_mb, engine)
    counts = count_range(run, plan, shard_range(len(run.candidates), index, count), block_mb, trec_depth, engine,
                         gold, needs_tie_counts(ties, run))
    write_shard(out_file, run, counts, index, count, settings(pairs, chosen, trec_depth, prec.kind, threshold, ties))


def _prepare(run_or_path, pairs, ks, metrics, block_mb, trec_depth, precision, device, sharded: bool,
             threshold: int, ties: str = DEFAULT_TIES):
    """Checked options and the plan: (run, metrics, ks, trec_depth, PrecisionChoice, plan)."""
    from fastir.eval.certified import choose_precision

    run = run_or_path if isinstance(run_or_path, Run) else read_run(run_or_path)
    chosen = chosen_metrics(ks, metrics)
    ks = tuple(m.k for m in chosen if m.measure.name == "recall")
    trec_depth = _check_options(run, block_mb, trec_depth, precision)
    bias = bias_metrics(chosen)
    check_embedding_ties(ties, chosen)
    prec = tie_precision(ties, precision) or choose_precision(
        precision, trec_depth, bias, device, float(len(run.queries)) * len(run.candidates) * run.dim)
    if sharded and bias:
        raise InputError(None, "--metrics", f"{bias[0].name} ranks each query's whole pooled row, which shards do "
                                            "not add up to: score it in one process")
    return run, chosen, ks, trec_depth, prec, _plan(run, pairs, threshold, reads_unjudged_zero(chosen))


def chosen_metrics(ks, metrics):
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
    from fastir.core.numbers import INT32_MAX, parse_int

    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(None, THRESHOLD_OPTION, f"must be an integer grade >= 1, found {value!r}")
    grade = parse_int(str(value), THRESHOLD_OPTION, hi=INT32_MAX)
    if grade < 1:
        raise InputError(None, THRESHOLD_OPTION, f"must be >= 1 (grade-0 judgments are never relevant), found {grade}")
    return grade


def _check_options(run: Run, block_mb, trec_depth, precision: str):
    """The TREC depth capped by the pool, once the options are checked; else InputError."""
    if not (isinstance(block_mb, (int, float)) and np.isfinite(block_mb) and block_mb > 0):
        raise InputError(None, "--block-mb", f"must be positive, found {block_mb}")
    if trec_depth is not None:
        if int(trec_depth) <= 0:
            raise InputError(None, "--trec-depth", f"must be positive, found {trec_depth}")
        # No candidate set holds more than every candidate: a deeper buffer could never fill.
        trec_depth = min(int(trec_depth), max(1, len(run.candidates)))
    from fastir.eval.precision import PRECISIONS

    if precision not in PRECISIONS:
        raise InputError(None, "--precision", f"must be one of {', '.join(PRECISIONS)}, found {precision!r}")
    return trec_depth


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
    perm: np.ndarray  # int64 candidate rows in language-grouped order (stable): the kernels' column order
    position: np.ndarray  # int64 (n_candidates,): column of each candidate row in that order


def _plan(run: Run, pairs: str, threshold: int = RELEVANCE_THRESHOLD, zero_grades: bool = False) -> _Plan:
    """The cells, the golds (every candidate judged >= 1; also those judged 0 with ``zero_grades``, for
    judged@k: every finaliser but its own skips them) and the kernels' column order."""
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
    positive = grades >= (0 if zero_grades else 1)  # the kernels' golds: gains of nDCG; relevant = grade >= threshold
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
    perm = np.argsort(c_lang_id, kind="stable").astype(np.int64)
    position = np.empty_like(perm)
    position[perm] = np.arange(len(perm))
    return _Plan(query_langs, cand_langs, q_lang_id, c_lang_id, cells, want, as_cand, gold_ptr, gold_cand,
                 gold_grade, nrel, perm, position)


# --------------------------------------------------------------------------------------- scoring


def settings(pairs, metrics, trec_depth, precision, threshold: int = RELEVANCE_THRESHOLD,
             ties: str = DEFAULT_TIES) -> dict:
    """What shards must agree on to add up (the run aside): cells, metrics, TREC depth, precision,
    relevance threshold, and a tie mode other than the default."""
    out = {"pairs": str(pairs), "metrics": [m.name for m in metrics], "trec_depth": trec_depth,
           "precision": precision, "relevance_threshold": threshold}
    return out if ties == DEFAULT_TIES else {**out, "ties": ties}


def count_range(run: Run, plan: _Plan, cand_range, block_mb: float, trec_depth, engine, gold_score=None,
                ties: bool = False):
    """Per-gold counts (and top-k) of every group against the candidates ``cand_range`` = (first, end).

    ``gold_score``: the golds' float32 scores when known (a shard); else read or computed here.
    ``ties``: also count the candidates tied with each gold (float32 counts only).
    """
    from fastir.eval import certified
    from fastir.eval.stream import count_group, empty_counts

    exact = getattr(engine, "certified", False)
    counts = empty_counts(len(plan.gold_cand), len(plan.cand_langs), len(run.queries), trec_depth, exact,
                          ties and not exact)
    if gold_score is not None:
        counts.gold_score[:] = gold_score
    for mask, rows in groups(plan):
        if exact:
            certified.count_group(run, plan, mask, rows, tuple(cand_range), block_mb, engine, counts)
        else:
            count_group(run, plan, mask, rows, tuple(cand_range), block_mb, engine, counts, gold_score is not None)
    return counts


def group_gold_scores(run: Run, plan: _Plan, own, block_mb: float, engine) -> np.ndarray:
    """float32 score of every gold whose candidate row lies in ``own`` (None: all), 0 elsewhere."""
    from fastir.eval.stream import gold_scores, group_golds

    out = np.zeros(len(plan.gold_cand), np.float32)
    for mask, rows in groups(plan):
        g_ptr, g_id = group_golds(plan, mask, rows)
        gold_scores(run, plan, rows, g_ptr, g_id, own, block_mb, engine, out)
    return out


def finalise(plan: _Plan, metrics, counts, threshold: int = RELEVANCE_THRESHOLD, ties: str = DEFAULT_TIES):
    """(QueryMetrics, TopK or None) from the per-gold counts of the whole pool, ties broken as ``ties``
    says (other than pessimistic: from ``counts.tied``, :func:`fastir.eval.ties.tie_metrics`)."""
    from fastir.eval.stream import check_counts_fit, group_golds
    from fastir.kernels.ranking import empty_outputs, metrics_from_counts

    n_queries, n_langs = len(plan.query_lang_id), len(plan.cand_langs)
    nrel, values = empty_outputs(n_queries, n_langs, len(metrics))
    program = kernel_program(metrics)
    cnt = check_counts_fit(counts.cnt)
    for mask, rows in groups(plan):
        g_ptr, g_id = group_golds(plan, mask, rows)
        g_lang = plan.cand_lang_id[plan.gold_cand[g_id]]
        want = plan.want[plan.query_lang_id[rows]]
        if ties == DEFAULT_TIES:
            nrel[rows], values[rows] = metrics_from_counts(g_ptr, g_lang, cnt[g_id], want, program,
                                                           plan.gold_grade[g_id], threshold)
        else:
            nrel[rows], values[rows] = tie_metrics(ties, g_ptr, g_lang, cnt[g_id], counts.tied[g_id], want, metrics,
                                                   plan.gold_grade[g_id], threshold)
    top = None
    if counts.top is not None:
        score, key, length = counts.top
        filled = np.arange(score.shape[2]) < length[:, :, None]
        cand = np.where(filled, plan.perm[key], 0).astype(np.int32)
        top = TopK(score.shape[2], np.where(filled, score, np.float32(0)), cand, length)
    return QueryMetrics(tuple(metrics), nrel, values), top


def _record_ties(result: ScoreResult, plan: _Plan, metrics, counts, threshold: int, ties: str) -> None:
    """summary.json's ``ties`` (the mode) and, where the ties were counted, the
    optimistic - pessimistic spread of every cell (:func:`fastir.eval.ties.tie_spread`)."""
    from fastir.eval.ties import SPREAD_KEY, tie_spread

    result.extra["ties"] = ties
    if counts is None or counts.tied is None:
        return
    by_mode = {ties: result.metrics}
    for mode in ("optimistic", DEFAULT_TIES):
        if mode not in by_mode:
            by_mode[mode] = finalise(plan, metrics, counts, threshold, mode)[0]
    result.extra[SPREAD_KEY] = tie_spread(result, by_mode["optimistic"], by_mode[DEFAULT_TIES])


def default_out_dir(run_path: str | os.PathLike) -> Path:
    return Path(run_path) / "scores"
