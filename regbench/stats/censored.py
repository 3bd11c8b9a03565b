"""Paired comparisons of censored times (epochs to a validation target that a run may never
reach): each seed's pair scores sign(arm − baseline), a censored time (inf) tied with every other
censored one at the worst rank, so that the score never depends on a number put in for "never".

The mean score is P(arm slower) − P(arm faster) over seeds (ties 0), Gehan's (1965) generalized
Wilcoxon score for one pair at a time, with the two runs of a pair censored at the same epoch
(the run's end). The staged test treats the scores as its paired differences: in [-1, 1], δ in
the same units (0.2: a fifth more pairs one way than the other).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def paired_signs(arm: np.ndarray | list[float], base: np.ndarray | list[float]) -> np.ndarray:
    """(n,) times of the arm and of its baseline, seed by seed, inf where censored -> (n,) scores
    in {-1, 0, +1}: -1 the arm reached the target first, +1 the baseline did, 0 a tie (also both
    censored)."""
    a, b = np.asarray(arm, float), np.asarray(base, float)
    if a.shape != b.shape:
        raise ValueError(f"paired times of different lengths: {a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("a time is NaN; a censored time is inf")
    both = np.isinf(a) & np.isinf(b)
    with np.errstate(invalid="ignore"):
        return np.where(both, 0.0, np.sign(a - b))


def unanimous(d: np.ndarray, bound: float) -> int:
    """d: (n,) paired scores in {-1, 0, +1} (paired signs, or differences of a 0/1 outcome such as
    divergence) -> +1 or -1 when every pair moved the same way and the exact sign test, P(all n
    alike | no effect) = 0.5^n, is within the one-sided level of the stage's z boundary; else 0.
    The t test reads such scores as having no spread and decides nothing; the sign test is the
    exact test for them (all diverged in one arm, none in the other, is a result)."""
    d = np.asarray(d, float)
    if len(d) == 0 or not (np.all(d > 0) or np.all(d < 0)):
        return 0
    return int(np.sign(d[0])) if 0.5 ** len(d) <= stats.norm.sf(bound) else 0
