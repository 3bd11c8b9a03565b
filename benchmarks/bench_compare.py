"""Time `regbench compare` on 1,000 synthetic run folders (target: under 2 s on 2 cores).

    python benchmarks/bench_compare.py [--runs 1000] [--epochs 30]

The baseline reads and parses the same files with yaml (C loader), json and csv and nothing
else, so `ratio` shows what discovery, grouping, statistics and rendering add on top.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from regbench.compare import compare_command  # noqa: E402

MODELS = ("mlp", "cnn", "vgg", "resnet", "cnn")
REGS = (
    {"none": {}},
    {"dropout": {"p": 0.5, "where": "classifier"}},
    {"l2": {"lam": 0.0005}},
    {"dropout": {"p": 0.3, "where": "classifier"}, "l2": {"lam": 0.0005}},
)
OPTIMS = ("sgd", "momentum", "adam", "adamw", "rmsprop")


def run_config(run: Path, seed: int, setting: int, epochs: int) -> dict:
    """A config.yaml as a run of an older regbench wrote it (compare reads it as such)."""
    model, reg = MODELS[setting % 5], REGS[(setting // 5) % 4]
    return {
        "seed": seed,
        "resume": False,
        "out_dir": str(run),
        "name": None,
        "sweep_name": "b",
        "data": {
            "name": "mnist",
            "root": "data",
            "download": False,
            "val_fraction": 0.1,
            "test_fraction": 0.1,
            "split_seed": 0,
            "subset": None,
        },
        "model": {"name": model, "width": 64, "depth": 3, "batch_norm": True},
        "reg": reg,
        "optim": {
            "name": OPTIMS[(setting // 20) % 5],
            "lr": 0.01 * (1 + setting // 100),
            "weight_decay": 0.0,
            "momentum": 0.9,
            "betas": [0.9, 0.999],
        },
        "sched": {"name": "cosine", "warmup_epochs": 0, "min_lr": 0.0},
        "init": {"name": "default"},
        "trainer": {
            "epochs": epochs,
            "batch_size": 128,
            "device": "cpu",
            "precision": "fp32",
            "deterministic": True,
            "patience": 5,
            "num_workers": 2,
            "log_every": 50,
            "grad_clip": None,
        },
    }


def run_summary(run: Path, seed: int, setting: int, epochs: int, acc: float) -> dict:
    return {
        "status": "completed" if seed else "early_stopped",
        "run_name": run.name,
        "best_epoch": epochs - 2,
        "best_val_acc": acc,
        "best_val_loss": 0.4,
        "test_acc": acc - 0.01,
        "test_loss": 0.45,
        "final_train_acc": acc + 0.05,
        "gen_gap": 0.05,
        "epochs_run": epochs,
        "wall_seconds": 100.0 + seed,
        "params": 10_000 * (1 + setting % 5),
        "device": "cpu",
        "torch_version": "2.5.1",
        "seed": seed,
        "error": None,
    }


def make_runs(root: Path, n_runs: int, epochs: int) -> None:
    """n_runs folders: model x reg x optim settings, 10 seeds each, in sweep sub-folders."""
    for i in range(n_runs):
        seed, setting = i % 10, i // 10
        run = root / "sweeps" / f"sweep{setting // 20}" / f"{MODELS[setting % 5]}-{setting}-s{seed}"
        run.mkdir(parents=True)
        config = run_config(run, seed, setting, epochs)
        (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        acc = 0.8 + 0.01 * (setting % 7) + 0.002 * seed
        summary = run_summary(run, seed, setting, epochs, acc)
        (run / "summary.json").write_text(json.dumps(summary))
        rows = ["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,samples_per_s"]
        rows += [
            f"{e},{1 / e:.5f},{acc * e / epochs:.5f},{1.1 / e:.5f},{acc * e / epochs:.5f},"
            f"0.01,3.2,15000.5"
            for e in range(1, epochs + 1)
        ]
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")


def read_only(root: Path) -> int:
    """Baseline: find the folders and parse their three files, nothing more."""
    count = 0
    for dirpath, _, files in os.walk(root):
        if "config.yaml" in files:
            d = Path(dirpath)
            with (d / "config.yaml").open("rb") as f:
                yaml.load(f, Loader=yaml.CSafeLoader)
            json.loads((d / "summary.json").read_bytes())
            with (d / "metrics.csv").open(newline="") as f:
                list(csv.reader(f))
            count += 1
    return count


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def silently(**kwargs: object) -> Callable[[], None]:
    """compare_command with stdout captured (the table/CSV is not what we time here)."""

    def call() -> None:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        try:
            compare_command(**kwargs)
        finally:
            sys.stdout.close()
            sys.stdout, sys.stderr = stdout, stderr

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "outputs"
        start = time.perf_counter()
        make_runs(root, args.runs, args.epochs)
        print(
            f"made {args.runs} run folders ({args.epochs} epochs) in "
            f"{time.perf_counter() - start:.1f}s"
        )
        assert read_only(root) == args.runs
        base = best_of(lambda: read_only(root), args.repeat)
        table = best_of(silently(paths=[root], format="table"), args.repeat)
        # paired t, Holm, P(better) with its bootstrap interval (default --reps) and seeds needed
        # for each of the 75 comparisons against reg=none
        delta = best_of(silently(paths=[root], format="csv", baseline="reg=none"), args.repeat)
        report = best_of(silently(paths=[root], out=Path(tmp) / "report"), 1)
        # End to end as a user runs it: fresh interpreter, imports included.
        cmd = (
            "import sys, typer; from regbench.compare import compare_command; "
            "app = typer.Typer(); app.command()(compare_command); app()"
        )
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", cmd, str(root), "--format", "csv", "--baseline", "reg=none"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        cold = time.perf_counter() - start
    print(f"{'baseline: parse files only':<40}{base:7.2f}s")
    for name, t in (
        ("compare (table)", table),
        ("compare --baseline reg=none (csv)", delta),
        ("compare --out (report + 3 PNGs)", report),
        ("fresh process, --baseline (with imports)", cold),
    ):
        print(f"{name:<40}{t:7.2f}s  ratio {t / base:4.1f}x baseline")
    print("target: < 2 s for 1,000 runs:", "OK" if max(table, delta, cold) < 2 else "SLOW")


if __name__ == "__main__":
    main()
