"""Exact scoring across processes: candidate shards whose per-gold counts add up.

A gold's rank in a candidate set is one sum over the candidates, so it is the sum of the same
count over any split of the candidates. Shard i of N owns the contiguous candidate rows
:func:`shard_range` (i, N) and counts, per gold and language, its candidates at or above the gold.

* ``torchrun ... fastir score RUN``: every rank checks that all see the same run dir
  (:func:`run_checksum`) and settings, computes the scores of the golds in its rows, and one
  all_reduce hands each rank every gold score; after its pass, one all_reduce sums the count
  arrays (gloo on CPU, nccl on GPU) and rank 0 finalises and writes (TREC top-k lists are
  gathered to rank 0 and merged). A rank that dies or stalls makes the others fail after
  ``--timeout`` seconds with one line, instead of waiting forever.
* ``fastir score RUN --shard I/N``: no rendezvous (SLURM arrays, Kubernetes jobs); shard I computes
  every gold score itself and writes its counts to a file (:func:`write_shard`) with the run's
  checksum and the settings; ``fastir score RUN --merge-shards FILES...`` checks and sums them.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from fastir.core.errors import FastirError, InputError

SHARD_FORMAT = "fastir-score-shard/2"  # /1 had no digest
DEFAULT_TIMEOUT_S = 1800.0
_EDGE = 1 << 20  # bytes hashed at each end of an embedding table


def shard_range(n_candidates: int, index: int, count: int) -> tuple[int, int]:
    """Candidate rows [first, end) of shard ``index`` of ``count``: contiguous, sizes differ by <= 1."""
    return n_candidates * index // count, n_candidates * (index + 1) // count


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N, or InputError naming --shard."""
    from fastir.core.numbers import parse_int

    parts = str(text).split("/")
    if len(parts) != 2:
        raise InputError(None, "--shard", f"expected I/N (shard I of N, 0 <= I < N), found {text!r}")
    i, n = (parse_int(part, "--shard", lo=-(2**31), hi=2**31 - 1) for part in parts)
    if n < 1 or not 0 <= i < n:
        raise InputError(None, "--shard", f"shard {i} of {n} is out of range: expected 0 <= I < N")
    return i, n


