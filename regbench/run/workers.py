"""joblib's worker processes forked from one that imported the training code once.

Hydra's joblib launcher always runs joblib's loky backend, whose workers are fresh interpreters:
each imports torch and, at its first optimizer, torch._dynamo (torch.optim loads it even when
nothing is compiled) before its first run. With loky's forkserver start method every worker is
forked from one server process that imported them once; started before this process imports torch
itself, the server's imports overlap this one's. Torch-free: this module runs before that import.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import sys
from pathlib import Path

PRELOAD = ["regbench.run.job", "torch._dynamo"]
# a GPU's driver (NVIDIA's, AMD's ROCm): there the workers stay fresh interpreters, as loky makes
# them, for CUDA and fork are best kept apart
GPU_DRIVERS = ("/dev/nvidiactl", "/dev/kfd")


def fork_from_server(launcher: str) -> bool:
    """hydra/launcher=joblib on Linux without a GPU: loky's workers forked from a server started
    now, which imports PRELOAD; whether it was started."""
    if launcher != "joblib" or sys.platform != "linux":
        return False
    if any(Path(d).exists() for d in GPU_DRIVERS):
        return False
    from joblib.externals.loky.backend.context import set_start_method

    set_start_method("forkserver", force=True)
    multiprocessing.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()
    return True
