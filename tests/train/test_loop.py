"""``fastir train`` on the CPU with a tiny BERT and learnable synthetic parallel data.

Fixtures ``train_tiny_bert`` and ``train_table_arrow`` (and the row helpers) live in conftest.py.
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
import torch

from fastir.cli import main
from fastir.core.cpu import FLAGS_ENV, cpu_bf16
from fastir.train.loop import TrainConfig, train


def _cfg(data, model, out, **kw) -> TrainConfig:
    base = dict(data=[data], model=model, out=str(out), strategy="hybrid", batch_size=16, steps=8, lr=1e-3,
                pooling="mean", seed=3, progress=False, precision="fp32")  # auto: see the bf16 tests
    base.update(kw)
    return TrainConfig(**base)


def _log(path: Path, event: str = "train") -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] == event]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(ckpt / "model.safetensors"))


def _run_cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _no_dropout_copy(model: str, dest: Path) -> str:
    shutil.copytree(model, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (dest / "config.json").write_text(json.dumps(cfg))
    return str(dest)


# ------------------------------------------------------------------------------------ learning


def test_loss_falls_and_pooled_map_rises(train_tiny_bert, train_table_arrow, tmp_path):
    out = tmp_path / "run"
    res = train(_cfg(train_table_arrow, train_tiny_bert, out, steps=40, lr=2e-3, eval_data=train_table_arrow,
                     eval_every=20, allow_overlap=True))  # evaluates on its training data, on purpose
    losses = [r["loss"] for r in _log(out / "train.jsonl")]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < np.mean(losses[:4]) - 0.4
    evals = _log(out / "train.jsonl", "eval")
    assert [e["step"] for e in evals] == [0, 20, 40]
    assert evals[0]["eval_queries"] == 144 and evals[0]["eval_candidates"] == 144
    assert evals[-1]["eval_pooled_map"] > evals[0]["eval_pooled_map"] + 0.2
    assert res.eval["eval_pooled_map"] == evals[-1]["eval_pooled_map"]
    first = _log(out / "train.jsonl")[0]
    assert {"loss", "lr", "steps_per_s", "pairs_per_s", "kind"} <= set(first)
    assert first["lr"] == 0.0  # linear warm-up starts at 0 (10% of 40 steps = 4 warm-up steps)
    assert _log(out / "train.jsonl")[4]["lr"] == pytest.approx(2e-3)


def _average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Reference AP: (1/R) sum_k k / rank_k (continuous scores: no ties)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.flatnonzero(np.isin(order, relevant)) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def test_quick_eval_matches_numpy_and_sklearn(train_tiny_bert, train_table_arrow):
    from sklearn.metrics import average_precision_score

    from fastir.encoding.encoder import encode, load_encoder
    from fastir.train.heldout import evaluate, load_eval_set

    es = load_eval_set(train_table_arrow, langs=["aa", "cc"], max_queries=40, seed=1)
    assert len(es.query_ids) == 40 and len(es.candidate_ids) == 96 and set(es.query_langs) <= {"aa", "cc"}
    enc = load_encoder(train_tiny_bert, pooling="mean", device="cpu", dtype="fp32")
    got = evaluate(enc, es, query_prefix="bb ")
    q = encode(es.queries, model=enc, prefix="bb ", normalize=True).astype(np.float64)
    c = encode(es.candidates, model=enc, normalize=True).astype(np.float64)
    cpos = {cid: i for i, cid in enumerate(es.candidate_ids)}
    aps, per_lang = [], {}
    for i, qid in enumerate(es.query_ids):
        rel = np.array([cpos[cc] for qq, cc in zip(es.qrels_query_id, es.qrels_candidate_id) if qq == qid])
        assert len(rel) == 2  # the same xling_id in aa and cc
        ap = _average_precision(q[i] @ c.T, rel)
        assert ap == pytest.approx(average_precision_score(np.isin(np.arange(len(c)), rel), q[i] @ c.T))
        aps.append(ap)
        per_lang.setdefault(es.query_langs[i], []).append(ap)
    assert got["eval_pooled_map"] == pytest.approx(np.mean(aps), abs=1e-6)
    assert got["eval_multi_map"] == pytest.approx(np.mean([np.mean(v) for v in per_lang.values()]), abs=1e-6)
    assert enc.model.training is False  # evaluate restores the mode it found


def test_first_step_loss_matches_an_independent_computation(train_tiny_bert, train_rows, tmp_path):
    """Step 1's logged loss = InfoNCE (numpy, float64) over embeddings from fastir.encode of the
    sampler's first batch, hard negatives and prefixes included (dropout off, weights untouched)."""
    from fastir.encoding.encoder import encode, load_encoder
    from fastir.sampling.sampler import BatchSampler
    from fastir.data.train_table import open_train_table

    make_train_rows, write_arrow = train_rows
    data = write_arrow(tmp_path / "neg.arrow", make_train_rows(negatives=True))
    model = _no_dropout_copy(train_tiny_bert, tmp_path / "model")
    losses = {}
    for hard in (True, False):
        out = tmp_path / f"run-{hard}"
        train(_cfg(data, model, out, steps=1, query_prefix="aa ", passage_prefix="bb ", hard_negatives=hard))
        losses[hard] = _log(out / "train.jsonl")[0]["loss"]

    batch = next(iter(BatchSampler([open_train_table(data)], strategy="hybrid", batch_size=16, seed=3)))
    assert batch.negatives is not None
    enc = load_encoder(model, pooling="mean", device="cpu", dtype="fp32")
    q = encode(batch.queries, model=enc, prefix="aa ", normalize=True).astype(np.float64)
    c_all = encode(batch.passages + batch.negatives, model=enc, prefix="bb ", normalize=True).astype(np.float64)
    for hard, c in ((True, c_all), (False, c_all[:16])):
        logits = q @ c.T / 0.05
        m = logits.max(axis=1)
        want = np.mean(np.log(np.exp(logits - m[:, None]).sum(axis=1)) + m - np.diag(logits))
        assert losses[hard] == pytest.approx(want, rel=1e-5)
    assert losses[True] > losses[False]


