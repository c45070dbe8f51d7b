"""``fastir train``: contrastive fine-tuning of a shared-weight dual encoder on the sampler engine.

One step: the sampler yields this rank's slice of the global batch; queries, passages (and hard
negatives) go through the same backbone, are pooled as ``fastir embed`` pools them, gathered
across ranks, and scored with InfoNCE over cosine similarity / temperature (``fastir.train.losses``).
AdamW (weight decay on all but biases and LayerNorm weights), linear warm-up then linear decay to
0 (``transformers.get_linear_schedule_with_warmup``), gradient clipping, fp16 autocast + GradScaler
on CUDA (bf16 without a scaler where the GPU supports it), fp32 on the CPU.

Everything that changes the numbers is recorded in each checkpoint's ``fastir-train.json``; a
``--resume`` run refuses a checkpoint whose recorded settings differ, then restores the weights,
optimizer, scheduler, scaler, every rank's RNG and the sampler position, so it continues with
bit-identical weights to an uninterrupted run (same device and world size).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fastir.train.checkpoint import FINAL, TRAIN_FORMAT, TRAIN_JSON, checkpoint_name
from fastir.errors import InputError
from fastir.lock import claim_output
from fastir.train.choices import PRECISIONS, STRATEGIES

LOG_FILE = "train.jsonl"
BATCH_LOG = "batches.rank{rank}.jsonl"

# Settings that change the numbers: a resumed run must match the checkpoint on all of them.
_RESUME_KEYS = (
    "data", "model", "strategy", "alpha", "batch_size", "steps", "lr", "temperature", "warmup_steps",
    "weight_decay", "max_grad_norm", "seed", "pooling", "max_length", "query_prefix", "passage_prefix",
    "lang_weights", "source_mode", "hard_negatives", "precision",
)


@dataclass
class TrainConfig:
    data: list[str]
    model: str
    out: str
    strategy: str = "hybrid"
    alpha: float = 0.5
    batch_size: int = 32
    steps: int = 1000
    lr: float = 3e-5
    temperature: float = 0.05
    warmup_steps: int | None = None  # None: 10% of steps
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping
    seed: int = 0
    pooling: str | None = None  # None: the model folder's default, as fastir embed
    max_length: int | None = None  # None: the model's limit, as fastir embed
    query_prefix: str = ""
    passage_prefix: str = ""
    lang_weights: dict[str, float] | None = None
    source_mode: str = "proportional"
    hard_negatives: bool = True  # use the table's `negative` column when present
    device: str = "auto"
    precision: str = "auto"
    save_steps: int = 0  # 0: only the final step
    keep_checkpoints: int = 0  # 0: keep all
    eval_data: str | None = None
    eval_every: int = 0
    eval_langs: list[str] | None = None
    eval_max_queries: int = 0
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    log_batches: bool = False  # write each rank's batch composition (xling_ids) per step


@dataclass
class TrainResult:
    out: Path
    final: Path
    steps: int
    start_step: int
    last_loss: float | None
    eval: dict | None
    rank: int = 0


def validate(cfg: TrainConfig) -> None:
    """Argument checks that need no file: raise InputError naming the option."""
    if not cfg.data:
        raise InputError(None, "--data", "at least one train table is required")
    if cfg.strategy not in STRATEGIES:
        raise InputError(None, "--strategy", f"expected one of {', '.join(STRATEGIES)}, found {cfg.strategy!r}")
    checks = [
        ("--alpha", 0.0 <= cfg.alpha <= 1.0, f"must be in [0, 1], found {cfg.alpha}"),
        ("--batch-size", cfg.batch_size >= 2, f"must be at least 2 (in-batch negatives), found {cfg.batch_size}"),
        ("--steps", cfg.steps >= 1, f"must be positive, found {cfg.steps}"),
        ("--lr", cfg.lr > 0, f"must be positive, found {cfg.lr}"),
        ("--temperature", cfg.temperature > 0, f"must be positive, found {cfg.temperature}"),
        ("--weight-decay", cfg.weight_decay >= 0, f"must be non-negative, found {cfg.weight_decay}"),
        ("--max-grad-norm", cfg.max_grad_norm >= 0, f"must be non-negative, found {cfg.max_grad_norm}"),
        ("--save-steps", cfg.save_steps >= 0, f"must be non-negative, found {cfg.save_steps}"),
        ("--eval-every", cfg.eval_every >= 0, f"must be non-negative, found {cfg.eval_every}"),
        ("--precision", cfg.precision in PRECISIONS, f"expected one of {', '.join(PRECISIONS)}"),
    ]
    for name, ok, message in checks:
        if not ok:
            raise InputError(None, name, message)
    if cfg.warmup_steps is not None and not 0 <= cfg.warmup_steps <= cfg.steps:
        raise InputError(None, "--warmup-steps", f"must be in [0, --steps], found {cfg.warmup_steps}")
    if cfg.eval_every and not cfg.eval_data:
        raise InputError(None, "--eval-every", "needs --eval-data")
    if cfg.resume and cfg.overwrite:
        raise InputError(None, "--resume", "--resume and --overwrite exclude each other")


def settings(cfg: TrainConfig, *, pooling: str, max_length: int, precision: str) -> dict:
    """Every setting, resolved (defaults filled in), as recorded in fastir-train.json."""
    s = dataclasses.asdict(cfg)
    s.update(pooling=pooling, max_length=max_length, precision=precision,
             warmup_steps=default_warmup(cfg), data=[os.path.abspath(p) for p in cfg.data])
    for transient in ("resume", "overwrite", "progress"):
        s.pop(transient)
    return s


def default_warmup(cfg: TrainConfig) -> int:
    return cfg.warmup_steps if cfg.warmup_steps is not None else cfg.steps // 10


# ------------------------------------------------------------------------------------ distributed


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started: bool = False  # we initialised the process group (and destroy it at the end)


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on the CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    started = False
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
        started = True
    return DistInfo(rank=rank, world_size=world, local_rank=local, started=started)


def _gather_objects(obj, info: DistInfo) -> list:
    if info.world_size == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------------------------- RNG


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------- the model


def _dual_encoder_class():
    import torch

    from fastir.encoding.encoder import pool

    class DualEncoder(torch.nn.Module):
        """One backbone for queries, passages and negatives, in a single forward (one DDP call)."""

        def __init__(self, backbone, pooling: str):
            super().__init__()
            self.backbone = backbone
            self.pooling = pooling

        def embed(self, inputs: dict):
            out = self.backbone(**inputs)
            return pool(out.last_hidden_state, inputs["attention_mask"], self.pooling,
                        pooler_output=getattr(out, "pooler_output", None))

        def forward(self, queries: dict, passages: dict, negatives: dict | None = None):
            return self.embed(queries), self.embed(passages), (self.embed(negatives) if negatives else None)

    return DualEncoder


def param_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on weights, none on biases and LayerNorm weights (BERT/sentence-transformers custom)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def resolve_precision(precision: str, device) -> str:
    """auto: bf16 autocast on a CUDA GPU that supports it, else fp16 + GradScaler; fp32 on the CPU.

    An explicit fp16/bf16 is honoured on the CPU too (slow; it lets CPU tests run the AMP path).
    """
    import torch

    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


# -------------------------------------------------------------------------------------- training


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) a training run; see the module docstring. Raises InputError on bad input
    before anything is written to ``cfg.out``."""
    validate(cfg)
    from transformers.utils import logging as hf_logging

    # Our own progress bar only: transformers' "Loading weights" / "Writing model shards" bars
    # would interleave with it (and turn one-line errors into three lines).
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    info = init_distributed(cfg.device)
    try:
        with contextlib.ExitStack() as stack:
            if info.rank == 0:
                stack.enter_context(claim_output(cfg.out))  # one writer per OUT; dead runs' temporaries go
                stack.enter_context(_removed_unless_resumable(Path(cfg.out)))
            return _train(cfg, info)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        if info.started:
            import torch.distributed as dist

            dist.destroy_process_group()


