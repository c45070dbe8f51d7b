"""Where a torch encoder runs: device and compute dtype, with the CPU fallback the CLI promises.

* Device: ``auto`` = CUDA when available, else CPU; ``cuda`` without CUDA falls back to the CPU
  with a :class:`fastir.core.errors.FastirWarning` (one ``warning:`` line from the CLI).
* Dtype: ``auto`` = fp16 on CUDA; on the CPU ``bf16-mixed`` where the CPU has bf16 matrix
  instructions (:func:`fastir.core.cpu.cpu_bf16`), else fp32. ``bf16-mixed``
  (:mod:`fastir.encoding.bf16_mixed`) runs the Linear layers' products in bf16 over weights cast
  once and keeps embeddings, LayerNorm and the residual stream fp32: it kept every XQuAD-R cell's
  mAP within 0.002 of fp32 where whole-model ``bf16`` did not (MiniLM, en+de first 3 articles:
  en→de −0.0037); the figures are in docs/embed.md. ``--dtype bf16`` (whole model, residual stream
  included) and ``--dtype fp32`` stay explicit choices. What ran and why is run.json's
  ``compute_dtype`` / ``compute_dtype_reason``.

torch is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastir.core.errors import InputError, warn

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "fp16", "bf16", "bf16-mixed", "fp32")
# why auto chooses bf16-mixed, not whole-model --dtype bf16, on a CPU with bf16 instructions (docs/embed.md)
BF16_MISS = "MiniLM, XQuAD-R en+de first 3 articles: en-de mAP -0.0037"
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
    import torch

    return getattr(torch, LOAD_DTYPES[choose_dtype(dtype, device)[0]])


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
    if fast:  # measured, not assumed: docs/embed.md#bf16-on-the-cpu
        return "bf16-mixed", (f"auto: bf16-mixed; {why}: bf16 matrix products, fp32 elsewhere (within 0.002 mAP "
                              f"of fp32 on XQuAD-R; whole-model bf16 was not: {BF16_MISS})")
    return "fp32", f"auto: fp32; {why}"


def dtype_name(dtype: "torch.dtype") -> str:
    return str(dtype).removeprefix("torch.")

