"""``fastir score --ties``: the tie modes on embedding runs, and the tie spread of float16 runs.

The float32 pass (:mod:`fastir.eval.stream`) counts, per gold d and candidate language L,
``cnt[d, L]`` (candidates scoring >= d) and, for the tie modes, ``tied[d, L]`` (scoring exactly
d's score, d included; :func:`fastir.kernels.tiles.count_tile`). In a candidate set S,
above_S(d) = Σ_{L∈S} (cnt − tied) and tied_S(d) = Σ_{L∈S} tied — what a ranked run gives
:mod:`fastir.kernels.ties`, whose definitions apply unchanged:

* ``pessimistic``: rank = above + tied (``cnt``: today's metrics, the default);
* ``optimistic``: rank = above + 1 + the golds of S tied with d placed before it, the tied golds
  first by grade descending (then by qrels order);
* ``expected``: (above, tied) to the closed-form expected finalisers (McSherry & Najork, ECIR 2008).

Two golds of one query tie exactly when their pooled ``above`` counts are equal (a gold scoring
lower has the other and all above it strictly above it), so no gold score is needed: shards and
torchrun ranks only sum ``tied`` beside ``cnt``. Tie counts exist on the float32 pass only; the
certified precisions rank exact products, so ``--ties optimistic|expected`` scores float32.
"""

from __future__ import annotations

import numpy as np

from fastir.core.errors import InputError
from fastir.eval.metrics import DEFAULT_TIES, TIES_OPTION, check_ties

# The tie modes of embedding runs: trec_eval's (doc id order) belongs to ranked runs (fastir score-run).
EMBEDDING_TIE_MODES = ("pessimistic", "optimistic", "expected")
SPREAD_KEY = "tie_spread"  # summary.json: per cell, optimistic - pessimistic of each metric


def check_embedding_ties(mode, metrics) -> str:
    """``mode`` checked for ``fastir score`` (one of :data:`EMBEDDING_TIE_MODES`, every metric
    computable in it), else InputError."""
    if mode == "trec_eval":
        raise InputError(None, TIES_OPTION, "trec_eval breaks ties by document id, which ranked runs have "
                                            "(fastir score-run); for embeddings use "
                                            f"{', '.join(EMBEDDING_TIE_MODES)}")
    if mode not in EMBEDDING_TIE_MODES:
        raise InputError(None, TIES_OPTION, f"must be one of {', '.join(EMBEDDING_TIE_MODES)}, found {mode!r}")
    from fastir.eval.metrics import bias_metrics

    bias = bias_metrics(metrics)
    if bias and mode != DEFAULT_TIES:  # whole rows ranked by score then row (fastir.kernels.bias): no tie counts
        raise InputError(None, TIES_OPTION, f"{bias[0].name} ranks each pooled row by score, then candidate row: "
                                            f"use --ties {DEFAULT_TIES} with it, not {mode}")
    return check_ties(mode, metrics)


def needs_tie_counts(mode: str, run) -> bool:
    """Whether the float32 pass counts ties: a tie mode asks for them, or a float16 run (its tie spread)."""
    return mode != DEFAULT_TIES or run.candidates.chunks[0].dtype == np.float16


def tie_precision(mode: str, precision: str):
    """The PrecisionChoice for a tie mode other than pessimistic (float32 scores, whose ties are
    counted), or None where ``--precision`` decides as usual; InputError for an explicit certified one."""
    from fastir.eval.certified import AUTO, PrecisionChoice
    from fastir.eval.precision import FP32

    if mode == DEFAULT_TIES or precision == FP32:
        return None
    if precision == AUTO:
        return PrecisionChoice(AUTO, False, reason=f"fp32: {TIES_OPTION} {mode} counts the ties of float32 scores")
    raise InputError(None, "--precision", f"{TIES_OPTION} {mode} counts the ties of float32 scores: use "
                                          f"--precision fp32 or auto, not {precision}")


