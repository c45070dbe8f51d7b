"""``--precision``: how ``fastir score`` computes Q·Cᵀ, and the certified error bound of each product.

* ``fp32``: float32 BLAS; ranks from the float32 scores (the historical path, no certificate).
* ``exact``, ``bf16``, ``int8``: certified. The product is approximate, with a rigorous bound
  ``|A(q, c) - q·c| <= bound(q) + w |A(q, c)|`` for every pair (q·c the exact inner product of the
  stored vectors); :mod:`fastir.kernels.certified` then yields the ranks of the exact scores
  (ties against the gold), recomputing only the candidates the bound leaves undecided. The three
  give identical metrics; they differ in speed and in how many pairs are recomputed.

Bounds (d the dimension, ‖·‖ Euclidean norms computed in float64 and widened by 2^-30 relative,
which covers their rounding for d < 2^22; γ_n = n·2^-24 / (1 - n·2^-24), the float32 rounding
bound of a sum of n exact products in any order). With r_x = x - x̃ the exact residual of a
rounded copy x̃ of x, q·c - q̃·c̃ = q·r_c + r_q·c̃, so by Cauchy–Schwarz
``|q·c - q̃·c̃| <= ‖q‖ ‖r_c‖ + ‖r_q‖ ‖c̃‖``; per query row the candidate norms are their maxima:

* ``exact`` (float32 BLAS): bound = γ_d ‖q‖ max‖c‖, w = 0 (products of float32 summed in float32).
* ``bf16`` (inputs rounded to nearest-even bfloat16 by :mod:`fastir.kernels.bfloat16`, which
  returns the norms below from the same pass; torch product, float32 accumulation, written into a
  bfloat16 block that the certified kernel reads as bit patterns): 8 significant bits: ‖q‖ max‖r_c‖ + (‖r_q‖ + γ_d ‖q̃‖) max‖c̃‖ (products of bfloat16 are exact in
  float32); the output is rounded to nearest bfloat16: |acc - A| <= 2^-8 |acc| <= (2^-8 + 2^-15) |A|.
* ``int8`` (``torch._int_mm``, symmetric per-row scales s = max|x| / 127, x̂ = round(x / s)):
  q̂·ĉ is exact in int32 (|q̂_i ĉ_i| <= 127², d < 133,000); with c̃ = s_c ĉ the bound is
  ‖q‖ max‖r_c‖ + ‖r_q‖ max‖c̃‖; A = float32(acc)·s_q·s_c rounds three times: w = 2^-21.

Each bound adds t(q) = 2^-118 (d + √d (‖q‖ + max‖c‖)) for float32 underflow and for
flush-to-zero / denormals-are-zero in the vendor kernels (AMX), and assumes no overflow: a row
with ‖q‖ max‖c‖ > 2^100 gets A = 0 and an infinite bound (every candidate recomputed exactly).
NaN / inf embeddings are refused when the run is read, before any product.

``int8`` runs its product on CUDA where torch sees a GPU with int8 tensor cores
(:func:`device_for`): integer sums are exact there too, so the bound is the same.
A precision asked for that this machine cannot run fast (no AVX512_BF16/AMX_BF16 for bf16; no
int8 GPU and no AVX512_VNNI/AVX_VNNI/AMX_INT8 for int8; no torch) is a one-line error; ``auto``
(:mod:`fastir.eval.certified`) falls back instead and records why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastir.core.cpu import BF16_FLAGS, cpu_flags

FP32 = "fp32"
DEFAULT_PRECISION = "auto"
_WIDEN = 1.0 + 2.0 ** -30
_NO_OVERFLOW = 2.0 ** 100


@dataclass(frozen=True)
class PrecisionSpec:
    name: str
    label: str
    certified: bool
    cpu_flags: tuple[str, ...] = ()  # any of these /proc/cpuinfo flags makes it fast; () = always runs
    needs_torch: bool = False


PRECISIONS = {p.name: p for p in (
    PrecisionSpec("auto", "exact ranks: the fastest certified product here, chosen block by block "
                          "(float32 scores where --trec, the bias suite or a GPU need them)", True),
    PrecisionSpec(FP32, "float32 BLAS, ranks of the float32 scores (not certified)", False),
    PrecisionSpec("exact", "float32 BLAS + certified bound, exact ranks", True),
    PrecisionSpec("bf16", "bfloat16 product + certified bound, exact ranks", True, BF16_FLAGS, True),
    PrecisionSpec("int8", "int8 product + certified bound, exact ranks", True,
                  ("avx512_vnni", "avx_vnni", "amx_int8"), True),
)}


def cuda_int8() -> tuple[bool, str | None]:
    """(int8 runs on CUDA, why not or None): torch sees a CUDA device with the int8 tensor cores
    that ``torch._int_mm`` uses (compute capability 8.0 or newer)."""
    try:
        import torch
    except ImportError:
        return False, None
    if not torch.cuda.is_available():
        return False, None
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) < (8, 0):
        return False, f"{torch.cuda.get_device_name()} (compute capability {major}.{minor}) has no int8 tensor cores"
    return True, None


def device_for(name: str) -> str:
    """Where engine ``name`` runs: "cuda" for int8 where :func:`cuda_int8` allows, else "cpu"."""
    return "cuda" if name == "int8" and cuda_int8()[0] else "cpu"


def resolve(name: str) -> tuple[str, str | None]:
    """(precision that will run, note or None) for an explicitly asked certified precision: ``name``,
    with a note where int8 runs on the CPU instead of a GPU; InputError where this machine cannot run
    it fast (no torch, no bf16 / int8 instructions: ``auto`` falls back instead, ``exact`` always runs)."""
    from fastir.core.errors import InputError

    spec = PRECISIONS[name]
    if name == "bf16" and mkl_gemm()[0]:  # oneMKL from torch's library: no torch import
        return name, None
    if spec.needs_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise InputError(None, "--precision", f"{name} needs torch, which is not importable: use --precision "
                                                  "auto or exact") from None
    gpu_note = None
    if name == "int8":
        on_cuda, gpu_note = cuda_int8()
        if on_cuda:
            return name, None
    if spec.cpu_flags:
        flags = cpu_flags()
        if flags is not None and not flags.intersection(spec.cpu_flags):
            wanted = " or ".join(f.upper() for f in spec.cpu_flags)
            raise InputError(None, "--precision", f"{name}: {gpu_note + ', and ' if gpu_note else ''}this CPU has no "
                                                  f"{wanted}: use --precision auto or exact")
    if gpu_note:
        return name, f"--precision {name}: {gpu_note}; ran on the CPU"
    return name, None


# ------------------------------------------------------------------------------------- products


def _norms(x: np.ndarray) -> np.ndarray:
    from fastir.kernels.certified import row_norms

    return row_norms(x)


def _gamma(d: int) -> float:
    nu = d * 2.0 ** -24
    return nu / (1.0 - nu) * _WIDEN


def bf16_inputs_bound(nq, rq, q_round, max_rc: float, max_cr: float, d: int):
    """The bfloat16 inputs' term of the bound per query row: ‖q‖ max‖r_c‖ + (‖r_q‖ + γ_d ‖q̃‖) max‖c̃‖
    (r the rounding residuals, x̃ the rounded rows; products of bfloat16 are exact in float32 and
    γ_d bounds their float32 sum). Norms as the caller widened them."""
    return nq * max_rc + (rq + _gamma(d) * q_round) * _WIDEN * max_cr


class _Product:
    """One candidate block, prepared once; :meth:`block` scores query rows against it."""

    w = 0.0
    out_dtype = np.float32  # of the approximations :meth:`block` writes

    def __init__(self, cand: np.ndarray):
        self.cand = cand  # (N, d) float32, column order
        self.d = cand.shape[1]
        self.c_norm = self._candidate_norms(cand)
        self.max_c = float(self.c_norm.max(initial=0.0))
        self.q_norm = None  # norms of the last block's rows

    def _candidate_norms(self, cand):
        return _norms(cand)

    @staticmethod
    def prepare(q: np.ndarray):
        """What :meth:`block` derives from the query rows alone (None: nothing), for a caller that
        scores the same rows against several tiles."""
        return None

    def block(self, q: np.ndarray, out: np.ndarray, prepared=None) -> np.ndarray:
        """Fill ``out`` (B, N) of :attr:`out_dtype` with A(q, c); return bound(q) (B,) float64.
        ``prepared``: :meth:`prepare` of ``q``, when the caller kept it."""
        nq, bound = self._fill(q, out) if prepared is None else self._fill(q, out, prepared)
        self.q_norm = nq
        bound = bound * _WIDEN + 2.0 ** -118 * (self.d + np.sqrt(self.d) * (nq + self.max_c))
        too_big = ~(nq * self.max_c <= _NO_OVERFLOW)
        if too_big.any():
            out[too_big] = 0
            bound[too_big] = np.inf
        return bound

    def _fill(self, q, out):
        """(‖q‖ per row, widened; bound before the underflow term) after writing A into ``out``."""
        raise NotImplementedError


class _Float32(_Product):
    def _fill(self, q, out):
        np.matmul(q, self.cand.T, out=out)
        nq = _norms(q)
        return nq, _gamma(self.d) * nq * self.max_c


class _BFloat16(_Product):
    """bfloat16 inputs rounded here (fastir.kernels.bfloat16, with their norms in the same pass),
    torch's product written straight into a bfloat16 block: the certified kernel reads its bit
    patterns, so no float32 copy of the block is made."""

    w = 2.0 ** -8 + 2.0 ** -15
    out_dtype = np.uint16

    def _candidate_norms(self, cand):
        import torch

        from fastir.kernels.bfloat16 import round_bf16

        bits, norm, resid, rounded = round_bf16(cand)
        # Cᵀ as a row-major (d, N) copy: oneDNN's bfloat16 matmul is ≈ 1.4x faster from it than
        # from the transposed view of C (measured side by side at the XQuAD-R shape).
        self.c16_t = torch.from_numpy(bits).view(torch.bfloat16).T.contiguous()
        self.max_rc = float(resid.max(initial=0.0)) * _WIDEN
        self.max_cr = float(rounded.max(initial=0.0)) * _WIDEN
        return norm * _WIDEN

    def _fill(self, q, out):
        import torch

        from fastir.kernels.bfloat16 import round_bf16

        bits, nq, rq, q_round = round_bf16(q)
        torch.mm(torch.from_numpy(bits).view(torch.bfloat16), self.c16_t,
                 out=torch.from_numpy(out).view(torch.bfloat16))
        nq *= _WIDEN
        return nq, bf16_inputs_bound(nq, rq, q_round, self.max_rc, self.max_cr, self.d)


def _int8(x: np.ndarray):
    """(x̂ int8, s float32, ‖x - s x̂‖, ‖s x̂‖): symmetric per-row quantisation to [-127, 127].

    x̂ gets zero columns up to a multiple of 8 (exact): torch 2.13's CPU ``_int_mm`` returns wrong
    sums when the inner dimension is 1.
    """
    s = (np.abs(x).max(axis=1, initial=0.0) / np.float32(127)).astype(np.float32)
    s[s == 0] = 1.0
    xq = np.zeros((x.shape[0], -(-x.shape[1] // 8) * 8), dtype=np.int8)
    xq[:, :x.shape[1]] = np.clip(np.rint(x / s[:, None]), -127, 127)
    back = xq[:, :x.shape[1]].astype(np.float64) * s[:, None].astype(np.float64)  # exact: 7 + 24 bits
    return xq, s, _norms(x - back), _norms(back)


class _Int8(_Product):
    """int8 product by ``torch._int_mm`` on ``device`` ("cpu" or "cuda"): exact int32 sums, so the
    bound does not depend on how the device accumulates. ``padded`` (the CUDA layout, default on
    CUDA): candidates padded to a multiple of 8 and stored column-major, queries to more than 16
    rows, as cuBLASLt's int8 kernels require; on the CPU it only exercises that branch in tests."""

    w = 2.0 ** -21

    def __init__(self, cand, device: str = "cpu", padded: bool | None = None):
        super().__init__(cand)
        import torch

        self.device = device
        self.padded = device != "cpu" if padded is None else padded
        cq, s, rc, cr = _int8(cand)
        if self.padded:
            n8 = -(-len(cq) // 8) * 8
            cq = np.concatenate([cq, np.zeros((n8 - len(cq), cq.shape[1]), np.int8)])
            s = np.concatenate([s, np.ones(n8 - len(s), np.float32)])
            self.cq_t = torch.from_numpy(cq).to(device).T  # column-major (K, N8)
        else:
            self.cq_t = torch.from_numpy(np.ascontiguousarray(cq.T))  # row-major: faster on the CPU
        self.s_c = torch.from_numpy(s).to(device)
        self.max_rc = float(rc.max(initial=0.0))
        self.max_cr = float(cr.max(initial=0.0))

    def _fill(self, q, out):
        import torch

        nq = _norms(q)
        qq, s_q, rq, _ = _int8(q)
        n, n_cols = out.shape
        if not self.padded:
            _scale(torch._int_mm(torch.from_numpy(qq), self.cq_t), torch.from_numpy(s_q), self.s_c,
                   torch.from_numpy(out))
        else:
            rows = np.zeros((max(n, _PADDED_MIN_ROWS), qq.shape[1]), np.int8)
            rows[:n] = qq
            acc = torch._int_mm(torch.from_numpy(rows).to(self.device), self.cq_t)[:n, :n_cols]
            a = torch.empty((n, n_cols), dtype=torch.float32, device=self.device)
            _scale(acc, torch.from_numpy(s_q).to(self.device), self.s_c[:n_cols], a)
            torch.from_numpy(out).copy_(a)
        return nq, nq * self.max_rc + rq * self.max_cr


_PADDED_MIN_ROWS = 32  # CUDA _int_mm wants more than 16 rows


def _scale(acc, s_q, s_c, a):
    """a = float32(acc) * s_q (per row) * s_c (per column): three float32 roundings (w = 2^-21)."""
    import torch

    torch.mul(acc, s_q[:, None], out=a)
    a.mul_(s_c)


class _BFloat16MKL(_BFloat16):
    """bfloat16 inputs (rounded as :class:`_BFloat16`), oneMKL's product (:mod:`fastir.eval.mkl_gemm`,
    no torch import) into a float32 block: no output rounding, so w = 0 and the bound is the
    inputs' rounding plus the float32 sums."""

    w = 0.0
    out_dtype = np.float32

    def _candidate_norms(self, cand):
        from fastir.eval.mkl_gemm import load
        from fastir.kernels.bfloat16 import round_bf16

        self.gemm = load()[0]
        self.c16, norm, resid, rounded = round_bf16(cand)
        self.max_rc = float(resid.max(initial=0.0)) * _WIDEN
        self.max_cr = float(rounded.max(initial=0.0)) * _WIDEN
        return norm * _WIDEN

    @staticmethod
    def prepare(q):
        from fastir.kernels.bfloat16 import round_bf16

        return round_bf16(q)

    def _fill(self, q, out, prepared=None):
        bits, nq, rq, q_round = self.prepare(q) if prepared is None else prepared
        self.gemm(bits, self.c16, out)
        nq = nq * _WIDEN
        return nq, bf16_inputs_bound(nq, rq, q_round, self.max_rc, self.max_cr, self.d)


def mkl_gemm() -> tuple[bool, str]:
    """(bf16 runs through oneMKL here, why): a CPU with bfloat16 instructions and torch's oneMKL."""
    from fastir.eval.mkl_gemm import load

    flags = cpu_flags()
    found = [f.upper() for f in BF16_FLAGS if flags is not None and f in flags]
    if not found:
        return False, f"this CPU has no {' or '.join(f.upper() for f in BF16_FLAGS)}"
    gemm, where = load()
    return gemm is not None, f"this CPU has {' and '.join(found)}; {where}"


def as_float32(out: np.ndarray) -> np.ndarray:
    """The approximations an engine wrote, as float32 values (bfloat16 bit patterns widened exactly)."""
    if out.dtype == np.uint16:
        return (out.astype(np.uint32) << 16).view(np.float32)
    return out


ENGINES = {"exact": _Float32, "bf16": _BFloat16, "int8": _Int8}


def product(name: str, cand: np.ndarray) -> _Product:
    """The certified product engine ``name`` prepared for candidate rows ``cand`` (N, d) float32, on
    the device :func:`device_for` names; bf16 through oneMKL where :func:`mkl_gemm` allows, else torch."""
    cand = np.ascontiguousarray(cand, dtype=np.float32)
    if device_for(name) == "cuda":
        return ENGINES[name](cand, device="cuda")
    if name == "bf16" and mkl_gemm()[0]:
        return _BFloat16MKL(cand)
    return ENGINES[name](cand)

