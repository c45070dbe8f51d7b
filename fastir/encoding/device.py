"""Where a torch encoder runs: device and compute dtype, with the CPU fallback the CLI promises.

* Device: ``auto`` = CUDA when available, else CPU; ``cuda`` without CUDA falls back to the CPU
  with a :class:`fastir.core.errors.FastirWarning` (one ``warning:`` line from the CLI).
* Dtype: ``auto`` = fp16 on CUDA, fp32 on CPU.

torch is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastir.core.errors import InputError, warn

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "fp16", "bf16", "fp32")


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
    import torch

    if dtype not in DTYPES:
        raise InputError(None, "--dtype", f"expected one of {', '.join(DTYPES)}, found {dtype!r}")
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]


def dtype_name(dtype: "torch.dtype") -> str:
    return str(dtype).removeprefix("torch.")

