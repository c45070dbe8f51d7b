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

The run is read by :func:`fastir.runs.ranked.read_chunks` and checked as ``fastir score-run`` checks it
(queries in the qrels and the language map, lines of a query together, no (query, document) twice,
ranks agreeing with scores); unlike scoring, it is held whole in memory (Arrow ids and float64
scores), since the queries of one parallel group may lie anywhere in the file. This module owns the
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
from fastir.eval.score_ranked import (_SEPARATOR, _check_ranks, _Collected, _complete_queries, _no_duplicates,
                                      _queries, _read_qrels, _run_order)
from fastir.runs.ranked import RULE_PREFIX, LangSpec, parse_lang_spec, read_chunks

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
    """The run's queries and their lists in trec_eval order: query i holds lines ptr[i]:ptr[i+1]."""

    qids: list
    qlangs: list
    groups: list
    qrels_index: np.ndarray  # per query, its qrels query number
    ptr: np.ndarray
    docs: pa.Array  # document id per line
    keys: pa.Array  # "qid\x1fdocid" per line
    langs: pa.Array  # document language per line
    value: np.ndarray  # float32 dense rank of the line's score in its query (1 = lowest)


def ranked_preference(run_path, qrels_path, query_langs, doc_langs, query_groups, pivot: str | None = "en",
                      k: int = 10, target: str | None = None, cand_groups=None, mlrs_k: int = 10) -> PreferenceResult:
    """Every language-preference measure of the ranked run ``run_path`` (TREC, ranx JSON or Parquet), per query.

    ``query_langs`` / ``doc_langs``: as ``fastir score-run`` (a map file or ``prefix:SEP``);
    ``query_groups``: a :class:`GroupSpec` or its text; ``cand_groups``: a file of ``doc_id TAB group_id``
    lines (the documents' parallel groups, for MLRS toward ``target``). Bad input raises :class:`InputError`.
    """
    k, mlrs_k = positive_int(k, "k"), positive_int(mlrs_k, "mlrs_k")
    if (target is None) != (cand_groups is None):
        raise InputError(None, "--target" if target is None else "--cand-groups",
                         "MLRS needs both --target and --cand-groups")
    qspec = query_langs if isinstance(query_langs, LangSpec) else parse_lang_spec(query_langs, "--query-langs")
    dspec = doc_langs if isinstance(doc_langs, LangSpec) else parse_lang_spec(doc_langs, "--doc-langs")
    gspec = query_groups if isinstance(query_groups, GroupSpec) else parse_query_groups(query_groups)
    cand = read_id_groups(cand_groups, "document") if cand_groups is not None else {}
    qrels = _read_qrels(Path(qrels_path), dspec)
    lists = _read_lists(Path(run_path), qrels, qspec, dspec, gspec)
    docs = _Docs(lists, cand, cand_groups, dspec, qrels.cand_langs)
    pivot_id = language_id(docs.langs, pivot, "pivot")
    target_of = docs.targets(target, cand_groups) if target is not None else None
    values = {name: np.full(len(lists.qids), np.nan) for name in COLUMNS}
    order, group_ptr = group_order(lists.groups)
    for g in range(len(group_ptr) - 1):
        rows = order[group_ptr[g]:group_ptr[g + 1]]
        _group_measures(lists, docs, rows, pivot_id, k, target_of, mlrs_k, values)
    values["qlp"] = _query_language_preference(lists, qrels, docs)
    depth = np.diff(lists.ptr)
    extra = {"input": {"run": str(run_path), "qrels": str(qrels_path), "query_langs": qspec.source,
                       "doc_langs": dspec.source, "query_groups": gspec.source,
                       "cand_groups": None if cand_groups is None else str(cand_groups), "lines": int(lists.ptr[-1])},
             "depth": {"min": int(depth.min()), "max": int(depth.max())}}
    return PreferenceResult(lists.qids, lists.qlangs, values, pivot, k, target, mlrs_k, extra)


# ------------------------------------------------------------------------------------------- input