@contextlib.contextmanager
def _removed_unless_resumable(out: Path):
    """A run that fails before its first checkpoint removes the OUT it created (its log, nothing
    to resume from): a failed command leaves the output location as it was."""
    from fastir.train.checkpoint import list_checkpoints

    fresh = not out.exists()
    try:
        yield
    except BaseException:
        if fresh and out.is_dir() and not list_checkpoints(out):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _open_sampler(cfg: TrainConfig, info: DistInfo):
    from fastir.train.sampler import BatchSampler
    from fastir.train.table import open_train_table

    if cfg.batch_size % info.world_size:
        raise InputError(None, "--batch-size",
                         f"{cfg.batch_size} is not divisible by the world size {info.world_size}")
    tables = [open_train_table(p) for p in cfg.data]
    return BatchSampler(tables, strategy=cfg.strategy, batch_size=cfg.batch_size, seed=cfg.seed, alpha=cfg.alpha,
                        lang_weights=cfg.lang_weights, source_mode=cfg.source_mode, rank=info.rank,
                        world_size=info.world_size)


def _find_resume(cfg: TrainConfig, out: Path):
    from fastir.train.checkpoint import list_checkpoints, read_train_json

    found = list_checkpoints(out) if cfg.resume else []
    if not found:
        return None, None
    ckpt = found[-1][1]
    return ckpt, read_train_json(ckpt)


