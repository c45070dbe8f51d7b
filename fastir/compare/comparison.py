"""``fastir compare``: systems side by side, with paired significance tests and confidence intervals.

Runs are grouped into systems (:mod:`fastir.compare.systems`: ``hybrid@1`` is seed 1 of ``hybrid``).
Each system is compared against each baseline, per statistic (:mod:`fastir.compare.cells`).

* One seed per system (today's behaviour, "query-level only"): percentile intervals of the stratified
  query bootstrap and a query-level paired test (:mod:`fastir.compare.resample`).
* Any system with several seeds: the statistics of the seed-averaged per-query values, their spread
  across seeds, and intervals and tests that add the seed variance to the query variance
  (:mod:`fastir.compare.seeds`, "two-level (seeds, queries)"); a one-seed system in such a
  comparison (the untrained base) is deterministic.

Holm's correction runs over each table's family: the summary table (all (system, baseline) pairs x
all columns), and each per-language table (setting x metric: all pairs x all languages).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from fastir.compare.cells import (  # noqa: F401 - re-exported: the statistics' public home was here
    Cells,
    Statistic,
    build_cells,
    build_statistics,
    merge_parallel_cells,
    observed_statistics,
    per_query_contributions,
    statistic_query_counts,
)
from fastir.compare.inputs import default_names, find_per_query, held_metrics, pair_runs, read_scores
from fastir.compare.resample import (  # noqa: F401 - paired_randomization_test re-exported (bench)
    bootstrap_distribution,
    paired_randomization_test,
    percentile_interval,
    query_level_p,
)
from fastir.compare.seeds import (
    QUERY_LEVEL,
    TWO_LEVEL,
    deviation_columns,
    interaction_variance,
    seed_spread,
    two_level,
)
from fastir.compare.stats import holm
from fastir.compare.systems import System, comparison_pairs, group_systems, resolve_baselines
from fastir.core.errors import InputError
from fastir.eval.metrics import RANK_DISTANCE, Metric, parse_metrics

QUERY_TESTS = ("randomization", "bootstrap", "t")
SEED_TEST = "two-level"  # Welch t on seed + query variance (fastir.compare.seeds)
TESTS = (*QUERY_TESTS, SEED_TEST)
DEFAULT_METRICS = ("map", "recall@1", "recall@10")
ALL = "all"  # --metrics all: every metric the runs' per_query.parquet files hold
COMPARE_FORMAT = "fastir-compare/2"


@dataclass
class Comparison:
    """The result of :func:`compare`. ``names``: the systems' names (rows of every table);
    ``baseline``: index of the first baseline; ``baselines``: all of them; ``pairs``: (system,
    baseline) index pairs, in the order of the difference columns; ``records``: see :func:`compare`."""

    names: list[str]
    paths: list[str]  # per run
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
    unpaired_rows: list[int]  # per run
    runs_meta: list[dict]  # per run
    systems: list[System] = field(default_factory=list)
    baselines: list[int] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    interval: str = QUERY_LEVEL
    records: list[dict] = field(default_factory=list)

    @property
    def seeded(self) -> bool:
        return self.interval == TWO_LEVEL

    @property
    def run_names(self) -> list[str]:
        names = [""] * len(self.paths)
        for s in self.systems:
            for i, n in zip(s.runs, s.run_names):
                names[i] = n
        return names

    def to_json(self) -> dict:
        system_of = {i: s for s in self.systems for i in s.runs}
        seed_of = {i: sd for s in self.systems for i, sd in zip(s.runs, s.seeds)}
        return {
            "format": COMPARE_FORMAT,
            "runs": [{"name": n, "path": p, "system": system_of[i].name, "seed": seed_of[i],
                      **{k: m.get(k) for k in ("dataset", "dataset_checksum", "model", "run")}}
                     for i, (n, p, m) in enumerate(zip(self.run_names, self.paths, self.runs_meta))],
            "systems": [{"name": s.name, "seeds": list(s.seeds), "runs": list(s.run_names)} for s in self.systems],
            "baseline": self.names[self.baseline],
            "baselines": [self.names[b] for b in self.baselines],
            "test": self.test, "samples": self.samples, "seed": self.seed,
            "alpha": self.alpha, "confidence": self.confidence, "correction": "holm",
            "interval": self.interval,
            "metrics": self.metrics, "langs": self.langs,
            "paired": {"queries": self.n_queries, "rows": self.n_rows,
                       "unpaired_rows": dict(zip(self.run_names, self.unpaired_rows))},
            "results": self.records,
        }


def compare(paths: list[str | os.PathLike], *, names: list[str] | None = None, baseline: str | None = None,
            baselines: list[str] | None = None, test: str | None = None, samples: int = 10000, seed: int = 0,
            metrics: list[str] | None = None, alpha: float = 0.05, confidence: float = 0.95) -> Comparison:
    """Compare runs (run dirs or scores dirs holding per_query.parquet), grouped into systems by
    their names (``system@seed``), against one or more baseline systems.

    ``metrics``: registry names (default map, recall@1, recall@10), or ``["all"]`` for every
    metric the runs' files hold; rank distance is always reported. ``test``: ``randomization``
    (default with one seed per system), ``bootstrap``, ``t``, or ``two-level`` (default, and the only
    one, when a system has several seeds).
    """
    _check_options(paths, test, samples, seed, alpha, confidence)
    chosen = _select_metrics(metrics, paths)
    files = [find_per_query(p) for p in paths]
    names = list(names) if names else default_names(files)
    if len(names) != len(files):
        raise InputError(None, "--names", f"need {len(files)} names, one per run, got {names}")
    systems = group_systems(names)
    if len(systems) < 2:
        raise InputError(None, "--names", f"compare needs at least two systems, got only {systems[0].name!r}")
    base = resolve_baselines(systems, baseline, baselines)
    seeded = any(s.n_seeds > 1 for s in systems)
    test = _resolve_test(test, seeded)
    pairs = comparison_pairs(len(systems), base)

    columns = [m.column for m in chosen]
    runs = [read_scores(f, n, columns) for f, n in zip(files, names)]
    paired = pair_runs(runs, columns)
    langs = sorted(set(paired.query_langs.tolist()))
    cells = build_cells(paired, chosen)
    stats = build_statistics(cells, chosen, langs)
    cells, stats = merge_parallel_cells(cells, stats)
    n_q = len(paired.query_ids)
    strata_ptr = np.concatenate([[0], np.cumsum(np.unique(paired.query_langs, return_counts=True)[1])])
    observed, lo, hi, p, spread = _statistics(cells, stats, systems, pairs, strata_ptr, test, samples, seed,
                                              confidence)
    comparison = Comparison(
        names=[s.name for s in systems], paths=[str(f.parent) for f in files], baseline=base[0], test=test,
        samples=samples, seed=seed, alpha=alpha, confidence=confidence,
        metrics=[m.name for m in chosen if not m.pooled_only or m.name in {s.metric for s in stats}],
        langs=langs, n_queries=n_q, n_rows=len(paired.setting), unpaired_rows=paired.unpaired_rows,
        runs_meta=[f.meta for f in runs], systems=systems, baselines=base, pairs=pairs,
        interval=TWO_LEVEL if seeded else QUERY_LEVEL)
    comparison.records = _records(comparison, stats, observed, lo, hi, p, _holm_per_family(stats, p), spread,
                                  {m.name: m.higher_is_better for m in chosen})
    return comparison


def _statistics(cells: Cells, stats: list[Statistic], systems: list[System], pairs: list[tuple[int, int]],
                strata_ptr: np.ndarray, test: str, samples: int, seed: int, confidence: float):
    """Observed statistics (K, V: systems then pairs), intervals (lo, hi: K, V), p-values (K, P) and
    the spread across seeds: query-level with one seed per system, two-level with several."""
    seeded = any(s.n_seeds > 1 for s in systems)
    system_values = np.stack([cells.values[:, s.runs[0]] if s.n_seeds == 1
                              else cells.values[:, list(s.runs)].mean(axis=1) for s in systems], axis=1)
    diffs = np.stack([system_values[:, a] - system_values[:, b] for a, b in pairs], axis=1)
    joint = np.concatenate([system_values, diffs], axis=1)  # systems, then differences to the baselines
    observed = observed_statistics(cells, stats, joint)
    spread = seed_spread(observed_statistics(cells, stats, cells.values), systems)
    n_sys, n_v = len(systems), joint.shape[1]
    if seeded:  # the seeds' deviations from their system's mean ride along: the interaction variance
        boot = bootstrap_distribution(cells, stats, np.concatenate([joint, deviation_columns(cells.values, systems)],
                                                                   axis=1), strata_ptr, samples, seed, len(pairs))
        res = two_level(observed, boot[:, :, :n_v], spread, systems, pairs, statistic_query_counts(cells, stats),
                        confidence, interaction_variance(boot[:, :, n_v:], systems))
        return observed, res.lo, res.hi, res.p, spread
    boot = bootstrap_distribution(cells, stats, joint, strata_ptr, samples, seed, len(pairs))
    lo, hi = percentile_interval(boot, confidence)
    p = query_level_p(test, cells, stats, diffs, observed[:, n_sys:], boot[:, :, n_sys:], int(strata_ptr[-1]),
                      samples, seed)
    return observed, lo, hi, p, spread


def _records(cmp: Comparison, stats: list[Statistic], observed, lo, hi, p, p_holm, spread, higher) -> list[dict]:
    """One record per (statistic, system): its value and interval, its seeds, and its differences to
    each baseline (``vs``; the first baseline's also flat, as in one-baseline comparisons)."""
    n_sys = len(cmp.systems)
    records = []
    for k, s in enumerate(stats):
        for i, system in enumerate(cmp.systems):
            rec = {"level": s.level, "setting": s.setting, "metric": s.metric, "lang": s.lang,
                   "run": system.name, "value": _f(observed[k, i]), "ci": [_f(lo[k, i]), _f(hi[k, i])],
                   "baseline": i in cmp.baselines}
            vs = {}
            for v, (a, b) in enumerate(cmp.pairs):
                if a != i:
                    continue
                diff = observed[k, n_sys + v]
                sig = bool(p_holm[k, v] < cmp.alpha)
                better = diff > 0 if higher[s.metric] else diff < 0
                vs[cmp.names[b]] = {"diff": _f(diff), "diff_ci": [_f(lo[k, n_sys + v]), _f(hi[k, n_sys + v])],
                                    "p": _f(p[k, v]), "p_holm": _f(p_holm[k, v]), "significant": sig,
                                    "better": bool(better) if sig else None}
            primary = cmp.names[cmp.baseline]
            if primary in vs:
                rec.update(vs[primary])
            rec.update({"n_seeds": system.n_seeds, "seed_sd": _f(spread.sd[k, i]),
                        "seed_range": [_f(spread.low[k, i]), _f(spread.high[k, i])],
                        "seed_values": [_f(x) for x in spread.values[i][k]], "vs": vs})
            records.append(rec)
    return records


def _resolve_test(test: str | None, seeded: bool) -> str:
    if test is None:
        return SEED_TEST if seeded else "randomization"
    if seeded and test != SEED_TEST:
        raise InputError(None, "--test", f"{test!r} resamples queries only; with several seeds per system the "
                         f"test is {SEED_TEST!r} (seed and query variance, docs/compare.md)")
    if not seeded and test == SEED_TEST:
        raise InputError(None, "--test", f"{SEED_TEST!r} needs a system with several seeds (name runs system@seed)")
    return test


def _check_options(paths, test: str, samples: int, seed: int, alpha: float, confidence: float) -> None:
    if test is not None and test not in TESTS:
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


def _f(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
