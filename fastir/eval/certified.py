"""Certified scoring, streamed: approximate products, exact ranks, per-gold counts over candidate tiles.

``--precision exact|bf16|int8|auto`` score on the tiles of the float32 streaming pass
(:mod:`fastir.eval.stream`): candidates are read one tile of columns at a time, so memory stays
within ``--block-mb`` whatever the pool. Per (query block, tile) the product engine of
:mod:`fastir.eval.precision` writes approximate scores and their bound, and the certified kernel
(:mod:`fastir.kernels.certified`) counts, per gold, the tile's candidates whose *exact* score is at or
above the gold's (golds outside the tile are passed as vectors). Exact counts add up over tiles,
shards and torchrun ranks, and do not depend on which engine produced a block: that is what lets
``auto`` choose the engine block by block (:class:`AutoChooser`) without changing a number.
"""

from __future__ import annotations

import numpy as np

from fastir.eval.stream import BlockPlan, block_plan, gather_rows, group_columns, group_golds

AUTO = "auto"
# auto: the first block of every group is a probe of at most this many query rows, so a
# wrong first guess costs little.
PROBE_ROWS = 256
# auto keeps bf16 while a block recomputes at most this share of its (query, candidate) scores.
# Measured on a 2-core Xeon (AMX), per score: the float32 pass ~6 ns (d = 512-768), the bf16
# product + certification ~4.3 ns, each recomputation ~40-60 ns: bf16 stops paying near 3.5 %.
# Real and synthetic XQuAD-R runs recompute ~1.8 % (docs/score.md, "Precision").
AUTO_MAX_RECOMPUTED = 0.03
# auto tries bf16 only from this many multiply-adds (queries x candidates x d) on: below it the fixed
# costs of the certified path (opening oneMKL's library, loading its kernels, rounding every
# candidate) outweigh the cheaper product. Measured whole (2-core Xeon, AMX): a mUSE XQuAD-R run
# (4.5e10) took 1.4-1.7 s with bf16 against 0.9-1.1 s with fp32; a pool of 396 x 390,420 x 768
# (1.2e11) the same with both; the 100x pool (1.3e12) ~25 % less with bf16 (docs/score.md).
AUTO_MIN_WORK = 5e11
# auto keeps bf16 only where its product (query rounding included) takes at most this share of the
# float32 product's time on the probe block, timed here: the premise of the bf16 path checked on
# this very CPU (measured 0.35-0.45 on a Xeon with AMX; oneMKL's bf16 path on other CPUs unmeasured).
AUTO_MAX_PRODUCT_SHARE = 0.6


class Float32Instead(Exception):
    """auto's probe block found bf16 undecisive: the command scores float32 products instead."""


class AutoChooser:
    """The product engine of each block under ``--precision auto``: ``fast`` (bf16). The first block (a
    probe) recomputing more than :data:`AUTO_MAX_RECOMPUTED` of its scores sends the whole command to
    the float32 pass (:class:`Float32Instead`; where ``may_leave``, else to ``exact``); a later block
    doing so switches to ``exact`` (float32 BLAS, certified) for the rest, so counts stay exact."""

    def __init__(self, fast: str, why: str, may_leave: bool = True):
        self.current = fast
        self.fast = fast
        self.reason = why
        self.may_leave = may_leave
        self.blocks = {"exact": 0, "bf16": 0, "int8": 0}
        self.timing = None  # the probe's product times, as summary.json's reason gives them

    def probing(self, name: str) -> bool:
        """The next block is the probe (the first) and scores with the fast engine."""
        return name == self.fast and not any(self.blocks.values())

    def timed(self, fast_s: float, float32_s: float) -> None:
        """The probe's product with the fast engine took ``fast_s``, the float32 one ``float32_s``."""
        share = fast_s / max(float32_s, 1e-9)
        self.timing = f"bf16 product {share:.2f}x the float32 one on the probe block"
        if share > AUTO_MAX_PRODUCT_SHARE and self.may_leave:
            self.reason = f"fp32: {self.timing} (> {AUTO_MAX_PRODUCT_SHARE}): not faster enough on this CPU"
            raise Float32Instead(self.reason)

    def observe(self, name: str, recomputed: int, scores: int) -> None:
        first = not any(self.blocks.values())
        self.blocks[name] += 1
        if name != self.fast or self.current != name or not scores or recomputed / scores <= AUTO_MAX_RECOMPUTED:
            return
        share = f"bf16 left {recomputed / scores:.2%} of a block's scores undecided (> {AUTO_MAX_RECOMPUTED:.0%})"
        if first and self.may_leave:
            self.reason = f"fp32: {share} in the probe block"
            raise Float32Instead(self.reason)
        self.current = "exact"
        self.reason = f"{self.reason}; {share}: certified float32 products from then on"


