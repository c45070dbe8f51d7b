"""Batch sampler for multilingual contrastive training: the engine behind every batch strategy.

The strategies (``x-x-mono``, ``x-x``, ``x-y``, ``hybrid``, ``en-en``) are entries of
:mod:`fastir.sampling.strategies`; each says which batch kinds it draws (MONO, ANY, CROSS) and how it
picks one per step. This module turns that into batches.

Several sources (the ``source`` column, or each table's file stem): each batch is drawn from one
source chosen in proportion to its number of usable pairs (``proportional``), uniformly
(``uniform``), or pairs from all sources are mixed inside a batch (``mixed``); see
:mod:`fastir.sampling.pools`.

How batches are drawn. An epoch has ``steps_per_epoch = usable pairs // batch_size`` steps. A
per-epoch plan (seeded by ``(seed, epoch)``) fixes each step's source, batch kind and mono
language. Pairs come from streams, one per (source, kind, language) (:mod:`fastir.sampling.streams`):
no pair (xling_id) appears twice in a batch, and the batch sequence is a pure function of the
seed: resuming from ``(epoch, step)`` replays only the cursor arithmetic. Every rank computes the
same global batch of integer indices and decodes the texts of its own slice only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastir.core.errors import InputError
from fastir.sampling.choices import SOURCE_MODES
from fastir.sampling.pools import build_pools, pool_probs, resolve_weights
from fastir.sampling.strategies import ALPHA_MODES, ANY, MONO, REGISTRY
from fastir.sampling.streams import Streams, stream_key
from fastir.sampling.pair_index import PairIndex, build_pair_index
from fastir.data.train_table import TrainTable, open_train_table

STATE_FORMAT = "fastir-sampler/1"


@dataclass
class Batch:
    """One rank's slice of one global batch. Lists are aligned: element j is one pair."""

    step: int  # global step: epoch * steps_per_epoch + step within the epoch
    kind: str  # the strategy's label for the batch kind (Strategy.label): "mono" / "cross" for hybrid, else its name
    queries: list[str]
    passages: list[str]
    negatives: list[str] | None
    query_langs: list[str]
    passage_langs: list[str]
    xling_ids: list[str]
    sources: list[str]
    epoch: int = 0

    def __len__(self) -> int:
        return len(self.queries)


@dataclass
class BatchPlan:
    """The integer composition of one GLOBAL batch (before slicing and text decoding)."""

    epoch: int
    step: int
    kind: str
    pairs: np.ndarray  # dense pair ids (PairIndex rows)
    query_lang: np.ndarray  # language codes (index into PairIndex.langs)
    passage_lang: np.ndarray
    source: int  # source code, or -1 for mixed


def _as_tables(tables) -> list[TrainTable]:
    if isinstance(tables, (str, Path, TrainTable)):
        tables = [tables]
    out = []
    for t in tables:
        out.append(t if isinstance(t, TrainTable) else open_train_table(t))
    return out


