"""Text from data never drives the terminal or breaks a figure (issue 31, items 11 and 16): control
characters in run.json's names are printed as escapes, a newline or a very long name draws."""

from __future__ import annotations

import json

from fastir.cli import main


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
