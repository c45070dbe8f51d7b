"""``fastir preference-run``: language preference of a ranked run (TREC, ranx JSON or Parquet) of any
system, with the queries' parallel groups."""

from __future__ import annotations

import click

from fastir.cli.preference import (CAND_GROUPS_OPTION, FORMAT_OPTION, K_OPTION, MLRS_K_OPTION, OVERWRITE_OPTION,
                                   PIVOT_OPTION, TARGET_OPTION, show)
from fastir.cli.score_run import DOC_LANGS_OPTION, QRELS_OPTION, QUERY_LANGS_OPTION


@click.command("preference-run")
@click.argument("run_file", metavar="RUN", type=click.Path())
@QRELS_OPTION
@QUERY_LANGS_OPTION
@DOC_LANGS_OPTION
@click.option("--query-groups", required=True,
              help="Parallel queries: a text file of lines 'query_id TAB group_id', or the rule prefix:SEP (the "
                   "id's text after the first SEP: prefix:: makes de:q17 and en:q17 one group).")
@PIVOT_OPTION
@K_OPTION
@TARGET_OPTION
@CAND_GROUPS_OPTION
@MLRS_K_OPTION
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Output directory [default: RUN.preference/ beside RUN].")
@OVERWRITE_OPTION
@FORMAT_OPTION
def preference_run(run_file, qrels, query_langs, doc_langs, query_groups, pivot, k, target, cand_groups, mlrs_k,
                   out_dir, overwrite, fmt):
    """Language preference of RUN, a ranked run of any system (BM25, SPLADE, fusion, a reranker), per query.

    Each query's list in trec_eval's order; a document a query did not retrieve ranks below every one
    it retrieved. Writes per_query.parquet and summary.json to --out, both or neither. Definitions:
    docs/score.md, "Language preference".
    """
    from pathlib import Path

    from fastir.core.outputs import claim_output
    from fastir.eval.preference import check_preference_outputs, write_preference
    from fastir.eval.preference_ranked import ranked_preference
    from fastir.runs.ranked import RULE_PREFIX

    out_dir = Path(out_dir) if out_dir is not None else Path(run_file).with_name(Path(run_file).name + ".preference")
    sources = [query_langs, doc_langs, query_groups, *([cand_groups] if cand_groups else [])]
    inputs = [run_file, qrels, *(s for s in sources if not s.startswith(RULE_PREFIX))]
    check_preference_outputs(out_dir, inputs, overwrite)
    with claim_output(out_dir):
        result = ranked_preference(run_file, qrels, query_langs, doc_langs, query_groups,
                                   pivot=None if pivot == "none" else pivot, k=k, target=target,
                                   cand_groups=cand_groups, mlrs_k=mlrs_k)
        write_preference(result, out_dir, inputs, overwrite)
    show(result, out_dir, fmt)
