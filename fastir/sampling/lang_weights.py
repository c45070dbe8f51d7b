"""``--lang-weights en=2,de=1``: the one parser of the option's text and the one check of its weights.

``fastir train``, ``fastir experiment`` and ``fastir sample`` parse the option with
:func:`parse_lang_weights` (through the options generated from :class:`fastir.train.config.TrainConfig`);
:class:`fastir.sampling.sampler.BatchSampler` checks weights given in Python with
:func:`check_lang_weights`, so both paths refuse the same values with the same words. Whether each
language is in the data is the sampler's check (it needs the tables). Imports nothing heavy: the
CLI builds its options from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fastir.core.errors import InputError
from fastir.core.names import check_lang

OPTION = "--lang-weights"
SYNTAX = "LANG=WEIGHT pairs such as en=2,de=1"


def parse_lang_weights(text: str | None) -> dict[str, float] | None:
    """``"en=2, de=1"`` -> ``{"en": 2.0, "de": 1.0}``; None or an empty (or blank) text -> None (not
    given: uniform weights). Refused: an empty pair (a stray or trailing comma), a pair that is not
    ``LANG=WEIGHT`` (no ``=``, no language, two ``=``), a language listed twice, and whatever
    :func:`check_lang_weights` refuses."""
    if text is None or not text.strip():
        return None
    weights: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            raise InputError(None, OPTION, f"empty pair in {text!r} (a stray comma?): expected {SYNTAX}")
        lang, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not lang or "=" in value:
            raise InputError(None, OPTION, f"expected {SYNTAX}, found {pair.strip()!r}")
        if lang in weights:
            raise InputError(None, OPTION, f"language {lang!r} is listed twice")
        weights[lang] = value
    return check_lang_weights(weights)


def check_lang_weights(weights: Mapping) -> dict[str, float]:
    """``weights`` as floats, each language a valid code with a finite weight >= 0, at least one > 0."""
    checked = {}
    for lang, value in weights.items():
        check_lang(lang, None, OPTION)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(None, OPTION, f"weight of {lang!r} is not a number: {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise InputError(None, OPTION, f"weight of {lang!r} must be finite and >= 0, found {value!r}")
        checked[lang] = number
    if not any(w > 0 for w in checked.values()):
        raise InputError(None, OPTION, "every language has weight 0")
    return checked
