"""fastir.core.numbers: numbers from text are ASCII digits within bounds (issue 31, items 8 and 9)."""

from __future__ import annotations

import math

import pytest

from fastir.core.errors import InputError
from fastir.core.numbers import INT32_MAX, INT64, parse_float, parse_int


@pytest.mark.parametrize("text, value", [("0", 0), ("7", 7), (" 12 ", 12), ("+3", 3), ("-4", -4), ("007", 7),
                                         (str(INT64[1]), INT64[1]), (str(INT64[0]), INT64[0])])
def test_ascii_integers_are_read(text, value):
    assert parse_int(text, "f") == value


@pytest.mark.parametrize("text", ["٣", "²", "1_0", "1.0", "1e3", "", " ", "0x10", "١٢", "３", "1 2", "+", "inf"])
def test_anything_but_ascii_digits_is_refused(text):
    with pytest.raises(InputError, match="expected an integer in ASCII digits"):
        parse_int(text, "f")


def test_bounds_name_the_file_and_field():
    with pytest.raises(InputError, match=r"^q\.tsv: line 3: score: 99999999999999999999999 is out of range \(0 to "):
        parse_int("99999999999999999999999", "line 3: score", path="q.tsv", lo=0, hi=INT32_MAX)
    with pytest.raises(InputError, match="out of range"):
        parse_int(str(INT64[1] + 1), "f")
    with pytest.raises(InputError, match=r"-1 is out of range \(0 to 5\)"):
        parse_int("-1", "f", lo=0, hi=5)


@pytest.mark.parametrize("text, value", [("1", 1.0), ("-0.5", -0.5), (".5", 0.5), ("5.", 5.0), ("2e-3", 2e-3),
                                         ("1E+2", 100.0)])
def test_ascii_decimals_are_read(text, value):
    assert parse_float(text, "f") == value


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e300000", "1_0.5", "٣.5", "", "0x1p3", "1,5"])
def test_non_finite_or_non_ascii_decimals_are_refused(text):
    with pytest.raises(InputError, match="expected a decimal number in ASCII|out of range"):
        parse_float(text, "--timeout")


def test_float_bounds():
    assert parse_float("1e300", "f") == 1e300
    with pytest.raises(InputError, match="out of range"):
        parse_float("1e300", "--timeout", hi=1e9)
    assert math.isfinite(parse_float("1e308", "f"))