# ---------------------------------------------------------------------------------- checkpoints


def test_checkpoint_is_a_model_folder_embed_loads(train_tiny_bert, train_table_arrow, tmp_path):
    from sentence_transformers import SentenceTransformer

    from fastir.encoding.encoder import encode, load_encoder

    out = tmp_path / "run"
    train(_cfg(train_table_arrow, train_tiny_bert, out, steps=4, save_steps=2, query_prefix="q: ",
               passage_prefix="p: "))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["checkpoint-000002", "checkpoint-000004", "final", "train.jsonl"]
    meta = json.loads((out / "final" / "fastir-train.json").read_text())
    assert meta["step"] == 4 and meta["seed"] == 3 and meta["pooling"] == "mean"
    s = meta["settings"]
    assert (s["temperature"], s["weight_decay"], s["strategy"], s["alpha"], s["batch_size"]) == (0.05, 0.01, "hybrid", 0.5, 16)
    assert s["precision"] == "fp32" and s["warmup_steps"] == 0 and s["query_prefix"] == "q: "
    assert meta["sampler"]["format"] == "fastir-sampler/1"
    assert not (out / "final" / "trainer_state").exists()
    assert {"optimizer.pt", "scheduler.pt", "scaler.pt", "rng.pt"} <= {
        p.name for p in (out / "checkpoint-000004" / "trainer_state").iterdir()}
    # every file has the modes of the user's umask (safetensors alone would leave the weights 0600)
    mask = os.umask(0)
    os.umask(mask)
    for path in (out / "checkpoint-000004").rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o777 if path.is_dir() else 0o666) & ~mask, path
    assert (out / "final" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask

    enc = load_encoder(str(out / "final"), device="cpu")
    assert enc.pooling == "mean" and enc.normalize_default
    texts = ["aa f1 f2 t3", "bb f4 t5 f6 f7"]
    ours = encode(texts, model=enc)
    st = SentenceTransformer(str(out / "final"), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, st, atol=1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # the final folder holds the trained weights, not the starting ones
    base = _weights(Path(train_tiny_bert))
    trained = _weights(out / "final")
    assert any(not torch.equal(base[k], trained[k]) for k in trained if k in base)


def test_pooler_checkpoint_makes_embed_ask_for_pooling(train_tiny_bert, train_table_arrow, tmp_path):
    from fastir.encoding.encoder import load_encoder
    from fastir.core.errors import InputError

    out = tmp_path / "run"
    train(_cfg(train_table_arrow, train_tiny_bert, out, steps=2, pooling="pooler"))
    # sentence-transformers has no "pooler" mode: embed must not silently fall back to cls
    with pytest.raises(InputError, match="--pooling"):
        load_encoder(str(out / "final"), device="cpu")
    assert load_encoder(str(out / "final"), pooling="pooler", device="cpu").pooling == "pooler"
    assert json.loads((out / "final" / "fastir-train.json").read_text())["pooling"] == "pooler"


CPU_BF16 = cpu_bf16()
needs_bf16 = pytest.mark.skipif(not CPU_BF16[0], reason=f"bf16 on the CPU: {CPU_BF16[1]}")


@pytest.mark.parametrize("precision,steps", [("fp32", 8), ("fp16", 4), pytest.param("bf16", 4, marks=needs_bf16)])
def test_resume_is_bit_identical(train_tiny_bert, train_table_arrow, tmp_path, precision, steps):
    # Dropout is on (tiny BERT default 0.1): resuming must restore the RNG as well. fp16 on the CPU
    # runs the autocast + GradScaler path, whose scaler state must be restored too.
    half = steps // 2
    full = tmp_path / "full"
    train(_cfg(train_table_arrow, train_tiny_bert, full, steps=steps, save_steps=half, precision=precision))
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / f"checkpoint-{half:06d}", part / f"checkpoint-{half:06d}")
    res = train(_cfg(train_table_arrow, train_tiny_bert, part, steps=steps, save_steps=half, resume=True,
                     precision=precision))
    assert res.start_step == half
    last = f"checkpoint-{steps:06d}"
    meta = json.loads((full / last / "fastir-train.json").read_text())
    assert meta["settings"]["precision"] == precision
    scaler = torch.load(full / last / "trainer_state" / "scaler.pt", weights_only=True)
    assert (scaler.get("scale") is not None) == (precision == "fp16")
    a, b = _weights(full / last), _weights(part / last)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    oa = torch.load(full / last / "trainer_state" / "optimizer.pt", weights_only=True)
    ob = torch.load(part / last / "trainer_state" / "optimizer.pt", weights_only=True)
    for k in oa["state"]:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(oa["state"][k][name], ob["state"][k][name])
    la = [r["loss"] for r in _log(full / "train.jsonl")]
    lb = [r["loss"] for r in _log(part / "train.jsonl")]
    assert la[half:] == lb and len(la) == steps
    assert all(np.isfinite(la))
    if precision == "fp32":
        # the uninterrupted run differs from a run with another seed (the test is not vacuous)
        other = tmp_path / "other"
        train(_cfg(train_table_arrow, train_tiny_bert, other, steps=steps, seed=4))
        c = _weights(other / last)
        assert any(not torch.equal(a[k], c[k]) for k in a)


# ------------------------------------------------------------------------------ bf16 on the CPU

# bf16 autocast against fp32 on the tiny learnable world, 40 steps: every step's loss within
# BF16_LOSS_TOLERANCE (measured: max 3.3e-4, mean 1.0e-4 on a Xeon with AMX; docs/train.md).
BF16_LOSS_TOLERANCE = 0.01


@needs_bf16
def test_bf16_loss_curve_is_within_tolerance_of_fp32(train_tiny_bert, train_table_arrow, tmp_path):
    curves = {}
    for precision in ("fp32", "bf16"):
        train(_cfg(train_table_arrow, train_tiny_bert, tmp_path / precision, steps=40, lr=2e-3, precision=precision))
        curves[precision] = np.array([r["loss"] for r in _log(tmp_path / precision / "train.jsonl")])
    a, b = curves["fp32"], curves["bf16"]
    assert len(a) == len(b) == 40 and not np.array_equal(a, b)  # bf16 ran: the numbers differ
    assert np.abs(a - b).max() <= BF16_LOSS_TOLERANCE
    assert np.mean(b[-8:]) < np.mean(b[:4]) - 0.4  # and it learns


def _settings(out: Path) -> dict:
    return json.loads((out / "final" / "fastir-train.json").read_text())["settings"]


def test_auto_precision_follows_the_cpu_flags_and_is_recorded(train_tiny_bert, train_table_arrow, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv(FLAGS_ENV, "avx2 avx512f")
    out = tmp_path / "plain"
    train(_cfg(train_table_arrow, train_tiny_bert, out, steps=2, save_steps=1, precision="auto"))
    s = _settings(out)
    assert s["precision"] == "fp32" and s["precision_reason"] == "auto: this CPU has no AVX512_BF16 or AMX_BF16"
    monkeypatch.setenv(FLAGS_ENV, "avx2 amx_bf16")
    train(_cfg(train_table_arrow, train_tiny_bert, tmp_path / "amx", steps=1, precision="auto"))
    s = _settings(tmp_path / "amx")
    assert s["precision"] == "bf16" and s["precision_reason"] == "auto: this CPU has AMX_BF16"
    # resuming with auto where auto now chooses bf16 keeps the checkpoint's fp32 (bit-identical)
    shutil.rmtree(out / "final")
    shutil.rmtree(out / "checkpoint-000002")
    res = train(_cfg(train_table_arrow, train_tiny_bert, out, steps=2, save_steps=1, precision="auto", resume=True))
    assert res.start_step == 1
    s = _settings(out)
    assert s["precision"] == "fp32" and s["precision_reason"] == "auto on resume: the checkpoint's precision (asked for)"


def test_explicit_bf16_on_a_cpu_without_bf16_exit_2(train_tiny_bert, train_table_arrow, tmp_path, capsys,
                                                    monkeypatch):
    monkeypatch.setenv(FLAGS_ENV, "avx2")
    out = tmp_path / "run"
    code, err = _run_cli(_train_argv(train_table_arrow, train_tiny_bert, out, "--precision", "bf16"), capsys)
    _assert_one_line_error(code, err, "--precision", "bf16 on the CPU needs bf16 matrix instructions",
                           "no AVX512_BF16 or AMX_BF16")
    assert not out.exists()


def test_resume_with_nothing_to_resume_starts_fresh_and_log_is_trimmed(train_tiny_bert, train_table_arrow, tmp_path):
    out = tmp_path / "run"
    train(_cfg(train_table_arrow, train_tiny_bert, out, steps=4, save_steps=2))
    shutil.rmtree(out / "checkpoint-000004")
    shutil.rmtree(out / "final")
    res = train(_cfg(train_table_arrow, train_tiny_bert, out, steps=4, save_steps=2, resume=True))
    assert res.start_step == 2
    assert [r["step"] for r in _log(out / "train.jsonl")] == [1, 2, 3, 4]


def test_resuming_a_finished_run_evaluates_nothing_again(train_tiny_bert, train_table_arrow, tmp_path):
    """A finished run given to --resume (as fastir experiment does on every re-run) leaves train.jsonl
    as it was: no second evaluation line for the last step."""
    out = tmp_path / "run"
    kw = dict(steps=2, eval_data=train_table_arrow, eval_every=1, eval_max_queries=20, allow_overlap=True)
    first = train(_cfg(train_table_arrow, train_tiny_bert, out, **kw))
    log = (out / "train.jsonl").read_text()
    assert [r["step"] for r in _log(out / "train.jsonl", "eval")] == [0, 1, 2] and first.eval["step"] == 2
    again = train(_cfg(train_table_arrow, train_tiny_bert, out, resume=True, **kw))
    assert again.start_step == 2 and again.eval is None
    assert (out / "train.jsonl").read_text() == log


# ---------------------------------------------------------------------------------- distributed


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_match_one_process(train_tiny_bert, train_table_arrow, tmp_path):
    model = _no_dropout_copy(train_tiny_bert, tmp_path / "model")
    common = ["--data", train_table_arrow, "--model", model, "--strategy", "hybrid", "--batch-size", "16",
              "--steps", "4", "--lr", "1e-3", "--pooling", "mean", "--seed", "5", "--device", "cpu",
              "--precision", "fp32", "--log-batches", "--no-progress"]  # fp32: the equality is float rounding only
    single = tmp_path / "single"
    assert main(["train", *common, "--out", str(single)]) == 0

    fastir_bin = shutil.which("fastir") or str(Path(sys.executable).parent / "fastir")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    dist_out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", fastir_bin,
         "train", *common, "--out", str(dist_out)],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one = [json.loads(x) for x in (single / "batches.rank0.jsonl").read_text().splitlines()]
    r0 = [json.loads(x) for x in (dist_out / "batches.rank0.jsonl").read_text().splitlines()]
    r1 = [json.loads(x) for x in (dist_out / "batches.rank1.jsonl").read_text().splitlines()]
    assert len(one) == len(r0) == len(r1) == 4
    for s, a, b in zip(one, r0, r1):
        assert len(a["xling_ids"]) == len(b["xling_ids"]) == 8
        assert a["xling_ids"] + b["xling_ids"] == s["xling_ids"]  # the same global batch, split in rank order
        assert s["kind"] == a["kind"] == b["kind"]
        # gathered negatives: the global loss, on every rank, equals the one-process loss
        assert a["loss"] == pytest.approx(s["loss"], rel=1e-5) and b["loss"] == a["loss"]
        # DDP's averaged gradient x world size = the one-process gradient of the global loss
        assert a["grad_norm"] == pytest.approx(s["grad_norm"], rel=1e-4) and b["grad_norm"] == a["grad_norm"]
    # same gradient of the global loss (DDP mean x world size): the weights agree up to float rounding
    w1, w2 = _weights(single / "final"), _weights(dist_out / "final")
    base = _weights(Path(model))
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=2e-5), k
    assert any(not torch.equal(w1[k], base[k]) for k in w1 if k in base)


