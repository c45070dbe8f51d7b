"""``fastir data``: inspect and export datasets (any entry of :mod:`fastir.data.registry`)."""

from __future__ import annotations

import json

import click

from fastir.cli.options import Int, split_list
from fastir.data.registry import choices_text
from fastir.cli import echo


@click.group(help=f"Inspect and export datasets: {choices_text()}.")
def data():
    pass


@data.command()
@click.argument("dataset")
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def show(dataset, langs, fmt):
    """Print the per-language table (queries, candidates, ...) and totals."""
    from fastir.data.registry import open_dataset

    ds = open_dataset(dataset, langs=split_list(langs))
    echo(json.dumps(ds.summary(), indent=2) if fmt == "json" else ds.describe())


@data.command()
@click.argument("dataset")
@click.argument("out", type=click.Path())
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT directory.")
def export(dataset, out, langs, overwrite):
    """Write questions.arrow, candidates.arrow and qrels.arrow (Arrow IPC) into OUT."""
    from fastir.data.dataset import export_dataset
    from fastir.data.registry import open_dataset
    from fastir.core.outputs import claim_output

    ds = open_dataset(dataset, langs=split_list(langs))
    with claim_output(out):
        rows = export_dataset(ds, out, overwrite=overwrite, inputs=[dataset])
    echo(f"wrote {rows['queries']} questions, {rows['candidates']} candidates, {rows['qrels']} qrels to {out}")


@data.command("to-train")
@click.argument("dataset")
@click.argument("out", type=click.Path())
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT file.")
def to_train(dataset, out, langs, overwrite):
    """Convert a LAReQA dataset into a parallel QA training table (question + answer sentence).

    OUT ends in .parquet, .arrow or .jsonl; one row per (xling_id, lang).
    """
    from fastir.data.lareqa import LareqaDataset
    from fastir.data.registry import open_dataset
    from fastir.core.errors import InputError
    from fastir.data.train_table_writer import write_lareqa_train_table
    from fastir.core.outputs import claim_output

    ds = open_dataset(dataset, langs=split_list(langs))
    if not isinstance(ds, LareqaDataset):
        raise InputError(dataset, "dataset", "to-train needs a LAReQA dataset (its questions' answer sentences)")
    with claim_output(out):
        rows = write_lareqa_train_table(ds, out, overwrite=overwrite, inputs=[dataset])
    echo(f"wrote {rows} rows to {out}")


@data.command()
@click.argument("train", type=click.Path())
@click.argument("evals", metavar="EVAL...", nargs=-1, required=True)
@click.option("--examples", type=Int(min=0), default=10, show_default=True,
              help="Matches listed per evaluation dataset (the first by row).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def overlap(train, evals, examples, fmt):
    """Training rows of TRAIN (a train table) that share a parallel-group id (xling_id), a question
    text or a passage text with each evaluation dataset EVAL (xquad-r, mlqa-r, a LAReQA dir or a
    train table). Texts are compared NFKC-normalised, case-folded, whitespace collapsed."""
    from fastir.data.overlap import find_overlap, format_reports

    reports = find_overlap([train], list(evals), examples=examples)
    if fmt == "json":
        echo(json.dumps({"train": [train], "datasets": [r.to_json() for r in reports]}, indent=2))
    else:
        echo(format_reports(reports))
