"""``fastir embed``: encode a dataset into a run dir (see :mod:`fastir.runs.rundir`).

The dataset comes from :func:`fastir.data.registry.open_dataset` (a name or a directory) and is
read only through the :class:`fastir.data.dataset.Dataset` interface.

How a run proceeds, and why:

1. Everything that can be checked cheaply (options, OUT, dataset, model folder) is checked
   before any file is written, so bad input leaves nothing behind.
2. Each side is read in windows of at most ``window`` rows (:mod:`fastir.encoding.windows`;
   candidates stream from :meth:`~fastir.data.dataset.Dataset.iter_candidates`, so a corpus's
   text is never held whole). Each window is tokenized, sorted by length and cut into batches of
   at most ``batch_tokens`` padded tokens (:func:`fastir.encoding.encoder.plan_batches`). The plan
   depends only on the data and the options, so an interrupted run re-creates it exactly.
3. The batches' embeddings go to part files (``part-<side>-<window>-r<rank>-<k>.arrow``: row
   indices, batch numbers and embeddings of up to :data:`~fastir.encoding.windows.PART_ROWS` rows,
   written under a temporary name then renamed) in a work dir beside OUT (``.<OUT>.fastir-embed/``),
   beside one ``window-<side>-<window>.arrow`` of ids per window: a few files per window, whatever
   the batch size. Memory stays flat; a part either exists whole or not at all.
   Rank 0 holds OUT's lock (:mod:`fastir.core.outputs`) for the whole run: a second embed to OUT fails.
   ``--resume`` skips the batches the parts hold; ``plan.json`` refuses a resume with other options.
4. Under torchrun, rank r encodes batches r, r + W, ... (numbered across windows and sides);
   after a barrier rank 0 merges.
5. Rank 0 assembles each window from its parts in dataset order and appends it to the tables
   (:class:`fastir.runs.writer.TableStream`: the same bytes as writing a table whole), writes
   run.json into a temporary directory and renames it onto OUT; the work dir is removed last.
   The tables depend only on the parts, so a resumed run is byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from fastir.core import __version__
from fastir.core.outputs import atomic_dir, remove_leftovers
from fastir.core.distributed import Distributed
from fastir.core.errors import FastirError, InputError
from fastir.core.outputs import claim_output
from fastir.encoding.windows import (
    PART_ROWS, READ_CHUNK, WINDOW, Window, done_batches, gather_window, iter_windows, new_part_path, window_batches,
    window_path, write_part, write_window,
)
from fastir.runs.rundir import (
    CANDIDATES, QRELS, QUERIES, RUN_FORMAT, RUN_JSON, embedding_array, qrels_table, queries_table, table_schema,
    write_run_json, write_table,
)
from fastir.core.textfiles import read_json
from fastir.runs.schema import RUN_DIR_ENTRIES
from fastir.runs.writer import TableStream

CANDIDATE_MODES = ("sentence", "sentence+context")
STORES = {"fp16": "float16", "fp32": "float32"}
PLAN = "plan.json"
SIDES = ("queries", "candidates")


@dataclass
class EmbedOptions:
    dataset: str
    model: object  # hub id or folder (hf), a named backend's model (usually None), or an object with encode()
    out: str
    backend: str | None = None  # None: hf, or "object" for a Python object (fastir.encoding.backends)
    langs: list[str] | None = None
    pooling: str | None = None
    normalize: bool | None = None
    query_prefix: str = ""
    passage_prefix: str = ""
    candidates: str = "sentence"
    max_length: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    store: str = "fp16"
    batch_tokens: int | None = None  # hf only; None: a device-dependent default (fastir.encoding.hf.default_batch_tokens)
    resume: bool = False
    overwrite: bool = False
    progress: bool = False
    window: int = WINDOW  # rows tokenized and length-sorted together (fastir.encoding.windows)


@dataclass
class EmbedResult:
    out: Path
    meta: dict
    encoded: int  # texts encoded by this process in this call (0 when nothing was left to do)
    seconds: float
    rank: int = 0
    world_size: int = 1
    already_complete: bool = False


def work_dir_for(out: Path) -> Path:
    from fastir.core.temp_names import fit_name

    return out.parent / f".{fit_name(out.name, len('..fastir-embed'))}.fastir-embed"


def embed_dataset(opts: EmbedOptions, on_batch: Callable[[str, int], None] | None = None) -> EmbedResult:
    """Encode ``opts.dataset`` into the run dir ``opts.out``; see the module docstring.

    ``on_batch(side, batch_index)`` is called after each batch is committed to disk (tests use it
    to interrupt a run at a known point).
    """
    t0 = time.perf_counter()
    _check_options(opts)
    out = Path(opts.out)
    work = work_dir_for(out)
    # Ranks wait at barriers while others encode: allow long waits.
    dist = Distributed.from_env(timeout=datetime.timedelta(hours=12))
    claim = contextlib.ExitStack()
    try:
        # One writer per OUT (rank 0 holds the lock for the job); then dead runs' temporaries go.
        dist.run_on_rank0(lambda: (claim.enter_context(claim_output(out)), remove_leftovers(work)))
        complete = _check_out(out, work, opts)
        dist.barrier()  # every rank has checked OUT before rank 0 creates the work dir
        from fastir.data.registry import open_dataset

        ds = open_dataset(opts.dataset, langs=opts.langs)
        if complete is not None:
            return _already_complete(out, complete, ds, opts, t0, dist)
        queries, qrels = ds.queries(), ds.qrels()
        if not len(queries) or max(qrels.relevance, default=0) < 1:
            raise InputError(opts.dataset, "qrels", "no query with a relevant judgment (grade >= 1) in the languages "
                                                    "kept: a run of it could not be scored")
        first = next(iter(ds.iter_candidates(1)), None)
        if opts.candidates == "sentence+context" and first is not None and first.contexts is None:
            raise InputError(opts.dataset, "--candidates", "sentence+context needs candidate contexts; "
                                                           "this dataset has none")
        from fastir.encoding.backends import HF, backend_name, open_backend

        hf = backend_name(opts.model, opts.backend) == HF
        enc = open_backend(opts.model, opts.backend, pooling=opts.pooling, max_length=opts.max_length,
                           device=dist.device(opts.device) if hf else opts.device, dtype=opts.dtype)
        normalize = enc.normalize_default if opts.normalize is None else bool(opts.normalize)
        meta = _run_meta(opts, ds, enc, normalize, (queries, _num_candidates(ds), qrels))
        plan = {**meta, "window": opts.window}
        created = dist.rank == 0 and (opts.overwrite or not work.exists())
        dist.run_on_rank0(lambda: _prepare_work_dir(work, plan, opts))
        try:
            encoded, windows = _encode_sides(enc, ds, queries, work, meta, normalize, dist, opts, on_batch)
        except InputError:
            if created:  # bad output from the encoder (e.g. NaN): leave nothing behind
                shutil.rmtree(work, ignore_errors=True)
            raise
        dist.barrier()
        dist.run_on_rank0(lambda: _merge(work, out, meta, (queries, qrels), windows, opts.overwrite))
        return EmbedResult(out, meta, encoded, time.perf_counter() - t0, dist.rank, dist.world_size)
    finally:
        claim.close()
        dist.close()


def _num_candidates(ds) -> int:
    """The dataset's candidate count: its ``num_candidates`` when it has one, else one streamed count."""
    known = getattr(ds, "num_candidates", None)
    if isinstance(known, int):
        return known
    return sum(len(chunk) for chunk in ds.iter_candidates(READ_CHUNK))