# ------------------------------------------------------------------------------------ bad input


def _train_argv(data, model, out, *extra):
    return ["train", "--data", str(data), "--model", str(model), "--out", str(out), "--batch-size", "16",
            "--steps", "2", "--no-progress", *extra]


def _assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], err


def test_bad_data_exit_2_without_output(train_tiny_bert, train_table_arrow, train_rows, tmp_path, capsys):
    out = tmp_path / "run"
    # more pairs per batch than a language has distinct xling_ids
    code, err = _run_cli(_train_argv(train_table_arrow, train_tiny_bert, out, "--batch-size", "64"), capsys)
    _assert_one_line_error(code, err, "batch size 64")
    assert not out.exists()
    # a missing column
    make_train_rows, write_arrow = train_rows
    rows = [{k: v for k, v in r.items() if k != "passage"} for r in make_train_rows(range(20))]
    bad = write_arrow(tmp_path / "bad.arrow", rows)
    code, err = _run_cli(_train_argv(bad, train_tiny_bert, out), capsys)
    _assert_one_line_error(code, err, "bad.arrow", "passage")
    assert not out.exists()
    # x-y over ids that exist in one language only
    mono = write_arrow(tmp_path / "mono.arrow", make_train_rows(range(40), langs=("aa",)))
    code, err = _run_cli(_train_argv(mono, train_tiny_bert, out, "--strategy", "x-y"), capsys)
    _assert_one_line_error(code, err, "one language only")
    assert not out.exists()


