"""compare's statistics against scipy / statsmodels called directly, and against definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sp
from statsmodels.stats.multitest import multipletests

from regbench.stats import inference as stats

# test accuracies of 8 seeds: a regularizer (A) and its baseline (B), seed i in position i
A = np.array([0.951, 0.962, 0.948, 0.957, 0.966, 0.953, 0.959, 0.961])
B = np.array([0.944, 0.958, 0.946, 0.949, 0.957, 0.951, 0.950, 0.955])


def test_paired_t_interval_p_and_rho_are_scipys() -> None:
    c = stats.paired(A, B, "t", 0.95, 1000, 0)
    ref = sp.ttest_rel(A, B)
    low, high = ref.confidence_interval(0.95)
    assert (c.test, c.n, c.diff) == ("paired t", 8, pytest.approx(np.mean(A - B)))
    assert (c.low, c.high, c.p) == (
        pytest.approx(low),
        pytest.approx(high),
        pytest.approx(ref.pvalue),
    )
    # by hand: mean(d) ± t_{0.975, 7} sd(d) / sqrt(8)
    d = A - B
    half = sp.t.ppf(0.975, 7) * np.std(d, ddof=1) / math.sqrt(8)
    assert (c.low, c.high) == (pytest.approx(d.mean() - half), pytest.approx(d.mean() + half))
    assert c.rho == pytest.approx(np.corrcoef(A, B)[0, 1])


def test_wilcoxon_p_is_the_signed_rank_test_of_the_differences() -> None:
    c = stats.paired(A, B, "wilcoxon", 0.95, 1000, 0)
    assert c.test == "wilcoxon"
    assert c.p == pytest.approx(sp.wilcoxon(A - B).pvalue)
    # all 8 differences positive: the exact two-sided p is 2 / 2^8
    assert c.p == pytest.approx(2 / 2**8)


def test_bootstrap_interval_with_a_fixed_seed_and_exact_sign_flip_p() -> None:
    c = stats.paired(A, B, "bootstrap", 0.95, 4000, 7)
    rng = np.random.default_rng(7)
    ref = sp.bootstrap((A - B,), np.mean, n_resamples=4000, method="percentile", rng=rng)
    assert (c.low, c.high) == (
        pytest.approx(ref.confidence_interval.low),
        pytest.approx(ref.confidence_interval.high),
    )
    assert c.low < np.mean(A - B) < c.high
    # 2^8 = 256 sign flips <= 4000 resamples: the permutation test is exact; enumerate it here
    d = A - B
    flips = np.array([np.mean(d * s) for s in itertools.product((1, -1), repeat=8)])
    tail = min(np.mean(flips >= d.mean() - 1e-12), np.mean(flips <= d.mean() + 1e-12))
    assert c.p == pytest.approx(min(1.0, 2 * tail))
    assert stats.paired(A, B, "bootstrap", 0.95, 4000, 7) == c  # same seed, same numbers


def test_welch_is_scipys_unequal_variance_t() -> None:
    a, b = np.array([0.80, 0.82, 0.81, 0.85, 0.83]), np.array([0.70, 0.74, 0.69])
    c = stats.welch(a, b, 0.95)
    ref = sp.ttest_ind(a, b, equal_var=False)
    assert (c.low, c.high) == tuple(pytest.approx(v) for v in ref.confidence_interval(0.95))
    assert c.p == pytest.approx(ref.pvalue) and c.test == "welch" and c.rho is None
    # Welch–Satterthwaite degrees of freedom, from the formula
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 2)
    half = sp.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert c.high - c.low == pytest.approx(2 * half)


def test_no_interval_below_two_values_or_without_spread() -> None:
    assert stats.welch(np.array([0.9]), np.array([0.8, 0.85]), 0.95).note == "n<2"
    flat = stats.welch(np.array([0.9, 0.9]), np.array([0.8, 0.8]), 0.95)
    assert (flat.note, flat.low, flat.p) == ("no spread", None, None)
    same_gap = stats.paired(B + 0.01, B, "t", 0.95, 1000, 0)  # every seed gains exactly 0.01
    assert same_gap.note == "no spread" and same_gap.p is None
    assert same_gap.diff == pytest.approx(0.01)
    # accuracies are k / n_test: equal gains differ by ~1e-17 in floating point, still no spread
    a, b = np.array([331, 334, 336]) / 359, np.array([329, 332, 334]) / 359
    assert np.ptp(a - b) > 0
    assert stats.paired(a, b, "t", 0.95, 1000, 0).note == "no spread"


def test_holm_and_bh_adjustments() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.20])
    holm = stats.adjust(p, "holm")
    assert holm == pytest.approx(multipletests(p, method="holm")[1])
    # Holm by its definition: step-down, (m - i) p_(i), running maximum, capped at 1
    order = np.argsort(p)
    steps = np.maximum.accumulate([(len(p) - i) * p[j] for i, j in enumerate(order)])
    expected = np.empty_like(p)
    expected[order] = np.minimum(steps, 1)
    assert holm == pytest.approx(expected)
    assert stats.adjust(p, "bh") == pytest.approx(sp.false_discovery_control(p, method="bh"))
    assert stats.adjust(p, "none") == pytest.approx(p)


def test_probability_of_beating_the_baseline() -> None:
    a, b = A.copy(), B.copy()
    a[0] = b[0] = 0.95  # a tie counts one half
    point, low, high = stats.prob_better(a, b, True, 0.95, 2000, 3)
    assert point == pytest.approx((7 + 0.5) / 8)
    ref = sp.bootstrap(
        (a, b),
        lambda x, y, axis: np.mean((x > y) + 0.5 * (x == y), axis=axis),
        paired=True,
        n_resamples=2000,
        method="percentile",
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert (low, high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    # unpaired: Mann–Whitney's U over all n_a x n_b pairs
    x, y = np.array([0.91, 0.93, 0.92, 0.95]), np.array([0.90, 0.92, 0.94])
    point, low, high = stats.prob_better(x, y, False, 0.95, 2000, 3)
    assert point == pytest.approx(sp.mannwhitneyu(x, y).statistic / 12)
    assert 0 <= low <= point <= high <= 1


def test_noise_floor_is_the_binomial_standard_error() -> None:
    assert stats.noise_floor(0.97, 359) == pytest.approx(math.sqrt(0.97 * 0.03 / 359))


def test_factorial_effects_match_a_formula_ols_and_cell_means() -> None:
    rng = np.random.default_rng(0)
    cells = list(itertools.product((-1, 1), repeat=3))
    x = np.array([c for c in cells for _ in range(3)], dtype=float)  # 8 cells x 3 seeds
    y = 0.9 + 0.02 * x[:, 0] - 0.01 * x[:, 1] + 0.005 * x[:, 0] * x[:, 2] + rng.normal(0, 0.003, 24)
    effects = {e.term: e for e in stats.factorial_effects(x, y, ["dropout", "bn", "aug"], 0.95)}
    assert list(effects) == [
        "dropout",
        "bn",
        "aug",
        "dropout × bn",
        "dropout × aug",
        "bn × aug",
    ]
    # main effect of a balanced design: mean with the factor on minus mean with it off
    assert effects["dropout"].effect == pytest.approx(y[x[:, 0] > 0].mean() - y[x[:, 0] < 0].mean())
    data = pd.DataFrame({"y": y, "D": x[:, 0], "N": x[:, 1], "G": x[:, 2]})
    fit = smf.ols("y ~ (D + N + G) ** 2", data=data).fit()
    ci = fit.conf_int()
    for term, name in (("dropout × aug", "D:G"), ("bn", "N"), ("bn × aug", "N:G")):
        e = effects[term]
        assert e.effect == pytest.approx(2 * fit.params[name])
        assert (e.low, e.high) == (
            pytest.approx(2 * ci.loc[name, 0]),
            pytest.approx(2 * ci.loc[name, 1]),
        )
        assert e.p == pytest.approx(fit.pvalues[name])
    means = stats.cell_means(x, y, 0, 2)
    assert means[1, 0] == pytest.approx(y[(x[:, 0] > 0) & (x[:, 2] < 0)].mean())


# 10 seeds on a 359-image test set: accuracies k / 359, differences of whole images that tie
TIE_KB = np.array([337, 335, 335, 330, 338, 327, 333, 335, 337, 332])


@pytest.mark.parametrize(
    ("test", "dk"),
    [
        ("wilcoxon", [2, -2, -1, 3, -1, -2, -2, 3, -2, 1]),  # floats: p 0.820, counts: 0.961
        ("bootstrap", [-1, -1, -1, -1, 1, 2, -2, 2, 1, -1]),  # floats: p 0.875, counts: 1.0
    ],
)
def test_rank_and_sign_flip_tests_see_ties_on_the_test_set_grid(test: str, dk: list[int]) -> None:
    ka, kb = TIE_KB + np.array(dk), TIE_KB
    a, b = ka / 359, kb / 359
    assert len(np.unique(np.abs(a - b))) > len(
        np.unique(np.abs(dk))
    )  # equal counts, unequal floats
    c = stats.paired(a, b, test, 0.95, 2000, 0, grid=359)
    if test == "wilcoxon":
        ref = sp.wilcoxon(ka, kb).pvalue  # scipy: exact permutation with midranks up to 13 pairs
        exact = sp.wilcoxon(ka - kb, method=sp.PermutationMethod(n_resamples=2**10)).pvalue
    else:
        ref = sp.permutation_test(
            (ka, kb), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
            vectorized=True, n_resamples=2000, rng=np.random.default_rng(0),
        ).pvalue  # fmt: skip
        # all 1,024 sign flips: an odd number of odd differences never sums to 0, |sum| >= 1
        d = ka - kb
        sums = np.array([abs(np.sum(d * s)) for s in itertools.product((1, -1), repeat=10)])
        exact = np.mean(sums >= abs(d.sum()))
    assert c.p == pytest.approx(ref) and c.p == pytest.approx(exact) and exact > 0.96
    assert stats.paired(a, b, test, 0.95, 2000, 0).p < 0.9  # on the floats the ties break
    # values off the grid (not k / 359) are left as they are
    assert stats.on_grid(a + 1e-4, 359) is not None and np.all(
        stats.on_grid(a + 1e-4, 359) == a + 1e-4
    )