def _check_resume_settings(ckpt: Path, meta: dict, current: dict) -> None:
    recorded = meta.get("settings", {})
    for key in _RESUME_KEYS:
        if recorded.get(key) != current.get(key):
            raise InputError(ckpt / TRAIN_JSON, f"settings.{key}",
                             f"checkpoint has {recorded.get(key)!r}, this command {current.get(key)!r}: "
                             "resume with the same settings (or start a new --out)")


def _prepare_out(cfg: TrainConfig, out: Path, info: DistInfo) -> None:
    """Create ``out`` (rank 0), after every input check passed; --overwrite clears the old run."""
    from fastir.train.checkpoint import list_checkpoints

    if info.rank != 0:
        return
    if cfg.overwrite and out.is_dir():
        # Remove only what a training run writes; anything else in the directory is left alone.
        for _, path in list_checkpoints(out):
            shutil.rmtree(path)
        shutil.rmtree(out / FINAL, ignore_errors=True)
        for child in out.glob("*.jsonl"):
            child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _trim_log(file: Path, keep_upto: int) -> None:
    """On resume drop log lines past the resumed step (they belong to the interrupted tail)."""
    if not file.is_file():
        return
    from fastir.atomic import atomic_file

    lines = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= keep_upto:
                lines.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by the interruption
    with atomic_file(file, "w") as fh:
        fh.write("".join(x + "\n" for x in lines))