def test_model_without_tokenizer_exit_2(train_tiny_bert, train_table_arrow, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(train_tiny_bert) / name, bare / name)
    out = tmp_path / "run"
    code, err = _run_cli(_train_argv(train_table_arrow, bare, out), capsys)
    _assert_one_line_error(code, err, "tokenizer")
    assert not out.exists()


def test_output_dir_with_another_run(train_tiny_bert, train_table_arrow, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_argv(train_table_arrow, train_tiny_bert, out, "--save-steps", "1")) == 0
    capsys.readouterr()
    before = sorted(p.name for p in out.iterdir())
    stamp = (out / "final" / "model.safetensors").stat().st_mtime_ns
    # without --resume / --overwrite
    code, err = _run_cli(_train_argv(train_table_arrow, train_tiny_bert, out), capsys)
    _assert_one_line_error(code, err, "--overwrite")
    # --resume with different settings
    code, err = _run_cli(_train_argv(train_table_arrow, train_tiny_bert, out, "--resume", "--lr", "1e-4"), capsys)
    _assert_one_line_error(code, err, "settings.lr")
    # a bad option value with --overwrite must not touch the previous run either
    code, err = _run_cli(_train_argv(train_table_arrow, train_tiny_bert, out, "--overwrite", "--warmup-steps", "5"),
                         capsys)
    _assert_one_line_error(code, err, "--warmup-steps")
    # the model fails to load after the data checks passed: still nothing replaced
    code, err = _run_cli(_train_argv(train_table_arrow, out / "nope", out, "--overwrite"), capsys)
    _assert_one_line_error(code, err, "nope")
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "final" / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no half-written checkpoint
    # --overwrite replaces the run
    assert main(_train_argv(train_table_arrow, train_tiny_bert, out, "--overwrite")) == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-000002", "final", "train.jsonl"]