def run_checksum(run) -> str:
    """sha256 of run.json, the qrels table, and each embedding table's size and first/last MiB.

    Cheap for any pool size, and different for two run dirs that could score differently in
    practice (another model, dataset, dtype, candidate count or qrels).
    """
    h = hashlib.sha256(json.dumps(run.meta, sort_keys=True).encode())
    for side in (run.queries, run.candidates):
        first, last = side.chunks[0], side.chunks[-1]  # record batches: the pool is never joined
        h.update(f"{len(side)}:{first.dtype}:{first.shape[1]}".encode())
        h.update(np.ascontiguousarray(first[:max(1, _EDGE // max(1, first[:1].nbytes))]).tobytes())
        h.update(np.ascontiguousarray(last[-max(1, _EDGE // max(1, last[:1].nbytes)):]).tobytes())
        ids = side.table.column("id")
        if len(ids):
            h.update(f"{ids[0].as_py()}\0{ids[len(ids) - 1].as_py()}".encode())
    q, c, grade = run.qrels_graded()
    for arr in (q, c, grade):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- torchrun


def distributed_counts(run, dist, engine, settings: dict, gold_scores, count_range):
    """This rank's shard counted, every rank's counts summed: the whole pool's counts (all ranks).

    ``gold_scores(own)``: float32 scores of the golds in candidate rows ``own``, 0 elsewhere;
    ``count_range(own, gold)``: the Counts of rows ``own`` given every gold score (both from
    :mod:`fastir.eval.score`, passed in so that this module does not import it back).
    """
    import torch

    mine = (run_checksum(run), settings)
    seen = _collective(dist, lambda: dist.gather_objects(mine))
    for rank, (checksum, theirs) in enumerate(seen):
        if checksum != seen[0][0]:
            raise InputError(run.path, "run", f"rank {rank} sees a different run dir than rank 0 (checksum "
                                              f"{checksum[:12]} vs {seen[0][0][:12]}); give every rank the same RUN")
        if theirs != seen[0][1]:
            raise InputError(None, "settings", f"rank {rank} was started with other settings ({theirs}) than "
                                               f"rank 0 ({seen[0][1]}); give every rank the same options")
    own = shard_range(len(run.candidates), dist.rank, dist.world_size)
    gold = torch.from_numpy(gold_scores(own))
    _collective(dist, lambda: _all_reduce(gold, engine))  # each gold lies in one shard: a sum of one value
    counts = count_range(own, gold.numpy())
    for name in ("cnt", "tied", "undecided", "recomputed"):  # tied: the tie modes; the last two: certified counters
        if getattr(counts, name) is not None:
            total = torch.from_numpy(getattr(counts, name))
            _collective(dist, lambda: _all_reduce(total, engine))
            setattr(counts, name, total.numpy())
    if counts.top is not None:
        tops = _collective(dist, lambda: dist.gather_objects(counts.top))
        counts.top = merge_tops(tops)
    return counts


def _all_reduce(tensor, engine) -> None:
    import torch.distributed as td

    if getattr(engine, "device", None) is not None and engine.device.type == "cuda":  # nccl wants GPU tensors
        on_device = tensor.to(engine.device)
        td.all_reduce(on_device)
        tensor.copy_(on_device.cpu())
    else:
        td.all_reduce(tensor)


def _collective(dist, fn):
    """Run a collective; a peer that died or timed out becomes one line, not a hang or a traceback."""
    try:
        return fn()
    except RuntimeError as exc:  # torch.distributed's DistBackendError and timeouts derive from it
        detail = " ".join(str(exc).split())[:200]
        raise FastirError(f"rank {dist.rank}: another rank died or did not answer within the timeout "
                          f"(--timeout); see its error ({detail})") from None


def merge_tops(tops):
    """Top-k lists of shards (score, key, length per query and set) merged into one (keys ascending break ties)."""
    from fastir.kernels.tiles import merge_top

    score, key, length = (np.array(a) for a in tops[0])
    rows = np.arange(score.shape[0], dtype=np.int64)
    for other in tops[1:]:
        merge_top(score, key, length, *other, rows)
    return score, key, length


def join_ranks(timeout_s: float, device: str = "auto", merging: bool = False):
    """torchrun's process group (a no-op single process without torchrun), collectives timing out
    after ``timeout_s``; nccl when the ranks score on GPUs."""
    import os
    from datetime import timedelta

    from fastir.core.distributed import Distributed

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    if merging:
        raise InputError(None, "--merge-shards", "merge shard files in one process, not under torchrun")
    from fastir.eval.gpu import resolve_device

    on_gpu = resolve_device(device) != "cpu"
    try:
        return Distributed.from_env(collective_device="cuda" if on_gpu else "cpu", timeout=timedelta(seconds=timeout_s))
    except RuntimeError as exc:
        raise FastirError(f"torchrun rendezvous failed ({' '.join(str(exc).split())[:200]})") from None


# -------------------------------------------------------------------------------- static shards


def default_shard_file(run_dir, index: int, count: int) -> Path:
    return Path(run_dir) / "shards" / f"shard-{index}-of-{count}.npz"


def check_shard_file(path, overwrite: bool, run_dir) -> None:
    """A shard file may replace an existing one only with --overwrite, never a file of the run it
    counts; a directory is refused."""
    from fastir.core.outputs import check_not_a_link, check_not_an_input
    from fastir.runs.schema import RUN_FILES

    path = Path(path)
    check_not_an_input(path, [Path(run_dir) / name for name in RUN_FILES])
    check_not_a_link(path)
    if path.is_dir():
        raise InputError(path, "--out", "is a directory; a shard writes one file")
    if path.exists() and not overwrite:
        raise InputError(path, "--out", "exists (use --overwrite to replace it)")



def write_shard(path, run, counts, index: int, count: int, settings: dict) -> None:
    """Shard ``index`` of ``count``'s counts (npz) with the run's checksum and the settings, atomically."""
    from fastir.core.outputs import atomic_file

    header = {"format": SHARD_FORMAT, "shard": index, "shards": count, "run_checksum": run_checksum(run),
              "candidates": list(shard_range(len(run.candidates), index, count)), "settings": settings}
    arrays = {"cnt": counts.cnt}
    if counts.tied is not None:  # the tie modes (fastir.eval.ties): candidates tied with each gold
        arrays["tied"] = counts.tied
    if counts.undecided is not None:  # certified counts: the undecided pairs and recomputed candidates too
        arrays.update(undecided=counts.undecided, recomputed=counts.recomputed)
    if counts.top is not None:
        arrays.update(top_score=counts.top[0], top_key=counts.top[1], top_length=counts.top[2])
    header["sha256"] = _digest(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_file(path) as fh:
        fh.write(buf.getbuffer())


def _digest(header: dict, arrays: dict) -> str:
    """SHA-256 of a shard's header (less its digest) and of every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_shards(files, run, settings: dict, n_golds: int, n_langs: int):
    """The counts of shard files summed (a Counts), when they are exactly one complete partition of
    the candidates, of this run and these settings, each intact (its digest) and in range; InputError
    otherwise, before any kernel reads them."""
    from fastir.eval.stream import Counts

    if not files:
        raise InputError(None, "--merge-shards", "no shard files given")
    checksum = run_checksum(run)
    seen: dict[int, Path] = {}
    total, tops, count, undecided, recomputed = None, {}, None, None, None
    tied, with_ties = None, []
    for file in map(Path, files):
        header, arrays = _load(file)
        if header["run_checksum"] != checksum:
            raise InputError(file, "run_checksum", f"shard of another run dir (checksum {header['run_checksum'][:12]}, "
                                                   f"{run.path} has {checksum[:12]})")
        if header["settings"] != settings:
            raise InputError(file, "settings", f"shard scored with {header['settings']}, this merge asks for {settings}")
        if count is not None and header["shards"] != count:
            raise InputError(file, "shards", f"shard of {header['shards']} shards, the others are of {count}")
        count, index = header["shards"], header["shard"]
        if index in seen:
            raise InputError(file, "shard", f"shard {index}/{count} given twice (also {seen[index]})")
        seen[index] = file
        first, end = _check_range(file, header, len(run.candidates))
        cnt = _check_counts(file, arrays.get("cnt"), n_golds, n_langs, end - first)
        total = cnt.copy() if total is None else total + cnt
        with_ties.append("tied" in arrays)
        if "tied" in arrays or settings.get("ties", "pessimistic") != "pessimistic":
            tie = _check_counts(file, arrays.get("tied"), n_golds, n_langs, end - first, "tied")
            tied = tie.copy() if tied is None else tied + tie
        if settings.get("precision") == "exact":
            und = _check_counts(file, arrays.get("undecided"), n_golds, n_langs, end - first, "undecided")
            rec = arrays.get("recomputed")
            if not isinstance(rec, np.ndarray) or rec.shape != (len(run.queries),) or rec.dtype != np.int64:
                raise InputError(file, "recomputed", f"expected int64 counts of shape {(len(run.queries),)}")
            undecided = und.copy() if undecided is None else undecided + und
            recomputed = rec.copy() if recomputed is None else recomputed + rec
        if settings.get("trec_depth"):
            shape = next(iter(tops.values()))[0].shape if tops else (len(run.queries), n_langs + 1, None)
            tops[index] = _check_top(file, arrays, shape, end - first, len(run.candidates))
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise InputError(None, "--merge-shards", f"shard {missing[0]}/{count} is missing ({len(seen)} of {count} given)")
    top = merge_tops([tops[i] for i in range(count)]) if tops else None
    # A float16 run's tie spread needs every shard's tie counts (shards of an older fastir have none).
    return Counts(total, np.zeros(n_golds, np.float32), top, undecided, recomputed, tied if all(with_ties) else None)


def _check_range(file: Path, header: dict, n_candidates: int) -> tuple[int, int]:
    """The shard's index, count and candidate rows agree with each other and with the run."""
    index, count = header["shard"], header["shards"]
    if not (count >= 1 and 0 <= index < count):
        raise InputError(file, "shard", f"shard {index} of {count} is out of range (0 <= shard < shards)")
    want = list(shard_range(n_candidates, index, count))
    if header.get("candidates") != want:
        raise InputError(file, "candidates", f"{header.get('candidates')!r}, but shard {index} of {count} of this "
                                             f"run's {n_candidates} candidates is rows {want}")
    return want[0], want[1]


def _check_counts(file: Path, cnt, n_golds: int, n_langs: int, size: int, field: str = "cnt") -> np.ndarray:
    """int64 per-gold, per-language counts, each gold's total within the shard's ``size`` candidates."""
    if not isinstance(cnt, np.ndarray) or cnt.shape != (n_golds, n_langs) or cnt.dtype != np.int64:
        found = f"{cnt.dtype} {cnt.shape}" if isinstance(cnt, np.ndarray) else "none"
        raise InputError(file, field, f"expected int64 counts of shape {(n_golds, n_langs)}, found {found}")
    if cnt.size and (cnt.min() < 0 or cnt.sum(axis=1).max() > size):
        raise InputError(file, field, f"counts out of range: each gold counts 0 to {size} candidates in this shard")
    return cnt


def _check_top(file: Path, arrays: dict, shape: tuple, size: int, n_candidates: int):
    """The shard's top-k lists: shapes of the run (and of the other shards), lengths within the
    depth and the shard's ``size``, keys (positions in the pool) within it, sorted by score
    descending, then key ascending."""
    kinds = {"top_score": np.float32, "top_key": np.int64, "top_length": np.int32}
    for name, kind in kinds.items():
        a = arrays.get(name)
        want = shape if name != "top_length" else shape[:2]
        if not isinstance(a, np.ndarray) or a.dtype != kind or a.ndim != len(want) or any(
                w is not None and w != g for w, g in zip(want, a.shape)):
            raise InputError(file, name, f"expected {np.dtype(kind)} of shape {tuple(want)} (None: any)")
    score, key, length = arrays["top_score"], arrays["top_key"], arrays["top_length"]
    if score.shape != key.shape or length.shape != score.shape[:2]:
        raise InputError(file, "top_key", "top-k arrays of different shapes")
    depth = score.shape[2]
    held = np.arange(depth)[None, None, :] < length[:, :, None]
    if length.size and (length.min() < 0 or length.max() > min(depth, size)):
        raise InputError(file, "top_length", f"lengths out of range 0..{min(depth, size)}")
    if np.any(held & ((key < 0) | (key >= n_candidates))) or not np.all(np.isfinite(score[held])):
        raise InputError(file, "top_key", f"entries outside the pool's {n_candidates} candidates or not finite")
    pair = held[:, :, 1:]
    later = (score[:, :, :-1] > score[:, :, 1:]) | ((score[:, :, :-1] == score[:, :, 1:]) & (key[:, :, :-1] < key[:, :, 1:]))
    if np.any(pair & ~later):
        raise InputError(file, "top_score", "top-k lists not sorted by score descending, then key ascending")
    return score, key, length


def _load(file: Path):
    if not file.is_file():
        raise InputError(file, None, "missing" if not file.exists() else "not a file")
    from fastir.core.textfiles import parse_json

    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = arrays.pop("header").tobytes()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(file, "format", f"not a fastir shard file ({' '.join(str(exc).split())[:120]})") from None
    header = parse_json(header, file, "header")
    if not isinstance(header, dict) or header.get("format") != SHARD_FORMAT:
        got = header.get("format") if isinstance(header, dict) else None
        hint = ": written by an earlier fastir, without a digest; score the shard again" if got == \
            "fastir-score-shard/1" else ""
        raise InputError(file, "format", f"expected {SHARD_FORMAT!r}, found {got!r}{hint}")
    for key, kind in (("shard", int), ("shards", int), ("run_checksum", str), ("settings", dict), ("sha256", str)):
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            raise InputError(file, key, f"missing or not {kind.__name__}")
    if _digest(header, arrays) != header["sha256"]:
        raise InputError(file, "sha256", "the file's content does not match its digest: damaged or edited; "
                                         "score the shard again")
    return header, arrays
