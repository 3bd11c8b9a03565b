"""Hand-made run folders with known numbers, as `regbench train` writes them, for the compare
tests: config.yaml, summary.json, metrics.csv, each from its own small writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml
from click.testing import Result
from typer.testing import CliRunner

from regbench.compare import compare_command


def run_config(rel: str, run: Path, seed: int, model: str, reg: dict | None, optim: str,
               lr: float, data: str, epochs: int, extra: dict | None) -> dict[str, Any]:  # fmt: skip
    """config.yaml's content; extra: dotted keys (data.split_seed=...) set on top."""
    config: dict[str, Any] = {
        "seed": seed,
        "resume": False,
        "out_dir": str(run),
        "name": rel,
        "sweep_name": "s",
        "data": {
            "name": data,
            "root": "/tmp/data",
            "download": True,
            "val_fraction": 0.1,
            "test_fraction": 0.1,
            "split_seed": 0,
            "subset": None,
        },
        "model": {"name": model, "width": 32},
        "reg": reg if reg is not None else {"none": {}},
        "optim": {"name": optim, "lr": lr},
        "sched": {"name": "none"},
        "init": {"name": "default"},
        "trainer": {
            "epochs": epochs,
            "batch_size": 64,
            "device": f"cuda:{seed}",
            "precision": "fp32",
            "deterministic": True,
        },
    }
    for key, value in (extra or {}).items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def metrics_csv(epochs: int, extra: dict[str, list[float]] | None) -> str:
    """metrics.csv: loss falling as 1/epoch, accuracy rising 0.1 an epoch; extra columns after."""
    extra = extra or {}
    lines = [",".join(["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,samples_per_s", *extra])]  # fmt: skip
    for e in range(1, epochs + 1):
        known = (
            f"{e},{1 / e:.3f},{0.5 + 0.1 * e:.2f},{1.1 / e:.3f},{0.45 + 0.1 * e:.2f},0.001,4.1,1000"
        )
        lines.append(",".join([known, *(str(v[e - 1]) for v in extra.values())]))
    return "\n".join(lines) + "\n"


def make_run(
    root: Path,
    rel: str,
    *,
    seed: int = 0,
    model: str = "cnn",
    reg: dict | None = None,
    optim: str = "adam",
    lr: float = 1e-3,
    data: str = "mnist",
    test_acc: float | None = 0.9,
    status: str = "completed",
    gen_gap: float = 0.05,
    best_epoch: int = 2,
    epochs: int = 3,
    test_loss: float = 0.3,
    epochs_run: int | None = None,
    summary_extra: dict | None = None,
    config_extra: dict | None = None,
    metrics_extra: dict[str, list[float]] | None = None,
) -> Path:
    """A run folder as `regbench train` writes it (extra keys: as newer versions write it)."""
    run = root / rel
    run.mkdir(parents=True)
    config = run_config(rel, run, seed, model, reg, optim, lr, data, epochs, config_extra)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    summary = {
        "status": status,
        "run_name": rel,
        "best_epoch": best_epoch,
        "best_val_acc": 0.88,
        "best_val_loss": 0.35,
        "test_acc": test_acc,
        "test_loss": test_loss,
        "final_train_acc": 0.95,
        "gen_gap": gen_gap,
        "epochs_run": epochs_run or epochs,
        "wall_seconds": 12.5,
        "params": 1234,
        "device": "cpu",
        "torch_version": "2.5",
        "seed": seed,
        "error": None,
        **(summary_extra or {}),
    }
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "metrics.csv").write_text(metrics_csv(epochs_run or epochs, metrics_extra))
    return run


def known_sweep(root: Path) -> Path:
    """cnn/mlp x none/dropout, 3 seeds each, with known test accuracies, below root/sweeps/a."""
    accs = {
        ("cnn", "none"): [0.90, 0.91, 0.92],
        ("cnn", "dropout"): [0.93, 0.95, 0.94],
        ("mlp", "none"): [0.80, 0.82, 0.84],
        ("mlp", "dropout"): [0.81, 0.82, 0.86],
    }
    for (model, reg), values in accs.items():
        for seed, acc in enumerate(values):
            regs = {"none": {}} if reg == "none" else {"dropout": {"p": 0.5}}
            make_run(root, f"sweeps/a/{model}-{reg}-s{seed}", seed=seed, model=model, reg=regs,
                     test_acc=acc, gen_gap=0.01 * (seed + 1))  # fmt: skip
    return root


def compare(*args: str | Path) -> Result:
    """`regbench compare` in this process, on a terminal wide enough not to wrap the table."""
    app = typer.Typer()
    app.command()(compare_command)
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
