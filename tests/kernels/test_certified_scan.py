"""fastir.kernels.certified_scan: bfloat16 order keys and threshold keys against the float values."""

from __future__ import annotations

import numpy as np

from fastir.kernels.certified_scan import _bf16_keys, bf16_ceiling_keys


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def test_bf16_keys_order_like_the_values():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    ok = ~np.isnan(bf16_value(bits))
    bits = bits[ok]
    values = bf16_value(bits).astype(np.float64)
    keys = bits.view(np.int16).copy()
    _bf16_keys(keys)
    order = np.argsort(values, kind="stable")
    assert (np.diff(keys[order].astype(np.int64)) >= 0).all()  # monotone
    assert ((np.diff(keys[order].astype(np.int64)) == 0) == (np.diff(values[order]) == 0)).all()  # ties kept
    rng = np.random.default_rng(4)
    t = np.concatenate([rng.standard_normal(2000) * 2.0 ** rng.integers(-130, 120, 2000), [0.0, -0.0, np.inf,
                                                                                            -np.inf]])
    t = t.astype(np.float32)
    t_keys = bf16_ceiling_keys(t)
    for v, k in zip((values[::37]), keys[::37]):  # A >= t  <=>  key(A) >= key(ceil(t)), for bfloat16 A
        np.testing.assert_array_equal(v >= t.astype(np.float64), k >= t_keys)
