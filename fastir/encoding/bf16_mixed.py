"""``--dtype bf16-mixed``: bf16 matrix products over fp32 weights cast once, fp32 where it matters.

:func:`to_bf16_mixed` replaces every ``nn.Linear`` of a loaded fp32 model by a
:class:`BF16Linear` that holds its weight and bias already in bfloat16 and computes

    y = fp32( x_bf16 · W_bf16ᵀ + b_bf16 )   (oneDNN: AMX / AVX-512 BF16 where the CPU has them)

— autocast's product for a Linear (the same bits), without autocast's cast of every weight on every
forward — and hands back fp32. Only the matrix products are bf16: the embeddings, every
LayerNorm, attention (SDPA over fp32 queries, keys and values), GELU, the residual stream, pooling
and normalisation stay fp32. Under autocast, attention and GELU would run in bf16 too: faster, but
on XQuAD-R it moved a cell's mAP by 0.0095 (multilingual-e5-small, docs/embed.md#bf16-on-the-cpu).
``--dtype bf16`` loads the whole model in bf16, residual stream included: faster still, further
from fp32.

Inference only: the bf16 weights are buffers, not parameters (``fastir train`` loads fp32). This
module imports torch; :mod:`fastir.encoding.hf` imports it only when the mode is chosen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class BF16Linear(torch.nn.Module):
    """A Linear whose weight and bias were cast to bf16 once; its forward casts the input to bf16
    and returns the bf16 product as fp32 (autocast's product for a Linear, upcast)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16))
        self.register_buffer("bias", linear.bias.detach().to(torch.bfloat16) if linear.bias is not None else None)
        self._packed = _pack(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if self._packed is not None and x.device.type == "cpu":
            y = torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")
        else:
            y = F.linear(x, self.weight, self.bias)
        return y.to(torch.float32)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=bfloat16"


def _pack(weight: torch.Tensor) -> torch.Tensor | None:
    """The weight in oneDNN's blocked layout for the CPU (about half the time of ``F.linear``, which
    reorders a plain weight on every call; the same bits, tested), or None where oneDNN cannot
    (a GPU; a CPU without AVX-512 where bf16 is pretended, as the tests do): ``F.linear`` then."""
    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available() \
            or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight, None)
    except RuntimeError:  # "bf16 path needs the cpu support avx_ne_convert or avx512bw, avx512vl and avx512dq"
        return None


def to_bf16_mixed(model: torch.nn.Module) -> int:
    """Replace every ``nn.Linear`` under ``model`` (in place) by a :class:`BF16Linear`; returns how many."""
    swapped = 0
    for name, child in list(model.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(model, name, BF16Linear(child))
            swapped += 1
        else:
            swapped += to_bf16_mixed(child)
    return swapped
