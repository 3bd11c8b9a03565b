"""trainer.test_checkpoints: the best and the last weights tested apart, without changing what the
run itself tests (a solo run's live weights must survive loading best.pt)."""

from __future__ import annotations

import json

from tests.conftest import train_inprocess


def test_last_and_best_tested_apart_leave_the_tested_weights_alone(tmp_path):
    args = ("trainer.epochs=6", "reg=none")
    plain = json.loads((train_inprocess(tmp_path / "a", *args) / "summary.json").read_text())
    both = train_inprocess(tmp_path / "b", *args, "trainer.test_checkpoints=true")
    s = json.loads((both / "summary.json").read_text())
    assert "test_acc_last" not in plain and "test_acc_best" not in plain  # off by default
    assert s["tested"] == "last" and s["test_acc"] == plain["test_acc"]
    assert s["test_acc_last"] == s["test_acc"]
    assert s["test_acc_best"] is not None and 0 < s["test_acc_best"] <= 1
