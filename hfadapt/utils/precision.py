"""Training precision: bf16 autocast where the device multiplies bf16 natively, fp32 elsewhere."""

from __future__ import annotations

import torch

MIXED_PRECISIONS = ("no", "bf16", "auto")
"""``AdaptConfig.mixed_precision`` values, named as ``accelerate``'s ``mixed_precision`` names them, plus ``auto``."""


def native_bf16() -> bool:
    """Whether this process's device computes bf16 matrix products in hardware, so that bf16 autocast is faster than
    fp32 there: a CUDA GPU with bf16 support (Ampere or later), or a CPU with AVX512-BF16 or AMX tiles (oneDNN runs
    bf16 on those; on other CPUs it emulates bf16, slower than fp32).

    Measured on a 2-core AMD EPYC with AVX512-BF16: MiniLM training steps take about half the fp32 time
    (``benchmarks/precision_cost.py``)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


def resolve_bf16(mixed_precision: str) -> bool:
    """Whether a run with ``AdaptConfig.mixed_precision`` set to ``mixed_precision`` trains under bf16 autocast:
    ``"no"``: never; ``"bf16"``: always; ``"auto"``: where :func:`native_bf16` says it is fast.

    Raises:
        ValueError: for a value not in :data:`MIXED_PRECISIONS`.
    """
    if mixed_precision not in MIXED_PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISIONS}, got {mixed_precision!r}")
    return mixed_precision == "bf16" or (mixed_precision == "auto" and native_bf16())