def _run_meta(opts: EmbedOptions, ds, enc, normalize: bool, columns) -> dict:
    """run.json: the dataset, what the backend records (backend, version, model, settings), the options;
    ``columns``: the dataset's (Queries, candidate count, Qrels)."""
    queries, num_candidates, qrels = columns
    return {
        "format": RUN_FORMAT, "dataset": opts.dataset, "dataset_checksum": ds.checksum, "langs": list(ds.langs),
        **enc.record(opts.batch_tokens), "dim": enc.dim, "dtype": STORES[opts.store], "normalized": normalize,
        "query_prefix": opts.query_prefix, "passage_prefix": opts.passage_prefix, "candidates": opts.candidates,
        "num_queries": len(queries), "num_candidates": num_candidates, "num_qrels": len(qrels),
        "fastir_version": __version__,
    }


# --------------------------------------------------------------------------------------- checks


def _check_options(opts: EmbedOptions) -> None:
    from fastir.encoding.backends import HF, backend_name, check_backend, check_hf_only
    from fastir.encoding.encoder import DEVICES, DTYPES as COMPUTE_DTYPES, POOLINGS

    backend = backend_name(opts.model, opts.backend)
    check_backend(backend)
    if backend == HF and opts.model is None:
        raise InputError(None, "--model", "the hf backend needs a hub id or a model folder")
    check_hf_only(backend, pooling=opts.pooling, device=opts.device, dtype=opts.dtype, max_length=opts.max_length,
                  batch_tokens=opts.batch_tokens)
    if backend != HF and opts.candidates != "sentence":
        raise InputError(None, "--candidates", f"{opts.candidates} encodes text pairs, which only the hf backend "
                                               f"does; the {backend} backend takes --candidates sentence")

    if opts.langs is not None and not opts.langs:
        raise InputError(None, "--langs", "empty language list")
    if opts.candidates not in CANDIDATE_MODES:
        raise InputError(None, "--candidates", f"expected one of {', '.join(CANDIDATE_MODES)}, found {opts.candidates!r}")
    if opts.store not in STORES:
        raise InputError(None, "--store", f"expected one of {', '.join(STORES)}, found {opts.store!r}")
    if opts.pooling is not None and opts.pooling not in POOLINGS:
        raise InputError(None, "--pooling", f"expected one of {', '.join(POOLINGS)}, found {opts.pooling!r}")
    if opts.device not in DEVICES:
        raise InputError(None, "--device", f"expected one of {', '.join(DEVICES)}, found {opts.device!r}")
    if opts.dtype not in COMPUTE_DTYPES:
        raise InputError(None, "--dtype", f"expected one of {', '.join(COMPUTE_DTYPES)}, found {opts.dtype!r}")
    if opts.batch_tokens is not None and opts.batch_tokens <= 0:
        raise InputError(None, "--batch-tokens", f"must be positive, found {opts.batch_tokens}")
    if opts.max_length is not None and opts.max_length <= 0:
        raise InputError(None, "--max-length", f"must be positive, found {opts.max_length}")
    if not isinstance(opts.window, int) or opts.window <= 0:
        raise InputError(None, "window", f"must be a positive number of rows, found {opts.window!r}")
    if opts.resume and opts.overwrite:
        raise InputError(None, "--resume", "cannot be combined with --overwrite")


