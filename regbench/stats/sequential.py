"""Seeds in stages: a group-sequential design over stages of seeds per arm, its boundaries, each
stage's verdicts, and a futility rule that stops spending seeds on a comparison the budget cannot
decide.

The design spends α/(2m) per comparison and kind of claim (Bonferroni over both, as in
stats.decide) along Lan-DeMets spending functions (Lan & DeMets 1983; Jennison & Turnbull 2000,
ch. 7 and 11), with boundaries solved for the paired t statistics each stage computes
(stats.boundaries: each stage's t enters through its p-value, z = Φ⁻¹(F_t(t)), on boundaries
raised until the t statistics' joint null distribution spends no more than the budget). adastop
(Mathieu et al. 2023) was evaluated first: it permutes unpaired arms and has no equivalence claim,
so it cannot use the pairing by seed.

Futility (stochastic curtailment, Jennison & Turnbull 2000, ch. 10): before the last stage, a
comparison whose conditional power (the chance, at the current estimate and spread, that the
budget's last stage makes any claim) is below Design.futility ends undecided. The rule is
non-binding: it only ever withholds a claim, so the error control above is untouched.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from regbench.stats.boundaries import SPENDING as SPENDING
from regbench.stats.boundaries import boundaries as boundaries
from regbench.stats.boundaries import spent as spent
from regbench.stats.boundaries import t_boundaries
from regbench.stats.decide import (
    DOWN,
    EQUIVALENT,
    MAX_SEEDS,
    SD_CONFIDENCE,
    UNDECIDED,
    UP,
    Question,
    plan,
    sd_upper,
    verdict_name,
)
from regbench.stats.inference import no_spread

FIRST_STAGE = 3  # seeds per arm of the first stage: a t statistic needs a few degrees of freedom
# stop a comparison when the rest of the budget decides it with a chance below this (README: why)
FUTILITY = 0.1


@functools.lru_cache(maxsize=256)
def _boundaries(stages: tuple[int, ...], alpha: float, spending: str) -> tuple[float, ...]:
    return tuple(float(c) for c in t_boundaries(stages, alpha, spending))


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
    futility: float = FUTILITY  # conditional power below which a comparison stops; 0: never

    @property
    def level(self) -> float:
        return self.question.alpha / (2 * self.comparisons)


def stage_counts(budget: int, n_stages: int, first: int = FIRST_STAGE) -> tuple[int, ...]:
    """Cumulative seeds per arm of n_stages equal steps up to budget, the first at least `first`."""
    counts = [max(first, math.ceil(budget * k / n_stages)) for k in range(1, n_stages + 1)]
    return tuple(sorted(set(counts)))


def check_futility(futility: object) -> float:
    """A futility threshold as a float; ValueError unless it is a number in [0, 1)."""
    if (
        isinstance(futility, bool)
        or not isinstance(futility, (int, float))
        or not 0 <= futility < 1
    ):
        raise ValueError(
            f"futility {futility!r}: a chance in [0, 1) (0: never stop early undecided)"
        )
    return float(futility)


def make_design(
    question: Question,
    stages: Sequence[int],
    comparisons: int,
    spending: str = "obf",
    futility: float = FUTILITY,
) -> Design:
    """The Design of given stages (e.g. the seeds actually run), boundaries included."""
    futility = check_futility(futility)
    level = question.alpha / (2 * comparisons)
    stages = tuple(stages)
    diff = _boundaries(stages, level / 2, spending)
    equiv = _boundaries(stages, level, spending)
    return Design(question, stages, comparisons, diff, equiv, spending, futility)


def design(
    question: Question,
    sd: float,
    df: float | None,
    comparisons: int,
    n_stages: int = 4,
    spending: str = "obf",
    futility: float = FUTILITY,
) -> Design:
    """Plan a staged study of paired differences for the spending it will use: a budget whose
    last stage alone detects δ and shows equivalence within ±δ with the question's power at that
    stage's boundaries (Pocock's last boundary is higher than O'Brien-Fleming's: a larger
    budget), from the SD's upper confidence bound (sd with df degrees of freedom, e.g. a pilot's;
    df None: sd known). The staged power is near that, less what early stops of the other kind
    and futility take (benchmarks/decisions.py measures it). Raises ValueError without δ,
    without spread, or beyond MAX_SEEDS seeds per arm."""
    if question.delta is None or not sd > 0:
        raise ValueError("a staged design needs δ and a spread to plan from")
    budget = FIRST_STAGE
    while True:
        d = make_design(question, stage_counts(budget, n_stages), comparisons, spending, futility)
        need = last_stage_need(d, sd, df)
        if math.isinf(need):
            raise ValueError(f"δ = {question.delta:g} needs more than {MAX_SEEDS:,} seeds per arm")
        if need <= budget:
            return d
        budget = int(need)  # the boundaries move a little with the stages: check again


def last_stage_need(d: Design, sd: float, df: float | None) -> float:
    """Seeds per arm the last stage needs to reach the question's power alone, both kinds of
    claim, its boundaries read as per-test levels (inf: out of reach)."""
    detect, equiv = plan(
        sd,
        df,
        True,
        d.question,
        2 * float(stats.norm.sf(d.bounds_diff[-1])),
        float(stats.norm.sf(d.bounds_equiv[-1])),
    )
    return max(detect or math.inf, equiv or math.inf)


def stage_codes(d: np.ndarray, design: Design, stage: int) -> np.ndarray:
    """d: (..., n_k) paired differences seen by stage k (0-based) -> (...,) codes: UP/DOWN when
    the difference crosses its boundary, EQUIVALENT when both of TOST's statistics do,
    UNDECIDED otherwise (open before the last stage), also where the differences have no
    spread (the fixed design's paired test gives no p there either)."""
    n = d.shape[-1]
    delta = design.question.delta
    # the z boundaries as the t quantiles of the same tail: t is compared where it stands
    cd, ce = (stats.t.isf(stats.norm.sf(b[stage]), n - 1) for b in (design.bounds_diff, design.bounds_equiv))  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        mean, se = d.mean(-1), d.std(-1, ddof=1) / math.sqrt(n)
        t = mean / se
        t_lo, t_hi = (mean + delta) / se, (mean - delta) / se
    codes = np.where(t >= cd, UP, np.where(t <= -cd, DOWN, UNDECIDED))
    codes = np.where((t_lo >= ce) & (t_hi <= -ce), EQUIVALENT, codes)
    return np.where(no_spread(d), UNDECIDED, codes)


def conditional_power(d: np.ndarray, design: Design) -> np.ndarray:
    """d: (..., n) paired differences before the last stage -> (...,) the chance that the last
    stage claims anything (better, worse or equivalent) if the seeds to come follow the current
    estimate with a spread at the SD's 80% lower confidence bound (optimistic, as the plan's upper
    bound is pessimistic: a few seeds' SD is too noisy to give up on): the last mean is then
    normal around today's with SD σ√(N−n)/N. The intermediate looks are left out, so the chance
    is a little low; NaN (no spread) reads 1."""
    n, big_n = d.shape[-1], design.stages[-1]
    last = [stats.t.isf(stats.norm.sf(c[-1]), big_n - 1) for c in (design.bounds_diff, design.bounds_equiv)]  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = d.mean(-1)
        sd = d.std(-1, ddof=1) * sd_upper(1.0, n - 1, 1 - SD_CONFIDENCE)  # the lower bound
        se, spread = sd / math.sqrt(big_n), sd * math.sqrt(big_n - n) / big_n
        margin = design.question.delta - last[1] * se  # |last mean| within it: equivalent
        differs = np.maximum(last[0] * se, margin)  # beyond it: better or worse (not both)
        p = stats.norm.sf((differs - mean) / spread) + stats.norm.cdf((-differs - mean) / spread)
        p_equiv = stats.norm.cdf((margin - mean) / spread) - stats.norm.cdf(
            (-margin - mean) / spread
        )
        p = p + np.where(margin > 0, p_equiv, 0.0)
    return np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)


