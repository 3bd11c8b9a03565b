"""trainer.threads: torch's thread count from the cores a run may use (issue 41, item 4)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from regbench.run import threads
from tests.conftest import assert_one_line_error, cli, summary, train_inprocess

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


@pytest.fixture
def two_quiet_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A process allowed on 2 cores, nothing else running, no thread limit in its environment."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.00 0.00 0.00 1/100 1\n")  # only this process runnable
    monkeypatch.setattr(threads, "LOADAVG", loadavg)
    return loadavg


def test_auto_uses_the_cores_it_may(two_quiet_cores: Path) -> None:
    assert threads.choose("auto") == 2


def test_auto_leaves_a_core_another_process_keeps_busy(two_quiet_cores: Path) -> None:
    two_quiet_cores.write_text("1.00 1.00 1.00 2/100 1\n")  # this process and one busy one
    assert threads.choose("auto") == 1
    two_quiet_cores.write_text("9.00 9.00 9.00 9/100 1\n")  # never fewer than one
    assert threads.choose("auto") == 1


@pytest.mark.parametrize(("n_jobs", "expected"), [(2, 1), (1, 2), (-1, 1)])
def test_auto_shares_the_cores_among_joblib_workers(
    two_quiet_cores: Path, monkeypatch: pytest.MonkeyPatch, n_jobs: int, expected: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    launcher = SimpleNamespace(_target_=JOBLIB, n_jobs=n_jobs)
    assert threads.choose("auto", launcher) == expected


def test_auto_keeps_to_slurm_and_omp_limits(
    two_quiet_cores: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert threads.choose("auto") == 1
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose("auto") == 1


def test_a_number_is_used_as_given(two_quiet_cores: Path) -> None:
    assert threads.choose(3) == 3


def test_the_count_is_in_summary_json(tmp_path: Path) -> None:
    run_dir = train_inprocess(tmp_path, "trainer.epochs=1", "trainer.threads=1")
    assert summary(run_dir)["threads"] == 1


@pytest.mark.parametrize(
    ("value", "says"), [("0", "greater than 0"), ("many", "'auto' or a valid integer")]
)
def test_a_bad_thread_count_is_one_line(tmp_path: Path, value: str, says: str) -> None:
    r = cli("train", f"trainer.threads={value}", f"out_dir={tmp_path}")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "trainer.threads" in line and says in line
    assert not any(tmp_path.iterdir())