def _check_out(out: Path, work: Path, opts: EmbedOptions) -> dict | None:
    """Check OUT before anything is written. Returns OUT's run.json when ``--resume`` finds it complete."""
    from fastir.core.outputs import check_not_a_link, check_not_an_input, check_output_dir

    inputs = [opts.dataset, *([opts.model] if isinstance(opts.model, (str, os.PathLike)) else [])]
    check_not_an_input(out, inputs)
    check_not_an_input(work, inputs)
    check_not_a_link(out)
    if opts.overwrite:  # replaces only a run dir (and what fastir writes inside one)
        check_output_dir(out, overwrite=True, written=RUN_DIR_ENTRIES)
    if out.exists() and not out.is_dir():
        raise InputError(out, None, "output path exists and is not a directory")
    non_empty = out.is_dir() and any(out.iterdir())
    if non_empty and not opts.overwrite:
        if not opts.resume:
            raise InputError(out, None, "output directory exists and is not empty; pass --overwrite to replace it")
        if not (out / RUN_JSON).is_file():
            raise InputError(out, None, "output directory is not empty and holds no fastir run; pass --overwrite")
        try:
            return read_json(out / RUN_JSON)
        except InputError as exc:
            raise InputError(out / RUN_JSON, "json", f"{exc.message}; pass --overwrite to start over") from None
    if work.exists() and not (opts.resume or opts.overwrite):
        raise InputError(work, None, "an interrupted run of this OUT is here; pass --resume to continue it "
                                     "or --overwrite to start over")
    return None


