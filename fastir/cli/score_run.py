"""``fastir score-run``: the language cells of a ranked run (TREC, ranx JSON or Parquet) of any system."""

from __future__ import annotations

import click

from fastir.cli import echo
from fastir.cli.score import KS_OPTION, PAIRS_OPTION, relevance_threshold_option
from fastir.eval.cells import DEFAULT_KS
from fastir.eval.metrics import DEFAULT_TIES, TIE_MODES, known_names


# The ranked-run inputs, shared with `fastir preference-run`.
QRELS_OPTION = click.option("--qrels", required=True, type=click.Path(), help="TREC qrels (qid 0 docid grade), graded.")
QUERY_LANGS_OPTION = click.option(
    "--query-langs", required=True, help="Languages of the queries: a .tsv (id<TAB>lang) or .parquet (id, lang) map, "
                                         "or the rule prefix:SEP (the text before the first SEP, e.g. prefix::).")
DOC_LANGS_OPTION = click.option("--doc-langs", required=True, help="Languages of the documents, as --query-langs.")


@click.command("score-run")
@click.argument("run_file", metavar="RUN", type=click.Path())
@QRELS_OPTION
@QUERY_LANGS_OPTION
@DOC_LANGS_OPTION
@PAIRS_OPTION
@KS_OPTION
@click.option("--metrics", default=None,
              help=f"Comma-separated metrics instead of map,mrr,recall@{{--k}}, from {known_names()} (the "
                   "language-bias suite reads each query's list in trec_eval's order, score desc then doc id desc, "
                   "in every --ties mode but expected). Rank distance is always reported.")
@click.option("--ties", type=click.Choice(list(TIE_MODES)), default=DEFAULT_TIES, show_default=True,
              help="Tied scores: pessimistic (count against the gold), optimistic (golds first), expected (mean "
                   "over every order, closed form) or trec_eval (score desc, then doc id desc, as trec_eval).")
@relevance_threshold_option("document")
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Output directory [default: RUN.scores/].")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty score directory.")
@click.option("--per-query", is_flag=True, help="Also write per_query.parquet (input of `fastir compare`).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="What to print: summary table, summary.json content, or pairs.csv content.")
def score_run(run_file, qrels, query_langs, doc_langs, pairs, ks, metrics, ties, relevance_threshold, out_dir,
              overwrite, per_query, fmt):
    """Score every language cell of RUN, a ranked run of any system (BM25, SPLADE, fusion, a reranker).

    X->all is the run as retrieved; X->Y the run restricted to documents in Y, in run order. Metrics
    are exact to the run's depth, as trec_eval's; summary.json gives each cell's depth and the relevant
    documents beyond it. Writes pairs.csv, pairs.parquet, summary.json, heatmap.png (and
    per_query.parquet) to --out, all or nothing.
    """
    from fastir.cli import owns_process
    from fastir.eval.preload import preload_ranked_kernels

    loading = preload_ranked_kernels(ties, own_process=owns_process(), metrics=metrics)  # overlaps Numba's start with reading
    try:
        _score_run(run_file, qrels, query_langs, doc_langs, pairs, ks, metrics, ties, relevance_threshold, out_dir,
                   overwrite, per_query, fmt)
    finally:
        loading.finish()


def _score_run(run_file, qrels, query_langs, doc_langs, pairs, ks, metrics, ties, relevance_threshold, out_dir,
               overwrite, per_query, fmt):
    import json

    from fastir.core.errors import InputError
    from fastir.core.outputs import check_output_dir, claim_output
    from fastir.eval.report import format_table, pairs_csv, summary_json, write_scores
    from fastir.eval.result import SCORE_FILES
    from fastir.eval.score_ranked import default_out_dir, score_ranked
    from fastir.runs.ranked import RULE_PREFIX

    if ks is not None and metrics is not None:
        raise InputError(None, "--k", "give either --k or --metrics (write the cutoffs as recall@1,5,10)")
    out_dir = out_dir or default_out_dir(run_file)
    maps = [spec for spec in (query_langs, doc_langs) if not spec.startswith(RULE_PREFIX)]
    check_output_dir(out_dir, overwrite=overwrite, inputs=[run_file, qrels, *maps], written=SCORE_FILES)
    with claim_output(out_dir):
        result = score_ranked(run_file, qrels, query_langs, doc_langs, pairs=pairs, ks=ks or DEFAULT_KS,
                              metrics=metrics, ties=ties, per_query=per_query, relevance_threshold=relevance_threshold)
        write_scores(result, out_dir, overwrite=overwrite)
    if fmt == "json":
        echo(json.dumps(summary_json(result), indent=2))
    elif fmt == "csv":
        echo(pairs_csv(result), nl=False)
    else:
        echo(format_table(result))
        echo(f"\nwrote {out_dir}")
