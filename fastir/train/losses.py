"""Contrastive loss for the dual encoder: InfoNCE over cosine similarity with in-batch negatives.

For a global batch of B (query, passage) pairs with embeddings q_i, p_i (and optional hard
negatives n_i), with cos(a, b) = a·b / (|a| |b|) and temperature τ::

    s_ij = cos(q_i, c_j) / τ,   c = [p_1 .. p_B, n_1 .. n_B]
    L    = -(1/B) Σ_i log( exp(s_ii) / Σ_j exp(s_ij) )

i.e. every other passage of the batch (and every hard negative) is a negative of query i.
The sampler guarantees no xling_id appears twice in a batch, so no in-batch negative is a
translation of the positive.

Under torch.distributed each rank holds a slice of the global batch. ``gather_with_local_grad``
concatenates all slices (rank order = global batch order) keeping the autograd graph of the local
slice, so each rank computes the same global loss and its backward reaches exactly the terms that
involve its own embeddings. DDP then *averages* gradients over ranks, so the caller multiplies the
loss by the world size before ``backward`` to obtain the single-process gradient of L.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_with_local_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` (same shape on every rank) along dim 0; the local slice keeps its gradient.

    Without an initialised process group (or with world size 1) returns ``x`` unchanged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    # all_gather returns detached copies: put the local tensor back so its graph is kept.
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


def info_nce(
    queries: torch.Tensor,
    passages: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives over cosine similarity / ``temperature`` (mean over queries).

    ``queries`` and ``passages`` are (B, D) with passage i the positive of query i; ``negatives``
    is an optional (B', D) block of extra negatives shared by every query. Computed in float32
    whatever the input dtype (autocast outputs may be fp16/bf16).
    """
    q = F.normalize(queries.float(), dim=-1)
    c = passages.float()
    if negatives is not None:
        c = torch.cat([c, negatives.float()], dim=0)
    c = F.normalize(c, dim=-1)
    logits = (q @ c.T) / temperature
    labels = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits, labels)
