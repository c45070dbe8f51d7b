"""fastir.encoding.hf (the ``hf`` backend) against independent references: sentence-transformers,
plain HF forward passes one text at a time, numpy (moved from tests/encoding/test_encoder.py).

Fixtures (tiny BERT, its sentence-transformers folder, MiniLM path) live in conftest.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from fastir.core.errors import InputError
from fastir.encoding.encoder import encode
from fastir.encoding.device import resolve_dtype
from fastir.encoding.hf import load_encoder, plan_batches, pool

TEXTS = [
    "w1 ?",
    "w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 .",
    "w30 w31 w32 .",
    "w40 , w41 , w42 , w43 , w44 , w45 w46 w47 w48 w49 .",
    "w5",
    "w7 w7 w7 w7 w7 w7 ?",
]


def _hf_one_by_one(path, texts, pooling, pairs=None, max_length=128):
    """Independent reference: one text per forward pass, no padding at all."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    out = []
    with torch.no_grad():
        for i, text in enumerate(texts):
            inputs = tok(text, pairs[i] if pairs else None, return_tensors="pt", truncation=True, max_length=max_length)
            res = model(**inputs)
            h = res.last_hidden_state[0].numpy()
            out.append({"cls": h[0], "mean": h.mean(axis=0), "pooler": res.pooler_output[0].numpy()}[pooling])
    return np.stack(out)


