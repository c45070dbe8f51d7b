"""fastir.encoding.hf_folder: what a model folder declares (sentence-transformers modules, pooling,
Normalize, max_seq_length), its malformed files, and hub ids versus local paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastir.core.errors import InputError
from fastir.encoding.hf_folder import SentenceTransformersConfig, read_sentence_transformers_config, resolve_model_dir

TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"


def _folder(root: Path, modules, pooling: dict | None = None, *, sbert: dict | None = None,
            sbert_in: str = "", pooling_dir: str = "1_Pooling") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    if pooling is not None:
        (root / pooling_dir).mkdir(parents=True, exist_ok=True)
        (root / pooling_dir / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    if sbert is not None:
        (root / sbert_in).mkdir(parents=True, exist_ok=True)
        (root / sbert_in / "sentence_bert_config.json").write_text(json.dumps(sbert), encoding="utf-8")
    return root


def _modules(*kinds, transformer_path="", pooling_path="1_Pooling"):
    paths = {TRANSFORMER: transformer_path, POOLING: pooling_path, NORMALIZE: "2_Normalize"}
    return [{"idx": i, "name": str(i), "path": paths[k], "type": k} for i, k in enumerate(kinds)]


def _modes(**on) -> dict:
    modes = {f"pooling_mode_{m}": False for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")}
    return {"word_embedding_dimension": 32, **modes, **{f"pooling_mode_{k}": v for k, v in on.items()}}


def test_a_plain_hf_folder_declares_nothing(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert read_sentence_transformers_config(tmp_path) == SentenceTransformersConfig()


def test_sentence_transformers_folder(tmp_path):
    root = _folder(tmp_path / "st", _modules(TRANSFORMER, POOLING, NORMALIZE), _modes(mean_tokens=True),
                   sbert={"max_seq_length": 40, "do_lower_case": False})
    st = read_sentence_transformers_config(root)
    assert (st.transformer_dir, st.pooling, st.pooling_unsupported) == (root, "mean", None)
    assert (st.pooling_file, st.normalize, st.max_seq_length) == (root / "1_Pooling" / "config.json", True, 40)


def test_transformer_in_a_subfolder_takes_its_own_max_seq_length_first(tmp_path):
    modules = _modules(TRANSFORMER, POOLING, transformer_path="0_Transformer")
    root = _folder(tmp_path / "st", modules, _modes(cls_token=True), sbert={"max_seq_length": 128},
                   sbert_in="0_Transformer")
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}))
    st = read_sentence_transformers_config(root)
    assert (st.transformer_dir, st.pooling, st.normalize, st.max_seq_length) == (root / "0_Transformer", "cls",
                                                                                  False, 128)
    (root / "0_Transformer" / "sentence_bert_config.json").unlink()
    assert read_sentence_transformers_config(root).max_seq_length == 512  # the root's, when the subfolder has none


@pytest.mark.parametrize("modes, unsupported", [
    (_modes(max_tokens=True), "max_tokens"),
    (_modes(mean_sqrt_len_tokens=True), "mean_sqrt_len_tokens"),
    (_modes(cls_token=True, mean_tokens=True), "cls_token+mean_tokens"),
    (_modes(), "none"),
])
def test_pooling_fastir_cannot_run_is_named(tmp_path, modes, unsupported):
    st = read_sentence_transformers_config(_folder(tmp_path / "st", _modules(TRANSFORMER, POOLING), modes))
    assert (st.pooling, st.pooling_unsupported) == (None, unsupported)


def test_missing_pooling_config_and_odd_max_seq_length(tmp_path):
    root = _folder(tmp_path / "st", _modules(TRANSFORMER, POOLING), None, sbert={"max_seq_length": "long"})
    st = read_sentence_transformers_config(root)
    assert (st.pooling, st.pooling_unsupported, st.max_seq_length) == (None, None, None)
    (root / "modules.json").write_text(json.dumps({"not": "a list"}))
    assert read_sentence_transformers_config(root).transformer_dir is None


@pytest.mark.parametrize("broken", ["modules.json", "1_Pooling/config.json", "sentence_bert_config.json"])
def test_malformed_json_is_located_by_file_and_line(tmp_path, broken):
    root = _folder(tmp_path / "st", _modules(TRANSFORMER, POOLING), _modes(mean_tokens=True),
                   sbert={"max_seq_length": 40})
    (root / broken).write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(InputError) as info:
        read_sentence_transformers_config(root)
    assert (info.value.path, info.value.field) == (str(root / broken), "json")
    assert "malformed JSON at line 3" in str(info.value)


@pytest.mark.parametrize("hub_id", ["bert-base-uncased", "sentence-transformers/all-MiniLM-L6-v2"])
def test_hub_ids_pass_through(tmp_path, monkeypatch, hub_id):
    monkeypatch.chdir(tmp_path)  # nothing of that name here
    assert resolve_model_dir(hub_id) == (hub_id, None)


def test_local_model_folders(tmp_path, monkeypatch):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    st = _folder(tmp_path / "st", _modules(TRANSFORMER))
    assert resolve_model_dir(str(hf)) == (str(hf), hf)
    assert resolve_model_dir(str(st)) == (str(st), st)  # modules.json alone is enough
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_model_dir("~/hf") == (str(hf), hf)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_dir("hf") == ("hf", Path("hf"))  # an existing relative folder wins over a hub id


@pytest.mark.parametrize("make, message", [
    (lambda root: str(root / "missing"), "model directory does not exist"),
    (lambda root: "./missing", "model directory does not exist"),
    (lambda root: "a/b/c", "model directory does not exist"),  # more than org/name: a path
    (lambda root: (root / "file.bin").write_text("x") and str(root / "file.bin"), "model path is not a directory"),
    (lambda root: str(root), "config.json: missing: not a Hugging Face model directory"),
])
def test_bad_local_paths(tmp_path, monkeypatch, make, message):
    monkeypatch.chdir(tmp_path)
    model = make(tmp_path)
    with pytest.raises(InputError) as info:
        resolve_model_dir(model)
    assert str(info.value) == f"{model}: {message}"


@pytest.mark.parametrize("mode, pooling, unsupported", [("mean", "mean", None), ("cls", "cls", None),
                                                        ("max", None, "max"), ("lasttoken", None, "lasttoken")])
def test_sentence_transformers_5_names_its_one_mode(tmp_path, mode, pooling, unsupported):
    """sentence-transformers >= 5 saves {"pooling_mode": "mean"} (its trainer's checkpoints too)."""
    config = {"embedding_dimension": 32, "pooling_mode": mode, "include_prompt": True}
    st = read_sentence_transformers_config(_folder(tmp_path / "st", _modules(TRANSFORMER, POOLING), config))
    assert (st.pooling, st.pooling_unsupported) == (pooling, unsupported)
