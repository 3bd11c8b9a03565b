"""The boundaries of a group-sequential test: Lan-DeMets spending, the z boundaries of a known σ,
and the boundaries of the paired t statistic that each stage actually computes.

Boundaries are one-sided and on the z scale: crossing c_k at stage k means the stage's statistic
has an upper tail probability below Φ̄(c_k). With σ known the stages' z statistics are jointly
normal with correlation sqrt(t_i / t_j) and the first-crossing probabilities follow from the
recursive integration of Armitage, McPherson & Rowe (1969; Jennison & Turnbull 2000, ch. 19, as
in gsDesign): exact to ~1e-12 and smooth in c, so each boundary is solved to 1e-8. (scipy's
multivariate_normal.cdf is randomised quasi-Monte Carlo: its noise at a usable speed, ~1e-6, is
above that precision.)

A stage of n seeds estimates σ with n - 1 degrees of freedom, and its t statistics are not
jointly normal: reading each t through its own tail (z = Φ⁻¹(F_t(t)), the "significance level
approach", Jennison & Turnbull 2000, §11.2) spends 3-14 % more α than budgeted at 3-20 seeds.
t_boundaries therefore solves each stage's boundary for the t statistics themselves: their
joint null distribution does not depend on σ (t is scale-free), so it is simulated once, from
each stage's sufficient statistics (the new seeds' sum, normal, and their sum of squares about
their mean, χ²), and the z process of the same draws serves as a control variate whose
probability is known exactly. The estimate is then raised by MARGIN Monte-Carlo standard errors,
so that a stage spends at most its budget unless the simulation errs by more than that. The
first stage has one t statistic, whose tail is exact: its boundary is the known-σ one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize, stats

from regbench.stats.defaults import DEFAULT_SPENDING

XTOL = 1e-8  # each boundary to this in z
GRID = 601  # points of the recursive integration per stage (odd: Simpson's rule)
WIDTH = 10.0  # standard deviations of the score kept below a boundary (the mass beyond: ~1e-23)
PATHS = 1_000_000  # simulated null studies for the t boundaries (twice: each also mirrored)
MARGIN = 2.0  # Monte-Carlo standard errors added to each stage's simulated spending
SIM_SEED = 20_231  # the simulation is fixed: the same stages give the same boundaries

SPENDING = ("obf", "pocock")  # Lan-DeMets spending functions: which stages the α goes to


def spent(t: np.ndarray, alpha: float, spending: str = DEFAULT_SPENDING) -> np.ndarray:
    """α spent by information fractions t (K,): Lan-DeMets O'Brien-Fleming-type ("obf": almost
    nothing early, the last stage near a fixed design's level) or Pocock-type ("pocock": evenly,
    so clear differences stop early and the last stage pays for it; Lan & DeMets 1983)."""
    if spending == "pocock":
        return alpha * np.log1p((np.e - 1) * t)
    return 2 * stats.norm.sf(stats.norm.isf(alpha / 2) / np.sqrt(t))


def _simpson(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """GRID points on [low, high] and their composite Simpson weights."""
    x = np.linspace(low, high, GRID)
    w = np.ones(GRID)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, w * (high - low) / (3 * (GRID - 1))


class _Normal:
    """The score S_k = Z_k sqrt(I_k) of a known σ, stage by stage: its density on the region not
    yet stopped (f on grid x with weights w), so that each next stage's first-crossing probability
    is one integral."""

    def __init__(self, info: np.ndarray) -> None:
        self.info = info
        self.x, self.w = np.zeros(1), np.ones(1)
        self.f = np.ones(1)  # S_0 = 0: a point mass

    def crossing(self, k: int, c: float) -> float:
        """P(not stopped before stage k and Z_k ≥ c)."""
        sd = np.sqrt(self.info[k] - (self.info[k - 1] if k else 0.0))
        tail = stats.norm.sf((c * np.sqrt(self.info[k]) - self.x) / sd)
        return float(np.sum(self.w * self.f * tail))

    def stop_at(self, k: int, c: float) -> None:
        """Move the density on to stage k, keeping what stays below c."""
        sd = np.sqrt(self.info[k] - (self.info[k - 1] if k else 0.0))
        root = np.sqrt(self.info[k])
        x, w = _simpson(-WIDTH * root, c * root)
        kernel = stats.norm.pdf((x[:, None] - self.x[None, :]) / sd) / sd
        self.f, self.x, self.w = kernel @ (self.w * self.f), x, w


def _z_excess(normal: _Normal, k: int, target: float, c: float) -> float:
    return normal.crossing(k, c) - target


def _solve(excess: Callable[[float], float], start: float) -> float:
    """The c at which excess(c) = 0 (excess falls with c), bracketed around start."""
    low, high = start - 1.0, start + 1.0
    while excess(low) < 0:
        low -= 1.0
    while excess(high) > 0:
        high += 1.0
    return float(optimize.brentq(excess, low, high, xtol=XTOL, rtol=4 * np.finfo(float).eps))


def boundaries(stages: Sequence[int], alpha: float, spending: str = DEFAULT_SPENDING) -> np.ndarray:
    """stages: (K,) cumulative seeds per arm, increasing -> (K,) one-sided z boundaries of a
    known σ: crossing c_k first at stage k has probability spent(t_k) - spent(t_{k-1}) under the
    null of jointly normal z statistics."""
    info = np.asarray(stages, float) / stages[-1]
    cum = spent(info, alpha, spending)
    normal, c = _Normal(info), np.empty(len(info))
    for k in range(len(info)):
        target = cum[k] - (cum[k - 1] if k else 0.0)
        c[k] = _solve(functools.partial(_z_excess, normal, k, target), stats.norm.isf(target))
        normal.stop_at(k, c[k])
    return c


def _null_paths(stages: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(t statistics, z statistics), each (K, 2 PATHS): the stages' paired t of simulated null
    studies (σ = 1) and the z of the same draws with σ known; the second half mirrors the first
    (the null is symmetric, so both halves are draws of it)."""
    rng = np.random.default_rng(SIM_SEED)
    t, z = np.empty((len(stages), 2 * PATHS)), np.empty((len(stages), 2 * PATHS))
    s, squares, before = np.zeros(PATHS), np.zeros(PATHS), 0
    for k, n in enumerate(stages):
        m = n - before  # the stage's new seeds: their sum, and their squares about their mean
        new = rng.standard_normal(PATHS) * np.sqrt(m)
        squares += (rng.chisquare(m - 1, PATHS) if m > 1 else 0.0) + new**2 / m
        s += new
        t[k, :PATHS] = s / np.sqrt(n * (squares - s**2 / n) / (n - 1))
        z[k, :PATHS] = s / np.sqrt(n)
        before = n
    t[:, PATHS:], z[:, PATHS:] = -t[:, :PATHS], -z[:, :PATHS]
    return t, z


