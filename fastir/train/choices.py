"""Choices of the batch sampler and the trainer, in a module that imports nothing heavy.

``fastir --help`` imports every sub-command module, so the CLI takes these lists from here
rather than from ``fastir.train.sampler`` / ``fastir.train.loop`` (which import numpy and pyarrow).
"""

STRATEGIES = ("x-x-mono", "x-x", "x-y", "hybrid", "en-en")
SOURCE_MODES = ("proportional", "uniform", "mixed")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
