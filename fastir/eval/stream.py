"""The streaming pass of ``fastir score``: per-gold counts over tiles of Q·Cᵀ, candidates read once.

Candidates are read from the memory-mapped table one tile of columns at a time (upcast to
float32 into a reused buffer), so memory is bounded by ``--block-mb`` plus the per-gold counts,
whatever the pool size; each tile is multiplied by every block of query rows and counted by
:func:`fastir.kernels.tiles.count_tile` into ``cnt[gold, language]``. A candidate range
(``cand_range``) restricts the pass to one shard's rows; the counts of the shards add up
(:mod:`fastir.eval.shards`). The metrics come out of the counts afterwards (:func:`finalise`).

Gold scores: a tile that holds every candidate of its group reads them from itself (one process,
a pool that fits in ``--block-mb``). Otherwise they are computed first (:func:`gold_scores`) with
the same float32 product, restricted to the golds; no product has a single row or column, so
BLAS never switches to its matrix-vector kernel, whose rounding differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastir.core.errors import InputError
from fastir.kernels import HALF_COPY_KERNEL, gather_kernel
from fastir.kernels.lazy import pending
from fastir.core.resources import require_memory
from fastir.eval.result import concat_ranges

# Query rows per block when the candidates need several tiles: tall enough for an efficient
# product, small enough to leave most of --block-mb to the candidate tile.
MAX_ROWS = 2048
# gold_scores' batches: products big enough for BLAS's ordinary kernel (see there)
GOLD_MIN_MACS = 4e6
GOLD_MIN_ROWS = 16
# oneMKL's float16 product from this many multiply-adds (queries x candidates x dim): below, loading
# libtorch_cpu.so (~0.15 s) costs more than the ~14 % of the product it saves
F16_MIN_WORK = 1e11


@dataclass(frozen=True)
class BlockPlan:
    """Query rows per block and candidate columns per tile for one group of a pass."""

    rows: int
    cols: int
    n_rows: int
    n_cols: int
    dim: int

    @property
    def n_tiles(self) -> int:
        return -(-self.n_cols // self.cols) if self.n_cols else 0

    @property
    def nbytes(self) -> int:
        """float32 bytes of the query block, the candidate tile and the score tile (each padded to 2)."""
        r, c = max(2, self.rows), max(2, self.cols)
        return 4 * (r * self.dim + c * self.dim + r * c)


def block_plan(n_rows: int, n_cols: int, dim: int, block_mb: float) -> BlockPlan:
    """Split ``n_rows`` x ``n_cols`` into blocks of rows and tiles of columns within ``block_mb`` MiB.

    When every candidate fits in a quarter of the budget the tile holds them all (one pass, gold
    scores read from it); otherwise query blocks of at most :data:`MAX_ROWS` rows and the widest
    tile the rest of the budget allows. Blocks and tiles are made equal. Checked against memory.
    """
    budget = float(block_mb) * (1 << 20)
    n_rows, n_cols = max(1, n_rows), max(1, n_cols)
    if n_cols * dim * 4 <= budget / 4:
        cols = n_cols
        rows = int(max(1, min(n_rows, (budget - n_cols * dim * 4) // (4 * (n_cols + dim)))))
    else:
        rows = min(n_rows, MAX_ROWS)
        cols = int(max(1, min(n_cols, (budget - rows * dim * 4) // (4 * (rows + dim)))))
    rows = -(-n_rows // -(-n_rows // rows))
    cols = -(-n_cols // -(-n_cols // cols))
    plan = BlockPlan(rows, cols, n_rows, n_cols, dim)
    require_memory(plan.nbytes, "--block-mb", f"a score tile of {rows} x {cols} float32 and its inputs")
    return plan


@dataclass
class Counts:
    """What one pass (or the sum of the shards' passes) yields."""

    cnt: np.ndarray  # int64 (n_golds, n_langs): candidates of each language scoring >= each gold
    gold_score: np.ndarray  # float32 (n_golds,): the gold scores used (0 where never measured)
    top: tuple | None = None  # (score float32, key int64, length int32) per (query, set, depth), or None
    undecided: np.ndarray | None = None  # certified: int64 (n_golds, n_langs) pairs the bound left open
    recomputed: np.ndarray | None = None  # certified: int64 (n_queries,) candidates recomputed exactly
    tied: np.ndarray | None = None  # --ties / tie spread: int64 (n_golds, n_langs) candidates scoring = each gold


def empty_counts(n_golds: int, n_langs: int, n_queries: int, trec_depth: int | None,
                 certified: bool = False, ties: bool = False) -> Counts:
    top = None
    if trec_depth:
        n_sets = n_langs + 1
        require_memory(n_queries * n_sets * trec_depth * 12, "--trec-depth",
                       f"the TREC top-{trec_depth} buffer ({n_queries} queries x {n_sets} candidate sets)")
        top = (np.zeros((n_queries, n_sets, trec_depth), np.float32),
               np.zeros((n_queries, n_sets, trec_depth), np.int64), np.zeros((n_queries, n_sets), np.int32))
    counts = Counts(np.zeros((n_golds, n_langs), np.int64), np.zeros(n_golds, np.float32), top)
    if certified:
        counts.undecided = np.zeros((n_golds, n_langs), np.int64)
        counts.recomputed = np.zeros(n_queries, np.int64)
    if ties:
        counts.tied = np.zeros((n_golds, n_langs), np.int64)
    return counts


@dataclass
class GroupColumns:
    """The candidate columns of one group inside a candidate range, in language-grouped order."""

    rows: np.ndarray  # int64 candidate row of each column
    lang: np.ndarray  # int32 language of each column (sorted)
    key: np.ndarray  # int64 column of each in the whole pool's language-grouped order (ascending)


def group_columns(plan, mask: np.ndarray, cand_range: tuple[int, int]) -> GroupColumns:
    a, b = cand_range
    lang = plan.cand_lang_id[a:b]
    order = np.argsort(lang, kind="stable")
    order = order[mask[lang[order]]]
    return GroupColumns(a + order.astype(np.int64), np.ascontiguousarray(lang[order], np.int32),
                        plan.position[a + order])


def group_golds(plan, mask: np.ndarray, rows: np.ndarray):
    """(ptr over ``rows``, global gold ids) of the golds of ``rows`` in the languages of ``mask``."""
    starts = plan.gold_ptr[rows]
    lengths = plan.gold_ptr[rows + 1] - starts
    ids = concat_ranges(starts, lengths)
    owner = np.repeat(np.arange(len(rows)), lengths)
    keep = mask[plan.cand_lang_id[plan.gold_cand[ids]]]
    ids, owner = ids[keep], owner[keep]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=len(rows)), out=ptr[1:])
    return ptr, np.ascontiguousarray(ids, dtype=np.int64)


