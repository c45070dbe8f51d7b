"""bench/gpu_check.py: without CUDA one line and exit 2; its table, data subset and metric comparison.

The CUDA checks themselves need a GPU: they have not run on hardware (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_without_cuda_one_line_and_exit_2():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no GPU to check: "), proc.stderr
    assert "sees no CUDA device" in lines[0]


def test_table_has_one_row_per_check():
    mod = _module()
    text = mod.table([("embed", "ok", 12.345, "min cosine 0.99990"), ("nccl", "FAIL", 0.5, "RuntimeError: x")])
    assert text.splitlines() == ["| check | result | s | detail |", "|---|---|---:|---|",
                                 "| embed | ok | 12.3 | min cosine 0.99990 |", "| nccl | FAIL | 0.5 | RuntimeError: x |"]
    assert [name for name, _ in mod.CHECKS] == ["embed", "train", "score", "certified", "nccl"]


def test_subset_is_three_articles_of_two_languages(tmp_path):
    from fastir.data.lareqa import load_dataset

    mod = _module()
    ds = load_dataset(mod.subset_dataset(tmp_path / "sub"))
    assert sorted(ds.langs) == ["de", "en"]
    assert all(len(json.loads((tmp_path / "sub" / f"{lang}.json").read_text())["data"]) == 3 for lang in ("en", "de"))
    assert len(ds.question_id) == 210  # 105 questions and 68 sentences a language


def test_same_metrics_reports_a_difference():
    mod = _module()
    cell = ("en", "en")
    want = SimpleNamespace(cells=[cell], cell_stats={cell: {"map": 0.5, "queries": 3}})
    assert mod._same_metrics(want, SimpleNamespace(cells=[cell], cell_stats={cell: {"map": 0.5, "queries": 3}})) == 0
    with pytest.raises(AssertionError, match="differs by 0.001"):
        mod._same_metrics(want, SimpleNamespace(cells=[cell], cell_stats={cell: {"map": 0.501, "queries": 3}}))
