"""Language preference of a ranked run (``fastir preference-run``): MRC, QLP, pivot share and MLRS of
any system's rankings (BM25, SPLADE, fusion, a reranker), through the kernels of
:mod:`fastir.kernels.preference` fed with ranks instead of scores.

Definitions (docs/score.md, "Language preference", ranked runs): each query's list is put in
trec_eval's order (score descending, then document id descending), as ``fastir score-run`` does; a
document a query did not retrieve ranks below every document it retrieved, all such documents tied.
A query's row over a set of documents holds, for each retrieved document, the dense rank of its score
(1 = the lowest score the query retrieved; equal scores, equal values) and 0 for the others, in
float32 (exact up to 2^24 distinct scores). The columns of one parallel group are its documents by
id descending, so the kernels' ties by column are trec_eval's ties by id. Then:

* MRC: for each pair of queries of a group, Spearman over the union of the documents either
  retrieved (those one of them did not retrieve tied at its bottom, sharing their average rank);
* QLP: the relevant documents' values (0: not retrieved) in place of their scores;
* Pivot@k and MLRS@K: over the top min(k, depth) of the retrieved list; MLRS re-ranks the top by the
  values of their versions in the target language (0 for a version the query did not retrieve).

The run is read by :func:`fastir.runs.ranked.read_chunks` and checked as ``fastir score-run`` checks it,
with its messages (queries in the qrels and the language map, lines of a query together, no (query,
document) twice, ranks agreeing with scores); unlike scoring, it is held whole in memory (Arrow ids
and float64 scores), since the queries of one parallel group may lie anywhere in the file, so the
checks run once over the whole run (of score-run's code, only ``_check_ranks`` is shared). This module owns the
``--query-groups`` source (a file of ``query_id TAB group_id`` lines, or the rule ``prefix:SEP``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fastir.core.arrow import as_numpy, numeric_array, string_array
from fastir.core.errors import InputError
from fastir.eval.preference import (COLUMNS, PreferenceResult, group_order, language_id, positive_int,
                                    read_id_groups)
from fastir.eval.cells import POOLED
from fastir.runs.ranked import RULE_PREFIX, LangSpec, RunChunk, parse_lang_spec, read_chunks

MAX_DISTINCT = 1 << 24  # distinct scores of one query that float32 ranks hold exactly


@dataclass
class GroupSpec:
    """Where the queries' parallel-group ids come from: a file (``index``) or the rule text-after-``sep``."""

    source: str
    sep: str | None = None
    path: Path | None = None
    index: dict | None = None  # query id -> (group id, line)

    def group(self, qid: str, file, where: str) -> str:
        """The group of query ``qid`` (first seen at ``where`` of ``file``); InputError if it has none."""
        if self.sep is not None:
            _, found, rest = qid.partition(self.sep)
            if found and rest:
                return rest
            raise InputError(file, where, f"query {qid!r} has no group id after {self.sep!r} "
                                          f"(--query-groups {self.source})")
        if qid not in self.index:
            raise InputError(file, where, f"query {qid!r} is not in --query-groups {self.path.name}")
        return self.index[qid][0]


def parse_query_groups(value: str) -> GroupSpec:
    """``prefix:SEP`` (the group is the id's text after the first SEP: ``de:q17`` and ``en:q17`` share
    ``q17`` under ``prefix::``) or a file of ``query_id TAB group_id`` lines."""
    if value.startswith(RULE_PREFIX):
        sep = value[len(RULE_PREFIX):]
        if not sep:
            raise InputError(None, "--query-groups", f"{value!r}: give the separator after {RULE_PREFIX!r}")
        return GroupSpec(value, sep=sep)
    path = Path(value)
    if not path.is_file():
        raise InputError(path, "--query-groups", f"{'missing' if not path.exists() else 'not a file'} (a file "
                                                 f"of query_id TAB group_id lines, or the rule {RULE_PREFIX}SEP)")
    return GroupSpec(value, path=path, index=read_id_groups(path, "query"))


@dataclass
class _Lists:
    """The run's queries and their lists in trec_eval order: query i holds lines ptr[i]:ptr[i+1]; its
    relevant documents are golds gold_ptr[i]:gold_ptr[i+1]."""

    qids: list
    qlangs: list
    groups: list
    ptr: np.ndarray
    doc: np.ndarray  # document code per line
    value: np.ndarray  # float32 dense rank of the line's score in its query (1 = lowest)
    gold_ptr: np.ndarray
    gold_value: np.ndarray  # float32: the gold's line value, 0 where the query did not retrieve it
    gold_lang: np.ndarray  # int32 language id


