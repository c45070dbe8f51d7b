"""Quick held-out evaluation while training, scored by ``fastir score`` itself.

The held-out data is any dataset of :mod:`fastir.data.registry` (``xquad-r``, ``mlqa-r``, a
directory) or a train table (relevance = same ``xling_id``; candidates = the table's distinct passages).
The current model embeds it (eval mode, L2-normalised, the training prefixes) into an in-memory
:class:`fastir.runs.rundir.Run`, and :func:`fastir.eval.score.score_run` scores the pooled cells (X→all,
LAReQA's setting with every language's candidates in one ranking), so the numbers logged while
training are the final ``fastir score`` numbers: ``eval_pooled_map`` is ``micro_multi_map`` and
``eval_multi_map`` is multi, both defined in docs/score.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastir.core.errors import InputError


@dataclass
class EvalSet:
    name: str
    query_ids: list[str]
    query_langs: list[str]
    query_groups: list[str] | None  # parallel-group ids, or None
    queries: list[str]
    candidate_ids: list[str]
    candidate_langs: list[str]
    candidates: list[str]
    qrels_query_id: list[str]
    qrels_candidate_id: list[str]
    qrels_relevance: list[int]


def load_eval_set(source: str | os.PathLike, *, langs: list[str] | None = None, max_queries: int = 0,
                  seed: int = 0) -> EvalSet:
    """Build an :class:`EvalSet`; ``max_queries`` > 0 keeps a seeded random subset of the queries
    (all candidates are kept)."""
    path = Path(os.fspath(source))
    es = _from_train_table(path, langs) if path.is_file() else _from_dataset(source, langs)
    if not any(grade >= 1 for grade in es.qrels_relevance):
        raise InputError(source, None, "held-out evaluation data has no query with a relevant candidate")
    if 0 < max_queries < len(es.query_ids):
        keep = np.sort(np.random.default_rng(seed).choice(len(es.query_ids), size=max_queries, replace=False))
        kept = {es.query_ids[i] for i in keep}
        qrels = [r for r in zip(es.qrels_query_id, es.qrels_candidate_id, es.qrels_relevance) if r[0] in kept]
        groups = None if es.query_groups is None else [es.query_groups[i] for i in keep]
        es = EvalSet(es.name, [es.query_ids[i] for i in keep], [es.query_langs[i] for i in keep], groups,
                     [es.queries[i] for i in keep], es.candidate_ids, es.candidate_langs, es.candidates,
                     [r[0] for r in qrels], [r[1] for r in qrels], [r[2] for r in qrels])
    return es


def _from_dataset(source, langs) -> EvalSet:
    from fastir.data.registry import open_dataset

    ds = open_dataset(source, langs=langs)
    q, c, r = ds.queries(), ds.candidates(), ds.qrels()
    return EvalSet(ds.name, list(q.ids), list(q.langs), None if q.groups is None else list(q.groups), list(q.texts),
                   list(c.ids), list(c.langs), list(c.texts), list(r.query_ids), list(r.candidate_ids),
                   list(r.relevance))


def _from_train_table(path: Path, langs) -> EvalSet:
    from fastir.data.train_table import open_train_table

    table = open_train_table(path)
    # Held-out sets are small: decode the four columns once.
    cols = {name: table.table.column(name).to_pylist() for name in ("xling_id", "lang", "query", "passage")}
    rows = [i for i, lang in enumerate(cols["lang"]) if langs is None or lang in langs]
    cand_of: dict[tuple[str, str], int] = {}  # (lang, passage text) -> candidate index
    cand_ids, cand_langs, cand_texts, cand_xling = [], [], [], []
    for i in rows:
        key = (cols["lang"][i], cols["passage"][i])
        if key not in cand_of:
            cand_of[key] = len(cand_ids)
            cand_ids.append(f"c{len(cand_ids)}")
            cand_langs.append(key[0])
            cand_texts.append(key[1])
            cand_xling.append({cols["xling_id"][i]})
        else:
            cand_xling[cand_of[key]].add(cols["xling_id"][i])
    by_xling: dict[str, list[str]] = {}
    for cid, xs in zip(cand_ids, cand_xling):
        for x in xs:
            by_xling.setdefault(x, []).append(cid)
    qids = [f"{cols['xling_id'][i]}_{cols['lang'][i]}" for i in rows]
    qrels = [(qid, cid) for qid, i in zip(qids, rows) for cid in by_xling[cols["xling_id"][i]]]
    return EvalSet(path.name, qids, [cols["lang"][i] for i in rows], [cols["xling_id"][i] for i in rows],
                   [cols["query"][i] for i in rows], cand_ids, cand_langs, cand_texts,
                   [q for q, _ in qrels], [c for _, c in qrels], [1] * len(qrels))


def evaluate(encoder, es: EvalSet, *, query_prefix: str = "", passage_prefix: str = "") -> dict:
    """Embed ``es`` with ``encoder`` (a fastir.encoding.encoder.Encoder, put in eval mode here and restored
    after: no dropout, so evaluating consumes no RNG) and score its pooled cells."""
    from fastir.encoding.encoder import encode
    from fastir.runs.rundir import run_from_arrays
    from fastir.eval.score import score_run

    model = encoder.model
    was_training = model.training
    model.eval()
    try:
        q = encode(es.queries, model=encoder, prefix=query_prefix, normalize=True)
        c = encode(es.candidates, model=encoder, prefix=passage_prefix, normalize=True)
    finally:
        model.train(was_training)
    run = run_from_arrays(
        f"<held-out {es.name}>", {"dataset": es.name, "model": "training", "dtype": "float32", "normalized": True},
        query_ids=es.query_ids, query_langs=es.query_langs, query_groups=es.query_groups, query_embeddings=q,
        candidate_ids=es.candidate_ids, candidate_langs=es.candidate_langs, candidate_embeddings=c,
        qrels_query_ids=es.qrels_query_id, qrels_candidate_ids=es.qrels_candidate_id,
        qrels_relevance=es.qrels_relevance)
    summary = score_run(run, pairs="multi", ks=(1,)).summary
    return {"eval_pooled_map": summary["micro_multi_map"], "eval_multi_map": summary["multi"]["map"],
            "eval_multi_r1": summary["multi"]["recall@1"], "eval_queries": len(es.query_ids),
            "eval_candidates": len(es.candidate_ids)}
