"""Studies that decide: the question (δ, α, power), verdicts with family-wise error control, and
seeds planned for δ.

Pure functions over arrays, like inference.py; every distribution, test and correction is scipy's or
statsmodels'. A comparison ends as one of VERDICTS:

- better / worse: its difference test rejects Δ = 0, Holm over the family's m difference
  p-values at α/2; the direction is the sign of Δ read in the metric's good direction;
- equivalent: its TOST rejects |Δ| ≥ δ (Schuirmann 1987), Holm over the m TOST p-values at α/2;
- undecided: neither.

Why α/2 twice: each Holm controls its family's error at α/2 (Holm 1979), so by Bonferroni's
inequality the chance of any false claim of either kind in the table is at most α. (For one
comparison the two nulls Δ = 0 and |Δ| ≥ δ are disjoint, so at most m of the 2m nulls are true;
Shaffer's 1986 procedure could exploit that, statsmodels has no such procedure, and α/2 is the
price of using Holm as it is.)

The staged design, seeds in stages until decided, is stats.sequential.
"""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from regbench.stats.defaults import ALPHA, DEFAULT_DELTA, DEFAULT_POWER, default_delta
from regbench.stats.inference import no_spread

VERDICTS = ("undecided", "better", "worse", "equivalent")  # codes 0..3 in the array functions
UNDECIDED, UP, DOWN, EQUIVALENT = range(4)  # UP/DOWN: Δ > 0 / < 0, before the metric's direction
# the SD used for planning is its one-sided 80% upper confidence bound: with it, a pilot's plan
# reaches the requested power with ≥80% probability (Browne 1995, Stat. Med. 14:1933)
SD_CONFIDENCE = 0.8
MAX_SEEDS = 10_000  # beyond this a plan is out of reach (inf)


@dataclass(frozen=True)
class Question:
    """What a study decides: δ (metric units; None: no equivalence claim, no plan), α, power."""

    delta: float | None = DEFAULT_DELTA
    alpha: float = ALPHA
    power: float = DEFAULT_POWER

    def __post_init__(self) -> None:
        if self.delta is not None and not (math.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"delta must be a positive number, got {self.delta}")
        for name, v in (("alpha", self.alpha), ("power", self.power)):
            if not 0 < v < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {v}")


def question_from(mapping: Mapping[str, Any] | None, metric: str = "test_acc") -> Question:
    """A study YAML's `question:` block ({delta, alpha, power}, each optional) -> Question.
    Raises ValueError naming an unknown key or a value that is not a number in range."""
    mapping = dict(mapping or {})
    unknown = set(mapping) - {"delta", "alpha", "power"}
    if unknown:
        raise ValueError(f"question: unknown key(s) {', '.join(sorted(unknown))}")
    for k, v in mapping.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"question.{k} must be a number, got {v!r}")
    delta = mapping.get("delta", default_delta(metric))
    return Question(
        None if delta is None else float(delta),
        float(mapping.get("alpha", ALPHA)),
        float(mapping.get("power", DEFAULT_POWER)),
    )


def tost_paired(d: np.ndarray, delta: float) -> np.ndarray:
    """d: (..., n) paired differences -> (...,) TOST p of |Δ| ≥ δ: the larger of the two one-sided
    t-tests' p (equals statsmodels' ttost_paired; scipy here, vectorised over studies)."""
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Precision loss occurred", RuntimeWarning
        )  # flat: see stats.welch
        lo = stats.ttest_1samp(d, -delta, axis=-1, alternative="greater").pvalue
        hi = stats.ttest_1samp(d, delta, axis=-1, alternative="less").pvalue
    return np.maximum(lo, hi)


def tost_welch(a: np.ndarray, b: np.ndarray, delta: float) -> float:
    """a: (n_a,), b: (n_b,) unmatched runs -> TOST p of |mean(a) - mean(b)| ≥ δ, Welch's t."""
    with warnings.catch_warnings():  # one flat arm: a variance of 0 is right (see stats.welch)
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        lo = stats.ttest_ind(a + delta, b, equal_var=False, alternative="greater").pvalue
        hi = stats.ttest_ind(a - delta, b, equal_var=False, alternative="less").pvalue
    return float(max(lo, hi))


def _holm_rejects(p: np.ndarray, level: float) -> np.ndarray:
    """p: (m,) with NaN for untested -> (m,) bool, Holm (statsmodels) over the tested at level."""
    from statsmodels.stats.multitest import multipletests

    out = np.zeros(p.shape, bool)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=level, method="holm")[0]
    return out


