"""fastir.encoding.device: --device and --dtype choices, the CPU fallback with one warning, and the
errors of anything else (CUDA's presence is faked both ways, so every branch runs on any machine)."""

from __future__ import annotations

import warnings

import pytest
import torch

from fastir.core.errors import FastirWarning, InputError
from fastir.encoding.device import COMPUTE_NAMES, DEVICES, DTYPES, dtype_name, resolve_device, resolve_dtype


@pytest.fixture(params=[False, True], ids=["no-cuda", "cuda"])
def cuda(request, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: request.param)
    return request.param


def test_auto_and_cpu(cuda):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither warns
        assert resolve_device("auto") == torch.device("cuda" if cuda else "cpu")
        assert resolve_device() == resolve_device("auto")
        assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("asked", ["cuda", "cuda:1"])
def test_cuda_where_available_else_the_cpu_with_one_warning(cuda, asked):
    if cuda:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert resolve_device(asked) == torch.device(asked)
        return
    with pytest.warns(FastirWarning) as caught:
        assert resolve_device(asked) == torch.device("cpu")
    assert len(caught) == 1
    assert str(caught[0].message) == f"--device {asked} requested but CUDA is not available; falling back to the CPU"


@pytest.mark.parametrize("bad", ["gpu", "CPU", "", "mps", "tpu:0"])
def test_unknown_device_is_refused(cuda, bad):
    with pytest.raises(InputError) as info:
        resolve_device(bad)
    assert info.value.field == "--device"
    assert str(info.value) == f"--device: expected one of auto, cuda, cpu, found {bad!r}"
    assert DEVICES == ("auto", "cuda", "cpu")


@pytest.mark.parametrize("device, dtype, want", [
    ("cpu", "auto", torch.float32), ("cuda", "auto", torch.float16), ("cuda:0", "auto", torch.float16),
    ("cpu", "fp16", torch.float16), ("cpu", "bf16", torch.bfloat16), ("cuda", "fp32", torch.float32),
    ("cuda", "bf16", torch.bfloat16), ("cpu", "bf16-mixed", torch.float32),  # mixed: fp32 weights, bf16 Linears
])
def test_dtype_choices(device, dtype, want, monkeypatch):
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "avx512_bf16")  # a CPU with the instructions (see the refusal below)
    assert resolve_dtype(dtype, torch.device(device)) == want


@pytest.mark.parametrize("asked", ["bf16", "bf16-mixed"])
def test_explicit_bf16_on_a_cpu_without_the_instructions_is_refused(monkeypatch, asked):
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "avx2 avx512f")
    with pytest.raises(InputError) as info:
        resolve_dtype(asked, torch.device("cpu"))
    assert str(info.value) == (f"--dtype: {asked} on the CPU needs bf16 matrix instructions: this CPU has no "
                               "AVX512_BF16 or AMX_BF16 (use --dtype fp32 or auto)")
    assert resolve_dtype(asked, torch.device("cuda")) in (torch.bfloat16, torch.float32)  # a GPU's own matter


@pytest.mark.parametrize("flags, want, why", [
    ("avx2 avx512f", "fp32", "auto: fp32; this CPU has no AVX512_BF16 or AMX_BF16"),
    ("avx512_bf16", "fp32", "auto: fp32; this CPU has AVX512_BF16, but bf16-mixed missed the 0.002 mAP bound "
                            "(e5-small, XQuAD-R 11 languages: zh-es mAP +0.0028, 5 of 132 cells beyond 0.002; "
                            "their first 3 articles: ru-en +0.0120, 33 cells): --dtype bf16-mixed"),
])
def test_auto_dtype_on_the_cpu_says_what_and_why(monkeypatch, flags, want, why):
    from fastir.core.cpu import FLAGS_ENV
    from fastir.encoding.device import choose_dtype

    monkeypatch.setenv(FLAGS_ENV, flags)
    assert choose_dtype("auto", torch.device("cpu")) == (want, why)
    assert choose_dtype("fp32", torch.device("cpu")) == ("fp32", "asked for")
    assert choose_dtype("auto", torch.device("cuda")) == ("fp16", "auto: fp16 on CUDA")


def test_a_cpu_without_bf16_instructions_keeps_fp32(monkeypatch, embed_tiny_bert):
    """cpu_bf16 says no (whatever /proc/cpuinfo says): auto loads fp32 and replaces no Linear."""
    import fastir.core.cpu
    from fastir.encoding.hf import load_encoder

    monkeypatch.setattr(fastir.core.cpu, "cpu_bf16", lambda torch_ops=True: (False, "no bf16 here"))
    enc = load_encoder(embed_tiny_bert, device="cpu", dtype="auto")
    assert enc.record()["compute_dtype"] == "float32" and enc.dtype_reason == "auto: fp32; no bf16 here"
    assert any(type(m) is torch.nn.Linear for m in enc.model.modules())


@pytest.mark.parametrize("bad", ["float16", "fp64", "int8", "AUTO"])
def test_unknown_dtype_is_refused(bad):
    with pytest.raises(InputError) as info:
        resolve_dtype(bad, torch.device("cpu"))
    assert info.value.field == "--dtype"
    assert str(info.value) == f"--dtype: expected one of auto, fp16, bf16, bf16-mixed, fp32, found {bad!r}"
    assert DTYPES == ("auto", "fp16", "bf16", "bf16-mixed", "fp32")


def test_dtype_names_as_run_json_records_them(monkeypatch):
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "amx_bf16")
    assert [dtype_name(resolve_dtype(d, torch.device("cpu"))) for d in ("fp16", "bf16", "fp32")] == [
        "float16", "bfloat16", "float32"]
    assert COMPUTE_NAMES == {"fp16": "float16", "bf16": "bfloat16", "bf16-mixed": "bfloat16-mixed", "fp32": "float32"}
