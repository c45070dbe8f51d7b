"""What a Hugging Face model folder declares: sentence-transformers modules, pooling, max length.

A hub id passes through untouched; a local path must be a model folder (``config.json`` or a
sentence-transformers ``modules.json``). :func:`sentence_transformers_files` writes the
sentence-transformers part of a folder fastir makes (a training checkpoint, a converted model).
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

# sentence-transformers pooling flags for the poolings fastir has a name for. "pooler" (BERT's
# tanh pooler over [CLS]) has no sentence-transformers equivalent: its 1_Pooling/config.json sets
# no mode, so `fastir embed` refuses to guess and asks for --pooling instead of silently using cls.
_ST_POOLING = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "pooler": None}


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
    mode = cfg.get("pooling_mode")
    if isinstance(mode, str):  # sentence-transformers >= 5 names the one mode: {"pooling_mode": "mean"}
        return (mode, None) if mode in ("cls", "mean") else (None, mode)
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


# What :func:`sentence_transformers_files` writes into a model folder.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "1_Pooling", "2_Normalize", "sentence_bert_config.json",
                               "config_sentence_transformers.json")


def sentence_transformers_files(directory: Path, *, pooling: str, dim: int, max_length: int,
                                query_prefix: str, passage_prefix: str, normalize: bool) -> None:
    """Describe pooling, normalisation and prompts the sentence-transformers way, which ``fastir embed``
    reads (and sentence-transformers itself): for training checkpoints and converted models."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    if pooling in _ST_POOLING:  # always true for fastir's poolings
        flags = {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        }
        if _ST_POOLING[pooling]:
            flags[_ST_POOLING[pooling]] = True
        (directory / "1_Pooling").mkdir()
        (directory / "1_Pooling" / "config.json").write_text(json.dumps(flags, indent=2) + "\n", encoding="utf-8")
        modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
        if normalize:
            (directory / "2_Normalize").mkdir()
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2) + "\n", encoding="utf-8")
    prompts = {"query": query_prefix, "document": passage_prefix}
    (directory / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"}, indent=2)
        + "\n", encoding="utf-8")
