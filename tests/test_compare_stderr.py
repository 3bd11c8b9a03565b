"""What `regbench compare` prints on stderr: warnings meant for the user, never a library's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats as sps

from tests.conftest import cli
from tests.runfolders import make_run


@pytest.mark.parametrize("flat", ["baseline", "group"])
def test_a_zero_variance_arm_leaks_no_scipy_warning(tmp_path: Path, flat: str) -> None:
    """Issue 27: unmatched seeds (Welch) with one arm of equal values made scipy print
    `RuntimeWarning: Precision loss occurred in moment calculation`; Welch with one variance 0 is
    a one-sample t of the other arm against the flat arm's value, which the numbers must still be."""
    spread, same = [0.91, 0.93, 0.92], [0.9, 0.9, 0.9]
    arms = (
        {"none": same, "dropout": spread}
        if flat == "baseline"
        else {"none": spread, "dropout": same}
    )
    for i, (reg, accs) in enumerate(arms.items()):
        for s, acc in enumerate(accs):  # seeds 0-2 and 3-5: not paired
            regs = {reg: {"p": 0.5} if reg == "dropout" else {}}
            make_run(tmp_path, f"s/{reg}-s{3 * i + s}", seed=3 * i + s, reg=regs, test_acc=acc)
    res = cli(
        "compare",
        str(tmp_path / "s"),
        "--baseline",
        "reg=none",
        "--format",
        "json",
        "--delta",
        "0.02",
    )  # above the noise floor: no warning of its own
    assert res.returncode == 0, res.stderr
    assert "RuntimeWarning" not in res.stderr and res.stderr == ""
    (row,) = [g for g in json.loads(res.stdout)["groups"] if g["reg"] == "dropout"]
    assert row["test"] == "welch" and row["delta_note"] == ""
    one_sample = sps.ttest_1samp(spread, 0.9)
    ci = one_sample.confidence_interval(0.95)
    sign = 1 if flat == "baseline" else -1  # the delta is dropout - none
    expected = sorted([sign * (ci.low - 0.9), sign * (ci.high - 0.9)])
    assert [row["delta_low"], row["delta_high"]] == pytest.approx(expected)
    assert row["p"] == pytest.approx(one_sample.pvalue)


@pytest.mark.parametrize("mix", ["devices", "precision sweep"])
def test_runs_computed_in_different_arithmetic_are_one_warning(tmp_path: Path, mix: str) -> None:
    """trainer.device is bookkeeping, so a GPU baseline (bf16 under "auto") and CPU runs (fp32) of
    one config face each other: one warning line says so. A sweep over trainer.precision on one
    device is the user's own factor: no warning."""
    for i, reg in enumerate(("none", "l2")):
        for s in range(3):
            if mix == "devices":  # the baseline trained on a GPU box, l2 on a laptop
                device, precision = ("cuda:0", "auto") if reg == "none" else ("cpu", "auto")
            else:  # both on one CPU, the precision swept
                device, precision = "cpu", ("fp32", "bf16")[i]
            make_run(tmp_path, f"s/{reg}-{precision}-s{s}", seed=s, reg={reg: {}},
                     test_acc=0.9 + 0.01 * s + 0.002 * i, summary_extra={"device": device},
                     config_extra={"trainer.precision": precision})  # fmt: skip
    by = [] if mix == "devices" else ["--by", "trainer.precision"]
    res = cli("compare", str(tmp_path / "s"), *by, "--format", "json")
    assert res.returncode == 0, res.stderr
    if mix == "devices":
        assert res.stderr == (
            "warning: the runs computed in different arithmetic (3 on cpu in fp32, 3 on cuda in "
            "bf16): a difference between groups may be the hardware's; train them all with one "
            "trainer.device and trainer.precision\n"
        )
    else:
        assert res.stderr == ""
