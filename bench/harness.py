"""Run the benchmark suites, save baselines, check for regressions, render the docs/benchmarks.md table.

    python bench/harness.py run    [--scale S] [--threads N] [--name NAME] [-- PYTEST ARGS]
    python bench/harness.py check  [--current FILE] [--baseline FILE] [--threshold 0.25] [--stat min] [--save]
    python bench/harness.py render [FILE] [--out TABLE.md] [--page docs/benchmarks.md | --no-page]

Everything is a ratio within one run: for each benchmark group, the fastir benchmark
(``extra_info["role"] == "fastir"``) is paired with every peer benchmark of the same group
(``role == "peer"``, named by ``extra_info["peer"]``), and

    ratio   = T(fastir) / T(peer)      T = a statistic of the timed rounds, ``min`` by default
    speedup = T(peer) / T(fastir) = 1 / ratio   (> 1: fastir is faster)

A pair regresses when ``ratio_current > ratio_baseline * (1 + threshold)``, i.e. fastir became
more than ``threshold`` slower *relative to the peer it was timed beside*. Both sides see the
same machine load, so this is far steadier on a shared machine than absolute times. When
``check`` ran the suites itself, it re-runs only the regressed pairs (``--confirm N``, default 2)
and keeps each pair's best ratio: a burst of load fakes a regression once, a real one persists.
``check`` exits 1 on a regression, 2 on unusable input, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BENCH_PAGE = REPO / "docs" / "benchmarks.md"  # `render` rewrites the table between START and END here
DEFAULT_THRESHOLD = 0.25
STATS = ("min", "median", "mean")
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


class HarnessError(Exception):
    """Unusable input (missing file, no baseline, malformed JSON): exit code 2."""


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Pair:
    """One fastir benchmark against one peer benchmark of the same group, in the same run."""

    group: str
    fastir: str  # fastir benchmark name (test name with params)
    peer: str  # peer label: extra_info["peer"], else the peer benchmark's name
    fastir_time: float
    peer_time: float
    target: str
    nodes: tuple[str, ...] = ()  # pytest node ids of both benchmarks, for re-running the pair
    comparable: bool = True  # False when a benchmark says extra_info["compare"] = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.fastir, self.peer)

    @property
    def ratio(self) -> float:
        return self.fastir_time / self.peer_time

    @property
    def speedup(self) -> float:
        return self.peer_time / self.fastir_time


def load_results(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such results file") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise HarnessError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks' list)")
    return data


def pairs_of(results: dict, stat: str = "min") -> tuple[list[Pair], list[str]]:
    """All (fastir, peer) pairs of a results JSON, plus warnings about benchmarks that pair with nothing.

    Within a group, every fastir benchmark pairs with every peer benchmark, except that when the
    group has several fastir benchmarks differing in a parameter (a case, e.g. ``batch_size``),
    a peer pairs only with the fastir benchmark of its own case.
    """
    if stat not in STATS:
        raise HarnessError(f"unknown statistic {stat!r}; use one of {', '.join(STATS)}")
    groups: dict[str, dict[str, list[dict]]] = {}
    warnings = []
    for bench in results["benchmarks"]:
        info = bench.get("extra_info") or {}
        role = info.get("role")
        group = bench.get("group") or bench["name"]
        if role not in ("fastir", "peer"):
            warnings.append(f"{bench['name']}: extra_info['role'] is {role!r}, expected 'fastir' or 'peer'; ignored")
            continue
        if not bench.get("stats"):
            continue  # --benchmark-disable runs carry no timings
        groups.setdefault(group, {"fastir": [], "peer": []})[role].append(bench)
    pairs = []
    for group, members in sorted(groups.items()):
        if not members["fastir"] or not members["peer"]:
            missing = "fastir" if not members["fastir"] else "peer"
            warnings.append(f"group {group}: no {missing} benchmark, nothing to compare")
            continue
        labels = [(p.get("extra_info") or {}).get("peer") or p["name"] for p in members["peer"]]
        cases = _case_params(members["fastir"])
        for fast in members["fastir"]:
            for peer, label in zip(members["peer"], labels):
                if not _same_case(fast, peer, cases):
                    continue
                if labels.count(label) > 1 and not cases:  # one fastir, several same-named peers
                    label = f"{label} [{peer.get('param') or peer['name']}]"
                nodes = tuple(_node(results, b) for b in (fast, peer) if b.get("fullname"))
                pairs.append(Pair(
                    group=group,
                    fastir=fast["name"],
                    peer=str(label),
                    fastir_time=float(fast["stats"][stat]),
                    peer_time=float(peer["stats"][stat]),
                    target=str((fast.get("extra_info") or {}).get("target") or ""),
                    nodes=nodes,
                    comparable=all((b.get("extra_info") or {}).get("compare", True) is not False
                                   for b in (fast, peer)),
                ))
    return pairs, warnings


def _case_params(fastirs: list[dict]) -> set[str]:
    """Parameters that tell a group's fastir benchmarks apart (e.g. batch_size): the cases of the group."""
    keys = {k for b in fastirs for k in (b.get("params") or {})}
    return {k for k in keys if len({json.dumps((b.get("params") or {}).get(k), sort_keys=True, default=str)
                                    for b in fastirs}) > 1}


