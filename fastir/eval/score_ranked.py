"""``fastir score-run``: the language cells of a ranked run (any system's ranking), with a tie mode.

The same cells as for embeddings (:mod:`fastir.eval.score`): X→all is the run as retrieved, X→Y the
run restricted to the documents of language Y, in run order; every rank-based metric of the
registry and the language-bias suite (:mod:`fastir.eval.ranked_bias`, on each query's pooled list in
trec_eval order), per-query table and summary. Metrics are exact to the run's depth, as trec_eval's: a
relevant document the run did not retrieve counts in |R| and inside no cutoff; summary.json
says, per cell, the depth scored and how many relevant documents lie beyond it.

Data flow, in bounded memory: :func:`fastir.runs.ranked.read_chunks` yields chunks of lines (a TREC
run: blocks of 8 MiB, parsed one block ahead in a thread); each is cut after its last complete
query (the rest waits for the next chunk), checked (queries in one block of lines, known to the
qrels; no (query, document) twice; ranks agreeing with scores), put into trec_eval order and its
golds found by the kernels of :mod:`fastir.kernels.ids`, which read the ids in Arrow's buffers
(no joined key, no Python string per line), and its golds' ranks and metrics computed by
:mod:`fastir.kernels.ties` and :mod:`fastir.kernels.ranking`. Only per-query results are kept.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fastir.core.arrow import as_numpy, numeric_array, string_array, string_buffers
from fastir.core.errors import InputError
from fastir.eval.aggregate import aggregate
from fastir.eval.cells import DEFAULT_KS, POOLED, parse_pairs
from fastir.eval.metrics import DEFAULT_TIES, check_ties, expected_program, kernel_program
from fastir.eval.ranked_bias import RankedBias
from fastir.eval.result import QueryMetrics, ScoreResult
from fastir.eval.score import chosen_metrics, parse_threshold
from fastir.runs.ranked import LangSpec, RunChunk, parse_lang_spec, read_chunks

RANKED_FORMAT = "fastir-ranked-run/1"  # summary.json "run" -> "format" of a scored ranked run


@dataclass
class _Ids:
    table: pa.Table  # column "id"

    def __len__(self) -> int:
        return self.table.num_rows


@dataclass
class RankedRun:
    """What the score outputs (:mod:`fastir.eval.report`) read of a run: its path, metadata, queries."""

    path: Path
    meta: dict
    queries: _Ids
    candidates: _Lines  # the run's lines (documents retrieved, summed over queries)


@dataclass
class _Lines:
    """How many lines the run has: what the outputs read of ``candidates`` (their count), held as a
    number, not as an array of a run's length."""

    n: int

    def __len__(self) -> int:
        return self.n


@dataclass
class _Qrels:
    query_index: dict  # qid -> qrels query number
    ptr: np.ndarray  # golds of qrels query i: ptr[i]:ptr[i+1] (grade >= 1)
    grade: np.ndarray  # int64
    lang: np.ndarray  # int32 candidate language id
    docs: tuple  # (offsets, data) of each gold's document id (fastir.core.arrow.string_buffers)
    cand_langs: list[str]
    cand_buffers: tuple  # cand_langs as (offsets, data)


@dataclass
class _Collected:
    qids: list = field(default_factory=list)
    qlangs: list = field(default_factory=list)
    parts: list = field(default_factory=list)  # (nrel, values, ndocs, beyond) per processed block
    bias: RankedBias | None = None  # the language-bias suite, when asked for


def score_ranked(run_path, qrels_path, query_langs, doc_langs, pairs: str = "all", ks=DEFAULT_KS, metrics=None,
                 ties: str = DEFAULT_TIES, per_query: bool = False, relevance_threshold: int = 1) -> ScoreResult:
    """Score the ranked run ``run_path`` (TREC, ranx JSON or Parquet) against TREC qrels ``qrels_path``.

    ``query_langs`` / ``doc_langs``: a language map file or ``prefix:SEP`` (a :class:`LangSpec` or its
    text); ``ties``: pessimistic | optimistic | expected | trec_eval (:mod:`fastir.kernels.ties`).
    Bad input raises :class:`InputError` naming the file and line before anything is written.
    """
    t0 = time.perf_counter()
    threshold = parse_threshold(relevance_threshold)
    chosen = chosen_metrics(ks, metrics)
    check_ties(ties, chosen)
    qspec = query_langs if isinstance(query_langs, LangSpec) else parse_lang_spec(query_langs, "--query-langs")
    dspec = doc_langs if isinstance(doc_langs, LangSpec) else parse_lang_spec(doc_langs, "--doc-langs")
    qrels = _read_qrels(Path(qrels_path), dspec)
    run_path = Path(run_path)
    got = _Collected(bias=RankedBias.of(chosen))
    seen: set = set()
    lines = 0
    for chunk in _complete_queries(read_chunks(run_path)):
        lines += len(chunk.qids)
        _score_chunk(chunk, qrels, qspec, dspec, chosen, ties, threshold, seen, got)
    return _result(run_path, qrels_path, qspec, dspec, qrels, chosen, got, pairs, ties, threshold, per_query, lines,
                   t0)


