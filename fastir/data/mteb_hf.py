"""MTEB-format retrieval datasets in a local Hugging Face dataset folder, one subset per language.

The layout MTEB's own retrieval loader reads (``mteb.abstasks.retrieval_dataset_loaders``): a
dataset folder (a hub repo downloaded with ``hf download REPO --repo-type dataset --local-dir
DIR``) whose README.md declares, for each language subset ``{lang}``, the configs ``{lang}-corpus``
(``_id`` or ``id``, ``text``, optional ``title``), ``{lang}-queries`` (``_id`` or ``id``, ``text``)
and ``{lang}-qrels`` (``query-id``, ``corpus-id``, ``score``), their data files in
``{lang}-corpus/{split}-*.parquet`` and so on, as ``datasets``' ``push_to_hub`` writes them. The
subset's name is the language (XQuADRetrieval, MIRACLRetrieval); ids become ``{lang}:{id}``, so a
pooled X→all cell pools every subset's corpus. Document text is ``title + " " + text`` (BEIR's).
The split: the only one, else test, else dev, else validation, the same in every subset.

Rows are read through ``datasets`` in streaming mode (no cache written); ``pip install 'fastir[mteb]'``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastir.core.errors import InputError, require
from fastir.core.names import check_lang, check_langs
from fastir.data.dataset import dataset_checksum, sha256_file
from fastir.data.records import Part, RecordsDataset, build

KINDS = ("corpus", "queries", "qrels")
SPLIT_PREFERENCE = ("test", "dev", "validation")
EXTRA = "mteb"
_BATCH = 65536


def _datasets():
    return require("datasets", EXTRA, "reading an MTEB-format dataset folder")


def open_directory(path: str | os.PathLike, langs: list[str] | None = None) -> RecordsDataset:
    """Registry opener: read and validate an MTEB-format Hugging Face dataset folder."""
    root = Path(path)
    subsets = _subsets(root)
    if langs is not None:
        check_langs(langs, None, "--langs")
        unknown = [lang for lang in langs if lang not in subsets]
        if unknown:
            raise InputError(root, "langs", f"unknown language(s) {','.join(unknown)}; available: {','.join(subsets)}")
    chosen = [lang for lang in subsets if langs is None or lang in langs]
    split = _split(root, chosen)
    parts = [_part(root, lang, split) for lang in chosen]
    shas = {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not any(x.startswith(".") for x in p.relative_to(root).parts)}
    return build(root.name, str(root), "mteb", split, parts, langs, dataset_checksum(shas))


def _call(root: Path, what: str, fn, *args, **kwargs):
    """A ``datasets`` call whose failure (a missing or malformed file) is one line naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for unreadable data
        raise InputError(root, what, f"cannot read: {' '.join(str(exc).split())[:300]}") from None


def _subsets(root: Path) -> list[str]:
    """The languages whose three configs (``{lang}-corpus``, ``-queries``, ``-qrels``) the folder declares."""
    datasets = _datasets()
    configs = set(_call(root, "configs", datasets.get_dataset_config_names, str(root)))
    langs = sorted({c[: -len("-corpus")] for c in configs if c.endswith("-corpus")})
    for lang in langs:
        check_lang(lang, root, f"subset {lang}-corpus")
        missing = [f"{lang}-{kind}" for kind in KINDS if f"{lang}-{kind}" not in configs]
        if missing:
            raise InputError(root, missing[0], "config missing (README.md declares its corpus)")
    if not langs:
        raise InputError(root, "configs", "no {lang}-corpus / -queries / -qrels configs: fastir reads the "
                                          "per-language subsets of an MTEB-format dataset")
    return langs


def _split(root: Path, langs: list[str]) -> str:
    datasets = _datasets()
    common = None
    for lang in langs:
        for kind in KINDS:
            names = set(_call(root, f"{lang}-{kind}", datasets.get_dataset_split_names, str(root), f"{lang}-{kind}"))
            common = names if common is None else common & names
    if len(common) == 1:
        return common.pop()
    pick = next((s for s in SPLIT_PREFERENCE if s in common), None)
    if pick is None:
        raise InputError(root, "split", f"no split common to every config is one of {', '.join(SPLIT_PREFERENCE)} "
                                        f"(common: {', '.join(sorted(common)) or 'none'})")
    return pick


def _rows(root: Path, config: str, split: str, columns: tuple[str, ...]):
    """Batches (dicts of lists) of a config's split, streamed; ``columns``: required (``_id`` or ``id``)."""
    datasets = _datasets()
    ds = _call(root, config, datasets.load_dataset, str(root), config, split=split, streaming=True)
    batches = iter(ds.iter(batch_size=_BATCH))
    while (batch := _call(root, config, next, batches, None)) is not None:
        if "_id" in batch and "id" not in batch:
            batch["id"] = batch["_id"]
        for column in columns:
            if column not in batch:
                raise InputError(root, f"{config}: {column}", f"missing column (has {', '.join(batch)})")
        yield batch


def _strings(values, root: Path, config: str, column: str) -> list[str]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, int) and not isinstance(v, bool) and column.endswith("id"):
            v = str(v)
        if not isinstance(v, str):
            raise InputError(root, f"{config}: {column}", f"row {i}: expected a string, found {type(v).__name__}")
        out.append(v)
    return out


def _part(root: Path, lang: str, split: str) -> Part:
    prefix = f"{lang}:"
    queries, qrels, doc_ids = [], [], []
    for b in _rows(root, f"{lang}-queries", split, ("id", "text")):
        ids, texts = (_strings(b[c], root, f"{lang}-queries", c) for c in ("id", "text"))
        queries += [(prefix + q, t) for q, t in zip(ids, texts)]
    for b in _rows(root, f"{lang}-qrels", split, ("query-id", "corpus-id", "score")):
        q, d = (_strings(b[c], root, f"{lang}-qrels", c) for c in ("query-id", "corpus-id"))
        grades = [_grade(g, root, f"{lang}-qrels") for g in b["score"]]
        qrels += [(prefix + a, prefix + c, g) for a, c, g in zip(q, d, grades)]
    for b in _rows(root, f"{lang}-corpus", split, ("id", "text")):
        doc_ids += [prefix + d for d in _strings(b["id"], root, f"{lang}-corpus", "id")]
        _strings(b["text"], root, f"{lang}-corpus", "text")
        if b.get("title") is not None:
            _strings([t or "" for t in b["title"]], root, f"{lang}-corpus", "title")

    def stream():
        for b in _rows(root, f"{lang}-corpus", split, ("id", "text")):
            titles = b.get("title") or [""] * len(b["id"])
            for d, title, text in zip(b["id"], titles, b["text"]):
                yield prefix + str(d), f"{title} {text}" if title else text

    return Part(lang, f"{root}: {lang}", queries, qrels, doc_ids, stream)


def _grade(value, root: Path, config: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(root, f"{config}: score", f"expected an integer grade >= 0, found {value!r}")
    return value