def _futile(chance: np.ndarray | float, design: Design, stage: int) -> np.ndarray | bool:
    """chance: (...,) conditional power at stage k -> (...,) bool: before the last stage, below
    design.futility (the last stage ends every comparison anyway)."""
    return (stage < len(design.stages) - 1) & (chance < design.futility)


def decide_stage(
    diffs: Mapping[str, np.ndarray], design: Design, stage: int, lower_is_better: bool = False
) -> tuple[dict[str, str], dict[str, float]]:
    """diffs: per comparison still open, its (n_k,) paired differences (group − baseline, seeds in
    order) after stage k (0-based; n_k = design.stages[k]). Returns (verdict per comparison:
    better, worse, equivalent, undecided (at the last stage, or futile before it), or open: it
    needs the next stage's seeds; and, before the last stage, each open or futile comparison's
    conditional power). Decided comparisons keep their verdict."""
    verdicts, chances = {}, {}
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
            chances[name] = float(conditional_power(d, design))
            if _futile(chances[name], design, stage):
                verdicts[name] = "undecided"
    return verdicts, chances


def run_design(d: np.ndarray, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """d: (..., budget) paired differences in seed order (simulated studies) -> (codes (...,),
    seeds per arm spent (...,)): each comparison stops at the first stage that decides it, or
    undecided at the first that finds it futile."""
    codes = np.full(d.shape[:-1], UNDECIDED)
    used = np.full(d.shape[:-1], design.stages[-1])
    open_ = np.ones(d.shape[:-1], bool)
    for k, n in enumerate(design.stages):
        now = stage_codes(d[..., :n], design, k)
        futile = (
            _futile(conditional_power(d[..., :n], design), design, k) if design.futility else False
        )
        stop = open_ & ((now != UNDECIDED) | futile)
        codes[stop], used[stop] = now[stop], n
        open_ &= ~stop
    return codes, used
