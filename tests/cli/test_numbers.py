"""Numbers at the command line and in input files: ASCII digits within bounds, else one line, exit 2
(issue 31, items 8 and 9). The parsing itself: tests/core/test_numbers.py."""

from __future__ import annotations

import pytest

from tests.cli.conftest import refused
from tests.data.test_beir import make_single



@pytest.mark.parametrize("grade", ["٣", "1_0", "99999999999999999999999", "²"])
def test_beir_grades_are_ascii_digits_within_int32(tmp_path, capsys, grade):
    root = make_single(tmp_path / "beir")
    qrels = root / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("q1\td1\t2", f"q1\td1\t{grade}"))
    refused(capsys, ["data", "show", root], "test.tsv: line 2: score:")
    refused(capsys, ["data", "export", root, tmp_path / "out"], "test.tsv: line 2: score:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seeds", ["²", "٣", "1_0", "0,-1", "99999999999999999999"])
def test_seeds_are_ascii_digits(tmp_path, capsys, seeds, train_tiny_bert, inputs):
    refused(capsys, ["experiment", "--data", inputs["train_arrow"], "--model", train_tiny_bert,
                       "--out", tmp_path / "exp", "--eval", inputs["lareqa"], "--seeds", seeds], "--seeds:")
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("argv_tail, needle", [
    (["--metrics", "recall@99999999999999999999"], "recall@99999999999999999999"),
    (["--metrics", "map,recall@٣"], "K must be an integer from 1 to 2147483647 in ASCII digits"),
    (["--k", "1,٥"], "--k: expected an integer in ASCII digits"),
    (["--timeout", "inf"], "--timeout: expected a decimal number in ASCII"),
    (["--timeout", "1e300"], "--timeout: must be positive and at most"),
    (["--trec-depth", "1_0", "--trec", "t"], "--trec-depth: expected an integer in ASCII digits"),
    (["--block-mb", "nan"], "--block-mb:"),
    (["--relevance-threshold", "٢"], "--relevance-threshold: expected an integer in ASCII digits"),
    (["--shard", "٠/2"], "--shard: expected an integer in ASCII digits"),
])
def test_score_options(inputs, tmp_path, capsys, argv_tail, needle):
    refused(capsys, ["score", inputs["run"], "--out", tmp_path / "s", *argv_tail], needle)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("option, value", [("--steps", "٣"), ("--batch-size", "1_6"), ("--lr", "inf"),
                                           ("--seed", "²")])
def test_generated_training_options(tmp_path, capsys, inputs, train_tiny_bert, option, value):
    refused(capsys, ["train", "--data", inputs["train_arrow"], "--model", train_tiny_bert, "--out", tmp_path / "t",
                       option, value], f"{option}:")
    assert not (tmp_path / "t").exists()