def count_group(run, plan, mask, rows, cand_range, block_mb, engine, counts: Counts, gold_known: bool) -> None:
    """Add the counts (and top-k) of query ``rows`` against the group's candidates in ``cand_range``.

    ``gold_known``: ``counts.gold_score`` already holds these golds' scores; otherwise they are read
    from the tile (one tile holding the whole pool) or computed first by :func:`gold_scores`.
    """
    cols = group_columns(plan, mask, cand_range)
    g_ptr, g_id = group_golds(plan, mask, rows)
    bp = block_plan(len(rows), len(cols.rows), run.dim, block_mb)
    whole = cand_range == (0, len(plan.cand_lang_id))
    take = not gold_known and whole and bp.n_tiles == 1
    if not gold_known and not take:
        gold_scores(run, plan, rows, g_ptr, g_id, None, block_mb, engine, counts.gold_score)
    # A gold's column among this range's columns; -1 (never inside a tile) for golds elsewhere.
    g_pos = np.searchsorted(cols.key, plan.position[plan.gold_cand[g_id]]).astype(np.int64)
    inside = g_pos < len(cols.key)
    inside[inside] = cols.key[g_pos[inside]] == plan.position[plan.gold_cand[g_id[inside]]]
    g_pos[~inside] = -1
    g_score = np.ascontiguousarray(counts.gold_score[g_id])
    q_group = plan.query_lang_id[rows]
    for t0 in range(0, bp.n_cols if len(cols.rows) else 0, bp.cols):
        t1 = min(t0 + bp.cols, len(cols.rows))
        t_lang = cols.lang[t0:t1]
        lang0 = int(t_lang[0])
        lang_ptr = np.searchsorted(t_lang, np.arange(lang0, int(t_lang[-1]) + 2)).astype(np.int64)
        tile = engine.tile(run.candidates, cols.rows[t0:t1])
        for s in range(0, len(rows), bp.rows):
            e = min(s + bp.rows, len(rows))
            lo, hi = g_ptr[s], g_ptr[e]
            scores = engine.scores(run.queries, rows[s:e], tile)
            engine.count(scores, lang_ptr, g_ptr[s:e + 1] - lo, g_pos[lo:hi], g_score[lo:hi], t0, lang0,
                         g_id[lo:hi], counts.cnt, take, counts.tied)
            if counts.top is not None:
                _keep_top(counts.top, engine.host(scores), t_lang, cols.key[t0:t1], plan.want, q_group[s:e],
                          rows[s:e])
    if take:
        counts.gold_score[g_id] = g_score


