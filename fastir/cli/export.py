"""``fastir export``: a fastir score in another tool's format (docs/interop.md)."""

from __future__ import annotations

import click

from fastir.cli import echo


@click.group()
def export():
    """Write a fastir score in another tool's result format."""


@export.command()
@click.argument("scores", type=click.Path())
@click.option("--task", required=True, help="The MTEB retrieval task the cells belong to (e.g. XQuADRetrieval).")
@click.option("--out", type=click.Path(), default=None, help="TaskResult JSON file to write [default: ./TASK.json].")
@click.option("--split", default=None, help="The task's split the cells fill [default: its first eval split].")
@click.option("--main-score", default=None,
              help="fastir metric written as main_score [default: the task's main score, e.g. ndcg_at_10 = ndcg@10].")
@click.option("--overwrite", is_flag=True, help="Replace an existing result file of the same task.")
def mteb(scores, task, out, split, main_score, overwrite):
    """Write SCORES (a `fastir score` output dir, or a run dir holding scores/) as MTEB's TaskResult JSON.

    One scores entry per cell (hf_subset de-en, de-de, de-all), fastir's full-ranking metrics under
    their own names (map, mrr: never MTEB's truncated map_at_1000); pip install 'fastir[mteb]'.
    """
    from fastir.interop.mteb_results import export_mteb

    path = export_mteb(scores, task, out=out, split=split, main_score=main_score, overwrite=overwrite)
    echo(f"wrote {path}")
