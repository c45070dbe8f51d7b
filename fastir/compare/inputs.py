"""Inputs of ``fastir compare``: find, read and validate per_query.parquet files, then pair the runs.

A run is given as a run dir (``RUN/scores/per_query.parquet``) or a scores dir
(``SCORES/per_query.parquet``). Runs are refused when they were scored over different datasets
(``dataset_checksum``) or different query sets (the cells ``(setting, query_lang, cand_lang)``
differ); within the common cells only rows scored in every run are paired.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastir.core.errors import InputError
from fastir.eval.cells import KINDS as SETTINGS
from fastir.eval.cells import POOLED
from fastir.eval.metrics import RANK_DISTANCE as RD_METRIC
from fastir.eval.metrics import from_column, metric
from fastir.eval.result import PER_QUERY_FORMAT
from fastir.eval.result import PER_QUERY_PARQUET as PER_QUERY

KEY_COLUMNS = ("query_id", "query_lang", "cand_lang", "setting")
RANK_DISTANCE = RD_METRIC.column


def metric_column(name: str) -> str:
    """per_query.parquet column of a registry metric name: ``map`` -> ``ap``, ``recall@K`` -> ``recall@K``."""
    return metric(name).column


def held_metrics(per_query: Path) -> list[str]:
    """Names of the registry metrics whose columns ``per_query`` holds, in column order."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(per_query).names
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(per_query, None, f"cannot read Parquet: {' '.join(str(exc).split())}") from None
    return [m.name for m in map(from_column, names) if m is not None]


@dataclass
class ScoresFile:
    """One run's per-query results, validated."""

    name: str
    path: Path  # the per_query.parquet file
    meta: dict  # the parquet "fastir" metadata
    columns: dict[str, np.ndarray] = field(repr=False)  # key columns (str) and metric columns (float64)
    num_relevant: np.ndarray = field(repr=False)

    @property
    def num_rows(self) -> int:
        return len(self.columns["query_id"])


def find_per_query(path: str | os.PathLike) -> Path:
    """``path`` is a scores dir (holds per_query.parquet) or a run dir (holds scores/per_query.parquet)."""
    path = Path(path)
    if path.is_file() and path.name == PER_QUERY:
        return path
    if not path.exists():
        raise InputError(path, None, "no such run or scores directory")
    for candidate in (path / PER_QUERY, path / "scores" / PER_QUERY):
        if candidate.is_file():
            return candidate
    raise InputError(path, PER_QUERY, "missing: run `fastir score --per-query` first "
                     "(looked in DIR/ and DIR/scores/)")


_SEED_DIR = re.compile(r"^seed-(?P<seed>[0-9]+)$")


def layout_name(run_dir: Path) -> str | None:
    """The name of a run in ``fastir experiment``'s layout: ``.../<strategy>/seed-<s>/{runs,scores}/<dataset>``
    -> ``strategy@s``; ``.../<name>/{runs,scores}/<dataset>`` (the base model) -> ``name``; else None."""
    if run_dir.parent.name not in ("runs", "scores"):
        return None
    owner = run_dir.parent.parent
    m = _SEED_DIR.match(owner.name)
    if m and owner.parent.name:
        return f"{owner.parent.name}@{int(m['seed'])}"
    return owner.name or None


def default_names(per_query_paths: list[Path]) -> list[str]:
    """Run names from directory names (a ``scores`` dir is named after its run dir; a run of an
    experiment's layout by :func:`layout_name`, e.g. ``hybrid@1``); duplicates get their parent
    directories prepended until they differ (then a ``#i`` suffix)."""
    dirs = [p.parent.parent if p.parent.name == "scores" else p.parent for p in per_query_paths]
    dirs = [d.resolve() for d in dirs]
    by_layout = [layout_name(d) for d in dirs]
    if all(by_layout) and len(set(by_layout)) == len(by_layout):
        return by_layout
    depth = [1] * len(dirs)

    parts = [d.parts[1:] if d.anchor else d.parts for d in dirs]  # without the root "/"

    def name(i: int) -> str:
        return "/".join(parts[i][-depth[i]:]) or f"run{i + 1}"

    for _ in range(64):
        names = [name(i) for i in range(len(dirs))]
        dup = {n for n in names if names.count(n) > 1}
        if not dup:
            return names
        grew = False
        for i, n in enumerate(names):
            if n in dup and depth[i] < len(parts[i]):
                depth[i] += 1
                grew = True
        if not grew:
            break
    names = [name(i) for i in range(len(dirs))]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def _string_column(table, path: Path, name: str) -> np.ndarray:
    import pyarrow as pa

    col = table.column(name)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise InputError(path, name, f"expected a string column, got {col.type}")
    if col.null_count:
        raise InputError(path, name, f"{col.null_count} null values")
    return np.asarray(col.to_pylist(), dtype=str)


