"""Seeds in stages: a group-sequential design over stages of seeds per arm, its boundaries, each
stage's verdicts, and a futility rule that stops spending seeds on a comparison the budget cannot
decide.

The design starts at α/(2m) per comparison and kind of claim (α/2 per kind, as in stats.decide;
recycled below) along Lan-DeMets spending functions (Lan & DeMets 1983; Jennison & Turnbull 2000,
ch. 7 and 11), with boundaries solved for the paired t statistics each stage computes
(stats.boundaries: each stage's t enters through its p-value, z = Φ⁻¹(F_t(t)), on boundaries
raised until the t statistics' joint null distribution spends no more than the budget). Not
adastop (Mathieu et al. 2023): it permutes unpaired arms and has no equivalence claim, so it
cannot use the pairing by seed.

Recycling (Maurer & Bretz 2013, "Multiple testing in group sequential trials using graphical
approaches"; the Holm graph within each kind of claim): the 2m hypotheses start at α/(2m) each;
when a comparison is decided, the hypothesis its verdict rejected passes its α equally to the
hypotheses of its kind not yet rejected (r left: α/(2r) each, boundaries of the same spending at
that level), and the open comparisons are tested again at the new levels at every look so far.
Each kind is a closed test of weighted-Bonferroni intersections at α/2, so the family-wise error
stays ≤ α/2 per kind whatever the correlation between comparisons. A comparison once stopped
(decided, futile, diverged) is not tested again: its other hypothesis keeps its α (conservative;
its α is never passed on unrejected).

Futility (stochastic curtailment, Jennison & Turnbull 2000, ch. 10): before the last stage, a
comparison whose conditional power (the chance, at the current estimate and spread, that the
budget's last stage makes any claim) is below Design.futility ends undecided. The rule is
non-binding: it only ever withholds a claim, so the error control above is untouched.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
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
from regbench.stats.defaults import DEFAULT_SPENDING
from regbench.stats.defaults import FUTILITY as FUTILITY
from regbench.stats.inference import no_spread

FIRST_STAGE = 3  # seeds per arm of the first stage: a t statistic needs a few degrees of freedom


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
    bounds_diff: tuple[float, ...]  # each side of the difference test, first level (α/(4m) a side)
    bounds_equiv: tuple[float, ...]  # each of TOST's two one-sided tests, first level (α/(2m))
    spending: str = DEFAULT_SPENDING  # SPENDING
    futility: float = FUTILITY  # conditional power below which a comparison stops; 0: never
    recycle: bool = True  # a rejected hypothesis's α passes to the rest of its kind (settle)

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
    spending: str = DEFAULT_SPENDING,
    futility: float = FUTILITY,
    recycle: bool = True,
) -> Design:
    """The Design of given stages (e.g. the seeds actually run), boundaries included (those of
    the first level: recycled levels are solved when reached)."""
    futility = check_futility(futility)
    level = question.alpha / (2 * comparisons)
    stages = tuple(stages)
    diff = _boundaries(stages, level / 2, spending)
    equiv = _boundaries(stages, level, spending)
    return Design(question, stages, comparisons, diff, equiv, spending, futility, recycle)


def design(
    question: Question,
    sd: float,
    df: float | None,
    comparisons: int,
    n_stages: int = 4,
    spending: str = DEFAULT_SPENDING,
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


def _t_scale(z: Sequence[float], stages: Sequence[int]) -> np.ndarray:
    """(K,) z boundaries -> (K,) the t quantiles of the same tails, stage k at stages[k] - 1
    degrees of freedom: t is compared where it stands."""
    return np.asarray(stats.t.isf(stats.norm.sf(np.asarray(z)), np.asarray(stages) - 1))


@functools.lru_cache(maxsize=256)
def _t_bounds(design: Design, kind: str, rejected: int) -> np.ndarray:
    """(K,) t-scale boundaries of one hypothesis of `kind` ("diff": each side of the difference
    test; "equiv": each of TOST's tests) once `rejected` of the m hypotheses of that kind are
    rejected: Holm-type recycling, α/(2r) for the r = m - rejected left (the design's own
    boundaries at r = m, and always without recycling)."""
    left = max(design.comparisons - rejected, 1) if design.recycle else design.comparisons
    level = design.question.alpha / (2 * left)
    z = _boundaries(design.stages, level / 2 if kind == "diff" else level, design.spending)
    return _t_scale(z, design.stages)


def _thresholds(design: Design, kind: str, rejected: np.ndarray) -> np.ndarray:
    """rejected: (S,) hypotheses of `kind` rejected in each study -> (S, K) its boundaries
    there (only the levels that occur are solved)."""
    table = np.empty((design.comparisons + 1, len(design.stages)))
    for r in np.unique(rejected):
        table[r] = _t_bounds(design, kind, int(r))
    return table[rejected]


def _looks(d: np.ndarray, design: Design, stage: int) -> tuple[np.ndarray, ...]:
    """d: (..., n_k) paired differences by stage k -> (t, t of TOST's lower test, of its upper
    test, no spread), each (..., k + 1): the statistics at looks 0..k."""
    delta = design.question.delta
    out: list[list[np.ndarray]] = [[], [], [], []]
    with np.errstate(divide="ignore", invalid="ignore"):
        for n in design.stages[: stage + 1]:
            x = d[..., :n]
            mean, se = x.mean(-1), x.std(-1, ddof=1) / math.sqrt(n)
            for i, v in enumerate(
                (mean / se, (mean + delta) / se, (mean - delta) / se, no_spread(x))
            ):
                out[i].append(v)
    return tuple(np.stack(v, -1) for v in out)


def _crossed(looks: tuple[np.ndarray, ...], design: Design, rejected: np.ndarray) -> np.ndarray:
    """looks: (S, c, k + 1) statistics (_looks); rejected: (S, 2) rejected difference and
    equivalence hypotheses -> (S, c) codes: EQUIVALENT where both of TOST's statistics cross at
    some look 0..k, else UP/DOWN where the difference does (the later look's sign if both),
    UNDECIDED otherwise; a look without spread crosses nothing."""
    t, lo, hi, flat = looks
    k = t.shape[-1]
    cd = _thresholds(design, "diff", rejected[:, 0])[:, None, :k]
    ce = _thresholds(design, "equiv", rejected[:, 1])[:, None, :k]
    live = ~flat.astype(bool)
    up, down = (live & (t >= cd)).any(-1), (live & (t <= -cd)).any(-1)
    equiv = (live & (lo >= ce) & (hi <= -ce)).any(-1)
    codes = np.where(up & down, np.where(t[..., -1] > 0, UP, DOWN), np.where(up, UP, UNDECIDED))
    codes = np.where(down & ~up, DOWN, codes)
    return np.where(equiv, EQUIVALENT, codes)


def settle(
    looks: tuple[np.ndarray, ...], design: Design, open_: np.ndarray, rejected: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One stage of the graphical procedure (Maurer & Bretz 2013), Holm-type within each kind.
    looks: (S, c, k + 1) the statistics of c comparisons at looks 0..k (_looks); open_: (S, c)
    which are still open; rejected: (S, 2) difference and equivalence hypotheses of the family
    rejected before. Each open comparison is tested at every look up to k at its kind's current
    level; each rejection (a comparison decided: one hypothesis, the verdict's kind) raises the
    level of its kind's remaining hypotheses, and the open ones are tested again, until none
    more is rejected. Returns ((S, c) codes of the comparisons decided now, UNDECIDED
    elsewhere; (S, 2) rejected after)."""
    codes = np.full(open_.shape, UNDECIDED)
    open_, rejected = open_.copy(), rejected.copy()
    while True:
        now = _crossed(looks, design, rejected)
        new = open_ & (now != UNDECIDED)
        if not new.any():
            return codes, rejected
        codes[new], open_ = now[new], open_ & ~new
        rejected[:, 0] += np.sum(new & (now != EQUIVALENT), -1)
        rejected[:, 1] += np.sum(new & (now == EQUIVALENT), -1)
        if not design.recycle:
            return codes, rejected


def rejected_by(verdicts: Iterable[str]) -> np.ndarray:
    """Earlier stages' verdicts -> (2,) the difference and equivalence hypotheses they rejected
    (undecided and diverged comparisons reject none)."""
    v = list(verdicts)
    return np.array([sum(x in ("better", "worse") for x in v), v.count("equivalent")])


def _last_bounds(design: Design, rejected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rejected: (S, 2) -> the last stage's t boundaries, difference and equivalence, (S, 1)
    each: at the levels reached, for conditional power."""
    return tuple(  # type: ignore[return-value]
        _thresholds(design, kind, rejected[:, j])[:, -1:]
        for j, kind in enumerate(("diff", "equiv"))
    )


def conditional_power(
    d: np.ndarray, design: Design, last: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """d: (..., n) paired differences before the last stage -> (...,) the chance that the last
    stage claims anything (better, worse or equivalent) if the seeds to come follow the current
    estimate with a spread at the SD's 80% lower confidence bound (optimistic, as the plan's upper
    bound is pessimistic: a few seeds' SD is too noisy to give up on): the last mean is then
    normal around today's with SD σ√(N−n)/N. The intermediate looks are left out, so the chance
    is a little low; NaN (no spread) reads 1. last: the last stage's t boundaries (difference,
    equivalence), broadcast against (...,): those of the levels reached (default: the first)."""
    n, big_n = d.shape[-1], design.stages[-1]
    if last is None:
        last = tuple(
            _t_scale(c, design.stages)[-1] for c in (design.bounds_diff, design.bounds_equiv)
        )
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


def decide_stage(
    diffs: Mapping[str, np.ndarray],
    design: Design,
    stage: int,
    lower_is_better: bool = False,
    decided: Iterable[str] = (),
) -> tuple[dict[str, str], dict[str, float]]:
    """diffs: per comparison still open, its (n_k,) paired differences (group − baseline, seeds in
    order) after stage k (0-based; n_k = design.stages[k]); decided: the verdicts of the
    comparisons decided at earlier stages (their rejections set the levels: settle). Returns
    (verdict per comparison: better, worse, equivalent, undecided (at the last stage, or futile
    before it), or open: it needs the next stage's seeds; and, before the last stage, each open
    or futile comparison's conditional power). Decided comparisons keep their verdict."""
    for name, d in diffs.items():
        if len(d) != design.stages[stage]:
            raise ValueError(
                f"{name}: {len(d)} differences at stage {stage}, planned {design.stages[stage]}"
            )
    if not diffs:
        return {}, {}
    names, last = list(diffs), stage == len(design.stages) - 1
    x = np.stack([np.asarray(diffs[a], float) for a in names])[None]  # (1, c, n_k)
    codes, rejected = settle(
        _looks(x, design, stage), design, np.ones(x.shape[:2], bool), rejected_by(decided)[None]
    )
    chance = conditional_power(x, design, _last_bounds(design, rejected))[0]
    verdicts, chances = {}, {}
    for i, name in enumerate(names):
        code = int(codes[0, i])
        verdicts[name] = verdict_name(code, lower_is_better) if code or last else "open"
        if verdicts[name] == "open":
            chances[name] = float(chance[i])
            if stage < len(design.stages) - 1 and chances[name] < design.futility:
                verdicts[name] = "undecided"
    return verdicts, chances


def run_design(d: np.ndarray, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """d: (..., m, budget) paired differences of simulated studies in seed order, m =
    design.comparisons (m = 1: (..., budget) too; without recycling any (..., budget): each
    comparison alone) -> (codes, seeds per arm spent), each d.shape[:-1]: each comparison stops
    at the first stage that decides it (settle: the family's rejections pass their α on), or
    undecided at the first that finds it futile."""
    single = d.ndim == 1 or (design.comparisons == 1 and d.shape[-2] != 1) or not design.recycle
    x = d.reshape(-1, 1, d.shape[-1]) if single else d.reshape(-1, *d.shape[-2:])
    if not single and x.shape[1] != design.comparisons:
        raise ValueError(f"{x.shape[1]} comparisons per study, the design has {design.comparisons}")
    big_k = len(design.stages)
    looks = _looks(x, design, big_k - 1)
    codes = np.full(x.shape[:2], UNDECIDED)
    used = np.full(x.shape[:2], design.stages[-1])
    open_, rejected = np.ones(x.shape[:2], bool), np.zeros((len(x), 2), int)
    for k, n in enumerate(design.stages):
        now, rejected = settle(tuple(a[..., : k + 1] for a in looks), design, open_, rejected)
        stop = now != UNDECIDED
        if design.futility and k < big_k - 1:
            chance = conditional_power(x[..., :n], design, _last_bounds(design, rejected))
            stop |= open_ & (chance < design.futility)
        codes[stop], used[stop] = now[stop], n
        open_ &= ~stop
    return codes.reshape(d.shape[:-1]), used.reshape(d.shape[:-1])
