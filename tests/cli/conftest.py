"""Small inputs for every command, built once per session (tests copy what they write beside)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import make_lareqa_lang, make_train_rows, write_arrow, write_test_run  # noqa: E402

LANGS = ("aa", "bb", "cc")


def tiny_run(root: Path, name: str, seed: int) -> Path:
    """3 languages x 6 xling ids; the gold of a query is its xling's candidate in every language."""
    rng = np.random.default_rng(seed)
    q_langs, c_langs, qrels = [], [], []
    for lang in LANGS:
        c_langs += [lang] * 8
    for lang in LANGS:
        for x in range(6):
            qrels += [(len(q_langs), other * 8 + x) for other in range(len(LANGS))]
            q_langs.append(lang)
    return write_test_run(root, q_emb=rng.standard_normal((len(q_langs), 8)), q_langs=q_langs,
                          c_emb=rng.standard_normal((len(c_langs), 8)), c_langs=c_langs, qrels=qrels, name=name,
                          meta={"dataset_checksum": "tiny-checksum"})


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Paths of: two run dirs with per-query scores (score_a, score_b), a LAReQA dir, train tables."""
    from fastir.cli import main

    root = tmp_path_factory.mktemp("cli_inputs")
    paths = {"run": tiny_run(root, "run_a", 0), "run_b": tiny_run(root, "run_b", 1)}
    for key, run in (("score_a", paths["run"]), ("score_b", paths["run_b"])):
        paths[key] = root / f"{key}"
        assert main(["score", str(run), "--out", str(paths[key]), "--per-query", "--format", "json"]) == 0
    lareqa = root / "lareqa"
    lareqa.mkdir()
    for i, lang in enumerate(("aa", "bb")):
        (lareqa / f"{lang}.json").write_text(json.dumps(make_lareqa_lang(lang, 3, seed=i)), encoding="utf-8")
    paths["lareqa"] = lareqa
    rows = make_train_rows(pairs=range(12))
    paths["train_arrow"] = Path(write_arrow(root / "train.arrow", rows))
    paths["train_jsonl"] = root / "train.jsonl"
    paths["train_jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    paths["import"] = _import_inputs(root / "import")
    paths["ranked"] = _ranked_inputs(root / "ranked")
    return paths


def _ranked_inputs(d: Path) -> Path:
    """``fastir score-run`` / ``preference-run`` inputs: a TREC run and qrels over ids ``lang::id``
    (languages and parallel groups by the ``prefix::`` rule)."""
    d.mkdir()
    queries = [f"{lang}::q{n}" for n in (1, 2) for lang in ("aa", "bb")]
    docs = [f"{lang}::d{n}" for n in (1, 2, 3) for lang in ("aa", "bb")]
    lines = [f"{q} Q0 {doc} {r + 1} {10 - r} sys\n" for i, q in enumerate(queries)
             for r, doc in enumerate(docs[i % 2:] + docs[:i % 2])]
    (d / "run.trec").write_text("".join(lines), encoding="utf-8")
    (d / "qrels.txt").write_text("".join(f"{q} 0 {lang}::d{q[-1]} 1\n" for q in queries for lang in ("aa", "bb")),
                                 encoding="utf-8")
    return d


def _import_inputs(d: Path) -> Path:
    """``fastir import`` inputs: q.parquet, c.npy + c.ids.parquet, qrels.txt."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d.mkdir()
    rng = np.random.default_rng(4)
    pq.write_table(pa.table({"id": ["q1", "q2"], "lang": ["aa", "bb"],
                             "embedding": pa.array(list(rng.standard_normal((2, 4))), pa.list_(pa.float32()))}),
                   d / "q.parquet")
    np.save(d / "c.npy", rng.standard_normal((2, 4)).astype(np.float32))
    pq.write_table(pa.table({"id": ["d1", "d2"], "lang": ["aa", "bb"]}), d / "c.ids.parquet")
    (d / "qrels.txt").write_text("q1 0 d1 1\nq1 0 d2 1\nq2 0 d2 2\nq2 0 d1 0\n")
    return d