def tie_metrics(mode: str, g_ptr, g_lang, cnt, tied, want, metrics, grade, threshold: int):
    """(nrel int32 (B, n_sets), values float64 (B, n_sets, m)) of one group's B queries in ``mode``
    (``optimistic`` or ``expected``) from its golds' counts; sets not in ``want`` (B, n_sets): 0 / NaN."""
    from fastir.eval.metrics import expected_program, kernel_program
    from fastir.kernels.ranking import NOT_IN_SET, metrics_from_ranks
    from fastir.kernels.ties import expected_metrics

    cnt, tied, g_lang = np.asarray(cnt, np.int64), np.asarray(tied, np.int64), np.asarray(g_lang, np.int64)
    n_golds, n_langs = cnt.shape
    idx = np.arange(n_golds)
    above = cnt - tied
    pooled_above = above.sum(axis=1)
    per_set = np.full((n_golds, n_langs + 1), NOT_IN_SET, np.int64)
    if mode == "expected":
        size = np.zeros_like(per_set)
        per_set[idx, g_lang], size[idx, g_lang] = above[idx, g_lang], tied[idx, g_lang]
        per_set[:, n_langs], size[:, n_langs] = pooled_above, tied.sum(axis=1)
        nrel, values = expected_metrics(g_ptr, grade, per_set, size, expected_program(metrics), threshold)
    else:
        owner = np.repeat(np.arange(len(g_ptr) - 1), np.diff(g_ptr))
        per_set[idx, g_lang] = above[idx, g_lang] + 1 + _tied_before(owner, g_lang, pooled_above, grade,
                                                                     tied[idx, g_lang] > 1)
        per_set[:, n_langs] = pooled_above + 1 + _tied_before(owner, np.zeros_like(g_lang), pooled_above, grade,
                                                              tied.sum(axis=1) > 1)
        nrel, values = metrics_from_ranks(g_ptr, grade, per_set, kernel_program(metrics), threshold)
    off = ~np.asarray(want, np.bool_)
    nrel[off], values[off] = 0, np.nan
    return nrel, values


def _tied_before(owner, key, tie, grade, shared) -> np.ndarray:
    """Per gold, the golds of its (query, ``key``) with its ``tie`` value ahead of it when tied golds
    come first by grade descending, then in qrels order; only golds ``shared`` (tied with some other
    candidate) can have one, so only they are sorted."""
    out = np.zeros(len(owner), np.int64)
    sel = np.flatnonzero(shared)
    if len(sel) < 2:
        return out
    order = sel[np.lexsort((sel, -np.asarray(grade)[sel], tie[sel], key[sel], owner[sel]))]
    o, k, t = owner[order], key[order], tie[order]
    new = np.ones(len(order), np.bool_)
    new[1:] = (o[1:] != o[:-1]) | (k[1:] != k[:-1]) | (t[1:] != t[:-1])
    start = np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))
    out[order] = np.arange(len(order)) - start
    return out


def tie_spread(result, optimistic, pessimistic) -> dict:
    """Per cell name, each metric's cell value under optimistic minus under pessimistic tie breaking
    (:class:`fastir.eval.result.QueryMetrics` of both): how much ties can move the cell. Both modes
    score the same queries of a cell (ties move ranks, not |R|; unscored entries are NaN in both), so
    it is the cell's mean of the per-query differences (a pooled-only metric: over the queries where
    it is defined, as its cell value; None outside pooled cells)."""
    diff = optimistic.values - pessimistic.values
    defined = ~np.isnan(diff)
    means = {}
    for x in range(len(result.query_langs)):
        rows = result.query_lang_id == x
        n = defined[rows].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[result.query_langs[x]] = np.where(n > 0, np.nansum(diff[rows], axis=0) / np.maximum(n, 1), np.nan)
    out = {}
    for cell in result.cells:
        mean = means[cell.query_lang][result.set_index(cell.cand_lang)]
        out[cell.name] = {m.name: None if np.isnan(mean[i]) or (m.pooled_only and cell.kind != "multi")
                          else float(mean[i]) for i, m in enumerate(pessimistic.metrics)}
    return out
