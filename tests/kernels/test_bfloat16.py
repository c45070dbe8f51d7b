"""fastir.kernels.bfloat16: torch's bfloat16 rounding, and the norms of the rows, their residuals and copies."""

from __future__ import annotations

import numpy as np
import torch

from fastir.kernels.bfloat16 import round_bf16


def test_round_bf16_matches_torch_and_norms():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((40, 300)) * 2.0 ** rng.integers(-126, 120, (40, 1))).astype(np.float32)
    x[0, :5] = [0.0, -0.0, 1e-45, -3e-39, 3.3895e38]  # zeros, subnormals, near the top of the range
    bits, norm, resid, rounded = round_bf16(x)
    np.testing.assert_array_equal(bits, torch.from_numpy(x).bfloat16().view(torch.uint16).numpy())
    back = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(norm, np.linalg.norm(x64, axis=1), rtol=1e-13)
    np.testing.assert_allclose(resid, np.linalg.norm(x64 - back, axis=1), rtol=1e-13)
    np.testing.assert_allclose(rounded, np.linalg.norm(back, axis=1), rtol=1e-13)
    out = np.empty_like(bits)
    assert round_bf16(x, out=out)[0] is out and (out == bits).all()
