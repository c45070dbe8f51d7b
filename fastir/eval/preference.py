"""Language preference of a run: mean rank correlation of parallel queries (MRC), the query-language
preference rate (QLP), the pivot-language share of the top k, and MLRS on a parallel pool.

The metrics are defined in docs/score.md ("Language preference"), their formulas in the kernels of
:mod:`fastir.kernels.preference`. Scores are the dot products of the run's stored embeddings in
float32, as ``fastir score``'s; the full score rows of one block of whole parallel groups of queries
(``xling_id``) are computed at a time, within ``block_mb`` MiB. The candidates' embeddings are held
as one float32 matrix.

:func:`language_preference` returns a :class:`PreferenceResult` whose ``per_query`` table and
``summary()`` (per query language and overall) :func:`write_preference` writes (``fastir
preference``). This module owns the candidate parallel-group file (:func:`read_cand_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastir.core.errors import InputError
from fastir.runs.rundir import QRELS, Run, read_run

COLUMNS = ("mrc", "qlp", "pivot_share", "mlrs")
PER_QUERY_PARQUET, SUMMARY_JSON = "per_query.parquet", "summary.json"
PREFERENCE_FILES = (PER_QUERY_PARQUET, SUMMARY_JSON)  # what the output directory holds


@dataclass
class PreferenceResult:
    """Per-query values (NaN where undefined) of every measure, and what they were computed with."""

    query_ids: list[str]
    query_langs: list[str]
    values: dict[str, np.ndarray]  # COLUMNS -> float64 (n_queries,)
    pivot: str | None
    k: int
    target: str | None
    mlrs_k: int
    extra: dict = field(default_factory=dict)  # more of summary.json (a ranked run: its inputs and depth)

    @property
    def per_query(self):
        """A pyarrow table: query_id, lang, then one column per measure (null where undefined)."""
        import pyarrow as pa

        cols = {"query_id": pa.array(self.query_ids), "lang": pa.array(self.query_langs)}
        for name in COLUMNS:
            v = self.values[name]
            cols[name] = pa.array(v, mask=np.isnan(v))
        return pa.table(cols)

    def summary(self) -> dict:
        """{measure: {"all": mean, lang: mean, ...}} over the queries where it is defined, with the
        settings (and ``extra``); a measure defined for no query is left out."""
        langs = np.asarray(self.query_langs)
        out: dict = {"pivot": self.pivot, "k": self.k, "target": self.target, "mlrs_k": self.mlrs_k, **self.extra}
        for name in COLUMNS:
            v = self.values[name]
            if np.isnan(v).all():
                continue
            out[name] = {"all": float(np.nanmean(v)), "queries": int((~np.isnan(v)).sum())}
            for lang in dict.fromkeys(self.query_langs):
                part = v[langs == lang]
                if not np.isnan(part).all():
                    out[name][lang] = float(np.nanmean(part))
        return out


def language_preference(run_or_path, pivot: str | None = "en", k: int = 10, target: str | None = None,
                        cand_groups=None, mlrs_k: int = 10, block_mb: float = 256) -> PreferenceResult:
    """Every language-preference measure of a run dir (path or :class:`Run`), per query.

    ``pivot``: the language of Pivot@k (None: skip); ``target`` and ``cand_groups`` (a parallel-group
    id per candidate row, None where it has none): MLRS@``mlrs_k`` toward ``target``, each top
    candidate replaced by the candidate of its group in ``target`` (None: skip). MRC needs the
    queries' ``xling_id``; QLP the qrels. Bad input raises :class:`InputError` before any product.
    """
    from fastir.kernels.preference import mean_rank_correlation, top_measures

    run = run_or_path if isinstance(run_or_path, Run) else read_run(run_or_path)
    cand_langs, c_lang = run.candidates.lang_codes()
    pivot_id = language_id(cand_langs, pivot, "pivot")
    k, mlrs_k = positive_int(k, "k"), positive_int(mlrs_k, "mlrs_k")
    target_col = None if target is None else _target_columns(run, cand_langs, c_lang, target, cand_groups)
    groups = run.queries.xling_ids
    if groups is None:
        raise InputError(run.queries.path, "xling_id", "no parallel-group ids: mean rank correlation needs "
                                                       "parallel queries")
    order, group_ptr = group_order(groups)
    n = len(run.queries)
    values = {name: np.full(n, np.nan) for name in COLUMNS}
    cand = np.asarray(run.candidates.embeddings, dtype=np.float32)
    queries = run.queries.embeddings
    for lo, hi in _blocks(group_ptr, max(1, int(block_mb * 2**20 // (4 * max(1, len(cand)))))):
        rows = order[group_ptr[lo]:group_ptr[hi]]
        scores = np.ascontiguousarray(np.asarray(queries[rows], dtype=np.float32) @ cand.T)
        values["mrc"][rows] = mean_rank_correlation(scores, group_ptr[lo:hi + 1] - group_ptr[lo])
        share, shift = top_measures(scores, c_lang, pivot_id, k, target_col, mlrs_k if target is not None else 0)
        values["pivot_share"][rows], values["mlrs"][rows] = share, shift
    values["qlp"] = _query_language_preference(run, cand_langs, c_lang, cand, queries)
    return PreferenceResult(list(run.queries.ids), list(run.queries.langs), values, pivot, k, target, mlrs_k)


def _query_language_preference(run: Run, cand_langs, c_lang, cand, queries) -> np.ndarray:
    from fastir.kernels.preference import query_language_preferences

    q_rows, c_rows, grades = run.qrels_graded()
    if len(q_rows) == 0:
        raise InputError(run.path / QRELS, "query_id", "empty qrels: no query has a relevant candidate")
    rel = grades >= 1
    q_rows, c_rows = q_rows[rel], c_rows[rel]
    by_query = np.argsort(q_rows, kind="stable")
    q_rows, c_rows = q_rows[by_query], c_rows[by_query]
    gold_score = np.einsum("ij,ij->i", np.asarray(queries[q_rows], dtype=np.float32), cand[c_rows]).astype(np.float32)
    gold_ptr = np.zeros(len(run.queries) + 1, np.int64)
    np.cumsum(np.bincount(q_rows, minlength=len(run.queries)), out=gold_ptr[1:])
    index = {lang: i for i, lang in enumerate(cand_langs)}
    q_lang = np.array([index.get(lang, -1) for lang in run.queries.langs], np.int64)
    return query_language_preferences(gold_score, c_lang[c_rows], gold_ptr, q_lang)


def group_order(groups) -> tuple[np.ndarray, np.ndarray]:
    """Query rows ordered by parallel group (first appearance), and each group's slice of that order."""
    ids, inverse = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    first = np.full(len(ids), len(groups))
    np.minimum.at(first, inverse, np.arange(len(groups)))
    rank = np.empty(len(ids), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(ids))
    order = np.argsort(rank[inverse], kind="stable").astype(np.int64)
    group_ptr = np.zeros(len(ids) + 1, np.int64)
    np.cumsum(np.bincount(rank[inverse], minlength=len(ids)), out=group_ptr[1:])
    return order, group_ptr