def ranked_preference(run_path, qrels_path, query_langs, doc_langs, query_groups, pivot: str | None = "en",
                      k: int = 10, target: str | None = None, cand_groups=None, mlrs_k: int = 10) -> PreferenceResult:
    """Every language-preference measure of the ranked run ``run_path`` (TREC, ranx JSON or Parquet), per query.

    ``query_langs`` / ``doc_langs``: as ``fastir score-run`` (a map file or ``prefix:SEP``);
    ``query_groups``: a :class:`GroupSpec` or its text; ``cand_groups``: a file of ``doc_id TAB group_id``
    lines (the documents' parallel groups, for MLRS toward ``target``). Bad input raises :class:`InputError`.
    """
    from fastir.runs.qrels import read_trec_qrels

    k, mlrs_k = positive_int(k, "k"), positive_int(mlrs_k, "mlrs_k")
    if (target is None) != (cand_groups is None):
        raise InputError(None, "--target" if target is None else "--cand-groups",
                         "MLRS needs both --target and --cand-groups")
    qspec = query_langs if isinstance(query_langs, LangSpec) else parse_lang_spec(query_langs, "--query-langs")
    dspec = doc_langs if isinstance(doc_langs, LangSpec) else parse_lang_spec(doc_langs, "--doc-langs")
    gspec = query_groups if isinstance(query_groups, GroupSpec) else parse_query_groups(query_groups)
    cand = read_id_groups(cand_groups, "document") if cand_groups is not None else {}
    judged = read_trec_qrels(qrels_path)
    run = _whole_run(Path(run_path))
    lists, docs = _read_lists(run, judged, Path(qrels_path), cand, cand_groups, qspec, dspec, gspec)
    pivot_id = language_id(docs.langs, pivot, "pivot")
    target_of = docs.targets(target, cand_groups) if target is not None else None
    values = {name: np.full(len(lists.qids), np.nan) for name in COLUMNS}
    order, group_ptr = group_order(lists.groups)
    for g in range(len(group_ptr) - 1):
        rows = order[group_ptr[g]:group_ptr[g + 1]]
        _group_measures(lists, docs, rows, pivot_id, k, target_of, mlrs_k, values)
    values["qlp"] = _query_language_preference(lists, docs)
    depth = np.diff(lists.ptr)
    extra = {"input": {"run": str(run_path), "qrels": str(qrels_path), "query_langs": qspec.source,
                       "doc_langs": dspec.source, "query_groups": gspec.source,
                       "cand_groups": None if cand_groups is None else str(cand_groups), "lines": int(lists.ptr[-1])},
             "depth": {"min": int(depth.min()), "max": int(depth.max())}}
    return PreferenceResult(lists.qids, lists.qlangs, values, pivot, k, target, mlrs_k, extra)


# ------------------------------------------------------------------------------------------- input


def _whole_run(path: Path) -> RunChunk:
    """The run's lines as one chunk (its ``where`` names each line)."""
    chunks = list(read_chunks(path))
    ranks = None if any(c.ranks is None for c in chunks) else np.concatenate([c.ranks for c in chunks])
    return RunChunk(path, pa.concat_arrays([c.qids for c in chunks]), pa.concat_arrays([c.docids for c in chunks]),
                    np.concatenate([c.scores for c in chunks]), ranks, chunks[0].first_line)