WRITERS = ("score", "score-trec", "compare", "data-export", "data-to-train", "sample", "import", "embed", "train",
           "experiment", "preference", "score-run", "preference-run")


def command(name: str, inputs: dict, out: Path) -> list[str]:
    """argv of command ``name`` (one of :data:`WRITERS`) writing to ``out``, each as small and fast as
    it gets. embed, train and experiment also need ``inputs["embed_model"]`` / ``inputs["train_model"]``
    (the tiny BERTs of tests/conftest.py)."""
    models = {
        "embed": lambda: ["embed", "--no-progress", "--dataset", str(inputs["lareqa"]), "--model",
                          inputs["embed_model"], "--out", str(out), "--device", "cpu"],
        "train": lambda: ["train", "--data", str(inputs["train_arrow"]), "--model", inputs["train_model"],
                          "--out", str(out), "--batch-size", "4", "--steps", "2", "--device", "cpu", "--no-progress"],
        "experiment": lambda: ["experiment", "--data", str(inputs["train_arrow"]), "--model", inputs["train_model"],
                               "--out", str(out), "--eval", str(inputs["lareqa"]), "--strategies", "x-y", "--seed", "0",
                               "--steps", "2", "--batch-size", "4", "--max-length", "12", "--store", "fp32",
                               "--samples", "200", "--device", "cpu", "--allow-overlap", "--no-progress"],
    }
    if name in models:
        return models[name]()
    return {
        "score": ["score", str(inputs["run"]), "--out", str(out), "--per-query", "--format", "json"],
        "preference": ["preference", str(inputs["run"]), "--pivot", "aa", "--out", str(out), "--format", "json"],
        "score-run": ["score-run", str(inputs["ranked"] / "run.trec"), "--qrels", str(inputs["ranked"] / "qrels.txt"),
                      "--query-langs", "prefix::", "--doc-langs", "prefix::", "--out", str(out), "--per-query",
                      "--format", "json"],
        "preference-run": ["preference-run", str(inputs["ranked"] / "run.trec"), "--qrels",
                           str(inputs["ranked"] / "qrels.txt"), "--query-langs", "prefix::", "--doc-langs", "prefix::",
                           "--query-groups", "prefix::", "--pivot", "aa", "--out", str(out), "--format", "json"],
        "score-trec": ["score", str(inputs["run"]), "--out", str(out / "scores"), "--trec", str(out / "trec"),
                       "--per-query", "--format", "json"],
        "compare": ["compare", str(inputs["score_a"]), str(inputs["score_b"]), "--samples", "200",
                    "--out", str(out), "--format", "json"],
        "data-export": ["data", "export", str(inputs["lareqa"]), str(out)],
        "data-to-train": ["data", "to-train", str(inputs["lareqa"]), str(out.with_suffix(".jsonl"))],
        "sample": ["sample", str(inputs["train_arrow"]), "--batch-size", "4", "--steps", "3",
                   "--out", str(out.with_suffix(".jsonl"))],
        "import": ["import", "--queries", str(inputs["import"] / "q.parquet"), "--candidates",
                   str(inputs["import"] / "c.npy"), "--qrels", str(inputs["import"] / "qrels.txt"), "--out", str(out)],
    }[name]


def one_line_error(err: str, *needles: str) -> str:
    """The one line ``error: ...`` that is all of ``err`` (stderr), holding each of ``needles``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err
    return lines[0]


def refused(capsys, argv, *needles: str) -> str:
    """Run ``fastir ARGV``: exit 2 and one ``error:`` line holding each of ``needles``."""
    from fastir.cli import main

    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    return one_line_error(capsys.readouterr().err, *needles)


@pytest.fixture
def argv_of(inputs):
    """``argv_of(name, out)``: the argv of writing command ``name`` (see :func:`command`) to ``out``."""
    return lambda name, out: command(name, inputs, out)
