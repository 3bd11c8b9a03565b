"""decide.py: the question, verdicts with family-wise error control, plans for δ and the staged
design, against statsmodels / scipy and by simulation (synthetic differences, no training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from regbench.stats import decide, sequential
from regbench.stats.decide import DOWN, EQUIVALENT, UNDECIDED, UP, Question

STUDIES = 2000  # simulated studies per claim; Monte-Carlo SE of a rate p: sqrt(p (1 - p) / 2000)
Q = Question(delta=0.005, alpha=0.05, power=0.8)
SD = 0.005  # SD of the paired differences: δ is one SD


def mc_se(p: float) -> float:
    return math.sqrt(p * (1 - p) / STUDIES)


def test_question_from_a_mapping_defaults_and_errors() -> None:
    assert decide.question_from(None) == Question(0.005, 0.05, 0.8)
    assert decide.question_from({"delta": 0.01, "power": 0.9}) == Question(0.01, 0.05, 0.9)
    assert decide.question_from({}, metric="test_loss").delta is None  # no unit: no default δ
    with pytest.raises(ValueError, match="unknown key.*seeds"):
        decide.question_from({"seeds": 3})
    with pytest.raises(ValueError, match="must be a number"):
        decide.question_from({"delta": "half a point"})
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        decide.question_from({"alpha": 1.5})
    with pytest.raises(ValueError, match="delta must be a positive"):
        decide.question_from({"delta": 0})


def test_tost_p_values_are_statsmodels() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.95, 0.004, 8), rng.normal(0.951, 0.004, 8)
    assert decide.tost_paired(a - b, 0.005) == pytest.approx(ttost_paired(a, b, -0.005, 0.005)[0])
    c = rng.normal(0.95, 0.006, 5)
    ref = ttost_ind(c, b, -0.005, 0.005, usevar="unequal")[0]
    assert decide.tost_welch(c, b, 0.005) == pytest.approx(ref)


def test_verdicts_are_holm_at_half_alpha_for_each_kind_of_claim() -> None:
    diff = np.array([0.01, -0.01, 0.001, 0.002, 0.0])
    p = np.array([0.004, 0.007, 0.9, 0.02, np.nan])  # NaN: no test (no spread)
    q = np.array([0.9, 0.9, 0.006, 0.3, np.nan])
    codes = decide.verdict_codes(diff, p, q, 0.05)
    differs = multipletests(p[:4], alpha=0.025, method="holm")[0]
    equivalent = multipletests(q[:4], alpha=0.025, method="holm")[0]
    assert list(differs) == [True, True, False, False] and list(equivalent) == [0, 0, 1, 0]
    assert list(codes) == [UP, DOWN, EQUIVALENT, UNDECIDED, UNDECIDED]
    assert decide.verdict_name(UP, lower_is_better=True) == "worse"
    assert decide.verdict_name(DOWN, lower_is_better=True) == "better"


def test_sd_upper_bound_covers_sigma_80_percent_of_the_time() -> None:
    rng = np.random.default_rng(2)
    sds = rng.normal(0, 1.0, (STUDIES, 4)).std(-1, ddof=1)  # 4-seed pilots
    upper = np.array([decide.sd_upper(s, 3) for s in sds])
    assert abs(np.mean(upper >= 1.0) - 0.8) < 3 * mc_se(0.8)
    assert decide.sd_upper(1.0, None) == 1.0


def test_plans_reach_the_power_and_one_seed_fewer_does_not() -> None:
    detect, equiv = decide.plan(0.004, 4, True, Q, 0.025)
    s = decide.sd_upper(0.004, 4)
    assert detect == math.ceil(TTestPower().solve_power(0.005 / s, None, 0.025, 0.8))
    assert decide.equivalence_power(equiv, 0.005, s, True, 0.025) >= 0.8
    assert decide.equivalence_power(equiv - 1, 0.005, s, True, 0.025) < 0.8
    # the TOST power is a lower bound: simulated TOST at that n passes at least as often
    d = np.random.default_rng(3).normal(0, s, (STUDIES, int(equiv)))
    assert np.mean(decide.tost_paired(d, 0.005) < 0.025) >= 0.8 - 2 * mc_se(0.8)
    assert decide.plan(0.0, 4, True, Q, 0.025) == (None, None)
    assert decide.plan(0.004, 4, True, Question(None), 0.025) == (None, None)
    assert decide.plan(1e-6, None, False, Question(1e-9), 0.025) == (math.inf, math.inf)


@pytest.mark.parametrize("paired", [True, False])
def test_detection_plan_reaches_the_power_and_one_fewer_does_not(paired: bool) -> None:
    delta, sd, level = 0.004, 0.006, 0.05
    n, _ = decide.plan(sd, None, paired, Question(delta), level)  # df None: sd known
    analysis = TTestPower() if paired else TTestIndPower()
    assert n == math.ceil(analysis.solve_power(delta / sd, None, level, 0.8))

    def power(k: float) -> float:  # noncentral t, straight from scipy
        df, nc = (
            (k - 1, delta / sd * math.sqrt(k))
            if paired
            else (2 * k - 2, delta / sd * math.sqrt(k / 2))
        )
        crit = sp.t.ppf(1 - level / 2, df)
        return sp.nct.sf(crit, df, nc) + sp.nct.cdf(-crit, df, nc)

    assert power(n) >= 0.8 > power(n - 1)
    # effect 10: 2 seeds give 73% power; statsmodels' power is NaN at 3 (noncentrality ~17)
    assert decide.plan(0.01, None, True, Question(0.1), 0.05)[0] == 3


def test_boundaries_are_the_lan_demets_obrien_fleming_values() -> None:
    # Jennison & Turnbull (2000), one-sided 0.025, 4 equally spaced looks (also gsDesign's sfLDOF)
    expected = [4.3326, 2.9631, 2.3590, 2.0141]
    assert sequential.boundaries([5, 10, 15, 20], 0.025) == pytest.approx(expected, abs=2e-3)
    # the null's chance of ever crossing is alpha, by simulation of the joint normal
    t = np.array([0.25, 0.5, 0.75, 1.0])
    z = np.cumsum(
        np.random.default_rng(4).normal(0, 1, (200_000, 4)) * np.sqrt(np.diff(t, prepend=0)), 1
    )
    crossed = np.mean((z / np.sqrt(t) >= expected).any(1))
    assert crossed == pytest.approx(0.025, abs=0.0015)


def test_decide_stage_names_verdicts_and_open_comparisons() -> None:
    d = sequential.make_design(Q, (4, 8, 12), 2)
    # 4 seeds (3 degrees of freedom) stop only a difference far beyond δ and its noise
    big = np.full(4, 0.02) + np.array([1e-5, -1e-5, 5e-6, 0.0])
    wd = np.array([0.004, -0.003, 0.006, 0.001])
    verdicts, chances = sequential.decide_stage({"aug": -big, "wd": wd}, d, 0)
    assert verdicts == {"aug": "worse", "wd": "open"} and list(chances) == ["wd"]
    assert Q.alpha < chances["wd"] <= 1  # still worth the next stage's seeds
    lower, _ = sequential.decide_stage({"aug": -big}, d, 0, lower_is_better=True)
    assert lower == {"aug": "better"}
    noisy = np.random.default_rng(5).normal(0, 0.01, 12)
    last, chances = sequential.decide_stage({"l2": noisy}, d, 2)
    assert last == {"l2": "undecided"} and chances == {}
    with pytest.raises(ValueError, match="5 differences at stage 0, planned 4"):
        sequential.decide_stage({"l2": noisy[:5]}, d, 0)


def test_a_comparison_the_budget_cannot_decide_stops_undecided() -> None:
    """A spread four times what δ allows (the budget is far too small): at the second look the
    chance that the budget decides it is tiny, so it stops undecided there, not at the budget."""
    d = sequential.make_design(Q, (5, 10, 15, 20), 4, "pocock")
    wide = np.random.default_rng(11).normal(0, 4 * SD, 10)
    wide -= wide.mean()  # an estimate of 0: neither better nor worse in sight
    verdicts, chances = sequential.decide_stage({"dropout": wide}, d, 1)
    assert verdicts == {"dropout": "undecided"} and chances["dropout"] < d.futility
    never = sequential.make_design(Q, (5, 10, 15, 20), 4, "pocock", futility=0)
    assert sequential.decide_stage({"dropout": wide}, never, 1)[0] == {"dropout": "open"}
    with pytest.raises(ValueError, match=r"futility 1: a chance in \[0, 1\)"):
        sequential.make_design(Q, (5, 10), 1, futility=1)


def test_futility_saves_seeds_and_keeps_the_error_where_the_budget_is_too_small() -> None:
    """Studies whose budget (20 seeds) is far below what δ needs at this spread: with Δ = 0 and
    Δ = δ the futility rule spends fewer seeds, and makes no false claim more often than α."""
    rng = np.random.default_rng(12)
    on = sequential.make_design(Q, (5, 10, 15, 20), 2, "pocock")
    off = sequential.make_design(Q, (5, 10, 15, 20), 2, "pocock", futility=0)
    for true in (0.0, Q.delta):
        d = rng.normal(true, 3 * SD, (STUDIES, 2, 20))
        (codes, used), (codes_off, used_off) = (sequential.run_design(d, x) for x in (on, off))
        assert used.mean() < 0.75 * used_off.mean()
        claimed, claimed_off = (np.isin(c, (UP, DOWN, EQUIVALENT)) for c in (codes, codes_off))
        assert not (claimed & ~claimed_off).any()  # it only ever withholds a claim
        if true == 0:
            any_false = np.mean(np.isin(codes, (UP, DOWN)).any(-1))
            assert any_false <= Q.alpha + 2 * mc_se(Q.alpha)


def test_design_refuses_what_it_cannot_plan() -> None:
    with pytest.raises(ValueError, match="needs δ"):
        sequential.design(Question(None), SD, None, 1)
    with pytest.raises(ValueError, match="more than 10,000 seeds"):
        sequential.design(Question(1e-6), SD, None, 1)


@pytest.fixture(scope="module")
def staged() -> sequential.Design:
    return sequential.design(Q, SD, None, comparisons=2)


def fixed_n() -> int:
    return int(max(decide.plan(SD, None, True, Q, Q.alpha / 4)))  # m = 2: α/(2m) per test


def test_no_true_difference_rarely_claims_one(staged: sequential.Design) -> None:
    rng = np.random.default_rng(6)
    staged_codes, _ = sequential.run_design(
        rng.normal(0, SD, (STUDIES, 2, staged.stages[-1])), staged
    )
    fixed = decide.fixed_codes(rng.normal(0, SD, (STUDIES, 2, fixed_n())), Q)
    for codes in (staged_codes, fixed):
        any_claim = np.mean(np.isin(codes, (UP, DOWN)).any(-1))  # family-wise, per study
        assert any_claim <= Q.alpha + 2 * mc_se(Q.alpha)


def test_true_delta_is_found_better_with_the_requested_power(staged: sequential.Design) -> None:
    rng = np.random.default_rng(7)
    codes, used = sequential.run_design(
        rng.normal(Q.delta, SD, (STUDIES, 2, staged.stages[-1])), staged
    )
    assert np.mean(codes == UP) >= Q.power - 2 * mc_se(Q.power)
    assert used.mean() < staged.stages[-1]  # some studies stop early
    fixed = decide.fixed_codes(rng.normal(Q.delta, SD, (STUDIES, 2, fixed_n())), Q)
    assert np.mean(fixed == UP) >= Q.power - 2 * mc_se(Q.power)


def test_no_difference_is_shown_equivalent_with_the_requested_power(
    staged: sequential.Design,
) -> None:
    rng = np.random.default_rng(8)
    codes, _ = sequential.run_design(rng.normal(0, SD, (STUDIES, 2, staged.stages[-1])), staged)
    assert np.mean(codes == EQUIVALENT) >= Q.power - 2 * mc_se(Q.power)
    fixed = decide.fixed_codes(rng.normal(0, SD, (STUDIES, 2, fixed_n())), Q)
    assert np.mean(fixed == EQUIVALENT) >= Q.power - 2 * mc_se(Q.power)


def test_a_difference_at_delta_is_rarely_called_equivalent(staged: sequential.Design) -> None:
    rng = np.random.default_rng(9)
    codes, _ = sequential.run_design(
        rng.normal(Q.delta, SD, (STUDIES, 2, staged.stages[-1])), staged
    )
    false_equivalence = np.mean((codes == EQUIVALENT).any(-1))
    assert false_equivalence <= Q.alpha + 2 * mc_se(Q.alpha)


def test_pocock_spending_stops_earlier_and_keeps_the_error() -> None:
    """Pocock-type boundaries sit lower at the first looks than O'Brien-Fleming-type ones and
    higher at the last; the null's chance of ever crossing is still alpha (joint normal)."""
    obf = sequential.boundaries([5, 10, 15, 20], 0.025)
    pocock = sequential.boundaries([5, 10, 15, 20], 0.025, "pocock")
    assert pocock[0] < obf[0] - 1.5 and pocock[-1] > obf[-1]
    t = np.array([0.25, 0.5, 0.75, 1.0])
    z = np.cumsum(
        np.random.default_rng(9).normal(0, 1, (200_000, 4)) * np.sqrt(np.diff(t, prepend=0)), 1
    )
    assert np.mean((z / np.sqrt(t) >= pocock).any(1)) == pytest.approx(0.025, abs=0.0015)
    d = sequential.make_design(Q, (5, 10, 15, 20), 2, "pocock")
    codes, _ = sequential.run_design(np.random.default_rng(10).normal(0, SD, (STUDIES, 2, 20)), d)
    assert np.mean(np.isin(codes, (UP, DOWN)).any(-1)) <= Q.alpha + 2 * mc_se(Q.alpha)


def test_fixed_codes_leave_a_callers_frozen_objects_frozen():
    import gc

    d = np.random.default_rng(0).normal(0.01, 0.01, (3, 2, 5))
    question = Question(0.005, 0.05, 0.8)
    decide.fixed_codes(d, question)
    assert gc.get_freeze_count() == 0  # nothing left frozen when nothing was
    gc.freeze()
    try:
        held = gc.get_freeze_count()
        decide.fixed_codes(d, question)
        assert gc.get_freeze_count() >= held  # the caller's freeze is not thawed
    finally:
        gc.unfreeze()