def gold_scores(run, plan, rows, g_ptr, g_id, own, block_mb, engine, out) -> None:
    """Write into ``out[g_id]`` the float32 score of each gold of ``rows`` (golds outside the
    candidate range ``own`` are left alone; None = all), with the product the tiles use.

    Query rows go in batches, each multiplied by its own golds' columns only (a product of all
    rows by all golds' columns cost half the pass on the graded bench). A batch is never so small
    that BLAS picks another kernel: at least :data:`GOLD_MIN_MACS` multiply-adds and
    :data:`GOLD_MIN_ROWS` rows (OpenBLAS's small-matrix kernel, whose rounding differs, serves
    products under 10^6; measured bit-equal to the tiles' products from 8 x 240 x 384 up).
    """
    owner = np.repeat(np.arange(len(rows)), np.diff(g_ptr))
    cand = plan.gold_cand[g_id]
    if own is not None:
        sel = (cand >= own[0]) & (cand < own[1])
        owner, cand, g_id = owner[sel], cand[sel], g_id[sel]
    if len(g_id) == 0:
        return
    per_row = max(1.0, len(g_id) / len(rows))
    batch = int(max(GOLD_MIN_ROWS, np.ceil(np.sqrt(GOLD_MIN_MACS / (per_row * run.dim)))))
    bounds = np.searchsorted(owner, np.arange(0, len(rows) + batch, batch))
    for s, (a, b) in zip(range(0, len(rows), batch), zip(bounds[:-1], bounds[1:])):
        if a < b:
            _batch_gold_scores(run, rows[s:s + batch], owner[a:b] - s, cand[a:b], g_id[a:b], block_mb, engine, out)


def _batch_gold_scores(run, rows, owner, cand, g_id, block_mb, engine, out) -> None:
    """:func:`gold_scores` of one batch of query ``rows`` (``owner``: each gold's row in the batch):
    one product of the rows by their golds' columns, in tiles where those exceed ``--block-mb``."""
    uniq, inverse = np.unique(cand, return_inverse=True)
    bp = block_plan(len(rows), len(uniq), run.dim, block_mb)
    for t0 in range(0, len(uniq), bp.cols):
        t1 = min(t0 + bp.cols, len(uniq))
        tile = engine.tile(run.candidates, uniq[t0:t1])
        for r0 in range(0, len(rows), bp.rows):
            r1 = min(r0 + bp.rows, len(rows))
            sel = (owner >= r0) & (owner < r1) & (inverse >= t0) & (inverse < t1)
            if sel.any():
                scores = engine.host(engine.scores(run.queries, rows[r0:r1], tile))
                out[g_id[sel]] = scores[owner[sel] - r0, inverse[sel] - t0]