def _read_lists(run: RunChunk, judged, qrels_path: Path, cand: dict, cand_path, qspec, dspec, gspec):
    """The checked run in trec_eval order (score descending, then document id descending) and its golds,
    with the checks and messages of ``fastir score-run``."""
    from fastir.eval.score_ranked import _check_ranks

    cand_ids = string_array(list(cand))
    positive = np.flatnonzero(judged.grades >= 1)
    docs = _Docs(dspec, cand, [(run.docids, run.path, run.where),
                               (cand_ids, cand_path, lambda i: f"line {cand[cand_ids[i].as_py()][1]}"),
                               (judged.candidate_ids.take(numeric_array(positive, pa.int64())), qrels_path,
                                lambda i: f"line {judged.lines[positive[i]]}")])
    line_doc, gold_doc = docs.codes[0], docs.codes[2]
    judged_q = as_numpy(pc.dictionary_encode(judged.query_ids).indices).astype(np.int64)
    judged_d = as_numpy(pc.dictionary_encode(judged.candidate_ids).indices).astype(np.int64)
    _no_duplicates(judged_q, judged_d, judged, lambda i: f"line {judged.lines[i]}", qrels_path, "judgement")
    q_ptr, names = _query_blocks(run)
    known = set(judged.query_ids.to_pylist())
    qlangs, groups = [], []
    for b, name in enumerate(names):
        where = run.where(int(q_ptr[b]))
        if name not in known:
            raise InputError(run.path, where, f"query {name!r} is not in the qrels")
        qlangs.append(qspec.one(name, run.path, where))
        groups.append(gspec.group(name, run.path, where))
    line_q = np.repeat(np.arange(len(names)), np.diff(q_ptr))
    _no_duplicates(line_q, line_doc, run, run.where, run.path, "line")
    order = np.lexsort((docs.id_pos[line_doc], -run.scores, line_q))
    if run.ranks is not None:
        _check_ranks(run, q_ptr, order)
    value = _dense_values(q_ptr, run.scores[order], run.path)
    n = len(docs.id_pos)
    index = {name: b for b, name in enumerate(names)}
    gold_q = np.array([index.get(x, -1) for x in judged.query_ids.take(numeric_array(positive, pa.int64())).to_pylist()],
                      np.int64)
    mine = np.flatnonzero(gold_q >= 0)
    mine = mine[np.argsort(gold_q[mine], kind="stable")]
    line_key = line_q[order] * n + line_doc[order]
    by_key = np.argsort(line_key)
    gold_key = gold_q[mine] * n + gold_doc[mine]
    at = np.minimum(np.searchsorted(line_key[by_key], gold_key), len(line_key) - 1)
    hit = line_key[by_key[at]] == gold_key
    gold_value = np.where(hit, value[by_key[at]], 0).astype(np.float32)
    gold_ptr = np.concatenate(([0], np.cumsum(np.bincount(gold_q[mine], minlength=len(names))))).astype(np.int64)
    return _Lists(names, qlangs, groups, q_ptr, line_doc[order], value, gold_ptr, gold_value,
                  docs.lang[gold_doc[mine]]), docs


def _query_blocks(run: RunChunk) -> tuple[np.ndarray, list]:
    """Each query's lines ``q_ptr[b]:q_ptr[b+1]`` and its id; a query whose lines another's split: InputError."""
    enc = pc.dictionary_encode(run.qids)
    codes = as_numpy(enc.indices).astype(np.int64)
    first = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    names = enc.dictionary.to_pylist()
    if len(first) != len(names):  # codes number queries by first appearance: block b should hold query b
        b = int(np.argmax(codes[first] != np.arange(len(first))))
        raise InputError(run.path, run.where(int(first[b])), f"query {names[codes[first[b]]]!r} again after other "
                                                             "queries: a run lists each query's lines together")
    return np.append(first, len(codes)).astype(np.int64), names


def _no_duplicates(a: np.ndarray, b: np.ndarray, table, where, path, what: str) -> None:
    """InputError at the later of two entries with equal (``a``, ``b``) codes, naming the earlier."""
    from fastir.eval.score_ranked import _duplicate, first_repeat

    repeat = first_repeat(a, b)
    if repeat is not None:
        first, again = repeat
        q, d = (table.qids, table.docids) if isinstance(table, RunChunk) else (table.query_ids, table.candidate_ids)
        _duplicate(path, where(again), where(first), what, q[again].as_py(), d[again].as_py())


def _dense_values(ptr: np.ndarray, scores: np.ndarray, run_path) -> np.ndarray:
    """Per line (each query's lines sorted by score descending), the dense rank of its score in its
    query, ascending: 1 for the query's lowest score, equal scores equal ranks."""
    starts = np.zeros(len(scores), np.bool_)
    starts[ptr[:-1]] = True
    change = starts.copy()
    change[1:] |= scores[1:] != scores[:-1]
    step = np.cumsum(change)
    desc = step - np.repeat(step[ptr[:-1]], np.diff(ptr)) + 1  # 1 = the query's highest score
    distinct = desc[ptr[1:] - 1]
    if len(distinct) and distinct.max() >= MAX_DISTINCT:
        raise InputError(run_path, None, f"a query with {int(distinct.max())} distinct scores: language preference "
                                         f"handles at most {MAX_DISTINCT - 1}")
    return (np.repeat(distinct, np.diff(ptr)) - desc + 1).astype(np.float32)


