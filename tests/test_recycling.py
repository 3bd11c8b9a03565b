"""Recycling α (Maurer & Bretz 2013, Holm-type within each kind of claim): a decided
comparison's α passes to the open ones of its kind, at the current and past looks, and each
kind's family-wise error stays within α/2 (issue 37, item 9)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from regbench.stats import sequential
from regbench.stats.decide import DOWN, EQUIVALENT, UP, Question

Q = Question(0.005)
DESIGN = sequential.make_design(Q, (5, 10), 2, "pocock", futility=0)
SHAPE = np.array([-2, -1, 0, 1, 2]) / np.sqrt(2.5)  # mean 0, SD 1


def first_look_t(level: float) -> float:
    """By hand: Pocock-type spending at the first look (5 of 10 seeds) of a one-sided test at
    `level`, level·ln(1 + (e − 1)/2), read as a t quantile with 4 degrees of freedom (one t
    statistic at the first look: its tail is exact)."""
    return float(stats.t.isf(level * math.log1p((math.e - 1) * 0.5), 4))


def with_t(t: float, sd: float = 0.005) -> np.ndarray:
    """Five paired differences whose t statistic is t."""
    return t * sd / math.sqrt(5) + sd * SHAPE


def test_a_rejection_passes_its_alpha_to_the_open_comparison() -> None:
    """m = 2: each side of a difference test at α/(4m) = 0.00625 first; once the other
    comparison is found better, the one left is tested at α/4 = 0.0125 a side. A t between the
    two boundaries is open alone and better beside a clear difference, at the first look and,
    when the rejection comes later, at that past look too."""
    base, recycled = first_look_t(0.05 / 8), first_look_t(0.05 / 4)
    assert recycled < base - 0.5
    # a raised level lowers every look's boundary (the shortcut of the closed test needs it)
    for kind in ("diff", "equiv"):
        first, raised = (sequential._t_bounds(DESIGN, kind, r) for r in (0, 1))
        assert (raised < first).all()
    assert sequential._t_bounds(DESIGN, "diff", 1)[0] == pytest.approx(recycled, rel=1e-6)
    b = with_t((base + recycled) / 2)
    clear = 0.05 + 0.001 * np.concatenate([SHAPE, SHAPE])
    assert sequential.decide_stage({"b": b}, DESIGN, 0)[0] == {"b": "open"}
    both, _ = sequential.decide_stage({"a": clear[:5], "b": b}, DESIGN, 0)
    assert both == {"a": "better", "b": "better"}
    assert sequential.decide_stage({"b": b}, DESIGN, 0, decided=["better"])[0] == {"b": "better"}
    # an equivalence passes its α to equivalence only; without recycling nothing passes
    assert sequential.decide_stage({"b": b}, DESIGN, 0, decided=["equivalent"])[0] == {"b": "open"}
    off = replace(DESIGN, recycle=False)
    assert sequential.decide_stage({"b": b}, off, 0, decided=["better"])[0] == {"b": "open"}
    # stage 2: b's ten seeds average 0, but its first five cross the recycled first boundary
    later = np.concatenate([b, -b])
    assert sequential.decide_stage({"b": later}, DESIGN, 1)[0] == {"b": "undecided"}
    verdicts, _ = sequential.decide_stage({"a": clear, "b": later}, DESIGN, 1)
    assert verdicts == {"a": "better", "b": "better"}


def test_each_kinds_family_wise_error_holds_where_recycling_is_largest() -> None:
    """40,000 studies of m = 2: with the other comparison decided at the first look, the one
    left spends up to α/2 of its kind (not α/(2m)), and no more; with both nulls true the family
    stays within α/2 too."""
    rng, n, half = np.random.default_rng(3), 40_000, Q.alpha / 2
    se = math.sqrt(half * (1 - half) / n)
    d = 0.005
    x = np.stack([rng.normal(20 * d, d, (n, 20)), rng.normal(0, 10 * d, (n, 20))], 1)
    codes, _ = sequential.run_design(x[..., :10], DESIGN)
    assert (codes[:, 0] == UP).all()
    wrong = np.isin(codes[:, 1], (UP, DOWN)).mean()
    assert Q.alpha / 4 + 4 * se < wrong <= half + 2 * se
    x = np.stack([rng.normal(0, d / 20, (n, 10)), rng.normal(d, d, (n, 10))], 1)
    codes, _ = sequential.run_design(x, DESIGN)
    assert (codes[:, 0] == EQUIVALENT).all() and (codes[:, 1] == EQUIVALENT).mean() <= half + 2 * se
    codes, _ = sequential.run_design(rng.normal(0, 10 * d, (n, 2, 10)), DESIGN)
    assert np.isin(codes, (UP, DOWN)).any(-1).mean() <= half + 2 * se
