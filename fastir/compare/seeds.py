"""Seed-aware statistics: the two levels of randomness of a trained system, seeds and queries.

A system trained from S seeds has, per statistic k, one value per seed, ``theta_s`` (each computed
on the same queries). Reported: their mean (= the statistic of the seed-averaged per-query values,
the statistic being linear in them), their spread (sd with ddof 1, min, max), an interval and, for a
difference to a baseline, a test. The variance of a mean over seeds and queries has two parts,
which the two-level bootstrap (draw S seeds with replacement per system, then queries with
replacement within each query language, the query draw shared by all systems) adds up:

* seeds: ``V_seed = var_s(theta_s) / S`` per system (ddof 1: the unbiased S/(S-1) that a
  bootstrap draw of S out of S seeds lacks); 0 for a one-seed (deterministic) system; S - 1 degrees
  of freedom. theta_s also varies with the seed x query interaction, so V_seed holds it too;
* queries: ``V_query`` = the variance, over the query-level bootstrap resamples, of the statistic of
  the seed-averaged values (for a difference: of the seed-averaged differences, so the pairing of
  queries is kept), minus the interaction part already in V_seed, ``V_inter = sum_s var_b(T(x_s -
  x_mean)) / (S (S - 1))`` (the bootstrap variance of each seed's deviation from the seed mean), and
  at least 0; n - 1 degrees of freedom (n = queries the statistic involves). The seed part is at least
  V_inter (the seed mean varies at least by the interaction; this floor keeps a seed spread that is
  small by chance, from 2 degrees of freedom, from making the interval collapse).

This is the variance of a mean over a crossed seeds x queries design, ``(MS_seed + MS_query -
MS_inter) / (S n)`` in ANOVA terms; without the subtraction a pure interaction would count twice.

Interval: ``estimate +- t_{nu, (1 + confidence) / 2} * sqrt(V_seed + V_query)``, nu by
Welch-Satterthwaite. Test of a difference D: ``t = D / sqrt(V_seed + V_query)`` against Student's t
with nu degrees of freedom. With 3 seeds the seed part rests on 2 degrees of freedom: the percentiles
of the plain two-level bootstrap would be too narrow (they cover far less than 95 % when seeds
dominate, see docs/compare.md); the t reference with Welch's nu is what keeps coverage and type-I
error where they are claimed (checked by simulation in tests/compare/test_seeds.py).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from fastir.compare.stats import t_quantile, t_two_sided_p, welch_df
from fastir.compare.systems import System

TWO_LEVEL = "two-level (seeds, queries)"
QUERY_LEVEL = "query-level only"


@dataclass
class SeedSpread:
    """Per statistic (K) and system: the seed values and their mean, sd (NaN for one seed), min, max."""

    values: list[np.ndarray]  # per system: (K, S_i), columns in the system's seed order
    mean: np.ndarray  # (K, n_systems)
    sd: np.ndarray
    low: np.ndarray
    high: np.ndarray


def seed_spread(observed_runs: np.ndarray, systems: list[System]) -> SeedSpread:
    """Spread across seeds of each system's per-run statistics ``observed_runs`` (K, runs)."""
    values = [observed_runs[:, list(s.runs)] for s in systems]
    sd = np.full((observed_runs.shape[0], len(systems)), np.nan)
    for i, v in enumerate(values):
        if v.shape[1] > 1:
            sd[:, i] = v.std(axis=1, ddof=1)
    return SeedSpread(values=values, mean=np.stack([v.mean(axis=1) for v in values], axis=1), sd=sd,
                      low=np.stack([v.min(axis=1) for v in values], axis=1),
                      high=np.stack([v.max(axis=1) for v in values], axis=1))


@dataclass
class TwoLevel:
    """Intervals of every column (systems, then pairs) and tests of the pairs, per statistic."""

    lo: np.ndarray  # (K, V)
    hi: np.ndarray  # (K, V)
    se: np.ndarray  # (K, V) sqrt(V_seed + V_query)
    df: np.ndarray  # (K, V) Welch-Satterthwaite degrees of freedom
    p: np.ndarray  # (K, P)


def deviation_columns(values: np.ndarray, systems: list[System]) -> np.ndarray:
    """(rows, runs of the several-seed systems): each run's values minus its system's seed mean, in
    system order, then seed order (the columns :func:`interaction_variance` reads)."""
    cols = [values[:, r] - values[:, list(s.runs)].mean(axis=1) for s in systems if s.n_seeds > 1 for r in s.runs]
    return np.stack(cols, axis=1) if cols else np.zeros((values.shape[0], 0))