def _blocks(group_ptr, max_rows: int):
    """(first group, end group) spans of whole groups holding at most ``max_rows`` rows (or one group)."""
    g, n = 0, len(group_ptr) - 1
    while g < n:
        end = g + 1
        while end < n and group_ptr[end + 1] - group_ptr[g] <= max_rows:
            end += 1
        yield g, end
        g = end


def _target_columns(run: Run, cand_langs, c_lang, target: str, cand_groups) -> np.ndarray:
    """Per candidate row, the row of its parallel version in ``target`` (itself when in ``target``; -1: none)."""
    t = language_id(cand_langs, target, "target")
    if cand_groups is None or len(cand_groups) != len(run.candidates):
        got = "none" if cand_groups is None else f"{len(cand_groups)}"
        raise InputError(None, "cand_groups", f"MLRS needs a parallel-group id per candidate row "
                                              f"({len(run.candidates)}), found {got}")
    version: dict = {}
    for row, group in enumerate(cand_groups):
        if group is not None and c_lang[row] == t:
            if group in version:
                raise InputError(None, "cand_groups", f"group {group!r} has two candidates in {target!r}")
            version[group] = row
    return np.array([version.get(g, -1) if g is not None else -1 for g in cand_groups], np.int64)


def language_id(cand_langs, lang, what: str) -> int:
    """The index of ``lang`` in ``cand_langs`` (-1 for None); InputError (field ``what``) if absent."""
    if lang is None:
        return -1
    if lang not in cand_langs:
        raise InputError(None, what, f"no candidate in {lang!r} (candidate languages: {', '.join(cand_langs)})")
    return cand_langs.index(lang)


def positive_int(value, what: str) -> int:
    """``value`` if a positive int; InputError (field ``what``) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(None, what, f"must be a positive integer, found {value!r}")
    return value


# ------------------------------------------------------------------------------------- files


def read_cand_groups(path, run: Run) -> list[str | None]:
    """The parallel-group id of each candidate row, from a UTF-8 text file of lines ``candidate_id TAB
    group_id`` (blank lines skipped; a candidate not listed has no group). A malformed line, an id the
    run lacks or listed twice: InputError naming the line."""
    row_of = {cid: i for i, cid in enumerate(run.candidates.ids)}
    groups: list[str | None] = [None] * len(row_of)
    for identifier, (group, number) in read_id_groups(path, "candidate").items():
        row = row_of.get(identifier)
        if row is None:
            raise InputError(path, f"line {number}", f"candidate {identifier[:80]!r} is not in the run")
        groups[row] = group
    return groups


def read_id_groups(path, what: str) -> dict[str, tuple[str, int]]:
    """``{id: (group_id, line number)}`` from a UTF-8 text file of lines ``id TAB group_id`` (blank lines
    skipped), in file order; ``what`` (candidate, query) names the ids in messages. A malformed line or
    an id listed twice: InputError naming the line."""
    from fastir.core.textfiles import text_lines

    out: dict[str, tuple[str, int]] = {}
    for number, line in text_lines(path):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise InputError(path, f"line {number}", f"expected {what}_id TAB group_id, found {text[:80]!r}")
        if fields[0] in out:
            raise InputError(path, f"line {number}", f"{what} {fields[0][:80]!r} is listed twice (first at line "
                                                     f"{out[fields[0]][1]})")
        out[fields[0]] = (fields[1], number)
    return out


def check_preference_outputs(out_dir, inputs, overwrite: bool = False) -> None:
    """The output directory, before any work: not an input, and replaced only if it holds our files."""
    from fastir.core.outputs import check_output_dir

    check_output_dir(out_dir, overwrite=overwrite, inputs=inputs, written=PREFERENCE_FILES)


def write_preference(result: PreferenceResult, out_dir, inputs=(), overwrite: bool = False):
    """per_query.parquet and summary.json into ``out_dir``, both or neither (a staged directory)."""
    import json

    import pyarrow.parquet as pq

    from fastir.core.outputs import atomic_dir

    check_preference_outputs(out_dir, inputs, overwrite)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        pq.write_table(result.per_query, tmp / PER_QUERY_PARQUET)
        (tmp / SUMMARY_JSON).write_text(json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8")
    return out_dir
