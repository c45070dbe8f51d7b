"""fastir.eval.gpu: the torch engine (run here on the CPU: no GPU on the test machine) equals the
Numba path on tie-free data, and --device resolves or fails as documented."""

from __future__ import annotations

import numpy as np
import pytest

import fastir.eval.gpu as gpu
from fastir.cli import main
from fastir.core.errors import FastirWarning, InputError
from fastir.eval.score import score_run
from fastir.runs.rundir import read_run

LANGS = ("aa", "bb", "cc")


@pytest.fixture
def tie_free_run(tmp_path, make_run):
    rng = np.random.default_rng(5)
    n_q, n_c = 36, 300
    qrels = [(q, int(c)) for q in range(n_q) for c in rng.choice(n_c, int(rng.integers(1, 5)), replace=False)]
    return read_run(make_run(tmp_path, q_emb=rng.standard_normal((n_q, 24)), q_langs=[LANGS[i % 3] for i in range(n_q)],
                             c_emb=rng.standard_normal((n_c, 24)), c_langs=[LANGS[i % 3] for i in range(n_c)],
                             qrels=qrels))


@pytest.mark.parametrize("block_mb", [0.004, 256])  # several tiles (gold scores computed first) / one tile
def test_torch_engine_equals_numba_path(tie_free_run, monkeypatch, block_mb):
    kwargs = dict(pairs="all", block_mb=block_mb, trec_depth=5, metrics="map,mrr,recall@1,5,ndcg@10")
    numba = score_run(tie_free_run, device="cpu", **kwargs)
    monkeypatch.setattr(gpu, "make_engine", lambda device, dist=None, run=None: gpu.TorchEngine("cpu"))
    torch_cpu = score_run(tie_free_run, device="cpu", **kwargs)
    assert np.array_equal(torch_cpu.metrics.values, numba.metrics.values, equal_nan=True)
    assert np.array_equal(torch_cpu.metrics.nrel, numba.metrics.nrel)
    assert np.array_equal(torch_cpu.top.cand, numba.top.cand)
    assert torch_cpu.compute == {"engine": "torch", "device": "cpu", "gpu": "cpu", "dtype": "float32", "tf32": False}
    assert numba.compute is None


def test_device_resolution_without_a_gpu(monkeypatch):
    monkeypatch.setattr(gpu, "_gpu_present", lambda: False)
    assert gpu.resolve_device("auto") == "cpu" and gpu.resolve_device("cpu") == "cpu"
    with pytest.raises(InputError, match="--device: cuda requested but CUDA is not available"):
        gpu.resolve_device("cuda")
    with pytest.raises(InputError, match="--device: expected one of"):
        gpu.resolve_device("tpu")


def test_auto_falls_back_with_a_warning_when_torch_cannot_use_the_gpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(gpu, "_gpu_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(FastirWarning, match="scoring on the CPU") as caught:
        assert gpu.resolve_device("auto") == "cpu"
    assert len(caught) == 1 and capsys.readouterr().err == ""  # the CLI prints it, the library does not


def test_cli_cuda_without_cuda_is_one_line_exit_2(tie_free_run, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "scores"
    assert main(["score", str(tie_free_run.path), "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --device: cuda requested but CUDA is not available")
    assert not out.exists() and not list(tmp_path.glob(".scores*"))
