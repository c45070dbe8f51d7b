"""``fastir import``: build a run dir from embeddings computed elsewhere (docs/data.md)."""

from __future__ import annotations

import click
from fastir.cli import echo


@click.command("import")
@click.option("--queries", required=True, type=click.Path(),
              help="Query embeddings: Parquet (id, lang, embedding[, xling_id]) or an .npy matrix.")
@click.option("--candidates", required=True, type=click.Path(),
              help="Candidate embeddings: Parquet (id, lang, embedding) or an .npy matrix.")
@click.option("--qrels", required=True, type=click.Path(), help="TREC qrels file: qid 0 docid grade.")
@click.option("--out", required=True, type=click.Path(), help="Run dir to write.")
@click.option("--queries-ids", type=click.Path(), default=None,
              help="id/lang Parquet of an .npy --queries [default: QUERIES minus .npy plus .ids.parquet].")
@click.option("--candidates-ids", type=click.Path(), default=None,
              help="id/lang Parquet of an .npy --candidates [default: CANDIDATES minus .npy plus .ids.parquet].")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Element type of the stored embeddings.")
@click.option("--dataset", default=None, help="Dataset name recorded in run.json [default: the qrels file's name].")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out directory.")
def import_(queries, candidates, qrels, out, queries_ids, candidates_ids, dtype, dataset, overwrite):
    """Import query and candidate embeddings plus TREC qrels into a run dir that `fastir score` reads.

    Everything is validated as a run dir is (unique ids, known qrels ids, integer grades, NaN/inf,
    one dimension, languages) before anything is written; the run dir is written atomically.
    """
    from fastir.runs.importer import import_run

    meta = import_run(out, queries=queries, candidates=candidates, qrels=qrels, queries_ids=queries_ids,
                      candidates_ids=candidates_ids, dtype=dtype, dataset=dataset, overwrite=overwrite)
    echo(f"wrote {out}: {meta['num_queries']} queries, {meta['num_candidates']} candidates, "
               f"{meta['num_qrels']} qrels, "
               f"dim {meta['dim']}, {meta['dtype']}, normalized {str(meta['normalized']).lower()}")
