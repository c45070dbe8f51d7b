"""The ``hf`` backend: a Hugging Face encoder (hub id or local folder), tokenized once, sorted by
length, batched by a token budget.

* Pooling: ``cls`` (first token), ``mean`` (mask-weighted mean; padding never leaks in) or
  ``pooler`` (the model's ``pooler_output``). A sentence-transformers folder's
  ``1_Pooling/config.json`` gives the default, else ``cls``; its ``modules.json`` declaring a
  ``Normalize`` module makes normalisation the default (:mod:`fastir.encoding.hf_folder`).
* Device and dtype: :mod:`fastir.encoding.device` (``bf16-mixed``: :mod:`fastir.encoding.bf16_mixed`);
  the :class:`Encoder` records what was actually used.
* Pooling and normalisation run in fp32 whatever the model's dtype.

torch and transformers are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from fastir.encoding.device import COMPUTE_NAMES, choose_dtype, dtype_name, load_dtype, resolve_device
from fastir.encoding.hf_folder import (
    POOLINGS, TOKENIZER_FILES, SentenceTransformersConfig, read_sentence_transformers_config, resolve_model_dir,
)
from fastir.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

# Padded tokens per forward pass. Sorted-by-length batches make padding nearly free, so this is
# essentially the number of real tokens per batch. A GPU wants large batches to fill its SMs;
# a CPU is faster with activations that stay in cache (measured on MiniLM, see docs/embed.md).
CUDA_BATCH_TOKENS = 16384
CPU_BATCH_TOKENS = 2048
DEFAULT_BATCH_TOKENS = None  # encode(): pick per device


def default_batch_tokens(device) -> int:
    return CUDA_BATCH_TOKENS if getattr(device, "type", str(device)).startswith("cuda") else CPU_BATCH_TOKENS


# Position-embedding offsets: RoBERTa-style models reserve padding_idx + 1 positions.
_ROBERTA_LIKE = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "mpnet", "bart")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


# ---------------------------------------------------------------------------------------- encoder


@dataclass
class Tokenized:
    """Token ids of many texts, unpadded (tokenized once, batched later); one int32 array per text."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


# Texts per tokenizer call: bounds the tokenizer's Python lists (compact int32 arrays are kept).
_TOKENIZE_CHUNK = 4096


