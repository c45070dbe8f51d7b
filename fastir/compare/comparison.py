"""``fastir compare``: several runs side by side, with paired significance tests and bootstrap CIs.

Unit of analysis. A *cell* is (metric, setting, query language, candidate language); its value is
the mean over its queries. The summary (Mo., Cr., Mul., rank distance; paper Tables 1-2) and
per-language statistics (Tables 3-8) are ``fastir score``'s, defined in docs/score.md; each is linear
in the cell means, which the resampling below relies on.

Resampling unit = the query: a query contributes to several cells (X->Y for every Y), and it is
swapped (randomization test) or drawn (bootstrap) as a whole, so the correlation between its cells
is kept. The bootstrap draws queries with replacement within each query language (strata), so every
language keeps its size. See ``fastir.kernels.resampling`` for the formulas and random streams.

Tests of each run against the baseline, per statistic: ``randomization`` (paired sign-flip,
``p = (1 + #{|T_b| >= |T_obs|}) / (B + 1)``), ``bootstrap`` (paired, centred:
``p = (1 + #{|T_b - T_obs| >= |T_obs|}) / (B + 1)``) or ``t`` (paired t-test on the per-query
contributions ``x_q = N * sum_{rows of q} coef_cell * d_row / n_cell``, whose mean is the statistic; for
a single cell this is exactly ``scipy.stats.ttest_rel``). Holm's correction runs over each table's
family: the summary table (all runs x all columns), and each per-language table (setting x metric:
all runs x all languages).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from fastir.compare.inputs import (
    SETTINGS,
    PairedRows,
    default_names,
    find_per_query,
    held_metrics,
    pair_runs,
    read_scores,
)
from fastir.compare.stats import holm, paired_t_test
from fastir.errors import InputError
from fastir.eval.metrics import RANK_DISTANCE, Metric, parse_metrics
from fastir.resources import require_memory

TESTS = ("randomization", "bootstrap", "t")
DEFAULT_METRICS = ("map", "recall@1", "recall@10")
ALL = "all"  # --metrics all: every metric the runs' per_query.parquet files hold
COMPARE_FORMAT = "fastir-compare/1"


@dataclass
class Statistic:
    """A linear combination of cell means: ``sum_j coef_j * mean(cell_j)``."""

    level: str  # "summary" | "language"
    setting: str  # mono | cross | multi (rank distance: multi)
    metric: str  # a registry metric name (map, recall@K, rank_distance, ...)
    lang: str | None  # query language (level "language")
    cells: list[int]
    coefs: list[float]

    @property
    def family(self) -> str:
        return "summary" if self.level == "summary" else f"language:{self.setting}:{self.metric}"


@dataclass
class Cells:
    """Cells in CSR: rows ``ptr[c]:ptr[c+1]`` of ``query`` / ``values`` (rows, R) belong to cell c."""

    ptr: np.ndarray
    query: np.ndarray
    values: np.ndarray
    keys: list[tuple[str, str, str, str]]  # (metric, setting, query_lang, cand_lang)


@dataclass
class Comparison:
    names: list[str]
    paths: list[str]
    baseline: int
    test: str
    samples: int
    seed: int
    alpha: float
    confidence: float
    metrics: list[str]
    langs: list[str]
    n_queries: int
    n_rows: int
    unpaired_rows: list[int]
    runs_meta: list[dict]
    records: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "format": COMPARE_FORMAT,
            "runs": [{"name": n, "path": p, **{k: m.get(k) for k in ("dataset", "dataset_checksum", "model", "run")}}
                     for n, p, m in zip(self.names, self.paths, self.runs_meta)],
            "baseline": self.names[self.baseline],
            "test": self.test, "samples": self.samples, "seed": self.seed,
            "alpha": self.alpha, "confidence": self.confidence, "correction": "holm",
            "metrics": self.metrics, "langs": self.langs,
            "paired": {"queries": self.n_queries, "rows": self.n_rows,
                       "unpaired_rows": dict(zip(self.names, self.unpaired_rows))},
            "results": self.records,
        }


def build_cells(paired: PairedRows, metrics: list[Metric]) -> Cells:
    """One cell per (metric, setting, query_lang, cand_lang); a pooled-only metric (rank distance)
    has multi cells only, of its non-NaN rows."""
    ptr, query, values, keys = [0], [], [], []
    boundary = np.flatnonzero((paired.setting[1:] != paired.setting[:-1])
                              | (paired.query_lang[1:] != paired.query_lang[:-1])
                              | (paired.cand_lang[1:] != paired.cand_lang[:-1])) + 1
    starts = np.concatenate([[0], boundary])
    ends = np.concatenate([boundary, [len(paired.setting)]])
    for metric in metrics:
        vals = paired.values[metric.column]
        for s, e in zip(starts, ends):
            setting = str(paired.setting[s])
            rows = np.arange(s, e)
            if metric.pooled_only:
                if setting != "multi":
                    continue
                rows = rows[~np.isnan(vals[s:e, 0])]
                if len(rows) == 0:
                    continue
            query.append(paired.query[rows])
            values.append(vals[rows])
            ptr.append(ptr[-1] + len(rows))
            keys.append((metric.name, setting, str(paired.query_lang[s]), str(paired.cand_lang[s])))
    return Cells(ptr=np.asarray(ptr, dtype=np.int64), query=np.concatenate(query).astype(np.int32),
                 values=np.concatenate(values, axis=0), keys=keys)


def build_statistics(cells: Cells, metrics: list[Metric], langs: list[str]) -> list[Statistic]:
    """Summary columns (metric-major: Mo./Cr./Mul. per metric; a pooled-only metric such as rank
    distance: Mul. only) and per-language rows."""
    index: dict[tuple[str, str], dict[str, list[int]]] = {}
    for c, (metric, setting, qlang, _) in enumerate(cells.keys):
        index.setdefault((metric, setting), {}).setdefault(qlang, []).append(c)
    stats: list[Statistic] = []
    pairs = [(m.name, s) for m in metrics for s in (("multi",) if m.pooled_only else SETTINGS)]
    for metric, setting in pairs:
        by_lang = index.get((metric, setting))
        if not by_lang:
            continue
        # mono / multi / rank distance: one cell per query language; cross: every X->Y cell
        all_cells = [c for lang in langs for c in by_lang.get(lang, [])]
        stats.append(Statistic("summary", setting, metric, None, all_cells,
                               [1.0 / len(all_cells)] * len(all_cells)))
    for metric, setting in pairs:
        by_lang = index.get((metric, setting))
        if not by_lang:
            continue
        for lang in langs:
            cs = by_lang.get(lang)
            if cs:
                stats.append(Statistic("language", setting, metric, lang, cs, [1.0 / len(cs)] * len(cs)))
    return stats


def merge_parallel_cells(cells: Cells, stats: list[Statistic]) -> tuple[Cells, list[Statistic]]:
    """Merge the cells of one (metric, setting, query language) that hold exactly the same queries.

    Every statistic weights the cells of a (metric, setting, query language) group equally, and cells
    with the same queries get the same bootstrap / randomization weights, so
    ``sum_{c in G} w * mean_c = (|G| w) * mean_G`` where ``mean_G`` is the cell mean of the per-row
    average over G: exact, and 10x fewer rows for the X->Y cells of a parallel dataset (XQuAD-R).
    """
    groups: dict[tuple, list[int]] = {}
    for c, (metric, setting, qlang, _) in enumerate(cells.keys):
        members = cells.query[cells.ptr[c]:cells.ptr[c + 1]]
        groups.setdefault((metric, setting, qlang, members.tobytes()), []).append(c)
    new_of = np.empty(len(cells.keys), dtype=np.int64)
    ptr, query, values, keys = [0], [], [], []
    for g, members in enumerate(groups.values()):
        first = members[0]
        lo, hi = cells.ptr[first], cells.ptr[first + 1]
        block = np.mean([cells.values[cells.ptr[c]:cells.ptr[c + 1]] for c in members], axis=0)
        query.append(cells.query[lo:hi])
        values.append(block)
        ptr.append(ptr[-1] + (hi - lo))
        m, s, q, _ = cells.keys[first]
        keys.append((m, s, q, "+".join(cells.keys[c][3] for c in members)))
        new_of[members] = g
    merged_stats = []
    for st in stats:
        acc: dict[int, float] = {}
        for c, w in zip(st.cells, st.coefs):
            acc[int(new_of[c])] = acc.get(int(new_of[c]), 0.0) + w
        merged_stats.append(Statistic(st.level, st.setting, st.metric, st.lang, list(acc), list(acc.values())))
    merged = Cells(ptr=np.asarray(ptr, dtype=np.int64), query=np.concatenate(query).astype(np.int32),
                   values=np.concatenate(values, axis=0), keys=keys)
    return merged, merged_stats


def _stat_csr(stats: list[Statistic]):
    k_ptr = np.zeros(len(stats) + 1, dtype=np.int64)
    k_ptr[1:] = np.cumsum([len(s.cells) for s in stats])
    k_cell = np.asarray([c for s in stats for c in s.cells], dtype=np.int32)
    k_coef = np.asarray([w for s in stats for w in s.coefs], dtype=np.float64)
    return k_ptr, k_cell, k_coef


def observed_statistics(cells: Cells, stats: list[Statistic], values: np.ndarray) -> np.ndarray:
    """(K, V): the statistics on the full data, from the cell means of ``values`` (rows, V)."""
    counts = np.diff(cells.ptr).astype(np.float64)
    means = np.add.reduceat(values, cells.ptr[:-1], axis=0) / counts[:, None]
    out = np.zeros((len(stats), values.shape[1]))
    for k, s in enumerate(stats):
        out[k] = np.asarray(s.coefs) @ means[s.cells]
    return out


def per_query_contributions(cells: Cells, stat: Statistic, diffs: np.ndarray, n_queries: int) -> np.ndarray:
    """(Q_k, V): per-query terms ``x_q = N_k * sum_{rows of q} coef / n_cell * d`` of a statistic,
    over the N_k queries it involves; ``mean(x_q)`` equals the statistic."""
    acc = np.zeros((n_queries, diffs.shape[1]))
    used = np.zeros(n_queries, dtype=bool)
    for c, w in zip(stat.cells, stat.coefs):
        lo, hi = cells.ptr[c], cells.ptr[c + 1]
        q = cells.query[lo:hi]
        np.add.at(acc, q, diffs[lo:hi] * (w / (hi - lo)))
        used[q] = True
    return acc[used] * used.sum()


def compare(paths: list[str | os.PathLike], *, baseline: str | None = None, test: str = "randomization",
            samples: int = 10000, seed: int = 0, metrics: list[str] | None = None,
            names: list[str] | None = None, alpha: float = 0.05, confidence: float = 0.95) -> Comparison:
    """Compare runs (run dirs or scores dirs holding per_query.parquet) against a baseline.

    ``metrics``: registry names (default map, recall@1, recall@10), or ``["all"]`` for every
    metric the runs' files hold; rank distance is always reported.
    """
    _check_options(paths, test, samples, seed, alpha, confidence)
    chosen = _select_metrics(metrics, paths)
    files = [find_per_query(p) for p in paths]
    names = list(names) if names else default_names(files)
    if len(names) != len(files) or len(set(names)) != len(names):
        raise InputError(None, "--names", f"need {len(files)} distinct names, got {names}")
    if baseline is None:
        base = 0
    elif baseline in names:
        base = names.index(baseline)
    else:
        raise InputError(None, "--baseline", f"{baseline!r} is not one of the runs {names}")

    columns = [m.column for m in chosen]
    runs = [read_scores(f, n, columns) for f, n in zip(files, names)]
    paired = pair_runs(runs, columns)
    langs = sorted(set(paired.query_langs.tolist()))
    cells = build_cells(paired, chosen)
    stats = build_statistics(cells, chosen, langs)
    cells, stats = merge_parallel_cells(cells, stats)
    r = len(runs)
    others = [i for i in range(r) if i != base]
    diffs = cells.values[:, others] - cells.values[:, [base]]
    joint = np.concatenate([cells.values, diffs], axis=1)  # runs, then differences to the baseline

    observed = observed_statistics(cells, stats, joint)
    strata_ptr = np.concatenate([[0], np.cumsum(np.unique(paired.query_langs, return_counts=True)[1])])
    lo, hi, p = _resample(cells, stats, joint, observed, r, strata_ptr, test, samples, seed, confidence)
    p_holm = _holm_per_family(stats, p)
    reported = {s.metric for s in stats}
    comparison = Comparison(
        names=names, paths=[str(f.parent) for f in files], baseline=base, test=test, samples=samples,
        seed=seed, alpha=alpha, confidence=confidence,
        metrics=[m.name for m in chosen if not m.pooled_only or m.name in reported], langs=langs,
        n_queries=len(paired.query_ids), n_rows=len(paired.setting), unpaired_rows=paired.unpaired_rows,
        runs_meta=[f.meta for f in runs])
    higher = {m.name: m.higher_is_better for m in chosen}
    for k, s in enumerate(stats):
        for i in range(r):
            rec = {"level": s.level, "setting": s.setting, "metric": s.metric, "lang": s.lang,
                   "run": names[i], "value": _f(observed[k, i]), "ci": [_f(lo[k, i]), _f(hi[k, i])],
                   "baseline": i == base}
            if i != base:
                v = others.index(i)
                diff = observed[k, r + v]
                sig = bool(p_holm[k, v] < alpha)
                better = diff > 0 if higher[s.metric] else diff < 0
                rec.update({"diff": _f(diff), "diff_ci": [_f(lo[k, r + v]), _f(hi[k, r + v])],
                            "p": _f(p[k, v]), "p_holm": _f(p_holm[k, v]), "significant": sig,
                            "better": bool(better) if sig else None})
            comparison.records.append(rec)
    return comparison


def _check_options(paths, test: str, samples: int, seed: int, alpha: float, confidence: float) -> None:
    if test not in TESTS:
        raise InputError(None, "--test", f"unknown test {test!r} (use {', '.join(TESTS)})")
    if samples < 1:
        raise InputError(None, "--samples", "must be >= 1")
    if not 0 <= seed < 2**64:
        raise InputError(None, "--seed", "must be in [0, 2**64)")
    if not 0 < alpha < 1 or not 0 < confidence < 1:
        raise InputError(None, "--alpha/--confidence", "must lie in (0, 1)")
    if len(paths) < 2:
        raise InputError(paths[0] if paths else None, None, "compare needs at least two runs")


def _select_metrics(metrics: list[str] | None, paths) -> list[Metric]:
    """The compared metrics, in the order asked, rank distance always last."""
    names = list(metrics or DEFAULT_METRICS)
    if names == [ALL]:
        files = [find_per_query(p) for p in paths]
        held = [set(held_metrics(f)) for f in files]
        names = [m for m in held_metrics(files[0]) if all(m in h for h in held)]
    elif len(set(names)) != len(names) or not names:
        raise InputError(None, "--metrics", "list each metric once")
    chosen = [m for m in parse_metrics(names) if m != RANK_DISTANCE]
    if not chosen:
        raise InputError(None, "--metrics", "rank distance is always reported; name a metric besides it")
    return [*chosen, RANK_DISTANCE]


def _holm_per_family(stats: list[Statistic], p: np.ndarray) -> np.ndarray:
    families: dict[str, list[int]] = {}
    for k, s in enumerate(stats):
        families.setdefault(s.family, []).append(k)
    p_holm = np.full_like(p, np.nan)
    for ks in families.values():
        p_holm[ks] = holm(p[ks].ravel()).reshape(len(ks), -1)
    return p_holm


def _resample(cells: Cells, stats: list[Statistic], joint: np.ndarray, observed: np.ndarray, r: int,
              strata_ptr: np.ndarray, test: str, samples: int, seed: int, confidence: float):
    """Bootstrap intervals of every column of ``joint`` (R runs, then R-1 differences) and p-values
    of the differences: (lo (K, V), hi (K, V), p (K, R-1))."""
    from fastir.kernels.resampling import sign_flip_statistics, stratified_bootstrap_statistics

    n_q = int(strata_ptr[-1])
    k_ptr, k_cell, k_coef = _stat_csr(stats)
    # The bootstrap distribution (samples, K, V) float64, a sorted copy for the percentiles, and the
    # sign-flip distribution (samples, K, R-1).
    require_memory(samples * len(stats) * (2 * joint.shape[1] + r - 1) * 8, "--samples",
                   f"{samples} resamples of {len(stats)} statistics")
    boot = stratified_bootstrap_statistics(strata_ptr, np.arange(n_q), cells.ptr, cells.query, joint,
                                           k_ptr, k_cell, k_coef, n_q, samples, seed)
    tail = (1.0 - confidence) / 2.0 * 100.0
    if np.isnan(boot).any():  # a cell none of whose queries was drawn: ignore those resamples
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN interval
            lo, hi = np.nanpercentile(boot, [tail, 100.0 - tail], axis=0)
    else:
        lo, hi = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    diffs, d_obs = joint[:, r:], observed[:, r:]
    if test == "bootstrap":
        p = _exceed_p(boot[:, :, r:] - d_obs[None], d_obs)
    elif test == "randomization":
        # linear in the signs: cell means of +-d over the cells' fixed sizes
        flips = sign_flip_statistics(cells.ptr, cells.query, diffs, k_ptr, k_cell, k_coef, n_q, samples, seed)
        p = _exceed_p(flips, d_obs)
    else:
        p = np.empty_like(d_obs)
        for k, s in enumerate(stats):
            x = per_query_contributions(cells, s, diffs, n_q)
            for v in range(x.shape[1]):
                p[k, v] = paired_t_test(x[:, v])[1]
    return lo, hi, p


def _exceed_p(dist: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``(1 + #{b: |dist_b| >= |observed|}) / (B + 1)`` per (statistic, column); a relative tolerance
    absorbs the rounding of sums taken in another order (e.g. the identity resample)."""
    thr = np.abs(observed) * (1.0 - 1e-9) - 1e-15
    valid = ~np.isnan(dist)
    hits = (np.abs(np.where(valid, dist, 0.0)) >= thr[None]) & valid
    return (1.0 + hits.sum(axis=0)) / (1.0 + valid.sum(axis=0))


def _f(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x



def paired_randomization_test(a, b, samples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of ``mean(b) - mean(a)`` over one flat query set.

    ``p = (1 + #{resamples with |mean(s * (b - a))| >= |mean(b - a)|}) / (samples + 1)``, with the
    signs ``s`` drawn per query from stream ``(seed, resample)`` (see ``fastir.kernels.resampling``).
    """
    from fastir.kernels.resampling import sign_flip_statistics

    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("a and b must be 1-D arrays of equal, non-zero length")
    flips = sign_flip_statistics(np.array([0, d.size]), np.arange(d.size), d, np.array([0, 1]), [0], [1.0],
                                 d.size, samples, seed)
    return float(_exceed_p(flips, np.array([[d.mean()]]))[0, 0])
