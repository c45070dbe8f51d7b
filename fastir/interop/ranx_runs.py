"""One cell of a fastir score as ranx ``Qrels`` / ``Run`` and as ir_measures-ready pandas DataFrames.

fastir's score dir holds metrics, not rankings (docs/score.md), so a ranking is rebuilt by the
engine: :func:`rank_cell` scores one cell of a run dir (or of the run a score dir was computed from,
at that score's relevance threshold) keeping the top ``depth`` candidates per query, exactly the
rows ``fastir score --trec`` writes (:mod:`fastir.eval.trec`); :func:`cell_ranking` reads them from
a :class:`fastir.eval.result.ScoreResult` already scored with ``trec_depth``.

A :class:`CellRanking` holds, for the queries scored in the cell: the qrels (every judged candidate
of grade >= 1 inside the cell's candidate set), the run (float32 scores as Python floats, the top
``depth``), and the language of every query and ranked or judged document. ``to_ranx()`` gives
``ranx.Qrels`` / ``ranx.Run``; ``run_frame()`` / ``qrels_frame()`` give the DataFrames ir_measures
reads (``query_id``, ``doc_id``, ``score`` / ``relevance``) with a per-document ``lang`` column for
language-grouped (fairness) analysis. With ``depth`` >= the cell's candidate set the ranking is
complete and AP, RR, Recall@k and nDCG@k from ranx or ir_measures equal fastir's on tie-free scores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastir.core.errors import InputError, require

EXTRA = "interop"
DEFAULT_DEPTH = 1000


@dataclass
class CellRanking:
    """The qrels and the top-``depth`` run of one cell (``X-S``), keyed by the run dir's ids."""

    cell: str
    depth: int  # candidates kept per query (capped by the cell's candidate set)
    relevance_threshold: int  # fastir's binary metrics count grade >= it as relevant
    qrels: dict[str, dict[str, int]]
    run: dict[str, dict[str, float]]
    query_langs: dict[str, str]
    doc_langs: dict[str, str]  # every document of ``run`` and ``qrels``

    def to_ranx(self):
        """(``ranx.Qrels``, ``ranx.Run`` named after the cell). ranx counts every grade >= 1 as relevant:
        at a threshold above 1 its binary metrics differ from fastir's (ir_measures takes ``rel=``)."""
        ranx = require("ranx", EXTRA, "the ranx view of a score")
        return ranx.Qrels(self.qrels), ranx.Run(self.run, name=self.cell)

    def run_frame(self):
        """DataFrame ``query_id, doc_id, score, rank, lang, query_lang``, each query's best first."""
        pd = require("pandas", EXTRA, "the DataFrame view of a score")
        rows = [(q, d, s, r, self.doc_langs[d], self.query_langs[q])
                for q, docs in self.run.items() for r, (d, s) in enumerate(docs.items(), 1)]
        return pd.DataFrame(rows, columns=["query_id", "doc_id", "score", "rank", "lang", "query_lang"])

    def qrels_frame(self):
        """DataFrame ``query_id, doc_id, relevance, lang``."""
        pd = require("pandas", EXTRA, "the DataFrame view of a score")
        rows = [(q, d, g, self.doc_langs[d]) for q, docs in self.qrels.items() for d, g in docs.items()]
        return pd.DataFrame(rows, columns=["query_id", "doc_id", "relevance", "lang"])


def cell_ranking(result, cell: str) -> CellRanking:
    """The :class:`CellRanking` of ``cell`` (``"de-en"``, ``"de-all"``) from a result scored with
    ``trec_depth`` (:func:`fastir.eval.score.score_run`); the cell must be among its cells."""
    from fastir.eval.trec import cell_golds, cell_top

    if result.top is None:
        raise InputError(None, "depth", "the result was scored without trec_depth: it holds no ranking")
    chosen = next((c for c in result.cells if c.name == cell), None)
    if chosen is None:
        raise InputError(None, "cell", f"{cell!r} is not a cell of this result "
                                       f"(it has {', '.join(c.name for c in result.cells)})")
    run = result.run
    qids, qlangs = run.queries.ids, run.queries.langs
    cids, clangs = run.candidates.ids, run.candidates.langs
    q_rows, cand, _, score = cell_top(result, chosen)
    g_rows, g_cand, g_grade = cell_golds(result, chosen)
    ranked: dict[str, dict[str, float]] = {qids[q]: {} for q in sorted(set(g_rows.tolist()))}
    for q, c, s in zip(q_rows.tolist(), cand.tolist(), score.tolist()):
        ranked[qids[q]][cids[c]] = s
    qrels: dict[str, dict[str, int]] = {qid: {} for qid in ranked}
    for q, c, g in zip(g_rows.tolist(), g_cand.tolist(), g_grade.tolist()):
        qrels[qids[q]][cids[c]] = int(g)
    docs = set(cand.tolist()) | set(g_cand.tolist())
    return CellRanking(cell=chosen.name, depth=result.top.depth, relevance_threshold=result.relevance_threshold,
                       qrels=qrels, run=ranked, query_langs={qids[q]: qlangs[q] for q in set(g_rows.tolist())},
                       doc_langs={cids[c]: clangs[c] for c in docs})


def rank_cell(source: str | os.PathLike, cell: str, depth: int = DEFAULT_DEPTH, block_mb: float | None = None,
              device: str = "auto") -> CellRanking:
    """Score ``cell`` of ``source`` keeping the top ``depth`` per query, as a :class:`CellRanking`.

    ``source``: a run dir (relevance threshold 1), or a ``fastir score`` output dir (or a run dir
    holding ``scores/``), whose run dir and relevance threshold are reused; the run dir must still
    be the one scored (its run.json unchanged). ``depth`` is capped by the whole pool.
    """
    from fastir.eval.cells import DEFAULT_BLOCK_MB, KINDS
    from fastir.eval.score import score_run
    from fastir.runs.rundir import RUN_JSON, read_run

    if not isinstance(cell, str) or "," in cell or cell in ("all", *KINDS):
        raise InputError(None, "cell", f"one cell like de-en or de-all, found {cell!r}")
    path, threshold = Path(source), 1
    if not (path / RUN_JSON).is_file() or (path / "scores").is_dir():
        path, threshold = _scored_run(path)
    run = read_run(path)
    result = score_run(run, pairs=cell, trec_depth=depth, metrics="map", relevance_threshold=threshold,
                       block_mb=DEFAULT_BLOCK_MB if block_mb is None else block_mb, device=device)
    return cell_ranking(result, result.cells[0].name)


def _scored_run(scores: Path) -> tuple[Path, int]:
    """(the run dir a score dir was computed from, its relevance threshold), checked unchanged."""
    from fastir.eval.report import read_scores
    from fastir.runs.rundir import read_run_json

    summary, _ = read_scores(scores)
    run_dir = summary.get("run_dir")
    if not isinstance(run_dir, str):
        raise InputError(scores, "run_dir", "missing from summary.json")
    meta = read_run_json(run_dir)
    if meta != summary.get("run"):
        raise InputError(run_dir, "run.json", f"differs from the run {scores} was scored from: rescore it first")
    return Path(run_dir), int(summary.get("relevance_threshold", 1))
