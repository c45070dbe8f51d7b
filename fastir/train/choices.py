"""Choices of the batch sampler and the trainer, in a module that imports nothing heavy.

``fastir --help`` imports every sub-command module, so the CLI takes these lists from here
rather than from ``fastir.train.sampler`` / ``fastir.train.loop`` (which import numpy and pyarrow).
The strategy names come from the strategy registry (:mod:`fastir.train.strategies`, light too).
"""

from fastir.train.strategies import ALPHA_MODES
from fastir.train.strategies import NAMES as STRATEGIES

SOURCE_MODES = ("proportional", "uniform", "mixed")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")

__all__ = ["STRATEGIES", "SOURCE_MODES", "PRECISIONS", "ALPHA_MODES"]
