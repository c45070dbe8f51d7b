"""Small exact statistics for ``fastir compare``: Holm's step-down correction and the paired t-test.

No scipy at run time (it is a test-only dependency): Student's t survival function comes from the
regularized incomplete beta function, evaluated by its continued fraction (Lentz's method).
"""

from __future__ import annotations

import math

import numpy as np


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values: sort ascending ``p_(1) <= ... <= p_(m)``; the adjusted value of the
    i-th is ``max_{j <= i} min(1, (m - j + 1) p_(j))``. Rejecting where adjusted < alpha controls the
    family-wise error rate at alpha. NaN p-values are left out of the family and stay NaN."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2)."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def paired_t_test(x: np.ndarray) -> tuple[float, float]:
    """Paired t-test on per-query differences ``x`` (as ``scipy.stats.ttest_rel(a, b)`` with
    ``x = a - b``): ``t = mean(x) / (sd(x) / sqrt(n))``, sd with ddof=1, df = n - 1.

    Degenerate cases where scipy returns NaN: all differences equal to zero -> (0, 1.0) (no evidence
    of a difference); constant non-zero difference -> (+-inf, 0.0); n < 2 -> (NaN, NaN).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 2:
        return math.nan, math.nan
    mean = float(x.mean())
    sd = float(x.std(ddof=1))
    if sd == 0.0 or sd <= 1e-15 * abs(mean):
        if mean == 0.0:
            return 0.0, 1.0
        return math.copysign(math.inf, mean), 0.0
    t = mean / (sd / math.sqrt(n))
    return t, t_two_sided_p(t, n - 1)


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile (0.5 < q < 1) of Student's t with ``df`` degrees of freedom (``inf``: the
    normal): Newton's method on the two-sided tail ``P(|T| >= t) = 2 (1 - q)`` from t = 0. The tail is
    decreasing and convex in t >= 0, so the iterates increase monotonically to the root."""
    if not 0.5 < q < 1.0:
        raise ValueError("q must lie in (0.5, 1)")
    if math.isnan(df) or df <= 0:
        return math.nan
    target = 2.0 * (1.0 - q)
    if math.isinf(df):
        tail = lambda t: math.erfc(t / math.sqrt(2.0))  # noqa: E731
        log_c = -0.5 * math.log(2.0 * math.pi)
        log_pdf = lambda t: log_c - 0.5 * t * t  # noqa: E731
    else:
        tail = lambda t: t_two_sided_p(t, df)  # noqa: E731
        log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        log_pdf = lambda t: log_c - (df + 1) / 2 * math.log1p(t * t / df)  # noqa: E731
    t = 0.0
    for _ in range(200):
        step = (tail(t) - target) / (2.0 * math.exp(log_pdf(t)))
        t += step
        if step <= 1e-14 * max(t, 1.0):
            break
    return t


def welch_df(components, dfs) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates ``v_i`` with ``df_i``
    each: ``(sum v_i)^2 / sum(v_i^2 / df_i)`` (components with ``v_i = 0`` drop out; a subtracted
    estimate enters with a negative sign, squared alike)."""
    num = sum(components) ** 2
    den = sum(v * v / d for v, d in zip(components, dfs) if v != 0.0)
    return num / den if den > 0.0 else math.inf
