"""InfoNCE over cosine similarity, against a float64 numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastir.train.losses import gather_with_local_grad, info_nce


def _reference(q: np.ndarray, p: np.ndarray, n: np.ndarray | None, tau: float) -> float:
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    c = p if n is None else np.concatenate([p, n])
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    logits = q @ c.T / tau
    # -log softmax of the diagonal, with the max subtracted for stability
    m = logits.max(axis=1, keepdims=True)
    logz = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(logz - logits[np.arange(len(q)), np.arange(len(q))]))


@pytest.mark.parametrize("with_negatives", [False, True])
@pytest.mark.parametrize("tau", [0.05, 1.0])
def test_info_nce_matches_numpy(with_negatives, tau):
    rng = np.random.default_rng(1)
    q, p, n = (rng.normal(size=(7, 5)) for _ in range(3))
    got = info_nce(torch.tensor(q, dtype=torch.float32), torch.tensor(p, dtype=torch.float32),
                   torch.tensor(n, dtype=torch.float32) if with_negatives else None, temperature=tau)
    want = _reference(q, p, n if with_negatives else None, tau)
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_info_nce_is_scale_invariant_and_fp32_for_half_inputs():
    rng = np.random.default_rng(2)
    q, p = (torch.tensor(rng.normal(size=(4, 8)), dtype=torch.float32) for _ in range(2))
    base = info_nce(q, p)
    assert info_nce(3.0 * q, 0.5 * p).item() == pytest.approx(base.item(), rel=1e-5)  # cosine, not dot
    half = info_nce(q.half(), p.half())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(base.item(), rel=1e-2)


def test_info_nce_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    q = torch.tensor(rng.normal(size=(3, 4)), dtype=torch.float32, requires_grad=True)
    p = torch.tensor(rng.normal(size=(3, 4)), dtype=torch.float32)
    info_nce(q, p, temperature=0.5).backward()
    eps = 1e-3
    qn, pn = q.detach().numpy().astype(np.float64), p.numpy().astype(np.float64)
    for i, j in [(0, 0), (1, 2), (2, 3)]:
        plus, minus = qn.copy(), qn.copy()
        plus[i, j] += eps
        minus[i, j] -= eps
        fd = (_reference(plus, pn, None, 0.5) - _reference(minus, pn, None, 0.5)) / (2 * eps)
        assert q.grad[i, j].item() == pytest.approx(fd, rel=1e-3, abs=1e-4)


def test_gather_without_process_group_is_identity():
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_local_grad(x) is x
