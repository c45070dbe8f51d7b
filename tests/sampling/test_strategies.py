"""The strategy registry: the entries, what each draws, and that a new entry is all a new
strategy needs (the sampler and the CLI pick it up)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from fastir.sampling.choices import STRATEGIES
from fastir.sampling.strategies import ANY, CROSS, MONO, REGISTRY, Mixture, Strategy


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


def test_registry_entries_and_cli_choices():
    assert tuple(REGISTRY) == ("x-x-mono", "x-x", "x-y", "hybrid", "en-en") == STRATEGIES
    kinds = {name: s.kinds for name, s in REGISTRY.items()}
    assert kinds == {"x-x-mono": (MONO,), "x-x": (ANY,), "x-y": (CROSS,), "hybrid": (MONO, CROSS), "en-en": (MONO,)}
    assert [n for n, s in REGISTRY.items() if s.uses_alpha] == ["hybrid"]
    assert REGISTRY["en-en"].langs == ("en",) and all(s.langs is None for n, s in REGISTRY.items() if n != "en-en")
    # an epoch counts cross-lingual pairs only when every batch is x-y
    assert {n: s.epoch_kind for n, s in REGISTRY.items()} == {n: CROSS if n == "x-y" else ANY for n in REGISTRY}


def test_stream_codes_never_change():
    # the codes number the sampler's streams and enter their seeds
    assert (ANY, CROSS, MONO) == (0, 1, 2)


def test_single_kind_plan_and_label():
    u = np.random.default_rng(0).random(50)
    for name in ("x-x-mono", "x-x", "x-y", "en-en"):
        s = REGISTRY[name]
        assert (s.plan_kinds(u, 0.5) == s.kind).all()
        assert s.label(s.kind) == name and s.kinds_used(0.3) == s.kinds


@pytest.mark.parametrize("alpha,used", [(0.0, (CROSS,)), (0.4, (MONO, CROSS)), (1.0, (MONO,))])
def test_hybrid_mixes_by_alpha(alpha, used):
    hybrid = REGISTRY["hybrid"]
    assert isinstance(hybrid, Mixture) and hybrid.kinds_used(alpha) == used
    u = np.random.default_rng(1).random(20_000)
    kinds = hybrid.plan_kinds(u, alpha)
    assert set(np.unique(kinds).tolist()) <= set(used)
    assert abs((kinds == MONO).mean() - alpha) < 0.02
    assert (hybrid.label(MONO), hybrid.label(CROSS)) == ("mono", "cross")


def test_registry_module_is_light():
    code = ("import sys, json, fastir.sampling.strategies, fastir.sampling.choices; "
            "print(json.dumps([m for m in ('numpy', 'pyarrow', 'torch') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []


def test_a_new_entry_is_all_a_new_strategy_needs(tmp_path, monkeypatch):
    from fastir.sampling.sampler import BatchSampler

    rows = [{"xling_id": f"x{i}", "lang": lang, "query": f"q{i}{lang}", "passage": f"p{i}{lang}"}
            for i in range(12) for lang in ("de", "en", "fr")]
    path = tmp_path / "t.arrow"
    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    # German-French only, each pair monolingual: one entry, no engine change
    de_fr = Strategy("de-fr", ANY, "German and French pairs", langs=("de", "fr"))
    monkeypatch.setitem(REGISTRY, "de-fr", de_fr)
    s = BatchSampler(str(path), strategy="de-fr", batch_size=4, seed=0)
    assert s.steps_per_epoch == 3
    for _ in range(6):
        b = next(s)
        assert b.kind == "de-fr" and b.query_langs == b.passage_langs
        assert set(b.query_langs) <= {"de", "fr"} and len(set(b.xling_ids)) == 4


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.7, 0.99, 1.0])
def test_exact_alpha_share_is_within_one_batch_at_every_step(alpha):
    hybrid = REGISTRY["hybrid"]
    steps = 5000
    # planned in uneven chunks, as epochs of the sampler plan them
    bounds = [0, 1, 7, 100, 1234, 4000, steps]
    kinds = np.concatenate([hybrid.plan_kinds(np.zeros(b - a), alpha, a, "exact") for a, b in zip(bounds, bounds[1:])])
    mono = np.cumsum(kinds == MONO)
    n = np.arange(1, steps + 1)
    assert np.abs(mono - n * alpha).max() < 1  # |realised mono batches - n·alpha| < 1 batch after every step n
    assert set(np.unique(kinds).tolist()) <= set(hybrid.kinds_used(alpha))
    # the draws do not matter in exact mode; random mode is the draw rule of old
    u = np.random.default_rng(2).random(steps)
    assert (hybrid.plan_kinds(u, alpha, 0, "exact") == kinds).all()
    assert (hybrid.plan_kinds(u, alpha, 0, "random") == np.where(u < alpha, MONO, CROSS)).all()
