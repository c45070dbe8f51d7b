"""A sentence-transformers evaluator scored by fastir's exact engine: every cell of a multilingual
collection, in memory, as one flat dict of metrics (docs/sentence-transformers.md).

:class:`FastirEvaluator` follows sentence-transformers' evaluator interface (``BaseEvaluator``:
``__call__(model, output_path=None, epoch=-1, steps=-1) -> dict``, ``primary_metric``,
``greater_is_better``, keys prefixed with ``name``), so ``SentenceTransformerTrainer(evaluator=...)``
runs it every ``eval_steps`` and ``metric_for_best_model="eval_<name>_multi_map"`` picks checkpoints
by it. The data is any dataset of :mod:`fastir.data.registry` (``xquad-r``, ``mlqa-r``, a LAReQA or
BEIR directory), read once by :func:`fastir.train.heldout.load_eval_set` (languages, a seeded query
cap). Each call encodes with the model's own ``encode_query`` / ``encode_document`` (its prompts,
max length and similarity honoured), builds an in-memory run and scores it with
:func:`fastir.eval.score.score_run`: the numbers are those of ``fastir embed`` + ``fastir score`` on
the same checkpoint. Under DDP the trainer runs evaluators on rank 0 only and sentence-transformers
shards that rank's ``encode_*`` calls over every rank; scoring then runs once, on rank 0.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from fastir.core.errors import InputError
from fastir.eval.cells import DEFAULT_KS, KINDS
from fastir.eval.metrics import RANK_DISTANCE

EXTRA = "st"
# The similarity functions whose ranking is the dot product of (normalised) embeddings.
SIMILARITIES = {"cosine": True, "dot": False}


def require(module: str, extra: str = EXTRA):
    """Import ``module`` (an optional peer) or raise the one-line error naming the extra that brings it."""
    try:
        importlib.import_module(module.split(".")[0])  # the package itself: its absence is what the error names
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise InputError(None, module.split(".")[0], f"not installed; pip install 'fastir[{extra}]'") from None


class _EvaluatorBody:
    """The body of :class:`FastirEvaluator` (its docstring says what it does)."""

    def __init__(self, dataset: str | os.PathLike, *, langs: list[str] | None = None, pairs: str = "all",
                 metrics=None, ks=DEFAULT_KS, max_queries: int = 0, seed: int = 0, name: str = "fastir",
                 primary_metric: str = "multi_map", cell_metrics: bool = False, batch_size: int = 32,
                 query_prompt: str | None = None, query_prompt_name: str | None = None,
                 corpus_prompt: str | None = None, corpus_prompt_name: str | None = None,
                 block_mb: float | None = None, show_progress_bar: bool = False):
        from fastir.eval.score import chosen_metrics
        from fastir.train.heldout import load_eval_set

        super().__init__()
        self.metrics = chosen_metrics(ks, metrics)  # checked now: bad names fail before training starts
        self.data = load_eval_set(dataset, langs=langs, max_queries=int(max_queries), seed=seed)
        self.dataset, self.pairs, self.name = os.fspath(dataset), str(pairs), name
        self.cell_metrics, self.batch_size, self.block_mb = cell_metrics, int(batch_size), block_mb
        self.prompts = {"query": (query_prompt, query_prompt_name), "document": (corpus_prompt, corpus_prompt_name)}
        self.show_progress_bar = show_progress_bar
        self.primary_metric = primary_metric
        self.greater_is_better = not primary_metric.endswith(RANK_DISTANCE.name)  # ranks: lower is better
        self.last_result = None  # the ScoreResult of the latest call

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        result = self.score(model, per_query=output_path is not None)
        flat = flat_metrics(result, self.cell_metrics)
        primary = self.primary_metric.removeprefix(f"{self.name}_") if self.name else self.primary_metric
        if primary not in flat:
            raise InputError(None, "primary_metric", f"{self.primary_metric!r} is not among the evaluator's keys "
                                                     f"({', '.join(sorted(flat))})")
        if output_path is not None:
            from fastir.eval.report import write_scores

            write_scores(result, Path(output_path) / self.output_name(epoch, steps), overwrite=True)
        metrics = self.prefix_name_to_metrics(flat, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def output_name(self, epoch, steps) -> str:
        """The folder of one call's score files under ``output_path``."""
        at = "final" if epoch == -1 and steps == -1 else f"steps-{steps}" if steps != -1 else f"epoch-{epoch}"
        return f"{self.name or 'fastir'}-{at}"

    def score(self, model, per_query: bool = False):
        """The :class:`fastir.eval.result.ScoreResult` of ``model`` on the evaluation data."""
        from fastir.eval.cells import DEFAULT_BLOCK_MB
        from fastir.eval.score import score_run

        run = self.run(model)
        result = score_run(run, pairs=self.pairs, metrics=[m.name for m in self.metrics], per_query=per_query,
                           block_mb=self.block_mb or DEFAULT_BLOCK_MB)
        self.last_result = result
        return result

    def run(self, model):
        """The model's in-memory run (:func:`fastir.runs.rundir.run_from_arrays`) of the evaluation data."""
        from fastir.runs.rundir import run_from_arrays

        normalize = _normalizes(model)
        es = self.data
        q = self._encode(model.encode_query, es.queries, "query", normalize)
        c = self._encode(model.encode_document, es.candidates, "document", normalize)
        meta = {"dataset": es.name, "model": "sentence-transformers (in training)", "dtype": "float32",
                "normalized": normalize}
        return run_from_arrays(
            f"<{self.name or 'fastir'} evaluator: {es.name}>", meta, query_ids=es.query_ids,
            query_langs=es.query_langs, query_groups=es.query_groups, query_embeddings=q,
            candidate_ids=es.candidate_ids, candidate_langs=es.candidate_langs, candidate_embeddings=c,
            qrels_query_ids=es.qrels_query_id, qrels_candidate_ids=es.qrels_candidate_id,
            qrels_relevance=es.qrels_relevance)

    def _encode(self, encode, texts, side: str, normalize: bool):
        import numpy as np

        prompt, prompt_name = self.prompts[side]
        emb = encode(texts, prompt=prompt, prompt_name=prompt_name, batch_size=self.batch_size,
                     show_progress_bar=self.show_progress_bar, convert_to_numpy=True, normalize_embeddings=normalize)
        return np.asarray(emb, dtype=np.float32)

    def get_config_dict(self) -> dict:
        return {"dataset": self.dataset, "pairs": self.pairs, "metrics": [m.name for m in self.metrics],
                "queries": len(self.data.query_ids), "candidates": len(self.data.candidate_ids)}