def _same_case(fast: dict, peer: dict, cases: set[str]) -> bool:
    """A peer pairs with a fastir benchmark when it agrees on every case parameter it has."""
    fp, pp = fast.get("params") or {}, peer.get("params") or {}
    return all(fp.get(k) == pp[k] for k in cases if k in pp)


def _node(results: dict, bench: dict) -> str:
    """An absolute pytest node id for a benchmark (its fullname is relative to the run's rootdir)."""
    rootdir = ((results.get("machine_info") or {}).get("fastir") or {}).get("rootdir")
    return str(Path(rootdir) / bench["fullname"]) if rootdir else bench["fullname"]


def run_scale(results: dict) -> float | None:
    return ((results.get("machine_info") or {}).get("fastir") or {}).get("scale")


def run_threads(results: dict) -> int | None:
    return ((results.get("machine_info") or {}).get("fastir") or {}).get("threads")


def run_time(results: dict, path: Path) -> datetime:
    try:
        stamp = datetime.fromisoformat(results["datetime"])
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    except (KeyError, TypeError, ValueError):
        return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def saved_results(results_dir: Path, scale: float | None = None, threads: int | None = None,
                  exclude: Path | None = None) -> list[tuple[datetime, Path, dict]]:
    """Saved results (oldest first), optionally only those at a given scale and thread count."""
    found = []
    for path in sorted(results_dir.glob("*.json")):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            data = load_results(path)
        except HarnessError:
            continue
        if scale is not None and run_scale(data) != scale:
            continue
        if threads is not None and run_threads(data) != threads:
            continue
        found.append((run_time(data, path), path, data))
    found.sort(key=lambda item: (item[0], item[1].name))
    return found


# ------------------------------------------------------------------------------------ check


@dataclass
class Verdict:
    key: tuple[str, str, str]
    baseline: Pair | None
    current: Pair | None
    status: str  # ok | REGRESSION | improved | new | missing

    @property
    def change(self) -> float | None:
        """Relative change of the ratio fastir/peer (positive = fastir got slower vs the peer)."""
        if self.baseline is None or self.current is None:
            return None
        return self.current.ratio / self.baseline.ratio - 1.0


