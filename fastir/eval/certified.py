"""Certified scoring of one candidate group: low-precision product, exact ranks, undecided counters.

:func:`score_group` replaces the float32 product + fused count of :mod:`fastir.eval.score` for
``--precision exact|bf16|int8``: per query block, the product engine of
:mod:`fastir.eval.precision` writes approximate scores and their bound, the certified kernel
(:mod:`fastir.kernels.certified`) counts every gold's rank on the exact scores, and the metrics
come from those counts exactly as on the float32 path. :func:`cell_counters` sums the undecided
candidate–gold pairs per cell.
"""

from __future__ import annotations

import numpy as np


def score_group(blocks, plan, g_ptr, g_col, g_grade, program, out, name, undecided, recomputed, threshold):
    """:func:`fastir.eval.rows._score_group` with the certified engine ``name``: one group's query
    rows against its candidates, block by block (``blocks``, a :class:`fastir.eval.rows.GroupBlocks`),
    ``out`` = (nrel, values) filled at those rows, plus two counters incremented in place:
    ``undecided`` (n_queries, n_langs + 1) int64, pairs left undecided per query and candidate set,
    and ``recomputed`` (n_queries,) int64, candidates recomputed per query; ``threshold``: the
    relevance threshold of the grades (``fastir.eval.score.RELEVANCE_THRESHOLD``).
    """
    from fastir.eval.precision import product
    from fastir.kernels.certified import certified_counts
    from fastir.kernels.ranking import metrics_from_counts

    n_langs = len(plan.cand_langs)
    engine = product(name, blocks.c_block)
    a_buf = np.empty((blocks.rows_per_block, blocks.c_block.shape[0]), dtype=engine.out_dtype)
    for s, e, b_rows, q in blocks:
        n = e - s
        bound = engine.block(q, a_buf[:n])
        lo, hi = g_ptr[s], g_ptr[e]
        ptr = g_ptr[s:e + 1] - lo
        lang = blocks.g_lang[lo:hi]
        cnt, _, und, rec = certified_counts(a_buf[:n], bound, engine.w, q, blocks.c_block, blocks.lang_ptr, ptr,
                                            g_col[lo:hi], lang, engine.q_norm, engine.c_norm)
        want = plan.want[plan.query_lang_id[b_rows]]
        for dst, src in zip(out, metrics_from_counts(ptr, lang, cnt, want, program, gold_grade=g_grade[lo:hi],
                                                     threshold=threshold)):
            dst[b_rows] = src
        owner = np.repeat(np.arange(n), np.diff(ptr))
        per_set = np.bincount(owner * (n_langs + 1) + lang, weights=und[np.arange(len(lang)), lang],
                              minlength=n * (n_langs + 1)).astype(np.int64).reshape(n, n_langs + 1)
        per_set[:, n_langs] = np.bincount(owner, weights=und.sum(axis=1), minlength=n).astype(np.int64)
        undecided[b_rows] += per_set
        recomputed[b_rows] += rec


def cell_counters(result, undecided: np.ndarray, ran: str | None = None) -> dict:
    """Per cell: ``undecided`` pairs (into ``result.cell_stats``); returns the run totals, and the
    ``device`` the product of precision ``ran`` ran on.

    A cell's candidate–gold pairs are sum over its queries of |G ∩ S| · |S|; ``undecided`` counts
    those the bound left open (each decided by an exact recomputation).
    """
    n_langs = len(result.cand_langs)
    cand_lang = result.run.candidates.lang_codes()[1]
    size = np.append(np.bincount(cand_lang, minlength=n_langs), len(cand_lang)).astype(np.int64)
    total_und = total_pairs = 0
    for cell in result.cells:
        s, rows = result.cell_rows(cell)
        und = int(undecided[rows, s].sum())
        result.cell_stats[cell]["undecided"] = und
        total_und += und
        total_pairs += int(result.metrics.nrel[rows, s].astype(np.int64).sum() * size[s])
    from fastir.eval.precision import device_for

    device = {} if ran is None else {"device": device_for(ran)}
    return {**device, "undecided_pairs": total_und, "candidate_gold_pairs": total_pairs,
            "undecided_fraction": total_und / total_pairs if total_pairs else 0.0}