def test_exact_alpha_mode_trains_interleaved_and_resumes(train_tiny_bert, train_table_arrow, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out), "--steps", "6",
            "--batch-size", "16", "--alpha", "0.5", "--alpha-mode", "exact", "--save-steps", "3", "--device", "cpu",
            "--pooling", "mean", "--no-progress"]
    assert main(argv) == 0
    kinds = [r["kind"] for r in _log(out / "train.jsonl")]
    assert kinds == ["cross", "mono"] * 3
    shutil.rmtree(out / "checkpoint-000006")
    shutil.rmtree(out / "final")
    random_argv = [a if a != "exact" else "random" for a in argv]
    assert main(random_argv + ["--resume"]) == 2
    assert "settings.alpha_mode: checkpoint has 'exact', this command 'random'" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    assert [r["kind"] for r in _log(out / "train.jsonl")] == kinds
    assert main(argv[:-1] + ["--alpha-mode", "even"]) == 2
    assert "--alpha-mode" in capsys.readouterr().err

# ------------------------------------------------------------- zero-shot guard, evaluation settings


def test_overlapping_eval_data_is_refused_before_anything_is_written(train_tiny_bert, train_table_arrow, tmp_path,
                                                                     capsys):
    out = tmp_path / "run"
    code, err = _run_cli(["train", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                          "--steps", "2", "--batch-size", "16", "--device", "cpu", "--no-progress",
                          "--eval-data", train_table_arrow], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {train_table_arrow}: row 0: xling_id equals the parallel-group id of x0_aa in "
                          "evaluation dataset synthetic.arrow (144 of 144 training rows overlap")
    assert "--allow-overlap" in err
    assert not out.exists()


