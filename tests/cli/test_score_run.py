"""``fastir score-run`` end to end: outputs, summary.json's tie mode and depths, `fastir compare` across two
systems' ranked runs (BM25 vs dense), and bad input as one line with file and line, exit 2, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastir.cli import main
from tests.cli.conftest import refused


@pytest.fixture
def two_systems(tmp_path):
    """Two TREC runs of 30 queries (en, de) over en/de documents, tied scores, and graded qrels."""
    rng = np.random.default_rng(0)
    docs = [f"{'en' if i % 2 else 'de'}:d{i}" for i in range(60)]
    qrels = []
    for q in range(30):
        qid = f"{'en' if q % 2 else 'de'}:q{q}"
        qrels += [f"{qid} 0 {docs[(q + j) % 60]} {1 + j % 2}\n" for j in range(3)]
    (tmp_path / "qrels.txt").write_text("".join(qrels))
    for name in ("bm25", "dense"):
        lines = []
        for q in range(30):
            qid = f"{'en' if q % 2 else 'de'}:q{q}"
            for rank, d in enumerate(rng.choice(60, 20, replace=False), start=1):
                lines.append(f"{qid} Q0 {docs[d]} {rank} {20 - rank // 3} {name}\n")
        (tmp_path / f"{name}.run").write_text("".join(lines))
    return tmp_path


def argv(root, run, *more):
    return ["score-run", str(root / run), "--qrels", str(root / "qrels.txt"), "--query-langs", "prefix::",
            "--doc-langs", "prefix::", *more]


def test_outputs_summary_and_compare(two_systems, capsys):
    root = two_systems
    for name in ("bm25", "dense"):
        assert main(argv(root, f"{name}.run", "--per-query", "--ties", "expected", "--metrics", "map,ndcg@10")) == 0
    out = root / "bm25.run.scores"
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.png", "pairs.csv", "pairs.parquet", "per_query.parquet",
                                                     "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ties"] == "expected" and summary["run"]["ties"] == "expected"
    assert set(summary["depth"]) == {"de-de", "de-en", "de-all", "en-de", "en-en", "en-all"}
    assert all(d["max"] <= 20 and d["relevant_beyond_depth"] >= 0 for d in summary["depth"].values())
    assert summary["depth"]["en-all"]["max"] == 20
    capsys.readouterr()
    assert main(["compare", str(out), str(root / "dense.run.scores"), "--metrics", "map,ndcg@10",
                 "--samples", "200", "--format", "json"]) == 0
    assert "dense" in capsys.readouterr().out


def test_bias_suite_in_outputs_and_compare(two_systems, capsys):
    """The language-bias suite of two systems' ranked runs: pairs.csv, summary.json (order, depths below k, exposure)
    and `fastir compare` pairing their per-query same_lang@10 and peer_nonrel@5."""
    root = two_systems
    bias = "map,same_lang@10,lang_jsd@10,peer_nonrel@5,peer@40"
    for name in ("bm25", "dense"):
        assert main(argv(root, f"{name}.run", "--per-query", "--ties", "trec_eval", "--metrics", bias)) == 0
    out = root / "bm25.run.scores"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bias"]["order"].startswith("score descending, then document id descending")
    assert summary["bias"]["queries_depth_below_k"]["peer@40"] == {"de-all": 15, "en-all": 15}  # 20 lines a query
    assert summary["bias"]["queries_depth_below_k"]["same_lang@10"] == {"de-all": 0, "en-all": 0}
    assert 0 <= summary["summary"]["same_lang@10"]["macro"] <= 1
    assert set(summary["summary"]["lang_exposure@10"]["en"]) == {"de", "en"}
    header, *rows = (out / "pairs.csv").read_text().splitlines()
    assert "same_lang@10" in header and "peer@40" in header and len(rows) == 6
    capsys.readouterr()
    assert main(["compare", str(out), str(root / "dense.run.scores"), "--metrics", "same_lang@10,peer_nonrel@5",
                 "--samples", "200", "--format", "json"]) == 0
    report = capsys.readouterr().out
    assert "same_lang@10" in report and "peer_nonrel@5" in report


def test_bad_input_is_one_line_and_writes_nothing(two_systems, capsys):
    root = two_systems
    text = (root / "bm25.run").read_text().splitlines()
    text[41] = text[41].replace("en:d", "fr:d")  # a document no qrels language holds: pooled only, fine
    fields = text[7].split(" ")
    text[7] = " ".join([*fields[:2], "nolang", *fields[3:]])
    (root / "bad.run").write_text("\n".join(text) + "\n")
    refused(capsys, argv(root, "bad.run"), "bad.run: line 8", "no language before ':'")
    refused(capsys, argv(root, "bm25.run", "--ties", "sometimes"), "--ties")
    lines = (root / "bm25.run").read_text().splitlines()
    fields = lines[40].split(" ")
    lines[40] = " ".join([*fields[:2], "fr:d99", *fields[3:]])  # a language no qrels or map holds
    (root / "fr.run").write_text("\n".join(lines) + "\n")
    refused(capsys, argv(root, "fr.run", "--metrics", "map,same_lang@10"), "fr.run: line 41",
            "is in none of the pool's languages (de, en")
    refused(capsys, argv(root, "bm25.run", "--metrics", "map,peer@10", "--ties", "expected"),
            "--ties: peer@10 ranks the top k in its own order")
    assert not any((root / f"{name}.run.scores").exists() for name in ("bad", "bm25", "fr"))
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


def test_score_run_process_imports_neither_pandas_nor_matplotlib(two_systems):
    """pyarrow's pandas probe costs ~0.5 s of a process; every output is written without it."""
    import subprocess
    import sys

    code = ("import sys; from fastir.cli import main; rc = main(sys.argv[1:]); "
            "heavy = sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules); "
            "print('heavy:', heavy); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *argv(two_systems, "bm25.run", "--per-query", "--format",
                                                            "csv")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("heavy: []"), proc.stdout[-200:]
