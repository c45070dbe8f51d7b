"""Choices of the batch sampler and the trainer, in a module that imports nothing heavy.

``fastir --help`` imports every sub-command module, so the CLI takes these lists from here
rather than from ``fastir.sampling.sampler`` / ``fastir.train.loop`` (which import numpy and pyarrow).
The strategy names come from the strategy registry (:mod:`fastir.sampling.strategies`, light too).
"""

from fastir.sampling.strategies import ALPHA_MODES
from fastir.sampling.strategies import NAMES as STRATEGIES

SOURCE_MODES = ("proportional", "uniform", "mixed")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")

__all__ = ["STRATEGIES", "SOURCE_MODES", "PRECISIONS", "ALPHA_MODES"]
