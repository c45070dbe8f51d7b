"""``fastir embed``: run-dir contract, references, resume, torchrun, bad input.

Fixtures (tiny BERT, tiny LAReQA dirs, MiniLM path) live in conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastir.cli import main
from fastir.encoding.embed import EmbedOptions, embed_dataset, work_dir_for
from fastir.encoding.encoder import encode, load_encoder
from fastir.data.lareqa import load_dataset
from fastir.runs.rundir import read_run


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["embed", "--no-progress", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _tables(run_dir) -> dict[str, bytes]:
    return {name: (Path(run_dir) / name).read_bytes() for name in ("queries.arrow", "candidates.arrow", "qrels.arrow")}


def test_minilm_run_matches_sentence_transformers(embed_xquad_mini, minilm_path, tmp_path, capsys):
    """The run dir of MiniLM (mean + Normalize from its folder) vs sentence-transformers encode, --store fp32."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "--dataset", embed_xquad_mini, "--model", minilm_path, "--out", out,
                             "--store", "fp32", "--device", "cpu", "--dtype", "fp32")
    assert code == 0, err
    run = read_run(out)
    ds = load_dataset(embed_xquad_mini)
    assert run.queries.ids == ds.question_id and run.queries.langs == ds.question_lang
    assert run.queries.xling_ids == ds.question_xling_id
    assert run.candidates.ids == ds.candidate_id and run.candidates.langs == ds.candidate_lang
    assert run.qrels_query_id == ds.qrel_query_id and run.qrels_candidate_id == ds.qrel_candidate_id
    m = run.meta
    assert (m["dtype"], m["dim"], m["normalized"], m["pooling"], m["max_length"]) == ("float32", 384, True, "mean", 256)
    assert (m["device"], m["compute_dtype"], m["candidates"], m["langs"]) == ("cpu", "float32", "sentence", ["de", "en"])
    assert m["dataset_checksum"] == ds.checksum and m["fastir_version"]
    st = SentenceTransformer(minilm_path, device="cpu")
    for table, texts in ((run.queries, ds.question_text), (run.candidates, ds.candidate_text)):
        ref = st.encode(texts, convert_to_numpy=True)
        cos = (table.embeddings * ref).sum(axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() >= 0.9999, cos.min()
    assert "wrote" in stdout


def test_auto_dtype_is_fp32_and_says_why_bf16_is_opt_in(embed_xquad_mini, minilm_path, tmp_path, capsys,
                                                         monkeypatch):
    """On a CPU with bf16 matrix instructions (pretended where absent: bf16 then runs emulated)
    --dtype auto still computes in fp32 and run.json says why; --dtype bf16 computes the whole model
    in bf16 within cosine 0.999 of fp32 (bf16-mixed: tests/encoding/test_bf16_mixed.py)."""
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "avx512_bf16 amx_bf16")
    args = ["--dataset", embed_xquad_mini, "--model", minilm_path, "--device", "cpu", "--store", "fp32"]
    assert _run(capsys, *args, "--out", tmp_path / "auto")[0] == 0
    code, stdout, err = _run(capsys, *args, "--out", tmp_path / "bf16", "--dtype", "bf16")
    assert code == 0 and err == "" and "cpu/bfloat16" in stdout, err
    auto, bf16 = read_run(tmp_path / "auto"), read_run(tmp_path / "bf16")
    assert auto.meta["compute_dtype"] == "float32"
    assert auto.meta["compute_dtype_reason"].startswith(
        "auto: fp32; this CPU has AVX512_BF16 and AMX_BF16, but bf16-mixed missed the 0.002 mAP bound")
    assert (bf16.meta["compute_dtype"], bf16.meta["compute_dtype_reason"]) == ("bfloat16", "asked for")
    for side in ("queries", "candidates"):
        a, b = getattr(auto, side).embeddings, getattr(bf16, side).embeddings
        assert not np.array_equal(a, b) and (a * b).sum(axis=1).min() >= 0.999


