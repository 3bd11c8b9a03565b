"""The number format a run computes in (no torch: compare reads it from a run's config and
device; run/device.py applies it)."""

from __future__ import annotations


def arithmetic(precision: str, device_type: str) -> str:
    """The number format a run computes in: bf16 where asked, or under "auto" on CUDA; else fp32
    (bf16 autocast on CPUs is several times slower: benchmarks/README.md)."""
    return (
        "bf16" if precision == "bf16" or (precision == "auto" and device_type == "cuda") else "fp32"
    )
