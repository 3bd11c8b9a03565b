"""`regbench claims run --jobs N`: the claims shared among N child processes, each running one
claim at a time (`regbench claims run NAME`, the same command a user types) with its share of the
cores, the next claim going to whichever finishes first; the ledger is then read from their
folders, as `claims ledger` reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from regbench.run.threads import allowed_cores

LOGS = "claims-logs"  # in --out-dir: each claim's output, while and after it runs


def _start(
    name: str, out_dir: Path, scale: str, extra: list[str], threads: int
) -> subprocess.Popen:
    log = out_dir / LOGS / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    ledger = out_dir / LOGS / f"{name}.md"
    cmd = [sys.executable, "-m", "regbench", "claims", "run", name, "--out-dir", str(out_dir)]
    cmd += ["--scale", scale, "--ledger", str(ledger), *extra]
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}  # trainer.threads=auto keeps to it
    with log.open("w") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)


def run(names: list[str], jobs: int, out_dir: Path, scale: str, extra: list[str]) -> dict[str, int]:
    """Each claim's exit code, running up to `jobs` at once; Ctrl-C stops them all. `extra`: the
    children's further options (--data-root)."""
    threads = max(1, allowed_cores() // jobs)
    queue = list(names)
    running: dict[str, subprocess.Popen] = {}
    codes: dict[str, int] = {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                name = queue.pop(0)
                print(f"== {name}: started (log: {out_dir / LOGS / name}.log)", flush=True)
                running[name] = _start(name, out_dir, scale, extra, threads)
            for name, proc in list(running.items()):
                if proc.poll() is not None:
                    codes[name] = proc.returncode
                    del running[name]
                    print(f"== {name}: done (exit {proc.returncode})", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for proc in running.values():
            proc.terminate()
        for proc in running.values():
            proc.wait()
        raise
    return codes
