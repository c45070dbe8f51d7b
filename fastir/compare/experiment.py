"""An experiment dir (``fastir experiment``'s ``OUT``, laid out by :mod:`fastir.runs.experiment_dir`)
as the input of ``fastir compare``.

Every per_query.parquet found for the chosen dataset is compared; each must have been scored on
that dataset (its recorded ``dataset``), and all on the same data (``dataset_checksum``, checked when
the runs are paired).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastir.core.errors import InputError
from fastir.eval.result import PER_QUERY_PARQUET
from fastir.runs.experiment_dir import (
    BASE, RESULTS_JSON, is_experiment_dir, read_results, run_name, run_root, scan_runs, scores_digest, scores_dir,
    settings_of,
)


@dataclass
class ExperimentInputs:
    """The runs of one dataset of an experiment: per_query.parquet paths and their names."""

    root: Path
    dataset: str
    paths: list[Path]
    names: list[str]
    baselines: list[str] = field(default_factory=list)  # the experiment's own, [] if it recorded none


def experiment_inputs(exp_dir: str | os.PathLike, dataset: str | None = None) -> ExperimentInputs:
    """The per_query.parquet files of ``dataset`` (default: the experiment's only evaluation dataset)
    in ``exp_dir``: ``base`` first, then each strategy (in the experiment's order) by seed.

    Only the runs results.json lists count (a stray ``seed-7`` folder is not a seed of this
    experiment), and each file must be the one the experiment scored (its SHA-256 in results.json)."""
    root = Path(exp_dir)
    results = read_results(root)
    settings = settings_of(results)
    datasets = [Path(d).name or d for d in settings["eval_datasets"]]
    if dataset is None:
        if len(datasets) > 1:
            raise InputError(root / RESULTS_JSON, "--dataset",
                             f"the experiment has several evaluation datasets ({', '.join(datasets)}): choose one")
        dataset = datasets[0]
    elif dataset not in datasets:
        raise InputError(root / RESULTS_JSON, "--dataset",
                         f"{dataset!r} is not an evaluation dataset of this experiment ({', '.join(datasets)})")
    listed = results.get("names")
    found = [(path, name) for path, name in scan_runs(root, dataset, PER_QUERY_PARQUET, settings.get("strategies"))
             if not isinstance(listed, list) or name in listed]
    if not found:
        raise InputError(root, PER_QUERY_PARQUET,
                         f"no run of {dataset!r} has one (looked for {BASE}/scores/{dataset}/ and "
                         f"<strategy>/seed-<s>/scores/{dataset}/): finish the experiment first")
    _check_complete(root, dataset, settings, [n for _, n in found])
    for path, name in found:
        _check_dataset(path, dataset)
        _check_digest(root, results, name, dataset, path)
    baselines = settings.get("baselines")
    baselines = [b for b in baselines if isinstance(b, str)] if isinstance(baselines, list) else []
    return ExperimentInputs(root=root, dataset=dataset, paths=[p for p, _ in found], names=[n for _, n in found],
                            baselines=baselines)


def _check_complete(root: Path, dataset: str, settings: dict, names: list[str]) -> None:
    """Every (strategy, seed) that results.json lists has its file: a comparison of the seeds that
    happen to be finished would silently be another experiment."""
    strategies, seeds = settings.get("strategies"), settings.get("seeds")
    if not (isinstance(strategies, list) and isinstance(seeds, list)):
        return
    for strategy in strategies:
        for seed in seeds:
            if run_name(strategy, seed) not in names:
                raise InputError(scores_dir(run_root(root, str(strategy), seed), dataset), PER_QUERY_PARQUET,
                                 f"missing: the experiment lists {strategy}@{seed}; finish it (re-run `fastir "
                                 "experiment`, it resumes) or compare the finished runs one by one")


def _check_digest(root: Path, results: dict, name: str, dataset: str, per_query: Path) -> None:
    """``per_query`` is the file the experiment scored for run ``name``: its SHA-256 is recorded."""
    run = results.get("runs", {}).get(name) if isinstance(results.get("runs"), dict) else None
    recorded = (run or {}).get("scores_sha256") if isinstance(run, dict) else None
    if not isinstance(recorded, dict) or not isinstance(recorded.get(dataset), str):
        raise InputError(root / RESULTS_JSON, f"runs.{name}.scores_sha256",
                         "missing: this experiment predates score digests; re-run `fastir experiment` on it "
                         "(finished stages are reused) to record them")
    if scores_digest(per_query) != recorded[dataset]:
        raise InputError(per_query, None, f"is not the file this experiment scored for {name} (its SHA-256 "
                                          "differs from results.json's): another experiment's or an edited copy")


def _check_dataset(per_query: Path, dataset: str) -> None:
    """The file's recorded dataset (a name, or a directory whose last part is the key) is ``dataset``."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(per_query).metadata or {}).get(b"fastir")
        recorded = json.loads(raw).get("dataset") if raw else None
    except Exception:  # noqa: BLE001 - unreadable files are reported by the reader with their reason
        return
    if isinstance(recorded, str) and recorded and (Path(recorded).name or recorded) != dataset:
        raise InputError(per_query, "fastir metadata.dataset",
                         f"{recorded!r}, not {dataset!r}: this run was scored on another dataset")


def expand_inputs(args: list[str], dataset: str | None) -> tuple[list[str | Path], list[str] | None, list[str]]:
    """``fastir compare``'s arguments with each experiment dir replaced by its runs of ``dataset``:
    (paths, names or None for the default names, the experiments' recorded baselines)."""
    from fastir.compare.inputs import default_names, find_per_query

    expanded: list[tuple[str | Path, str | None]] = []
    baselines: list[str] = []
    for arg in args:
        if is_experiment_dir(arg):
            exp = experiment_inputs(arg, dataset)
            expanded += list(zip(exp.paths, exp.names))
            baselines += [b for b in exp.baselines if b not in baselines]
        else:
            expanded.append((arg, None))
    if len(expanded) == len(args) and all(n is None for _, n in expanded):
        if dataset is not None:
            raise InputError(None, "--dataset", "applies to an experiment dir (one holding results.json); none given")
        return list(args), None, []
    plain = [i for i, (_, n) in enumerate(expanded) if n is None]
    names = [n for _, n in expanded]
    for i, n in zip(plain, default_names([find_per_query(expanded[i][0]) for i in plain]) if plain else []):
        names[i] = n
    return [p for p, _ in expanded], names, baselines
