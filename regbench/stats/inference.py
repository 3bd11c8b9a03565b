"""The statistics of `regbench compare`: pure functions over arrays, nothing about run folders.

Every distribution, test, bootstrap and correction is scipy.stats' or statsmodels'. Array shapes
are in the docstrings: `(n,)` is one value per run (or per seed-matched pair of runs).
statsmodels is imported inside the functions that need it: it pulls in pandas (~1 s of start-up)
that a plain table of means never needs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from regbench.stats.defaults import CORRECTIONS

# no spread: a range this small relative to the values' size is rounding (accuracies k/n differ
# by 1e-17 where they are equal), and a zero-width interval says nothing
FLAT = 1e-12
# below this many pairs the bootstrap's 95 % interval of a mean covers less than 94 % (normal
# differences, scipy's percentile and BCa alike: 0.76 at 3, 0.84 at 5, 0.90 at 10, 0.92 at 20,
# 0.93 at 30; docs/comparing.md): it resamples a spread of divisor n with normal, not t, quantiles
BOOTSTRAP_PAIRS = 40


@dataclass(frozen=True)
class Comparison:
    """One group against its baseline: mean(a) - mean(b) with its interval and test."""

    test: str  # "paired t", "wilcoxon", "bootstrap" or "welch"
    n: int  # pairs (paired) or runs on both sides together (welch)
    diff: float
    low: float | None = None  # None: no interval (fewer than 2 values, or no spread at all)
    high: float | None = None
    p: float | None = None
    rho: float | None = None  # within-pair correlation (paired tests only)
    note: str = ""  # why there is no interval: "n<2", "no spread"


@dataclass(frozen=True)
class Effect:
    """A factorial term: the change of the metric from off to on (2 x its ±1-coded coefficient)."""

    term: str
    effect: float
    low: float
    high: float
    p: float


def describe(x: np.ndarray) -> tuple[int, float | None, float | None]:
    """x: (n,) -> (n, mean, sample std with ddof=1); std is None below 2 values."""
    n = len(x)
    mean = float(np.mean(x)) if n else None
    return n, mean, float(np.std(x, ddof=1)) if n >= 2 else None


def _number(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def paired(
    a: np.ndarray,
    b: np.ndarray,
    test: str,
    level: float,
    reps: int,
    seed: int,
    grid: int | None = None,
) -> Comparison:
    """a, b: (n,) values of the same seeds in the same order. Paired t interval, or with
    test="wilcoxon" the signed-rank p beside it, or test="bootstrap" a percentile bootstrap
    interval of the mean difference with a sign-flip permutation p. grid: n_test when a and b
    are accuracies k / n_test; the rank and sign-flip tests then see the counts k."""
    d = a - b
    ka, kb = on_grid(a, grid), on_grid(b, grid)
    diff, n = float(np.mean(d)), len(d)
    name = "paired t" if test == "t" else test
    if n < 2:
        return Comparison(name, n, diff, note="n<2")
    rho = correlation(a, b)
    if _flat(d, a, b):  # every pair differs by the same amount: a zero-width interval says nothing
        return Comparison(name, n, diff, rho=rho, note="no spread")
    if test == "bootstrap":
        rng = np.random.default_rng(seed)
        boot = stats.bootstrap(
            (d,), np.mean, n_resamples=reps, confidence_level=level, method="percentile", rng=rng
        )
        perm = stats.permutation_test(
            (ka, kb),
            _mean_diff,
            permutation_type="samples",
            vectorized=True,
            n_resamples=reps,
            rng=rng,
        )
        ci, p = boot.confidence_interval, perm.pvalue
    else:
        res = stats.ttest_rel(a, b)
        ci, p = res.confidence_interval(level), res.pvalue
        if test == "wilcoxon":
            p = signed_rank_p(ka - kb)
    return Comparison(name, n, diff, float(ci.low), float(ci.high), _number(p), rho)


def signed_rank_p(d: np.ndarray) -> float:
    """d: (n,) paired differences -> Wilcoxon's signed-rank p (two-sided), zeros dropped (Wilcoxon's
    convention): scipy's exact distribution, or its exact sign-flip permutation with ties, up
    to 13 non-zero differences (50 without ties); beyond, its normal approximation with the
    continuity correction (scipy leaves it out by default: 6 zeros and 8 ties of +1 gave 0.0047
    against the exact 0.0078). No non-zero difference: 1."""
    nonzero = d[d != 0]
    if not len(nonzero):
        return 1.0
    return float(stats.wilcoxon(nonzero, correction=True).pvalue)


def signed_rank_floor(n: int) -> float:
    """The smallest two-sided p the signed-rank test can give at n pairs: every sign alike."""
    return 2.0 ** (1 - n)


def on_grid(x: np.ndarray, grid: int | None) -> np.ndarray:
    """x: (n,) -> x * grid rounded to whole counts when every value is k / grid; else x.

    One image more differs in the last bits between k / n pairs (0.0027855153203342614 against
    0.002785515320334317), so ranks and sign flips would see ties as different values."""
    if not grid:
        return x
    k = np.rint(x * grid)
    return k if np.allclose(k, x * grid, rtol=0, atol=1e-6) else x


def _flat(x: np.ndarray, *scale: np.ndarray) -> bool:
    """No spread in x beyond rounding (FLAT) at the size of the values in scale."""
    size = max(float(np.max(np.abs(v))) for v in scale) or 1.0
    return bool(np.ptp(x) <= FLAT * size)


def no_spread(d: np.ndarray) -> np.ndarray:
    """d: (..., n) paired differences -> (...,) True where every difference is the same up to
    rounding (FLAT): a spread of exactly zero at a few seeds is the metric's
    discreteness (a test set's whole images), not certainty, so it decides nothing."""
    size = np.max(np.abs(d), -1)
    return np.ptp(d, -1) <= FLAT * np.where(size > 0, size, 1.0)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def welch(a: np.ndarray, b: np.ndarray, level: float) -> Comparison:
    """a: (n_a,), b: (n_b,) unmatched runs: Welch's t (unequal variances) interval and p."""
    diff, n = float(np.mean(a) - np.mean(b)), len(a) + len(b)
    if len(a) < 2 or len(b) < 2:
        return Comparison("welch", n, diff, note="n<2")
    if _flat(a, a, b) and _flat(b, a, b):
        return Comparison("welch", n, diff, note="no spread")
    with warnings.catch_warnings():
        # one flat arm (the other has spread): scipy warns of precision loss when its values are
        # within 10 eps of their mean (stricter than _flat), yet a variance of 0 is right there
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(level)
    return Comparison("welch", n, diff, float(ci.low), float(ci.high), _number(res.pvalue))


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """a, b: (n,) paired values -> Pearson's rho, None when either side is constant or n < 3."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.pearsonr(a, b).statistic)


def adjust(p: np.ndarray, correction: str) -> np.ndarray:
    """p: (m,) p-values of one family of comparisons -> (m,) Holm / Benjamini-Hochberg adjusted."""
    method = CORRECTIONS[correction]
    if method is None or len(p) == 0:
        return p.copy()
    from statsmodels.stats.multitest import multipletests

    return multipletests(p, method=method)[1]


def _wins(x: np.ndarray, y: np.ndarray, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    return np.mean((x > y) + 0.5 * (x == y), axis=axis)


def _wins_all_pairs(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    return _wins(x[..., :, None], y[..., None, :], axis=(-2, -1))


def prob_better(
    a: np.ndarray, b: np.ndarray, is_paired: bool, level: float, reps: int, seed: int
) -> tuple[float, float | None, float | None]:
    """P(A > B) (ties count one half) with a percentile bootstrap interval.

    Paired, a and b (n,) in seed order: the share of seeds where A beats its own baseline run,
    pairs resampled together. Unpaired, a (n_a,) and b (n_b,): the share of all (a, b) pairs
    (Mann-Whitney's U / (n_a n_b)), each side resampled on its own.
    """
    stat = _wins if is_paired else _wins_all_pairs
    point = float(stat(a, b))
    if min(len(a), len(b)) < 2:
        return point, None, None
    with warnings.catch_warnings():  # all wins (or all losses) is a point mass: [1, 1] is right
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        ci = stats.bootstrap(
            (a, b),
            stat,
            n_resamples=reps,
            paired=is_paired,
            vectorized=True,
            confidence_level=level,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
    return point, float(ci.low), float(ci.high)


def noise_floor(accuracy: float, n_test: int) -> float:
    """Binomial standard error of an accuracy measured on n_test examples: sqrt(p (1 - p) / n)."""
    return float(stats.binom.std(n_test, accuracy) / n_test)


def ensemble_log_probs(log_probs: np.ndarray) -> np.ndarray:
    """log_probs: (members, n, classes), each member's log-softmax on the same n test examples ->
    (n, classes), the log of the members' mean softmax (logsumexp: exact where a probability
    underflows)."""
    return special.logsumexp(log_probs, axis=0) - math.log(len(log_probs))


def correct(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log_probs: (..., n, classes), labels: (n,) -> (..., n), 1.0 where the top class is the label."""
    return (log_probs.argmax(-1) == labels).astype(float)


def nll(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log_probs: (..., n, classes), labels: (n,) -> (...,) mean negative log-likelihood."""
    return -log_probs[..., np.arange(len(labels)), labels].mean(-1)


def ensemble_curve(
    log_probs: np.ndarray, labels: np.ndarray, sizes: list[int]
) -> list[tuple[float, float, int]]:
    """log_probs: (members, n, classes) in seed order, labels: (n,). For each ensemble size m:
    (mean accuracy, mean NLL, count) over the members // m disjoint ensembles of m consecutive
    members (m = 1: the single runs)."""
    out = []
    for m in sizes:
        chunks = len(log_probs) // m
        lp = np.stack([ensemble_log_probs(log_probs[i * m : (i + 1) * m]) for i in range(chunks)])
        out.append((float(correct(lp, labels).mean()), float(nll(lp, labels).mean()), chunks))
    return out


def ensemble_gain(log_probs: np.ndarray, labels: np.ndarray, level: float) -> Comparison:
    """log_probs: (members, n, classes), labels: (n,). Accuracy of the ensemble of all members
    minus the members' mean accuracy, with a t interval over the n test examples (per example:
    ensemble right minus the share of members right). It says how sure this test set is of the
    gain of these members; new seeds would give another ensemble."""
    d = correct(ensemble_log_probs(log_probs), labels) - correct(log_probs, labels).mean(0)
    diff = float(d.mean())
    if len(d) < 2 or _flat(d, np.ones(1)):
        return Comparison("paired t", len(d), diff, note="no spread")
    res = stats.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(level)
    return Comparison("paired t", len(d), diff, float(ci.low), float(ci.high), _number(res.pvalue))


def factorial_effects(x: np.ndarray, y: np.ndarray, names: list[str], level: float) -> list[Effect]:
    """x: (n_runs, k) factor levels coded -1 (off) / +1 (on), y: (n_runs,) the metric.

    Ordinary least squares (statsmodels) of y on the k factors and their k(k-1)/2 pairwise
    products; each run is a replicate of its cell. An effect is 2 x its coefficient: the mean
    change from off to on (main effect) or half the difference of A's effect with B on and off
    (interaction), with the coefficient's t interval scaled alike.
    """
    import statsmodels.api as sm

    k = x.shape[1]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    columns = [x[:, i] for i in range(k)] + [x[:, i] * x[:, j] for i, j in pairs]
    terms = list(names) + [f"{names[i]} × {names[j]}" for i, j in pairs]
    fit = sm.OLS(y, sm.add_constant(np.column_stack(columns), has_constant="add")).fit()
    ci = fit.conf_int(alpha=1 - level)
    return [
        Effect(t, 2 * fit.params[c], 2 * ci[c, 0], 2 * ci[c, 1], float(fit.pvalues[c]))
        for c, t in enumerate(terms, start=1)
    ]


def cell_means(x: np.ndarray, y: np.ndarray, i: int, j: int) -> np.ndarray:
    """Mean of y (n_runs,) in each on/off cell of factors i and j of x (n_runs, k) -> (2, 2),
    [level of i, level of j], averaged over the other factors (equal weights in a full design)."""
    means = np.full((2, 2), np.nan)
    for a in (0, 1):
        for b in (0, 1):
            sel = (x[:, i] == 2 * a - 1) & (x[:, j] == 2 * b - 1)
            if sel.any():
                means[a, b] = y[sel].mean()
    return means
