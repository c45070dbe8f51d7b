"""``fastir data``: inspect and export the LAReQA datasets."""

from __future__ import annotations

import json

import click

from fastir.cli.options import split_list


@click.group()
def data():
    """Inspect and export LAReQA datasets (xquad-r, mlqa-r, or a directory of {lang}.json files)."""


@data.command()
@click.argument("dataset")
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def show(dataset, langs, fmt):
    """Print the per-language table (questions, candidates, paragraphs) and totals."""
    from fastir.data.lareqa import dataset_summary, format_summary, load_dataset

    ds = load_dataset(dataset, langs=split_list(langs))
    summary = dataset_summary(ds)
    click.echo(json.dumps(summary, indent=2) if fmt == "json" else format_summary(summary))


@data.command()
@click.argument("dataset")
@click.argument("out", type=click.Path())
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT directory.")
def export(dataset, out, langs, overwrite):
    """Write questions.arrow, candidates.arrow and qrels.arrow (Arrow IPC) into OUT."""
    from fastir.data.lareqa import export_dataset, load_dataset
    from fastir.lock import claim_output

    ds = load_dataset(dataset, langs=split_list(langs))
    with claim_output(out):
        export_dataset(ds, out, overwrite=overwrite)
    click.echo(f"wrote {ds.num_questions} questions, {ds.num_candidates} candidates, "
               f"{len(ds.qrel_query_id)} qrels to {out}")


@data.command("to-train")
@click.argument("dataset")
@click.argument("out", type=click.Path())
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT file.")
def to_train(dataset, out, langs, overwrite):
    """Convert a LAReQA dataset into a parallel QA training table (question + answer sentence).

    OUT ends in .parquet, .arrow or .jsonl; one row per (xling_id, lang).
    """
    from fastir.data.lareqa import load_dataset
    from fastir.train.writer import write_lareqa_train_table
    from fastir.lock import claim_output

    ds = load_dataset(dataset, langs=split_list(langs))
    with claim_output(out):
        rows = write_lareqa_train_table(ds, out, overwrite=overwrite)
    click.echo(f"wrote {rows} rows to {out}")