def _read_lists(run_path: Path, qrels, qspec, dspec, gspec: GroupSpec) -> _Lists:
    got, seen = _Collected(), set()
    groups, qrels_index, counts, docs, keys, langs, scores = [], [], [], [], [], [], []
    for chunk in _complete_queries(read_chunks(run_path)):
        codes, qi = _queries(chunk, qrels, qspec, seen, got)
        line_keys = pc.binary_join_element_wise(chunk.qids, chunk.docids, _SEPARATOR)
        _no_duplicates(line_keys, chunk.where, chunk.path, "line")
        order = _run_order(codes, chunk, doc_ids=True)
        count = np.bincount(codes, minlength=len(qi))
        if chunk.ranks is not None:
            _check_ranks(chunk, np.concatenate(([0], np.cumsum(count))).astype(np.int64), order)
        _, first = np.unique(codes, return_index=True)
        groups += [gspec.group(got.qids[len(got.qids) - len(qi) + c], chunk.path, chunk.where(int(first[c])))
                   for c in range(len(qi))]
        take = numeric_array(order, pa.int64())
        chunk_langs = dspec.languages(chunk.docids, chunk.path, chunk.where)
        qrels_index.append(qi)
        counts.append(count)
        docs.append(chunk.docids.take(take))
        keys.append(line_keys.take(take))
        langs.append(chunk_langs.take(take))
        scores.append(chunk.scores[order])
    ptr = np.concatenate(([0], np.cumsum(np.concatenate(counts)))).astype(np.int64)
    value = _dense_values(ptr, np.concatenate(scores), run_path)
    return _Lists(got.qids, got.qlangs, groups, np.concatenate(qrels_index), ptr, pa.concat_arrays(docs),
                  pa.concat_arrays(keys), pa.concat_arrays(langs), value)


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
    """Every document of the run and of the candidate groups: a code each, its language id, its place
    in the order by id descending, and its parallel group."""

    def __init__(self, lists: _Lists, cand: dict, cand_path, dspec: LangSpec, qrels_langs: list):
        cand_ids = string_array(list(cand))
        cand_langs = dspec.languages(cand_ids, cand_path,
                                     lambda i: f"line {cand[cand_ids[i].as_py()][1]}") if len(cand) else cand_ids
        enc = pc.dictionary_encode(pa.concat_arrays([lists.docs, cand_ids]))
        codes = as_numpy(enc.indices).astype(np.int64)
        self.line_code, cand_code = codes[:len(lists.docs)], codes[len(lists.docs):]
        self.ids = enc.dictionary
        n = len(self.ids)
        all_langs = pa.concat_arrays([lists.langs, cand_langs])
        self.langs = sorted(set(qrels_langs) | set(pc.unique(all_langs).to_pylist()))
        lang_of_entry = as_numpy(pc.index_in(all_langs, value_set=string_array(self.langs))).astype(np.int32)
        self.lang = np.empty(n, np.int32)
        self.lang[codes] = lang_of_entry
        self.id_pos = np.empty(n, np.int64)  # place in the order by id descending (trec_eval's tie order)
        self.id_pos[as_numpy(pc.array_sort_indices(self.ids, order="descending"))] = np.arange(n)
        self.group, self.line = [None] * n, [0] * n  # parallel group and its --cand-groups line
        for code, (group, line) in zip(cand_code.tolist(), cand.values()):
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
    retrieved = np.unique(docs.line_code[np.concatenate(lines)])
    cols = retrieved if target_of is None else np.union1d(retrieved, target_of[retrieved][target_of[retrieved] >= 0])
    by_id = cols[np.argsort(docs.id_pos[cols], kind="stable")]  # the columns: documents by id descending
    column = np.empty(len(cols), np.int64)
    column[np.argsort(docs.id_pos[cols], kind="stable")] = np.arange(len(cols))

    def place(codes):  # document codes (of this group) -> their columns
        return column[np.searchsorted(cols, codes)]

    block = np.zeros((len(rows), len(cols)), np.float32)
    for a, span in enumerate(lines):
        block[a, place(docs.line_code[span])] = lists.value[span]
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


def _query_language_preference(lists: _Lists, qrels, docs: _Docs) -> np.ndarray:
    """QLP per query from the relevant documents' values (0 where the query did not retrieve one)."""
    from fastir.eval.result import concat_ranges
    from fastir.kernels.preference import query_language_preferences

    starts, ends = qrels.ptr[lists.qrels_index], qrels.ptr[lists.qrels_index + 1]
    gold_ptr = np.concatenate(([0], np.cumsum(ends - starts))).astype(np.int64)
    golds = concat_ranges(starts, ends - starts)
    line = pc.index_in(qrels.keys.take(numeric_array(golds, pa.int64())), value_set=lists.keys)
    found = as_numpy(line.is_valid())
    gold_value = np.zeros(len(golds), np.float32)
    gold_value[found] = lists.value[as_numpy(line.drop_null()).astype(np.int64)]
    remap = np.array([docs.langs.index(x) for x in qrels.cand_langs], np.int32)
    q_lang = np.array([docs.langs.index(x) if x in docs.langs else -1 for x in lists.qlangs], np.int64)
    return query_language_preferences(gold_value, remap[qrels.lang[golds]], gold_ptr, q_lang)