def interaction_variance(boot_deviations: np.ndarray, systems: list[System]) -> np.ndarray:
    """(K, n_systems): ``V_inter = sum_s var_b(T(x_s - x_mean)) / (S (S - 1))`` per system (0 for one
    seed), from the query bootstrap (B, K, columns of :func:`deviation_columns`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanvar(boot_deviations, axis=0, ddof=1)
    out = np.zeros((var.shape[0], len(systems)))
    col = 0
    for i, s in enumerate(systems):
        if s.n_seeds > 1:
            out[:, i] = var[:, col:col + s.n_seeds].sum(axis=1) / (s.n_seeds * (s.n_seeds - 1))
            col += s.n_seeds
    return out


def two_level(observed: np.ndarray, boot: np.ndarray, spread: SeedSpread, systems: list[System],
              pairs: list[tuple[int, int]], n_queries: np.ndarray, confidence: float,
              v_inter: np.ndarray) -> TwoLevel:
    """Seed + query intervals and tests.

    ``observed`` (K, V): the statistics of the seed-averaged values, V = systems then pairs
    (system - baseline); ``boot`` (B, K, V) their query-level bootstrap distribution; ``n_queries``
    (K,) the queries each statistic involves; ``v_inter`` (K, n_systems) from
    :func:`interaction_variance`.
    """
    k_count, n_sys = observed.shape[0], len(systems)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with < 2 finite resamples -> NaN
        v_query = np.nanvar(boot, axis=0, ddof=1)
    v_seed = np.zeros((k_count, n_sys))
    for i, s in enumerate(systems):
        if s.n_seeds > 1:
            v_seed[:, i] = spread.sd[:, i] ** 2 / s.n_seeds
    parts = [[i] for i in range(n_sys)] + [[a, b] for a, b in pairs]
    lo, hi, se, df = (np.full(observed.shape, np.nan) for _ in range(4))
    p = np.full((k_count, len(pairs)), np.nan)
    q = (1.0 + confidence) / 2.0
    for k in range(k_count):
        for v, members in enumerate(parts):
            comps, dfs = _components(members, systems, v_seed[k], v_inter[k], v_query[k, v], int(n_queries[k]))
            if any(math.isnan(c) for c in comps) or math.isnan(observed[k, v]):
                continue
            var = sum(comps)
            nu = welch_df(comps, dfs)
            se[k, v], df[k, v] = math.sqrt(var), nu
            half = t_quantile(q, nu) * se[k, v] if var > 0.0 else 0.0
            lo[k, v], hi[k, v] = observed[k, v] - half, observed[k, v] + half
            if v >= n_sys:
                p[k, v - n_sys] = _t_p(observed[k, v], se[k, v], nu)
    return TwoLevel(lo=lo, hi=hi, se=se, df=df, p=p)


def _components(members: list[int], systems: list[System], v_seed, v_inter, v_query: float,
                n: int) -> tuple[list[float], list[float]]:
    """The variance parts of one column and their degrees of freedom: per several-seed system
    ``max(V_seed, V_inter)`` (the seed mean varies at least by the interaction, which is estimated
    far more precisely: (n-1)(S-1) df, used when it is the larger), then ``max(V_query - sum V_inter, 0)``
    with n - 1 df (the positive-part estimates of the variance components)."""
    comps, dfs = [], []
    for i in members:
        s = systems[i]
        if s.n_seeds > 1:
            floor = v_inter[i] > v_seed[i]
            comps.append(v_inter[i] if floor else v_seed[i])
            dfs.append(max(n - 1, 1) * (s.n_seeds - 1) if floor else s.n_seeds - 1)
    comps.append(max(v_query - sum(v_inter[i] for i in members), 0.0))
    dfs.append(max(n - 1, 1))
    return comps, dfs


def _t_p(diff: float, se: float, df: float) -> float:
    """Two-sided p of ``diff / se`` against t(df); se = 0: p = 1 for no difference, else 0."""
    if se == 0.0 or se <= 1e-15 * abs(diff):
        return 1.0 if diff == 0.0 else 0.0
    t = diff / se
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return t_two_sided_p(t, df)