def _already_complete(out, meta, ds, opts, t0, dist) -> EmbedResult:
    from fastir.encoding.backends import HF, backend_name, model_label

    backend = backend_name(opts.model, opts.backend)
    model = model_label(opts.model)
    for key, want in (("backend", backend), ("model", model), ("dataset_checksum", ds.checksum),
                      ("langs", list(ds.langs)), ("candidates", opts.candidates), ("dtype", STORES[opts.store])):
        got = meta.get(key, HF if key == "backend" else None)  # runs before backends were recorded are hf runs
        if want is not None and got != want:
            raise InputError(out / RUN_JSON, key, f"the finished run has {meta.get(key)!r}, this call asks for "
                                                  f"{want!r}; pass --overwrite to replace it")
    dist.barrier()
    return EmbedResult(out, meta, 0, time.perf_counter() - t0, dist.rank, dist.world_size, already_complete=True)


def _prepare_work_dir(work: Path, plan: dict, opts: EmbedOptions) -> None:
    plan_file = work / PLAN
    if work.exists() and opts.overwrite:
        shutil.rmtree(work)
    if work.exists():
        # --resume (checked before): the interrupted run must have been asked for exactly this.
        try:
            old = read_json(plan_file)
        except (OSError, InputError):
            old = None
        if not isinstance(old, dict):
            raise InputError(plan_file, None, "unreadable; pass --overwrite to start over")
        for key in sorted(set(plan) | set(old)):
            if old.get(key) != plan.get(key):
                raise InputError(plan_file, key, f"the interrupted run used {old.get(key)!r}, this call "
                                                 f"{plan.get(key)!r}; pass --overwrite to start over")
        return
    with atomic_dir(work) as tmp:  # the work dir appears with its plan.json or not at all
        (tmp / PLAN).write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")


# -------------------------------------------------------------------------------------- encoding


def _encode_sides(enc, ds, queries, work: Path, meta: dict, normalize: bool, dist, opts: EmbedOptions,
                  on_batch) -> tuple[int, dict[str, int]]:
    """Encode this rank's batches that have no part on disk yet, window by window (queries, then
    candidates streamed from the dataset). Returns (texts encoded, windows per side)."""
    from tqdm.auto import tqdm

    total = meta["num_queries"] + meta["num_candidates"] if dist.world_size == 1 else None
    desc = "embed" if dist.world_size == 1 else f"embed rank {dist.rank}"
    encoded, job, windows = 0, 0, {}
    with tqdm(total=total, unit="text", desc=desc, disable=not opts.progress, dynamic_ncols=True, smoothing=0.1,
              position=dist.rank) as bar:
        for side in SIDES:
            chunks = [queries] if side == "queries" else ds.iter_candidates(min(READ_CHUNK, opts.window))
            windows[side], side_start = 0, job
            for win in iter_windows(side, chunks, opts.window):
                def committed(j, side=side, start=side_start):  # on_batch numbers a side's batches from 0
                    if on_batch is not None:
                        on_batch(side, j - start)

                done, job = _encode_window(enc, win, work, meta["dtype"], normalize, dist, opts, bar, committed, job)
                encoded += done
                windows[side] += 1
    return encoded, windows


