"""``fastir preference``: language preference of a run dir — mean rank correlation of parallel queries,
query-language preference rate, pivot share of the top k, MLRS on a parallel pool."""

from __future__ import annotations

import click

from fastir.cli import echo
from fastir.cli.options import Float, Int
from fastir.eval.cells import DEFAULT_BLOCK_MB


PIVOT_OPTION = click.option("--pivot", default="en", show_default=True,
                            help="Language whose share of the top --k is reported; 'none' to skip.")
K_OPTION = click.option("--k", "k", type=Int(), default=10, show_default=True, help="Cutoff of the pivot share.")
TARGET_OPTION = click.option("--target", default=None, help="MLRS toward this candidate language (needs --cand-groups).")
CAND_GROUPS_OPTION = click.option(
    "--cand-groups", type=click.Path(), default=None,
    help="Text file of lines 'candidate_id TAB group_id' (document ids for a ranked run): the candidates' "
         "parallel groups (for MLRS).")
MLRS_K_OPTION = click.option("--mlrs-k", type=Int(), default=10, show_default=True, help="Top K re-ranked by MLRS.")
OVERWRITE_OPTION = click.option("--overwrite", is_flag=True, help="Replace a preference output directory.")
FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="What to print: a table per query language, or summary.json's content.")


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path())
@PIVOT_OPTION
@K_OPTION
@TARGET_OPTION
@CAND_GROUPS_OPTION
@MLRS_K_OPTION
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Output directory [default: RUN/preference/].")
@OVERWRITE_OPTION
@FORMAT_OPTION
@click.option("--block-mb", type=Float(), default=DEFAULT_BLOCK_MB, show_default=True,
              help="Memory budget of one float32 score block of whole parallel groups (MiB).")
def preference(run_dir, pivot, k, target, cand_groups, mlrs_k, out_dir, overwrite, fmt, block_mb):
    """Language preference of RUN (a `fastir embed` run dir with parallel queries), per query.

    Writes per_query.parquet and summary.json to --out, both or neither. Definitions: docs/score.md,
    "Language preference".
    """
    from pathlib import Path

    from fastir.core.errors import InputError
    from fastir.core.outputs import claim_output
    from fastir.eval.preference import (
        check_preference_outputs,
        language_preference,
        read_cand_groups,
        write_preference,
    )
    from fastir.runs.rundir import read_run
    from fastir.runs.schema import RUN_FILES

    if (target is None) != (cand_groups is None):
        raise InputError(None, "--target" if target is None else "--cand-groups",
                         "MLRS needs both --target and --cand-groups")
    if not (block_mb > 0):
        raise InputError(None, "--block-mb", f"must be positive, found {block_mb}")
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "preference"
    inputs = [Path(run_dir) / name for name in RUN_FILES] + ([cand_groups] if cand_groups else [])
    check_preference_outputs(out_dir, inputs, overwrite)
    run = read_run(run_dir)
    groups = read_cand_groups(cand_groups, run) if cand_groups else None
    with claim_output(out_dir):
        result = language_preference(run, pivot=None if pivot == "none" else pivot, k=k, target=target,
                                     cand_groups=groups, mlrs_k=mlrs_k, block_mb=block_mb)
        write_preference(result, out_dir, inputs, overwrite)
    show(result, out_dir, fmt)


def show(result, out_dir, fmt: str) -> None:
    """Print summary.json's content (``json``) or the table per query language, then where it was written."""
    import json

    summary = result.summary()
    if fmt == "json":
        echo(json.dumps(summary, indent=2))
        return
    echo(_table(summary, list(dict.fromkeys(result.query_langs))))
    echo(f"\nwrote {out_dir}")


def _table(summary: dict, langs: list[str]) -> str:
    """One row per query language (and all), one column per measure computed."""
    from fastir.eval.preference import COLUMNS

    names = [n for n in COLUMNS if n in summary]
    lines = [f"{'query':<8}" + "".join(f"{n:>12}" for n in names)]
    for lang in [*langs, "all"]:
        cells = [summary[n].get(lang) for n in names]
        lines.append(f"{lang:<8}" + "".join(f"{'-':>12}" if v is None else f"{v:>12.4f}" for v in cells))
    return "\n".join(lines)
