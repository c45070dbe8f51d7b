"""Text from data never drives the terminal or breaks a figure (issue 31, items 11 and 16): control
characters in run.json's names are printed as escapes, a newline or a very long name draws."""

from __future__ import annotations

import json

from fastir.cli import main
from tests.cli.conftest import refused


def _run_with_meta(make_run, tmp_path, **meta):
    path = make_run(tmp_path, q_emb=[[1, 0], [0, 1]], q_langs=["de", "en"], c_emb=[[1, 0], [0, 1]],
                    c_langs=["de", "en"], qrels=[(0, 0), (0, 1), (1, 0), (1, 1)])
    run_json = path / "run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), **meta}))
    return path


def test_escape_sequences_in_run_json_are_printed_as_escapes(make_run, tmp_path, capsys):
    run = _run_with_meta(make_run, tmp_path, model="\u001b]0;owned\u0007", dataset="d\u202eata")
    assert main(["score", str(run), "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;owned\\x07" in out and "d\\u202eata" in out


def test_a_newline_or_a_huge_name_still_draws_the_heatmap(make_run, tmp_path, capsys):
    from fastir.eval.heatmap import heatmap_title
    from fastir.eval.score import score_run

    for i, model in enumerate(("line one\nline two", "m" * 5_000_000)):
        run = _run_with_meta(make_run, tmp_path / str(i), model=model)
        assert main(["score", str(run), "--out", str(tmp_path / f"s{i}")]) == 0
        assert (tmp_path / f"s{i}" / "heatmap.png").stat().st_size > 0
        title = heatmap_title(score_run(run))
        assert "\n" not in title and len(title) <= 120



def test_bad_text_in_every_kind_of_input_is_one_line(tmp_path, capsys, make_run):
    # issue 31, item 7: not UTF-8, lone surrogates, JSON nested 200,000 deep
    from tests.conftest import make_lareqa_lang
    from tests.data.test_beir import make_single

    beir = make_single(tmp_path / "beir")
    (beir / "qrels" / "test.tsv").write_bytes((beir / "qrels" / "test.tsv").read_bytes() + b"q3\td1\t\xff\n")
    refused(capsys, ["data", "show", beir], "test.tsv: line 6: not UTF-8")
    beir = make_single(tmp_path / "beir2")
    with open(beir / "corpus.jsonl", "a") as fh:
        fh.write('{"_id": "d9", "text": "w\\ud800", "lang": "en"}\n')
    refused(capsys, ["data", "export", beir, tmp_path / "out"], "corpus.jsonl: line 5: a lone surrogate escape (")
    lareqa = tmp_path / "lareqa"
    lareqa.mkdir()
    doc = json.dumps(make_lareqa_lang("aa", 2, seed=0))
    (lareqa / "aa.json").write_text(doc.replace('"version"', '"v\\udc00"', 1))
    refused(capsys, ["data", "show", lareqa], "aa.json: json: a lone surrogate")
    (lareqa / "aa.json").write_text("[" * 200_000 + "]" * 200_000)
    refused(capsys, ["data", "show", lareqa], "aa.json: json: JSON nested too deeply")
    run = _run_with_meta(make_run, tmp_path / "r")
    (run / "run.json").write_text('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    refused(capsys, ["score", run, "--out", tmp_path / "s"], "run.json: json: JSON nested too deeply")
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    refused(capsys, ["compare", exp], "results.json: json: JSON nested too deeply")
    assert not (tmp_path / "out").exists() and not (tmp_path / "s").exists()
