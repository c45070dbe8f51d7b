"""The GPU path of ``fastir score``: float32 products and per-gold counts with torch on the device.

``--device auto`` (default) scores on CUDA when torch can use it, else on the CPU (numpy BLAS +
Numba); ``--device cuda`` without CUDA is an error. When a GPU is present but torch cannot use it,
``auto`` falls back to the CPU with a one-line warning.

On the device, each tile's scores never leave it: the golds' entries are pinned to their known
scores, every language slice of the tile is sorted, and ``searchsorted`` gives the candidates at or
above each gold (and, for the tie modes, ``searchsorted`` right - left the candidates tied with it)
— a copy back of the (rows x tile) scores would cost more than the counting.
Products are float32 with TF32 off (recorded in summary.json ``compute``), so on data without
ties the ranks equal the CPU path's. TREC top-k copies the tile back and uses the CPU kernel.
The engine runs on any torch device; the tests run it on the CPU against the Numba path.
"""

from __future__ import annotations

import os

import numpy as np

from fastir.core.errors import InputError

DEVICES = ("auto", "cpu", "cuda")


def _gpu_present() -> bool:
    """An NVIDIA driver is loaded (cheap: no torch import on machines without one)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def resolve_device(device: str, certified: bool = False) -> str:  # certified: a CPU-only (whole-row) path
    """``cpu`` or a ``cuda[:N]`` torch device for ``--device``; InputError for CUDA without CUDA."""
    from fastir.core.errors import warn

    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise InputError(None, "--device", f"expected one of {', '.join(DEVICES)}, found {device!r}")
    if device == "cpu" or (device == "auto" and not _gpu_present()):
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        if device == "auto":
            warn("a GPU driver is present but torch cannot use CUDA; scoring on the CPU")
            return "cpu"
        raise InputError(None, "--device", f"{device} requested but CUDA is not available "
                                           f"(torch {torch.__version__}); use --device cpu or auto")
    if certified:
        if device != "auto":
            raise InputError(None, "--device", "the certified precisions and the language-bias metrics run on the CPU: use --device cpu")
        return "cpu"
    return "cuda" if device == "auto" else device


def make_engine(device: str, dist=None, run=None):
    """The engine of a resolved ``device`` (``cpu``: :func:`fastir.eval.stream.cpu_engine` for
    ``run``; else torch), this rank's GPU under torchrun."""
    from fastir.eval.stream import cpu_engine

    if device == "cpu":
        return cpu_engine(run)
    if dist is not None and dist.world_size > 1 and device == "cuda":
        device = dist.device("cuda")
    return TorchEngine(device)


class TorchEngine:
    """Products and counts with torch on ``device`` (a CUDA device; ``cpu`` in tests)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            name = torch.cuda.get_device_name(self.device)
        else:
            name = "cpu"
        self.name = str(self.device)
        self.compute = {"engine": "torch", "device": str(self.device), "gpu": name, "dtype": "float32",
                        "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}

    def _load(self, side, rows):
        from fastir.eval.stream import gather_rows

        n = len(rows)
        host = gather_rows(side.chunks, rows)
        x = self.torch.from_numpy(host).to(self.device)
        if n < 2:  # no single-row product (see fastir.eval.stream)
            x = self.torch.cat([x, x.new_zeros((2 - n, x.shape[1]))])
        return x, n

    def tile(self, side, rows):
        return self._load(side, rows)

    def scores(self, q_side, q_rows, tile):
        q, n = self._load(q_side, q_rows)
        c, m = tile
        return (q @ c.T)[:n, :m].contiguous()

    def host(self, scores) -> np.ndarray:
        return np.ascontiguousarray(scores.cpu().numpy())

    def count(self, scores, lang_ptr, g_ptr, g_pos, g_score, t0, lang0, g_id, cnt, take, tied=None) -> None:
        torch = self.torch
        n_golds = len(g_id)
        if n_golds == 0:
            return
        lengths = np.diff(g_ptr)
        owner = np.repeat(np.arange(len(lengths)), lengths)
        slot = np.arange(n_golds) - np.repeat(g_ptr[:-1], lengths)
        width = int(lengths.max())
        col = g_pos - t0
        inside = (g_pos >= 0) & (col >= 0) & (col < scores.shape[1])
        dev = self.device
        r_in = torch.from_numpy(owner[inside]).to(dev)
        c_in = torch.from_numpy(col[inside]).to(dev)
        if take:
            g_score[inside] = scores[r_in, c_in].cpu().numpy()
        else:
            scores[r_in, c_in] = torch.from_numpy(g_score[inside]).to(dev)
        golds = torch.full((len(lengths), width), float("inf"), device=dev)
        golds[torch.from_numpy(owner).to(dev), torch.from_numpy(slot).to(dev)] = torch.from_numpy(g_score).to(dev)
        per_lang, per_lang_tied = [], []
        for i in range(len(lang_ptr) - 1):
            part = torch.sort(scores[:, int(lang_ptr[i]):int(lang_ptr[i + 1])], dim=1).values
            # candidates >= g = width of the slice - candidates < g
            below = torch.searchsorted(part, golds, right=False)
            per_lang.append(part.shape[1] - below)
            if tied is not None:  # candidates = g: those <= g less those < g
                per_lang_tied.append(torch.searchsorted(part, golds, right=True) - below)
        above = torch.stack(per_lang, dim=2).cpu().numpy()  # (rows, width, tile languages)
        langs = lang0 + np.arange(len(lang_ptr) - 1)
        cnt[g_id[:, None], langs[None, :]] += above[owner, slot]
        if tied is not None:
            tied[g_id[:, None], langs[None, :]] += torch.stack(per_lang_tied, dim=2).cpu().numpy()[owner, slot]