def _float_column(table, path: Path, name: str) -> np.ndarray:
    import pyarrow as pa

    col = table.column(name)
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise InputError(path, name, f"expected a numeric column, got {col.type}")
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _metric_values(table, path: Path, column: str, setting: np.ndarray) -> np.ndarray:
    """A metric column, checked against its registry spec (range, pooled-only NaNs)."""
    spec = from_column(column)
    values = _float_column(table, path, column)
    if spec is not None and spec.pooled_only:
        if np.isinf(values).any():
            raise InputError(path, column, "values must be finite (or NaN)")
        if (~np.isnan(values) & (setting != "multi")).any():
            raise InputError(path, column, "must be NaN outside `multi` rows")
    elif spec is None or spec.measure.bounded:
        if not np.all((values >= 0.0) & (values <= 1.0)):  # also catches NaN
            raise InputError(path, column, "values must lie in [0, 1] (found NaN or out of range)")
    return values


def read_scores(per_query: Path, name: str, metric_columns: list[str]) -> ScoresFile:
    """Read and validate one per_query.parquet (columns, metadata, keys, value ranges)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(per_query)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(per_query, None, f"cannot read Parquet: {' '.join(str(exc).split())}") from None
    raw = (table.schema.metadata or {}).get(b"fastir")
    if raw is None:
        raise InputError(per_query, "fastir metadata", "missing (not written by `fastir score --per-query`)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise InputError(per_query, "fastir metadata", "not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != PER_QUERY_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else meta
        raise InputError(per_query, "fastir metadata.format", f"expected {PER_QUERY_FORMAT!r}, got {got!r}")
    if not meta.get("dataset_checksum"):
        raise InputError(per_query, "fastir metadata.dataset_checksum", "missing")
    for col in (*KEY_COLUMNS, "num_relevant", *metric_columns):
        if col not in table.column_names:
            known = from_column(col)
            hint = (f" (re-run `fastir score --per-query --metrics ...` with {known.name})"
                    if known is not None and known.measure.cutoff else "")
            raise InputError(per_query, col, f"column missing{hint}")
    if table.num_rows == 0:
        raise InputError(per_query, None, "no rows")

    columns = {c: _string_column(table, per_query, c) for c in KEY_COLUMNS}
    for c in metric_columns:
        columns[c] = _metric_values(table, per_query, c, columns["setting"])
    num_relevant = _float_column(table, per_query, "num_relevant")
    if not np.all(num_relevant >= 1):
        raise InputError(per_query, "num_relevant", "every row needs >= 1 relevant candidate")
    if RANK_DISTANCE in columns and np.any(~np.isnan(columns[RANK_DISTANCE]) & (num_relevant < 2)):
        raise InputError(per_query, RANK_DISTANCE, "must be NaN where num_relevant < 2")
    _check_keys(per_query, columns)
    return ScoresFile(name=name, path=per_query, meta=meta, columns=columns, num_relevant=num_relevant)


def _check_keys(per_query: Path, columns: dict[str, np.ndarray]) -> None:
    """Settings match their languages, one row per (query, setting, cand_lang), one language per query."""
    setting, qlang, clang = columns["setting"], columns["query_lang"], columns["cand_lang"]
    unknown = sorted(set(np.unique(setting)) - set(SETTINGS))
    if unknown:
        raise InputError(per_query, "setting", f"unknown values {unknown} (expected mono, cross, multi)")
    mono, cross, multi = setting == "mono", setting == "cross", setting == "multi"
    if np.any(mono & (clang != qlang)):
        raise InputError(per_query, "cand_lang", "`mono` rows need cand_lang == query_lang")
    if np.any(multi & (clang != POOLED)):
        raise InputError(per_query, "cand_lang", f"`multi` rows need cand_lang == {POOLED!r}")
    if np.any(cross & ((clang == qlang) | (clang == POOLED))):
        raise InputError(per_query, "cand_lang", "`cross` rows need a cand_lang other than query_lang")
    keys = _row_keys(columns)
    uniq, counts = np.unique(keys, return_counts=True)
    if len(uniq) != len(keys):
        dup = str(uniq[np.argmax(counts)]).split("\x1f")
        raise InputError(per_query, "query_id", f"duplicate row for query {dup[0]!r} ({dup[1]} -> {dup[2]})")
    # one language per query
    order = np.argsort(columns["query_id"], kind="stable")
    qid, ql = columns["query_id"][order], qlang[order]
    same = qid[1:] == qid[:-1]
    if np.any(same & (ql[1:] != ql[:-1])):
        bad = qid[1:][same & (ql[1:] != ql[:-1])][0]
        raise InputError(per_query, "query_lang", f"query {bad!r} has more than one query_lang")


def _row_keys(columns: dict[str, np.ndarray]) -> np.ndarray:
    sep = np.asarray("\x1f")
    return np.char.add(np.char.add(np.char.add(np.char.add(columns["query_id"], sep), columns["setting"]),
                                   sep), columns["cand_lang"])


@dataclass
class PairedRows:
    """Rows scored in every run, sorted by (setting, query_lang, cand_lang, query): cells are contiguous.

    ``values[metric]`` is (rows, R) float64, column i = run i. Queries are indexed 0..Q-1, sorted by
    (language, query_id), so each language's queries are contiguous (the bootstrap strata).
    """

    setting: np.ndarray
    query_lang: np.ndarray
    cand_lang: np.ndarray
    query: np.ndarray  # int32 index into query_ids
    values: dict[str, np.ndarray]
    query_ids: np.ndarray
    query_langs: np.ndarray  # language of each query
    unpaired_rows: list[int]  # per run: rows left out because another run lacks them


def check_compatible(runs: list[ScoresFile]) -> None:
    """Same dataset and same query set (cells) in every run, else InputError naming the odd run."""
    first = runs[0]
    for r in runs[1:]:
        a, b = first.meta["dataset_checksum"], r.meta["dataset_checksum"]
        if a != b:
            raise InputError(r.path, "dataset_checksum",
                             f"{b} differs from {first.name}'s {a}: runs over different datasets cannot be paired")
    for key, default, what in (("ties", "pessimistic", "tie mode"), ("relevance_threshold", 1, "relevance threshold")):
        for r in runs[1:]:
            a, b = first.meta.get(key, default), r.meta.get(key, default)
            if a != b:
                raise InputError(r.path, key, f"{what} {b!r} differs from {first.name}'s {a!r}: per-query values "
                                              "of different definitions cannot be paired")
    cells0 = _cells(first)
    for r in runs[1:]:
        cells = _cells(r)
        if cells != cells0:
            only = sorted(cells0 ^ cells)[:3]
            raise InputError(r.path, "query set",
                             f"scored over different query/candidate languages than {first.name} "
                             f"(cells in one run only, e.g. {['/'.join(c) for c in only]})")


def _cells(run: ScoresFile) -> set[tuple[str, str, str]]:
    c = run.columns
    return set(zip(c["setting"].tolist(), c["query_lang"].tolist(), c["cand_lang"].tolist()))


def pair_runs(runs: list[ScoresFile], metric_columns: list[str]) -> PairedRows:
    """Intersect the runs' rows on (query_id, setting, cand_lang) and align their metric values."""
    check_compatible(runs)
    keys = [_row_keys(r.columns) for r in runs]
    common = keys[0]
    for k in keys[1:]:
        common = np.intersect1d(common, k, assume_unique=True)
    if len(common) == 0:
        raise InputError(runs[1].path, "query_id", f"no query scored in both {runs[0].name} and {runs[1].name}")
    positions = []
    for k in keys:
        sorter = np.argsort(k)
        positions.append(sorter[np.searchsorted(k, common, sorter=sorter)])
    c0, p0 = runs[0].columns, positions[0]
    for r, p in zip(runs[1:], positions[1:]):
        if np.any(r.columns["query_lang"][p] != c0["query_lang"][p0]):
            raise InputError(r.path, "query_lang", f"differs from {runs[0].name} for the same query_id")
        if np.any(r.num_relevant[p] != runs[0].num_relevant[p0]):
            raise InputError(r.path, "num_relevant",
                             f"differs from {runs[0].name} for the same query: different relevance judgments")
    qid = c0["query_id"][p0]
    qlang = c0["query_lang"][p0]
    setting = c0["setting"][p0]
    clang = c0["cand_lang"][p0]
    # queries sorted by (language, id): each language is a contiguous stratum
    pairs = np.unique(np.char.add(np.char.add(qlang, np.asarray("\x1f")), qid))
    split = np.char.partition(pairs, "\x1f")
    query_langs, query_ids = split[:, 0], split[:, 2]
    query = np.searchsorted(pairs, np.char.add(np.char.add(qlang, np.asarray("\x1f")), qid)).astype(np.int32)
    setting_rank = np.searchsorted(np.asarray(SETTINGS), setting, sorter=np.argsort(SETTINGS))
    order = np.lexsort((query, clang, qlang, setting_rank))
    values = {m: np.stack([r.columns[m][p[order]] for r, p in zip(runs, positions)], axis=1)
              for m in metric_columns}
    if RANK_DISTANCE in values:
        rd = values[RANK_DISTANCE]
        # NaN follows num_relevant, identical across runs on paired rows; a mismatch is a broken file.
        mismatch = np.isnan(rd).any(axis=1) & ~np.isnan(rd).all(axis=1)
        if mismatch.any():
            i = int(np.argmax(np.isnan(rd[mismatch][0])))
            raise InputError(runs[i].path, RANK_DISTANCE, "NaN where other runs have a value")
    return PairedRows(setting=setting[order], query_lang=qlang[order], cand_lang=clang[order],
                      query=query[order], values=values, query_ids=query_ids, query_langs=query_langs,
                      unpaired_rows=[len(k) - len(common) for k in keys])
