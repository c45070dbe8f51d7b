"""fastir.kernels.certified against exact rational arithmetic: exact signs, dot bounds, counts."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.kernels.certified import certified_counts, dot64, exact_dot_sign


def exact_dot(q, c) -> Fraction:
    return sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(q, c)), Fraction(0))


def exact_counts(q, cand, lang, ptr, cols, n_langs):
    """cnt / gcnt from rational scores (ties count against the gold)."""
    cnt = np.zeros((len(cols), n_langs), np.int64)
    gcnt = np.zeros((len(cols), n_langs), np.int64)
    for b in range(len(ptr) - 1):
        s = [exact_dot(q[b], c) for c in cand]
        golds = cols[ptr[b]:ptr[b + 1]]
        for j in range(ptr[b], ptr[b + 1]):
            g = s[cols[j]]
            for c in range(len(cand)):
                if s[c] >= g:
                    cnt[j, lang[c]] += 1
            for h in golds:
                if s[h] >= g:
                    gcnt[j, lang[h]] += 1
    return cnt, gcnt


def near_tie_case(rng, n_rows=6, n_cand=60, d=16, n_langs=3):
    """fp32 rows; a third of the candidates are a gold with one coordinate moved by 1-2 ulps
    (exact score within a few float32 ulps of the gold's, sometimes equal), some exact copies."""
    q = rng.standard_normal((n_rows, d)).astype(np.float32)
    cand = rng.standard_normal((n_cand, d)).astype(np.float32)
    lang = np.sort(rng.integers(0, n_langs, n_cand)).astype(np.int32)
    ptr, cols = [0], []
    for _ in range(n_rows):
        cols += list(rng.choice(n_cand // 3, 2, replace=False))
        ptr.append(len(cols))
    cols = np.array(cols, np.int64)
    for c in range(n_cand // 3, n_cand):
        src = cand[cols[rng.integers(len(cols))]].copy()
        k = rng.integers(d)
        steps = int(rng.integers(-2, 3))
        for _ in range(abs(steps)):
            src[k] = np.nextafter(src[k], np.float32(np.inf if steps > 0 else -np.inf))
        cand[c] = src
    return q, cand, lang, np.array(ptr, np.int64), cols, n_langs


def test_exact_sign_random_ties_and_near_ties():
    rng = np.random.default_rng(0)
    for trial in range(200):
        d = int(rng.integers(1, 40))
        scale = 2.0 ** rng.integers(-60, 60, d)
        q = (rng.standard_normal(d) * scale).astype(np.float32)
        g = (rng.standard_normal(d) * scale).astype(np.float32)
        c = g.copy()
        if trial % 3:
            k = rng.integers(d)
            c[k] = np.nextafter(c[k], np.float32(np.inf))
        if trial % 5 == 0:
            c = (rng.standard_normal(d) * scale).astype(np.float32)
        want = exact_dot(q, c) - exact_dot(q, g)
        assert exact_dot_sign(q, c, g) == (want > 0) - (want < 0)


def test_exact_sign_cancelling_products_is_zero():
    q = np.array([1.0, 1.0, 2.0 ** -60], np.float32)
    c = np.array([2.0 ** 60, -(2.0 ** 60), 1.0], np.float32)
    g = np.array([0.0, 0.0, 1.0], np.float32)
    assert exact_dot_sign(q, c, g) == 0


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4096), st.integers(-100, 100), st.integers(0, 2**32 - 1), st.booleans())
def test_dot64_bound_holds(d, log_scale, seed, half):
    rng = np.random.default_rng(seed)
    dtype = np.float16 if half else np.float32
    scale = 1.0 if half else 2.0 ** log_scale
    q = (rng.standard_normal(d) * scale).astype(dtype).astype(np.float32)
    spread = rng.integers(-14, 4, d) if half else rng.integers(-20, 21, d)  # float16 tops out at 65504
    c = (rng.standard_normal(d) * scale * 2.0 ** spread).astype(dtype).astype(np.float32)
    s, e = dot64(q, c)
    assert abs(Fraction(s) - exact_dot(q, c)) <= Fraction(e)


def perturbed(exact, bound_abs, w, rng):
    """Approximations anywhere inside the certified interval, many at its very edges."""
    u = rng.choice([-1.0, 1.0, 0.0, 0.5, -0.999], exact.shape)
    return (exact + u * (bound_abs[:, None] + w * np.abs(exact))).astype(np.float32)


def run_case(q, cand, lang, ptr, cols, n_langs, rng, b0=1e-3, w=2.0 ** -9):
    exact = np.array([[float(exact_dot(a, c)) for c in cand] for a in q])
    bound = np.full(len(q), b0)
    # The kernel's contract: |approx - exact| <= bound + w |approx|; shrink the perturbation to keep it.
    approx = perturbed(exact, bound * 0.99, w * 0.49, rng)
    lang_ptr = np.searchsorted(lang, np.arange(n_langs + 1)).astype(np.int64)
    cnt, gcnt, und, rec = certified_counts(approx, bound, w, q, cand, lang_ptr, ptr, cols, lang[cols])
    want_cnt, want_gcnt = exact_counts(q, cand, lang, ptr, cols, n_langs)
    np.testing.assert_array_equal(cnt, want_cnt)
    np.testing.assert_array_equal(gcnt, want_gcnt)
    return und, rec


def test_counts_exact_on_near_ties():
    rng = np.random.default_rng(1)
    for _ in range(3):
        und, rec = run_case(*near_tie_case(rng), rng)
        assert und.sum() > 0 and rec.sum() > 0  # the near-ties are undecided by the bound


def test_counts_exact_on_integer_ties():
    rng = np.random.default_rng(2)
    q = rng.integers(-2, 3, (8, 5)).astype(np.float32)
    cand = rng.integers(-2, 3, (90, 5)).astype(np.float32)
    lang = np.sort(rng.integers(0, 3, 90)).astype(np.int32)
    ptr = np.arange(0, 8 * 3 + 1, 3, dtype=np.int64)
    cols = np.concatenate([rng.choice(90, 3, replace=False) for _ in range(8)]).astype(np.int64)
    run_case(q, cand, lang, ptr, cols, 3, rng, b0=0.4, w=0.0)


def test_infinite_bound_recomputes_everything():
    rng = np.random.default_rng(3)
    q, cand, lang, ptr, cols, n_langs = near_tie_case(rng)
    lang_ptr = np.searchsorted(lang, np.arange(n_langs + 1)).astype(np.int64)
    approx = np.zeros((len(q), len(cand)), np.float32)
    cnt, gcnt, und, rec = certified_counts(approx, np.full(len(q), np.inf), 0.0, q, cand, lang_ptr, ptr, cols,
                                           lang[cols])
    want_cnt, want_gcnt = exact_counts(q, cand, lang, ptr, cols, n_langs)
    np.testing.assert_array_equal(cnt, want_cnt)
    np.testing.assert_array_equal(gcnt, want_gcnt)
    assert (rec == len(cand)).all()  # two golds per row: each candidate is recomputed for one of them


def as_bf16_bits(x):
    """bfloat16 bit patterns of float64 values: round to float32, then to nearest-even bfloat16."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_counts_exact_from_bf16_approximations():
    rng = np.random.default_rng(5)
    q, cand, lang, ptr, cols, n_langs = near_tie_case(rng, n_rows=8, n_cand=90)
    exact = np.array([[float(exact_dot(a, c)) for c in cand] for a in q])
    bound, w = np.full(len(q), 0.05), 2.0 ** -7
    bits = as_bf16_bits(perturbed(exact, bound * 0.9, 2.0 ** -9, rng))
    approx = bf16_value(bits).astype(np.float64)
    assert (np.abs(approx - exact) <= bound[:, None] + w * np.abs(approx)).all()  # the kernel's contract
    lang_ptr = np.searchsorted(lang, np.arange(n_langs + 1)).astype(np.int64)
    cnt, gcnt, und, rec = certified_counts(bits, bound, w, q, cand, lang_ptr, ptr, cols, lang[cols])
    want_cnt, want_gcnt = exact_counts(q, cand, lang, ptr, cols, n_langs)
    np.testing.assert_array_equal(cnt, want_cnt)
    np.testing.assert_array_equal(gcnt, want_gcnt)
    assert und.sum() > 0


def test_overflowing_lists_are_redone(monkeypatch):
    """Rows whose undecided candidates overflow the short list are rescanned with a full one."""
    import fastir.kernels.certified as kc

    monkeypatch.setattr(kc, "LIST_MIN", 3)
    monkeypatch.setattr(kc, "LIST_SHARE", 10 ** 9)
    monkeypatch.setattr(kc, "REDO_BYTES", 8 * 60 * 2)  # two rows per redo batch
    rng = np.random.default_rng(6)
    und, rec = run_case(*near_tie_case(rng), rng, b0=0.5)
    assert (rec > 3).any() and und.sum() > 0
