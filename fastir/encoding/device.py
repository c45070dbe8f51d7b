"""Where a torch encoder runs: device and compute dtype, with the CPU fallback the CLI promises.

* Device: ``auto`` = CUDA when available, else CPU; ``cuda`` without CUDA falls back to the CPU
  with a :class:`fastir.core.errors.FastirWarning` (one ``warning:`` line from the CLI).
* Dtype: ``auto`` = fp16 on CUDA, fp32 on the CPU. On a CPU with bf16 matrix instructions
  (:func:`fastir.core.cpu.cpu_bf16`) bf16 would be chosen only where it keeps every XQuAD-R cell's
  mAP within 0.002 of fp32; with MiniLM it did on XQuAD-R en+de (worst 0.0015) but not on its
  first three articles (en→de 0.0037), so ``auto`` stays fp32 and says why in run.json
  (``compute_dtype_reason``); ``--dtype bf16`` chooses it (docs/embed.md).

torch is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastir.core.errors import InputError, warn

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "fp16", "bf16", "fp32")
# why auto does not choose bf16 on a CPU that has it (measured: docs/embed.md)
BF16_MISS = "MiniLM, XQuAD-R en+de first 3 articles: en-de mAP -0.0037"


def resolve_device(device: str = "auto") -> "torch.device":
    import torch

    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise InputError(None, "--device", f"expected one of {', '.join(DEVICES)}, found {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            warn(f"--device {device} requested but CUDA is not available; falling back to the CPU")
            return torch.device("cpu")
        return torch.device(device)
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: "torch.device") -> "torch.dtype":
    return choose_dtype(dtype, device)[0]


def choose_dtype(dtype: str, device: "torch.device") -> tuple["torch.dtype", str]:
    """(the compute dtype, why: what run.json records as ``compute_dtype_reason``)."""
    import torch

    from fastir.core.cpu import cpu_bf16

    if dtype not in DTYPES:
        raise InputError(None, "--dtype", f"expected one of {', '.join(DTYPES)}, found {dtype!r}")
    if dtype == "bf16" and device.type == "cpu":  # emulated without the instructions: slower than fp32
        fast, why = cpu_bf16()
        if not fast:
            raise InputError(None, "--dtype", f"bf16 on the CPU needs bf16 matrix instructions: {why} "
                                              "(use --dtype fp32 or auto)")
    if dtype != "auto":
        return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype], "asked for"
    if device.type == "cuda":
        return torch.float16, "auto: fp16 on CUDA"
    fast, why = cpu_bf16()
    if fast:  # measured, not assumed: bf16 is opt-in until it keeps the quality bound (docs/embed.md)
        return torch.float32, f"auto: fp32; {why}, but bf16 missed the 0.002 mAP bound ({BF16_MISS}): --dtype bf16"
    return torch.float32, f"auto: fp32; {why}"


def dtype_name(dtype: "torch.dtype") -> str:
    return str(dtype).removeprefix("torch.")

