"""Training checkpoints: Hugging Face folders that ``fastir embed --model CKPT`` loads as they are.

Layout of ``OUT/checkpoint-{step:06d}/`` (written to a hidden temporary sibling, then renamed)::

    config.json, model.safetensors        the backbone (AutoModel.from_pretrained loads it)
    tokenizer files                        tokenizer.save_pretrained
    modules.json, 1_Pooling/config.json,   sentence-transformers description of pooling and
    2_Normalize/, sentence_bert_config.json, config_sentence_transformers.json   normalisation/prefixes
    fastir-train.json                      every setting, seed, step, sampler state, versions
    trainer_state/optimizer.pt, scheduler.pt, scaler.pt, rng.pt   what --resume needs to continue exactly

``rng.pt`` holds one entry per rank (python, numpy, torch CPU and CUDA generator states).
Every ``.pt`` file holds tensors and plain containers only (the Python and numpy RNG states as
integer tensors), and ``--resume`` loads them with ``torch.load(weights_only=True)``: a checkpoint
directory from someone else cannot run code through pickle; anything else is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from fastir.core.outputs import atomic_dir
from fastir.core.errors import InputError
from fastir.encoding.hf_folder import sentence_transformers_files

TRAIN_FORMAT = "fastir-train/1"
TRAIN_JSON = "fastir-train.json"
STATE_DIR = "trainer_state"
FINAL = "final"
RNG_FORMAT = "fastir-rng/1"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}"


def list_checkpoints(out: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out`` as (step, path), oldest first (temp dirs are hidden)."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = []
    for child in out.iterdir():
        m = _CKPT_RE.match(child.name)
        if m and (child / TRAIN_JSON).is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def read_train_json(ckpt: str | os.PathLike) -> dict:
    file = Path(ckpt) / TRAIN_JSON
    from fastir.core.textfiles import read_json

    try:
        meta = read_json(file)
    except FileNotFoundError:
        raise InputError(file, None, "missing (not a fastir train checkpoint)") from None
    if not isinstance(meta, dict) or meta.get("format") != TRAIN_FORMAT:
        raise InputError(file, "format", f"expected {TRAIN_FORMAT!r}")
    return meta


def _save_weights(model, tmp: Path, path: Path) -> None:
    """``model.save_pretrained(tmp)``; an OS error inside safetensors' (a full disk) is raised as
    that OSError on the checkpoint, not as a damaged-file error."""
    from safetensors import SafetensorError

    from fastir.core.errors import os_error_in

    try:
        model.save_pretrained(tmp)
    except SafetensorError as exc:
        os_error = os_error_in(exc, path)
        if os_error is None:
            raise
        raise os_error from None


def save_checkpoint(out: Path, step: int, *, model, tokenizer, meta: dict, st_files: dict,
                    optimizer, scheduler, scaler, rng_states: list) -> Path:
    """Write ``out/checkpoint-{step}`` atomically; returns its path. Call on rank 0 only."""
    path = out / checkpoint_name(step)
    with atomic_dir(path, overwrite=True) as tmp:
        _save_weights(model, tmp, path)
        tokenizer.save_pretrained(tmp)
        sentence_transformers_files(tmp, **st_files)
        write_trainer_state(tmp / STATE_DIR, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                            rng_states=rng_states)
        # fastir-train.json last: list_checkpoints treats its presence as "complete".
        (tmp / TRAIN_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def write_trainer_state(state: Path, *, optimizer, scheduler, scaler, rng_states: list) -> None:
    """``trainer_state/``: what --resume needs, as tensors and plain containers only."""
    import torch

    state.mkdir()
    torch.save(optimizer.state_dict(), state / "optimizer.pt")
    torch.save(scheduler.state_dict(), state / "scheduler.pt")
    torch.save(scaler.state_dict(), state / "scaler.pt")
    torch.save({"format": RNG_FORMAT, "ranks": [_plain_rng(r) for r in rng_states]}, state / "rng.pt")


def load_trainer_state(ckpt: Path) -> dict:
    """Optimizer, scheduler, scaler and per-rank RNG states of a checkpoint (CPU tensors)."""
    import torch

    state = ckpt / STATE_DIR
    out = {}
    for name in ("optimizer", "scheduler", "scaler", "rng"):
        file = state / f"{name}.pt"
        if not file.is_file():
            raise InputError(file, None, "missing: the checkpoint cannot be resumed")
        try:
            out[name] = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError for a forbidden object, RuntimeError for a bad zip, ...
            raise InputError(file, "format", "refused: not a file of tensors and plain containers "
                                             f"(weights_only load failed: {type(exc).__name__}); "
                                             "loading it could run arbitrary code") from None
    rng = out["rng"]
    file = state / "rng.pt"
    if not isinstance(rng, dict) or rng.get("format") != RNG_FORMAT or not isinstance(rng.get("ranks"), list):
        raise InputError(file, "format", f"expected {RNG_FORMAT!r}")
    out["rng"] = [_rng_from_plain(r, file, k) for k, r in enumerate(rng["ranks"])]
    return out


def _plain_rng(state: dict) -> dict:
    """A ``fastir.train.resume.rng_state()`` dict as tensors and plain values (weights_only-loadable)."""
    import numpy as np
    import torch

    version, internal, gauss_next = state["python"]
    bit_generator, keys, pos, has_gauss, cached_gaussian = state["numpy"]
    plain = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"bit_generator": str(bit_generator), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": state["torch"],
    }
    if "cuda" in state:
        plain["cuda"] = list(state["cuda"])
    return plain


def _rng_from_plain(plain, file: Path, rank: int) -> dict:
    """Inverse of :func:`_plain_rng`, exact (bit-identical resume); a malformed entry raises InputError."""
    import torch

    try:
        py, npy = plain["python"], plain["numpy"]
        gauss = py["gauss_next"]
        if gauss is not None and not isinstance(gauss, float):
            raise TypeError("gauss_next")
        for value in (py["state"], npy["keys"], plain["torch"], *plain.get("cuda", [])):
            if not isinstance(value, torch.Tensor):
                raise TypeError("not a tensor")
        # the shapes the setters accept (python: 624 words + index, MT19937: 624 keys)
        if py["state"].shape != (625,) or npy["keys"].shape != (624,) or plain["torch"].dtype != torch.uint8 \
                or plain["torch"].shape != torch.get_rng_state().shape:
            raise ValueError("unexpected shape or dtype")
        state = {
            "python": (int(py["version"]), tuple(int(x) for x in _uint32(py["state"]).tolist()), gauss),
            "numpy": (str(npy["bit_generator"]), _uint32(npy["keys"]), int(npy["pos"]),
                      int(npy["has_gauss"]), float(npy["cached_gaussian"])),
            "torch": plain["torch"],
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(file, f"ranks[{rank}]", f"malformed RNG state ({type(exc).__name__}: {exc})") from None
    if "cuda" in plain:
        state["cuda"] = list(plain["cuda"])
    return state


def _uint32(keys):
    import numpy as np

    keys = keys.numpy()
    if keys.dtype != np.int64 or keys.ndim != 1 or (keys.size and (keys.min() < 0 or keys.max() >= 1 << 32)):
        raise ValueError("RNG words are not 32-bit unsigned integers")
    return keys.astype(np.uint32)


def publish_final(out: Path, ckpt: Path) -> Path:
    """Make ``out/final`` a copy of ``ckpt`` without the trainer state (hard links where possible)."""
    final = out / FINAL
    with atomic_dir(final, overwrite=True) as tmp:
        for src in ckpt.rglob("*"):
            rel = src.relative_to(ckpt)
            if rel.parts[0] == STATE_DIR:
                continue
            dst = tmp / rel
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
    return final


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (keep <= 0 keeps all)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(out)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