def _train(cfg: TrainConfig, info: DistInfo) -> TrainResult:
    import torch
    from transformers import get_linear_schedule_with_warmup

    from fastir.train.checkpoint import load_trainer_state, prune_checkpoints, publish_final, save_checkpoint
    from fastir.encoding.encoder import load_encoder, resolve_device
    from fastir.train.losses import gather_with_local_grad, info_nce

    out = Path(cfg.out)

    # --- everything that can fail on bad input, before anything is written
    from fastir.runs.rundir import check_output_dir

    check_output_dir(out, overwrite=cfg.overwrite, resume=cfg.resume)
    sampler = _open_sampler(cfg, info)
    ckpt, ckpt_meta = _find_resume(cfg, out)
    device = resolve_device(f"cuda:{info.local_rank}" if cfg.device in ("auto", "cuda") and info.world_size > 1
                            and torch.cuda.is_available() else cfg.device)
    seed_everything(cfg.seed)  # weights the checkpoint lacks (e.g. a new pooler) start the same everywhere
    # Resuming without --pooling takes the recorded pooling; an explicit one is compared below.
    pooling = cfg.pooling or (ckpt_meta["settings"]["pooling"] if ckpt_meta else None)
    encoder = load_encoder(str(ckpt) if ckpt else cfg.model, pooling=pooling, device=str(device), dtype="fp32",
                           max_length=cfg.max_length)
    precision = resolve_precision(cfg.precision, device)
    current = settings(cfg, pooling=encoder.pooling, max_length=encoder.max_length, precision=precision)
    start_step = 0
    if ckpt_meta:
        _check_resume_settings(ckpt, ckpt_meta, current)
        start_step = int(ckpt_meta["step"])
        sampler.load_state_dict(ckpt_meta["sampler"])
    eval_set = None
    if cfg.eval_data and info.rank == 0:
        from fastir.train.heldout import load_eval_set

        eval_set = load_eval_set(cfg.eval_data, langs=cfg.eval_langs, max_queries=cfg.eval_max_queries, seed=cfg.seed)
    batches = iter(sampler)
    first_batch = next(batches) if start_step < cfg.steps else None  # lazy sampler checks fail here
    _prepare_out(cfg, out, info=info)
    if info.world_size > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has prepared the output directory

    # --- model, optimizer, schedule
    backbone = encoder.model
    backbone.train()
    model = _dual_encoder_class()(backbone, encoder.pooling).to(device)
    wrapped = model
    if info.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # A pooler layer is unused unless pooling == "pooler": let DDP skip its missing gradients.
        unused = encoder.pooling != "pooler" and getattr(backbone, "pooler", None) is not None
        wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=unused)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, default_warmup(cfg), cfg.steps)
    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if ckpt is not None:
        state = load_trainer_state(ckpt)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        if len(rngs) == info.world_size:
            set_rng_state(rngs[info.rank])
        else:
            print(f"warning: checkpoint was written by {len(rngs)} ranks, this run has {info.world_size}; "
                  "dropout RNG is reseeded, so the run will not be bit-identical", file=sys.stderr)
            seed_everything(cfg.seed + start_step + info.rank)

    tokenizer = encoder.tokenizer
    use_types = bool(encoder._uses_token_types)

    def tokenize(texts: list[str], prefix: str) -> dict:
        enc = tokenizer([prefix + t for t in texts] if prefix else list(texts), padding=True, truncation=True,
                        max_length=encoder.max_length, return_tensors="pt")
        keep = ("input_ids", "attention_mask") + (("token_type_ids",) if use_types else ())
        return {k: v.to(device, non_blocking=True) for k, v in enc.items() if k in keep}

    log_file = out / LOG_FILE
    if info.rank == 0:
        _trim_log(log_file, start_step)
    batch_log = (out / BATCH_LOG.format(rank=info.rank)) if cfg.log_batches else None
    if batch_log is not None:
        _trim_log(batch_log, start_step)

    def save(step: int) -> Path:
        rngs = _gather_objects(rng_state(), info)
        sampler_state = sampler.state_dict()
        path = out / checkpoint_name(step)
        if info.rank == 0:
            meta = {
                "format": TRAIN_FORMAT, "step": step, "seed": cfg.seed, "world_size": info.world_size,
                "settings": current, "sampler": sampler_state, "base_model": cfg.model,
                "pooling": encoder.pooling, "normalize": True, "query_prefix": cfg.query_prefix,
                "passage_prefix": cfg.passage_prefix, "device": str(device), "versions": _versions(),
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            st_files = dict(pooling=encoder.pooling, dim=encoder.dim, max_length=encoder.max_length,
                            query_prefix=cfg.query_prefix, passage_prefix=cfg.passage_prefix, normalize=True)
            save_checkpoint(out, step, model=backbone, tokenizer=tokenizer, meta=meta, st_files=st_files,
                            optimizer=optimizer, scheduler=scheduler, scaler=scaler, rng_states=rngs)
            prune_checkpoints(out, cfg.keep_checkpoints)
        if info.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
        return path

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start_step, unit="step", dynamic_ncols=True, mininterval=0.5,
               disable=not cfg.progress or info.rank != 0, file=sys.stderr)
    last_loss = None
    last_eval = None
    last_saved = start_step if ckpt is not None else -1
    log = open(log_file, "a", encoding="utf-8") if info.rank == 0 else None
    blog = open(batch_log, "a", encoding="utf-8") if batch_log is not None else None
    run_start = time.perf_counter()
    try:
        if eval_set is not None and cfg.eval_every and start_step == 0:
            last_eval = _run_eval(encoder, eval_set, cfg, 0, log)  # the baseline before any update
        for step in range(start_step, cfg.steps):
            t0 = time.perf_counter()
            batch = first_batch if step == start_step else next(batches)
            negatives = batch.negatives if cfg.hard_negatives else None
            q_in = tokenize(batch.queries, cfg.query_prefix)
            p_in = tokenize(batch.passages, cfg.passage_prefix)
            n_in = tokenize(negatives, cfg.passage_prefix) if negatives else None
            with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                q, p, n = wrapped(q_in, p_in, n_in)
            q, p = gather_with_local_grad(q), gather_with_local_grad(p)
            n = gather_with_local_grad(n) if n is not None else None
            loss = info_nce(q, p, n, temperature=cfg.temperature)
            # DDP averages gradients over ranks; every rank holds the same global loss, so scale
            # by the world size to get the single-process gradient of the global loss.
            scaler.scale(loss * info.world_size).backward()
            grad_norm = None
            if cfg.max_grad_norm > 0:
                scaler.unscale_(optimizer)
                # the total norm before clipping (inf/nan on an fp16 overflow: the scaler skips the step)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm))
            lr = scheduler.get_last_lr()[0]
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            last_loss = float(loss.detach())
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            done = step + 1
            if log is not None:
                log.write(json.dumps({"event": "train", "step": done, "loss": last_loss, "lr": lr,
                                      "grad_norm": grad_norm, "kind": batch.kind,
                                      "step_time_s": round(dt, 6), "steps_per_s": round(1.0 / dt, 4),
                                      "pairs_per_s": round(cfg.batch_size / dt, 2),
                                      "elapsed_s": round(time.perf_counter() - run_start, 3)}) + "\n")
                log.flush()
            if blog is not None:
                blog.write(json.dumps({"step": done, "kind": batch.kind, "xling_ids": list(batch.xling_ids),
                                       "loss": last_loss, "grad_norm": grad_norm}) + "\n")
                blog.flush()
            bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}", refresh=False)
            bar.update(1)
            if eval_set is not None and cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                last_eval = _run_eval(encoder, eval_set, cfg, done, log)
            if cfg.save_steps and done % cfg.save_steps == 0 and done < cfg.steps:
                save(done)
                last_saved = done
        if last_saved != cfg.steps:
            save(cfg.steps)
        if eval_set is not None:
            last_eval = _run_eval(encoder, eval_set, cfg, cfg.steps, log)
    finally:
        bar.close()
        for fh in (log, blog):
            if fh is not None:
                fh.close()
    final_ckpt = out / checkpoint_name(cfg.steps)
    final = out / FINAL
    if info.rank == 0:
        final = publish_final(out, final_ckpt)
    if info.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(out=out, final=final, steps=cfg.steps, start_step=start_step, last_loss=last_loss,
                       eval=last_eval, rank=info.rank)


def _run_eval(encoder, eval_set, cfg: TrainConfig, step: int, log) -> dict:
    from fastir.train.heldout import evaluate

    t0 = time.perf_counter()
    res = evaluate(encoder, eval_set, query_prefix=cfg.query_prefix, passage_prefix=cfg.passage_prefix)
    res = {"event": "eval", "step": step, **res, "eval_time_s": round(time.perf_counter() - t0, 3)}
    if log is not None:
        log.write(json.dumps(res) + "\n")
        log.flush()
    return res


def _versions() -> dict:
    import torch
    import transformers

    from fastir import __version__

    return {"fastir": __version__, "torch": torch.__version__, "transformers": transformers.__version__}