def _keep_top(top, scores, t_lang, keys, want, q_group, b_rows) -> None:
    from fastir.kernels.tiles import merge_top
    from fastir.kernels.topk import top_k_by_language

    depth = top[0].shape[2]
    t_score, t_col, t_len = top_k_by_language(scores, t_lang, want, q_group, depth)
    merge_top(*top, t_score, keys[t_col], t_len, b_rows)


def gather_rows(chunks: list[np.ndarray], rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``out[i]`` = row ``rows[i]`` of the stacked ``chunks`` (record batches), upcast to float32
    (or copied as stored into a float16 ``out``), without joining the chunks (a pool beyond RAM
    stays in its memory map). ``out`` None: a new float32 array.

    The Numba gather (:mod:`fastir.kernels.upcast`); while a command's preload thread is still
    loading it (:mod:`fastir.eval.preload`), numpy's cast instead of waiting: float16 and float32
    widen exactly, so both write the same bits.
    """
    rows = np.asarray(rows, np.int64)
    if out is None:
        out = np.empty((len(rows), chunks[0].shape[1]), np.float32)
    half = out.dtype == np.float16  # float16 rows as stored, for oneMKL's float16 product
    if pending(HALF_COPY_KERNEL if half else gather_kernel(chunks[0].dtype, len(chunks))):
        if len(chunks) == 1:
            _put_numpy(chunks[0], rows, out, slice(None))
            return out
        put = _put_numpy
    elif half:
        from fastir.kernels.upcast import gather_float16_to as put
    else:
        from fastir.kernels.upcast import gather_float32, gather_float32_to

        if len(chunks) == 1:
            return gather_float32(chunks[0], rows, out)
        put = gather_float32_to
    ends = np.cumsum([len(c) for c in chunks])
    which = np.searchsorted(ends, rows, side="right")
    order = np.argsort(which, kind="stable")  # output rows grouped by record batch
    bounds = np.searchsorted(which[order], np.arange(len(chunks) + 1))
    for k in range(len(chunks)):
        dest = order[bounds[k]:bounds[k + 1]]
        if len(dest):
            put(chunks[k], rows[dest] - (ends[k] - len(chunks[k])), out, dest)
    return out


def _consecutive_rows(chunks: list[np.ndarray], rows: np.ndarray) -> np.ndarray | None:
    """Rows ``rows`` of the stacked ``chunks`` as a view, where they are consecutive in one chunk; else None."""
    first, n = int(rows[0]), len(rows)
    if int(rows[-1]) != first + n - 1 or not np.all(np.diff(rows) == 1):
        return None
    start = 0
    for chunk in chunks:
        if first < start + len(chunk):
            return chunk[first - start:first - start + n] if first + n <= start + len(chunk) else None
        start += len(chunk)
    return None


def _put_numpy(chunk: np.ndarray, rows: np.ndarray, out: np.ndarray, dest: np.ndarray) -> None:
    out[dest] = chunk[rows]  # a float16/float32 -> float32 cast: exact


def check_counts_fit(cnt: np.ndarray) -> np.ndarray:
    """The counts as int32 for the finalisers (a rank cannot exceed the pool size)."""
    if cnt.size and int(cnt.max()) > np.iinfo(np.int32).max:
        raise InputError(None, "candidates", "more than 2^31-1 candidates at or above a gold")
    return np.ascontiguousarray(cnt, dtype=np.int32)


def f16_product(run) -> tuple[object | None, str]:
    """(oneMKL's float16 GEMM for the float32 pass over ``run``, or None; why): used where the run
    is stored in float16, the CPU is an Intel one (measured 0.85-0.90 x widening + OpenBLAS there,
    bit-equal on that CPU; not measured elsewhere, so other CPUs keep numpy's product) and the
    product is large enough (:data:`F16_MIN_WORK`) to repay opening the library."""
    if run is None:
        return None, "no run"
    dtypes = {str(c.dtype) for c in run.queries.chunks + run.candidates.chunks}
    why_not = f16_refusal(dtypes, float(len(run.queries)) * len(run.candidates) * run.dim)
    if why_not:
        return None, why_not
    from fastir.eval.mkl_gemm import load_f16

    return load_f16()


def f16_refusal(dtypes: set[str], work: float) -> str:
    """Why :func:`f16_product` keeps numpy's product for embeddings of ``dtypes`` and ``work``
    multiply-adds ("" where it would not); also what the command's preload thread asks."""
    from fastir.core.cpu import cpu_vendor

    if dtypes != {"float16"}:
        return "not a float16 run"
    if cpu_vendor() != "GenuineIntel":
        return f"measured on Intel CPUs only (this one: {cpu_vendor() or 'unknown'})"
    if work < F16_MIN_WORK:
        return f"below {F16_MIN_WORK:.0e} multiply-adds"
    return ""


def cpu_engine(run=None) -> "NumpyEngine":
    """The CPU engine for ``run``: numpy's float32 product, or oneMKL's float16 one (:func:`f16_product`)."""
    return NumpyEngine(f16_product(run)[0])


class NumpyEngine:
    """float32 products with numpy's BLAS into reused buffers, counts with the Numba kernel.

    ``f16_gemm`` (a :class:`fastir.eval.mkl_gemm.MixedGemm` over float16): the products of a
    float16 run read its rows as stored (a tile of consecutive rows is a view of the table, others
    are gathered as float16) instead of widening them to float32 first; see :func:`cpu_engine`.
    """

    name = "cpu"

    def __init__(self, f16_gemm=None):
        self._buf: dict[str, np.ndarray] = {}
        self._f16 = f16_gemm
        # summary.json's ``compute``: nothing for the default CPU path, the product where it is another
        self.compute = None if f16_gemm is None else {"engine": "cpu", "product": f16_gemm.name,
                                                      "dtype": "float16 inputs, float32 products and sums"}

    def _view(self, name: str, shape: tuple[int, int], dtype=np.float32) -> np.ndarray:
        size = shape[0] * shape[1]
        buf = self._buf.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            self._buf.pop(name, None)  # release before allocating the larger one
            buf = self._buf[name] = np.empty(size, dtype)
        return buf[:size].reshape(shape)

    def _gather(self, name, side, rows) -> tuple[np.ndarray, int]:
        n = len(rows)
        if self._f16 is not None and n >= 2:
            view = _consecutive_rows(side.chunks, rows)
            if view is not None:
                return view, n
        out = self._view(name, (max(2, n), side.chunks[0].shape[1]), np.float16 if self._f16 else np.float32)
        gather_rows(side.chunks, rows, out[:n])
        if n < 2:  # a second row keeps BLAS off its matrix-vector kernel (see the module docstring)
            out[n:] = 0
        return out, n

    def tile(self, side, rows):
        """Candidate ``rows`` of ``side`` (an EmbeddingTable) as float32 (float16 for ``f16_gemm``), with their count."""
        return self._gather("tile", side, rows)

    def scores(self, q_side, q_rows, tile) -> np.ndarray:
        """float32 scores of query ``rows`` against a tile, C-contiguous (a reused buffer)."""
        q, n = self._gather("queries", q_side, q_rows)
        c, m = tile
        out = self._view("scores", (q.shape[0], c.shape[0]))
        if self._f16 is not None:
            self._f16(q, c, out)
        else:
            np.matmul(q, c.T, out=out)
        return out if (n, m) == out.shape else np.ascontiguousarray(out[:n, :m])

    def count(self, scores, lang_ptr, g_ptr, g_pos, g_score, t0, lang0, g_id, cnt, take, tied=None) -> None:
        from fastir.kernels.tiles import count_tile

        count_tile(scores, lang_ptr, g_ptr, g_pos, g_score, t0, lang0, g_id, cnt, take, tied)

    def host(self, scores) -> np.ndarray:
        return scores
