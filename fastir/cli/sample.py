"""``fastir sample``: audit what a batch sampler puts into each batch."""

from __future__ import annotations

import click

from fastir.cli.options import config_options
from fastir.core.options import SAMPLE
from fastir.train.config import TrainConfig
from fastir.cli import echo


@click.command()
@click.argument("data", nargs=-1, required=True)
@config_options(TrainConfig, SAMPLE)  # the sampler's settings, as fastir train takes them
@click.option("--out", type=click.Path(), default=None, help="Write one row per pair: .jsonl or .parquet.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def sample(data, strategy, alpha, alpha_mode, batch_size, steps, seed, lang_weights, source_mode, out, overwrite, fmt):
    """Draw batches from parallel QA tables DATA... and report their composition.

    Prints batch-kind shares, same- vs cross-language pair shares and the language-pair
    histogram; with --out writes (step, batch_kind, xling_id, query_lang, passage_lang, source).
    """
    import json

    from fastir.sampling.audit import (check_composition_out, composition_summary, composition_table, format_summary,
                                     write_composition)
    from fastir.core.outputs import claim_output
    from fastir.sampling.sampler import BatchSampler
    from fastir.sampling.strategies import CROSS

    if out is not None:
        check_composition_out(out, overwrite, inputs=data)  # before sampling: fail fast, write nothing
    with claim_output(out):
        sampler = BatchSampler(
            list(data), strategy=strategy, batch_size=batch_size, seed=seed, alpha=alpha,
            alpha_mode=alpha_mode, lang_weights=lang_weights, source_mode=source_mode,
        )
        table = composition_table(sampler, sampler.steps_per_epoch if steps is None else steps)
        if out is not None:
            write_composition(table, out, overwrite=overwrite)
    summary = composition_summary(table)
    if fmt == "json":
        echo(json.dumps({"sampler": sampler.summary(), "composition": summary}, indent=2))
    else:
        s, rules = sampler.summary(), sampler.rules
        echo(f"{s['rows']} rows, {s['pairs']} xling_ids, languages {','.join(s['langs'])}; "
                   f"strategy {strategy}" + (f" alpha={alpha}" + (f" ({alpha_mode})" if alpha_mode != "random" else "")
                                       if rules.uses_alpha else "")
                   + f", batch size {batch_size}, seed {seed}")
        if s["single_language_pairs"] and CROSS in rules.kinds:
            echo(f"note: {s['single_language_pairs']} xling_ids exist in one language only; x-y batches never use them")
        echo(format_summary(summary))
        if out is not None:
            echo(f"wrote {table.num_rows} rows to {out}")

