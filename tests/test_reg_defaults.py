"""Each regularizer's default measurably regularizes the default setup (MLP, digits, Adam, 20 epochs).

The effect is measured on the weights each run is tested with (last.pt; best.pt with early
stopping): their norm must move away from `none`'s by more than the seed-to-seed noise. Early
stopping is measured by what it does: it stops before the last epoch.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from regbench.config import group_options
from regbench.run import checkpoint
from regbench.run.job import run
from tests.conftest import make_cfg, summary

SEEDS = (0, 1)
NOISE_SEEDS = (0, 1, 2)  # none's spread over seeds: the yardstick


def _train(out: Path, reg: str, seed: int) -> Path:
    cfg = make_cfg(f"reg={reg}", f"seed={seed}", f"out_dir={out}", "trainer.progress=none")
    run(cfg)
    return out / f"mlp-{reg}-adam-s{seed}"


def _tested_weight_norm(run_dir: Path, reg: str) -> float:
    state = checkpoint.load(run_dir / ("best.pt" if reg == "earlystop" else "last.pt"))
    return sum(float((w.float() ** 2).sum()) for w in state["model"].values() if w.ndim >= 2) ** 0.5


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[float, float]:
    out = tmp_path_factory.mktemp("none")
    norms = [_tested_weight_norm(_train(out, "none", s), "none") for s in NOISE_SEEDS]
    return statistics.fmean(norms), statistics.stdev(norms)


@pytest.mark.parametrize("reg", [r for r in group_options("reg") if r not in ("none", "earlystop")])
def test_default_moves_the_weight_norm_beyond_seed_noise(
    reg: str, baseline: tuple[float, float], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mean_none, sd_none = baseline
    norms = [_tested_weight_norm(_train(tmp_path, reg, s), reg) for s in SEEDS]
    capsys.readouterr()
    shift = abs(statistics.fmean(norms) - mean_none)
    assert shift > 5 * sd_none and shift > 0.01 * mean_none, (reg, norms, baseline)


def test_earlystop_default_stops_the_default_run_early(tmp_path: Path) -> None:
    epochs = make_cfg().trainer.epochs
    for seed in SEEDS:
        s = summary(_train(tmp_path, "earlystop", seed))
        assert s["status"] == "early_stopped" and s["epochs_run"] < epochs, s
