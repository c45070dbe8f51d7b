"""The language-bias suite of a ranked run (``fastir score-run``): the registry's bias metrics
(``same_lang@k``, ``lang_jsd@k``, ``lang_jsd_rel@k``, ``peer@k``, ``peer_nonrel@k``; defined in
docs/score.md) on each query's pooled list as the run ranks it.

* Order: score descending, then document id descending (bytewise): trec_eval's order, in every tie
  mode that ranks each document (pessimistic, optimistic, trec_eval: the modes differ in the ranks
  they give the golds, the bias suite reads one list); ``--ties expected`` refuses the suite (it has
  no average over tie orders; :func:`fastir.eval.metrics.check_ties`).
* Depth: the top n of a cutoff k is the first n = min(k, D) documents of the D the run holds for the
  query, as ``fastir score`` takes n = min(k, |S|) of its |S| candidates: at full depth the two agree.
  A relevant document the run did not retrieve lies outside every top n (PEER: unretrieved) and
  counts in JSD-R's relevant languages. summary.json's ``"bias"`` records the order and, per metric
  and pooled cell, how many scored queries hold fewer than k documents.
* Languages: the pool's languages are those of the qrels' relevant documents and of the language
  map; a retrieved document of another language (a ``prefix:`` rule only) is refused, since the
  exposure over languages (and JSD-U's uniform target) needs them all.

The per-query values come from :func:`fastir.kernels.bias.ranked_bias_block`, which gives the
run's ordered lists to the finalisers ``fastir score`` uses.
"""

from __future__ import annotations

import numpy as np

from fastir.core.errors import InputError
from fastir.eval.cells import POOLED
from fastir.eval.metrics import bias_metrics, bias_program, exposure_cutoffs

BIAS_ORDER = "score descending, then document id descending (trec_eval's)"
_OUTSIDE = np.iinfo(np.int64).max  # the position of a relevant document the run did not retrieve


class RankedBias:
    """The bias metrics of one score-run, chunk by chunk: values into the chunk's metric array, exposure
    distributions kept per query."""

    def __init__(self, metrics):
        self.metrics = [m for m in bias_metrics(metrics)]
        self.program = bias_program(metrics)
        self.exposure_ks = exposure_cutoffs(metrics)
        self.shares: list[np.ndarray] = []  # per chunk: (queries, exposure cutoffs, L)

    @classmethod
    def of(cls, metrics) -> RankedBias | None:
        """A :class:`RankedBias` if ``metrics`` holds a bias metric, else None."""
        return cls(metrics) if bias_metrics(metrics) else None

    def add(self, chunk, order, q_ptr, lang, gold, gold_ptr, gold_lang, gold_grade, q_langs, cand_langs, threshold,
            values) -> None:
        """Score the chunk's queries: lines in ``order`` (trec_eval's), query b's lines
        ``q_ptr[b]:q_ptr[b+1]``; ``lang`` (int, L = len(cand_langs): no language of the pool) and
        ``gold`` (-1: not a gold) per ordered line; golds of query b ``gold_ptr[b]:gold_ptr[b+1]`` with
        ``gold_lang`` and ``gold_grade``; ``q_langs`` the queries' languages. Writes ``values[:, L, i]``."""
        from fastir.kernels.bias import ranked_bias_block

        n_langs = len(cand_langs)
        _known_languages(chunk, order, lang, n_langs, cand_langs)
        relevant = gold_grade >= threshold
        rel = np.zeros(len(gold), np.bool_)
        line = np.flatnonzero(gold >= 0)
        rel[line] = relevant[gold[line]]
        owner = np.repeat(np.arange(len(q_ptr) - 1), np.diff(q_ptr))
        pos = np.full(len(gold_grade), _OUTSIDE, np.int64)
        pos[gold[line]] = line - q_ptr[owner[line]]
        g_owner = np.repeat(np.arange(len(gold_ptr) - 1), np.diff(gold_ptr))[relevant]
        counts = np.bincount(g_owner, minlength=len(q_ptr) - 1)
        rel_ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        q_lang = np.array([cand_langs.index(x) if x in cand_langs else -1 for x in q_langs], np.int64)
        shares = np.full((len(q_ptr) - 1, len(self.exposure_ks), n_langs), np.nan)
        ranked_bias_block(q_ptr, lang, rel, rel_ptr, gold_lang[relevant], pos[relevant], q_lang, counts > 0,
                          self.program, values, shares)
        self.shares.append(shares)

    def exposure(self) -> dict:
        """k -> (queries, L) exposure shares, for :class:`fastir.eval.result.QueryMetrics`."""
        return {k: np.concatenate([s[:, i] for s in self.shares]) for i, k in enumerate(self.exposure_ks)}

    def summary(self, result, ndocs: np.ndarray) -> dict:
        """summary.json's ``"bias"``: the order read and, per metric and pooled cell, the scored queries
        whose run holds fewer than k documents (their top k is the D documents retrieved)."""
        pooled = [c for c in result.cells if c.cand_lang == POOLED]
        below = {}
        for m in self.metrics:
            below[m.name] = {c.name: int((ndocs[result.cell_rows(c)[1], -1] < m.k).sum()) for c in pooled}
        return {"order": BIAS_ORDER, "top_k": "the first min(k, depth) documents of the query's list",
                "queries_depth_below_k": below}


def _known_languages(chunk, order, lang, n_langs: int, cand_langs) -> None:
    """InputError at the first retrieved document whose language is not among the pool's."""
    unknown = np.flatnonzero(lang >= n_langs)
    if len(unknown):
        t = int(order[unknown].min())  # the first in the file
        raise InputError(chunk.path, chunk.where(t),
                         f"document {chunk.docids[t].as_py()!r} is in none of the pool's languages "
                         f"({', '.join(cand_langs)}: those of the qrels' relevant documents and the language map); "
                         "the language-bias suite needs every retrieved document's language: give --doc-langs as "
                         "a map naming it")