class Fixed:
    """One engine for every block (``--precision exact|bf16|int8``)."""

    def __init__(self, name: str):
        self.current = name
        self.blocks = {name: 0}

    def observe(self, name: str, recomputed: int, scores: int) -> None:
        self.blocks[name] += 1


class CertifiedEngine:
    """The certified counterpart of :class:`fastir.eval.stream.NumpyEngine`: counts of exact scores."""

    certified = True
    name = "cpu"
    compute = None

    def __init__(self, chooser):
        self.chooser = chooser


def count_group(run, plan, mask, rows, cand_range, block_mb, engine: CertifiedEngine, counts) -> None:
    """Add the exact counts of query ``rows`` against the group's candidates in ``cand_range`` into
    ``counts.cnt``, and the undecided pairs / recomputed candidates into ``counts.undecided`` /
    ``counts.recomputed``."""
    cols = group_columns(plan, mask, cand_range)
    if not len(cols.rows):
        return
    g_ptr, g_id = group_golds(plan, mask, rows)
    n_langs = len(plan.cand_langs)
    # bfloat16 copies of a tile and a query block, and the kernel's lists (<= 1 byte a score) beside the float32 ones
    bp = block_plan(len(rows), len(cols.rows), run.dim, block_mb * 0.6)
    starts = _row_starts(len(rows), bp, engine.chooser)
    g_pos = plan.position[plan.gold_cand[g_id]]
    golds = GoldVectors(run, plan.gold_cand[g_id], bp, block_mb)
    queries = QueryBlocks(run, rows, bp, block_mb)
    t_buf = np.empty((bp.cols, run.dim), np.float32)
    for t0 in range(0, len(cols.rows), bp.cols):
        t1 = min(t0 + bp.cols, len(cols.rows))
        tile = gather_rows(run.candidates.chunks, cols.rows[t0:t1], t_buf[:t1 - t0])
        lang_ptr = np.searchsorted(cols.lang[t0:t1], np.arange(n_langs + 1)).astype(np.int64)
        # a gold's column in this tile, or -1 - its row among the block's outside golds
        in_tile = np.searchsorted(cols.key[t0:t1], g_pos)
        inside = in_tile < t1 - t0
        inside[inside] = cols.key[t0:t1][in_tile[inside]] == g_pos[inside]
        products, bufs = {}, {}
        for s, e in zip(starts[:-1], starts[1:]):
            name = engine.chooser.current
            if name not in products:
                from fastir.eval.precision import product

                products[name] = product(name, tile)
            q, prepared = queries.block(s, e, products[name])
            a_buf = _buffer(bufs, products[name].out_dtype, bp, e - s, t1 - t0)
            _count_block(plan, products[name], q, prepared, a_buf, rows[s:e], g_ptr[s:e + 1], g_id, in_tile, inside,
                         golds, lang_ptr, engine.chooser, name, counts)
        starts = _row_starts(len(rows), bp, None)  # the probe was the first tile's first block


