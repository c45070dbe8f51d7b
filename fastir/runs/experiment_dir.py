"""The experiment directory (``fastir experiment``'s ``OUT``): its one owner, names and readers included.

Layout (format ``fastir-experiment/2``)::

    OUT/results.json                      every setting, number, timing, batch share and curve
    OUT/report.md, OUT/figures/           the report (fastir.experiment.report)
    OUT/<strategy>/seed-<s>/              one strategy trained from one seed (run name ``strategy@s``)
    OUT/base/                             the untrained model (run name ``base``), with --include-base
      model/                              fastir train output (checkpoint-NNNNNN/, final/, train.jsonl); not for base
      runs/<dataset>/                     fastir embed run dir of final/ on each evaluation dataset
      scores/<dataset>/                   fastir score output, with per_query.parquet
      stages.json                         wall seconds of each stage, kept from the call that did the work

``fastir experiment`` writes it (:mod:`fastir.experiment`), ``fastir compare EXP`` reads it
(:mod:`fastir.compare.experiment`); both take every name and path from here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from fastir.core.errors import InputError

RESULTS_JSON = "results.json"
RESULTS_FORMAT = "fastir-experiment/2"
REPORT_MD = "report.md"
FIGURES = "figures"
STAGES_JSON = "stages.json"
BASE = "base"
_SEED_DIR = re.compile(r"^seed-(?P<seed>[0-9]+)$")


# ------------------------------------------------------------------------------------ paths of a run


def run_name(strategy: str, seed: int | None) -> str:
    """A run's name in the comparison: ``strategy@seed``, or ``base`` for the untrained model."""
    return BASE if seed is None else f"{strategy}@{seed}"


def run_root(out: str | os.PathLike, strategy: str, seed: int | None) -> Path:
    return Path(out) / BASE if seed is None else Path(out) / strategy / f"seed-{seed}"


def model_dir(root: Path) -> Path:
    return root / "model"


def run_dir(root: Path, dataset: str) -> Path:
    return root / "runs" / dataset


def scores_dir(root: Path, dataset: str) -> Path:
    return root / "scores" / dataset


# ----------------------------------------------------------------------------------- results.json


def is_experiment_dir(path: str | os.PathLike) -> bool:
    """True for a directory holding ``results.json`` (a ``fastir experiment`` output)."""
    return (Path(path) / RESULTS_JSON).is_file()


def write_results(results: dict, out: Path) -> None:
    from fastir.core.outputs import atomic_file

    with atomic_file(out / RESULTS_JSON, "w") as fh:
        json.dump(results, fh, indent=2)


def settings_of(results: dict) -> dict:
    """results.json's settings: its ``settings`` (or, written by early versions, the top level)."""
    return results.get("settings") if isinstance(results.get("settings"), dict) else results


def read_results(root: Path) -> dict:
    """results.json, after checking its format and its evaluation datasets."""
    path = root / RESULTS_JSON
    from fastir.core.textfiles import read_json

    try:
        results = read_json(path)
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {' '.join(str(exc).split())}") from None
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        got = results.get("format") if isinstance(results, dict) else type(results).__name__
        raise InputError(path, "format", f"expected {RESULTS_FORMAT!r}, got {got!r} "
                         "(an older experiment has no per_query.parquet: re-run `fastir experiment` on it)")
    datasets = settings_of(results).get("eval_datasets")
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
        raise InputError(path, "eval_datasets", "missing or not a list of dataset names")
    return results


def scores_digest(path: Path) -> str:
    """SHA-256 of a run's scores file: results.json records it, so that ``fastir compare EXP`` reads
    the very files the experiment scored and no other."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------------------- the runs


def scan_runs(root: Path, dataset: str, file_name: str, strategies) -> list[tuple[Path, str]]:
    """(path, run name) of every run of ``dataset`` whose ``scores/<dataset>/<file_name>`` exists:
    ``base`` first, then each strategy (``strategies``' order, then by name) by seed."""
    found = []
    base = scores_dir(root / BASE, dataset) / file_name
    if base.is_file():
        found.append((base, BASE))
    order = list(strategies) if isinstance(strategies, list) else []
    dirs = sorted((d for d in root.iterdir() if d.is_dir() and d.name != BASE and not d.name.startswith(".")),
                  key=lambda d: (order.index(d.name) if d.name in order else len(order), d.name))
    for d in dirs:
        seeds = []
        for s in d.iterdir():
            m = _SEED_DIR.match(s.name)
            f = scores_dir(s, dataset) / file_name
            if m and f.is_file():
                seeds.append((int(m["seed"]), f))
        found += [(f, run_name(d.name, seed)) for seed, f in sorted(seeds)]
    return found