def compare(baseline: list[Pair], current: list[Pair], threshold: float = DEFAULT_THRESHOLD) -> list[Verdict]:
    """Verdict per pair key; pairs marked not comparable (extra_info["compare"] = False) are left out."""
    if not threshold > 0:
        raise HarnessError(f"threshold must be positive, got {threshold}")
    base = {p.key: p for p in baseline if p.comparable}
    cur = {p.key: p for p in current if p.comparable}
    verdicts = []
    for key in sorted(set(base) | set(cur)):
        b, c = base.get(key), cur.get(key)
        if b is None:
            status = "new"
        elif c is None:
            status = "missing"
        elif c.ratio > b.ratio * (1 + threshold):
            status = "REGRESSION"
        elif c.ratio < b.ratio / (1 + threshold):
            status = "improved"
        else:
            status = "ok"
        verdicts.append(Verdict(key, b, c, status))
    return verdicts


def format_verdicts(verdicts: list[Verdict], threshold: float, stat: str) -> str:
    rows = [(*v.key,
             f"{v.baseline.speedup:.3g}x" if v.baseline else "-",
             f"{v.current.speedup:.3g}x" if v.current else "-",
             f"{v.change:+.0%}" if v.change is not None else "-",
             v.status) for v in verdicts]
    head = ("group", "fastir", "peer", "speedup base", "speedup now", "ratio change", "status")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    align = ("<", "<", "<", ">", ">", ">", "<")
    lines = [f"ratio = {stat}(fastir) / {stat}(peer), same group, same run; speedup = 1 / ratio; "
             f"REGRESSION = ratio grew by more than {threshold:.0%}"]
    for r in [head, *rows]:
        lines.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(r, align, widths)).rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ render

_TARGET = re.compile(r"^\s*(>=|≥|>|<=|≤|<)\s*([0-9]*\.?[0-9]+)\s*[x×](?![a-z])\s*(.*?)\s*$", re.IGNORECASE)
_OPS = {">=": float.__ge__, "≥": float.__ge__, ">": float.__gt__,
        "<=": float.__le__, "≤": float.__le__, "<": float.__lt__}


def _same_peer(named: str, label: str) -> bool:
    """Whether a target's PEER names this peer: one's words are a subset of the other's."""
    named_words, label_words = set(re.findall(r"\w+", named.lower())), set(re.findall(r"\w+", label.lower()))
    return not named_words or named_words <= label_words or label_words <= named_words


def _clauses(target: str, pair: Pair) -> list[tuple[str, bool]]:
    """The target clauses that concern ``pair``'s peer, each with whether the pair meets it.

    ``>= N x PEER`` (or ``>``): fastir is at least N times faster, ``T(peer) / T(fastir) >= N``.
    ``<= N x PEER`` (or ``<``): fastir takes at most N times the peer's time, ``T(fastir) / T(peer) <= N``.
    A clause concerns the peers whose label's words include PEER's words or are included in them
    (case-insensitive), or every peer when PEER is empty. Clauses are separated by ``;``.
    """
    found = []
    for clause in target.split(";"):
        match = _TARGET.match(clause)
        if not match or not pair.comparable:
            continue
        op, number, peer = match.groups()
        if not _same_peer(peer, pair.peer):
            continue
        value = pair.speedup if op in (">=", "≥", ">") else pair.ratio
        found.append((clause.strip(), _OPS[op](value, float(number))))
    return found


def target_text(target: str, pair: Pair) -> str:
    """The clauses of the fastir benchmark's target that concern this pair's peer, else the whole target."""
    clauses = _clauses(target, pair)
    return "; ".join(c for c, _ in clauses) if clauses else target


def target_met(target: str, pair: Pair) -> bool | None:
    """Whether the pair meets every target clause that concerns it; None when none does (free text)."""
    clauses = _clauses(target, pair)
    return all(ok for _, ok in clauses) if clauses else None


def format_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def machine_id(results: dict) -> str:
    """The machine description a run recorded (CPU, cores, RAM, OS, Python, threads, scale)."""
    info = results.get("machine_info") or {}
    fastir = info.get("fastir") or {}
    if fastir.get("description"):
        return fastir["description"]
    cpu = (info.get("cpu") or {}).get("brand_raw") or info.get("processor") or "unknown CPU"
    return f"{cpu}, {info.get('system', '')} {info.get('machine', '')}, Python {info.get('python_version', '?')}"


