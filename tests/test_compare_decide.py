"""`regbench compare` decides: tie-aware tests on the test set's grid, verdicts, plans for δ and
the question's options, end to end through the command on hand-made run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sp

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
