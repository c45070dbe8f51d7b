"""The sampler's pair streams and their cursor: what makes the batch sequence a pure function of
the seed, and resuming cheap.

A stream is one (pool, batch kind, language) of one epoch. It walks a permutation of its pairs
seeded by ``(seed, epoch, stream id, cycle)`` without replacement, ``batch_size`` at a time; a
stream that cannot fill a batch starts its next cycle (a new permutation) instead of splitting a
batch over two cycles, so no pair appears twice in a batch. The cursor ``(cycle, position)`` of
each stream is plain integer arithmetic: resuming from ``(epoch, step)`` replays it without
drawing a permutation.
"""

from __future__ import annotations

import numpy as np

from fastir.sampling.pools import Pool
from fastir.sampling.strategies import MONO

StreamKey = tuple  # (pool index, batch kind, language index or -1)


def stream_key(pool: int, kind: int, lang: int) -> StreamKey:
    """Batches of ``kind`` in ``pool`` share one stream; MONO batches one per language."""
    return (pool, MONO, lang) if kind == MONO else (pool, kind, -1)


class Streams:
    """The streams of one epoch: cursors and the live permutation of each stream."""

    def __init__(self, pools: list[Pool], num_langs: int, batch_size: int, seed: int):
        self.pools = pools
        self.num_langs = num_langs
        self.batch_size = batch_size
        self.seed = seed
        self.reset(0)

    def reset(self, epoch: int) -> None:
        """Start ``epoch``: every stream at cycle 0, position 0."""
        self.epoch = epoch
        self.cursor: dict[StreamKey, tuple[int, int]] = {}
        self._perm: dict[StreamKey, tuple[int, np.ndarray, np.ndarray | None]] = {}

    def pairs(self, key: StreamKey) -> np.ndarray:
        pool, kind, lang = key
        return self.pools[pool].stream(kind, lang)

    def advance(self, key: StreamKey) -> tuple[int, int]:
        """Take the next batch_size positions of stream ``key``: (cycle, start position)."""
        cycle, pos = self.cursor.get(key, (0, 0))
        if pos + self.batch_size > len(self.pairs(key)):
            cycle, pos = cycle + 1, 0  # a new permutation of the stream
        self.cursor[key] = (cycle, pos + self.batch_size)
        return cycle, pos

    def permutation(self, key: StreamKey, cycle: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Cycle ``cycle`` of stream ``key``: (pairs in order, per-position uniform draws for the
        pair languages, None for MONO streams)."""
        cached = self._perm.get(key)
        if cached is not None and cached[0] == cycle:
            return cached[1], cached[2]
        pool, kind, lang = key
        stream_id = 1 + (pool * (self.num_langs + 2) + (kind if kind != MONO else MONO + lang))
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, self.epoch, stream_id, cycle])))
        pairs = self.pairs(key)
        perm = pairs[rng.permutation(len(pairs))]
        u = rng.random(len(pairs)) if kind != MONO else None
        self._perm[key] = (cycle, perm, u)
        return perm, u

    @property
    def nbytes(self) -> int:
        """Bytes of the live permutations and draws."""
        return sum(perm.nbytes + (u.nbytes if u is not None else 0) for _, perm, u in self._perm.values())