class QueryBlocks:
    """The query rows of each block as float32, and what each engine derives from them (the bfloat16
    rounding): kept across tiles where every row fits in :attr:`SHARE` of ``block_mb``, else redone."""

    SHARE = 0.25

    def __init__(self, run, rows: np.ndarray, bp: BlockPlan, block_mb: float):
        self.run, self.rows = run, rows
        self.keep = bp.n_tiles > 1 and len(rows) * run.dim * 6 <= block_mb * (1 << 20) * self.SHARE
        self.buf = np.empty((len(rows) if self.keep else bp.rows, run.dim), np.float32)
        self.kept: dict = {}

    def block(self, s: int, e: int, engine):
        """(float32 rows s:e, ``engine.prepare`` of them)."""
        key = (s, e, type(engine).prepare)
        if key in self.kept:
            return self.kept[key]
        q = gather_rows(self.run.queries.chunks, self.rows[s:e], self.buf[s:e] if self.keep else self.buf[:e - s])
        out = q, engine.prepare(q)
        if self.keep:
            self.kept[key] = out
        return out


class GoldVectors:
    """The stored vectors of a group's golds that a tile may lack, as float32 rows: gathered once per
    group (each distinct candidate once) where they fit in :attr:`SHARE` of ``block_mb``, else per block."""

    SHARE = 0.25

    def __init__(self, run, gold_rows: np.ndarray, bp: BlockPlan, block_mb: float):
        self.run, self.gold_rows = run, gold_rows
        self.whole = bp.n_tiles > 1 and len(np.unique(gold_rows)) * run.dim * 4 <= block_mb * (1 << 20) * self.SHARE
        if self.whole:
            uniq, self.index = np.unique(gold_rows, return_inverse=True)
            self.vectors = self._gather(uniq)

    def _gather(self, rows):
        return gather_rows(self.run.candidates.chunks, rows)

    def outside(self, lo: int, hi: int, out: np.ndarray):
        """(vectors, row of each of the golds ``lo:hi`` selected by ``out`` in them)."""
        if self.whole:
            return self.vectors, self.index[lo:hi][out]
        uniq, index = np.unique(self.gold_rows[lo:hi][out], return_inverse=True)
        return self._gather(uniq), index


def _buffer(bufs: dict, dtype, bp: BlockPlan, n: int, m: int) -> np.ndarray:
    """A reused C-contiguous (n, m) block of ``dtype`` (one allocation per dtype and group)."""
    if dtype not in bufs:
        bufs[dtype] = np.empty(bp.rows * bp.cols, dtype)
    return bufs[dtype][:n * m].reshape(n, m)


def _row_starts(n_rows: int, bp: BlockPlan, chooser) -> list[int]:  # chooser None: no probe
    """Query block boundaries: blocks of ``bp.rows``, the first one a probe under ``auto``."""
    first = min(bp.rows, PROBE_ROWS) if isinstance(chooser, AutoChooser) else bp.rows
    return [0, *range(min(first, n_rows), n_rows, bp.rows), n_rows] if n_rows > first else [0, n_rows]


def _count_block(plan, engine, q, prepared, a_buf, b_rows, ptr, g_id, in_tile, inside, golds, lang_ptr, chooser, name,
                 counts) -> None:
    from fastir.kernels.certified import certified_counts

    lo, hi = ptr[0], ptr[-1]
    ids = g_id[lo:hi]
    ins = inside[lo:hi]
    gold_col = in_tile[lo:hi].astype(np.int64)
    extra, where = golds.outside(lo, hi, ~ins)
    gold_col[~ins] = -1 - where
    if isinstance(chooser, AutoChooser) and chooser.probing(name):
        bound = _time_probe(engine, q, a_buf, chooser)
    else:
        bound = engine.block(q, a_buf, prepared)
    gold_lang = plan.cand_lang_id[plan.gold_cand[ids]]
    cnt, _, und, rec = certified_counts(a_buf, bound, engine.w, q, engine.cand, lang_ptr, ptr - lo, gold_col,
                                        gold_lang, engine.q_norm, engine.c_norm, extra=extra, gold_counts=False)
    counts.cnt[ids] += cnt
    counts.undecided[ids] += und
    counts.recomputed[b_rows] += rec
    chooser.observe(name, int(rec.sum()), a_buf.size)


