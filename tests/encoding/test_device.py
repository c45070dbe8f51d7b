"""fastir.encoding.device: --device and --dtype choices, the CPU fallback with one warning, and the
errors of anything else (CUDA's presence is faked both ways, so every branch runs on any machine)."""

from __future__ import annotations

import warnings

import pytest
import torch

from fastir.core.errors import FastirWarning, InputError
from fastir.encoding.device import DEVICES, DTYPES, dtype_name, resolve_device, resolve_dtype


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
    ("cuda", "bf16", torch.bfloat16),
])
def test_dtype_choices(device, dtype, want, monkeypatch):
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "avx512_bf16")  # a CPU with the instructions (see the refusal below)
    assert resolve_dtype(dtype, torch.device(device)) == want


def test_explicit_bf16_on_a_cpu_without_the_instructions_is_refused(monkeypatch):
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "avx2 avx512f")
    with pytest.raises(InputError) as info:
        resolve_dtype("bf16", torch.device("cpu"))
    assert str(info.value) == ("--dtype: bf16 on the CPU needs bf16 matrix instructions: this CPU has no "
                               "AVX512_BF16 or AMX_BF16 (use --dtype fp32 or auto)")
    assert resolve_dtype("bf16", torch.device("cuda")) == torch.bfloat16  # a GPU's own matter


@pytest.mark.parametrize("flags, why", [
    ("avx2 avx512f", "auto: fp32; this CPU has no AVX512_BF16 or AMX_BF16"),
    ("avx512_bf16", "auto: fp32; this CPU has AVX512_BF16, but bf16 missed the 0.002 mAP bound "
                    "(MiniLM, XQuAD-R en+de first 3 articles: en-de mAP -0.0037): --dtype bf16"),
])
def test_auto_dtype_on_the_cpu_is_fp32_and_says_why(monkeypatch, flags, why):
    from fastir.core.cpu import FLAGS_ENV
    from fastir.encoding.device import choose_dtype

    monkeypatch.setenv(FLAGS_ENV, flags)
    assert choose_dtype("auto", torch.device("cpu")) == (torch.float32, why)
    assert choose_dtype("fp32", torch.device("cpu")) == (torch.float32, "asked for")
    assert choose_dtype("auto", torch.device("cuda")) == (torch.float16, "auto: fp16 on CUDA")


@pytest.mark.parametrize("bad", ["float16", "fp64", "int8", "AUTO"])
def test_unknown_dtype_is_refused(bad):
    with pytest.raises(InputError) as info:
        resolve_dtype(bad, torch.device("cpu"))
    assert info.value.field == "--dtype"
    assert str(info.value) == f"--dtype: expected one of auto, fp16, bf16, fp32, found {bad!r}"
    assert DTYPES == ("auto", "fp16", "bf16", "fp32")


def test_dtype_names_as_run_json_records_them(monkeypatch):
    from fastir.core.cpu import FLAGS_ENV

    monkeypatch.setenv(FLAGS_ENV, "amx_bf16")
    assert [dtype_name(resolve_dtype(d, torch.device("cpu"))) for d in ("fp16", "bf16", "fp32")] == [
        "float16", "bfloat16", "float32"]
