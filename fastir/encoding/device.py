"""Where a torch encoder runs: device and compute dtype, with the CPU fallback the CLI promises.

* Device: ``auto`` = CUDA when available, else CPU; ``cuda`` without CUDA falls back to the CPU
  with a :class:`fastir.core.errors.FastirWarning` (one ``warning:`` line from the CLI).
* Dtype: ``auto`` = fp16 on CUDA, fp32 on the CPU. On a CPU with bf16 matrix instructions
  (:func:`fastir.core.cpu.cpu_bf16`) a bf16 mode would be chosen only where it keeps every XQuAD-R
  cell's mAP within 0.002 of fp32. ``bf16-mixed`` (:mod:`fastir.encoding.bf16_mixed`: bf16 Linear
  products over weights cast once, fp32 elsewhere) did with MiniLM on XQuAD-R whole (11 languages)
  and on en+de's first 3 articles, where whole-model ``bf16`` did not (en→de −0.0037), but not with
  multilingual-e5-small on the 11 languages (:data:`BF16_MISS`: near-tied queries swapping, in both
  directions), so ``auto`` stays fp32 and says why in run.json (``compute_dtype_reason``);
  ``--dtype bf16-mixed`` and ``--dtype bf16`` choose them (figures: docs/embed.md).

torch is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastir.core.errors import InputError, warn

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "fp16", "bf16", "bf16-mixed", "fp32")
# why auto does not choose a bf16 mode on a CPU that has the instructions (measured: docs/embed.md)
BF16_MISS = ("e5-small, XQuAD-R 11 languages: zh-es mAP +0.0028, 5 of 132 cells beyond 0.002; "
             "their first 3 articles: ru-en +0.0120, 33 cells")
# the dtype the weights are loaded in, and the name run.json's compute_dtype records, per mode
LOAD_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "bf16-mixed": "float32", "fp32": "float32"}
COMPUTE_NAMES = {"fp16": "float16", "bf16": "bfloat16", "bf16-mixed": "bfloat16-mixed", "fp32": "float32"}


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
    """The dtype the weights are loaded in (fp32 for ``bf16-mixed``, which casts its Linear layers after)."""
    return load_dtype(choose_dtype(dtype, device)[0])


def load_dtype(mode: str) -> "torch.dtype":
    """The torch dtype the weights of compute ``mode`` (:func:`choose_dtype`) are loaded in."""
    import torch

    return getattr(torch, LOAD_DTYPES[mode])


def choose_dtype(dtype: str, device: "torch.device") -> tuple[str, str]:
    """(the compute mode: fp16, bf16, bf16-mixed or fp32; why: what run.json records as
    ``compute_dtype_reason``)."""
    from fastir.core.cpu import cpu_bf16

    if dtype not in DTYPES:
        raise InputError(None, "--dtype", f"expected one of {', '.join(DTYPES)}, found {dtype!r}")
    if dtype.startswith("bf16") and device.type == "cpu":  # emulated without the instructions: slower than fp32
        fast, why = cpu_bf16()
        if not fast:
            raise InputError(None, "--dtype", f"{dtype} on the CPU needs bf16 matrix instructions: {why} "
                                              "(use --dtype fp32 or auto)")
    if dtype != "auto":
        return dtype, "asked for"
    if device.type == "cuda":
        return "fp16", "auto: fp16 on CUDA"
    fast, why = cpu_bf16()
    if fast:  # measured, not assumed: a bf16 mode is opt-in until it keeps the quality bound (docs/embed.md)
        return "fp32", (f"auto: fp32; {why}, but bf16-mixed missed the 0.002 mAP bound ({BF16_MISS}): "
                        "--dtype bf16-mixed")
    return "fp32", f"auto: fp32; {why}"


def dtype_name(dtype: "torch.dtype") -> str:
    return str(dtype).removeprefix("torch.")