# ------------------------------------------------------------------------------------------- input


def _read_qrels(path: Path, dspec: LangSpec) -> _Qrels:
    from fastir.runs.qrels import read_trec_qrels

    judged = read_trec_qrels(path)
    dict_q = pc.dictionary_encode(judged.query_ids)
    q = as_numpy(dict_q.indices).astype(np.int64)
    _no_duplicate_judgements(judged, q, path)
    query_index = {q: i for i, q in enumerate(dict_q.dictionary.to_pylist())}
    positive = np.flatnonzero(judged.grades >= 1)
    order = positive[np.argsort(q[positive], kind="stable")]
    langs = dspec.languages(judged.candidate_ids.take(numeric_array(order, pa.int64())), path,
                            lambda i: f"line {judged.lines[order[i]]}")
    cand_langs = sorted(set(pc.unique(langs).to_pylist()) | set(
        pc.unique(dspec.langs).to_pylist() if dspec.langs is not None else ()))
    if POOLED in cand_langs:
        raise InputError(path, "lang", f"{POOLED!r} is reserved for the pooled setting")
    ptr = np.zeros(len(query_index) + 1, np.int64)
    np.cumsum(np.bincount(q[order], minlength=len(query_index)), out=ptr[1:])
    cand = string_array(cand_langs)
    lang = as_numpy(pc.index_in(langs, value_set=cand)).astype(np.int32)
    docs = judged.candidate_ids.take(numeric_array(order, pa.int64()))
    return _Qrels(query_index, ptr, judged.grades[order].astype(np.int64), lang, string_buffers(docs), cand_langs,
                  string_buffers(cand))