def test_overlap_counts_are_recorded_allowed_or_clean(train_tiny_bert, train_table_arrow, train_rows, tmp_path):
    make_train_rows, write_arrow = train_rows
    allowed = train(_cfg(train_table_arrow, train_tiny_bert, tmp_path / "a", steps=1, eval_data=train_table_arrow,
                         allow_overlap=True))
    meta = json.loads((allowed.final / "fastir-train.json").read_text())
    assert meta["overlap"] == {"allowed": True, "datasets": {"synthetic.arrow": {
        "train_rows": 144, "rows": 144, "by_key": {"xling_id": 144, "query": 144, "passage": 144, "negative": 0}}}}
    assert meta["settings"]["allow_overlap"] is True

    held = write_arrow(tmp_path / "held.arrow", [{**r, "xling_id": "h" + r["xling_id"]}
                                                 for r in make_train_rows(pairs=range(8), seed=99)])
    clean = train(_cfg(train_table_arrow, train_tiny_bert, tmp_path / "c", steps=1, eval_data=held))
    meta = json.loads((clean.final / "fastir-train.json").read_text())
    assert meta["overlap"]["allowed"] is False and meta["overlap"]["datasets"]["held.arrow"]["rows"] == 0
    none = train(_cfg(train_table_arrow, train_tiny_bert, tmp_path / "n", steps=1))
    assert json.loads((none.final / "fastir-train.json").read_text())["overlap"] is None  # nothing to check


