"""fastir: fast, exact evaluation and training of multilingual dense retrievers.

Importing this package stays light: torch, transformers and numba are imported only by the
functions and commands that need them (``fastir.encode`` loads torch on first call).
"""

from __future__ import annotations


__all__ = ["__version__", "encode", "FastirError", "InputError"]

from fastir.core import __version__
from fastir.core.errors import FastirError, InputError


def __getattr__(name: str):
    # Lazy so that `import fastir` does not import torch/transformers.
    if name == "encode":
        from fastir.encoding.encoder import encode

        return encode
    raise AttributeError(f"module 'fastir' has no attribute {name!r}")
