"""docs/miracl.md runs as written: its bash blocks (all but the download) on a fixture with MIRACL's
release layout (``make_miracl_release`` in conftest.py), with the tiny local BERT for E5; every
per-language and pooled nDCG@10 / Recall@100 equals pytrec_eval on the same full ranking."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MIRACL_LANGS = ("sw", "te", "yo")  # make_miracl_release's languages (tests/conftest.py)

PAGE = Path(__file__).resolve().parent.parent / "docs" / "miracl.md"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def page_commands() -> str:
    """The page's bash blocks in order, the download (it needs the network) left out."""
    blocks = BASH_BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    kept = [b for b in blocks if "huggingface-cli download" not in b]
    assert len(kept) == len(blocks) - 1 == 4, "expected download, settings, convert, embed and score blocks"
    return "set -euo pipefail\n" + "\n".join(kept)


def release_qrels(release: Path, lang: str) -> dict[str, dict[str, int]]:
    """The dev qrels straight from the release files, ids prefixed as fastir names them."""
    qrels: dict[str, dict[str, int]] = {}
    path = release / "miracl" / f"miracl-v1.0-{lang}" / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv"
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, _, docid, grade = line.split()
        qrels.setdefault(f"{lang}:{qid}", {})[f"{lang}:{docid}"] = int(grade)
    return qrels


def pytrec_means(run_dir: Path, release: Path, lang: str, pooled: bool) -> dict[str, float]:
    """nDCG@10 and Recall@100 by pytrec_eval over the full ranking of the ``lang`` queries."""
    import pytrec_eval

    from fastir.runs.rundir import read_run

    run = read_run(run_dir)
    q_rows = [i for i, x in enumerate(run.queries.langs) if x == lang]
    c_rows = [j for j, x in enumerate(run.candidates.langs) if pooled or x == lang]
    scores = (run.queries.embeddings[q_rows].astype(np.float32)
              @ run.candidates.embeddings[c_rows].astype(np.float32).T)
    c_ids = [run.candidates.ids[j] for j in c_rows]
    trec_run = {run.queries.ids[i]: dict(zip(c_ids, map(float, row))) for i, row in zip(q_rows, scores)}
    for row in scores:  # the comparison is exact only without ties
        assert len(np.unique(row)) == len(row)
    qrels = release_qrels(release, lang)
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(trec_run)
    return {"ndcg@10": float(np.mean([v["ndcg_cut_10"] for v in per_query.values()])),
            "recall@100": float(np.mean([v["recall_100"] for v in per_query.values()]))}


@pytest.mark.slow
def test_miracl_page_runs_end_to_end(miracl_release, embed_tiny_bert, tmp_path):
    env = {**os.environ, "MIRACL": str(miracl_release), "LANGS": ",".join(MIRACL_LANGS),
           "DATA": str(tmp_path / "data"), "RUN": str(tmp_path / "run"), "MODEL": embed_tiny_bert,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    assert shutil.which("fastir", path=env["PATH"])
    done = subprocess.run(["bash", "-c", page_commands()], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sw" in done.stdout and "total" in done.stdout  # fastir data show
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(MIRACL_LANGS)

    scores = tmp_path / "run" / "scores"
    with open(scores / "pairs.csv", encoding="utf-8") as fh:
        rows = {(r["query_lang"], r["cand_lang"]): r for r in csv.DictReader(fh)}
    assert set(rows) == {(x, y) for x in MIRACL_LANGS for y in (x, "all")}
    for lang in MIRACL_LANGS:
        assert int(rows[lang, lang]["queries"]) == 5  # the dev topics only, not train's
        for pooled, key in ((False, (lang, lang)), (True, (lang, "all"))):
            want = pytrec_means(tmp_path / "run", miracl_release, lang, pooled)
            for metric, value in want.items():
                assert abs(float(rows[key][metric]) - value) < 1e-12, (key, metric, rows[key][metric], value)
    summary = json.loads((scores / "summary.json").read_text())["summary"]
    for setting, y in (("mono", None), ("multi", "all")):
        per_lang = [float(rows[x, y or x]["ndcg@10"]) for x in MIRACL_LANGS]
        assert abs(summary[setting]["ndcg@10"] - np.mean(per_lang)) < 1e-12
