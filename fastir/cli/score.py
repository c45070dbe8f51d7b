"""``fastir score``: exact all-pairs metrics of the metric registry (mAP, MRR, Recall@k, ...) and rank distance of a run dir."""

from __future__ import annotations

import click

from fastir.cli.options import Float, Int
from fastir.eval.cells import DEFAULT_BLOCK_MB, DEFAULT_KS
from fastir.eval.metrics import DEFAULT_TIES, TIE_MODES, known_names
from fastir.cli import echo

MAX_TIMEOUT_S = 1e9  # about 31 years

# The precision names, without importing fastir.eval.precision (numpy) for `fastir --help`.
PRECISION_CHOICES = ("auto", "fp32", "exact", "bf16", "int8")
DEFAULT_PRECISION = "auto"


# the options fastir score-run shares with fastir score, defined once
PAIRS_OPTION = click.option("--pairs", default="all", show_default=True,
                            help="Cells: all | mono | cross | multi | a list like en-de,en-all (may mix keywords).")
KS_OPTION = click.option("--k", "ks", default=None,
                         help=f"Recall@k cutoffs, comma-separated  [default: {','.join(map(str, DEFAULT_KS))}].")


def relevance_threshold_option(item: str):
    """``--relevance-threshold``, its help naming what is judged (a candidate, a document)."""
    return click.option("--relevance-threshold", "relevance_threshold", default="1", show_default=True,
                        help=f"A judged {item} is relevant at grade >= N (trec_eval's relevance_level); nDCG's "
                             "gains are every grade >= 1.")
@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.argument("shard_files", metavar="[SHARD_FILES]...", nargs=-1, type=click.Path())
@PAIRS_OPTION
@KS_OPTION
@click.option("--metrics", default=None,
              help=f"Comma-separated metrics instead of map,mrr,recall@{{--k}}, from {known_names()}; e.g. "
                   "map,mrr,recall@1,5,10 (a bare number continues the family before it). Rank distance is always "
                   "reported.")
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Output directory [default: RUN/scores/].")
@click.option("--overwrite", is_flag=True, help="Replace non-empty output directories.")
@click.option("--per-query", is_flag=True, help="Also write per_query.parquet (input of `fastir compare`).")
@click.option("--trec", "trec_dir", type=click.Path(), default=None,
              help="Also write TREC run + qrels files per cell into this directory.")
@click.option("--trec-depth", type=Int(), default=None,
              help="Candidates per query in TREC runs [default: the largest cutoff of --k / --metrics, else 100].")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="What to print: summary table, summary.json content, or pairs.csv content.")
@click.option("--block-mb", type=Float(), default=DEFAULT_BLOCK_MB, show_default=True,
              help="Memory budget of one float32 score block (MiB).")
@relevance_threshold_option("candidate")
@click.option("--precision", type=click.Choice(list(PRECISION_CHOICES)), default=DEFAULT_PRECISION, show_default=True,
              help="Product precision: auto = exact ranks from the fastest certified product here, chosen block "
                   "by block (float32 scores where --trec, the bias suite or a GPU need them); fp32 = ranks of "
                   "float32 scores; exact|bf16|int8 = exact ranks from that certified product (pairs left "
                   "undecided by the bound are recomputed exactly and counted in 'undecided').")
@click.option("--ties", type=click.Choice(list(TIE_MODES)), default=DEFAULT_TIES, show_default=True,
              help="Tied scores: pessimistic = ties count against the gold; optimistic = tied relevant "
                   "candidates first; expected = the mean over every order of the ties (closed form). The last "
                   "two score float32 products; trec_eval (document id order) is for `fastir score-run`.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the fp32 product runs: auto = CUDA when torch can use it, else the CPU.")
@click.option("--shard", default=None, metavar="I/N",
              help="Count only candidate shard I of N and write its counts to --out FILE "
                   "[default: RUN/shards/shard-I-of-N.npz]; combine them with --merge-shards.")
@click.option("--merge-shards", is_flag=True,
              help="Sum the shard files SHARD_FILES (all N shards of RUN, same options) and write the scores.")
@click.option("--timeout", type=Float(), default=1800.0, show_default=True,
              help="Under torchrun: seconds a rank waits for the others before failing.")
def score(run_dir, shard_files, pairs, ks, metrics, out_dir, overwrite, per_query, trec_dir, trec_depth, fmt,
          block_mb, relevance_threshold, precision, ties, device, shard, merge_shards, timeout):
    """Score every language pair of RUN (a `fastir embed` run dir) exactly, over the full ranking.

    Writes pairs.csv, pairs.parquet, summary.json, heatmap.png (and per_query.parquet, TREC files)
    to --out, all or nothing. Ties count against the gold (--ties); AP equals sklearn's average_precision_score.
    Under torchrun each rank counts a shard of the candidates; rank 0 writes (same files).
    """
    from fastir.cli import owns_process
    from fastir.eval.preload import preload_score_kernels

    loading = None
    if precision in ("fp32", "auto") and not (shard or merge_shards):  # overlaps Numba's start with reading the run
        loading = preload_score_kernels(run_dir, precision if ties == DEFAULT_TIES else "fp32",
                                        own_process=owns_process())
    try:
        _score(run_dir, shard_files, pairs, ks, metrics, out_dir, overwrite, per_query, trec_dir, trec_depth, fmt,
               block_mb, relevance_threshold, precision, ties, device, shard, merge_shards, timeout)
    finally:
        if loading is not None:
            loading.finish()


