"""Studies that decide: the question (δ, α, power), verdicts with family-wise error control,
seeds planned for δ, and a group-sequential design over stages of seeds.

Pure functions over arrays, like stats.py; every distribution, test and correction is scipy's or
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

The staged design (`design`, `boundaries`, `decide_stage`, `run_design`) spends α/(2m) per
comparison and kind of claim (Bonferroni over both, as above) along Lan-DeMets O'Brien-Fleming-type
spending functions (Lan & DeMets 1983; Jennison & Turnbull 2000, ch. 7 and 11): the joint z
statistics of the stages are normal with correlation sqrt(t_i / t_j), and each stage's paired t
statistic enters through its p-value (z = Φ⁻¹(F_t(t))), the "significance level approach" for an
unknown variance (Jennison & Turnbull 2000, §11.2). adastop (Mathieu et al. 2023) was evaluated
first: it permutes unpaired arms and has no equivalence claim, so it cannot use the pairing by seed.
"""

from __future__ import annotations

import functools
import gc
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from regbench.compare.choices import DEFAULT_DELTA, DEFAULT_POWER, default_delta

VERDICTS = ("undecided", "better", "worse", "equivalent")  # codes 0..3 in the array functions
UNDECIDED, UP, DOWN, EQUIVALENT = range(4)  # UP/DOWN: Δ > 0 / < 0, before the metric's direction
# the SD used for planning is its one-sided 80% upper confidence bound: with it, a pilot's plan
# reaches the requested power with ≥80% probability (Browne 1995, Stat. Med. 14:1933)
SD_CONFIDENCE = 0.8
MAX_SEEDS = 10_000  # beyond this a plan is out of reach (inf)
FIRST_STAGE = 3  # seeds per arm of the first stage: a t statistic needs a few degrees of freedom


@dataclass(frozen=True)
class Question:
    """What a study decides: δ (metric units; None: no equivalence claim, no plan), α, power."""

    delta: float | None = DEFAULT_DELTA
    alpha: float = 0.05
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
        float(mapping.get("alpha", 0.05)),
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


SPENDING = ("obf", "pocock")  # Lan-DeMets spending functions: which stages the α goes to


def spent(t: np.ndarray, alpha: float, spending: str = "obf") -> np.ndarray:
    """α spent by information fractions t (K,): Lan-DeMets O'Brien-Fleming-type ("obf": almost
    nothing early, the last stage near a fixed design's level) or Pocock-type ("pocock": evenly,
    so clear differences stop early and the last stage pays for it; Lan & DeMets 1983)."""
    if spending == "pocock":
        return alpha * np.log1p((np.e - 1) * t)
    return 2 * stats.norm.sf(stats.norm.isf(alpha / 2) / np.sqrt(t))


def _next_boundary(c: np.ndarray, t: np.ndarray, target: float) -> float:
    """The z boundary of stage k = len(c) that is first crossed with probability `target`,
    given the earlier boundaries c (k,) and information fractions t (k + 1,)."""
    k = len(c)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))

    def first_crossing(ck: float) -> float:
        return stats.multivariate_normal.cdf(
            np.r_[c, np.inf],
            mean=np.zeros(k + 1),
            cov=cov,
            lower_limit=np.r_[np.full(k, -np.inf), ck],
            abseps=min(1e-6, target * 1e-2),  # 1% of the target: the boundary to ~1e-3 in z
            releps=1e-2,
            rng=0,
        )

    # first crossing is rarer than crossing at stage k at all: the boundary is below isf(target)
    high = float(stats.norm.isf(target))
    low = max(high - 2.0, 0.0)
    return optimize.brentq(lambda x: first_crossing(x) - target, low, high, xtol=1e-3)


@functools.lru_cache(maxsize=256)
def _boundaries(stages: tuple[int, ...], alpha: float, spending: str) -> tuple[float, ...]:
    return tuple(float(c) for c in boundaries(stages, alpha, spending))


def boundaries(stages: Sequence[int], alpha: float, spending: str = "obf") -> np.ndarray:
    """stages: (K,) cumulative seeds per arm, increasing -> (K,) one-sided z boundaries: crossing
    c_k first at stage k has probability spent(t_k) - spent(t_{k-1}) under the null, from the
    joint normal of the stages' z (scipy multivariate_normal, correlation sqrt(t_i / t_j))."""
    t = np.asarray(stages, float) / stages[-1]
    cum = spent(t, alpha, spending)
    c = np.empty(len(t))
    c[0] = stats.norm.isf(cum[0])
    for k in range(1, len(t)):
        target = cum[k] - cum[k - 1]
        c[k] = _next_boundary(c[:k], t[: k + 1], target)
    return c


@dataclass(frozen=True)
class Design:
    """A staged study: cumulative seeds per arm after each stage (the last is the budget), the
    family size m and the z boundaries of each kind of claim at level α/(2m)."""

    question: Question
    stages: tuple[int, ...]
    comparisons: int
    bounds_diff: tuple[float, ...]  # each side of the two-sided difference test (α/(4m) a side)
    bounds_equiv: tuple[float, ...]  # each of TOST's two one-sided tests (α/(2m))
    spending: str = "obf"  # SPENDING

    @property
    def level(self) -> float:
        return self.question.alpha / (2 * self.comparisons)


def stage_counts(budget: int, n_stages: int, first: int = FIRST_STAGE) -> tuple[int, ...]:
    """Cumulative seeds per arm of n_stages equal steps up to budget, the first at least `first`."""
    counts = [max(first, math.ceil(budget * k / n_stages)) for k in range(1, n_stages + 1)]
    return tuple(sorted(set(counts)))


