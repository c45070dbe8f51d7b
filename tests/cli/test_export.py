"""``fastir export mteb``: the command writes what fastir.interop.mteb_results builds, and prints its path;
bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json

import numpy as np

from fastir.cli import main
from fastir.eval.report import write_scores
from fastir.eval.score import score_run


def test_export_mteb_writes_the_task_result_and_refuses_in_one_line(tmp_path, make_run, capsys, monkeypatch):
    run = make_run(tmp_path, q_emb=np.eye(3, dtype=np.float32), q_langs=["de", "en", "de"],
                   c_emb=np.eye(3, dtype=np.float32), c_langs=["de", "en", "en"], qrels=[(0, 0), (1, 1), (1, 0), (2, 2)])
    write_scores(score_run(run, metrics="map,ndcg@10"), run / "scores")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "mteb", str(run), "--task", "XQuADRetrieval"]) == 0
    assert capsys.readouterr().out == "wrote XQuADRetrieval.json\n"
    written = json.loads((tmp_path / "XQuADRetrieval.json").read_text())
    assert [e["hf_subset"] for e in written["scores"]["validation"]] == ["de-de", "de-en", "de-all", "en-de",
                                                                           "en-en", "en-all"]
    for args, message in ((["--task", "Nope"], "error: --task: unknown MTEB task 'Nope'"),
                          (["--task", "MLQARetrieval", "--out", "XQuADRetrieval.json", "--overwrite"],
                           "error: XQuADRetrieval.json: task_name: holds the results of the MTEB task XQuADRetrieval")):
        assert main(["export", "mteb", str(run / "scores"), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(message), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["XQuADRetrieval.json", "run"]
