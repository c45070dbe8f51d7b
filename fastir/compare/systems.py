"""Runs grouped into *systems*: the seeds of one training recipe, and the baselines they are tested against.

A run named ``system@seed`` (``hybrid@1``; the seed a non-negative integer) is seed ``seed`` of
system ``system``; any other name is a one-seed system of that name (a deterministic run such as the
untrained ``base``). Systems keep the order in which their first run was given; a system's runs are
ordered by seed. Baselines are system names (a one-seed system may also be named by its run name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastir.core.errors import InputError

_SEEDED = re.compile(r"^(?P<system>.+)@(?P<seed>[0-9]+)$")


@dataclass(frozen=True)
class System:
    """One system: its name, its runs (indices into the run list) and their seeds (``None``: no seed)."""

    name: str
    runs: tuple[int, ...]
    seeds: tuple[int | None, ...]
    run_names: tuple[str, ...]

    @property
    def n_seeds(self) -> int:
        return len(self.runs)


def parse_run_name(name: str) -> tuple[str, int | None]:
    """``"hybrid@1"`` -> ``("hybrid", 1)``; a name without an integer ``@seed`` -> ``(name, None)``."""
    m = _SEEDED.match(name)
    return (m["system"], int(m["seed"])) if m else (name, None)


def group_systems(names: list[str]) -> list[System]:
    """Group run names into systems; refuses a (system, seed) given twice or a system named both with
    and without a seed."""
    members: dict[str, list[tuple[int | None, int, str]]] = {}
    for i, name in enumerate(names):
        system, seed = parse_run_name(name)
        runs = members.setdefault(system, [])
        for other_seed, j, other in runs:
            if (seed is None) != (other_seed is None):
                raise InputError(None, "--names", f"{system!r} is named both with and without a seed "
                                 f"({other!r} and {name!r}): name every run of a system system@seed")
            if seed == other_seed:
                raise InputError(None, "--names", f"{name!r} given twice (runs {j + 1} and {i + 1}, as "
                                 f"{other!r} and {name!r}): each seed of a system once")
        runs.append((seed, i, name))
    systems = []
    for system, runs in members.items():
        runs.sort(key=lambda t: (-1 if t[0] is None else t[0]))
        systems.append(System(system, tuple(j for _, j, _ in runs), tuple(s for s, _, _ in runs),
                              tuple(n for _, _, n in runs)))
    return systems


def resolve_baselines(systems: list[System], baseline: str | None, baselines: list[str] | None) -> list[int]:
    """Indices of the baseline systems, in the order given (default: the first system)."""
    if baseline is not None and baselines:
        raise InputError(None, "--baseline", "give --baseline or --baselines, not both")
    asked = list(baselines) if baselines else ([baseline] if baseline is not None else [])
    if not asked:
        return [0]
    index = {s.name: i for i, s in enumerate(systems)}
    index.update({s.run_names[0]: i for i, s in enumerate(systems) if s.n_seeds == 1})
    field = "--baselines" if baselines else "--baseline"
    out: list[int] = []
    for name in asked:
        if name not in index:
            raise InputError(None, field, f"{name!r} is not one of the systems {[s.name for s in systems]}")
        if index[name] in out:
            raise InputError(None, field, f"{name!r} given twice")
        out.append(index[name])
    return out


def comparison_pairs(n_systems: int, baselines: list[int]) -> list[tuple[int, int]]:
    """(system, baseline) pairs: every system against every baseline, baseline-major; two baselines
    are compared once (the later one against the earlier)."""
    pairs = []
    for bi, b in enumerate(baselines):
        for s in range(n_systems):
            if s != b and s not in baselines[:bi]:
                pairs.append((s, b))
    return pairs
