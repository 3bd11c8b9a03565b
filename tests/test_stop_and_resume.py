"""Resume and signals never leave a silently wrong state (issue 40): another run's last.pt is
refused, a resume with no last.pt says it starts afresh, and SIGTERM or Ctrl-C to a sweep (one
process, or joblib's) marks its runs interrupted and prints the line that continues it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, assert_one_line_error, cli, cli_cmd, cli_env, ctrl_c_works, summary

TINY = ["trainer.epochs=2", "data.subset=200", "trainer.progress=none"]


def _interrupted(run_dir: Path) -> None:
    """What a kill leaves: the run unfinished (its summary says so, as job.py writes it)."""
    (run_dir / "summary.json").write_text(json.dumps({"status": "interrupted", "error": "killed"}))


def test_a_last_pt_of_another_seed_is_refused(tmp_path: Path) -> None:
    for seed in (0, 1):
        assert cli("train", *TINY, f"seed={seed}", f"out_dir={tmp_path}").returncode == 0
    mine = tmp_path / "mlp-none-adam-s0"
    _interrupted(mine)
    shutil.copy(tmp_path / "mlp-none-adam-s1" / "last.pt", mine / "last.pt")
    r = cli("train", *TINY, "seed=0", f"out_dir={tmp_path}", "resume=true")
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert "holds another run" in line and "seed (0 here, 1 there)" in line and "delete it" in line


def test_a_resume_without_last_pt_says_it_starts_afresh(tmp_path: Path) -> None:
    assert cli("train", *TINY, f"out_dir={tmp_path}").returncode == 0
    run = tmp_path / "mlp-none-adam-s0"
    _interrupted(run)
    (run / "last.pt").unlink()
    r = cli("train", *TINY, f"out_dir={tmp_path}", "resume=true")
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if "no last.pt" in x]
    assert "resume=true" in line and "starts at epoch 1" in line
    assert summary(run)["status"] == "completed" and summary(run)["epochs_run"] == 2


SWEEP = ["sweep", "reg=none", "seed=0,1", "trainer.epochs=300", "data.subset=200",
         "trainer.progress=none"]  # fmt: skip
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.parametrize(
    ("launcher", "sig", "group", "code"),
    [
        ([], signal.SIGTERM, False, 143),  # one process: kill, systemd, a scheduler
        (JOBLIB, signal.SIGTERM, True, 143),  # the whole process group: Docker, a terminal closed
        (JOBLIB, signal.SIGINT, False, 130),  # Ctrl-C to the sweep's own process alone
    ],
    ids=["sequential-sigterm", "joblib-group-sigterm", "joblib-main-sigint"],
)
def test_a_stopped_sweep_is_interrupted_and_says_how_to_continue(
    tmp_path: Path, launcher: list[str], sig: signal.Signals, group: bool, code: int
) -> None:
    args = [*SWEEP, *launcher, f"out_dir={tmp_path}"]
    p = subprocess.Popen(cli_cmd(*args), cwd=REPO, env=cli_env(), text=True, start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_works)  # fmt: skip
    started = 1 if not launcher else 2
    while len(list(tmp_path.glob("sweeps/*/*/last.pt"))) < started:
        assert p.poll() is None, p.communicate()
        time.sleep(0.1)
    os.killpg(p.pid, sig) if group else p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("interrupted: ")]
    assert line == f"interrupted: continue with {shlex.join(['regbench', *args])}"
    (sweep,) = (tmp_path / "sweeps").iterdir()
    index = {r["name"]: r["status"] for r in json.loads((sweep / "sweep.json").read_text())["runs"]}
    stopped = [f"mlp-none-adam-s{s}" for s in range(started)]
    assert [index[n] for n in stopped] == ["interrupted"] * started, index
    assert [summary(sweep / n)["status"] for n in stopped] == ["interrupted"] * started
    assert "running" not in index.values()
