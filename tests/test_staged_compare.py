"""`compare` on a staged sweep's folder agrees with the staged study (issue 37, item 4): an arm
stopped early is paired with its baseline on the seeds both ran, and the verdicts are the staged
ones from decisions.json with their stage, from the command and from Python alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from regbench import compare_runs
from tests.runfolders import compare, make_run

N_TEST = 359
REGS = {"none": {}, "aug": {"rotate": 10.0}, "l2": {"lam": 1.0}}


def staged_folder(root: Path) -> Path:
    """none and l2 ran 10 seeds, aug stopped worse at 5: aug is 8 images below none on every
    seed give or take one, with the baseline's seed-to-seed spread far wider than that."""
    base = 330 + np.array([0, 9, -7, 4, -3, 8, -6, 2, 5, -1])
    gaps = {"none": [0] * 10, "aug": [-8, -9, -7, -8, -8], "l2": [1, -1, 0, 2, -2, 1, 0, -1, 1, 0]}
    for reg, gap in gaps.items():
        for seed, g in enumerate(gap):
            make_run(root, f"mlp-{reg}-s{seed}", seed=seed, data="digits", reg={reg: REGS[reg]},
                     test_acc=(base[seed] + g) / N_TEST, config_extra={"data.test_fraction": 0.2})  # fmt: skip
    est = {"diff": 0.0, "se": 0.001}
    log = {
        "baseline": "reg=none", "metric": "test_acc", "stages": [5, 10],
        "question": {"delta": 0.005, "alpha": 0.05, "power": 0.8}, "spending": "pocock",
        "futility": 0.1, "bounds_diff": [3.0, 3.0], "bounds_equiv": [2.8, 2.8],
        "comparisons": {"reg=aug": "reg=none", "reg=l2": "reg=none"},
        "path": [
            {"stage": 1, "seeds": 5, "verdicts": {"reg=aug": "worse", "reg=l2": "open"},
             "estimates": {"reg=aug": est, "reg=l2": est}},
            {"stage": 2, "seeds": 10, "verdicts": {"reg=l2": "equivalent"},
             "estimates": {"reg=l2": est}},
        ],
        "verdicts": {"reg=aug": "worse", "reg=l2": "equivalent"},
        "decided_at": {"reg=aug": 5, "reg=l2": 10}, "runs": 25,
    }  # fmt: skip
    (root / "decisions.json").write_text(json.dumps(log))
    return root


def test_compare_pairs_on_common_seeds_and_shows_the_staged_verdicts(tmp_path: Path) -> None:
    root = staged_folder(tmp_path)
    res = compare(root, "--baseline", "reg=none", "--format", "json")
    assert res.exit_code == 0, res.output
    groups = {g["reg"]: g for g in json.loads(res.stdout)["groups"]}
    aug, l2 = groups["aug"], groups["l2"]
    # paired over seeds 0-4: the interval of 8 images ± 1, not Welch's over 5 and 10 runs
    assert aug["test"] == "paired t" and aug["pairs_or_runs"] == 5
    assert aug["delta_high"] - aug["delta_low"] < 4 / N_TEST
    assert (aug["verdict"], aug["staged_at"]) == ("worse", 5)
    assert (l2["verdict"], l2["staged_at"]) == ("equivalent", 10)
    assert "not paired by seed" not in res.stderr
    table = compare(root, "--baseline", "reg=none")
    assert "worse at 5" in table.stdout and "equivalent at 10" in table.stdout
    frames = compare_runs(root, baseline="reg=none")["comparisons"].set_index("reg")
    assert frames.loc["aug", "verdict"] == "worse" and frames.loc["aug", "staged_at"] == 5
    assert frames.loc["aug", "pairs_or_runs"] == 5


def test_another_baseline_gets_compares_own_verdicts(tmp_path: Path) -> None:
    """decisions.json answers reg=none; against reg=l2 its verdicts say nothing."""
    res = compare(staged_folder(tmp_path), "--baseline", "reg=l2", "--format", "json")
    assert res.exit_code == 0, res.output
    assert all("staged_at" not in g for g in json.loads(res.stdout)["groups"])
