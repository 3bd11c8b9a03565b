"""Runs beside a busy process, with torch's default thread count and with trainer.threads=auto.

Prints, in one run of this script:
  1. 8 solo runs (`regbench train`, seeds 0-7) quiet with torch's default (one thread per core),
     then beside one busy process with that default, then beside it with trainer.threads=auto;
     each run's training wall time (summary.json's wall_seconds) as a ratio to its quiet time.
  2. The same 8 runs as one sweep with hydra/launcher=joblib n_jobs=2 against the basic
     launcher's sequential sweep, both with trainer.threads=auto: the commands' wall times.

    python benchmarks/threads.py                  # 8 runs of 5 epochs each
    python benchmarks/threads.py --runs 4 --epochs 3

The goal (issue 41): beside one busy process no run slower than 2x its quiet time, and n_jobs=2
on 2 cores no slower than sequential. "Quiet" means no busy process of this script's: on a shared
machine other users' work runs through all phases (the load averages are printed with each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# one CPU-bound process; it ends by itself after 30 minutes should this script be killed
BUSY = "import time\nend = time.time() + 1800\nwhile time.time() < end: pass"


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return e | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def regbench(*args: str) -> float:
    """Run the CLI; its wall time."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "regbench", *args], check=True, env=env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def solo_runs(out: Path, tag: str, threads: str, runs: int, epochs: int) -> list[float]:
    """Each run's training wall time and the thread count it recorded."""
    walls = []
    for seed in range(runs):
        name = f"{tag.replace(' ', '').replace(',', '-').replace('=', '-')}-{seed}"
        regbench("train", f"seed={seed}", f"trainer.epochs={epochs}", f"trainer.threads={threads}",
                 "trainer.progress=none", f"out_dir={out}", f"name={name}")  # fmt: skip
        s = json.loads((out / name / "summary.json").read_text())
        walls.append(s["wall_seconds"])
    print(f"  {tag:<28} threads {s['threads']}  wall_seconds "
          + " ".join(f"{w:.2f}" for w in walls) + f"  (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    return walls


def ratios(label: str, walls: list[float], quiet: list[float]) -> None:
    r = [w / q for w, q in zip(walls, quiet, strict=True)]
    print(f"  {label:<28} ratio to quiet: median {statistics.median(r):.2f}x, worst {max(r):.2f}x "
          f"({' '.join(f'{x:.2f}' for x in r)})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, load average {os.getloadavg()} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print(f"1. {args.runs} solo runs of {args.epochs} epochs (regbench train, mlp on digits)")
        quiet = solo_runs(out, "quiet, torch default", str(cores), args.runs, args.epochs)
        busy = subprocess.Popen([sys.executable, "-c", BUSY])
        try:
            old = solo_runs(out, "busy beside, torch default", str(cores), args.runs, args.epochs)
            new = solo_runs(out, "busy beside, threads=auto", "auto", args.runs, args.epochs)
        finally:
            busy.kill()
            busy.wait()
        ratios("busy beside, torch default", old, quiet)
        ratios("busy beside, threads=auto", new, quiet)

        print(f"2. one sweep of the {args.runs} seeds, commands' wall time (threads=auto)")
        seeds = ",".join(map(str, range(args.runs)))
        common = [f"seed={seeds}", f"trainer.epochs={args.epochs}", "trainer.progress=none",
                  f"out_dir={out}"]  # fmt: skip
        seq = regbench("sweep", *common, "sweep_name=seq")
        par = regbench("sweep", *common, "sweep_name=par", "hydra/launcher=joblib",
                       "hydra.launcher.n_jobs=2")  # fmt: skip
        for tag in ("seq", "par"):  # the first runs pay a process's imports (torch, torch._dynamo)
            found = sorted((out / "sweeps" / tag).glob("*/summary.json"))
            walls = [json.loads(f.read_text())["wall_seconds"] for f in found]
            print(f"  {tag}: each run's wall_seconds " + " ".join(f"{w:.2f}" for w in walls))
        print(f"  sequential {seq:.1f} s, joblib n_jobs=2 {par:.1f} s: n_jobs=2 / sequential "
              f"{par / seq:.2f}x  (load {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
