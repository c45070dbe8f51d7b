"""``fastir score``: exact all-pairs metrics of the metric registry (mAP, MRR, Recall@k, ...) and rank distance of a run dir."""

from __future__ import annotations

import click

from fastir.eval.cells import DEFAULT_BLOCK_MB, DEFAULT_KS
from fastir.eval.metrics import known_names

# The precision names, without importing fastir.eval.precision (numpy) for `fastir --help`.
PRECISION_CHOICES = ("fp32", "exact", "bf16", "int8")
DEFAULT_PRECISION = "fp32"


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path())
@click.option("--pairs", default="all", show_default=True,
              help="Cells: all | mono | cross | multi | a list like en-de,en-all (may mix keywords).")
@click.option("--k", "ks", default=None,
              help=f"Recall@k cutoffs, comma-separated  [default: {','.join(map(str, DEFAULT_KS))}].")
@click.option("--metrics", default=None,
              help=f"Comma-separated metrics instead of map,mrr,recall@{{--k}}, from {known_names()}; e.g. "
                   "map,mrr,recall@1,5,10 (a bare number continues the family before it). Rank distance is always "
                   "reported.")
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Output directory [default: RUN/scores/].")
@click.option("--overwrite", is_flag=True, help="Replace non-empty output directories.")
@click.option("--per-query", is_flag=True, help="Also write per_query.parquet (input of `fastir compare`).")
@click.option("--trec", "trec_dir", type=click.Path(), default=None,
              help="Also write TREC run + qrels files per cell into this directory.")
@click.option("--trec-depth", type=int, default=None,
              help="Candidates per query in TREC runs [default: the largest cutoff of --k / --metrics, else 100].")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="What to print: summary table, summary.json content, or pairs.csv content.")
@click.option("--block-mb", type=float, default=DEFAULT_BLOCK_MB, show_default=True,
              help="Memory budget of one float32 score block (MiB).")
@click.option("--relevance-threshold", "relevance_threshold", default="1", show_default=True,
              help="A judged candidate is relevant at grade >= N (trec_eval's relevance_level); nDCG's gains are "
                   "every grade >= 1.")
@click.option("--precision", type=click.Choice(list(PRECISION_CHOICES)), default=DEFAULT_PRECISION, show_default=True,
              help="Product precision: fp32 = ranks of float32 scores; exact|bf16|int8 = exact ranks from a "
                   "certified product (bf16/int8 faster where the CPU has BF16/VNNI; pairs left undecided "
                   "by the bound are recomputed exactly and counted in 'undecided').")
def score(run_dir, pairs, ks, metrics, out_dir, overwrite, per_query, trec_dir, trec_depth, fmt, block_mb,
          relevance_threshold, precision):
    """Score every language pair of RUN (a `fastir embed` run dir) exactly, over the full ranking.

    Writes pairs.csv, pairs.parquet, summary.json, heatmap.png (and per_query.parquet, TREC files)
    to --out, all or nothing. Ties count against the gold; AP equals sklearn's average_precision_score.
    """
    import json

    from fastir.errors import InputError
    from fastir.lock import claim_output
    from fastir.runs.rundir import check_output_dir, read_run
    from fastir.eval.score import default_out_dir, parse_threshold, score_run
    from fastir.eval.report import format_table, pairs_csv, summary_json, write_scores
    from fastir.eval.cells import parse_ks
    from fastir.eval.metrics import parse_metrics

    if ks is not None and metrics is not None:
        raise InputError(None, "--k", "give either --k or --metrics (write the cutoffs as recall@1,5,10)")
    ks = parse_ks(DEFAULT_KS if ks is None else ks)
    chosen = None if metrics is None else parse_metrics(metrics)
    threshold = parse_threshold(relevance_threshold)
    if trec_depth is not None and trec_dir is None:
        raise InputError(None, "--trec-depth", "needs --trec DIR")
    run = read_run(run_dir)
    out_dir = out_dir or default_out_dir(run_dir)
    check_output_dir(out_dir, overwrite=overwrite)
    if trec_dir is not None:
        check_output_dir(trec_dir, overwrite=overwrite)
        cutoffs = ks if chosen is None else [m.k for m in chosen if m.k is not None] or [max(DEFAULT_KS)]
        trec_depth = max(cutoffs) if trec_depth is None else trec_depth
    with claim_output(out_dir, trec_dir):
        result = score_run(run, pairs=pairs, ks=ks, per_query=per_query, block_mb=block_mb, trec_depth=trec_depth,
                           metrics=chosen, precision=precision, relevance_threshold=threshold)
        if result.precision and result.precision["note"]:
            click.echo(f"warning: {result.precision['note']}", err=True)
        write_scores(result, out_dir, overwrite=overwrite, trec_dir=trec_dir)
    if fmt == "json":
        click.echo(json.dumps(summary_json(result), indent=2))
    elif fmt == "csv":
        click.echo(pairs_csv(result), nl=False)
    else:
        click.echo(format_table(result))
        click.echo(f"\nwrote {out_dir}" + (f" and {trec_dir}" if trec_dir else ""))
