"""The stream cursor: whole batches per cycle, seeded permutations, cheap replay."""

from __future__ import annotations

import numpy as np

from fastir.sampling.pools import Pool
from fastir.sampling.streams import Streams, stream_key
from fastir.sampling.strategies import ANY, CROSS, MONO


def _streams(n_any=10, n_cross=7, batch_size=3, seed=5):
    pool = Pool(source=0, pairs_any=np.arange(n_any, dtype=np.int32), pairs_cross=np.arange(n_cross, dtype=np.int32),
                pairs_lang=[np.arange(4, dtype=np.int32), np.arange(4, 9, dtype=np.int32)],
                mono_cum=np.array([0.5, 1.0]), size=n_any)
    return Streams([pool], num_langs=2, batch_size=batch_size, seed=seed)


def test_keys():
    assert stream_key(1, MONO, 0) == (1, MONO, 0)
    assert stream_key(1, ANY, 0) == stream_key(1, ANY, 1) == (1, ANY, -1)  # one stream for every language
    assert stream_key(0, CROSS, 1) == (0, CROSS, -1)


def test_a_batch_never_spans_two_cycles():
    s = _streams()
    key = stream_key(0, ANY, -1)
    cursor = [s.advance(key) for _ in range(7)]
    # 10 pairs, batches of 3: positions 0, 3, 6 then a new cycle (9 + 3 > 10)
    assert cursor == [(0, 0), (0, 3), (0, 6), (1, 0), (1, 3), (1, 6), (2, 0)]
    for cycle in range(3):
        perm, u = s.permutation(key, cycle)
        assert sorted(perm.tolist()) == list(range(10)) and u.shape == (10,)
        batches = [perm[p : p + 3] for c, p in cursor if c == cycle]
        assert all(len(set(b.tolist())) == 3 for b in batches)


def test_permutations_are_seeded_per_stream_epoch_and_cycle():
    a, b = _streams(), _streams()
    key = stream_key(0, CROSS, -1)
    assert np.array_equal(a.permutation(key, 0)[0], b.permutation(key, 0)[0])
    assert np.array_equal(a.permutation(key, 0)[1], b.permutation(key, 0)[1])
    assert not np.array_equal(a.permutation(key, 0)[0], a.permutation(key, 1)[0])
    mono = a.permutation(stream_key(0, MONO, 1), 0)
    assert sorted(mono[0].tolist()) == [4, 5, 6, 7, 8] and mono[1] is None  # MONO: no language draws
    first = a.permutation(key, 0)[0]
    b.reset(1)
    assert b.epoch == 1 and b.cursor == {}
    assert not np.array_equal(b.permutation(key, 0)[0], first)  # another epoch
    assert not np.array_equal(_streams(seed=6).permutation(key, 0)[0], first)  # another seed


def test_replay_needs_no_permutation():
    s = _streams()
    for _ in range(5):
        s.advance(stream_key(0, MONO, 0))
    assert s.nbytes == 0  # the cursor moved, no permutation was drawn
    s.permutation(stream_key(0, MONO, 0), 1)
    assert s.nbytes == 4 * 4