def machine_line(results: dict) -> str:
    """``machine_id`` plus how busy the machine was (1-minute load average) at the start and end of the run."""
    fastir = (results.get("machine_info") or {}).get("fastir") or {}
    loads = [f"{fastir[f'load_avg_1min_at_{when}']:.2f} at {when}" for when in ("start", "end")
             if fastir.get(f"load_avg_1min_at_{when}") is not None]
    return machine_id(results) + (f"; 1-min load average {', '.join(loads)}" if loads else "")


def solo_benchmarks(results: dict, stat: str = "min") -> list[tuple[str, str, float, str]]:
    """(group, name, time, target) of fastir benchmarks paired with no peer (no peer in the group or its case)."""
    paired = {(p.group, p.fastir) for p in pairs_of(results, stat)[0]}
    solo = []
    for b in results["benchmarks"]:
        info = b.get("extra_info") or {}
        group = b.get("group") or b["name"]
        if info.get("role") == "fastir" and b.get("stats") and (group, b["name"]) not in paired:
            solo.append((group, b["name"], float(b["stats"][stat]), str(info.get("target") or "")))
    return solo


def render_table(results: dict, stat: str = "min", source: str | None = None) -> str:
    pairs, _ = pairs_of(results, stat)
    commit = results.get("commit_info") or {}
    commit_id = (commit.get("id") or "unknown")[:10] + (" (uncommitted changes)" if commit.get("dirty") else "")
    started = ((results.get("machine_info") or {}).get("fastir") or {}).get("started")
    when = (f"{started[:19]} to " if started else "") + str(results.get("datetime", "unknown time"))[:19] + " UTC"
    lines = [
        f"Machine: {machine_line(results)}.  ",
        f"Run: {when}, commit {commit_id}"
        + (f", results `{source}`" if source else "") + ".  ",
        f"Times are the {stat} over timed rounds (warm-up excluded); speedup = peer time / fastir time "
        "(> 1: fastir is faster), both timed in the same run."
        + (" n/a: the suite marks the pair as not a like-for-like timing (`extra_info[\"compare\"] = False`)."
           if any(not p.comparable for p in pairs) else ""),
        "",
        "| Case | fastir | Peer | fastir time | Peer time | Speedup | Target | Met |",
        "|---|---|---|---:|---:|---:|---|:-:|",
    ]
    for p in pairs:
        met = target_met(p.target, p)
        mark = "" if met is None else ("yes" if met else "**no**")
        speedup = f"{p.speedup:.3g}x" if p.comparable else "n/a"
        lines.append(
            f"| {p.group} | `{p.fastir}` | {p.peer} | {format_time(p.fastir_time)} | "
            f"{format_time(p.peer_time)} | {speedup} | {target_text(p.target, p)} | {mark} |"
        )
    if not pairs:
        lines.append("| (no fastir/peer pairs in these results) | | | | | | | |")
    solo = solo_benchmarks(results, stat)
    if solo:
        lines += ["", "fastir benchmarks without an in-run peer (absolute times, not checked for regressions):", "",
                  "| Case | fastir | fastir time | Target |", "|---|---|---:|---|"]
        lines += [f"| {group} | `{name}` | {format_time(t)} | {target} |" for group, name, t, target in solo]
    return "\n".join(lines) + "\n"


def update_page(page: Path, table: str) -> None:
    """Replace the text between the bench-table markers of ``page`` with ``table``."""
    text = page.read_text(encoding="utf-8")
    # Markers count only on a line of their own: prose may quote them (docs/benchmarks.md does).
    match = re.search(rf"^{re.escape(START)}[ \t]*\n(.*?)^{re.escape(END)}[ \t]*$", text, re.M | re.S)
    if match is None:
        raise HarnessError(f"{page}: markers {START} ... {END} not found, each on a line of its own, in that order")
    updated = text[: match.start(1)] + table.rstrip("\n") + "\n" + text[match.end(1):]
    _write_atomic(page, updated)


