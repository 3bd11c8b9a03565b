"""The device a run trains on (and, in a sweep on a machine of several GPUs, which one) and the
precision it computes in."""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from regbench.config import ConfigError
from regbench.precision import arithmetic


def resolve_device(name: str) -> torch.device:
    """trainer.device as a torch device; a device this torch cannot use is a ConfigError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"trainer.device={name} but CUDA is not available; use trainer.device=auto"
            )
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(
                f"trainer.device={name} but this machine has {torch.cuda.device_count()} GPU(s); "
                "use trainer.device=cuda or auto"
            )
        # trainer.deterministic: cuBLAS is deterministic only with a fixed workspace, set before
        # CUDA starts (PyTorch's reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "trainer.device=mps but this torch has no MPS device; use trainer.device=auto"
        )
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16 autocast where config.arithmetic says so (asked, or "auto" on CUDA), else none."""
    bf16 = arithmetic(precision, device.type) == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def deterministic(on: bool, compiled: bool) -> None:
    """trainer.deterministic: deterministic kernels (warnings where torch has none), no autotuning.
    torch.use_deterministic_algorithms also sets the compiler's flag, importing torch._inductor
    (seconds of start-up, benchmarks/README.md); without trainer.compile the kernels' switch alone."""
    if compiled:
        torch.use_deterministic_algorithms(on, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.benchmark = not on


def elapsed(t0: float, device: torch.device) -> float:
    if device.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def pick_gpu(sweep_dir: Path) -> FileLock | None:
    """trainer.device=auto on a machine with several GPUs: one free GPU per parallel job.

    Local parallel launchers (joblib, submitit_local) run jobs side by side on one machine; a
    lock file per GPU in the sweep folder hands each running job its own GPU (the current CUDA
    device, which `cuda` means in a run). One GPU or none: nothing to choose.
    """
    n = torch.cuda.device_count()
    if n < 2:
        return None
    for i in range(n):
        slot = FileLock(sweep_dir / f".gpu{i}.lock")
        try:
            slot.acquire(timeout=0)
        except Timeout:
            continue
        torch.cuda.set_device(i)
        return slot
    return None  # more parallel jobs than GPUs: share the current one
