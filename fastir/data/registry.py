"""Datasets by name, and directory layouts by what they contain.

Adding a dataset is one entry here plus its own module, which provides the opener: a function
``(source, langs) -> Dataset`` (see :mod:`fastir.data.dataset`). This module imports nothing
heavy: the CLI reads the names for ``--help``; the opener's module is imported on first use.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from fastir.core.errors import InputError


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset known by name: ``opener`` ("module:function") is called as ``fn(name, langs)``."""

    name: str
    opener: str
    description: str


@dataclass(frozen=True)
class LayoutEntry:
    """A directory layout: a directory matching any of ``markers`` (globs relative to it) is opened
    with ``opener`` called as ``fn(path, langs)``. Layouts are tried in order."""

    name: str
    opener: str
    markers: tuple[str, ...]
    description: str


DATASETS = {e.name: e for e in (
    DatasetEntry("xquad-r", "fastir.data.lareqa:open_bundled", "LAReQA XQuAD-R, 11 languages (bundled)"),
    DatasetEntry("mlqa-r", "fastir.data.lareqa:open_bundled", "LAReQA MLQA-R, 7 languages (bundled)"),
)}

LAYOUTS = (
    LayoutEntry("beir", "fastir.data.beir:open_directory", ("corpus.jsonl", "*/corpus.jsonl"),
                "BEIR-style corpus.jsonl + queries.jsonl + qrels/{split}.tsv, or one such directory per language"),
    LayoutEntry("mteb", "fastir.data.mteb_hf:open_directory", ("*-corpus/*",),
                "an MTEB-format Hugging Face dataset folder, configs {lang}-corpus / -queries / -qrels"),
    LayoutEntry("lareqa", "fastir.data.lareqa:open_directory", ("*.json",),
                "LAReQA {lang}.json files (SQuAD format with sentence_breaks)"),
)


# Collections named by a prefix and the ids of another library: prefix -> (opener, description).
SCHEMES = {
    "irds:": ("fastir.data.irds:open_ids", "irds:ID[,ID...] for ir_datasets collections, one pool"),
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def choices_text() -> str:
    """One line for ``--help`` and error messages: the names and the directory layouts."""
    layouts = "; ".join(layout.description for layout in LAYOUTS)
    schemes = "".join(f", or {description}" for _, description in SCHEMES.values())
    return f"{', '.join(DATASETS)}, or a directory ({layouts}){schemes}"


def _call(target: str, *args):
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)(*args)


def layout_of(path: Path) -> LayoutEntry | None:
    """The first layout whose markers match ``path`` (a directory), or None."""
    for layout in LAYOUTS:
        if any(next(path.glob(marker), None) is not None for marker in layout.markers):
            return layout
    return None


def open_dataset(source: str | os.PathLike, langs: list[str] | None = None):
    """The :class:`fastir.data.dataset.Dataset` named ``source``, or read from the directory
    ``source``; ``langs`` keeps those languages only (None: all)."""
    key = os.fspath(source)
    if langs is not None and not langs:
        raise InputError(None, "--langs", "empty language list")
    entry = DATASETS.get(key)
    if entry is not None:
        return _call(entry.opener, key, langs)
    scheme = next((prefix for prefix in SCHEMES if key.startswith(prefix)), None)
    if scheme is not None:
        return _call(SCHEMES[scheme][0], key, langs)
    path = Path(key)
    if not path.is_dir():
        raise InputError(key, "dataset", f"unknown dataset: not a name ({', '.join(DATASETS)}) nor a directory")
    layout = layout_of(path)
    if layout is None:
        raise InputError(key, "dataset", f"no known dataset layout in this directory; expected {choices_text()}")
    return _call(layout.opener, path, langs)