def verdict_codes(
    diff: np.ndarray, p_diff: np.ndarray, p_equiv: np.ndarray, alpha: float
) -> np.ndarray:
    """diff, p_diff, p_equiv: (m,) one family (NaN: not tested) -> (m,) codes UNDECIDED, UP, DOWN,
    EQUIVALENT; Holm at α/2 over each kind of claim. A difference that is real but shown to be
    within ±δ reads as EQUIVALENT: the question asked about δ."""
    differs = _holm_rejects(np.asarray(p_diff, float), alpha / 2)
    equivalent = _holm_rejects(np.asarray(p_equiv, float), alpha / 2)
    codes = np.where(differs, np.where(np.asarray(diff) > 0, UP, DOWN), UNDECIDED)
    return np.where(equivalent, EQUIVALENT, codes)


def verdict_name(code: int, lower_is_better: bool) -> str:
    """A code -> its word, "better" meaning a better value of the metric."""
    if code in (UP, DOWN):
        return "better" if (code == UP) != lower_is_better else "worse"
    return VERDICTS[code]


def sd_upper(sd: float, df: float | None, confidence: float = SD_CONFIDENCE) -> float:
    """One-sided upper confidence bound of σ from a sample SD with df degrees of freedom:
    sd sqrt(df / χ²_{1-confidence, df}); df None or inf: sd is taken as known."""
    if df is None or not math.isfinite(df):
        return sd
    return float(sd * math.sqrt(df / stats.chi2.ppf(1 - confidence, df)))


def _df_scale(n: float, paired: bool) -> tuple[float, float]:
    """(degrees of freedom, √ of the effective sample size) of the t statistic at n per arm."""
    return (n - 1, math.sqrt(n)) if paired else (2 * n - 2, math.sqrt(n / 2))


def detect_power(n: float, delta: float, sd: float, paired: bool, level: float) -> float:
    """Power of the two-sided t-test at `level` to detect Δ = δ with n seeds per arm (statsmodels
    TTestPower, paired, or TTestIndPower, equal arms; NaN at a huge noncentrality reads 1)."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    analysis = TTestPower() if paired else TTestIndPower()
    return float(np.nan_to_num(analysis.power(delta / sd, n, level), nan=1.0))


def equivalence_power(n: float, delta: float, sd: float, paired: bool, level: float) -> float:
    """Power of TOST (each one-sided t at `level`) to show |Δ| < δ when Δ = 0, with n seeds per arm:
    P(T_lo > c) + P(T_hi < -c) - 1 from the noncentral t (scipy.stats.nct), a lower bound of
    the exact power (the two events share one SD estimate)."""
    df, root = _df_scale(n, paired)
    c, nc = stats.t.isf(level, df), delta / sd * root
    power = stats.nct.sf(c, df, nc) + stats.nct.cdf(-c, df, -nc) - 1
    return float(max(np.nan_to_num(power, nan=1.0), 0.0))


def seeds_for(power_of: Any, target: float) -> float:
    """Smallest whole n ≥ 2 with power_of(n) ≥ target; inf beyond MAX_SEEDS."""
    if power_of(2) >= target:
        return 2.0
    if power_of(MAX_SEEDS) < target:
        return math.inf
    n = math.ceil(optimize.brentq(lambda k: power_of(k) - target, 2, MAX_SEEDS, xtol=1e-3))
    while power_of(n) < target:  # brentq's tolerance: never plan one seed short
        n += 1
    return float(n)


def plan(
    sd: float,
    df: float | None,
    paired: bool,
    question: Question,
    level: float,
    equiv_level: float | None = None,
) -> tuple[float | None, float | None]:
    """Seeds per arm (to detect δ with the two-sided test at `level`, to show equivalence within
    ±δ with TOST at `equiv_level`, default `level`) with the question's power, from the SD's upper
    confidence bound (sd with df degrees of freedom). None without δ or spread."""
    if question.delta is None or not sd or not math.isfinite(sd):
        return None, None
    s, d = sd_upper(sd, df), question.delta
    detect = seeds_for(lambda n: detect_power(n, d, s, paired, level), question.power)
    e_level = level if equiv_level is None else equiv_level
    equiv = seeds_for(lambda n: equivalence_power(n, d, s, paired, e_level), question.power)
    return detect, equiv


def fixed_codes(d: np.ndarray, question: Question) -> np.ndarray:
    """d: (studies, m, n) paired differences of m comparisons -> (studies, m) codes of the fixed
    design: paired t and TOST p, Holm at α/2 over each kind of claim within each study; no
    spread: neither tested (as in compare)."""
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        p = stats.ttest_1samp(d, 0.0, axis=-1).pvalue
    assert question.delta is not None, "a fixed design's verdicts need δ"
    q = tost_paired(d, question.delta)
    flat = no_spread(d)
    p, q = np.where(flat, np.nan, p), np.where(flat, np.nan, q)
    diff = d.mean(-1)
    # multipletests calls gc.collect(), slow over a big heap and fast over a frozen one; what a
    # caller froze before stays frozen (unfreeze would thaw it too, so then nothing is thawed)
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        return np.stack([verdict_codes(diff[s], p[s], q[s], question.alpha) for s in range(len(d))])
    finally:
        if not frozen_before:
            gc.unfreeze()
