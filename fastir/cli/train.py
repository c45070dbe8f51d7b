"""``fastir train``: contrastive fine-tuning of a dual encoder (see fastir/train/loop.py and docs/train.md)."""

from __future__ import annotations

import click

from fastir.cli.options import split_list
from fastir.core.errors import InputError
from fastir.sampling.choices import ALPHA_MODES, PRECISIONS, SOURCE_MODES, STRATEGIES


@click.command()
@click.option("--data", "data", multiple=True, required=True, type=click.Path(),
              help="Train table (.parquet, .arrow, .jsonl); repeat for several sources.")
@click.option("--model", required=True, help="Hub id or local folder to start from.")
@click.option("--out", required=True, type=click.Path(), help="Output dir: checkpoint-NNNNNN/, final/, train.jsonl.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="hybrid", show_default=True)
@click.option("--alpha", type=float, default=0.5, show_default=True, help="Hybrid: probability of a mono batch.")
@click.option("--alpha-mode", type=click.Choice(ALPHA_MODES), default="random", show_default=True,
              help="random: each step is mono with probability alpha (seeded); exact: mono and cross interleaved so the mono share is within one batch of alpha at every step.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Global batch size (all ranks).")
@click.option("--steps", type=int, default=1000, show_default=True)
@click.option("--lr", type=float, default=3e-5, show_default=True)
@click.option("--temperature", type=float, default=0.05, show_default=True, help="Cosine similarity is divided by it.")
@click.option("--warmup-steps", type=int, default=None, help="Linear warm-up steps [default: 10% of --steps].")
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--max-grad-norm", type=float, default=1.0, show_default=True, help="0 disables clipping.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--pooling", type=click.Choice(["cls", "mean", "pooler"]), default=None,
              help="Default: the model folder's (sentence-transformers) pooling, else cls — as fastir embed.")
@click.option("--max-length", type=int, default=None, help="Truncate texts to this many tokens [default: model limit].")
@click.option("--query-prefix", default="", help="Prepended to every query.")
@click.option("--passage-prefix", default="", help="Prepended to every passage and hard negative.")
@click.option("--lang-weights", default=None, help="Language weights, e.g. en=2,de=1 (default uniform).")
@click.option("--source-mode", type=click.Choice(SOURCE_MODES), default="proportional",
              show_default=True)
@click.option("--hard-negatives/--no-hard-negatives", default=True, show_default=True,
              help="Use the table's negative column when present.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="auto: bf16 (or fp16 + GradScaler) autocast on CUDA, fp32 on the CPU.")
@click.option("--save-steps", type=int, default=0, show_default=True, help="Checkpoint every N steps (0: final only).")
@click.option("--keep-checkpoints", type=int, default=0, show_default=True, help="Keep the newest N (0: all).")
@click.option("--eval-data", "--eval-run", "eval_data", default=None,
              help="Held-out data for a quick pooled mAP: xquad-r, mlqa-r, a LAReQA dir, or a train table.")
@click.option("--eval-every", type=int, default=0, show_default=True, help="Evaluate every N steps (and at the end).")
@click.option("--eval-langs", default=None, help="Comma-separated languages of the held-out data.")
@click.option("--eval-max-queries", type=int, default=0, show_default=True, help="Random subset of queries (0: all).")
@click.option("--eval-max-length", type=int, default=None,
              help="Truncate held-out texts to this many tokens [default: the base model's own length, not --max-length].")
@click.option("--allow-overlap", is_flag=True,
              help="Train even if a training row shares an xling_id, question or passage with --eval-data.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a previous run in --out.")
@click.option("--log-batches", is_flag=True, help="Write batches.rankR.jsonl (xling_ids per step) for auditing.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(**kw):
    """Fine-tune a shared-weight dual encoder with InfoNCE (in-batch + hard negatives).

    Several GPUs: torchrun --standalone --nproc-per-node N --no-python fastir train ...
    (--batch-size is the global batch; negatives are gathered across ranks).
    """
    from fastir.train.loop import TrainConfig, train as run_train

    kw["data"] = list(kw["data"])
    kw["lang_weights"] = _parse_weights(kw["lang_weights"])
    kw["eval_langs"] = split_list(kw["eval_langs"]) if kw["eval_langs"] else None
    result = run_train(TrainConfig(**kw))
    if result.rank != 0:
        return  # under torchrun, rank 0 reports
    msg = f"trained {result.steps} steps (from step {result.start_step}); final model: {result.final}"
    if result.last_loss is not None:
        msg += f"; last loss {result.last_loss:.4f}"
    if result.eval:
        msg += f"; pooled mAP {result.eval['eval_pooled_map']:.4f}"
    click.echo(msg)


def _parse_weights(value: str | None) -> dict[str, float] | None:
    if not value:
        return None
    out = {}
    for part in value.split(","):
        lang, sep, w = part.partition("=")
        try:
            out[lang.strip()] = float(w)
        except ValueError:
            raise InputError(None, "--lang-weights", f"expected LANG=WEIGHT pairs, found {part!r}") from None
        if not sep or not lang.strip():
            raise InputError(None, "--lang-weights", f"expected LANG=WEIGHT pairs, found {part!r}")
    return out
