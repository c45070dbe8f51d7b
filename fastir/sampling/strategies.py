"""The batch strategies of the sampler: one registry entry each (LAReQA / arXiv 2408.10536 terms).

A strategy says which *batch kinds* it draws and how it picks one per step; the sampler engine
(:mod:`fastir.sampling.sampler`) knows how to fill a batch of each kind:

* ``MONO``: one language for the whole batch, drawn per batch with probability proportional to
  its weight; every query and passage of the batch is in that language.
* ``ANY``: each pair monolingual (query and passage in one language, drawn per pair by weight
  among the pair's languages); languages mixed inside the batch.
* ``CROSS``: each pair cross-lingual: (query lang q, passage lang p), q != p, drawn with
  probability proportional to ``w_q * w_p`` among the pair's languages.

Adding a strategy = one :class:`Strategy` (sub)class instance in :data:`REGISTRY`; the CLI's
``--strategy`` choices, the sampler and ``fastir experiment`` read it from there.

This module imports nothing heavy (numpy only inside :meth:`Strategy.plan_kinds`), because
``fastir --help`` takes the names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Batch kinds. The codes also number the sampler's pair streams and so enter their seeds:
# never renumber them (a resumed run and `fastir sample` outputs would change).
ANY, CROSS, MONO = 0, 1, 2
KIND_NAMES = {MONO: "mono", ANY: "any", CROSS: "cross"}
# How a mixture picks each step's kind from alpha: a seeded draw per step, or a fixed interleaving.
ALPHA_MODES = ("random", "exact")


@dataclass(frozen=True)
class Strategy:
    """A strategy that draws batches of one kind only; ``Batch.kind`` is the strategy's name."""

    name: str
    kind: int  # MONO, ANY or CROSS
    description: str
    langs: tuple[str, ...] | None = None  # fixed languages (weight 1 each), ignoring --lang-weights

    @property
    def kinds(self) -> tuple[int, ...]:
        """Every batch kind this strategy can draw, whatever ``alpha``."""
        return (self.kind,)

    @property
    def uses_alpha(self) -> bool:
        return False

    @property
    def epoch_kind(self) -> int:
        """The kind whose eligible pairs an epoch counts: only cross-lingual pairs when every
        batch is x-y, else every pair with a positive-weight language."""
        return CROSS if set(self.kinds) == {CROSS} else ANY

    def kinds_used(self, alpha: float) -> tuple[int, ...]:
        """The batch kinds actually drawn under ``alpha`` (their pools must fill a batch)."""
        return self.kinds

    def plan_kinds(self, u_kind, alpha: float, first_step: int = 0, alpha_mode: str = "random"):
        """Each step's batch kind from its uniform draw ``u_kind`` (one float per step); the steps
        are ``first_step``, ``first_step + 1``, ... counted from the start of training."""
        import numpy as np

        return np.full(len(u_kind), self.kind)

    def label(self, kind: int) -> str:
        """``Batch.kind`` of a batch of ``kind``."""
        return self.name


@dataclass(frozen=True)
class Mixture(Strategy):
    """A ``MONO`` batch with probability ``alpha``, else a ``CROSS`` batch; ``Batch.kind`` is
    ``mono`` / ``cross``."""

    @property
    def kinds(self) -> tuple[int, ...]:
        return (MONO, CROSS)

    @property
    def uses_alpha(self) -> bool:
        return True

    def kinds_used(self, alpha: float) -> tuple[int, ...]:
        return tuple(k for k, used in ((MONO, alpha > 0), (CROSS, alpha < 1)) if used)

    def plan_kinds(self, u_kind, alpha: float, first_step: int = 0, alpha_mode: str = "random"):
        """``random``: step t is mono iff its draw ``u_kind < alpha``. ``exact``: step t is mono iff
        ``floor((t+1)·a) > floor(t·a)``, ``a`` = alpha as a fraction (denominator <= 10**6), so after
        n steps exactly ``floor(n·a)`` batches were mono: within one batch of ``n·alpha`` at every step."""
        import numpy as np

        if alpha_mode == "random":
            return np.where(u_kind < alpha, MONO, CROSS)
        from fractions import Fraction

        a = Fraction(alpha).limit_denominator(10**6)  # 0.3 is 3/10 here, not the binary 0.29999...
        t = np.arange(first_step, first_step + len(u_kind), dtype=np.int64)
        num, den = np.int64(a.numerator), np.int64(a.denominator)
        return np.where((t + 1) * num // den > t * num // den, MONO, CROSS)

    def label(self, kind: int) -> str:
        return KIND_NAMES[kind]


REGISTRY: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("x-x-mono", MONO, "one language per batch, drawn by weight"),
        Strategy("x-x", ANY, "each pair monolingual, languages mixed inside the batch"),
        Strategy("x-y", CROSS, "each pair cross-lingual (query and passage languages differ)"),
        Mixture("hybrid", MONO, "an x-x-mono batch with probability alpha, else an x-y batch"),
        Strategy("en-en", MONO, "English only", langs=("en",)),
    )
}
NAMES = tuple(REGISTRY)
