"""fastir.eval.screen: auto's sample estimate of what certified bf16 leaves undecided, and its decision."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.eval import certified, screen
from fastir.eval.score import score_run
from fastir.kernels.bfloat16 import round_bf16
from fastir.runs.rundir import read_run


def _run(tmp_path, make_run, crowded: bool, seed: int = 0):
    """Unit vectors, 3 golds per query; ``crowded``: the golds are random candidates (scores near
    everyone's), else each query is a noisy copy of its golds' direction (golds far above the rest)."""
    rng = np.random.default_rng(seed)
    n_q, n_c, d = 40, 600, 64
    cand = rng.standard_normal((n_c, d)).astype(np.float32)
    golds = [rng.choice(n_c, 3, replace=False) for _ in range(n_q)]
    if crowded:
        queries = rng.standard_normal((n_q, d)).astype(np.float32)
    else:
        queries = np.stack([cand[g].sum(0) + 0.1 * rng.standard_normal(d) for g in golds]).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return read_run(make_run(tmp_path, q_emb=unit(queries), q_langs=["aa"] * n_q, c_emb=unit(cand),
                             c_langs=["aa", "bb"] * (n_c // 2), qrels=[(q, int(c)) for q in range(n_q) for c in golds[q]]))


def _brute_force(run, plan) -> float:
    """Every query with golds against every candidate, bound from the Numba rounding kernel's norms."""
    q = np.asarray(run.queries.embeddings, np.float32)
    c = np.asarray(run.candidates.embeddings, np.float32)
    _, qn, qr, qt = round_bf16(q)
    _, _, cr, ct = round_bf16(c)
    d = q.shape[1]
    gamma = d * 2.0 ** -24 / (1 - d * 2.0 ** -24)
    total = undecided = 0
    for i in range(len(q)):
        gold = plan.gold_cand[plan.gold_ptr[i]:plan.gold_ptr[i + 1]]
        if len(gold) == 0:
            continue
        bound = qn[i] * cr.max() + (qr[i] + gamma * qt[i]) * ct.max()
        s = q[i] @ c.T
        near = np.abs(s[:, None] - (q[i] @ c[gold].T)[None, :]).min(axis=1) < bound
        undecided += int(near.sum())
        total += len(c)
    return undecided / total


@pytest.mark.parametrize("crowded", [True, False])
def test_the_estimate_of_a_whole_small_run_equals_a_brute_force(tmp_path, make_run, crowded):
    from fastir.eval.score import _prepare

    run = _run(tmp_path, make_run, crowded)
    plan = _prepare(run, "all", (1,), None, 256, None, "auto", "cpu", False, 1)[5]
    share = screen.undecided_share(run, plan.gold_ptr, plan.gold_cand)  # the sample is the whole run
    assert share == pytest.approx(_brute_force(run, plan), abs=1e-12)
    assert (share > screen.SCREEN_MAX) == crowded


def test_auto_scores_crowded_runs_in_float32_without_a_probe(tmp_path, make_run, monkeypatch):
    monkeypatch.setattr(certified, "AUTO_MIN_WORK", 0)
    monkeypatch.setattr(certified, "_time_probe", lambda *a: pytest.fail("the probe ran"))
    run = _run(tmp_path, make_run, crowded=True)
    crowded = score_run(run)
    assert crowded.precision["ran"] == "fp32"
    assert crowded.precision["reason"].startswith("fp32: a sample of 64 queries x 4096 candidates put ")
    exact = score_run(run, precision="exact")
    assert np.allclose(crowded.metrics.values, exact.metrics.values, equal_nan=True)  # float32 ranks: no near-ties here


def test_the_screen_leaves_other_choices_alone(tmp_path, make_run, monkeypatch):
    run = _run(tmp_path, make_run, crowded=True)
    monkeypatch.setattr(screen, "undecided_share", lambda *a: pytest.fail("estimated"))
    for requested, certified_ in (("fp32", False), ("exact", True), ("auto", False)):
        prec = certified.PrecisionChoice(requested, certified_, fixed="exact" if certified_ else None)
        screen.screen(prec, run, None)
        assert prec.certified == certified_