@functools.lru_cache(maxsize=1)  # 16 bytes x 4 PATHS a stage: only the last design's
def _paths(stages: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return _null_paths(stages)


def _t_excess(
    normal: _Normal,
    k: int,
    target: float,
    df: int,
    t_alive: np.ndarray,
    z_alive: np.ndarray,
    both: np.ndarray,
    t: np.ndarray,
    z: np.ndarray,
) -> Callable[[float], float]:
    """Stage k's spending at boundary c less its target, for the t statistics (df degrees of
    freedom): the exact known-σ spending plus the simulated difference the estimated σ makes
    (t_alive, z_alive: stage k's statistics of the paths not stopped before; both: a mask of
    the paths neither process stopped; t, z: (paths,) stage k's statistics), plus MARGIN
    standard errors of that difference."""
    t_sorted, z_sorted = np.sort(t_alive), np.sort(z_alive)
    t_both, z_both = t[both], z[both]

    def excess(c: float) -> float:
        bound = stats.t.isf(stats.norm.sf(c), df)
        n_t = len(t_sorted) - np.searchsorted(t_sorted, bound)
        n_z = len(z_sorted) - np.searchsorted(z_sorted, c)
        n_both = np.count_nonzero((t_both >= bound) & (z_both >= c))
        diff = (n_t - n_z) / len(t)
        # var(I_t - I_z) per path: P(I_t != I_z) - diff², from the counts
        var = (n_t + n_z - 2 * n_both) / len(t) - diff**2
        se = np.sqrt(max(var, 0.0) / PATHS)  # mirrored halves: PATHS independent pairs
        return normal.crossing(k, c) + diff + MARGIN * se - target

    return excess


def t_boundaries(
    stages: Sequence[int], alpha: float, spending: str = DEFAULT_SPENDING
) -> np.ndarray:
    """stages: (K,) cumulative seeds per arm -> (K,) one-sided boundaries on the z scale of the
    paired t statistics (stage k reads t through its tail with stages[k] - 1 degrees of freedom):
    crossing first at stage k has probability at most spent(t_k) - spent(t_{k-1}) under the null,
    the exact known-σ probability plus the simulated difference the estimated σ makes, plus
    MARGIN of that difference's standard errors."""
    stages = tuple(int(s) for s in stages)
    info = np.asarray(stages, float) / stages[-1]
    cum = spent(info, alpha, spending)
    c = boundaries(stages, alpha, spending)  # stage 1 is exact; later stages start from here
    if len(stages) == 1:
        return c
    t, z = _paths(stages)
    normal = _Normal(info)
    normal.stop_at(0, c[0])
    alive_t = t[0] < stats.t.isf(stats.norm.sf(c[0]), stages[0] - 1)
    alive_z = z[0] < c[0]
    for k in range(1, len(stages)):
        target, df = cum[k] - cum[k - 1], stages[k] - 1
        excess = _t_excess(
            normal, k, target, df, t[k, alive_t], z[k, alive_z], alive_t & alive_z, t[k], z[k]
        )
        c[k] = _solve(excess, c[k])
        normal.stop_at(k, c[k])
        alive_t &= t[k] < stats.t.isf(stats.norm.sf(c[k]), df)
        alive_z &= z[k] < c[k]
    return c
