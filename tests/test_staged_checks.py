"""A staged sweep never prints a wrong verdict without a word (issue 40): a baseline that is not one
arm of the grid is refused before any training, a changed question never rewrites decisions.json,
and --dry-run lists the first stage without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, cli

TINY = ["trainer.epochs=1", "data.subset=120", "trainer.progress=none"]


@pytest.mark.parametrize(
    ("grid", "baseline", "says"),
    [
        (["model=mlp", "model.hidden=[16],[32]"], "reg=none", "reg is not swept"),
        (["reg=none"], "reg=none", "nothing is swept"),
        (["reg=none"], "reg=l2", "nothing is swept"),
        (["reg=none,l2"], "reg=bogus", "'bogus' is not a value of reg"),
        (["reg=none,l2,none"], "reg=none", "reg lists none twice"),
    ],
)
def test_a_baseline_that_is_not_one_arm_of_the_grid_is_refused_before_training(
    grid: list[str], baseline: str, says: str, tmp_path: Path
) -> None:
    r = cli("sweep", *grid, *TINY, f"out_dir={tmp_path}", "--until-decided",
            "--baseline", baseline, "--delta", "0.05")  # fmt: skip
    assert says in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_dry_run_lists_the_first_stage_and_trains_nothing(tmp_path: Path) -> None:
    r = cli("sweep", "reg=none,l2", *TINY, f"out_dir={tmp_path}", "--until-decided",
            "--baseline", "reg=none", "--delta", "0.05", "--stage", "2", "--budget", "6",
            "--dry-run")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "stage 1 of 3: 4 runs (2 seeds for each of 2 arms)" in r.stdout
    assert "at most 12 runs" in r.stdout and "mlp-l2-adam-s1: pending" in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_changed_question_is_refused_and_decisions_json_kept(tmp_path: Path) -> None:
    args = ["sweep", "reg=none,l2", *TINY, f"out_dir={tmp_path}", "trainer.fuse=2",
            "--until-decided", "--baseline", "reg=none", "--delta", "0.05"]  # fmt: skip
    first = cli(*args, "--stage", "2", "--budget", "2")
    assert first.returncode == 0, first.stderr
    (decisions,) = tmp_path.glob("sweeps/*/decisions.json")
    before = decisions.read_bytes()
    for change, says in (
        (["--stage", "2", "--budget", "4"], "stages [2] there, [2, 4] here"),
        (["--stage", "2", "--budget", "2", "--delta", "0.5"], '"delta": 0.5'),
        (["--stage", "2", "--budget", "2", "--spending", "pocock"], "spending"),
    ):
        r = cli(*args, *change)
        line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
        assert "another question" in line and says in line and "sweep_name=" in line
        assert decisions.read_bytes() == before
    again = cli(*args, "--stage", "2", "--budget", "2")  # the same question: the same decisions
    assert again.returncode == 0, again.stderr
    assert decisions.read_bytes() == before