def _normalizes(model) -> bool:
    """Whether ``model``'s similarity ranks as the dot product of L2-normalised embeddings (cosine) or
    of raw ones (dot); fastir ranks by dot products, so any other similarity is refused."""
    name = getattr(model, "similarity_fn_name", None) or "cosine"
    if name not in SIMILARITIES:
        raise InputError(None, "similarity_fn_name", f"fastir ranks by dot products: {name!r} is not supported "
                                                     f"(use {' or '.join(SIMILARITIES)})")
    return SIMILARITIES[name]


def flat_metrics(result, cell_metrics: bool = False) -> dict[str, float]:
    """The score result as one flat dict: ``<kind>_<metric>`` for mono / cross / multi (each the mean
    of its cells, docs/score.md), ``micro_multi_map``, ``rank_distance`` (macro over query languages)
    and, with ``cell_metrics``, ``<X>-<Y>_<metric>`` for every scored cell. Undefined values are left out."""
    out: dict[str, float] = {}
    summary = result.summary
    averaged = [m.name for m in result.metrics.metrics if not m.pooled_only]
    for kind in KINDS:
        for name in averaged if summary.get(kind) else ():
            out[f"{kind}_{name}"] = summary[kind][name]
    if summary.get("micro_multi_map") is not None:
        out["micro_multi_map"] = summary["micro_multi_map"]
    for m in result.metrics.metrics:
        if m.pooled_only and summary.get(m.name) and summary[m.name]["macro"] is not None:
            out[m.name] = summary[m.name]["macro"]
    if cell_metrics:
        for cell, stats in result.cell_stats.items():
            for m in result.metrics.metrics:
                if stats.get(m.name) is not None:
                    out[f"{cell.name}_{m.name}"] = stats[m.name]
    return {k: float(v) for k, v in out.items() if v is not None and v == v}


_DOC = """sentence-transformers evaluator: fastir's exact scores of every cell of a multilingual dataset.

    ``dataset``: a registry name (``xquad-r``, ``mlqa-r``) or a LAReQA / BEIR directory; ``langs``:
    languages kept (None: all); ``pairs``: cells as ``fastir score --pairs`` (all, mono, cross,
    multi, en-de,...); ``metrics`` / ``ks``: as ``fastir score --metrics`` / ``--k``;
    ``max_queries``: a seeded random subset of the queries (0: all; every candidate is kept);
    ``primary_metric``: the key model selection reads (``multi_map``, ``micro_multi_map``,
    ``cross_recall@1``, ``de-all_map`` with ``cell_metrics``...); ``cell_metrics``: also one key per
    cell and metric; prompts as sentence-transformers' ``InformationRetrievalEvaluator``. With
    ``output_path``, each call writes ``fastir score``'s files (summary.json, per_query.parquet,
    pairs.csv/.parquet, heatmap.png) to ``output_path/<name>-steps-<N>/``.
    """


def _make_evaluator():
    base = require("sentence_transformers.base.evaluation.evaluator").BaseEvaluator
    return type("FastirEvaluator", (_EvaluatorBody, base), {"__module__": __name__, "__doc__": _DOC})


def built_on_first_use(namespace: dict, makers: dict, name: str):
    """A module ``__getattr__``: the class ``name``, which subclasses an optional peer's, built by its
    maker on first use (so importing the module needs no peer; a missing one is a one-line error then)."""
    if name not in makers:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    namespace[name] = makers[name]()
    return namespace[name]


def __getattr__(name):
    return built_on_first_use(globals(), {"FastirEvaluator": _make_evaluator}, name)
