"""``fastir compare``: runs side by side, paired significance tests and bootstrap confidence intervals."""

from __future__ import annotations

import click

from fastir.cli.options import Float, Int, split_list
from fastir.compare.render import DIGITS
from fastir.eval.metrics import known_names
from fastir.cli import echo


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--baseline", default=None, help="Name of the baseline system (default: the first).")
@click.option("--baselines", default=None,
              help="Comma-separated baseline systems: every system is tested against each (default: --baseline; "
                   "for an experiment dir, the experiment's own).")
@click.option("--dataset", default=None,
              help="With an experiment dir: which of its evaluation datasets (default: its only one).")
@click.option("--test", "test", type=click.Choice(["randomization", "bootstrap", "t", "two-level"]), default=None,
              help="Paired test of each system against each baseline. Default: randomization with one seed per "
                   "system; two-level (seed + query variance, the only one allowed) when a system has several seeds.")
@click.option("--samples", type=Int(min=1), default=10000, show_default=True,
              help="Randomization / bootstrap resamples.")
@click.option("--seed", type=Int(min=0, max=2**64 - 1), default=0, show_default=True,
              help="Seed of the resampling streams (results do not depend on the thread count).")
@click.option("--metrics", default="map,recall@1,recall@10", show_default=True,
              help=f"Comma-separated, from {known_names()} (recall@1,10: a bare number continues the family "
                   "before it), or `all`: every metric the runs hold. Rank distance is always reported.")
@click.option("--names", default=None, help="Comma-separated display names, one per run (default: dir names).")
@click.option("--alpha", type=Float(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Family-wise significance level (Holm).")
@click.option("--confidence", type=Float(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Bootstrap confidence level.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "latex", "json"]), default="table",
              show_default=True, help="What to print on the terminal.")
@click.option("--digits", type=Int(1, 8), default=DIGITS, show_default=True,
              help="Decimal places of 0-1 metrics; rank distance, in ranks, gets two fewer (at least one).")
@click.option("--out", type=click.Path(), default=None,
              help="Also write compare.{txt,md,tex,json,png} into this directory (atomically).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out directory.")
def compare(runs, baseline, baselines, dataset, test, samples, seed, metrics, names, alpha, confidence, fmt, digits, out, overwrite):
    """Compare RUNS (run dirs or scores dirs with per_query.parquet from `fastir score --per-query`, or
    a `fastir experiment` output dir: its runs, named strategy@seed and base).

    Runs named system@seed are seeds of one system (mean, seed sd, intervals and tests over seeds and
    queries). Prints the paper-style summary (Mo./Cr./Mul. per metric, rank distance) with CIs and
    Holm-corrected significance markers against each baseline, then the per-language tables.
    """
    from fastir.compare.comparison import compare as run_compare
    from fastir.compare.experiment import expand_inputs
    from fastir.core.errors import InputError
    from fastir.compare.inputs import find_per_query
    from fastir.compare.report import OUT_FILES, PLOT_FILE, render, write_outputs
    from fastir.core.outputs import check_output_dir, claim_output

    paths, exp_names, exp_baselines = expand_inputs(list(runs), dataset)
    if out is not None:  # fail before the work, not after
        check_output_dir(out, overwrite=overwrite, inputs=[find_per_query(p) for p in paths],
                         written=[*OUT_FILES.values(), PLOT_FILE])
    asked = split_list(baselines)
    if asked == []:
        raise InputError(None, "--baselines", "no baseline named")
    if baseline is None and not asked and exp_baselines:
        asked = exp_baselines
    with claim_output(out):
        result = run_compare(paths, baseline=baseline, baselines=asked, test=test, samples=samples, seed=seed,
                             metrics=split_list(metrics), names=split_list(names) or exp_names, alpha=alpha,
                             confidence=confidence)
        if out is not None:
            write_outputs(result, out, overwrite=overwrite, digits=digits)
    echo(render(result, fmt, digits), nl=False)
    if out is not None:
        echo(f"wrote compare.txt, compare.md, compare.tex, compare.json, compare.png to {out}", err=True)