def make_design(
    question: Question, stages: Sequence[int], comparisons: int, spending: str = "obf"
) -> Design:
    """The Design of given stages (e.g. the seeds actually run), boundaries included."""
    level = question.alpha / (2 * comparisons)
    stages = tuple(stages)
    diff = _boundaries(stages, level / 2, spending)
    equiv = _boundaries(stages, level, spending)
    return Design(question, stages, comparisons, diff, equiv, spending)


def design(
    question: Question, sd: float, df: float | None, comparisons: int, n_stages: int = 4
) -> Design:
    """Plan a staged study of paired differences: a budget whose last stage alone detects δ and
    shows equivalence within ±δ with the question's power at that stage's boundaries (the staged
    power is at least that, less the rare early stops of the other kind), from the SD's upper
    confidence bound (sd with df degrees of freedom, e.g. a pilot's; df None: sd known).
    Raises ValueError without δ, without spread, or beyond MAX_SEEDS seeds per arm."""
    if question.delta is None or not sd > 0:
        raise ValueError("a staged design needs δ and a spread to plan from")
    budget = FIRST_STAGE
    while True:
        d = make_design(question, stage_counts(budget, n_stages), comparisons)
        # the last boundaries as per-test levels: what the last stage's t-tests must reach
        detect, equiv = plan(
            sd,
            df,
            True,
            question,
            2 * float(stats.norm.sf(d.bounds_diff[-1])),
            float(stats.norm.sf(d.bounds_equiv[-1])),
        )
        need = max(detect or math.inf, equiv or math.inf)
        if math.isinf(need):
            raise ValueError(f"δ = {question.delta:g} needs more than {MAX_SEEDS:,} seeds per arm")
        if need <= budget:
            return d
        budget = int(need)  # the boundaries move a little with the stages: check again


def _z(t: np.ndarray, df: float) -> np.ndarray:
    """A t statistic with df degrees of freedom -> the z of the same upper tail probability."""
    return stats.norm.isf(stats.t.sf(t, df))


def stage_codes(d: np.ndarray, design: Design, stage: int) -> np.ndarray:
    """d: (..., n_k) paired differences seen by stage k (0-based) -> (...,) codes: UP/DOWN when
    the difference crosses its boundary, EQUIVALENT when both of TOST's statistics do,
    UNDECIDED otherwise (open before the last stage)."""
    n = d.shape[-1]
    delta = design.question.delta
    with np.errstate(divide="ignore", invalid="ignore"):
        mean, se = d.mean(-1), d.std(-1, ddof=1) / math.sqrt(n)
        z = _z(mean / se, n - 1)
        z_lo, z_hi = _z((mean + delta) / se, n - 1), _z((mean - delta) / se, n - 1)
    cd, ce = design.bounds_diff[stage], design.bounds_equiv[stage]
    codes = np.where(z >= cd, UP, np.where(z <= -cd, DOWN, UNDECIDED))
    return np.where((z_lo >= ce) & (z_hi <= -ce), EQUIVALENT, codes)


def decide_stage(
    diffs: Mapping[str, np.ndarray], design: Design, stage: int, lower_is_better: bool = False
) -> tuple[dict[str, str], list[str]]:
    """diffs: per comparison still open, its (n_k,) paired differences (group − baseline, seeds in
    order) after stage k (0-based; n_k = design.stages[k]). Returns (verdict per comparison:
    better, worse, equivalent, or undecided at the last stage / open before it; the comparisons
    still open, which need the next stage's seeds). Decided comparisons keep their verdict."""
    verdicts, still_open = {}, []
    last = stage == len(design.stages) - 1
    for name, d in diffs.items():
        d = np.asarray(d, float)
        if len(d) != design.stages[stage]:
            raise ValueError(
                f"{name}: {len(d)} differences at stage {stage}, planned {design.stages[stage]}"
            )
        code = int(stage_codes(d, design, stage))
        verdicts[name] = verdict_name(code, lower_is_better) if code or last else "open"
        if verdicts[name] == "open":
            still_open.append(name)
    return verdicts, still_open


def run_design(d: np.ndarray, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """d: (..., budget) paired differences in seed order (simulated studies) -> (codes (...,),
    seeds per arm spent (...,)): each comparison stops at the first stage that decides it."""
    codes = np.full(d.shape[:-1], UNDECIDED)
    used = np.full(d.shape[:-1], design.stages[-1])
    open_ = np.ones(d.shape[:-1], bool)
    for k, n in enumerate(design.stages):
        now = stage_codes(d[..., :n], design, k)
        stop = open_ & (now != UNDECIDED)
        codes[stop], used[stop] = now[stop], n
        open_ &= ~stop
    return codes, used


def fixed_codes(d: np.ndarray, question: Question) -> np.ndarray:
    """d: (studies, m, n) paired differences of m comparisons -> (studies, m) codes of the fixed
    design: paired t and TOST p, Holm at α/2 over each kind of claim within each study."""
    p = stats.ttest_1samp(d, 0.0, axis=-1).pvalue
    q = tost_paired(d, question.delta)
    diff = d.mean(-1)
    gc.freeze()  # multipletests calls gc.collect(): ~40 ms a call over a big heap, 10 µs frozen
    try:
        return np.stack([verdict_codes(diff[s], p[s], q[s], question.alpha) for s in range(len(d))])
    finally:
        gc.unfreeze()
