"""``--precision auto``'s screen: whether certified bf16 can decide this run, from a small sample.

The probe block of :class:`fastir.eval.certified.AutoChooser` measures what bf16 leaves undecided,
but it costs a candidate tile rounded to bfloat16 and two products of up to 256 query rows. On data
where scores crowd around the golds (the graded bench: 19 % of the probe's scores undecided) that
cost is wasted, so before it ``auto`` estimates the share on a sample of the whole run and scores
float32 products at once where the estimate is above what bf16 can afford (:data:`SCREEN_MAX`);
elsewhere the probe decides as before. The sample also sees what the probe cannot: the probe is
the first query rows against the first tile, often one language against itself, where scores
crowd most (graded bench: the probe 19 %, the first 2,000-row block 9.6 %, later blocks 0.7-1 %,
the sample 3.3 %).

The estimate: :data:`SAMPLE_QUERIES` query rows (those with golds, evenly spaced) against
:data:`SAMPLE_CANDIDATES` candidate rows (evenly spaced), float32 scores. A score is undecided
where it lies within the bf16 engine's bound B(q) = ‖q‖ max‖r_c‖ + (‖r_q‖ + γ_d ‖q̃‖) max‖c̃‖
(:func:`fastir.eval.precision.bf16_inputs_bound`, oneMKL's float32 result: w = 0; the norms from
:func:`fastir.kernels.bfloat16.round_bf16`, as the engine's) of one of the query's gold scores
— the band the certified scan must recompute. The maxima are the sample's, at most the tile's,
so the estimate leans low. It costs ~0.06 s (64 x 4,096 scores and the golds' scores).
"""

from __future__ import annotations

import numpy as np

from fastir.eval.certified import AUTO_MAX_RECOMPUTED
from fastir.eval.precision import bf16_inputs_bound
from fastir.eval.stream import gather_rows
from fastir.kernels.bfloat16 import round_bf16

SAMPLE_QUERIES = 64
SAMPLE_CANDIDATES = 4096
SCREEN_MAX = AUTO_MAX_RECOMPUTED  # the probe's own limit


def undecided_share(run, gold_ptr: np.ndarray, gold_cand: np.ndarray) -> float:
    """Estimated share of (query, candidate) scores that certified bf16 leaves undecided (module docstring)."""
    with_golds = np.flatnonzero(np.diff(gold_ptr) > 0)
    if len(with_golds) == 0:
        return 0.0
    q_rows = with_golds[np.unique(np.linspace(0, len(with_golds) - 1, SAMPLE_QUERIES).astype(np.int64))]
    c_rows = np.unique(np.linspace(0, len(run.candidates) - 1, SAMPLE_CANDIDATES).astype(np.int64))
    q, c = gather_rows(run.queries.chunks, q_rows), gather_rows(run.candidates.chunks, c_rows)
    scores = q @ c.T
    _, q_norm, q_resid, q_round = round_bf16(q)
    _, _, c_resid, c_round = round_bf16(c)
    bound = bf16_inputs_bound(q_norm, q_resid, q_round, c_resid.max(), c_round.max(), q.shape[1])
    undecided = 0
    for i, row in enumerate(q_rows):
        golds = np.sort(q[i] @ gather_rows(run.candidates.chunks, gold_cand[gold_ptr[row]:gold_ptr[row + 1]]).T)
        at = np.searchsorted(golds, scores[i])
        below = np.abs(scores[i] - golds[np.maximum(at - 1, 0)])
        above = np.abs(golds[np.minimum(at, len(golds) - 1)] - scores[i])
        undecided += int(np.count_nonzero(np.minimum(below, above) < bound[i]))
    return undecided / scores.size


def screen(prec, run, plan) -> None:
    """Send an ``auto`` command that would try bf16 to the float32 pass where :func:`undecided_share`
    is above :data:`SCREEN_MAX` (``prec.reason`` says why); leave every other choice alone."""
    if not (prec.certified and prec.requested == "auto"):
        return
    share = undecided_share(run, plan.gold_ptr, plan.gold_cand)
    if share > SCREEN_MAX:
        prec.to_float32(f"fp32: a sample of {SAMPLE_QUERIES} queries x {SAMPLE_CANDIDATES} candidates put "
                        f"{share:.1%} of its scores within bf16's bound of a gold (> {SCREEN_MAX:.0%}): "
                        "bf16 would recompute too many")

