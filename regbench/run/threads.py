"""How many threads a run's torch uses on the CPU: the cores this process may use, shared among
the jobs that run beside it, less the cores other processes keep busy right now.

torch's own default is every core of the machine: beside any other busy process one of its threads
waits for a core at every parallel step, and a run takes several times its quiet time
(benchmarks/threads.py; its numbers in benchmarks/RESULTS.md).
Deterministic kernels give the same metrics at any count (trainer.deterministic), so the count may
follow the machine's load; summary.json records the one a run used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

LOADAVG = Path("/proc/loadavg")  # Linux: its 4th field is runnable/total scheduling entities now


def allowed_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, cgroups' cpusets, SLURM's
    binding), at most SLURM's --cpus-per-task inside a SLURM job."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(cores, int(slurm)) if slurm.isdigit() and int(slurm) > 0 else cores


def busy_elsewhere(samples: int = 5, gap: float = 0.01) -> int:
    """Processes other than this one that are running or waiting for a core right now (the fewest
    of a few looks, so that a passing process does not count); 0 where the kernel does not say."""
    seen = []
    for i in range(samples):
        try:
            running = int(LOADAVG.read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return 0
        seen.append(max(running - 1, 0))  # the count includes this process
        if i + 1 < samples:
            time.sleep(gap)
    return min(seen)


def parallel_jobs(launcher: object | None) -> int:
    """How many jobs a local launcher runs side by side on this machine (Hydra's joblib: n_jobs,
    -1 all cores; submitit_local: each job gets its cpus_per_task); 1 otherwise."""
    target = str(getattr(launcher, "_target_", "") or "")
    if "joblib" in target:
        n = int(getattr(launcher, "n_jobs", -1) or -1)
        return n if n > 0 else max(1, (os.cpu_count() or 1) + 1 + n)
    return 1


def choose(setting: int | str, launcher: object | None = None) -> int:
    """trainer.threads: a number is used as given; auto is the cores this process may use, shared
    among a local launcher's parallel jobs, less those busy elsewhere, at most OMP_NUM_THREADS
    where it is set; at least 1."""
    if setting != "auto":
        return int(setting)
    cores = allowed_cores()
    n = cores // parallel_jobs(launcher)
    if "submitit" in str(getattr(launcher, "_target_", "")):
        n = min(n, int(getattr(launcher, "cpus_per_task", None) or n))
    n = min(n, cores - busy_elsewhere())
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:  # the user's (or a launcher's) explicit limit
        n = min(n, int(omp))
    return max(1, n)


def use(setting: int | str, launcher: object | None = None) -> int:
    """Set torch's thread count for this process's runs; the count."""
    n = choose(setting, launcher)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
