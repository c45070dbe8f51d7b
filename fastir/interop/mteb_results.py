"""``fastir export mteb``: a fastir score as MTEB's ``TaskResult`` JSON (``results/<model>/<revision>/<Task>.json``).

One scores entry per cell of the score dir, in the split asked for: ``hf_subset`` is the cell's name
(``de-en``, ``de-de``, ``de-all``), ``languages`` its languages as MTEB writes them (``deu-Latn``:
the task's own codes where its subsets name the language, else MTEB's ISO 639 tables; a pooled cell
lists the query language, then every candidate language), ``main_score`` the value of the task's
main score (``ndcg_at_10`` is fastir's ``ndcg@10``, ``recall_at_k`` its ``recall@k``: the same
definitions, so they are also written under MTEB's keys) or of the fastir metric ``main_score``
names. Every fastir metric is written under its own name (``map``, ``mrr``, ``recall@10``,
``rank_distance``): AP and RR are over the full ranking, never MTEB's truncated ``map_at_1000``.
``fastir`` in each entry records the setting, the queries scored and which metric is the main score.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from pathlib import Path

from fastir.core.errors import InputError, require

EXTRA = "mteb"
FORMAT = "fastir-mteb/1"
# MTEB's key of a cutoff metric whose definition is fastir's (pytrec_eval's ndcg_cut / recall at k)
_SAME = re.compile(r"^(ndcg|recall)_at_([0-9]+)$")
_CELL_COLUMNS = ("query_lang", "cand_lang", "setting", "queries", "skipped", "undecided")


def _mteb():
    return require("mteb", EXTRA, "the MTEB export")


def retrieval_task(name: str):
    """The MTEB task ``name`` (a retrieval task), or InputError."""
    mteb = _mteb()
    try:
        task = mteb.get_task(name)
    except (KeyError, ValueError):
        raise InputError(None, "--task", f"unknown MTEB task {name!r}") from None
    if "Retrieval" not in str(task.metadata.type):
        raise InputError(None, "--task", f"{name} is an MTEB {task.metadata.type} task, not a retrieval task")
    return task


def mteb_metric(name: str, threshold: int = 1) -> str | None:
    """fastir's metric of an MTEB key with the same definition (``ndcg_at_10`` -> ``ndcg@10``), or None.
    MTEB counts every grade >= 1 as relevant: at a relevance ``threshold`` above 1 fastir's recall@k
    is another measure (nDCG's gains are every grade >= 1 either way)."""
    found = _SAME.match(name)
    if found is None or (found.group(1) == "recall" and threshold != 1):
        return None
    return f"{found.group(1)}@{int(found.group(2))}"


def task_result(scores_dir: str | os.PathLike, task: str, split: str | None = None,
                main_score: str | None = None) -> dict:
    """The TaskResult dict (MTEB's JSON) of the score dir ``scores_dir`` for ``task``: see the module docstring.
    ``split``: the MTEB split the cells fill (default the task's first); ``main_score``: the fastir
    metric reported as ``main_score`` (default the task's own main score, which the score must hold)."""
    from fastir.eval.report import read_scores

    _check_not_a_result_file(scores_dir)
    summary, pairs = read_scores(scores_dir)
    meta = retrieval_task(task).metadata
    split = meta.eval_splits[0] if split is None else split
    if split not in meta.eval_splits:
        raise InputError(None, "--split", f"{split!r} is not a split of {meta.name} ({', '.join(meta.eval_splits)})")
    rows = pairs.to_pylist()
    metrics = [c for c in pairs.column_names if c not in _CELL_COLUMNS]
    main = _main_metric(main_score, meta, metrics, rows, scores_dir, summary.get("relevance_threshold", 1))
    codes = _language_codes(summary, meta)
    entries = [_entry(row, metrics, main, codes, summary) for row in rows]
    return {"dataset_revision": str(meta.dataset.get("revision") or ""), "task_name": meta.name,
            "mteb_version": _mteb().__version__, "scores": {split: entries}, "evaluation_time": None,
            "kg_co2_emissions": None, "date": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def _main_metric(asked: str | None, meta, metrics: list[str], rows: list[dict], scores_dir, threshold: int) -> str:
    """The fastir metric written as ``main_score``: ``asked``, else the task's main score's twin."""
    if asked is not None and asked not in metrics:
        raise InputError(scores_dir, "--main-score", f"{asked!r} is not among the scored metrics "
                                                     f"({', '.join(metrics)})")
    if asked is None:
        asked = mteb_metric(meta.main_score, threshold)
        if asked is None or asked not in metrics:
            how = f"fastir's {asked}" if asked else "no fastir metric"
            raise InputError(scores_dir, "--main-score", f"{meta.name}'s main score {meta.main_score} is {how}, "
                                                         "which this score does not hold: rescore with --metrics "
                                                         f"naming it, or pass --main-score one of {', '.join(metrics)}")
    if any(row[asked] is None for row in rows):
        raise InputError(scores_dir, "--main-score", f"{asked} is not defined on every cell (pooled cells only)")
    return asked


def _check_not_a_result_file(path: str | os.PathLike) -> None:
    """SCORES is a directory: a file given instead (an MTEB result, say) is named as what it is."""
    from fastir.core.textfiles import read_json

    path = Path(path)
    if path.is_file():
        found = read_json(path) if path.suffix == ".json" else None
        task = found.get("task_name") if isinstance(found, dict) else None
        what = f"an MTEB result file (task {task})" if isinstance(task, str) else "a file"
        raise InputError(path, None, f"{what}, not a `fastir score` output dir")


def _entry(row: dict, metrics: list[str], main: str, codes: dict[str, str], summary: dict) -> dict:
    x, s = row["query_lang"], row["cand_lang"]
    langs = [codes[x]] + ([codes[y] for y in summary["cand_langs"] if y != x] if row["setting"] == "multi"
                          else [] if s == x else [codes[s]])
    entry = {"hf_subset": f"{x}-{s}", "languages": langs, "main_score": _number(row[main])}
    for name in metrics:  # a pooled-only metric (rank distance) is left out of the other cells
        if _number(row[name]) is not None:
            entry[name] = _number(row[name])
    threshold = summary.get("relevance_threshold", 1)
    for name in metrics:
        key = name.replace("@", "_at_")
        if mteb_metric(key, threshold) == name and name in entry:
            entry[key] = entry[name]
    entry["fastir"] = {"format": FORMAT, "setting": row["setting"], "queries": row["queries"],
                       "skipped": row["skipped"], "main_score": main,
                       "relevance_threshold": summary.get("relevance_threshold", 1),
                       "model": (summary.get("run") or {}).get("model")}
    return entry


def _number(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def _language_codes(summary: dict, meta) -> dict[str, str]:
    """fastir language -> MTEB ``xxx-Scrp`` code: the task's subsets first, then MTEB's ISO 639 tables."""
    from mteb.languages.iso_mappings import _hf_lang_to_iso_lang_script

    known: dict[str, str] = {}
    for subset, langs in (meta.eval_langs.items() if isinstance(meta.eval_langs, dict) else ()):
        parts = subset.split("-")
        if len(parts) == len(langs):
            for part, code in zip(parts, langs):
                known.setdefault(part, code)
    codes = {}
    for lang in dict.fromkeys([*summary["query_langs"], *summary["cand_langs"]]):
        code = known.get(lang) or _hf_lang_to_iso_lang_script(lang)
        if code is None:
            raise InputError(None, "lang", f"no ISO 639 code for the language {lang!r} (not in {meta.name}'s "
                                           "subsets nor MTEB's tables)")
        codes[lang] = code
    return codes


def export_mteb(scores_dir: str | os.PathLike, task: str, out: str | os.PathLike | None = None,
                split: str | None = None, main_score: str | None = None, overwrite: bool = False) -> Path:
    """Write :func:`task_result` to ``out`` (default ``<Task>.json`` here), atomically; checked
    loadable by ``mteb.results.TaskResult`` first. An existing ``out`` needs ``overwrite`` and must
    be a result of the same task."""
    from fastir.core.outputs import atomic_file, check_output_file

    result = task_result(scores_dir, task, split, main_score)
    out = Path(out) if out is not None else Path(f"{result['task_name']}.json")
    check_output_file(out, overwrite, inputs=[scores_dir])
    if out.exists():
        _check_same_task(out, result["task_name"])
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    _mteb().results.TaskResult.model_validate_json(text)  # MTEB's own validation, before anything is written
    with atomic_file(out, "w") as fh:
        fh.write(text)
    return out


def _check_same_task(path: Path, task_name: str) -> None:
    from fastir.core.textfiles import read_json

    old = read_json(path)
    found = old.get("task_name") if isinstance(old, dict) else None
    if found != task_name:
        what = f"the results of the MTEB task {found}" if isinstance(found, str) else "no MTEB task result"
        raise InputError(path, "task_name", f"holds {what}, not of {task_name}: choose another output")