def _time_probe(engine, q, a_buf, chooser) -> np.ndarray:
    """Time the probe's product with ``engine`` (a warm second call, query rounding included) against
    numpy's float32 product of the same block into the same buffer (both write float32); the timed
    call comes last, so ``a_buf`` holds its approximations: returns their bound."""
    import time

    engine.block(q, a_buf)  # warm-up: thread pools, AMX state, the buffer's pages
    t0 = time.perf_counter()
    np.matmul(q, engine.cand.T, out=a_buf if a_buf.dtype == np.float32 else None)
    t1 = time.perf_counter()
    bound = engine.block(q, a_buf)
    chooser.timed(time.perf_counter() - t1, t1 - t0)
    return bound


def per_set_undecided(plan, counts) -> np.ndarray:
    """(n_queries, n_langs + 1) undecided candidate–gold pairs per query and candidate set, from the
    per-gold counters: set L counts the pairs of golds in L with candidates in L; the pooled set all."""
    n_queries, n_langs = len(plan.query_lang_id), len(plan.cand_langs)
    owner = np.repeat(np.arange(n_queries), np.diff(plan.gold_ptr))
    lang = plan.cand_lang_id[plan.gold_cand]
    out = np.zeros((n_queries, n_langs + 1), np.int64)
    np.add.at(out, (owner, lang), counts.undecided[np.arange(len(lang)), lang])
    out[:, n_langs] = np.bincount(owner, weights=counts.undecided.sum(axis=1), minlength=n_queries).astype(np.int64)
    return out


def cell_counters(result, undecided: np.ndarray, ran: str | None = None) -> dict:
    """Per cell: ``undecided`` pairs (into ``result.cell_stats``); returns the run totals, and the
    ``device`` the product of precision ``ran`` ran on.

    A cell's candidate–gold pairs are sum over its queries of |G ∩ S| · |S|; ``undecided`` counts
    those the bound left open (each decided by an exact recomputation).
    """
    n_langs = len(result.cand_langs)
    cand_lang = result.run.candidates.lang_codes()[1]
    size = np.append(np.bincount(cand_lang, minlength=n_langs), len(cand_lang)).astype(np.int64)
    total_und = total_pairs = 0
    for cell in result.cells:
        s, rows = result.cell_rows(cell)
        und = int(undecided[rows, s].sum())
        result.cell_stats[cell]["undecided"] = und
        total_und += und
        total_pairs += int(result.metrics.nrel[rows, s].astype(np.int64).sum() * size[s])
    from fastir.eval.precision import device_for

    device = {} if ran is None else {"device": device_for(ran)}
    return {**device, "undecided_pairs": total_und, "candidate_gold_pairs": total_pairs,
            "undecided_fraction": total_und / total_pairs if total_pairs else 0.0}


