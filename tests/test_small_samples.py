"""compare's tests at few seeds (issue 37, items 3 and 5): Wilcoxon's p with ties and zeros is
exact or continuity-corrected, a signed-rank test that cannot reach significance says so, and a
bootstrap interval that under-covers at this n says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sp

from regbench.stats import inference
from tests.runfolders import compare, make_run

N_TEST = 359


def test_wilcoxon_with_zeros_and_ties_is_exact() -> None:
    """6 seeds alike and 8 one image better (14 pairs): every non-zero sign is +, so the exact
    p is 2/2^8 = 0.0078; scipy's uncorrected normal approximation said 0.0047, below a Holm
    first step of 0.00625 that the exact value is above."""
    b = np.arange(330, 344) / N_TEST
    a = b + np.r_[np.zeros(6), np.ones(8)] / N_TEST
    c = inference.paired(a, b, "wilcoxon", 0.95, 999, 0, grid=N_TEST)
    assert c.p == pytest.approx(2 / 2**8)
    # beyond 13 non-zero differences with ties: the continuity-corrected approximation
    d = np.r_[np.ones(10), 2 * np.ones(6), -np.ones(2)]
    assert inference.signed_rank_p(d) == pytest.approx(sp.wilcoxon(d, correction=True).pvalue)
    assert inference.signed_rank_p(np.zeros(5)) == 1.0


def study(root: Path, seeds: int, arms: int) -> Path:
    """none and `arms` regularizers, each 3 images better than none on every seed, give or take."""
    regs = [("none", {}), ("dropout", {"p": 0.5}), ("l2", {"lam": 1.0}), ("aug", {"rotate": 10.0})]
    rng = np.random.default_rng(0)
    for reg, params in regs[: arms + 1]:
        for seed in range(seeds):
            k = 330 + seed % 7 + (0 if reg == "none" else 3 + int(rng.integers(0, 3)))
            make_run(root, f"{reg}-s{seed}", seed=seed, data="digits", reg={reg: params},
                     test_acc=k / N_TEST, config_extra={"data.test_fraction": 0.2})  # fmt: skip
    return root


def test_wilcoxon_says_when_it_cannot_find_a_difference(tmp_path: Path) -> None:
    """3 comparisons at 6 seeds: the smallest signed-rank p, 2/64 = 0.031, is above α/(2m) =
    0.0083, so no arm can be better whatever the data: one warning line says so; the t test
    at the same seeds gets no such line."""
    root = study(tmp_path, seeds=6, arms=3)
    res = compare(root, "--baseline", "reg=none", "--test", "wilcoxon")
    assert res.exit_code == 0, res.output
    lines = [w for w in res.stderr.splitlines() if "--test wilcoxon cannot" in w]
    assert len(lines) == 1 and "6 pairs" in lines[0] and "0.0312" in lines[0]
    assert "needs 8 seeds" in lines[0]  # 2/2^8 = 0.0078
    res = compare(root, "--baseline", "reg=none")
    assert "cannot find" not in res.stderr


def test_bootstrap_says_when_its_interval_under_covers(tmp_path: Path) -> None:
    root = study(tmp_path, seeds=5, arms=1)
    res = compare(root, "--baseline", "reg=none", "--test", "bootstrap", "--reps", "999")
    assert res.exit_code == 0, res.output
    assert sum("--test bootstrap: 5 pairs" in w for w in res.stderr.splitlines()) == 1


@pytest.mark.parametrize(("n", "covers"), [(5, False), (inference.BOOTSTRAP_PAIRS, True)])
def test_bootstrap_coverage_holds_from_the_warned_n(n: int, covers: bool) -> None:
    """4,000 normal samples: the percentile interval of a 95 % level covers the mean 0.84 of the
    time at 5 pairs, and within a point of 95 % (2 MC SE) from BOOTSTRAP_PAIRS on."""
    x = np.random.default_rng(3).normal(0, 1, (4000, n))
    ci = sp.bootstrap(
        (x,), np.mean, axis=-1, n_resamples=999, method="percentile", rng=1, vectorized=True
    ).confidence_interval
    coverage = np.mean((ci.low <= 0) & (ci.high >= 0))
    assert (coverage >= 0.94 - 2 * np.sqrt(0.95 * 0.05 / 4000)) == covers