def _score(run_dir, shard_files, pairs, ks, metrics, out_dir, overwrite, per_query, trec_dir, trec_depth, fmt,
           block_mb, relevance_threshold, precision, ties, device, shard, merge_shards, timeout):
    import json

    from fastir.core.errors import InputError
    from fastir.core.outputs import claim_output
    from fastir.runs.rundir import read_run
    from fastir.eval.score import default_out_dir, parse_threshold, score_run
    from fastir.eval.report import check_score_outputs, format_table, pairs_csv, summary_json, write_scores
    from fastir.eval.cells import parse_ks
    from fastir.eval.metrics import parse_metrics

    if ks is not None and metrics is not None:
        raise InputError(None, "--k", "give either --k or --metrics (write the cutoffs as recall@1,5,10)")
    ks = parse_ks(DEFAULT_KS if ks is None else ks)
    chosen = None if metrics is None else parse_metrics(metrics)
    threshold = parse_threshold(relevance_threshold)
    if trec_depth is not None and trec_dir is None and shard is None:
        raise InputError(None, "--trec-depth", "needs --trec DIR")
    if shard_files and not merge_shards:
        raise InputError(shard_files[0], None, "unexpected argument: shard files need --merge-shards")
    if shard is not None and merge_shards:
        raise InputError(None, "--shard", "give either --shard I/N or --merge-shards")
    if shard is not None:
        _write_shard(run_dir, shard, out_dir, overwrite, trec_dir, precision, pairs=pairs, ks=ks, block_mb=block_mb,
                     metrics=chosen, device=device, trec_depth=trec_depth, relevance_threshold=threshold, ties=ties)
        return
    if not 0 < timeout <= MAX_TIMEOUT_S:  # beyond it, torch's timedelta overflows on every rank
        raise InputError(None, "--timeout", f"must be positive and at most {MAX_TIMEOUT_S:g} s, found {timeout}")
    run = read_run(run_dir)
    out_dir = out_dir or default_out_dir(run_dir)
    check_score_outputs(run_dir, out_dir, trec_dir, overwrite, shard_files if merge_shards else ())
    if trec_dir is not None:
        cutoffs = ks if chosen is None else [m.k for m in chosen if m.k is not None] or [max(DEFAULT_KS)]
        trec_depth = max(cutoffs) if trec_depth is None else trec_depth
    from fastir.eval.shards import join_ranks

    dist = join_ranks(timeout, device, merge_shards)
    try:
        if dist.rank != 0:  # rank 0 writes; the others count their shard and leave
            score_run(run, pairs=pairs, ks=ks, block_mb=block_mb, trec_depth=trec_depth, metrics=chosen,
                      precision=precision, device=device, dist=dist, relevance_threshold=threshold, ties=ties)
            return
        with claim_output(out_dir, trec_dir):
            result = score_run(run, pairs=pairs, ks=ks, per_query=per_query, block_mb=block_mb,
                               trec_depth=trec_depth, metrics=chosen, precision=precision, device=device, dist=dist,
                               shard_files=list(shard_files) if merge_shards else None,
                               relevance_threshold=threshold, ties=ties)
            if result.precision and result.precision["note"]:
                echo(f"warning: {result.precision['note']}", err=True)
            write_scores(result, out_dir, overwrite=overwrite, trec_dir=trec_dir)
    finally:
        dist.close()
    if fmt == "json":
        echo(json.dumps(summary_json(result), indent=2))
    elif fmt == "csv":
        echo(pairs_csv(result), nl=False)
    else:
        echo(format_table(result))
        echo(f"\nwrote {out_dir}" + (f" and {trec_dir}" if trec_dir else ""))


def _write_shard(run_dir, shard, out_file, overwrite, trec_dir, precision, **options):
    """``--shard I/N``: count one candidate shard and write its counts file."""
    from fastir.core.errors import InputError
    from fastir.eval.score import score_shard
    from fastir.eval.shards import check_shard_file, default_shard_file, parse_shard
    from fastir.core.outputs import claim_output

    index, count = parse_shard(shard)
    if trec_dir is not None:
        raise InputError(None, "--trec", "a shard writes counts only; give --trec to --merge-shards")
    out_file = out_file or default_shard_file(run_dir, index, count)
    check_shard_file(out_file, overwrite, run_dir)
    with claim_output(out_file):
        score_shard(run_dir, index, count, out_file, precision=precision, **options)
    echo(f"wrote {out_file}")