def first_repeat(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(first, again): the entries of the earliest-sorted pair with equal (``a``, ``b``) codes (int64,
    >= 0), the earlier one first; None when every pair is distinct."""
    key = a * (int(b.max(initial=0)) + 1) + b
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    if not same.any():
        return None
    i = int(np.argmax(same))
    return int(order[i]), int(order[i + 1])


def _no_duplicate_judgements(judged, q: np.ndarray, path: Path) -> None:
    """InputError at the later of two judgements of one (query, document), naming the earlier."""
    d = as_numpy(pc.dictionary_encode(judged.candidate_ids).indices).astype(np.int64)
    repeat = first_repeat(q, d)
    if repeat is not None:
        first, again = repeat
        _duplicate(path, f"line {judged.lines[again]}", f"line {judged.lines[first]}", "judgement",
                   judged.query_ids[again].as_py(), judged.candidate_ids[again].as_py())


def _duplicate(path, where: str, first: str, what: str, qid: str, docid: str):
    raise InputError(path, where, f"duplicate {what} of (query {qid!r}, document {docid!r}); first at {first}")


def _complete_queries(chunks):
    """Chunks cut after their last complete query: a query's lines always arrive together."""
    pending = None
    for chunk in chunks:
        if pending is not None:
            chunk = _concat(pending, chunk)
        last = chunk.qids[len(chunk.qids) - 1]
        other = np.flatnonzero(as_numpy(pc.not_equal(chunk.qids, last)))
        cut = int(other[-1]) + 1 if len(other) else 0
        pending = chunk.take(slice(cut, None))
        if cut:
            yield chunk.take(slice(0, cut))
    if pending is not None and len(pending.qids):
        yield pending


def _concat(a: RunChunk, b: RunChunk) -> RunChunk:
    ranks = None if a.ranks is None or b.ranks is None else np.concatenate([a.ranks, b.ranks])
    return RunChunk(a.path, pa.concat_arrays([a.qids, b.qids]), pa.concat_arrays([a.docids, b.docids]),
                    np.concatenate([a.scores, b.scores]), ranks, a.first_line)


# --------------------------------------------------------------------------------------- one chunk


def _score_chunk(chunk: RunChunk, qrels: _Qrels, qspec, dspec, metrics, ties, threshold, seen, got) -> None:
    from fastir.kernels.ids import match_lines, trec_order
    from fastir.kernels.ranking import UNRANKED, metrics_from_ranks
    from fastir.kernels.ties import EXPECTED, MODES, expected_metrics, run_ranks

    qi, q_ptr = _queries(chunk, qrels, qspec, seen, got)
    ids = string_buffers(chunk.docids)
    starts, lengths = qrels.ptr[qi], qrels.ptr[qi + 1] - qrels.ptr[qi]
    gold_ptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    g_ids = np.repeat(starts - gold_ptr[:-1], lengths) + np.arange(gold_ptr[-1])
    gold, again, first = match_lines(q_ptr, ids, gold_ptr, g_ids, qrels.docs)
    if (again >= 0).any():
        b = int(np.argmin(np.where(again >= 0, again, len(gold))))
        _duplicate(chunk.path, chunk.where(int(again[b])), chunk.where(int(first[b])), "line",
                   chunk.qids[int(again[b])].as_py(), chunk.docids[int(again[b])].as_py())
    # the bias suite reads every list in trec_eval's order (score desc, doc id desc) whatever the tie mode
    order = trec_order(q_ptr, chunk.scores, ids, by_id=ties == "trec_eval" or got.bias is not None)
    if chunk.ranks is not None:
        _check_ranks(chunk, q_ptr, order)
    n_langs = len(qrels.cand_langs)
    lang = dspec.codes(chunk.docids, qrels.cand_langs, qrels.cand_buffers, chunk.path, chunk.where)
    ranks, tied, ndocs = run_ranks(q_ptr, chunk.scores[order], lang[order], gold[order], gold_ptr,
                                   qrels.lang[g_ids], qrels.grade[g_ids], n_langs, MODES[ties])
    grade = qrels.grade[g_ids]
    if MODES[ties] == EXPECTED:
        nrel, values = expected_metrics(gold_ptr, grade, ranks, tied, expected_program(metrics), threshold)
    else:
        nrel, values = metrics_from_ranks(gold_ptr, grade, ranks, kernel_program(metrics), threshold)
    lost = (ranks == UNRANKED) & (grade >= threshold)[:, None]
    total = np.concatenate((np.zeros((1, lost.shape[1]), np.int64), np.cumsum(lost, axis=0, dtype=np.int64)))
    beyond = total[gold_ptr[1:]] - total[gold_ptr[:-1]]  # relevant golds not retrieved, per query and set
    for i, m in enumerate(metrics):
        if not m.measure.beyond_depth:
            values[:, :, i][beyond > 0] = np.nan
    if got.bias is not None:
        got.bias.add(chunk, order, q_ptr, lang.astype(np.int32)[order], gold[order], gold_ptr, qrels.lang[g_ids], grade,
                     got.qlangs[len(got.qlangs) - len(qi):], qrels.cand_langs, threshold, values)
    got.parts.append((nrel, values, ndocs, beyond))


def _queries(chunk: RunChunk, qrels: _Qrels, qspec, seen: set, got: _Collected):
    """Each query's qrels number and its lines ``q_ptr[b]:q_ptr[b+1]`` (queries in order of appearance)."""
    qids = chunk.qids
    n = len(qids)
    change = as_numpy(pc.not_equal(qids.slice(1), qids.slice(0, n - 1))) if n > 1 else np.zeros(0, np.bool_)
    first = np.flatnonzero(np.concatenate(([True], change)))
    names = qids.take(numeric_array(first, pa.int64())).to_pylist()
    qi = np.empty(len(names), np.int64)
    for code, name in enumerate(names):
        where = chunk.where(int(first[code]))
        if name in seen:
            raise InputError(chunk.path, where, f"query {name!r} again after other queries: a run lists each "
                                                "query's lines together")
        if name not in qrels.query_index:
            raise InputError(chunk.path, where, f"query {name!r} is not in the qrels")
        seen.add(name)
        qi[code] = qrels.query_index[name]
        got.qids.append(name)
        got.qlangs.append(qspec.one(name, chunk.path, where))
    return qi, np.append(first, n).astype(np.int64)


def _check_ranks(chunk: RunChunk, q_ptr: np.ndarray, order: np.ndarray) -> None:
    """No line ranked after another of its query (larger rank) with a higher score."""
    from fastir.kernels.ties import rank_conflict

    i = rank_conflict(q_ptr, chunk.scores[order], chunk.ranks[order])
    if i >= 0:
        t = int(order[i])
        s, r = chunk.scores[order[:i]], chunk.ranks[order[:i]]
        q0 = q_ptr[np.searchsorted(q_ptr, i, side="right") - 1]
        above = q0 + int(np.argmax((r[q0:] > chunk.ranks[t]) & (s[q0:] > chunk.scores[t])))
        u = int(order[above])
        raise InputError(chunk.path, chunk.where(t),
                         f"rank {chunk.ranks[t]} with score {float(chunk.scores[t])!r} contradicts rank "
                         f"{chunk.ranks[u]} with score {float(chunk.scores[u])!r} ({chunk.where(u)})")


# ------------------------------------------------------------------------------------------ result


def _result(run_path, qrels_path, qspec, dspec, qrels, metrics, got, pairs, ties, threshold, per_query, lines,
            t0) -> ScoreResult:
    nrel, values, ndocs, beyond = (np.concatenate([p[i] for p in got.parts]) for i in range(4))
    query_langs = sorted(set(got.qlangs))
    if POOLED in query_langs:
        raise InputError(qspec.path, qspec.option, f"{POOLED!r} is reserved for the pooled setting")
    q_lang_id = np.array([query_langs.index(x) for x in got.qlangs], np.int32) if got.qlangs else np.zeros(0, np.int32)
    cells = parse_pairs(pairs, query_langs, qrels.cand_langs)
    meta = {"format": RANKED_FORMAT, "dataset": str(qrels_path), "model": run_path.name, "ties": ties,
            "dataset_checksum": _checksum(qrels_path, qspec, dspec)}
    run = RankedRun(run_path, meta, _Ids(pa.table({"id": string_array(got.qids)})),
                    _Lines(lines))
    ks = tuple(m.k for m in metrics if m.measure.name == "recall")
    result = ScoreResult(run=run, ks=ks, pairs=str(pairs), query_langs=query_langs, cand_langs=qrels.cand_langs,
                         query_lang_id=q_lang_id, cells=cells, cell_stats={}, summary={}, per_language={},
                         metrics=QueryMetrics(tuple(metrics), nrel.astype(np.int32), values,
                                              got.bias.exposure() if got.bias else {}),
                         gold_ptr=np.zeros(1, np.int64), gold_cand=np.zeros(0, np.int64),
                         relevance_threshold=threshold)
    for cell in cells:
        if not len(result.cell_rows(cell)[1]):
            raise InputError(qrels_path, cell.name, f"no query of the run in {cell.query_lang!r} has a relevant "
                                                    f"document in {cell.cand_lang!r}; choose other --pairs")
    aggregate(result)
    result.extra = {"ties": ties, "input": {"run": str(run_path), "qrels": str(qrels_path),
                                            "query_langs": qspec.source, "doc_langs": dspec.source, "lines": lines},
                    "depth": _depths(result, ndocs, beyond)}
    if got.bias is not None:
        result.extra["bias"] = got.bias.summary(result, ndocs)
    if per_query:
        from fastir.eval.report import per_query_table

        result.per_query = per_query_table(result)
    result.elapsed_s = {"total": time.perf_counter() - t0}
    return result


def _depths(result: ScoreResult, ndocs: np.ndarray, beyond: np.ndarray) -> dict:
    """Per cell: the documents of the run scored per query (min, max) and relevant documents beyond them."""
    out = {}
    for cell in result.cells:
        s, rows = result.cell_rows(cell)
        out[cell.name] = {"min": int(ndocs[rows, s].min()), "max": int(ndocs[rows, s].max()),
                          "relevant_beyond_depth": int(beyond[rows, s].sum())}
    return out


def _checksum(qrels_path, qspec: LangSpec, dspec: LangSpec) -> str:
    """SHA-256 of the qrels file and the language sources: equal for runs scored on the same data."""
    h = hashlib.sha256()
    for path in (qrels_path, qspec.path, dspec.path):
        if path is not None:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\0")
    h.update(f"{qspec.sep}\0{dspec.sep}".encode())
    return h.hexdigest()


def default_out_dir(run_path: str | os.PathLike) -> Path:
    """``RUN.scores/`` beside the run file."""
    run_path = Path(run_path)
    return run_path.with_name(run_path.name + ".scores")
