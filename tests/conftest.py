"""Shared helpers: compose configs from conf/, run the real loop in-process or the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from regbench.config import CONF_DIR

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one worker per core (-n auto): one thread each, in this process and in the CLI processes it
    # starts (two 2-thread OpenMP pools on two cores ran 4x slower than one thread each: README)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FAST = ["trainer.progress=none", "data.subset=256"]


def make_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def train_inprocess(tmp: Path, *overrides: str) -> Path:
    """Run the real task function in this process (no interpreter start-up); return the run folder."""
    from regbench.solo import run

    cfg = make_cfg(f"out_dir={tmp}", *FAST, *overrides)
    before = set(tmp.iterdir()) if tmp.exists() else set()
    run(cfg)
    (new,) = set(tmp.iterdir()) - before
    return new


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real console entry point, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "regbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the original MNIST files (torchvision extracts next to them)."""
    src = SHARED / "MNIST" / "raw"
    if not src.is_dir() or len(list(src.glob("*.gz"))) < 4:
        pytest.skip(f"MNIST originals not present in {src}")
    root = tmp_path_factory.mktemp("datasets")
    shutil.copytree(src, root / "MNIST" / "raw")
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster tests first: mostly waiting on SLURM and Ray, they then overlap the rest of the
    suite on the other worker instead of running alone at its end."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is None)
