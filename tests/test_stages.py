"""`regbench sweep --until-decided` (issue 26): seeds in stages until each comparison is decided,
decisions.json per stage, the same decisions after a kill -9 and a rerun, compare shows the path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, cli, cli_cmd, cli_env

# aug (flip, rotation, ...) costs the digits mlp tens of points: decided as worse within 6 seeds
GRID = ["reg=none,aug", "trainer.epochs=3", "data.subset=300", "trainer.progress=none"]
STAGED = ["--until-decided", "--baseline", "reg=none", "--stage", "3", "--budget", "6"]


def _sweep_dir(out: Path) -> Path:
    (d,) = (out / "sweeps").iterdir()
    return d


def _decisions(out: Path) -> dict:
    return json.loads((_sweep_dir(out) / "decisions.json").read_text())


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("staged")
    return out, cli("sweep", *GRID, f"out_dir={out}", "trainer.fuse=3", *STAGED)


def test_a_staged_sweep_decides_and_records_each_stage(decided: tuple) -> None:
    out, r = decided
    assert r.returncode == 0, r.stderr
    log = _decisions(out)
    assert log["verdicts"] == {"reg=aug": "worse"} and log["stages"] == [3, 6]
    assert [step["verdicts"]["reg=aug"] for step in log["path"]][-1] == "worse"
    assert "stage 1 of 2 (3 seeds per arm):" in r.stdout and "reg=aug:" in r.stdout
    seeds = {p.name for p in _sweep_dir(out).iterdir() if p.is_dir() and not p.name.startswith(".")}
    n = log["decided_at"]["reg=aug"]
    assert seeds == {f"mlp-{reg}-adam-s{s}" for reg in ("none", "aug") for s in range(n)}
    assert log["runs"] == 2 * n


def test_compare_shows_the_verdicts_and_the_decision_path(decided: tuple, tmp_path: Path) -> None:
    out, _ = decided
    r = cli("compare", str(_sweep_dir(out)), "--baseline", "reg=none", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "staged decisions" in r.stdout and "worse" in r.stdout
    png = tmp_path / "decisions.png"
    assert png.stat().st_size > 10_000 and "decisions.png" in (tmp_path / "report.md").read_text()


def test_kill_in_stage_2_and_rerun_gives_the_same_decisions(decided: tuple, tmp_path: Path) -> None:
    args = ["sweep", *GRID, f"out_dir={tmp_path}", "trainer.fuse=3", *STAGED]
    proc = subprocess.Popen(cli_cmd(*args), cwd=REPO, env=cli_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while not list(tmp_path.glob("sweeps/*/mlp-none-adam-s3/last.pt")):  # stage 2 has begun
            assert proc.poll() is None, "the staged sweep ended before stage 2"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    stage1 = {p: p.stat().st_mtime_ns for p in _sweep_dir(tmp_path).glob("*-s[012]/summary.json")}
    assert len(stage1) == 6  # two arms, seeds 0-2
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    for p, stamp in stage1.items():  # not redone
        assert p.stat().st_mtime_ns == stamp
        assert (p.parent / "train.log").read_text().count("run folder ") == 1
    again, once = _decisions(tmp_path), _decisions(decided[0])
    for key in ("verdicts", "decided_at", "runs", "stages"):
        assert again[key] == once[key], key
    assert [s["estimates"] for s in again["path"]] == [s["estimates"] for s in once["path"]]


def test_an_arm_the_budget_cannot_decide_stops_before_the_budget(tmp_path: Path) -> None:
    """Dropout 0.02 against 0 moves 3-epoch runs by a few tenths of a point, seed noise by more;
    δ = 0.0001 cannot be shown equivalent: once the seeds left would decide it with a chance
    under 10%, the comparison stops undecided (measured: at 9 of 12 seeds, 18 runs, not 24)."""
    r = cli("sweep", "reg=dropout", "reg.dropout.p=0.0,0.02", *GRID[1:], f"out_dir={tmp_path}",
            "trainer.fuse=3", "--until-decided", "--baseline", "reg.dropout.p=0.0",
            "--delta", "0.0001", "--stage", "3", "--budget", "12")  # fmt: skip
    assert r.returncode == 0, r.stderr
    log, arm = _decisions(tmp_path), "reg.dropout.p=0.02"
    assert log["verdicts"] == {arm: "undecided"} and log["decided_at"][arm] < 12
    assert log["runs"] == 2 * log["decided_at"][arm] and log["futility"] == 0.1
    assert log["path"][-1]["estimates"][arm]["chance"] < 0.1
    assert "chance the budget decides it: stopped" in r.stdout


@pytest.mark.parametrize(
    "extra, says",
    [
        ([], "needs a baseline: --baseline"),
        (["--baseline", "reg=none", "seed=0,1"], "picks the seeds itself"),
        (["--baseline", "reg=dropout"], "--baseline reg=dropout: 'dropout' is not a value of reg"),
        (["--baseline", "reg=none", "--stage", "9", "--budget", "4"], "need 2 <= stage <= budget"),
        (
            ["--baseline", "reg=none", "--delta", "-1"],
            "'--delta' (-1.0): input should be greater than 0",
        ),
        (
            ["--baseline", "reg=none", "--futility", "1.5"],
            "'--futility' (1.5): input should be less than 1",
        ),
    ],
)
def test_a_bad_staged_sweep_is_one_line(extra: list[str], says: str, tmp_path: Path) -> None:
    r = cli("sweep", "reg=none,aug", f"out_dir={tmp_path}", "--until-decided", *extra)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and says in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and not (tmp_path / "sweeps").exists()


def test_the_question_block_of_a_study_is_read_and_checked(tmp_path: Path) -> None:
    study = tmp_path / "conf" / "study"
    study.mkdir(parents=True)
    (study / "q.yaml").write_text(
        "overrides:\n  reg: none,aug\nquestion:\n  baseline: reg=none\n  delta: 0.01\n  budget: 6\n"
        "  stage: 3\n  powr: 0.9\n"
    )
    r = cli("--config-dir", str(tmp_path / "conf"), "sweep", "study=q", "--until-decided",
            f"out_dir={tmp_path / 'out'}")  # fmt: skip
    assert r.returncode == 2 and "unknown key 'question.powr'" in r.stderr, r.stderr


def test_a_diverged_arm_ends_its_comparison_and_the_study_goes_on(tmp_path: Path) -> None:
    """SGD at lr 1e6 diverges on every seed: the comparison ends 'diverged' at the first stage,
    naming the seeds (a rerun skips diverged runs, so waiting for them would block for good);
    the other comparison goes on; the exit code says a run diverged; a rerun decides alike."""
    grid = ["optim=sgd", "optim.lr=0.05,1e6", "trainer.epochs=2", "data.subset=200",
            "trainer.progress=none", f"out_dir={tmp_path}"]  # fmt: skip
    args = ["sweep", *grid, "--until-decided", "--baseline", "optim.lr=0.05", "--stage", "3",
            "--budget", "6"]  # fmt: skip
    r = cli(*args)
    assert r.returncode == 1, r.stderr
    log, arm = _decisions(tmp_path), "optim.lr=1000000.0"  # the arm as Hydra reads 1e6
    assert log["verdicts"] == {arm: "diverged"} and log["decided_at"][arm] == 3
    assert log["path"][0]["estimates"][arm]["diverged"] == {arm: [0, 1, 2]}
    assert f"{arm}: diverged ({arm} seeds [0, 1, 2]" in r.stdout
    again = cli(*args)
    assert again.returncode == 1 and _decisions(tmp_path)["verdicts"] == log["verdicts"]
    shown = cli("compare", str(_sweep_dir(tmp_path)), "--baseline", "optim.lr=0.05")
    assert shown.returncode == 0, shown.stderr
    assert "diverged" in shown.stdout and "seeds [0, 1, 2]" in shown.stdout
