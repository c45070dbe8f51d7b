"""fastir.eval.cells: the cells of ``fastir score`` (kinds, names, display order), ``--pairs`` with
keywords, explicit pairs and hyphenated languages, ``--k`` and comma lists."""

from __future__ import annotations

import itertools

import pytest

from fastir.core.errors import InputError
from fastir.eval.cells import MAX_CUTOFF, POOLED, Cell, all_cells, parse_ks, parse_pairs, split_list

Q = ["de", "en", "zh-cn"]
C = ["de", "en", "zh-cn", "pt-br"]


def test_kinds_and_names():
    assert (Cell("en", "en").kind, Cell("en", "de").kind, Cell("en", POOLED).kind) == ("mono", "cross", "multi")
    assert Cell("zh-cn", "all").name == "zh-cn-all" and POOLED == "all"
    assert Cell("en", "de") == Cell("en", "de") and len({Cell("en", "de"), Cell("en", "de")}) == 1


def test_all_cells_in_display_order():
    cells = all_cells(["a", "b"], ["x", "a"])
    assert [c.name for c in cells] == ["a-x", "a-a", "a-all", "b-x", "b-a", "b-all"]


def _names(spec, q=Q, c=C):
    return [cell.name for cell in parse_pairs(spec, q, c)]


@pytest.mark.parametrize("spec, kind", [("mono", "mono"), ("cross", "cross"), ("multi", "multi")])
def test_keywords_select_a_kind_in_display_order(spec, kind):
    want = [c.name for c in all_cells(Q, C) if c.kind == kind]
    assert _names(spec) == want and want


def test_all_and_mixtures_keep_display_order_without_duplicates():
    assert _names("all") == [c.name for c in all_cells(Q, C)]
    assert _names("en-all, de-en,mono,de-en,,") == ["de-de", "de-en", "en-en", "en-all", "zh-cn-zh-cn"]
    assert _names("multi,all") == _names("all")


def test_hyphenated_languages_are_split_where_both_sides_are_known():
    assert _names("zh-cn-pt-br") == ["zh-cn-pt-br"]
    assert _names("zh-cn-all,en-zh-cn") == ["en-zh-cn", "zh-cn-all"]
    # brute force: every cell's own name parses back to that cell
    for cell in all_cells(Q, C):
        assert parse_pairs(cell.name, Q, C) == [cell]


@pytest.mark.parametrize("spec, message", [
    ("", "--pairs: empty; use all, mono, cross, multi or pairs like en-de,en-all"),
    (" , ", "--pairs: empty"),
    ("english", "--pairs: 'english' is neither all/mono/cross/multi nor a pair like en-de"),
    ("fr-de", "--pairs: unknown query language 'fr' in 'fr-de' (run has de, en, zh-cn)"),
    ("en-fr", "--pairs: unknown candidate language 'fr' in 'en-fr' (run has de, en, zh-cn, pt-br and 'all')"),
    ("pt-br-en", "--pairs: unknown query language 'pt' in 'pt-br-en'"),  # pt-br is no query language
])
def test_bad_pairs(spec, message):
    with pytest.raises(InputError) as info:
        parse_pairs(spec, Q, C)
    assert info.value.field == "--pairs" and str(info.value).startswith(message)


def test_a_keyword_without_any_cell_is_refused():
    with pytest.raises(InputError, match="no cross cell: query languages en, candidate languages en"):
        parse_pairs("cross", ["en"], ["en"])
    with pytest.raises(InputError, match="no mono cell: query languages de, candidate languages none"):
        parse_pairs("mono", ["de"], [])
    assert _names("cross,mono", ["en"], ["en", "de"]) == ["en-en", "en-de"]


def test_split_list():
    assert split_list("en, de,,es ") == ["en", "de", "es"]
    assert split_list("") == [] and split_list(None) is None


@pytest.mark.parametrize("value, want", [
    ("1,5,10", (1, 5, 10)), ("10, 1 ,10,5,", (10, 1, 5)), ([3, 3.0, "2"], (3, 2)), ((100,), (100,)),
    (str(MAX_CUTOFF), (MAX_CUTOFF,)),
])
def test_ks_keep_the_given_order_without_duplicates(value, want):
    assert parse_ks(value) == want


@pytest.mark.parametrize("value, message", [
    ("0", "--k: must be positive, found 0"), ("5,-1", "--k: must be positive, found -1"),
    ("a", "--k: expected an integer in ASCII digits, found 'a'"), ([2.5], "--k: 2.5 is not an integer"), ("1.0", "--k: expected an integer in ASCII digits, found '1.0'"),
    ([None], "--k: None is not an integer"), (",,", "--k: no cutoff given"), ([], "--k: no cutoff given"),
    (str(MAX_CUTOFF + 1), f"--k: must be at most {MAX_CUTOFF}, found {MAX_CUTOFF + 1}"),
])
def test_bad_ks(value, message):
    with pytest.raises(InputError) as info:
        parse_ks(value)
    assert str(info.value) == message


def test_every_subset_of_explicit_pairs_round_trips():
    cells = all_cells(["a", "b"], ["a", "b"])
    for r in range(1, len(cells) + 1):
        for chosen in itertools.combinations(cells, r):
            spec = ",".join(c.name for c in reversed(chosen))
            assert parse_pairs(spec, ["a", "b"], ["a", "b"]) == list(chosen)  # display order, whatever given
