"""`regbench sweep`: grids and studies through Hydra's multirun, sweep.json, failures and resume.

The tests drive the real command (a subprocess where jobs run) on tiny runs of the digits data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra.errors import MissingConfigException
from typer.testing import CliRunner

from regbench.cli import app
from regbench.compose import explain
from regbench.config import group_options

ROOT = Path(__file__).resolve().parent.parent
TINY = ["trainer.epochs=1", "data.subset=200", "model.hidden=[32]"]


def sweep(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}  # jobs in other processes import this checkout
    cmd = [sys.executable, "-m", "regbench", "sweep", *args, f"out_dir={out}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def index(out: Path) -> dict:
    (path,) = out.glob("sweeps/*/sweep.json")
    return json.loads(path.read_text())


def statuses(out: Path) -> dict[str, str]:
    return {r["name"]: r["status"] for r in index(out)["runs"]}


def test_dry_run_lists_the_grid_and_launches_nothing(tmp_path: Path) -> None:
    args = ["sweep", "model=mlp,cnn", "reg=none,dropout", "seed=0,1", "trainer.epochs=1"]
    res = CliRunner().invoke(app, [*args, f"out_dir={tmp_path}", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "8 runs, 0 already done, 8 to run" in res.output
    assert "cnn-dropout-adam-s1" in res.output
    assert "trainer.epochs" not in res.output  # common to every run: not in the folder names
    assert not (tmp_path / "sweeps").exists()


def test_dry_run_says_a_warning_many_runs_share_once(tmp_path: Path) -> None:
    args = ["sweep", "model=mlp,cnn", "reg=none,l2", "seed=0,1,2", f"out_dir={tmp_path}"]
    res = CliRunner().invoke(app, [*args, "--dry-run"])
    warned = [ln for ln in res.output.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "and 5 more runs: reg=l2 with optim=adam" in warned[0], warned


def test_study_is_expanded_and_the_users_overrides_win(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["sweep", "study=regularizers", "model=mlp", f"out_dir={tmp_path}", "--dry-run"]
    )
    assert res.exit_code == 0, res.output
    assert "27 runs, 0 already done" in res.output
    assert "mlp-labelsmooth-adam-s2" in res.output and "cnn-" not in res.output
    # a study changed by the user's overrides gets its own folder, not the study's
    assert "sweeps/regularizers-" in res.output.replace("\n", "")


@pytest.mark.parametrize(
    ("arg", "hint"),
    [
        ("study=nope", f"unknown study 'nope'; choose from: {', '.join(group_options('study'))}"),
        ("hydra/launcher=nope", "unknown hydra/launcher option 'nope'; choose from: basic, joblib"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(arg: str, hint: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["sweep", "seed=0,1", arg, f"out_dir={tmp_path}"])
    assert res.exit_code == 2
    assert res.output.strip().startswith(f"error: {hint}")
    assert len(res.output.strip().splitlines()) == 1


def test_a_plugin_from_a_missing_extra_names_the_extra() -> None:
    # dev installs every extra, so Hydra's own error for an absent plugin is built here, verbatim
    missing = MissingConfigException(
        "In 'hydra/config': Could not find 'hydra/launcher/ray'\n\n"
        "Available options in 'hydra/launcher':\n\tbasic\n\tjoblib"
    )
    assert explain(missing, ["hydra/launcher=ray"]) == (
        "hydra/launcher=ray needs the ray extra: pip install -e '.[ray]'"
    )


@pytest.mark.parametrize(
    "override",  # sbatch options the plugin lacks: an open mapping, extended with +
    [
        "hydra.launcher.additional_parameters.account=x",
        "hydra.launcher.additional_parameters={qos: x}",
    ],
)
def test_an_open_mapping_takes_new_keys_with_a_plus(override: str, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the slurm extra")
    args = ["sweep", "seed=0,1", "hydra/launcher=submitit_slurm", override, f"out_dir={tmp_path}"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    key = override.split("=", 1)[0]
    assert res.output.strip() == f"error: '{key}' is added, not overridden: write +{override}"


def test_joblib_grid_completes_and_a_rerun_redoes_nothing(tmp_path: Path) -> None:
    grid = ["model=mlp,cnn", "reg=none,dropout", "seed=0,1", *TINY[:2]]
    res = sweep(*grid, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", out=tmp_path)
    assert res.returncode == 0, res.stderr
    idx = index(tmp_path)
    assert idx["launcher"] == "joblib" and len(idx["runs"]) == 8
    assert set(statuses(tmp_path).values()) == {"completed"}
    for r in idx["runs"]:
        assert r["logs"]  # written by the job itself, in a joblib worker, under the index lock
        assert {"config.yaml", "metrics.csv", "summary.json", "last.pt"} <= {
            p.name for p in Path(r["dir"]).iterdir()
        }
    assert "model=cnn reg=dropout" in res.stdout  # the per-group table
    again = sweep(*grid, "--dry-run", out=tmp_path)
    assert "8 runs, 8 already done, 0 to run" in again.stdout


def test_an_optuna_search_draws_from_intervals(tmp_path: Path) -> None:
    """docs/sweeps.md's search, two trials: intervals (one log-scaled) are ranges to draw from."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the optuna extra")
    res = sweep("hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=0",
                "reg=[dropout,wd]", "reg.dropout.p=interval(0.0,0.7)",
                "reg.wd.weight_decay=tag(log,interval(1e-5,1e-2))", *TINY, out=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    runs = index(tmp_path)["runs"]
    assert len(runs) == 2 and set(statuses(tmp_path).values()) == {"completed"}
    for r in runs:
        cfg = yaml.safe_load((Path(r["dir"]) / "config.yaml").read_text())
        assert 0.0 <= cfg["reg"]["dropout"]["p"] <= 0.7
        assert 1e-5 <= cfg["reg"]["wd"]["weight_decay"] <= 1e-2


def test_submitit_local_runs_jobs_as_submitit_jobs(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the slurm extra")
    res = sweep("reg=none,dropout", *TINY, "hydra/launcher=submitit_local", out=tmp_path)
    assert res.returncode == 0, res.stderr
    assert set(statuses(tmp_path).values()) == {"completed"}
    for r in index(tmp_path)["runs"]:
        assert any("/.submitit/" in log and log.endswith("_log.out") for log in r["logs"])
        assert all(Path(log).exists() for log in r["logs"])


def test_a_diverging_run_does_not_stop_the_others(tmp_path: Path) -> None:
    # an invalid value stops the sweep before any run (tests/test_sweep_checks.py); a run that
    # fails while it trains is recorded and the others go on
    res = sweep("optim=sgd", "optim.lr=0.05,1e9", *TINY[1:], "trainer.epochs=2", out=tmp_path)
    assert res.returncode == 1
    by_lr = {n.rsplit("=", 1)[1]: s for n, s in statuses(tmp_path).items()}
    assert by_lr == {"0.05": "completed", "1000000000.0": "diverged"}
    assert "diverged: non-finite loss" in res.stderr


def _run_folder_lines(run_dir: Path) -> int:
    """How many times a run was started in this folder (train.log gets a line per start)."""
    return (run_dir / "train.log").read_text().count("run folder ")


def test_killed_sweep_reruns_only_what_is_unfinished(tmp_path: Path) -> None:
    args = ["reg=none,dropout", "seed=0,1", *TINY[1:], "trainer.epochs=3"]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "regbench", "sweep", *args, f"out_dir={tmp_path}"]
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:  # wait for two finished runs, then kill the sweep's whole process group
        while len(list(tmp_path.glob("sweeps/*/*/best.pt"))) < 2 or not any(
            '"completed"' in p.read_text() for p in tmp_path.glob("sweeps/*/*/summary.json")
        ):
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = {n: s for n, s in statuses(tmp_path).items() if s == "completed"}
    assert done  # the jobs themselves keep sweep.json current: the dead parent never refreshed it
    dirs = {r["name"]: Path(r["dir"]) for r in index(tmp_path)["runs"]}
    stamps = {n: (dirs[n] / "metrics.csv").stat().st_mtime_ns for n in done}

    res = sweep(*args, out=tmp_path)
    assert res.returncode == 0, res.stderr
    assert set(statuses(tmp_path).values()) == {"completed"} and len(dirs) == 4
    for n in done:  # finished runs were skipped, not redone
        assert (dirs[n] / "metrics.csv").stat().st_mtime_ns == stamps[n]
        assert _run_folder_lines(dirs[n]) == 1
        assert "already completed: skipped" in res.stdout


def test_two_sweeps_over_one_folder_never_run_a_job_twice(tmp_path: Path) -> None:
    args = ["reg=none,dropout,l2", *TINY]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "regbench", "sweep", *args, f"out_dir={tmp_path}"]
    procs = [
        subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for r in index(tmp_path)["runs"]:
        assert _run_folder_lines(Path(r["dir"])) == 1
        assert json.loads((Path(r["dir"]) / "summary.json").read_text())["status"] == "completed"