def _write_atomic(path: Path, text: str) -> None:
    from fastir.core.outputs import atomic_file

    with atomic_file(path, "w") as fh:
        fh.write(text)


# ------------------------------------------------------------------------------------ run


def run_benchmarks(out: Path, *, paths: list[str], scale: float | None, threads: int | None,
                   pytest_args: list[str]) -> int:
    """Run the suites with pytest-benchmark, writing its JSON to ``out`` only if every bench passed.

    Each suite file runs in its own pytest process and the JSONs are merged: suites must not time
    each other's leftovers (measured: Numba's OpenMP workers, spinning after the compare suite,
    made torch encoding 2-3x slower in the same process), just as each fastir command runs alone.
    """
    env = dict(os.environ)
    if scale is not None:
        env["FASTIR_BENCH_SCALE"] = f"{scale:g}"
    if threads is not None:
        env["FASTIR_BENCH_THREADS"] = str(threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = None
    for i, group in enumerate(_by_suite_file(paths)):
        partial = out.with_name(f".{out.name}.{i}.partial")
        cmd = [sys.executable, "-m", "pytest", *group, "--benchmark-enable", "--benchmark-only",
               f"--benchmark-json={partial}", "--benchmark-group-by=group", "--import-mode=importlib",
               "-p", "no:cacheprovider", *pytest_args]
        print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
        code = subprocess.call(cmd, cwd=REPO, env=env)
        if code == 5:  # no benchmark selected in this file (e.g. a -k filter): nothing to merge
            partial.unlink(missing_ok=True)
            continue
        if code != 0:
            partial.unlink(missing_ok=True)
            print(f"benchmarks failed (pytest exit {code}); nothing saved", file=sys.stderr)
            return code
        part = json.loads(partial.read_text(encoding="utf-8"))
        partial.unlink()
        merged = part if merged is None else _merge_results(merged, part)
    if merged is None:
        print("no benchmark ran; nothing saved", file=sys.stderr)
        return 5
    _write_atomic(out, json.dumps(merged, indent=4))
    print(f"saved {out}", file=sys.stderr)
    return 0


def _by_suite_file(paths: list[str]) -> list[list[str]]:
    """Group directories, files and node ids into one argument list per suite file, in order."""
    groups: dict[str, list[str]] = {}
    for arg in paths:
        target = Path(arg.split("::")[0])
        path = target if target.is_absolute() else REPO / target
        if path.is_dir():
            for f in sorted(path.glob("test_bench_*.py")):
                groups.setdefault(str(f), [str(f)])
        else:
            key = str(path)
            if "::" in arg:
                ids = groups.setdefault(key, [])
                if ids != [key]:
                    ids.append(str(path) + arg[len(arg.split("::")[0]):])
            else:
                groups[key] = [key]
    return list(groups.values())


def _merge_results(a: dict, b: dict) -> dict:
    """One pytest-benchmark JSON from two runs of the same session: benchmarks appended, end load from b."""
    merged = dict(a)
    merged["benchmarks"] = list(a.get("benchmarks", [])) + list(b.get("benchmarks", []))
    if "datetime" in b:  # when the last suite finished
        merged["datetime"] = b["datetime"]
    end = b.get("machine_info", {}).get("fastir", {}).get("load_avg_1min_at_end")
    if end is not None and "fastir" in merged.get("machine_info", {}):
        merged["machine_info"] = {**merged["machine_info"], "fastir": {**merged["machine_info"]["fastir"],
                                                                        "load_avg_1min_at_end": end}}
    return merged


def _default_name(scale: float | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scale = scale if scale is not None else float(os.environ.get("FASTIR_BENCH_SCALE", "1"))
    return f"{stamp}-scale{scale:g}"


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=float, help="data scale (1 = XQuAD-R size; default $FASTIR_BENCH_SCALE or 1)")
    p.add_argument("--threads", type=int, help="threads pinned per benchmark (default $FASTIR_BENCH_THREADS or all cores)")
    p.add_argument("--bench", action="append", metavar="PATH",
                   help="bench file or directory to run (repeatable; default: bench/)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where results are saved (default bench/results)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments (e.g. -k io)")


def _pytest_args(ns) -> list[str]:
    args = list(ns.pytest_args)
    return args[1:] if args[:1] == ["--"] else args


def cmd_run(ns) -> int:
    out = ns.results_dir / f"{ns.name or _default_name(ns.scale)}.json"
    if out.exists():
        raise HarnessError(f"{out} exists; pass another --name")
    return run_benchmarks(out, paths=ns.bench or [str(BENCH_DIR)], scale=ns.scale, threads=ns.threads,
                          pytest_args=_pytest_args(ns))


def cmd_check(ns) -> int:
    if ns.current is not None:
        current_path = ns.current
    else:
        if ns.save:
            current_path = ns.results_dir / f"{_default_name(ns.scale)}.json"
        else:
            current_path = Path(tempfile.mkdtemp(prefix="fastir-bench-")) / "current.json"
        code = run_benchmarks(current_path, paths=ns.bench or [str(BENCH_DIR)], scale=ns.scale,
                              threads=ns.threads, pytest_args=_pytest_args(ns))
        if code != 0:
            return code
    current = load_results(current_path)
    if ns.baseline is not None:
        baseline_path, baseline = ns.baseline, load_results(ns.baseline)
    else:
        saved = saved_results(ns.results_dir, scale=run_scale(current), threads=run_threads(current),
                              exclude=current_path)
        if not saved:
            raise HarnessError(f"no saved baseline in {ns.results_dir} at scale {run_scale(current)} with "
                               f"{run_threads(current)} threads; run `python bench/harness.py run` first")
        _, baseline_path, baseline = saved[-1]
    if machine_id(baseline) != machine_id(current):
        print(f"note: machines differ\n  baseline: {machine_id(baseline)}\n  current:  {machine_id(current)}")
    base_pairs, _ = pairs_of(baseline, ns.stat)
    cur_pairs, cur_warn = pairs_of(current, ns.stat)
    for w in cur_warn:
        print(f"warning: {w}")
    if not base_pairs or not cur_pairs:
        raise HarnessError(f"nothing to compare: {len(base_pairs)} pairs in {baseline_path}, "
                           f"{len(cur_pairs)} in {current_path}")
    verdicts = compare(base_pairs, cur_pairs, ns.threshold)
    if ns.current is None:
        cur_pairs, verdicts = _confirm(ns, base_pairs, cur_pairs, verdicts)
    print(f"baseline: {baseline_path}\ncurrent:  {current_path}")
    print(format_verdicts(verdicts, ns.threshold, ns.stat))
    regressions = [v for v in verdicts if v.status == "REGRESSION"]
    missing = [v for v in verdicts if v.status == "missing"]
    if regressions:
        print(f"FAIL: {len(regressions)} regression(s) beyond {ns.threshold:.0%}")
        return 1
    if missing and ns.strict:
        print(f"FAIL: {len(missing)} baseline pair(s) missing from the current run (--strict)")
        return 1
    print(f"OK: {sum(v.status in ('ok', 'improved') for v in verdicts)} pair(s) within {ns.threshold:.0%}"
          + (f", {len(missing)} missing" if missing else ""))
    return 0


def _confirm(ns, base_pairs: list[Pair], cur_pairs: list[Pair], verdicts: list[Verdict]):
    """Re-run only the regressed pairs up to ``ns.confirm`` times, keeping each pair's best ratio.

    On a shared machine a burst of load during one benchmark can fake a regression; a real one
    survives every re-run. Returns the updated pairs and verdicts.
    """
    for attempt in range(1, ns.confirm + 1):
        suspects = {v.key for v in verdicts if v.status == "REGRESSION"}
        nodes = sorted({n for p in cur_pairs if p.key in suspects for n in p.nodes})
        if not suspects or not nodes:
            break
        print(f"re-running {len(suspects)} regressed pair(s) to confirm (attempt {attempt}/{ns.confirm})",
              file=sys.stderr, flush=True)
        out = Path(tempfile.mkdtemp(prefix="fastir-bench-confirm-")) / "confirm.json"
        code = run_benchmarks(out, paths=nodes, scale=ns.scale, threads=ns.threads,
                              pytest_args=_pytest_args(ns))
        if code != 0:
            break
        again = {p.key: p for p in pairs_of(load_results(out), ns.stat)[0]}
        cur_pairs = [again[p.key] if p.key in again and again[p.key].ratio < p.ratio else p for p in cur_pairs]
        verdicts = compare(base_pairs, cur_pairs, ns.threshold)
        print(f"after re-run {attempt}: {sum(v.status == 'REGRESSION' for v in verdicts)} regression(s) remain",
              file=sys.stderr, flush=True)
    return cur_pairs, verdicts


def cmd_render(ns) -> int:
    if ns.results is not None:
        path = ns.results
    else:
        saved = saved_results(ns.results_dir, scale=ns.scale)
        if not saved:
            raise HarnessError(f"no saved results in {ns.results_dir}" + (f" at scale {ns.scale:g}" if ns.scale else ""))
        _, path, _ = saved[-1]
    results = load_results(path)
    try:
        source = str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        source = str(path)
    table = render_table(results, ns.stat, source=source)
    sys.stdout.write(table)
    if ns.out is not None:
        _write_atomic(ns.out, table)
        print(f"wrote {ns.out}", file=sys.stderr)
    if ns.page is not None:
        update_page(ns.page, table)
        print(f"updated {ns.page}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/harness.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the suites and save bench/results/<name>.json")
    p.add_argument("--name", help="results file name without .json (default: UTC timestamp + scale)")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="compare a run with the last saved baseline; exit 1 on a regression")
    p.add_argument("--current", type=Path, help="compare this results JSON instead of running the suites now")
    p.add_argument("--baseline", type=Path, help="baseline JSON (default: newest saved at the same scale and threads)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"allowed growth of the fastir/peer ratio (default {DEFAULT_THRESHOLD})")
    p.add_argument("--stat", choices=STATS, default="min", help="statistic of the timed rounds (default min)")
    p.add_argument("--strict", action="store_true", help="also fail when a baseline pair is missing now")
    p.add_argument("--save", action="store_true", help="keep the fresh run in the results dir as the next baseline")
    p.add_argument("--confirm", type=int, default=2, metavar="N",
                   help="re-run regressed pairs up to N times and keep each pair's best ratio (default 2; "
                        "only when the suites are run by this command)")
    _add_run_options(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("render", help="Markdown performance table from the newest (or given) results, "
                                         "written into docs/benchmarks.md")
    p.add_argument("results", nargs="?", type=Path, help="results JSON (default: newest in the results dir)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--scale", type=float, help="pick the newest results at this scale")
    p.add_argument("--stat", choices=STATS, default="min")
    p.add_argument("--out", type=Path, help="also write the table to this file (e.g. bench_table.md)")
    page = p.add_mutually_exclusive_group()
    page.add_argument("--page", type=Path, default=BENCH_PAGE,
                      help=f"replace the region between {START} and {END} in this file (default docs/benchmarks.md)")
    page.add_argument("--no-page", dest="page", action="store_const", const=None, help="print the table only")
    p.set_defaults(func=cmd_render)

    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return ns.func(ns)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