def test_store_fp16_is_fp32_rounded(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    args = ["--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--batch-tokens", "200"]
    assert _run(capsys, *args, "--out", tmp_path / "f32", "--store", "fp32")[0] == 0
    assert _run(capsys, *args, "--out", tmp_path / "f16")[0] == 0
    f32, f16 = read_run(tmp_path / "f32"), read_run(tmp_path / "f16")
    assert f16.meta["dtype"] == "float16" and f16.queries.embeddings.dtype == np.float16
    assert f16.meta["normalized"] is False and f16.meta["pooling"] == "cls"  # plain HF folder defaults
    np.testing.assert_array_equal(f16.queries.embeddings, f32.queries.embeddings.astype(np.float16))
    np.testing.assert_array_equal(f16.candidates.embeddings, f32.candidates.embeddings.astype(np.float16))


def test_options_reach_the_encoder(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    """Prefixes, pooling, normalisation and sentence+context pairs vs fastir.encode on the same texts."""
    out = tmp_path / "run"
    code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                        "--langs", "bb", "--pooling", "mean", "--normalize", "--query-prefix", "w0 ",
                        "--passage-prefix", "w1 ", "--candidates", "sentence+context", "--max-length", "64",
                        "--store", "fp32")
    assert code == 0, err
    run = read_run(out)
    ds = load_dataset(embed_tiny_dataset, langs=["bb"])
    assert set(run.queries.langs) == {"bb"} and run.meta["langs"] == ["bb"]
    assert (run.meta["query_prefix"], run.meta["passage_prefix"]) == ("w0 ", "w1 ")
    assert (run.meta["candidates"], run.meta["max_length"], run.meta["normalized"]) == ("sentence+context", 64, True)
    enc = load_encoder(embed_tiny_bert, pooling="mean", device="cpu", max_length=64)
    q = encode(ds.question_text, model=enc, prefix="w0 ", normalize=True, batch_tokens=10**6)
    c = encode(ds.candidate_text, model=enc, prefix="w1 ", normalize=True, text_pairs=ds.candidate_context,
               batch_tokens=10**6)
    np.testing.assert_allclose(run.queries.embeddings, q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run.candidates.embeddings, c, rtol=1e-4, atol=1e-5)
    sentence_only = encode(ds.candidate_text, model=enc, prefix="w1 ", normalize=True)
    assert not np.allclose(run.candidates.embeddings, sentence_only, atol=1e-3)


def test_resume_is_byte_identical(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys, monkeypatch):
    import fastir.encoding.embed as embed

    monkeypatch.setattr(embed, "PART_ROWS", 1)  # a part file per batch: the interruption lands mid-window
    base = dict(dataset=embed_tiny_dataset, model=embed_tiny_bert, batch_tokens=120, device="cpu")
    full = embed_dataset(EmbedOptions(out=str(tmp_path / "full"), **base))
    total = full.meta["num_queries"] + full.meta["num_candidates"]
    assert full.encoded == total

    out = tmp_path / "part"

    class Interrupt(Exception):
        pass

    committed = []

    def stop_after_five(side, index):
        committed.append((side, index))
        if len(committed) == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        embed_dataset(EmbedOptions(out=str(out), **base), on_batch=stop_after_five)
    assert not out.exists() and work_dir_for(out).is_dir()
    # without --resume the interrupted run is refused, not silently restarted
    code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                        "--batch-tokens", 120)
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    # resuming with other options is refused too
    code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                        "--batch-tokens", 120, "--pooling", "mean", "--resume")
    assert code == 2 and "pooling" in err and not out.exists()
    # ... and other --langs are blamed on langs (not on the batch counts that follow from them)
    code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                        "--batch-tokens", 120, "--langs", "aa", "--resume")
    assert code == 2 and "plan.json: langs: the interrupted run used ['aa', 'bb']" in err and not out.exists()

    res = embed_dataset(EmbedOptions(out=str(out), resume=True, **base))
    assert 0 < res.encoded < total  # the five committed batches were not encoded again
    assert _tables(out) == _tables(tmp_path / "full")
    assert json.loads((out / "run.json").read_text()) == json.loads((tmp_path / "full" / "run.json").read_text())
    assert not work_dir_for(out).exists()
    # --resume on a finished run has nothing to do
    code, stdout, _ = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                           "--batch-tokens", 120, "--resume")
    assert code == 0 and "already complete" in stdout


def test_overwrite_replaces_run(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out, "--overwrite", "--langs", "aa"]
    code, _, err = _run(capsys, *argv)
    assert code == 0, err
    (out / "scores").mkdir()  # what fastir writes inside a run dir is replaced with it
    code, _, err = _run(capsys, *argv)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["candidates.arrow", "qrels.arrow", "queries.arrow", "run.json"]
    (out / "junk.txt").write_text("x")  # anything else: refused, nothing removed
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "'junk.txt', which this command does not write" in err
    assert (out / "junk.txt").read_text() == "x"


def test_cuda_fallback_is_recorded(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    import torch

    from fastir.encoding.device import COMPUTE_NAMES, choose_dtype

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the fallback path does not apply")
    out = tmp_path / "run"
    code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                        "--device", "cuda", "--langs", "aa")
    assert code == 0
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning:") and "CUDA" in warnings[0]
    meta = read_run(out).meta
    want = COMPUTE_NAMES[choose_dtype("auto", torch.device("cpu"))[0]]  # float32 (auto is fp32 on every CPU)
    assert (meta["device"], meta["compute_dtype"], meta["dtype"]) == ("cpu", want, "float16")


def _bad_cases(tmp_path, model, dataset):
    bare = tmp_path / "bare-model"
    shutil.copytree(model, bare)
    for f in bare.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            f.unlink()
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    return {
        "unknown model path": (["--model", tmp_path / "no-such-model"], "does not exist"),
        "model without tokenizer": (["--model", bare], "tokenizer"),
        "max-length above limit": (["--model", model, "--max-length", "4096"], "above the model's limit"),
        "empty langs": (["--model", model, "--langs", ""], "empty language list"),
        "unknown lang": (["--model", model, "--langs", "zz"], "unknown language"),
        "existing non-empty out": (["--model", model, "--out", full], "not empty"),
        "bad batch tokens": (["--model", model, "--batch-tokens", "0"], "must be positive"),
    }


