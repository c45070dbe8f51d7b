"""Runs grouped into systems (system@seed), baselines and the compared pairs."""

from __future__ import annotations

import pytest

from fastir.compare.systems import comparison_pairs, group_systems, parse_run_name, resolve_baselines
from fastir.core.errors import InputError


def test_parse_run_name():
    assert parse_run_name("hybrid@1") == ("hybrid", 1)
    assert parse_run_name("x-x-mono@012") == ("x-x-mono", 12)
    assert parse_run_name("base") == ("base", None)
    assert parse_run_name("run@home") == ("run@home", None)  # not an integer seed: a plain name
    assert parse_run_name("a@b@3") == ("a@b", 3)


def test_group_systems_keeps_first_appearance_and_orders_seeds():
    systems = group_systems(["base", "hybrid@2", "x-y@0", "hybrid@0", "x-y@1", "hybrid@1"])
    assert [s.name for s in systems] == ["base", "hybrid", "x-y"]
    hybrid = systems[1]
    assert hybrid.seeds == (0, 1, 2) and hybrid.runs == (3, 5, 1) and hybrid.run_names == ("hybrid@0", "hybrid@1",
                                                                                              "hybrid@2")
    assert systems[0].seeds == (None,) and systems[0].n_seeds == 1


@pytest.mark.parametrize("names, message", [
    (["hybrid@1", "base", "hybrid@1"], "given twice"),
    (["hybrid@1", "hybrid@01"], "given twice"),
    (["hybrid", "hybrid@1"], "both with and without a seed"),
])
def test_group_systems_refuses_ambiguous_names(names, message):
    with pytest.raises(InputError, match=message):
        group_systems(names)


def test_resolve_baselines():
    systems = group_systems(["base", "x-x-mono@0", "x-x-mono@1", "x-y@5", "hybrid@0", "hybrid@1"])
    assert resolve_baselines(systems, None, None) == [0]
    assert resolve_baselines(systems, "x-y", None) == [2]
    assert resolve_baselines(systems, "x-y@5", None) == [2]  # a one-seed system by its run name
    assert resolve_baselines(systems, None, ["x-x-mono", "x-y"]) == [1, 2]
    with pytest.raises(InputError, match="not one of the systems"):
        resolve_baselines(systems, None, ["x-x-mono", "mono"])
    with pytest.raises(InputError, match="not one of the systems"):
        resolve_baselines(systems, "hybrid@0", None)  # a seed of a several-seed system is no baseline
    with pytest.raises(InputError, match="given twice"):
        resolve_baselines(systems, None, ["x-y", "x-y"])
    with pytest.raises(InputError, match="not both"):
        resolve_baselines(systems, "x-y", ["base"])


def test_comparison_pairs():
    assert comparison_pairs(3, [0]) == [(1, 0), (2, 0)]
    # every system against each baseline; the two baselines once (the later against the earlier)
    assert comparison_pairs(4, [1, 2]) == [(0, 1), (2, 1), (3, 1), (0, 2), (3, 2)]
