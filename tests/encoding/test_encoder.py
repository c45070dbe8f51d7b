"""fastir.encoding.encoder: ``encode`` (also ``fastir.encode``) picks a backend by name or object and
keeps the last model loaded by name (the hf backend's numbers: tests/encoding/test_hf.py).

Fixtures (tiny BERT) live in conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastir.encoding import encoder
from fastir.encoding.encoder import encode, load_encoder

TEXTS = ["w1 ?", "w2 w3 w4 .", "w30 w31 w32 ."]


def test_package_level_encode_is_callable_after_submodule_import(embed_tiny_bert):
    import fastir
    import fastir.encoding.encoder  # a submodule import must not shadow the package-level function

    a = fastir.encode(TEXTS, model=embed_tiny_bert, device="cpu")
    b = fastir.encode(TEXTS, model=embed_tiny_bert, device="cpu")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, encode(TEXTS, model=embed_tiny_bert, device="cpu"))
    assert a.shape == (len(TEXTS), 32) and a.dtype == np.float32


def test_a_single_string_is_refused():
    with pytest.raises(TypeError, match="not a single string"):
        encode("w1 w2 .", model=object())


def test_an_encoder_object_takes_no_loading_options(embed_tiny_bert):
    enc = load_encoder(embed_tiny_bert, device="cpu")
    for option in ({"pooling": "mean"}, {"device": "cpu"}, {"dtype": "fp32"}, {"max_length": 8}):
        with pytest.raises(ValueError, match="pass pooling/device/dtype/max_length to load_encoder"):
            encode(TEXTS, model=enc, **option)
    np.testing.assert_array_equal(encode(TEXTS, model=enc), encode(TEXTS, model=embed_tiny_bert, device="cpu"))


def test_the_last_model_loaded_by_name_is_reused(embed_tiny_bert, monkeypatch):
    opened = []
    real = encoder.open_backend

    def counting(model, backend, **options):
        opened.append((str(model), options["pooling"]))
        return real(model, backend, **options)

    monkeypatch.setattr(encoder, "_CACHE", {})
    monkeypatch.setattr(encoder, "open_backend", counting)
    first = encode(TEXTS, model=embed_tiny_bert, device="cpu")
    np.testing.assert_array_equal(encode(TEXTS, model=embed_tiny_bert, device="cpu"), first)
    assert opened == [(embed_tiny_bert, None)]  # loaded once
    encode(TEXTS, model=embed_tiny_bert, device="cpu", pooling="mean")  # other options: another model
    encode(TEXTS, model=embed_tiny_bert, device="cpu")  # only the last one is kept
    assert opened == [(embed_tiny_bert, None), (embed_tiny_bert, "mean"), (embed_tiny_bert, None)]