@dataclass
class Encoder:
    """A loaded encoder: model + tokenizer + pooling, on the device and in the dtype actually used."""

    model: object
    tokenizer: object
    pooling: str
    device: "torch.device"
    dtype: "torch.dtype"
    max_length: int
    normalize_default: bool
    name: str = ""
    model_max_length: int = 0
    attn_implementation: str = ""
    dtype_reason: str = ""  # why this dtype (fastir.encoding.device.choose_dtype)
    compute_dtype: str = ""  # run.json's name when it differs from the weights' dtype ("bfloat16-mixed")
    backend = "hf"  # the registry name (fastir.encoding.backends); a class attribute, not a field

    # -- the backend interface (fastir.encoding.backends.Backend)
    def prepare(self, texts: Sequence[str], *, prefix: str = "", text_pairs: Sequence[str] | None = None) -> Tokenized:
        return self.tokenize(texts, text_pairs=text_pairs, prefix=prefix)

    def plan(self, tok: Tokenized, batch_tokens: int | None = None) -> list[np.ndarray]:
        """Batches of at most ``batch_tokens`` padded tokens (None: the device's default)."""
        return plan_batches(tok.lengths, batch_tokens or default_batch_tokens(self.device))

    def record(self, batch_tokens: int | None = None) -> dict:
        """What run.json records about this encoder."""
        import transformers

        return {"backend": self.backend, "backend_version": transformers.__version__, "model": self.name,
                "pooling": self.pooling, "max_length": self.max_length, "device": self.device.type,
                "compute_dtype": self.compute_dtype or dtype_name(self.dtype), "compute_dtype_reason": self.dtype_reason,
                "attn_implementation": self.attn_implementation,
                "batch_tokens": batch_tokens or default_batch_tokens(self.device)}

    # -- tokenization
    def tokenize(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, prefix: str = ""
    ) -> Tokenized:
        """Tokenize all texts once (no padding), truncated to ``max_length``.

        With ``text_pairs`` each text is encoded as a pair (text, pair) with ``longest_first``
        truncation, as BERT-style models encode a sentence together with its context.
        """
        texts = list(texts)
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text_pairs")
        kwargs = dict(truncation="longest_first" if text_pairs is not None else True, max_length=self.max_length,
                      padding=False, return_attention_mask=False)
        ids: list[np.ndarray] = []
        types: list[np.ndarray] | None = [] if self._uses_token_types else None
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            first = [prefix + t for t in texts[start : start + _TOKENIZE_CHUNK]]
            pairs = list(text_pairs[start : start + _TOKENIZE_CHUNK]) if text_pairs is not None else None
            out = self.tokenizer(first, text_pair=pairs, **kwargs)
            ids.extend(np.asarray(x, dtype=np.int32) for x in out["input_ids"])
            if types is not None:
                chunk_types = out.get("token_type_ids") or [[0] * len(x) for x in out["input_ids"]]
                types.extend(np.asarray(x, dtype=np.int32) for x in chunk_types)
        return Tokenized(ids, types)

    @property
    def _uses_token_types(self) -> bool:
        return getattr(self.model.config, "type_vocab_size", 0) and self.model.config.type_vocab_size > 1

    # -- forward
    def model_inputs(self, tok: Tokenized, rows: np.ndarray) -> dict:
        """The rows ``rows`` of ``tok`` as one right-padded batch: the model's keyword inputs
        (``input_ids``, ``attention_mask``, and ``token_type_ids`` when the model uses them),
        int64 tensors on the device. ``fastir embed`` and ``fastir train`` both feed the model this."""
        import torch

        lengths = tok.lengths[rows]
        width = int(lengths.max())
        ids = np.full((len(rows), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64) if tok.token_type_ids is not None else None
        for i, r in enumerate(rows):
            n = lengths[i]
            ids[i, :n] = tok.input_ids[r]
            mask[i, :n] = 1
            if types is not None:
                types[i, :n] = tok.token_type_ids[r]
        inputs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if types is not None:
            inputs["token_type_ids"] = torch.from_numpy(types)
        return {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}

    def forward(self, tok: Tokenized, rows: np.ndarray, normalize: bool) -> "torch.Tensor":
        """Embed the rows ``rows`` of ``tok`` as one padded batch; returns (B, D) fp32 on the device."""
        import torch

        inputs = self.model_inputs(tok, rows)
        out = self.model(**inputs)
        emb = pool(out.last_hidden_state, inputs["attention_mask"], self.pooling,
                   pooler_output=getattr(out, "pooler_output", None))
        if normalize:
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        return emb

    def iter_encode(
        self, tok: Tokenized, batches: Sequence[np.ndarray], normalize: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (rows, fp32 embeddings) per batch, under ``torch.inference_mode``."""
        import torch

        with torch.inference_mode():
            for rows in batches:
                yield rows, self.forward(tok, rows, normalize).cpu().numpy()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)


def pool(last_hidden_state, attention_mask, pooling: str, pooler_output=None):
    """Pool token states (B, T, D) into (B, D) fp32.

    ``mean``: sum_t h_t m_t / max(sum_t m_t, 1e-9) — padded positions (m_t = 0) contribute nothing;
    ``cls``: h_0; ``pooler``: the model's ``pooler_output``.
    """
    if pooling == "cls":
        return last_hidden_state[:, 0].float()
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).float()
        summed = (last_hidden_state.float() * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        return summed / counts
    if pooling == "pooler":
        if pooler_output is None:
            raise InputError(None, "--pooling", "pooler: this model has no pooler output; use cls or mean")
        return pooler_output.float()
    raise InputError(None, "--pooling", f"expected one of {', '.join(POOLINGS)}, found {pooling!r}")


def plan_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Row indices sorted by length (longest first, stable), cut into batches of at most
    ``batch_tokens`` padded tokens (at least one row per batch).

    Longest-first puts the largest activation first (an out-of-memory error shows at once), and
    each batch's padded width is its first row's length.
    """
    if batch_tokens <= 0:
        raise InputError(None, "--batch-tokens", f"must be positive, found {batch_tokens}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches = []
    start = 0
    n = len(order)
    while start < n:
        width = max(1, int(lengths[order[start]]))
        size = max(1, batch_tokens // width)
        batches.append(order[start : start + size])
        start += size
    return batches


# ----------------------------------------------------------------------------------------- loading


def load_encoder(
    model: str | os.PathLike,
    *,
    pooling: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    max_length: int | None = None,
) -> Encoder:
    """Load a Hugging Face encoder (hub id or local folder, sentence-transformers folders included).

    Raises :class:`InputError` for an unknown path, a folder without a tokenizer, an unsupported
    pooling, or a ``max_length`` above what the model's position embeddings allow.
    """
    model = os.fspath(model)
    if pooling is not None and pooling not in POOLINGS:
        raise InputError(None, "--pooling", f"expected one of {', '.join(POOLINGS)}, found {pooling!r}")
    source, local = resolve_model_dir(model)
    st = read_sentence_transformers_config(local) if local is not None else SentenceTransformersConfig()
    transformer_src = str(st.transformer_dir) if st.transformer_dir is not None else source
    if pooling is None:
        if st.pooling_unsupported is not None:
            raise InputError(st.pooling_file, "pooling_mode",
                             f"declares {st.pooling_unsupported} pooling, which fastir does not support; "
                             f"pass --pooling {'|'.join(POOLINGS)}")
        pooling = st.pooling or "cls"

    torch_device = resolve_device(device)
    mode, dtype_reason = choose_dtype(dtype, torch_device)

    from transformers import AutoConfig

    torch_dtype = load_dtype(mode)

    try:
        config = AutoConfig.from_pretrained(transformer_src)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(model, "config.json", f"cannot load model config: {_one_line(exc)}") from None
    tokenizer = _load_tokenizer(model, transformer_src, local, st)
    limit = _model_limit(config, tokenizer)
    max_length = check_max_length(max_length, _own_max_length(st, limit), limit)

    hf_model, attn = _load_model(model, transformer_src, torch_dtype)
    if pooling == "pooler" and getattr(hf_model, "pooler", None) is None:
        raise InputError(None, "--pooling", "pooler: this model has no pooler layer (or none with weights in the "
                                            "checkpoint); use cls or mean")
    hf_model.to(torch_device).eval()
    if mode == "bf16-mixed":
        from fastir.encoding.bf16_mixed import to_bf16_mixed

        to_bf16_mixed(hf_model)
    return Encoder(
        model=hf_model, tokenizer=tokenizer, pooling=pooling, device=torch_device, dtype=torch_dtype,
        max_length=int(max_length), normalize_default=st.normalize, name=model, model_max_length=limit,
        attn_implementation=attn, dtype_reason=dtype_reason, compute_dtype=COMPUTE_NAMES[mode],
    )


def _own_max_length(st: SentenceTransformersConfig, limit: int) -> int:
    """The model's own length: its sentence-transformers ``max_seq_length`` (capped), else its limit."""
    return min(st.max_seq_length, limit) if st.max_seq_length else limit


def check_max_length(max_length: int | None, own: int, limit: int, option: str = "--max-length") -> int:
    """``max_length``, or ``own`` when None; positive and at most ``limit``, else InputError on ``option``."""
    if max_length is None:
        return own
    if max_length <= 0:
        raise InputError(None, option, f"must be positive, found {max_length}")
    if max_length > limit:
        raise InputError(None, option, f"{max_length} is above the model's limit of {limit} tokens")
    return int(max_length)


def model_max_lengths(model: str | os.PathLike) -> tuple[int, int]:
    """(the model's own length, its limit) as :func:`load_encoder` resolves them, without loading
    weights: what ``fastir embed`` uses when no ``--max-length`` is given."""
    from transformers import AutoConfig

    model = os.fspath(model)
    source, local = resolve_model_dir(model)
    st = read_sentence_transformers_config(local) if local is not None else SentenceTransformersConfig()
    transformer_src = str(st.transformer_dir) if st.transformer_dir is not None else source
    try:
        config = AutoConfig.from_pretrained(transformer_src)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(model, "config.json", f"cannot load model config: {_one_line(exc)}") from None
    limit = _model_limit(config, _load_tokenizer(model, transformer_src, local, st))
    return _own_max_length(st, limit), limit


def _load_tokenizer(model: str, source: str, local: Path | None, st: SentenceTransformersConfig):
    from transformers import AutoTokenizer

    if local is not None:
        dirs = [d for d in (st.transformer_dir, local) if d is not None]
        if not any((d / f).is_file() for d in dirs for f in TOKENIZER_FILES):
            raise InputError(model, "tokenizer", "no tokenizer files (tokenizer.json, vocab.txt, ...) in the model directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(model, "tokenizer", f"cannot load tokenizer: {_one_line(exc)}") from None
    if tokenizer is None or isinstance(tokenizer, bool):
        raise InputError(model, "tokenizer", "cannot load tokenizer")
    return tokenizer


def _model_limit(config, tokenizer) -> int:
    """Longest input the model accepts: its position embeddings (and the tokenizer's declared limit)."""
    limits = []
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        offset = (int(getattr(config, "pad_token_id", 1) or 1) + 1) if config.model_type in _ROBERTA_LIKE else 0
        limits.append(positions - offset)
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:
        limits.append(declared)
    return min(limits) if limits else 512


def _load_model(model: str, source: str, torch_dtype) -> tuple[object, str]:
    from safetensors import SafetensorError
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    # transformers' per-tensor "Loading weights" bar would bury the one-line messages; restore after.
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    # its many-line load report too: what matters in it (weights missing from the checkpoint) is said
    # below, in one line or one refusal
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():  # torch's note on a pickle's protocol precedes the refusal below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            try:
                hf, info = AutoModel.from_pretrained(source, dtype=torch_dtype, attn_implementation="sdpa",
                                                     output_loading_info=True)
            except (ValueError, ImportError):
                # Architectures without SDPA support fall back to their default attention.
                hf, info = AutoModel.from_pretrained(source, dtype=torch_dtype, output_loading_info=True)
    except SafetensorError as exc:  # a truncated or corrupt model.safetensors
        raise InputError(model, "weights", f"unreadable safetensors file ({_one_line(exc)}): the model "
                                           "file is truncated or corrupt") from None
    except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) met code, not tensors
        raise InputError(model, "weights", f"pytorch_model.bin holds more than tensors (torch: "
                                           f"{_one_line(exc).split('. ')[0]}): fastir runs no code from a model "
                                           "file; use model.safetensors") from None
    except (RuntimeError, EOFError) as exc:
        if not isinstance(exc, EOFError) and "PytorchStreamReader" not in str(exc):
            raise
        raise InputError(model, "weights", f"unreadable pytorch_model.bin ({_one_line(exc)[:160]}): the model "
                                           "file is truncated or corrupt") from None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(model, None, f"cannot load model weights: {_one_line(exc)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar_was_on:
            hf_logging.enable_progress_bar()
    _drop_uninitialised(model, hf, info.get("missing_keys") or [])
    return hf, str(getattr(hf.config, "_attn_implementation", "") or "")


def _drop_uninitialised(model: str, hf, missing: Sequence[str]) -> None:
    """Weights the checkpoint lacks are random: a pooler head without weights (e.g. a converted
    sentence encoder's) is removed, so ``--pooling pooler`` is refused instead of pooling through
    random weights; any other missing weight is said in one warning line."""
    from fastir.core.errors import warn

    pooler = [k for k in missing if k.split(".")[0] == "pooler"]
    if pooler and getattr(hf, "pooler", None) is not None:
        hf.pooler = None
    others = [k for k in missing if k not in pooler]
    if others:
        warn(f"{model}: weights: {len(others)} tensor(s) missing from the checkpoint are random "
             f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})")