class _Docs:
    """Every document named by the run, the candidate groups and the relevant judgements: a code each
    (``codes``: per source), its language id, its place in the order by id descending, and its group."""

    def __init__(self, dspec: LangSpec, cand: dict, sources: list):
        langs = [dspec.languages(ids, file, where) if len(ids) else ids for ids, file, where in sources]
        enc = pc.dictionary_encode(pa.concat_arrays([ids for ids, _, _ in sources]))
        codes = as_numpy(enc.indices).astype(np.int64)
        bounds = np.cumsum([0, *(len(ids) for ids, _, _ in sources)])
        self.codes = [codes[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        n = len(enc.dictionary)
        all_langs = pa.concat_arrays(langs)
        self.langs = sorted(pc.unique(all_langs).to_pylist())
        if POOLED in self.langs:
            raise InputError(dspec.path, dspec.option, f"{POOLED!r} is reserved for the pooled setting")
        self.lang = np.empty(n, np.int32)
        self.lang[codes] = as_numpy(pc.index_in(all_langs, value_set=string_array(self.langs))).astype(np.int32)
        self.id_pos = np.empty(n, np.int64)  # place in the order by id descending (trec_eval's tie order)
        self.id_pos[as_numpy(pc.array_sort_indices(enc.dictionary, order="descending"))] = np.arange(n)
        self.group, self.line = [None] * n, [0] * n  # parallel group and its --cand-groups line
        for code, (group, line) in zip(self.codes[1].tolist(), cand.values()):
            self.group[code], self.line[code] = group, line

    def targets(self, target: str, cand_path) -> np.ndarray:
        """Per document code, the code of its version in ``target`` (itself when in it; -1: none)."""
        t = language_id(self.langs, target, "target")
        version: dict = {}
        for code, group in enumerate(self.group):
            if group is not None and self.lang[code] == t:
                if group in version:
                    raise InputError(cand_path, f"line {self.line[code]}", f"group {group!r} has two documents in "
                                                                           f"{target!r} (first at line "
                                                                           f"{self.line[version[group]]})")
                version[group] = code
        return np.array([version.get(g, -1) if g is not None else -1 for g in self.group], np.int64)


# ------------------------------------------------------------------------------------------ measures


def _group_measures(lists: _Lists, docs: _Docs, rows, pivot_id, k, target_of, mlrs_k, values) -> None:
    """MRC, Pivot@k and MLRS of the queries ``rows`` of one parallel group, over its documents."""
    from fastir.kernels.preference import top_measures

    lines = [np.arange(lists.ptr[r], lists.ptr[r + 1]) for r in rows]
    retrieved = np.unique(lists.doc[np.concatenate(lines)])
    cols = retrieved if target_of is None else np.union1d(retrieved, target_of[retrieved][target_of[retrieved] >= 0])
    by_id = cols[np.argsort(docs.id_pos[cols], kind="stable")]  # the columns: documents by id descending
    column = np.empty(len(cols), np.int64)
    column[np.argsort(docs.id_pos[cols], kind="stable")] = np.arange(len(cols))

    def place(codes):  # document codes (of this group) -> their columns
        return column[np.searchsorted(cols, codes)]

    block = np.zeros((len(rows), len(cols)), np.float32)
    for a, span in enumerate(lines):
        block[a, place(lists.doc[span])] = lists.value[span]
    values["mrc"][rows] = _pairwise_rank_correlation(block)
    target_col = None
    if target_of is not None:
        t = target_of[by_id]
        target_col = np.where(t >= 0, place(np.maximum(t, 0)), -1)
    depth = np.diff(lists.ptr)[rows]
    cuts = np.stack([np.minimum(k, depth), np.minimum(mlrs_k, depth)], axis=1)
    for cut in np.unique(cuts, axis=0):  # the top n = min(k, depth): one kernel call per distinct cut
        sel = np.flatnonzero((cuts == cut).all(axis=1))
        share, shift = top_measures(block[sel], docs.lang[by_id], pivot_id, int(cut[0]), target_col,
                                    int(cut[1]) if target_of is not None else 0)
        values["pivot_share"][rows[sel]], values["mlrs"][rows[sel]] = share, shift


def _pairwise_rank_correlation(block: np.ndarray) -> np.ndarray:
    """MRC of each row of one group's ``block`` (0: not retrieved): the mean over the other rows b of
    Spearman's correlation over the documents a or b retrieved (the kernel on their two rows)."""
    from fastir.kernels.preference import mean_rank_correlation

    m = len(block)
    total, count = np.zeros(m), np.zeros(m, np.int64)
    pair = np.array([0, 2], np.int64)
    for a in range(m):
        for b in range(a + 1, m):
            union = (block[a] > 0) | (block[b] > 0)
            rc = mean_rank_correlation(np.ascontiguousarray(block[[a, b]][:, union]), pair)[0]
            if not np.isnan(rc):
                total[[a, b]] += rc
                count[[a, b]] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _query_language_preference(lists: _Lists, docs: _Docs) -> np.ndarray:
    """QLP per query from the relevant documents' values (0 where the query did not retrieve one)."""
    from fastir.kernels.preference import query_language_preferences

    q_lang = np.array([docs.langs.index(x) if x in docs.langs else -1 for x in lists.qlangs], np.int64)
    return query_language_preferences(lists.gold_value, lists.gold_lang, lists.gold_ptr, q_lang)
