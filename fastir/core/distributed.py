"""torchrun's process group, shared by ``fastir embed`` and ``fastir train``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) :meth:`Distributed.from_env` joins the process group — or
uses one the caller already started — and records the rank; without torchrun it is a
single-process no-op, so callers never branch on ``world_size`` for barriers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from fastir.core.errors import FastirError, InputError


@dataclass
class Distributed:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and the process group we may own."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group (and destroy it in close())

    @classmethod
    def from_env(cls, *, collective_device: str = "cpu", timeout=None) -> "Distributed":
        """Join the group when WORLD_SIZE > 1.

        ``collective_device``: where the tensors of collective operations live. ``cpu`` (barriers
        and objects only, as ``fastir embed``): gloo. Anything else with CUDA available: nccl,
        with this process's GPU selected (``fastir train`` gathers embeddings on it).
        ``timeout``: a ``datetime.timedelta`` for waits at barriers (default: torch's).
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as td

        local = int(os.environ.get("LOCAL_RANK", "0"))
        owns = False
        if not td.is_initialized():
            use_cuda = collective_device != "cpu" and torch.cuda.is_available()
            if use_cuda:
                torch.cuda.set_device(local)
            td.init_process_group("nccl" if use_cuda else "gloo", **({"timeout": timeout} if timeout else {}))
            owns = True
        return cls(td.get_rank(), td.get_world_size(), local, owns)

    def device(self, requested: str) -> str:
        """This rank's GPU for ``auto`` / ``cuda`` under torchrun; otherwise ``requested``."""
        if self.world_size > 1 and requested in ("auto", "cuda"):
            import torch

            if torch.cuda.is_available():
                return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as td

            td.barrier()

    def gather_objects(self, obj) -> list:
        """``obj`` of every rank, in rank order (picklable objects)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as td

        out = [None] * self.world_size
        td.all_gather_object(out, obj)
        return out

    def run_on_rank0(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on rank 0; its error (if any) is raised on every rank, so none waits forever."""
        if self.world_size == 1:
            fn()
            return
        import torch.distributed as td

        message: list = [None]
        error: BaseException | None = None
        if self.rank == 0:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after telling the other ranks
                error = exc
                message[0] = (exc.path, exc.field, exc.message) if isinstance(exc, InputError) else (
                    f"rank 0 failed: {' '.join(str(exc).split()) or type(exc).__name__}")
        td.broadcast_object_list(message, src=0)
        if error is not None:
            raise error
        if message[0] is not None:
            raise InputError(*message[0]) if isinstance(message[0], tuple) else FastirError(message[0])

    def close(self) -> None:
        """Destroy the process group if :meth:`from_env` started it."""
        if self.owns_group:
            import torch.distributed as td

            td.destroy_process_group()
            self.owns_group = False