def test_eval_max_length_is_apart_from_training_max_length(train_tiny_bert, train_table_arrow, train_rows, tmp_path):
    """Training truncates at 6 tokens (cutting the passages' t{k} token); the held-out evaluation
    embeds at the model's own length (64) unless --eval-max-length says otherwise, and the number it
    logs equals an independent evaluation of the same weights at that length."""
    from fastir.encoding.encoder import load_encoder
    from fastir.train.heldout import evaluate, load_eval_set

    make_train_rows, write_arrow = train_rows
    held = write_arrow(tmp_path / "held.arrow", [{**r, "xling_id": "h" + r["xling_id"]}
                                                 for r in make_train_rows(pairs=range(8), seed=99)])
    eval_set = load_eval_set(held)

    def step0(out, **kw) -> tuple[dict, dict]:
        res = train(_cfg(train_table_arrow, train_tiny_bert, out, steps=1, eval_data=held, eval_every=1,
                         max_length=6, **kw))
        meta = json.loads((res.final / "fastir-train.json").read_text())
        return _log(out / "train.jsonl", "eval")[0], meta

    def independent(max_length: int) -> float:
        enc = load_encoder(train_tiny_bert, pooling="mean", device="cpu", dtype="fp32", max_length=max_length)
        return evaluate(enc, eval_set)["eval_pooled_map"]

    logged, meta = step0(tmp_path / "default")
    assert meta["settings"]["max_length"] == 6 and meta["settings"]["eval_max_length"] == 64
    assert logged["eval_pooled_map"] == pytest.approx(independent(64), abs=1e-9)
    assert independent(64) != pytest.approx(independent(6), abs=1e-3)  # the length matters on this data
    # the saved model embeds, by default, as the run evaluated
    st_config = json.loads((tmp_path / "default" / "final" / "sentence_bert_config.json").read_text())
    assert st_config["max_seq_length"] == 64
    logged, meta = step0(tmp_path / "explicit", eval_max_length=6)
    assert meta["settings"]["eval_max_length"] == 6
    assert logged["eval_pooled_map"] == pytest.approx(independent(6), abs=1e-9)


@pytest.mark.parametrize("args, message", [
    (["--eval-max-length", "0"], "--eval-max-length: must be positive, found 0"),
    (["--eval-max-length", "65"], "--eval-max-length: 65 is above the model's limit of 64 tokens"),
    (["--max-length", "0"], "--max-length: must be positive, found 0"),
    (["--eval-data", "no-such-dataset"], "no-such-dataset: dataset: unknown dataset"),
])
def test_bad_eval_settings(train_tiny_bert, train_table_arrow, tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code, err = _run_cli(["train", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                          "--steps", "2", "--batch-size", "16", "--device", "cpu", "--no-progress", *args], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()
