"""What this CPU's matrix units can do: the one place fastir decides whether bfloat16 is fast here.

bfloat16 matrix instructions are AVX512_BF16 (Cooper Lake, Zen 4 and later) and AMX_BF16
(Sapphire Rapids and later); they show as the ``avx512_bf16`` / ``amx_bf16`` flags of
``/proc/cpuinfo``. Without them oneDNN emulates bfloat16 products with float32 ones plus
conversions, slower than float32, so the ``auto`` settings choose bfloat16 only where a flag is
present (and, for the torch paths, where torch has oneDNN, which runs those products).
Where ``/proc/cpuinfo`` cannot be read (not Linux) the answer is "no": fp32 keeps today's speed.

``FASTIR_CPU_FLAGS`` (space-separated) replaces the flags read from ``/proc/cpuinfo``: it lets a
test or a user pretend to a CPU without the instructions (``FASTIR_CPU_FLAGS=avx2``);
``FASTIR_CPU_VENDOR`` likewise replaces its ``vendor_id`` (:func:`cpu_vendor`: oneMKL's float16
product is used on Intel CPUs only, where it was measured faster; ``fastir.eval.stream``).
"""

from __future__ import annotations

import os

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FLAGS_ENV = "FASTIR_CPU_FLAGS"
VENDOR_ENV = "FASTIR_CPU_VENDOR"


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line's value in /proc/cpuinfo ("" where absent); None where unreadable."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return ""


def cpu_flags() -> frozenset[str] | None:
    """This CPU's feature flags (``FASTIR_CPU_FLAGS``, else /proc/cpuinfo); None where neither exists."""
    if os.environ.get(FLAGS_ENV) is not None:
        return frozenset(os.environ[FLAGS_ENV].lower().split())
    flags = _cpuinfo("flags")
    return None if flags is None else frozenset(flags.split())


def cpu_vendor() -> str:
    """This CPU's ``vendor_id`` (``FASTIR_CPU_VENDOR``, else /proc/cpuinfo: ``GenuineIntel``,
    ``AuthenticAMD``, ...); "" where unknown."""
    if os.environ.get(VENDOR_ENV) is not None:
        return os.environ[VENDOR_ENV]
    return _cpuinfo("vendor_id") or ""


def cpu_bf16(torch_ops: bool = True) -> tuple[bool, str]:
    """(this CPU runs bfloat16 matrix products fast, why): the reason names the flags found or
    missing. ``torch_ops``: also require torch's oneDNN backend (imports torch)."""
    flags = cpu_flags()
    if flags is None:
        return False, "the CPU's flags are unknown (no /proc/cpuinfo)"
    found = [f.upper() for f in BF16_FLAGS if f in flags]
    if not found:
        return False, f"this CPU has no {' or '.join(f.upper() for f in BF16_FLAGS)}"
    if torch_ops:
        import torch

        if not torch.backends.mkldnn.is_available():
            return False, f"this CPU has {' and '.join(found)} but torch was built without oneDNN"
    return True, f"this CPU has {' and '.join(found)}"