class BatchSampler:
    """Endless iterator of :class:`Batch` over one or more parallel QA tables.

    ``batch_size`` is the GLOBAL batch size; with ``world_size`` W, rank r receives positions
    ``[lo, hi)`` of every global batch (``np.array_split`` bounds), so the union over ranks is
    the single-process batch and the sequence never depends on W.
    """

    def __init__(
        self,
        tables,
        *,
        strategy: str,
        batch_size: int,
        seed: int = 0,
        alpha: float = 0.5,
        alpha_mode: str = "random",
        lang_weights: dict[str, float] | None = None,
        source_mode: str = "proportional",
        rank: int = 0,
        world_size: int = 1,
    ):
        if strategy not in REGISTRY:
            raise InputError(None, "--strategy", f"unknown strategy {strategy!r} (choose from {', '.join(REGISTRY)})")
        if source_mode not in SOURCE_MODES:
            raise InputError(None, "--source-mode", f"unknown source mode {source_mode!r} (choose from {', '.join(SOURCE_MODES)})")
        try:
            alpha = float(alpha)
        except (TypeError, ValueError):
            raise InputError(None, "--alpha", f"not a number: {alpha!r}") from None
        if not 0.0 <= alpha <= 1.0:
            raise InputError(None, "--alpha", f"must be in [0, 1], got {alpha}")
        if alpha_mode not in ALPHA_MODES:
            raise InputError(None, "--alpha-mode", f"expected one of {', '.join(ALPHA_MODES)}, found {alpha_mode!r}")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise InputError(None, "--batch-size", f"must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise InputError(None, "--seed", f"must be a non-negative integer, got {seed!r}")
        if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
            raise InputError(None, "rank", f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if world_size > batch_size:
            raise InputError(None, "--batch-size", f"global batch size {batch_size} is smaller than world size {world_size}")
        self.strategy = strategy
        self.rules = REGISTRY[strategy]
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.alpha = alpha
        self.alpha_mode = alpha_mode
        self.source_mode = source_mode
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.tables = _as_tables(tables)
        self.index: PairIndex = build_pair_index(self.tables)
        self.langs = self.index.langs
        self.weights = resolve_weights(self.rules, self.langs, lang_weights, self._path_hint())
        self._avail = self.index.rows >= 0  # (pairs, langs) bool
        self._positive = self.weights > 0
        self.pools = build_pools(self.index, self._avail & self._positive, self.weights, self.rules, alpha=alpha,
                                 batch_size=self.batch_size, source_mode=source_mode, path_hint=self._path_hint())
        self.pool_probs = pool_probs(self.pools, source_mode)
        self.steps_per_epoch = max(1, sum(p.size for p in self.pools) // self.batch_size)
        lo, hi = rank_bounds(self.batch_size, self.world_size, self.rank)
        self._slice = slice(lo, hi)
        self._source_names = np.array(self.index.sources, dtype=object)
        self._lang_names = np.array(self.langs, dtype=object)
        self.epoch = 0
        self.step = 0  # within the epoch
        self._plan_epoch = -1
        self.streams = Streams(self.pools, len(self.langs), self.batch_size, self.seed)

    # -- configuration ------------------------------------------------------------------------

    def _path_hint(self):
        return self.tables[0].path if len(self.tables) == 1 else None

    def single_language_pairs(self) -> int:
        """Pairs present in one (positive-weight) language only: never drawn in x-y batches."""
        return int(((self._avail & self._positive).sum(axis=1) == 1).sum())

    # -- state ---------------------------------------------------------------------------------

    def _fingerprint(self) -> dict:
        return {
            "strategy": self.strategy,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "alpha": self.alpha,
            "source_mode": self.source_mode,
            "langs": list(self.langs),
            "weights": [float(x) for x in self.weights],
            "sources": list(self.index.sources),
            "num_pairs": int(self.index.num_pairs),
            "steps_per_epoch": int(self.steps_per_epoch),
            # only when not the default, so states saved before alpha modes existed still resume
            **({"alpha_mode": self.alpha_mode} if self.alpha_mode != "random" else {}),
        }

    def state_dict(self) -> dict:
        """Where the sampler stands: the next batch is (epoch, step). JSON-serialisable."""
        epoch, step = (self.epoch + 1, 0) if self.step >= self.steps_per_epoch else (self.epoch, self.step)
        return {"format": STATE_FORMAT, "epoch": epoch, "step": step, "config": self._fingerprint()}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next batch is exactly the one an uninterrupted run yields after ``state``.

        Rank and world size may differ from the run that saved it (global batches don't depend
        on them).
        """
        if state.get("format") != STATE_FORMAT:
            raise InputError(None, "sampler state", f"unknown format {state.get('format')!r}")
        mine = self._fingerprint()
        theirs = state.get("config", {})
        for key in [*mine, *(k for k in theirs if k not in mine)]:
            now, saved = mine.get(key), theirs.get(key)
            if key == "alpha_mode":
                now, saved = now or "random", saved or "random"
            if saved != now:
                raise InputError(None, "sampler state", f"{key} differs: saved {saved!r}, now {now!r}")
        epoch, step = int(state["epoch"]), int(state["step"])
        if epoch < 0 or not 0 <= step < self.steps_per_epoch:
            raise InputError(None, "sampler state", f"bad position epoch={epoch} step={step}")
        self._seek(epoch, step)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (a fresh reshuffle); a no-op when already at its start."""
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if (epoch, 0) != (self.epoch, self.step):
            self._seek(epoch, 0)

    def _seek(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, 0
        self.streams.reset(epoch)
        plan = self._plan()
        for s in range(step):  # replay the cursor arithmetic only: no permutations, no texts
            self.streams.advance(self._stream_key(plan, s))
        self.step = step

    # -- the plan --------------------------------------------------------------------------------

    def _plan(self) -> dict:
        if self._plan_epoch != self.epoch:
            S = self.steps_per_epoch
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, self.epoch, 0])))
            # every draw is made whatever the strategy, so the stream of numbers is fixed
            u_pool, u_kind, u_lang = rng.random(S), rng.random(S), rng.random(S)
            pool = np.searchsorted(np.cumsum(self.pool_probs)[:-1], u_pool, side="right")
            kind = self.rules.plan_kinds(u_kind, self.alpha, self.epoch * S, self.alpha_mode)
            lang = np.zeros(S, dtype=np.int64)
            for k, p in enumerate(self.pools):
                at = pool == k
                if p.mono_cum[-1] > 0:
                    lang[at] = np.searchsorted(p.mono_cum, u_lang[at], side="right")
            self._plan_cache = {"pool": pool, "kind": kind, "lang": lang}
            self._plan_epoch = self.epoch
        return self._plan_cache

    def _stream_key(self, plan: dict, s: int) -> tuple:
        return stream_key(int(plan["pool"][s]), int(plan["kind"][s]), int(plan["lang"][s]))

    def next_plan(self) -> BatchPlan:
        """Advance one step and return the global batch as integer indices (no texts)."""
        if self.step >= self.steps_per_epoch:
            self.epoch, self.step = self.epoch + 1, 0
            self.streams.reset(self.epoch)
        plan = self._plan()
        s = self.step
        key = self._stream_key(plan, s)
        B = self.batch_size
        cycle, pos = self.streams.advance(key)
        perm, u = self.streams.permutation(key, cycle)
        pairs = perm[pos : pos + B]
        kind = key[1]
        if kind == MONO:
            q = p = np.full(B, key[2], dtype=np.int64)
        elif kind == ANY:
            q = p = self._draw_lang(pairs, u[pos : pos + B])
        else:
            q, p = self._draw_cross(pairs, u[pos : pos + B])
        self.step += 1
        return BatchPlan(self.epoch, s, self.rules.label(kind), pairs, q, p, self.pools[key[0]].source)

    def _draw_lang(self, pairs: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Per pair one language, P(l) ~ w_l among the pair's languages."""
        from fastir.kernels.sampling import draw_languages

        return draw_languages(self.index.rows, pairs, u, self.weights, False)[0]

    def _draw_cross(self, pairs: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pair (q, p), q != p, P(q, p) ~ w_q * w_p among the pair's languages."""
        from fastir.kernels.sampling import draw_languages

        return draw_languages(self.index.rows, pairs, u, self.weights, True)

    # -- batches ---------------------------------------------------------------------------------

    def global_step(self, plan: BatchPlan) -> int:
        return plan.epoch * self.steps_per_epoch + plan.step

    def materialize(self, plan: BatchPlan) -> Batch:
        """Decode this rank's slice of ``plan`` into texts."""
        sl = self._slice
        pairs, q, p = plan.pairs[sl], plan.query_lang[sl], plan.passage_lang[sl]
        index = self.index
        qrows, prows = index.rows[pairs, q], index.rows[pairs, p]
        requests = [("query", qrows), ("passage", prows), ("xling_id", prows)]
        if index.has_negative:
            requests.append(("negative", prows))
        texts = index.texts_many(requests)
        return Batch(
            step=self.global_step(plan),
            kind=plan.kind,
            queries=texts[0],
            passages=texts[1],
            negatives=texts[3] if index.has_negative else None,
            query_langs=self._lang_names[q].tolist(),
            passage_langs=self._lang_names[p].tolist(),
            xling_ids=texts[2],
            sources=self._source_names[index.pair_source[pairs]].tolist(),
            epoch=plan.epoch,
        )

    def __next__(self) -> Batch:
        return self.materialize(self.next_plan())

    def __iter__(self):
        # Endless; the position lives in the sampler, so set_epoch / load_state_dict apply to
        # the next batch of a running iterator too.
        while True:
            yield self.materialize(self.next_plan())

    def __len__(self) -> int:
        return self.steps_per_epoch

    def memory_bytes(self) -> int:
        """Bytes held in integer/float arrays: the pair index, the streams, the live permutations."""
        total = self.index.nbytes + self._avail.nbytes
        total += sum(pool.nbytes for pool in self.pools) + self.streams.nbytes
        plan = getattr(self, "_plan_cache", None)
        if plan is not None:
            total += sum(a.nbytes for a in plan.values())
        return int(total)

    def summary(self) -> dict:
        return {
            "strategy": self.strategy,
            "batch_size": self.batch_size,
            "alpha": self.alpha if self.rules.uses_alpha else None,
            "alpha_mode": self.alpha_mode if self.rules.uses_alpha else None,
            "langs": list(self.langs),
            "weights": {l: float(w) for l, w in zip(self.langs, self.weights)},
            "sources": list(self.index.sources),
            "source_mode": self.source_mode,
            "pairs": int(self.index.num_pairs),
            "rows": int(self.index.table_starts[-1]),
            "single_language_pairs": self.single_language_pairs(),
            "steps_per_epoch": int(self.steps_per_epoch),
        }


def rank_bounds(batch_size: int, world_size: int, rank: int) -> tuple[int, int]:
    """Positions ``[lo, hi)`` of the global batch that ``rank`` receives."""
    base, extra = divmod(batch_size, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def _make_sampler_dataset():
    import torch.utils.data

    class SamplerDataset(torch.utils.data.IterableDataset):
        """``DataLoader(SamplerDataset(sampler), batch_size=None, num_workers=K)`` yields the
        sampler's batches in the same order as iterating the sampler: worker k decodes steps
        k, k+K, ... and DataLoader interleaves workers round-robin. Each worker starts from the
        sampler's position when the DataLoader iterator is created; the main process's
        sampler does not advance, so resume with ``load_state_dict`` from ``Batch.step``
        (``{"epoch": step // steps_per_epoch, "step": step % steps_per_epoch}``) — see
        :meth:`state_after`.
        """

        def __init__(self, sampler: BatchSampler):
            super().__init__()
            self.sampler = sampler

        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
            sampler = self.sampler  # in a worker, self is that worker's copy (info.dataset)
            j = 0
            while True:
                plan = sampler.next_plan()
                if j % workers == worker:
                    yield sampler.materialize(plan)
                j += 1

        def state_after(self, batch: Batch) -> dict:
            """The sampler state that resumes right after ``batch``."""
            return state_after(self.sampler, batch)

    return SamplerDataset


def state_after(sampler: BatchSampler, batch: Batch) -> dict:
    """The state whose next batch follows ``batch`` (works for batches from DataLoader workers)."""
    nxt = batch.step + 1
    state = sampler.state_dict()
    state["epoch"], state["step"] = divmod(nxt, sampler.steps_per_epoch)
    return state


def __getattr__(name):
    # SamplerDataset subclasses torch's IterableDataset: build it on first use so that
    # `import fastir.sampling.sampler` never imports torch.
    if name == "SamplerDataset":
        cls = _make_sampler_dataset()
        globals()["SamplerDataset"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
