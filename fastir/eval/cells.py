"""Evaluation settings (cells) of ``fastir score``: which query language against which candidates.

A cell is (query language X, candidate set S), S one candidate language Y or ``all`` (pooled).
Its kind: ``mono`` for X→X, ``cross`` for X→Y with Y ≠ X, ``multi`` for X→all.
``--pairs`` selects cells: ``all`` (every X→Y and X→all), ``mono``, ``cross``, ``multi``, or a
comma-separated list mixing those keywords and explicit pairs such as ``en-de,en-all``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastir.core.errors import InputError
from fastir.core.numbers import parse_int

POOLED = "all"
KINDS = ("mono", "cross", "multi")
DEFAULT_KS = (1, 5, 10, 20, 100)
# MiB of float32 scores per block of Q·Cᵀ (``--block-mb``).
DEFAULT_BLOCK_MB = 256


@dataclass(frozen=True)
class Cell:
    query_lang: str
    cand_lang: str  # a candidate language, or POOLED

    @property
    def kind(self) -> str:
        if self.cand_lang == POOLED:
            return "multi"
        return "mono" if self.cand_lang == self.query_lang else "cross"

    @property
    def name(self) -> str:
        return f"{self.query_lang}-{self.cand_lang}"


def all_cells(query_langs: list[str], cand_langs: list[str]) -> list[Cell]:
    """Every cell in display order: for each query language, its X→Y cells then X→all."""
    cells = []
    for x in query_langs:
        cells += [Cell(x, y) for y in cand_langs]
        cells.append(Cell(x, POOLED))
    return cells


def split_list(value: str | None) -> list[str] | None:
    """``"en, de,,es"`` -> ``["en", "de", "es"]``; None stays None (option not given)."""
    if value is None:
        return None
    return [x.strip() for x in value.split(",") if x.strip()]


def parse_pairs(spec: str, query_langs: list[str], cand_langs: list[str]) -> list[Cell]:
    """Cells selected by a ``--pairs`` value, in display order; unknown languages raise InputError."""
    everything = all_cells(query_langs, cand_langs)
    chosen: set[Cell] = set()
    items = split_list(str(spec))
    if not items:
        raise InputError(None, "--pairs", "empty; use all, mono, cross, multi or pairs like en-de,en-all")
    for item in items:
        if item == "all":
            chosen.update(everything)
        elif item in KINDS:
            picked = [c for c in everything if c.kind == item]
            if not picked:
                raise InputError(None, "--pairs", f"no {item} cell: query languages {_names(query_langs)}, "
                                                  f"candidate languages {_names(cand_langs)}")
            chosen.update(picked)
        else:
            chosen.add(_parse_pair(item, query_langs, cand_langs))
    return [c for c in everything if c in chosen]


def _parse_pair(item: str, query_langs: list[str], cand_langs: list[str]) -> Cell:
    if "-" not in item:
        raise InputError(None, "--pairs", f"{item!r} is neither all/mono/cross/multi nor a pair like en-de")
    # Languages may contain '-' themselves (zh-cn): accept the split whose both sides are known.
    splits = [(item[:i], item[i + 1:]) for i, ch in enumerate(item) if ch == "-"]
    for x, y in splits:
        if x in query_langs and (y in cand_langs or y == POOLED):
            return Cell(x, y)
    x, y = splits[0]
    if x not in query_langs:
        raise InputError(None, "--pairs", f"unknown query language {x!r} in {item!r} "
                                          f"(run has {_names(query_langs)})")
    raise InputError(None, "--pairs", f"unknown candidate language {y!r} in {item!r} "
                                      f"(run has {_names(cand_langs)} and {POOLED!r})")


MAX_CUTOFF = 2**31 - 1  # ranks are counted in int64 kernels; no collection comes near this


def parse_ks(value) -> tuple[int, ...]:
    """``--k`` as a tuple of distinct positive ints, in the order given ("1,5,10" or an iterable)."""
    raw = [x.strip() for x in value.split(",")] if isinstance(value, str) else list(value)
    ks: list[int] = []
    for x in raw:
        if isinstance(x, str) and not x:
            continue
        if isinstance(x, str):
            k = parse_int(x, "--k")
        elif isinstance(x, int) and not isinstance(x, bool):
            k = x
        elif isinstance(x, float) and x.is_integer():
            k = int(x)
        else:
            raise InputError(None, "--k", f"{x!r} is not an integer")
        if k <= 0:
            raise InputError(None, "--k", f"must be positive, found {k}")
        if k > MAX_CUTOFF:
            raise InputError(None, "--k", f"must be at most {MAX_CUTOFF}, found {k}")
        if k not in ks:
            ks.append(k)
    if not ks:
        raise InputError(None, "--k", "no cutoff given")
    return tuple(ks)


def _names(langs: list[str]) -> str:
    return ", ".join(langs) if langs else "none"