def test_pool_ignores_padding():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    garbage = h.copy()
    garbage[mask == 0] = 1e6  # padding holds huge values: none may leak in
    got = pool(torch.from_numpy(garbage), torch.from_numpy(mask), "mean").numpy()
    want = np.stack([h[i, : mask[i].sum()].mean(axis=0) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(pool(torch.from_numpy(h), torch.from_numpy(mask), "cls").numpy(), h[:, 0])
    half = pool(torch.from_numpy(h).half(), torch.from_numpy(mask), "mean")
    assert half.dtype == torch.float32


@pytest.mark.parametrize("budget", [1, 7, 40, 1000])
def test_plan_batches_respects_budget_and_covers_rows(budget):
    lengths = np.random.default_rng(1).integers(1, 60, size=200)
    batches = plan_batches(lengths, budget)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(200))
    assert (np.diff(lengths[rows]) <= 0).all()  # longest first
    for b in batches:
        assert len(b) == 1 or len(b) * lengths[b].max() <= budget


@pytest.mark.parametrize("pooling", ["cls", "mean", "pooler"])
def test_token_budget_batching_equals_one_by_one(embed_tiny_bert, pooling):
    enc = load_encoder(embed_tiny_bert, pooling=pooling, device="cpu", dtype="fp32")
    want = _hf_one_by_one(embed_tiny_bert, TEXTS, pooling)
    for budget in (24, 100, 10_000):  # several rows per batch, padded to very different widths
        got = encode(TEXTS, model=enc, normalize=False, batch_tokens=budget)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    one = np.stack([encode([t], model=enc, normalize=False)[0] for t in TEXTS])
    np.testing.assert_allclose(encode(TEXTS, model=enc, normalize=False, batch_tokens=64), one, rtol=1e-4, atol=1e-5)


def test_text_pairs_and_prefix(embed_tiny_bert):
    enc = load_encoder(embed_tiny_bert, pooling="mean", device="cpu", dtype="fp32")
    pairs = [t + " w59 w58" for t in reversed(TEXTS)]
    want = _hf_one_by_one(embed_tiny_bert, TEXTS, "mean", pairs=pairs)
    got = encode(TEXTS, model=enc, normalize=False, text_pairs=pairs, batch_tokens=50)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # token_type_ids matter: the pair must not equal the concatenated single text
    single = encode([a + " " + b for a, b in zip(TEXTS, pairs)], model=enc, normalize=False)
    assert not np.allclose(got, single, atol=1e-3)
    prefixed = encode(TEXTS, model=enc, normalize=False, prefix="w0 w0 ")
    np.testing.assert_allclose(prefixed, _hf_one_by_one(embed_tiny_bert, ["w0 w0 " + t for t in TEXTS], "mean"),
                               rtol=1e-4, atol=1e-5)


def test_normalize_and_truncation(embed_tiny_bert):
    enc = load_encoder(embed_tiny_bert, pooling="cls", device="cpu", max_length=5, dtype="fp32")
    assert enc.max_length == 5
    got = encode(TEXTS, model=enc, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    want = _hf_one_by_one(embed_tiny_bert, TEXTS, "cls", max_length=5)
    np.testing.assert_allclose(got, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_sentence_transformers_folder_defaults(embed_tiny_st, embed_tiny_bert):
    st = load_encoder(embed_tiny_st, device="cpu", dtype="fp32")
    assert (st.pooling, st.normalize_default, st.max_length) == ("mean", True, 40)
    plain = load_encoder(embed_tiny_bert, device="cpu", dtype="fp32")
    assert (plain.pooling, plain.normalize_default, plain.max_length) == ("cls", False, 128)
    assert plain.device.type == "cpu" and plain.dtype == torch.float32
    assert plain.attn_implementation == "sdpa"


def test_tiny_st_folder_matches_sentence_transformers(embed_tiny_st):
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(embed_tiny_st, device="cpu").encode(TEXTS, convert_to_numpy=True)
    got = encode(TEXTS, model=embed_tiny_st, device="cpu", dtype="fp32", batch_tokens=30)
    cos = (got * ref).sum(axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, cos


def test_minilm_matches_sentence_transformers(minilm_path):
    """Mean pooling + Normalize on the real MiniLM: cosine >= 0.9999 per row vs sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from fastir.data.lareqa import load_dataset

    ds = load_dataset("xquad-r", langs=["en", "de"])
    texts = ds.question_text[:30] + ds.candidate_text[:30] + ds.candidate_context[:4]  # contexts: > 256 tokens
    ref = SentenceTransformer(minilm_path, device="cpu").encode(texts, convert_to_numpy=True, batch_size=16)
    got = encode(texts, model=minilm_path, device="cpu", dtype="fp32")  # parity: auto may be bf16-mixed
    assert got.dtype == np.float32 and got.shape == ref.shape == (64, 384)
    cos = (got * ref).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_cuda_request_falls_back_to_cpu_with_one_warning(embed_tiny_bert, capsys):
    # the library warns through `warnings` (the CLI prints it as one line) and prints nothing itself
    from fastir.core.errors import FastirWarning

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the fallback path does not apply")
    with pytest.warns(FastirWarning, match="CUDA is not available") as caught:
        enc = load_encoder(embed_tiny_bert, device="cuda", dtype="auto")
    assert enc.device.type == "cpu" and enc.dtype == resolve_dtype("auto", torch.device("cpu"))
    assert len(caught) == 1 and capsys.readouterr().err == ""


def test_bad_models(embed_tiny_bert, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_encoder(tmp_path / "nope")
    bare = tmp_path / "bare"
    shutil.copytree(embed_tiny_bert, bare)
    for f in bare.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            f.unlink()
    with pytest.raises(InputError, match="tokenizer"):
        load_encoder(bare)
    with pytest.raises(InputError, match="above the model's limit of 128"):
        load_encoder(embed_tiny_bert, max_length=129)
    with pytest.raises(InputError, match="not a Hugging Face model"):
        load_encoder(tmp_path)
    with pytest.raises(InputError, match="--pooling"):
        load_encoder(embed_tiny_bert, pooling="max")


def test_unsupported_st_pooling_needs_explicit_pooling(embed_tiny_st, tmp_path):
    folder = tmp_path / "st-max"
    shutil.copytree(embed_tiny_st, folder)
    cfg = json.loads((folder / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="max_tokens"):
        load_encoder(folder)
    assert load_encoder(folder, pooling="cls").pooling == "cls"


def test_model_max_lengths_without_loading_weights(embed_tiny_bert, embed_tiny_st, tmp_path):
    """(own length, limit) as load_encoder resolves them: a plain folder's limit is its own length; a
    sentence-transformers folder's max_seq_length is its own length below the same limit."""
    from fastir.encoding.hf import check_max_length, model_max_lengths

    assert model_max_lengths(embed_tiny_bert) == (128, 128)
    assert load_encoder(embed_tiny_bert, device="cpu").max_length == 128
    assert model_max_lengths(embed_tiny_st) == (40, 128)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(embed_tiny_bert, no_weights)
    (no_weights / "model.safetensors").unlink()
    assert model_max_lengths(no_weights) == (128, 128)
    assert check_max_length(None, 40, 128) == 40 and check_max_length(128, 40, 128) == 128
    for bad, message in ((0, "--eval-max-length: must be positive, found 0"),
                         (129, "--eval-max-length: 129 is above the model's limit of 128 tokens")):
        with pytest.raises(InputError) as info:
            check_max_length(bad, 40, 128, "--eval-max-length")
        assert str(info.value) == message


def _without_tensors(src, dst, drop):
    """A copy of the model folder ``src`` whose checkpoint lacks the tensors for which ``drop(name)``."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(dst / "model.safetensors")
    dropped = {k: v for k, v in tensors.items() if not drop(k)}
    assert len(dropped) < len(tensors)
    save_file(dropped, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_weights_missing_from_the_checkpoint_are_never_used_silently(embed_tiny_bert, tmp_path, capsys):
    """transformers initialises missing weights at random and prints a many-line report: a pooler
    without weights is dropped (--pooling pooler refused, the other poolings unchanged, nothing
    printed); any other missing weight is one FastirWarning."""
    import warnings

    from fastir.core.errors import FastirWarning

    no_pooler = _without_tensors(embed_tiny_bert, tmp_path / "no-pooler", lambda k: "pooler." in k)
    with pytest.raises(InputError, match="no pooler layer"):
        load_encoder(no_pooler, pooling="pooler", device="cpu", dtype="fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = load_encoder(no_pooler, pooling="mean", device="cpu", dtype="fp32")
    full = load_encoder(embed_tiny_bert, pooling="mean", device="cpu", dtype="fp32")
    np.testing.assert_array_equal(encode(TEXTS, model=enc), encode(TEXTS, model=full))
    assert capsys.readouterr().err == ""

    holed = _without_tensors(embed_tiny_bert, tmp_path / "holed", lambda k: k.endswith("layer.0.output.dense.bias"))
    with pytest.warns(FastirWarning, match=r"weights: 1 tensor\(s\) missing from the checkpoint are random"):
        load_encoder(holed, pooling="mean", device="cpu", dtype="fp32")
