"""The sampler's pools: per source (or all sources, in ``mixed`` mode) the pairs each batch kind
may draw, checked against the batch size, and the language weights they are drawn by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastir.core.errors import InputError
from fastir.sampling.lang_weights import OPTION, check_lang_weights
from fastir.sampling.strategies import ANY, CROSS, MONO, Strategy
from fastir.sampling.pair_index import PairIndex


@dataclass
class Pool:
    """One source (or all of them, in mixed mode) with its streams' eligible pairs."""

    source: int  # -1 for mixed
    pairs_any: np.ndarray  # pairs with >= 1 positive-weight language
    pairs_cross: np.ndarray  # pairs with >= 2 positive-weight languages
    pairs_lang: list[np.ndarray]  # per language: pairs having it
    mono_cum: np.ndarray  # cumulative mono-language probabilities (0 for absent languages)
    size: int  # usable pairs under the strategy

    def stream(self, kind: int, lang: int) -> np.ndarray:
        """The pairs a batch of ``kind`` draws from (``lang``: the language of a MONO batch)."""
        if kind == MONO:
            return self.pairs_lang[lang]
        return self.pairs_cross if kind == CROSS else self.pairs_any

    @property
    def nbytes(self) -> int:
        return self.pairs_any.nbytes + self.pairs_cross.nbytes + sum(a.nbytes for a in self.pairs_lang)


def resolve_weights(strategy: Strategy, langs: tuple[str, ...], lang_weights: dict | None, path_hint) -> np.ndarray:
    """One weight per language of the data: the strategy's fixed languages, else ``lang_weights``
    (unlisted languages 0), else uniform."""
    if strategy.langs is not None:
        w = np.zeros(len(langs))
        for lang in strategy.langs:
            if lang not in langs:
                raise InputError(path_hint, "lang",
                                 f"strategy {strategy.name} needs rows with lang {lang!r} (found: {', '.join(langs)})")
            w[langs.index(lang)] = 1.0
        return w
    if lang_weights is None:
        return np.ones(len(langs))
    w = np.zeros(len(langs))
    for lang, value in check_lang_weights(lang_weights).items():
        if lang not in langs:
            raise InputError(path_hint, OPTION, f"language {lang!r} not in the data (found: {', '.join(langs)})")
        w[langs.index(lang)] = value
    return w


def build_pools(index: PairIndex, avail: np.ndarray, weights: np.ndarray, strategy: Strategy, *, alpha: float,
                batch_size: int, source_mode: str, path_hint) -> list[Pool]:
    """The pools of ``index`` (``avail``: (pairs, langs) rows present with a positive weight).

    Raises InputError when a batch kind the strategy draws cannot fill a batch in some pool.
    """
    nlang = avail.sum(axis=1)
    # int32 pair ids: the streams' permutations are the largest arrays besides the index
    id_type = np.int32 if index.num_pairs < np.iinfo(np.int32).max else np.int64
    groups = [(-1, np.arange(index.num_pairs, dtype=id_type))] if source_mode == "mixed" else [
        (s, np.flatnonzero(index.pair_source == s).astype(id_type)) for s in range(len(index.sources))
    ]
    pools = []
    for source, members in groups:
        pairs_any = members[nlang[members] >= 1]
        pairs_cross = members[nlang[members] >= 2]
        pairs_lang = [members[avail[members, l]] for l in range(len(index.langs))]
        counts = np.array([len(p) for p in pairs_lang])
        mono_w = weights * (counts > 0)
        if strategy.langs is not None and counts.sum() == 0:
            continue  # a source without the strategy's languages takes no part
        cum = np.cumsum(mono_w / mono_w.sum()) if mono_w.sum() > 0 else np.zeros(len(mono_w))
        if mono_w.sum() > 0:
            cum[np.flatnonzero(mono_w > 0)[-1] :] = 1.0  # exact top: u < 1 never lands past it
        size = len(pairs_cross) if strategy.epoch_kind == CROSS else len(pairs_any)
        pool = Pool(source, pairs_any, pairs_cross, pairs_lang, cum, size)
        name = "all sources" if source < 0 else f"source {index.sources[source]!r}"
        single = int((nlang[members] == 1).sum())
        _check_fill(pool, strategy.kinds_used(alpha), mono_w, single, name, index.langs, batch_size, path_hint)
        pools.append(pool)
    if not pools:
        raise InputError(path_hint, "lang", f"no source has rows with lang {' or '.join(map(repr, strategy.langs))}")
    return pools


def _check_fill(pool: Pool, kinds, mono_w, single: int, name: str, langs, B: int, path_hint) -> None:
    """Every batch kind drawn must find ``B`` distinct pairs in its stream (mono: per language);
    ``single``: the pool's pairs present in one positive-weight language only."""
    if MONO in kinds:
        for l in np.flatnonzero(mono_w > 0):
            count = len(pool.pairs_lang[l])
            if count < B:
                raise InputError(
                    path_hint, "lang",
                    f"language {langs[l]!r} has {count} distinct xling_ids in {name}, fewer than the batch size {B}",
                )
    if CROSS in kinds and len(pool.pairs_cross) < B:
        raise InputError(
            path_hint, "xling_id",
            f"x-y batches need xling_ids present in >= 2 languages: {name} has {len(pool.pairs_cross)} "
            f"such ids ({single} exist in one language only), fewer than the batch size {B}",
        )
    if ANY in kinds and len(pool.pairs_any) < B:
        raise InputError(
            path_hint, "xling_id",
            f"{name} has {len(pool.pairs_any)} distinct xling_ids, fewer than the batch size {B}",
        )


def pool_probs(pools: list[Pool], source_mode: str) -> np.ndarray:
    """Probability of drawing each pool for a step: by size (proportional) or uniform."""
    sizes = np.array([p.size for p in pools], dtype=np.float64)
    if source_mode == "uniform":
        return np.full(len(pools), 1.0 / len(pools))
    return sizes / sizes.sum()
