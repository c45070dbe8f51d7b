"""The integer index over one or more train tables: every pair (xling_id) a dense int, every
(pair, language) a global row, so the sampler holds integers only and decodes texts on demand."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fastir.core.errors import InputError
from fastir.data.train_table import TrainTable, release_arrow_memory


@dataclass
class PairIndex:
    """Integer index over parallel QA tables: every pair (xling_id) is a dense int.

    ``rows[i, l]`` is the global row of pair ``i`` in language ``langs[l]`` (-1 when missing);
    global rows number the tables one after another (``table_starts``). ``pair_source[i]`` indexes
    ``sources``. Dense ids follow the sorted xling_id strings, so the same rows in any order or
    file format give the same index.
    """

    tables: list[TrainTable]
    langs: tuple[str, ...]
    sources: tuple[str, ...]
    rows: np.ndarray  # (num_pairs, num_langs) int32/int64
    pair_source: np.ndarray  # (num_pairs,) int32
    table_starts: np.ndarray  # (num_tables + 1,) int64

    @property
    def num_pairs(self) -> int:
        return self.rows.shape[0]

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.pair_source.nbytes

    def __post_init__(self):
        self.has_negative = all(t.has_negative for t in self.tables)

    def texts(self, column: str, rows: np.ndarray) -> list[str]:
        """Decode ``column`` at global ``rows`` (any mix of tables), in order."""
        return self.texts_many([(column, rows)])[0]

    def texts_many(self, requests: list[tuple[str, np.ndarray]]) -> list[list[str]]:
        """Decode several (column, global rows) requests, each in order."""
        rows = [np.asarray(r, dtype=np.int64) for _, r in requests]
        if len(self.tables) == 1:
            return self.tables[0].texts_many([(name, r) for (name, _), r in zip(requests, rows)])
        out: list[list] = [[None] * len(r) for r in rows]
        which = [np.searchsorted(self.table_starts, r, side="right") - 1 for r in rows]
        for t in np.unique(np.concatenate(which)).tolist():
            positions = [np.flatnonzero(w == t) for w in which]
            sub = [(name, r[p] - self.table_starts[t]) for (name, _), r, p in zip(requests, rows, positions)]
            for k, texts in enumerate(self.tables[t].texts_many(sub)):
                for pos, text in zip(positions[k].tolist(), texts):
                    out[k][pos] = text
        return out


def build_pair_index(tables: list[TrainTable]) -> PairIndex:
    """The :class:`PairIndex` of ``tables``; see :func:`_build_pair_index`."""
    try:
        index = _build_pair_index(tables)
    except InputError as exc:
        for t in tables:  # the rejected table's converted copy must not stay in the cache
            if t.mapped_from != t.path and exc.path == os.fspath(t.path):
                t.mapped_from.unlink(missing_ok=True)
        raise
    release_arrow_memory()  # the encodings were transient
    return index


def _build_pair_index(tables: list[TrainTable]) -> PairIndex:
    """Vectorised index (Arrow dictionary encoding + numpy scatter, chunk by chunk, so the
    transient memory is one chunk's worth); validates (xling_id, lang) uniqueness and that every
    pair belongs to one source."""
    if not tables:
        raise InputError(None, "DATA", "no training table given")
    encoded = [t.table.column("xling_id").dictionary_encode() for t in tables]
    dictionaries = [_dictionary(e) for e in encoded]
    uniq, langs, sources = _vocabularies(tables, dictionaries)
    num_pairs, num_langs = len(uniq), len(langs)
    starts = np.cumsum([0] + [t.num_rows for t in tables], dtype=np.int64)
    index_type = np.int32 if starts[-1] < np.iinfo(np.int32).max else np.int64
    rows = np.full(num_pairs * num_langs, -1, dtype=index_type)
    pair_source = np.full(num_pairs, -1, dtype=np.int32)
    for k, t in enumerate(tables):
        to_pair = _positions(dictionaries[k], uniq)
        lang_enc = t.table.column("lang").dictionary_encode()
        to_lang = _positions(_dictionary(lang_enc), pa.array(langs, pa.string()))
        if t.has_source:
            source_enc = t.table.column("source").dictionary_encode()
            to_source = _positions(_dictionary(source_enc), pa.array(sources, pa.string()))
            source_chunks = source_enc.chunks
        else:
            source_chunks = None
        offset = int(starts[k])
        for c, chunk in enumerate(encoded[k].chunks):
            n = len(chunk)
            if n == 0:
                continue
            pair = to_pair[_indices(chunk)]
            lang = to_lang[_indices(lang_enc.chunk(c))]
            global_rows = np.arange(offset, offset + n, dtype=index_type)
            r = _first_clash(rows, pair.astype(np.int64) * num_langs + lang, global_rows)
            if r is not None:
                raise InputError(
                    t.path, "xling_id",
                    f"({uniq[int(pair[r])].as_py()!r}, lang {langs[int(lang[r])]!r}) appears more than once "
                    f"(row {offset - int(starts[k]) + r})",
                )
            if source_chunks is not None:
                src = to_source[_indices(source_chunks[c])]
            else:
                src = np.full(n, sources.index(t.name), dtype=np.int32)
            r = _first_clash(pair_source, pair, src, overwrite_ok=True)
            if r is not None:
                raise InputError(
                    t.path, "source", f"xling_id {uniq[int(pair[r])].as_py()!r} has rows in more than one source"
                )
            offset += n
    return PairIndex(tables=list(tables), langs=tuple(langs), sources=tuple(sources),
                     rows=rows.reshape(num_pairs, num_langs), pair_source=pair_source, table_starts=starts)


def _vocabularies(tables: list[TrainTable], dictionaries: list[pa.Array]) -> tuple[pa.Array, list, list]:
    """(the sorted distinct xling_ids, the sorted languages, the sorted source names)."""
    import pyarrow.compute as pc

    if len(tables) == 1:
        uniq = dictionaries[0]
    else:
        uniq = pc.unique(pa.chunked_array([d.cast(pa.large_string()) for d in dictionaries], pa.large_string()))
    uniq = uniq.take(pc.sort_indices(uniq))  # dense ids follow the sorted xling_id strings
    langs = sorted(set().union(*(pc.unique(t.table.column("lang")).to_pylist() for t in tables)))
    sources = sorted(
        set().union(*(pc.unique(t.table.column("source")).to_pylist() if t.has_source else [t.name] for t in tables))
    )
    return uniq, langs, sources


def _first_clash(target: np.ndarray, key: np.ndarray, values: np.ndarray, overwrite_ok: bool = False) -> int | None:
    """Scatter ``target[key] = values``; the first position whose key was already set (to another
    value when ``overwrite_ok``) or is repeated with another value in ``key``, else None."""
    before = target[key]
    target[key] = values
    taken = (before >= 0) & (before != values) if overwrite_ok else before >= 0
    clash = np.flatnonzero(taken | (target[key] != values))
    return int(clash[0]) if clash.size else None


def _dictionary(encoded: pa.ChunkedArray) -> pa.Array:
    # ChunkedArray.dictionary_encode shares one dictionary between all chunks
    return encoded.chunk(0).dictionary


def _indices(chunk) -> np.ndarray:
    return chunk.indices.to_numpy(zero_copy_only=False)


def _positions(values: pa.Array, sorted_set: pa.Array) -> np.ndarray:
    """For each of ``values`` (distinct), its position in ``sorted_set`` (which holds them all)."""
    import pyarrow.compute as pc

    if values.type != sorted_set.type:
        sorted_set = sorted_set.cast(values.type)
    return pc.index_in(values, value_set=sorted_set).to_numpy(zero_copy_only=False).astype(np.int32)
