"""What a Hugging Face model folder declares: sentence-transformers modules, pooling, max length.

A hub id passes through untouched; a local path must be a model folder (``config.json`` or a
sentence-transformers ``modules.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from fastir.core.errors import InputError

POOLINGS = ("cls", "mean", "pooler")  # here, not in hf.py: the CLI's choices stay light (no numpy)
# Files any Hugging Face tokenizer is built from; a model dir with none of them has no tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model",
    "spiece.model", "tokenizer.model", "merges.txt",
)


@dataclass
class SentenceTransformersConfig:
    """What a sentence-transformers folder declares (all None/False for a plain HF model)."""

    transformer_dir: Path | None = None  # where config.json / weights live (root or 0_Transformer)
    pooling: str | None = None
    pooling_file: Path | None = None
    pooling_unsupported: str | None = None
    normalize: bool = False
    max_seq_length: int | None = None


def read_sentence_transformers_config(path: Path) -> SentenceTransformersConfig:
    st = SentenceTransformersConfig()
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return st
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(modules_file, "json", f"malformed JSON at line {exc.lineno}: {exc.msg}") from None
    for module in modules if isinstance(modules, list) else []:
        kind = str(module.get("type", ""))
        sub = path / str(module.get("path", ""))
        if kind.endswith(".Transformer"):
            st.transformer_dir = sub
        elif kind.endswith(".Pooling"):
            st.pooling_file = sub / "config.json"
            st.pooling, st.pooling_unsupported = _st_pooling(st.pooling_file)
        elif kind.endswith(".Normalize"):
            st.normalize = True
    for cfg_dir in filter(None, (st.transformer_dir, path)):
        cfg = cfg_dir / "sentence_bert_config.json"
        if cfg.is_file():
            try:
                value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
            except json.JSONDecodeError as exc:
                raise InputError(cfg, "json", f"malformed JSON at line {exc.lineno}: {exc.msg}") from None
            st.max_seq_length = int(value) if isinstance(value, int) else None
            break
    return st


def _st_pooling(file: Path) -> tuple[str | None, str | None]:
    """(supported pooling, or None and the name of the unsupported mode it declares)."""
    if not file.is_file():
        return None, None
    try:
        cfg = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(file, "json", f"malformed JSON at line {exc.lineno}: {exc.msg}") from None
    on = [k.removeprefix("pooling_mode_") for k, v in cfg.items() if k.startswith("pooling_mode") and v is True]
    names = {"cls_token": "cls", "mean_tokens": "mean"}
    if len(on) == 1 and on[0] in names:
        return names[on[0]], None
    return None, "+".join(on) or "none"


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else is meant as a local path.
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def resolve_model_dir(model: str) -> tuple[str, Path | None]:
    """(what to pass to from_pretrained, local directory or None for a hub id)."""
    path = Path(os.path.expanduser(model))
    if path.exists():
        if not path.is_dir():
            raise InputError(model, None, "model path is not a directory")
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise InputError(model, "config.json", "missing: not a Hugging Face model directory")
        return str(path), path
    if _looks_like_path(model):
        raise InputError(model, None, "model directory does not exist")
    return model, None

