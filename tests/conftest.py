"""Shared helpers: compose configs from conf/, run the real loop in-process or the real CLI, read
what a run folder holds, check a one-line error."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from typer.testing import CliRunner

from regbench.config import CONF_DIR

# The suite tests the CPU path (fp32, results compared to the last digit); on a GPU machine
# trainer.device=auto would take CUDA and bf16. benchmarks/gpu_check.sh checks the CUDA path.
os.environ["CUDA_VISIBLE_DEVICES"] = ""

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one worker per core (-n auto): one thread each, in this process and in the CLI processes it
    # starts (two 2-thread OpenMP pools on two cores ran 4x slower than one thread each: README)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
# the datasets beside the checkout, or where REGBENCH_TEST_DATASETS says (a worktree elsewhere)
SHARED = Path(os.environ.get("REGBENCH_TEST_DATASETS") or REPO.parent / "shared" / "datasets")
FAST = ["trainer.progress=none", "data.subset=256"]
TIMING_COLUMNS = ("seconds", "samples_per_s")  # wall-clock: differs between any two runs
TIMING_FIELDS = ("wall_seconds",)


def make_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def train_inprocess(tmp: Path, *overrides: str) -> Path:
    """Run the real task function in this process (no interpreter start-up); return the run folder."""
    from regbench.run.job import run

    cfg = make_cfg(f"out_dir={tmp}", *FAST, *overrides)
    before = set(tmp.iterdir()) if tmp.exists() else set()
    run(cfg)
    (new,) = set(tmp.iterdir()) - before
    return new


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "regbench", *args]


def cli_env() -> dict[str, str]:
    # this checkout's regbench, whatever an installed (editable) copy points to
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}


def ctrl_c_works() -> None:
    """Popen's preexec_fn for a child that a test Ctrl-Cs: a suite started in the background of a
    shell (`.ci/run &`) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real console entry point, as a user runs it."""
    return subprocess.run(
        cli_cmd(*args), capture_output=True, text=True, cwd=cwd, env=cli_env(), timeout=timeout
    )


def cli_inprocess(*args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int | None, str, str]:
    """The Typer app in this process (no interpreter start-up): exit code, stdout, stderr."""
    from regbench.cli import app
    from regbench.config import USER_CONF_ENV

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    # --config-dir names the user folder in this process's environment: undone after the test
    monkeypatch.setenv(
        USER_CONF_ENV, os.environ.get(USER_CONF_ENV, "")
    )  # `train` hands its overrides to Hydra there
    r = CliRunner().invoke(app, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def assert_one_line_error(code: int | None, stdout: str, stderr: str) -> str:
    """Exit code 2, stderr exactly one `error:` line, no traceback anywhere; returns the line."""
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0][7:].strip(), stderr
    return lines[0]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def summary_untimed(run_dir: Path) -> dict:
    s = summary(run_dir)
    for key in TIMING_FIELDS:
        s.pop(key)
    return s


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv as written (strings, compared exactly), without the timing columns."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for col in TIMING_COLUMNS:
            row.pop(col)
    return rows


def truncate(path: Path) -> None:
    """Cut a file to half its length: what a copy or a write stopped midway leaves."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path (hidden files and the lock included)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the original MNIST files (torchvision extracts next to them)."""
    src = SHARED / "MNIST" / "raw"
    if not src.is_dir() or len(list(src.glob("*.gz"))) < 4:
        pytest.skip(f"MNIST originals not present in {src}")
    root = tmp_path_factory.mktemp("datasets")
    shutil.copytree(src, root / "MNIST" / "raw")
    return root


@pytest.fixture(scope="session")
def mnist_gz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine copy of the MNIST .gz originals (no extracted or cached files beside them);
    tests copy it again before damaging anything."""
    src = SHARED / "MNIST" / "raw"
    if len(list(src.glob("*.gz"))) < 4:
        pytest.skip(f"MNIST originals not present in {src}")
    dst = tmp_path_factory.mktemp("mnist-gz") / "MNIST" / "raw"
    dst.mkdir(parents=True)
    for gz in src.glob("*.gz"):
        shutil.copy(gz, dst)
    return dst.parent.parent


@pytest.fixture
def known_sweep(tmp_path: Path) -> Path:
    """cnn/mlp x none/dropout, 3 seeds each, hand-made with known test accuracies (compare's tests)."""
    from tests.runfolders import known_sweep

    return known_sweep(tmp_path)


@pytest.fixture(scope="module")
def existing_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An out_dir holding one finished run: the bad-input tests must leave it byte-identical."""
    from regbench.run.job import run

    out = tmp_path_factory.mktemp("existing") / "out"
    run(make_cfg("name=existing", "trainer.epochs=1", "trainer.progress=none", f"out_dir={out}"))
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster tests first: mostly waiting on SLURM and Ray, they then overlap the rest of the
    suite on the other worker instead of running alone at its end."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is None)
