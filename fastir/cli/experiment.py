"""``fastir experiment``: train strategies from several seeds, embed, score, compare, write the report."""

from __future__ import annotations

import click

from fastir.cli.options import Int, config_options, split_list
from fastir.core.options import EXPERIMENT
from fastir.data.registry import choices_text
from fastir.sampling.choices import STRATEGIES
from fastir.train.config import TrainConfig
from fastir.cli import echo


@click.command()
@click.option("--data", "data", multiple=True, required=True, type=click.Path(),
              help="Train table (.parquet, .arrow, .jsonl); repeat for several sources.")
@click.option("--model", required=True, help="Hub id or local folder every strategy starts from.")
@click.option("--out", required=True, type=click.Path(), help="Experiment dir (re-running resumes).")
@click.option("--strategies", default="x-x-mono,x-y,hybrid", show_default=True,
              help=f"Comma-separated, from {', '.join(STRATEGIES)}.")
@click.option("--eval", "eval_datasets", default="xquad-r", show_default=True,
              help=f"Comma-separated evaluation datasets: {choices_text()}.")
@click.option("--eval-langs", default=None, help="Comma-separated languages of the evaluation datasets.")
@click.option("--seeds", default=None,
              help="Comma-separated training seeds; every strategy is trained from each [default: --seed].")
@click.option("--baselines", default=None,
              help="Comma-separated strategies (or base, with --include-base) the others are tested against "
                   "[default: the first strategy].")
@click.option("--include-base", is_flag=True, help="Also embed and score the untrained model (row 'base').")
@click.option("--candidates", type=click.Choice(["sentence", "sentence+context"]), default="sentence",
              show_default=True, help="How fastir embed encodes candidates.")
@click.option("--store", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True,
              help="dtype of the stored embeddings (fastir embed --store).")
@config_options(TrainConfig, EXPERIMENT)  # every training option: each run gets it
@click.option("--eval-max-length", type=Int(), default=None,
              help="Truncate evaluation texts to this many tokens [default: the base model's own length, not --max-length].")
@click.option("--eval-every", type=Int(), default=0, show_default=True,
              help="Learning curves: held-out pooled mAP every N training steps (0: loss only).")
@click.option("--heldout", default=None,
              help="Held-out data of the curves: a dataset or train table [default: the first --eval dataset].")
@click.option("--heldout-max-queries", type=Int(), default=0, show_default=True,
              help="Random subset of held-out queries, seeded by the training seed (0: all).")
@click.option("--metrics", default=None,
              help="More registry metrics to score, compare and report, e.g. ndcg@10,same_lang@10,lang_jsd@10.")
@click.option("--samples", type=Int(), default=10000, show_default=True,
              help="Resamples of the comparison's bootstrap intervals and tests.")
@click.option("--allow-overlap", is_flag=True,
              help="Run even if a training row shares an xling_id, question or passage with an --eval dataset.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def experiment(data, model, out, strategies, eval_datasets, eval_langs, seeds, baselines, include_base, candidates,
               store, eval_max_length, eval_every, heldout, heldout_max_queries, metrics, samples, allow_overlap,
               progress, **train):
    """Train each strategy with the same settings from each seed, then embed, score and compare them.

    Writes OUT/results.json, OUT/report.md (Tables 1-2 with intervals and significance markers,
    per-language tables) and OUT/figures/, and prints the report's summary tables.
    """
    from fastir.experiment.driver import ExperimentConfig, parse_seeds, run_experiment
    from fastir.experiment.report import format_summary

    if train["seed"] is None:
        del train["seed"]
    results = run_experiment(ExperimentConfig(
        data=list(data), model=model, out=out, strategies=split_list(strategies) or [], seeds=parse_seeds(seeds),
        baselines=split_list(baselines), eval_datasets=split_list(eval_datasets) or [],
        eval_langs=split_list(eval_langs), include_base=include_base, candidates=candidates, store=store,
        eval_max_length=eval_max_length, eval_every=eval_every, heldout=heldout,
        heldout_max_queries=heldout_max_queries, metrics=split_list(metrics) or [], samples=samples, allow_overlap=allow_overlap, train=train,
        progress=progress))
    echo(format_summary(results))