class PrecisionChoice:
    """What ``--precision`` resolved to for one command: float32 scores, or certified counts with a
    fixed engine (``exact|bf16|int8``) or one chosen block by block (``auto``); and its record."""

    def __init__(self, requested: str, certified: bool, fixed: str | None = None, fast: str | None = None,
                 note: str | None = None, reason: str | None = None):
        self.requested, self.certified, self.fixed, self.fast = requested, certified, fixed, fast
        self.note, self.reason = note, reason
        self.chooser = None

    @property
    def kind(self) -> str:
        """What shards must agree on: ``exact`` counts (any certified engine) or ``fp32`` counts."""
        return "exact" if self.certified else "fp32"

    def engine(self, may_leave: bool = True) -> CertifiedEngine:
        """The engine of a certified command; ``may_leave``: auto's probe may send it to float32 (one
        process; shards and ranks must agree on what they count, so they stay certified)."""
        self.chooser = AutoChooser(self.fast, self.reason, may_leave) if self.requested == AUTO else Fixed(self.fixed)
        return CertifiedEngine(self.chooser)

    def to_float32(self, reason: str) -> None:
        self.certified, self.reason = False, reason

    def record(self, result, plan, counts) -> dict | None:
        """``summary.json``'s precision: what was asked, what ran and why; certified: the undecided counters
        (per cell too, the pairs table's ``undecided`` column, for an explicit certified precision)."""
        if not self.certified:
            return None if self.requested == "fp32" else {"requested": self.requested, "ran": "fp32", "note": None,
                                                          "reason": self.reason}
        blocks = {} if self.chooser is None else {n: k for n, k in self.chooser.blocks.items() if k}
        ran = "+".join(blocks) or self.fixed or self.fast
        out = {"requested": self.requested, "ran": ran, "note": self.note}
        if self.requested == AUTO:
            timing = getattr(self.chooser, "timing", None)
            reason = self.chooser.reason if self.chooser else self.reason
            out.update(reason=f"{reason}; {timing}" if timing else reason, blocks=blocks)
        n_sets = len(plan.cand_langs) + 1
        undecided = per_set_undecided(plan, counts) if counts is not None and counts.undecided is not None \
            else np.zeros((len(plan.query_lang_id), n_sets), np.int64)
        recomputed = counts.recomputed if counts is not None and counts.recomputed is not None else undecided[:, 0]
        return {**out, **cell_counters(result, undecided, ran), "recomputed_candidates": int(recomputed.sum())}


def choose_precision(precision: str, trec_depth, bias: list, device: str, work: float = 0.0) -> PrecisionChoice:
    """Resolve ``--precision`` (checked name) for a command with these options and ``work`` multiply-adds
    (queries x candidates x d); InputError where an explicit certified precision cannot give what is
    asked (TREC scores, the bias suite)."""
    from fastir.core.errors import InputError
    from fastir.eval.precision import FP32, PRECISIONS, mkl_gemm, resolve

    if precision == FP32:
        return PrecisionChoice(FP32, False)
    if precision == AUTO:
        why = _needs_float32(trec_depth, bias, device)
        if why:
            return PrecisionChoice(AUTO, False, reason=f"fp32: {why}")
        if work < AUTO_MIN_WORK:
            return PrecisionChoice(AUTO, False, reason=f"fp32: {work:.2g} multiply-adds, below the {AUTO_MIN_WORK:.0e} "
                                                       "where certified bf16 starts to pay")
        fast, why = mkl_gemm()
        if not fast:  # the float32 pass is faster than certifying float32 products: today's speed
            return PrecisionChoice(AUTO, False, reason=f"fp32: no fast bfloat16 product ({why})")
        return PrecisionChoice(AUTO, True, fast="bf16", reason=f"bf16 products certified block by block ({why})")
    if bias:
        raise InputError(None, "--precision", f"{bias[0].name} ranks the top k by float32 scores: "
                                              f"use --precision fp32 or auto, not {precision}")
    if trec_depth is not None:
        raise InputError(None, "--trec", f"TREC files carry float32 scores: use --precision fp32 or auto, "
                                         f"not {precision}")
    assert PRECISIONS[precision].certified
    ran, note = resolve(precision)
    return PrecisionChoice(precision, True, fixed=ran, note=note)


def _needs_float32(trec_depth, bias: list, device: str) -> str | None:
    """Why ``auto`` must score float32 products, or None."""
    if trec_depth is not None:
        return "--trec writes float32 scores"
    if bias:
        return f"{bias[0].name} ranks the top k by float32 scores"
    if device != "cpu":
        from fastir.eval.gpu import resolve_device

        if resolve_device(device) != "cpu":
            return "float32 products on the CUDA device"
    return None
