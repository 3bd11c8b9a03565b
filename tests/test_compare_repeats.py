"""compare never counts a run twice nor falls back to Welch's test without a word (issue 40): a
seed run twice in a group (folders -s0 and -s0-1) is named in one warning line and counted once;
a comparison that cannot be paired by seed says why; a sweep listing a seed twice is refused."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, cli

TINY = ["trainer.epochs=2", "data.subset=200", "trainer.progress=none"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """none and l2 at seeds 0-2, and seed 0 of none trained once more into the same folder."""
    out = tmp_path_factory.mktemp("repeats")
    r = cli("sweep", "reg=none,l2", "seed=0,1,2", *TINY, f"out_dir={out}", "sweep_name=s")
    assert r.returncode == 0, r.stderr
    again = cli("train", "reg=none", "seed=0", *TINY, f"out_dir={out / 'sweeps' / 's'}")
    assert again.returncode == 0, again.stderr
    assert (out / "sweeps" / "s" / "mlp-none-adam-s0-1").is_dir()
    return out / "sweeps" / "s"


def _groups(stdout: str) -> dict[str, dict[str, str]]:
    return {row["reg"]: row for row in csv.DictReader(io.StringIO(stdout))}


def test_a_seed_run_twice_is_named_once_and_counted_once(sweep: Path) -> None:
    r = cli("compare", str(sweep), "--baseline", "reg=none", "--format", "csv")
    assert r.returncode == 0, r.stderr
    repeats = [line for line in r.stderr.splitlines() if "counts once" in line]
    assert len(repeats) == 1 and "mlp-none-adam-s0 and mlp-none-adam-s0-1" in repeats[0]
    groups = _groups(r.stdout)
    assert groups["none"]["n"] == "3" and groups["l2"]["pairs_or_runs"] == "3"
    assert "paired" in groups["l2"]["test"] and "not paired" not in r.stderr


def test_an_unpaired_comparison_says_why(sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "s"
    shutil.copytree(sweep, copy)
    shutil.rmtree(copy / "mlp-none-adam-s0-1")
    config = copy / "mlp-l2-adam-s1" / "config.yaml"
    config.write_text("\n".join(x for x in config.read_text().splitlines() if x != "seed: 1"))
    r = cli("compare", str(copy), "--baseline", "reg=none", "--format", "csv")
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if "not paired" in x]
    assert "l2 against none" in line and "mlp-l2-adam-s1's config.yaml has no integer seed" in line
    assert _groups(r.stdout)["l2"]["test"] == "welch" and "Welch's test instead" in line


def test_a_sweep_listing_a_seed_twice_is_refused(tmp_path: Path) -> None:
    r = cli("sweep", "reg=none", "seed=0,0,1", *TINY, f"out_dir={tmp_path}")
    assert "seed lists 0 twice" in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert not tmp_path.joinpath("sweeps").exists()
