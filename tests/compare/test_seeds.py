"""Seed-aware statistics (fastir.compare.seeds): simulation with known seed and query variance (its
small-sample pieces, the t quantile and Welch-Satterthwaite, against scipy: test_stats.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.compare.cells import Cells, Statistic, observed_statistics
from fastir.compare.seeds import deviation_columns, interaction_variance, seed_spread, two_level
from fastir.compare.systems import group_systems


# ----------------------------------------------------------------------------- simulation

N_LANG, N = 3, 40  # queries per language; statistic = Mo. (mean of the three X->X cell means)


def _layout():
    n_q = N_LANG * N
    cells = Cells(ptr=np.arange(N_LANG + 1, dtype=np.int64) * N, query=np.arange(n_q, dtype=np.int32),
                  values=np.zeros((n_q, 1)), keys=[("map", "mono", str(x), str(x)) for x in range(N_LANG)])
    stats = [Statistic("summary", "mono", "map", None, list(range(N_LANG)), [1.0 / N_LANG] * N_LANG)]
    return cells, stats, np.arange(N_LANG + 1, dtype=np.int64) * N


def _simulate(rng, s_a, s_b, sd_seed, sd_inter, true_diff):
    """Per-query values of system A (s_a seeds) and B (s_b seeds; 1 = deterministic, no seed effect):
    x = mu + seed effect + query effect (shared by A and B: the pairing) + seed x query noise."""
    n_q = N_LANG * N
    u = rng.exponential(0.15, n_q) - 0.15  # skewed query effects, mean 0
    cols = []
    for s in range(s_a):
        cols.append(0.5 + true_diff + rng.normal(0, sd_seed) + u + rng.normal(0, sd_inter, n_q))
    for s in range(s_b):
        seed_effect = rng.normal(0, sd_seed) if s_b > 1 else 0.0
        cols.append(0.5 + seed_effect + u + rng.normal(0, sd_inter, n_q))
    return np.stack(cols, axis=1)


def _one_trial(rng, trial, s_a, s_b, sd_seed, sd_inter, true_diff, samples=200):
    from fastir.kernels.resampling import sign_flip_statistics, stratified_bootstrap_statistics

    cells, stats, strata_ptr = _layout()
    names = [f"a@{s}" for s in range(s_a)] + ([f"b@{s}" for s in range(s_b)] if s_b > 1 else ["b"])
    systems = group_systems(names)
    runs = _simulate(rng, s_a, s_b, sd_seed, sd_inter, true_diff)
    sys_vals = np.stack([runs[:, list(s.runs)].mean(axis=1) for s in systems], axis=1)
    joint = np.concatenate([sys_vals, sys_vals[:, [0]] - sys_vals[:, [1]]], axis=1)
    k_ptr, k_cell, k_coef = np.array([0, N_LANG]), np.arange(N_LANG), np.full(N_LANG, 1.0 / N_LANG)
    n_q = N_LANG * N
    observed = observed_statistics(cells, stats, joint)
    dev = deviation_columns(runs, systems)
    r = runs.shape[1]
    per_run = np.concatenate([runs, joint, dev], axis=1)  # the runs too, for the plain two-level bootstrap
    boot_all = stratified_bootstrap_statistics(strata_ptr, np.arange(n_q), cells.ptr, cells.query, per_run,
                                               k_ptr, k_cell, k_coef, n_q, samples, trial)
    spread = seed_spread(observed_statistics(cells, stats, runs), systems)
    res = two_level(observed, boot_all[:, :, r:r + 3], spread, systems, [(0, 1)], np.array([n_q]), 0.95,
                    interaction_variance(boot_all[:, :, r + 3:], systems))
    # the query-only test on the seed-averaged values (what a one-seed comparison would run)
    flips = sign_flip_statistics(cells.ptr, cells.query, joint[:, 2:], k_ptr, k_cell, k_coef, n_q, samples, trial)
    p_query_only = (1 + np.sum(np.abs(flips[:, 0, 0]) >= abs(observed[0, 2]) * (1 - 1e-9))) / (samples + 1)
    # the plain two-level percentile bootstrap: seeds drawn with replacement per system, queries shared
    draw = np.random.default_rng(10_000 + trial)
    plain = np.zeros(samples)
    for sign, system in ((1.0, systems[0]), (-1.0, systems[1])):
        picks = draw.integers(0, system.n_seeds, (samples, system.n_seeds))
        cols = np.asarray(system.runs)[picks]  # (samples, S) run columns
        plain += sign * np.take_along_axis(boot_all[:, 0, :], cols, axis=1).mean(axis=1)
    plain_lo, plain_hi = np.percentile(plain, [2.5, 97.5])
    return {
        "diff_covered": res.lo[0, 2] <= true_diff <= res.hi[0, 2],
        "value_covered": res.lo[0, 0] <= 0.5 + true_diff <= res.hi[0, 0],
        "rejected": res.p[0, 0] < 0.05,
        "query_only_rejected": p_query_only < 0.05,
        "plain_covered": plain_lo <= true_diff <= plain_hi,
    }


@pytest.fixture()
def one_thread():
    """Hundreds of tiny resamplings: thread start-up would dominate on a busy machine (results do not
    depend on the thread count)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("regime, s_a, s_b, sd_seed, sd_inter, true_diff", [
    ("seeds dominate, deterministic baseline", 3, 1, 0.03, 0.03, 0.0),
    ("seeds dominate, both seeded", 3, 3, 0.03, 0.03, 0.0),
    ("queries dominate", 3, 3, 0.0, 0.15, 0.0),
    ("both, a real difference", 5, 3, 0.01, 0.08, 0.02),
])
def test_two_level_coverage_and_type_one_error_by_simulation(one_thread, regime, s_a, s_b, sd_seed, sd_inter, true_diff):
    """95% two-level intervals cover the true difference and the true system value ~95% of the time,
    and the test rejects a true null ~5% of the time, whichever level of randomness dominates; where the
    seeds dominate, the query-only test (and the plain two-level percentile bootstrap) would not."""
    rng = np.random.default_rng(7 + s_a * 10 + s_b + int(sd_seed * 1000))
    trials = 300
    out = [_one_trial(rng, t, s_a, s_b, sd_seed, sd_inter, true_diff) for t in range(trials)]
    rate = {k: np.mean([o[k] for o in out]) for k in out[0]}
    print(regime, {k: round(float(v), 3) for k, v in rate.items()})
    assert 0.91 <= rate["diff_covered"] <= 0.99, rate
    assert 0.91 <= rate["value_covered"] <= 0.99, rate
    if true_diff == 0.0:
        assert 0.01 <= rate["rejected"] <= 0.09, rate
    if sd_seed >= 0.03:
        assert rate["query_only_rejected"] > 0.5, rate  # the false significance the two-level test avoids
        assert rate["plain_covered"] < 0.9, rate  # why the interval is not the plain percentile one
