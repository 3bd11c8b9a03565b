"""`regbench compare` decides: tie-aware tests on the test set's grid, verdicts, plans for δ and
the question's options, end to end through the command on hand-made run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sp
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from tests.runfolders import compare, make_run

N_TEST = 359  # digits with test_fraction 0.2: 20% of 1,797 images
BASE_K = [337, 335, 335, 330, 338, 327, 333, 335, 337, 332]


def folders(root: Path, arms: dict[str, list[int]]) -> Path:
    """none plus each arm, seed i holding BASE_K[i] + arms[reg][i] correct test images."""
    regs = {"none": {}, "dropout": {"p": 0.5}, "l2": {"lam": 1.0}, "aug": {"rotate": 10.0}}
    for reg, dk in {"none": [0] * len(BASE_K), **arms}.items():
        for seed, (k, d) in enumerate(zip(BASE_K, dk, strict=True)):
            make_run(root, f"{reg}-s{seed}", seed=seed, data="digits", reg={reg: regs[reg]},
                     test_acc=(k + d) / N_TEST, config_extra={"data.test_fraction": 0.2})  # fmt: skip
    return root


def rows(*args: str | Path) -> tuple[dict[str, dict], dict, str]:
    res = compare(*args, "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    return {g["reg"]: g for g in data["groups"]}, data, res.stderr


@pytest.mark.parametrize(
    ("test", "dk"),
    [
        ("wilcoxon", [2, -2, -1, 3, -1, -2, -2, 3, -2, 1]),
        ("bootstrap", [-1, -1, -1, -1, 1, 2, -2, 2, 1, -1]),
    ],
)
def test_wilcoxon_and_sign_flip_p_are_exact_on_the_counts(
    tmp_path: Path, test: str, dk: list[int]
) -> None:
    got, _, _ = rows(folders(tmp_path, {"l2": dk}), "--baseline", "reg=none", "--test", test)
    ka, kb = np.add(BASE_K, dk), np.array(BASE_K)
    if test == "wilcoxon":
        exact = sp.wilcoxon(ka - kb, method=sp.PermutationMethod(n_resamples=2**10)).pvalue
        assert exact == pytest.approx(0.9609375)  # on the floats scipy says 0.820
    else:
        exact = 1.0  # every one of the 1,024 sign flips is at least as far from 0
    assert got["l2"]["p"] == pytest.approx(exact)


ARMS = {  # correct images more than the baseline, per seed
    "dropout": [3, 4, 2, 5, 3, 4, 3, 2, 4, 3],  # about +1 point on every seed: better
    "aug": [-1, 0, 1, 0, -1, 0, 1, 0, 0, 0],  # within a fraction of a point: equivalent
    "l2": [9, -7, 4, -9, 2, 8, -6, -3, 5, -4],  # noisy around 0: undecided
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return folders(tmp_path_factory.mktemp("decide"), ARMS)


def test_verdicts_plans_and_question_in_json(study: Path) -> None:
    got, data, stderr = rows(study, "--baseline", "reg=none")
    assert data["question"] == {"delta": 0.005, "alpha": 0.05, "power": 0.8}
    assert {r: got[r]["verdict"] for r in got} == {
        "dropout": "better", "aug": "equivalent", "l2": "undecided", "none": None,
    }  # fmt: skip
    # the verdicts are Holm at α/2 over the paired t p-values and over the TOST p-values
    base = np.array(BASE_K) / N_TEST
    arms = {r: (np.array(BASE_K) + dk) / N_TEST for r, dk in ARMS.items()}
    p = [sp.ttest_rel(arms[r], base).pvalue for r in ARMS]
    q = [ttost_paired(arms[r], base, -0.005, 0.005)[0] for r in ARMS]
    assert [got[r]["p_tost"] for r in ARMS] == pytest.approx(q)
    assert [got[r]["p_tost_adj"] for r in ARMS] == pytest.approx(multipletests(q, method="holm")[1])
    assert list(multipletests(p, alpha=0.025, method="holm")[0]) == [True, False, False]
    assert list(multipletests(q, alpha=0.025, method="holm")[0]) == [False, True, False]
    # undecided l2: seeds planned to detect δ and to show equivalence, at α/(2m) = 0.05/6
    assert got["l2"]["seeds_detect"] > 10 and got["l2"]["seeds_equivalence"] > 10
    assert got["none"]["seeds_detect"] is None
    assert "warning: --delta 0.005 is below this test set's noise floor (2 SE = " in stderr


def test_verdict_column_and_summary_lines(study: Path) -> None:
    res = compare(study, "--baseline", "reg=none", "--summary", "--format", "md")
    assert res.exit_code == 0, res.output
    assert "| P(better) | verdict | seeds δ/±δ |" in res.stdout
    assert "| equivalent |" in res.stdout and "| undecided |" in res.stdout
    lines = [ln[2:] for ln in res.stdout.splitlines() if ln.startswith("- ")]
    assert lines[0].startswith("dropout: better than none: +0.92 points [")
    assert lines[1].startswith("aug: equivalent to none within ±0.5 points: ")
    assert lines[2].startswith("l2: undecided against none: ")
    assert "seeds per arm would detect a difference of 0.5 points" in lines[2]
    csv_out = compare(study, "--baseline", "reg=none", "--format", "csv", "--delta", "0.03").stdout
    assert "verdict" in csv_out.splitlines()[0] and "seeds_equivalence" in csv_out.splitlines()[0]


def test_delta_above_the_noise_floor_has_no_warning_and_widens_equivalence(study: Path) -> None:
    got, data, stderr = rows(study, "--baseline", "reg=none", "--delta", "0.03", "--power", "0.9")
    assert "warning" not in stderr and data["question"]["power"] == 0.9
    assert got["l2"]["verdict"] == "equivalent"  # ±3 points holds l2's noise


def test_metric_without_a_unit_has_no_default_delta(study: Path) -> None:
    got, data, _ = rows(study, "--baseline", "reg=none", "--metric", "test_loss")
    assert data["question"]["delta"] is None
    assert {got[r]["verdict"] for r in ARMS} <= {"undecided", "better", "worse"}
    assert got["l2"]["seeds_detect"] is None


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--delta", "-0.01"], "--delta must be a positive number"),
        (["--power", "1.5"], "--power must be between 0 and 1"),
    ],
)
def test_bad_question_options_are_one_error_line(
    study: Path, option: list[str], message: str
) -> None:
    res = compare(study, "--baseline", "reg=none", *option)
    assert res.exit_code == 2 and res.stderr.strip().startswith(f"error: {message}")
    assert len(res.stderr.strip().splitlines()) == 1