def _encode_window(enc, win: Window, work: Path, store: str, normalize: bool, dist, opts: EmbedOptions, bar,
                   committed, job: int) -> tuple[int, int]:
    """Plan and encode one window; ``job`` numbers the batches across windows and sides (rank r
    takes the jobs j with j % W == r). Returns (texts encoded, the next window's first job)."""
    marker = window_path(work, win.side, win.index)
    planned = window_batches(marker)
    done = done_batches(work, win.side, win.index) if planned is not None else set()
    if planned is not None and all(b in done for b in range(planned) if (job + b) % dist.world_size == dist.rank):
        bar.update(len(win))  # nothing left here for this rank: no need to tokenize again
        return 0, job + planned
    side = win.side
    pairs = win.contexts if side == "candidates" and opts.candidates == "sentence+context" else None
    prefix = opts.query_prefix if side == "queries" else opts.passage_prefix
    prepared = enc.prepare(win.texts, prefix=prefix, text_pairs=pairs)
    batches = enc.plan(prepared, opts.batch_tokens)
    if planned is not None and planned != len(batches):
        raise FastirError(f"{marker}: planned {planned} batches, now {len(batches)}; rerun with --overwrite")
    if planned is None and dist.rank == 0:
        write_window(marker, win, len(batches))
    todo = []
    for b, rows in enumerate(batches):
        if (job + b) % dist.world_size != dist.rank or b in done:
            bar.update(len(rows) if (job + b) % dist.world_size == dist.rank else 0)
        else:
            todo.append(b)
    encoded, held = 0, []
    for b, (rows, emb) in zip(todo, enc.iter_encode(prepared, [batches[b] for b in todo], normalize)):
        held.append((b, rows + win.start, emb))
        encoded += len(rows)
        bar.update(len(rows))
        if sum(len(r) for _, r, _ in held) >= PART_ROWS or b == todo[-1]:  # one file per PART_ROWS rows
            write_part(new_part_path(work, side, win.index, dist.rank), held, store)
            for done_b, _, _ in held:
                committed(job + done_b)
            held = []
    return encoded, job + len(batches)


# ----------------------------------------------------------------------------------------- merge


def _merge(work: Path, out: Path, meta: dict, columns, windows: dict[str, int], overwrite: bool) -> None:
    """Write OUT from the parts, window by window; ``columns``: the dataset's (Queries, Qrels)."""
    queries, qrels = columns
    store, dim = meta["dtype"], meta["dim"]
    with atomic_dir(out, overwrite=overwrite) as tmp:
        pieces = [gather_window(work, "queries", w, store, dim)[1] for w in range(windows["queries"])]
        q = np.concatenate(pieces) if pieces else np.zeros((0, dim), np.dtype(store))
        if len(q) != len(queries):
            raise FastirError(f"{work}: {len(q)} query rows encoded for {len(queries)} queries; rerun with --overwrite")
        write_table(tmp / QUERIES, queries_table(queries.ids, queries.langs, queries.groups, q, store))
        del q, pieces
        schema = table_schema("candidates", store, dim)
        with TableStream(tmp / CANDIDATES, schema) as stream:
            for w in range(windows["candidates"]):
                ids, emb = gather_window(work, "candidates", w, store, dim)
                stream.write(pa.Table.from_arrays([ids.column("id"), ids.column("lang"), embedding_array(emb, store)],
                                                  schema=schema))
            if stream.rows != meta["num_candidates"]:
                raise FastirError(f"{meta['dataset']}: {stream.rows} candidates read, {meta['num_candidates']} "
                                  "expected: the dataset changed while embedding; rerun with --overwrite")
        write_table(tmp / QRELS, qrels_table(qrels.query_ids, qrels.candidate_ids, qrels.relevance))
        write_run_json(tmp, meta)
    shutil.rmtree(work, ignore_errors=True)
