"""``--lang-weights``: the one parser (train, experiment, sample) and the one check of the weights."""

from __future__ import annotations

import pytest

from fastir.core.errors import InputError
from fastir.sampling.lang_weights import check_lang_weights, parse_lang_weights

SYNTAX = "expected LANG=WEIGHT pairs such as en=2,de=1"

# (text, the message of the one error line `error: --lang-weights: <message>`); the CLI tests of
# every verb (tests/cli/test_options.py) reuse these
REFUSED = [
    ("en=1,", f"empty pair in 'en=1,' (a stray comma?): {SYNTAX}"),
    (",en=1", f"empty pair in ',en=1' (a stray comma?): {SYNTAX}"),
    ("en=1,,de=2", f"empty pair in 'en=1,,de=2' (a stray comma?): {SYNTAX}"),
    ("en:2", f"{SYNTAX}, found 'en:2'"),
    ("en", f"{SYNTAX}, found 'en'"),
    ("=2", f"{SYNTAX}, found '=2'"),
    ("en=1=2", f"{SYNTAX}, found 'en=1=2'"),
    ("en=1;de=2", f"{SYNTAX}, found 'en=1;de=2'"),
    ("en=1, en=2", "language 'en' is listed twice"),
    ("en=two", "weight of 'en' is not a number: 'two'"),
    ("en=", "weight of 'en' is not a number: ''"),
    ("en=-1", "weight of 'en' must be finite and >= 0, found '-1'"),
    ("en=nan", "weight of 'en' must be finite and >= 0, found 'nan'"),
    ("en=inf,de=1", "weight of 'en' must be finite and >= 0, found 'inf'"),
    ("en=0,de=0", "every language has weight 0"),
    ("e n=1", "invalid language code 'e n': expected 1-32 letters, digits, '_' or '-', "
              "starting with a letter or digit"),
]


@pytest.mark.parametrize("text, expected", [
    ("en=2,de=1", {"en": 2.0, "de": 1.0}),
    (" en = 2 , de=1.5 ", {"en": 2.0, "de": 1.5}),
    ("en=1e-3,zh_hant=0", {"en": 0.001, "zh_hant": 0.0}),
    ("", None),
    ("  ", None),
    (None, None),
])
def test_accepted(text, expected):
    assert parse_lang_weights(text) == expected


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused_naming_the_option(text, message):
    with pytest.raises(InputError) as err:
        parse_lang_weights(text)
    assert (err.value.path, err.value.field, err.value.message) == (None, "--lang-weights", message)


def test_weights_given_in_python_pass_the_same_check():
    assert check_lang_weights({"en": 2, "de": "0.5"}) == {"en": 2.0, "de": 0.5}
    for weights, message in [({"en": None}, "weight of 'en' is not a number: None"),
                             ({"en": -1.0}, "weight of 'en' must be finite and >= 0, found -1.0"),
                             ({}, "every language has weight 0")]:
        with pytest.raises(InputError) as err:
            check_lang_weights(weights)
        assert (err.value.field, err.value.message) == ("--lang-weights", message)
