"""aux=parity / gt4 / coarse / reconstruct (issue 38): an auxiliary head on the shared trunk. The
fused member = solo run check is test_fuse's DETERMINISTIC table."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from regbench import models, multitask
from regbench.run.job import run
from tests.conftest import assert_one_line_error, cli_inprocess, make_cfg, summary

SMALL = ["trainer.progress=none", "trainer.epochs=3", "model.hidden=[64]"]


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_the_auxiliary_task_is_logged_beside_the_main_one(tmp_path: Path) -> None:
    run(make_cfg(*SMALL, "aux=parity", f"out_dir={tmp_path}", "name=parity"))
    run(make_cfg(*SMALL, "aux=reconstruct", f"out_dir={tmp_path}", "name=rec"))
    run(make_cfg(*SMALL, f"out_dir={tmp_path}", "name=plain"))
    rows = metrics(tmp_path / "parity")
    assert float(rows[-1]["aux_val_acc"]) > 0.6  # parity is learnt (chance: 0.5)
    assert float(rows[-1]["aux_val_loss"]) < float(rows[0]["aux_val_loss"])
    rec = metrics(tmp_path / "rec")
    assert "aux_val_acc" not in rec[0] and math.isfinite(float(rec[-1]["aux_val_loss"]))
    assert "aux_val_loss" not in metrics(tmp_path / "plain")[0]
    for name in ("parity", "rec"):  # the main task's test accuracy is what compare reads
        s = summary(tmp_path / name)
        assert 0.5 < s["test_acc"] <= 1 and not any(k.startswith("aux") for k in s)


def test_the_main_weights_start_as_without_the_auxiliary_head() -> None:
    plain = models.build(make_cfg("seed=4"), (1, 8, 8), 10).state_dict()
    for aux in ("parity", "reconstruct"):
        state = models.build(make_cfg("seed=4", f"aux={aux}"), (1, 8, 8), 10).state_dict()
        assert all(torch.equal(state[k], v) for k, v in plain.items())
        assert any(k.startswith("aux.") for k in state)


def test_auxiliary_labels_come_from_the_datasets_own_classes() -> None:
    y = torch.tensor([0, 1, 2, 3, 4])
    sub = make_cfg("aux=parity", "data.classes=[5,6,7,8,9]")
    assert multitask.targets(sub, y).tolist() == [1, 0, 1, 0, 1]
    assert multitask.targets(make_cfg("aux=gt4"), torch.tensor([4, 5])).tolist() == [0, 1]
    fashion = make_cfg("data=fashion_mnist", "aux=coarse")
    assert multitask.targets(fashion, torch.tensor([0, 1, 5, 8])).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["aux=coarse"], "aux=coarse is not available for digits"),
        (["data=fashion_mnist", "aux=parity"], "aux=parity is not available for fashion_mnist"),
        (["aux=none", "+aux.weight=1"], "aux=none has no auxiliary head"),
        (["aux=gt4", "aux.weight=-1"], "'aux.weight'"),
        (["aux=sentiment"], "sentiment"),
    ],
)
def test_bad_auxiliary_tasks_are_one_line(
    overrides: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli_inprocess("train", *overrides, f"out_dir={tmp_path / 'o'}", monkeypatch=monkeypatch)
    assert says in assert_one_line_error(*r)
    assert not (tmp_path / "o").exists()
