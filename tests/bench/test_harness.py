"""bench/harness.py: pairing and ratios, the regression check, the docs/benchmarks.md table, and a real run.

The end-to-end test runs a tiny fastir/peer benchmark pair through pytest-benchmark twice via
the harness; the second time the fastir side sleeps longer (a deliberate slowdown) and
``harness.py check`` must exit 1, while an unchanged re-run must exit 0.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "bench" / "harness.py"


def _load_harness():
    spec = importlib.util.spec_from_file_location("fastir_bench_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def bench(name, group, role, *, min_s, median_s=None, peer=None, target=None):
    info = {"role": role}
    if peer is not None:
        info["peer"] = peer
    if target is not None:
        info["target"] = target
    median_s = min_s if median_s is None else median_s
    return {"name": name, "fullname": f"bench/x.py::{name}", "group": group, "extra_info": info,
            "stats": {"min": min_s, "median": median_s, "mean": median_s, "rounds": 5}}


def results(benchmarks, *, scale=1.0, threads=2, when="2026-11-24T10:00:00+00:00"):
    return {
        "machine_info": {"cpu": {"brand_raw": "Test CPU"},
                         "fastir": {"scale": scale, "threads": threads, "description": f"Test CPU; scale {scale:g}"}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": when,
        "version": "5.3.1",
    }


BASE = [
    bench("test_score[fastir]", "score-metrics", "fastir", min_s=0.010, median_s=0.012, target=">= 10x sklearn; >= 0.5x numpy"),
    bench("test_score[sklearn]", "score-metrics", "peer", min_s=0.200, median_s=0.300, peer="sklearn LAReQA reference"),
    bench("test_score[numpy]", "score-metrics", "peer", min_s=0.008, median_s=0.009, peer="numpy fp32 matmul"),
    bench("test_io[fastir]", "io-read-run", "fastir", min_s=0.05, target="at least as fast as parquet"),
    bench("test_io[parquet]", "io-read-run", "peer", min_s=0.10, peer="pyarrow.parquet"),
]


def slowed(benchmarks, factor, name="test_score[fastir]"):
    out = copy.deepcopy(benchmarks)
    for b in out:
        if b["name"] == name:
            for key in ("min", "median", "mean"):
                b["stats"][key] *= factor
    return out


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ pairing and ratios


def test_pairs_are_fastir_against_each_peer_of_its_group():
    pairs, warnings = harness.pairs_of(results(BASE), "min")
    assert warnings == []
    by_peer = {p.peer: p for p in pairs}
    assert set(by_peer) == {"sklearn LAReQA reference", "numpy fp32 matmul", "pyarrow.parquet"}
    sk = by_peer["sklearn LAReQA reference"]
    assert sk.group == "score-metrics" and sk.fastir == "test_score[fastir]"
    assert sk.ratio == pytest.approx(0.010 / 0.200) and sk.speedup == pytest.approx(20.0)
    assert by_peer["pyarrow.parquet"].speedup == pytest.approx(2.0)


def test_ratio_uses_the_chosen_statistic():
    pairs, _ = harness.pairs_of(results(BASE), "median")
    sk = next(p for p in pairs if p.peer.startswith("sklearn"))
    assert sk.speedup == pytest.approx(0.300 / 0.012)
    with pytest.raises(harness.HarnessError):
        harness.pairs_of(results(BASE), "max")


def test_unpaired_or_unlabelled_benchmarks_are_reported_not_paired():
    odd = BASE + [
        bench("test_lonely", "sampler-epoch", "fastir", min_s=1.0),
        {"name": "test_nolabel", "group": "score-metrics", "extra_info": {}, "stats": {"min": 1.0}},
    ]
    pairs, warnings = harness.pairs_of(results(odd), "min")
    assert len(pairs) == 3
    assert any("sampler-epoch" in w and "no peer" in w for w in warnings)
    assert any("test_nolabel" in w for w in warnings)


def test_parametrized_cases_pair_with_their_own_peer():
    def case(name, role, batch, t, **kw):
        b = bench(f"{name}[{batch}]", "sampler-throughput", role, min_s=t, **kw)
        b["params"], b["param"] = {"batch_size": batch}, str(batch)
        return b

    runs = [case("test_fastir", "fastir", 32, 1.0), case("test_fastir", "fastir", 256, 2.0),
            case("test_fastir", "fastir", 1024, 3.0),  # no peer at this size: listed apart
            case("test_loop", "peer", 32, 4.0, peer="loop"), case("test_loop", "peer", 256, 10.0, peer="loop")]
    pairs, _ = harness.pairs_of(results(runs), "min")
    assert sorted((p.fastir, p.speedup) for p in pairs) == [("test_fastir[256]", 5.0), ("test_fastir[32]", 4.0)]
    assert harness.solo_benchmarks(results(runs)) == [("sampler-throughput", "test_fastir[1024]", 3.0, "")]
    # One fastir benchmark and a parametrized role parameter (the IO suite's fmt): all peers pair.
    io = [bench("test_read[fastir]", "io", "fastir", min_s=1.0), bench("test_read[npy]", "io", "peer", min_s=2.0, peer="np"),
          bench("test_read[pq]", "io", "peer", min_s=3.0, peer="pq")]
    for b, fmt in zip(io, ("fastir", "npy", "pq")):
        b["params"] = {"fmt": fmt}
    assert len(harness.pairs_of(results(io), "min")[0]) == 2


# ------------------------------------------------------------------------------ regression check


def test_compare_flags_only_a_slowdown_beyond_the_threshold():
    base, _ = harness.pairs_of(results(BASE), "min")
    same = harness.compare(base, base, 0.25)
    assert {v.status for v in same} == {"ok"}
    mild, _ = harness.pairs_of(results(slowed(BASE, 1.2)), "min")
    assert {v.status for v in harness.compare(base, mild, 0.25)} == {"ok"}
    slow, _ = harness.pairs_of(results(slowed(BASE, 1.5)), "min")
    verdicts = {v.key[2]: v for v in harness.compare(base, slow, 0.25)}
    assert verdicts["sklearn LAReQA reference"].status == "REGRESSION"
    assert verdicts["sklearn LAReQA reference"].change == pytest.approx(0.5)
    assert verdicts["numpy fp32 matmul"].status == "REGRESSION"
    assert verdicts["pyarrow.parquet"].status == "ok"
    fast, _ = harness.pairs_of(results(slowed(BASE, 0.5)), "min")
    assert {v.status for v in harness.compare(base, fast, 0.25) if v.key[0] == "score-metrics"} == {"improved"}


def test_a_machine_wide_slowdown_is_not_a_regression():
    # Everything 3x slower (a loaded machine): ratios, hence the verdict, do not move.
    loaded = copy.deepcopy(BASE)
    for b in loaded:
        b["stats"] = {k: v * 3 if isinstance(v, float) else v for k, v in b["stats"].items()}
    base, _ = harness.pairs_of(results(BASE), "min")
    now, _ = harness.pairs_of(results(loaded), "min")
    assert {v.status for v in harness.compare(base, now, 0.25)} == {"ok"}


def test_missing_and_new_pairs():
    base, _ = harness.pairs_of(results(BASE), "min")
    now, _ = harness.pairs_of(results(BASE[:3] + [bench("test_new", "io-write-run", "fastir", min_s=1.0),
                                                 bench("test_new_peer", "io-write-run", "peer", min_s=2.0, peer="np")]), "min")
    status = {v.key[0]: v.status for v in harness.compare(base, now, 0.25)}
    assert status["io-read-run"] == "missing" and status["io-write-run"] == "new"


def test_check_command_exit_codes(tmp_path, capsys):
    base = write(tmp_path / "base.json", results(BASE))
    ok = write(tmp_path / "ok.json", results(slowed(BASE, 1.1)))
    bad = write(tmp_path / "bad.json", results(slowed(BASE, 2.0)))
    assert harness.main(["check", "--current", str(ok), "--baseline", str(base)]) == 0
    assert harness.main(["check", "--current", str(bad), "--baseline", str(base)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "FAIL: 2 regression(s) beyond 25%" in out
    # A looser threshold lets the 2x slowdown through.
    assert harness.main(["check", "--current", str(bad), "--baseline", str(base), "--threshold", "1.5"]) == 0
    # Dropped pairs fail only with --strict.
    partial = write(tmp_path / "partial.json", results(BASE[:3]))
    assert harness.main(["check", "--current", str(partial), "--baseline", str(base)]) == 0
    assert harness.main(["check", "--current", str(partial), "--baseline", str(base), "--strict"]) == 1
    # Unusable input: exit 2 with a one-line error.
    assert harness.main(["check", "--current", str(tmp_path / "nope.json"), "--baseline", str(base)]) == 2
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    assert harness.main(["check", "--current", str(tmp_path / "junk.json"), "--baseline", str(base)]) == 2
    assert "error:" in capsys.readouterr().err


def test_default_baseline_is_the_newest_saved_run_at_the_same_scale_and_threads(tmp_path, capsys):
    saved = tmp_path / "results"
    saved.mkdir()
    write(saved / "a-old.json", results(slowed(BASE, 3.0), when="2026-11-20T10:00:00+00:00"))
    write(saved / "b-new.json", results(BASE, when="2026-11-23T10:00:00+00:00"))
    write(saved / "c-scale10.json", results(slowed(BASE, 0.1), scale=10.0, when="2026-11-24T09:00:00+00:00"))
    write(saved / "d-1thread.json", results(slowed(BASE, 0.1), threads=1, when="2026-11-24T09:00:00+00:00"))
    current = write(tmp_path / "cur.json", results(slowed(BASE, 2.0), when="2026-11-24T12:00:00+00:00"))
    # Against b-new (the newest at scale 1, 2 threads) a 2x slowdown regresses ...
    assert harness.main(["check", "--current", str(current), "--results-dir", str(saved)]) == 1
    assert "b-new.json" in capsys.readouterr().out
    # ... no baseline at scale 3: exit 2.
    other = write(tmp_path / "cur3.json", results(BASE, scale=3.0))
    assert harness.main(["check", "--current", str(other), "--results-dir", str(saved)]) == 2


# ------------------------------------------------------------------------------ rendering


def test_target_clauses_apply_to_the_peer_they_name():
    pairs, _ = harness.pairs_of(results(BASE), "min")
    by_peer = {p.peer: p for p in pairs}
    target = ">= 10x sklearn; >= 0.5x numpy"
    assert harness.target_met(target, by_peer["sklearn LAReQA reference"]) is True  # 20x
    assert harness.target_text(target, by_peer["sklearn LAReQA reference"]) == ">= 10x sklearn"
    assert harness.target_met(target, by_peer["numpy fp32 matmul"]) is True  # 0.8x
    assert harness.target_met(">= 1x numpy", by_peer["numpy fp32 matmul"]) is False
    assert harness.target_met(">= 1x", by_peer["numpy fp32 matmul"]) is False  # no peer named: applies to all
    # "<= N x PEER" bounds fastir's time by N times the peer's: 10 ms / 8 ms = 1.25.
    assert harness.target_met("<= 1.25x numpy fp32 matmul Q·Cᵀ", by_peer["numpy fp32 matmul"]) is True
    assert harness.target_met("<= 1.2x numpy fp32 matmul Q·Cᵀ", by_peer["numpy fp32 matmul"]) is False
    assert harness.target_met("<= 1.2x numpy", by_peer["sklearn LAReQA reference"]) is None
    # Peers are named by words, in either direction.
    assert harness.target_met(">= 15x sklearn reference", by_peer["sklearn LAReQA reference"]) is True
    assert harness.target_met(">= 15x sklearn LAReQA reference (AP per query)", by_peer["sklearn LAReQA reference"])
    # A clause naming another peer leaves this row's target unjudged, shown in full.
    assert harness.target_text(">= 3x faiss", by_peer["numpy fp32 matmul"]) == ">= 3x faiss"
    assert harness.target_met(">= 200k pairs/s on one core", by_peer["numpy fp32 matmul"]) is None
    free = "at least as fast as parquet"
    assert harness.target_met(free, by_peer["pyarrow.parquet"]) is None
    assert harness.target_text(free, by_peer["pyarrow.parquet"]) == free


def test_pairs_marked_not_comparable_are_shown_but_never_checked():
    marked = copy.deepcopy(BASE)
    marked[3]["extra_info"]["compare"] = False  # e.g. a memory benchmark whose two sides do different work
    base, _ = harness.pairs_of(results(marked), "min")
    now, _ = harness.pairs_of(results(slowed(marked, 5.0, name="test_io[fastir]")), "min")
    verdicts = harness.compare(base, now, 0.25)
    assert {v.key[0] for v in verdicts} == {"score-metrics"}
    row = next(line for line in harness.render_table(results(marked)).splitlines() if line.startswith("| io-read-run"))
    assert "| n/a |" in row


def test_fastir_only_groups_are_listed_apart():
    solo = BASE + [bench("test_compare_full", "compare-full", "fastir", min_s=2.5, target="seconds, not minutes")]
    table = harness.render_table(results(solo))
    assert "| compare-full | `test_compare_full` | 2.5 s | seconds, not minutes |" in table
    assert harness.pairs_of(results(solo))[1] == ["group compare-full: no peer benchmark, nothing to compare"]


def test_render_table_and_page_region(tmp_path):
    table = harness.render_table(results(BASE), "min", source="bench/results/x.json")
    assert "Test CPU; scale 1" in table and "0123456789" in table
    rows = [line for line in table.splitlines() if line.startswith("| score-metrics")]
    assert len(rows) == 2
    sk = next(r for r in rows if "sklearn" in r)
    assert "| 10 ms | 200 ms | 20x | >= 10x sklearn | yes |" in sk
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# fastir\n\nintro\n\n{harness.START}\nold table\n{harness.END}\n\nafter\n", encoding="utf-8")
    harness.update_page(page, table)
    text = page.read_text(encoding="utf-8")
    assert "old table" not in text and table in text
    assert text.startswith("# fastir\n\nintro\n\n") and text.endswith(f"{harness.END}\n\nafter\n")
    harness.update_page(page, table)  # idempotent
    assert page.read_text(encoding="utf-8") == text
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(harness.HarnessError, match="markers"):
        harness.update_page(no_markers, table)


def test_render_targets_docs_benchmarks_page_which_shows_the_newest_saved_results():
    parser = harness.build_parser()
    assert parser.parse_args(["render"]).page == harness.REPO / "docs" / "benchmarks.md"
    assert parser.parse_args(["render", "--no-page"]).page is None
    # The committed page holds exactly what `render` makes of the newest committed results.
    _, newest, _ = harness.saved_results(harness.RESULTS_DIR)[-1]
    source = Path(newest).resolve().relative_to(harness.REPO).as_posix()
    table = harness.render_table(harness.load_results(newest), "min", source=source)
    text = harness.BENCH_PAGE.read_text(encoding="utf-8")
    assert f"\n{harness.START}\n{table}{harness.END}\n" in text


def test_render_command_writes_the_table_file(tmp_path, capsys):
    saved = tmp_path / "results"
    saved.mkdir()
    write(saved / "old.json", results(slowed(BASE, 4.0), when="2026-11-20T10:00:00+00:00"))
    write(saved / "new.json", results(BASE, when="2026-11-23T10:00:00+00:00"))
    out = tmp_path / "docs" / "bench_table.md"
    assert harness.main(["render", "--results-dir", str(saved), "--out", str(out), "--no-page"]) == 0
    assert out.read_text(encoding="utf-8") == capsys.readouterr().out
    assert "| 20x |" in out.read_text(encoding="utf-8")  # from new.json, not old.json (5x)
    page = tmp_path / "docs" / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\n{harness.START}\nold\n{harness.END}\n", encoding="utf-8")
    assert harness.main(["render", "--results-dir", str(saved), "--page", str(page)]) == 0
    assert "| 20x |" in page.read_text(encoding="utf-8") and "\nold\n" not in page.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ real runs

SYNTHETIC_BENCH = '''
import os
import time

import pytest

FAST, PEER = 0.020, 0.040  # seconds per call
EXTRA = float(os.environ.get("FASTIR_TEST_SLOWDOWN", "0"))  # the deliberate slowdown


def fastir_side():
    time.sleep(FAST + EXTRA)


def peer_side():
    time.sleep(PEER)


@pytest.mark.benchmark(group="synthetic-sleep")
def test_fastir(benchmark, pinned_threads, bench_scale):
    benchmark.extra_info.update(role="fastir", target=">= 1.5x plain")
    benchmark.pedantic(fastir_side, warmup_rounds=1, rounds=5)


@pytest.mark.benchmark(group="synthetic-sleep")
def test_peer(benchmark, pinned_threads, bench_scale):
    benchmark.extra_info.update(role="peer", peer="plain sleep")
    benchmark.pedantic(peer_side, warmup_rounds=1, rounds=5)
'''


def _harness(*args, env_extra=None):
    # as a user's shell runs it: not inside an xdist worker (pytest-benchmark disables itself there)
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTIR_TEST_SLOWDOWN", "FASTIR_BENCH_SCALE") and not k.startswith("PYTEST_XDIST")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(HARNESS), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture()
def synthetic_suite(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(REPO / "bench" / "conftest.py", suite / "conftest.py")
    (suite / "test_bench_synthetic.py").write_text(SYNTHETIC_BENCH, encoding="utf-8")
    return suite


def test_real_run_check_fails_on_an_injected_slowdown(synthetic_suite, tmp_path):
    saved = tmp_path / "results"
    common = ["--bench", str(synthetic_suite), "--results-dir", str(saved), "--threads", "1"]
    run = _harness("run", "--name", "baseline", *common)
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads((saved / "baseline.json").read_text(encoding="utf-8"))
    assert data["machine_info"]["fastir"]["threads"] == 1
    assert data["machine_info"]["fastir"]["scale"] == 1.0
    assert data["machine_info"]["fastir"]["started"] < data["datetime"]
    assert {b["extra_info"]["threads"] for b in data["benchmarks"]} == {1}
    (pair,), _ = harness.pairs_of(data, "min")
    assert pair.speedup == pytest.approx(2.0, rel=0.25)

    unchanged = _harness("check", *common)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "OK: 1 pair(s) within 25%" in unchanged.stdout

    slowed_run = _harness("check", *common, env_extra={"FASTIR_TEST_SLOWDOWN": "0.04"})  # 20 ms -> 60 ms
    assert slowed_run.returncode == 1, slowed_run.stdout + slowed_run.stderr
    assert "REGRESSION" in slowed_run.stdout and "synthetic-sleep" in slowed_run.stdout
    assert "after re-run 2: 1 regression(s) remain" in slowed_run.stderr  # confirmed, not a load burst
    assert list(saved.glob("*.json")) == [saved / "baseline.json"]  # check without --save keeps nothing


def test_pinned_threads_pins_and_restores(tmp_path):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores to tell a pinned count from the default")
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(REPO / "bench" / "conftest.py", suite / "conftest.py")
    (suite / "test_pin.py").write_text('''
import numba
from threadpoolctl import threadpool_info

def test_a_pinned(pinned_threads):
    assert pinned_threads == 1
    assert numba.get_num_threads() == 1
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())

def test_b_restored():
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
''', encoding="utf-8")
    env = {**os.environ, "FASTIR_BENCH_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
                           "--benchmark-disable"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