def test_bad_input_exits_2_with_one_line_and_no_output(embed_tiny_bert, embed_tiny_dataset, tmp_path, capsys):
    for name, (args, message) in _bad_cases(tmp_path, embed_tiny_bert, embed_tiny_dataset).items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        if "--out" not in args:
            args = [*args, "--out", out]
        code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (name, err)
        assert not out.exists() and not work_dir_for(out).exists(), name
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_torchrun_two_cpu_ranks_merge_one_run(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    """torchrun --nproc-per-node 2 (gloo, CPU): each rank encodes its shard; rank 0 writes one run dir."""
    single = tmp_path / "single"
    assert _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", single,
                "--batch-tokens", 150, "--store", "fp32")[0] == 0
    out = tmp_path / "ddp"
    fastir_exe = Path(sys.executable).with_name("fastir")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
         str(fastir_exe), "embed", "--no-progress", "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert,
         "--out", str(out), "--batch-tokens", "150", "--store", "fp32"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1  # only rank 0 reports
    a, b = read_run(single), read_run(out)
    assert b.queries.ids == a.queries.ids and b.candidates.ids == a.candidates.ids
    assert b.qrels_query_id == a.qrels_query_id
    np.testing.assert_allclose(b.queries.embeddings, a.queries.embeddings, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.candidates.embeddings, a.candidates.embeddings, rtol=1e-5, atol=1e-6)
    assert not work_dir_for(out).exists()


def test_a_damaged_work_file_on_resume_is_one_line(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    # issue 31, item 10: pyarrow's ArrowInvalid traceback
    base = dict(dataset=embed_tiny_dataset, model=embed_tiny_bert, batch_tokens=120, device="cpu")
    out = tmp_path / "part"

    class Interrupt(Exception):
        pass

    def stop_after_three(side, index, seen=[]):
        seen.append(index)
        if len(seen) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        embed_dataset(EmbedOptions(out=str(out), **base), on_batch=stop_after_three)
    part = sorted(work_dir_for(out).glob("part-*.arrow"))[0]
    part.write_bytes(part.read_bytes()[:40])  # cut short
    code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", embed_tiny_bert, "--out", out,
                        "--batch-tokens", 120, "--resume")
    assert code == 2 and err.startswith(f"error: {part}: damaged work file (") and err.count("\n") == 1, err
    assert "rerun with --overwrite" in err and not out.exists()


def test_a_pickled_or_truncated_pytorch_model_bin_is_one_line(embed_tiny_dataset, embed_tiny_bert, tmp_path, capsys):
    # issue 31, item 10: UnpicklingError / PytorchStreamReader tracebacks (and no code is run)
    import pickle

    import torch
    from safetensors.torch import load_file

    weights = load_file(str(Path(embed_tiny_bert) / "model.safetensors"))

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    for name, write in (("pickled", lambda f: f.write_bytes(pickle.dumps({"x": Payload()}))),
                        ("truncated", lambda f: (torch.save(weights, f), f.write_bytes(f.read_bytes()[:300])))):
        model = tmp_path / name
        shutil.copytree(embed_tiny_bert, model)
        (model / "model.safetensors").unlink()
        write(model / "pytorch_model.bin")
        code, _, err = _run(capsys, "--dataset", embed_tiny_dataset, "--model", model, "--out", tmp_path / f"r-{name}")
        assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {model}: "), err
        assert not (tmp_path / f"r-{name}").exists()
    assert not (tmp_path / "ran").exists()



def test_work_files_stay_few_whatever_the_batch_size(embed_tiny_dataset, embed_tiny_bert, tmp_path, monkeypatch):
    # issue 31, item 19: one part file per batch left hundreds of thousands of files for a big corpus
    import fastir.encoding.embed as embed

    seen = []
    real = embed.write_part

    def count(path, pieces, store):
        seen.append(len(pieces))
        real(path, pieces, store)

    monkeypatch.setattr(embed, "write_part", count)
    tiny = embed_dataset(EmbedOptions(out=str(tmp_path / "tiny"), dataset=embed_tiny_dataset, model=embed_tiny_bert,
                                      batch_tokens=40, device="cpu"))
    # two sides in one window each: two part files, however many batches the small budget makes
    assert len(seen) == 2 and sum(seen) > 10
    monkeypatch.setattr(embed, "PART_ROWS", 20)
    seen.clear()
    again = embed_dataset(EmbedOptions(out=str(tmp_path / "again"), dataset=embed_tiny_dataset,
                                       model=embed_tiny_bert, batch_tokens=40, device="cpu"))
    rows = tiny.meta["num_queries"] + tiny.meta["num_candidates"]
    assert 2 < len(seen) <= rows // 20 + 2  # one file per PART_ROWS rows (and each side's last)
    assert _tables(tmp_path / "tiny") == _tables(tmp_path / "again")
