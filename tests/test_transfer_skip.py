"""A transfer run whose source run failed or diverged (issue 38): a sweep skips it with one line,
makes no run folder for it, records it nowhere as a failed run, and trains the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regbench.run.job import run
from tests.conftest import cli, make_cfg, summary

SMALL = ["trainer.progress=none", "trainer.epochs=2", "model.hidden=[32,16]"]
A, B = "data.classes=[0,1,2,3,4]", "data.classes=[5,6,7,8,9]"


def test_a_transfer_run_whose_source_diverged_is_skipped_and_the_sweep_goes_on(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    run(make_cfg(*SMALL, A, "seed=0", f"out_dir={src}"))
    with pytest.raises(SystemExit):  # regbench train's exit code for a diverged run
        run(make_cfg(*SMALL, A, "seed=1", "optim=sgd", "optim.lr=1e6", f"out_dir={src}"))
    diverged = src / "mlp-none-sgd-s1"
    assert summary(diverged)["status"] == "diverged"
    args = ["sweep", *SMALL, B, "transfer=finetune", f"transfer.source={src}", "seed=0,1"]
    r = cli(*args, f"out_dir={tmp_path / 'o'}", "sweep_name=t", cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # not every run of the sweep was made
    assert "Traceback" not in r.stderr and "error:" not in r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("skipped:")]
    assert said and all(f"transfer source {diverged} is diverged" in line for line in said)
    sweep = tmp_path / "o" / "sweeps" / "t"
    runs = {p.name: p for p in sweep.iterdir() if p.is_dir()}
    assert len(runs) == 1  # seed 0's run; none for seed 1
    (done,) = runs.values()
    assert summary(done)["status"] == "completed" and summary(done)["seed"] == 0
    index = {e["name"]: e["status"] for e in json.loads((sweep / "sweep.json").read_text())["runs"]}
    assert sorted(index.values()) == ["completed", "skipped"]
