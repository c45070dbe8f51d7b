"""fastir.core.cpu: the CPU's bf16 matrix instructions and vendor, from /proc/cpuinfo or FASTIR_CPU_FLAGS / FASTIR_CPU_VENDOR."""

from __future__ import annotations

import os

import pytest

from fastir.core import cpu


def test_flags_from_proc_cpuinfo_or_the_environment(monkeypatch):
    monkeypatch.delenv(cpu.FLAGS_ENV, raising=False)
    flags = cpu.cpu_flags()
    if os.path.exists("/proc/cpuinfo"):
        want = next(line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
        assert flags == frozenset(want)
    monkeypatch.setenv(cpu.FLAGS_ENV, "AVX2 amx_bf16")
    assert cpu.cpu_flags() == frozenset({"avx2", "amx_bf16"})


@pytest.mark.parametrize("flags,fast,why", [
    ("avx2 avx512f", False, "this CPU has no AVX512_BF16 or AMX_BF16"),
    ("avx512_bf16", True, "this CPU has AVX512_BF16"),
    ("amx_tile amx_bf16 avx512_bf16", True, "this CPU has AVX512_BF16 and AMX_BF16"),
])
def test_cpu_bf16(monkeypatch, flags, fast, why):
    monkeypatch.setenv(cpu.FLAGS_ENV, flags)
    assert cpu.cpu_bf16(torch_ops=False) == (fast, why)
    assert cpu.cpu_bf16() == (fast, why)  # this torch has oneDNN


def test_unknown_flags_mean_no_bf16(monkeypatch):
    monkeypatch.delenv(cpu.FLAGS_ENV, raising=False)
    monkeypatch.setattr(cpu, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no file")), raising=False)
    assert cpu.cpu_flags() is None
    assert cpu.cpu_bf16() == (False, "the CPU's flags are unknown (no /proc/cpuinfo)")


def test_vendor_from_proc_cpuinfo_or_the_environment(monkeypatch):
    monkeypatch.delenv(cpu.VENDOR_ENV, raising=False)
    if os.path.exists("/proc/cpuinfo"):
        want = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("vendor_id")), "")
        assert cpu.cpu_vendor() == want
    monkeypatch.setenv(cpu.VENDOR_ENV, "AuthenticAMD")
    assert cpu.cpu_vendor() == "AuthenticAMD"
    monkeypatch.delenv(cpu.VENDOR_ENV)
    monkeypatch.setattr(cpu, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no file")), raising=False)
    assert cpu.cpu_vendor() == ""
