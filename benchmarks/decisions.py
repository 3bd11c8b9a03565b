"""How often `compare`'s verdicts are right, by simulation: the fixed design (every seed of the
plan, Holm at α/2 per kind of claim) against the staged one (sequential.design: Lan-DeMets O'Brien-
Fleming-type boundaries, stopping each comparison at the first stage that decides it or finds it
futile), what the futility rule saves where the budget is too small, and how honest a plan from a
4-seed pilot is. Synthetic paired differences, no training.

    python benchmarks/decisions.py [--studies 4000] [--comparisons 3] [--seed 0]
                                   [--error-studies 100000] [--only errors]

The error table: per-comparison error at Δ = 0 (better/worse) and at |Δ| = δ (equivalent) of
the staged t test at few seeds with α recycled, O'Brien-Fleming- and Pocock-type, and each
kind's family-wise error against α/2, with power and seeds spent beside them (with recycling
and without).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import numpy as np

from regbench.stats import decide, sequential
from regbench.stats.decide import DOWN, EQUIVALENT, UP, Question

SD = 0.005  # SD of the paired differences: δ = 0.005 is one SD


def rates(codes: np.ndarray, used: np.ndarray) -> str:
    """codes, used: (studies, m) -> the share of studies with any better/worse claim, the
    shares of comparisons found better / equivalent, and the mean seeds per arm spent."""
    claim = np.mean(np.isin(codes, (UP, DOWN)).any(-1))
    better, equiv = np.mean(codes == UP), np.mean(codes == EQUIVALENT)
    return f"{claim:>9.3f} {better:>7.3f} {equiv:>7.3f} {used.mean():>7.1f}"


def scenarios(q: Question, m: int, studies: int, rng: np.random.Generator) -> None:
    staged = sequential.design(q, SD, None, m)
    n_fixed = int(max(decide.plan(SD, None, True, q, q.alpha / (2 * m))))
    print(f"δ = {q.delta}, SD of the differences = {SD}, α = {q.alpha}, power = {q.power}, ")
    print(f"m = {m} comparisons, {studies} simulated studies per row")
    print(f"fixed: {n_fixed} seeds per arm; staged: stages {staged.stages}\n")
    print(f"{'true Δ':>8} {'design':>7} {'any claim':>9} {'better':>7} {'equiv':>7} {'seeds':>7}")
    for true in (0.0, q.delta, 2 * q.delta):
        d = rng.normal(true, SD, (studies, m, max(staged.stages[-1], n_fixed)))
        fixed = decide.fixed_codes(d[..., :n_fixed], q)
        print(f"{true:>8} {'fixed':>7} {rates(fixed, np.full(fixed.shape, n_fixed))}")
        for name, x in (("staged", staged), ("no fut.", replace(staged, futility=0.0))):
            codes, used = sequential.run_design(d[..., : staged.stages[-1]], x)
            print(f"{'':>8} {name:>7} {rates(codes, used)}")
    mc = math.sqrt(q.alpha * (1 - q.alpha) / studies)
    print(f"\nany claim at Δ = 0 should be ≤ α = {q.alpha} (Monte-Carlo SE {mc:.4f}); better at")
    print(f"Δ = δ and equiv at Δ = 0 should be ≥ power = {q.power}; seeds: mean per arm spent")


def _case(q: Question, case: str, m: int, studies: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(studies, m, n) paired differences of an error case and the mask of its true nulls of
    the kind it probes: "all 0": every Δ = 0 at SD 10δ (equivalence out of reach: every path
    stays open for the difference test); "all δ": every Δ = δ at SD δ (TOST's worst case, see
    error_table); "one 0" / "one δ": the same null for one comparison, the others decided at
    their first possible look (Δ = δ or 0 at SD δ/10⁵): each rejection passes its α to the one
    left, the Holm family's worst case."""
    d, null = q.delta or 0.0, np.zeros(m, bool)
    one, sharp = case.startswith("one"), d * 1e-5
    true, sd = (0.0, 10 * d) if case.endswith("0") else (d, d)
    x = rng.normal(true, sd, (studies, m, n))
    null[:] = not one
    if one:
        null[-1] = True
        x[:, :-1] = rng.normal(d if true == 0 else 0.0, sharp, (studies, m - 1, n))
    return x, null


def error_table(q: Question, studies: int, rng: np.random.Generator, m: int = 4) -> None:
    """Per stages and spending, with α recycled (the default) and without futility (the rule
    only withholds claims): the errors where they are largest (_case): at Δ = 0 the share of the
    null comparisons found better or worse, at Δ = δ found equivalent, and the share of studies
    with any such claim (the family of that kind: ≤ α/2). Beside the "all" cases, at an SD of δ
    and the default futility: the power (equivalent at Δ = 0, better at Δ = δ) and the seeds per
    arm spent, with recycling and without."""
    level, half = q.alpha / (2 * m), q.alpha / 2
    se_half = math.sqrt(half * (1 - half) / studies)
    print(f"\nerror at few seeds, α recycled: m = {m}, α = {q.alpha}, α/(2m) = {level}; each ")
    print(f"kind's family ≤ {half} + 2 SE ({half + 2 * se_half:.4f}); {studies:,} studies per row")
    print("         stages spending  case  error/cmp  family  ok | power  seeds | no recycling")
    for stages in ((3, 6, 9, 12), (5, 10, 15, 20)):
        for spending in sequential.SPENDING:
            d = sequential.make_design(q, stages, m, spending, futility=0.0)
            for case in ("all 0", "all δ", "one 0", "one δ"):
                x, null = _case(q, case, m, studies, stages[-1], rng)
                codes, _ = sequential.run_design(x, d)
                kind = np.isin(codes, (UP, DOWN)) if case.endswith("0") else codes == EQUIVALENT
                err, family = kind[:, null].mean(), kind[:, null].any(-1).mean()
                ok = family <= half + 2 * se_half
                row = f"{str(stages):>15} {spending:>8} {case:>5} {err:>10.5f} {family:>7.4f} {'yes' if ok else 'NO':>3}"  # fmt: skip
                if case.startswith("all"):
                    true = 0.0 if case.endswith("0") else q.delta
                    x = rng.normal(true, q.delta, (studies, m, stages[-1]))
                    for r in (True, False):
                        c, used = sequential.run_design(x, replace(d, futility=sequential.FUTILITY, recycle=r))  # fmt: skip
                        right = c == EQUIVALENT if true == 0 else c == UP
                        row += f" | {right.mean():>5.3f} {used.mean():>6.2f}"
                print(row)
    print(f"MC SE of a family rate near α/2: {se_half:.5f}")


def decide_study(q: Question, studies: int, rng: np.random.Generator) -> None:
    """study=decide's design (4 comparisons, stages 5/10/15/20): per spending, the largest SD of
    the paired differences its budget of 20 is planned for (sequential.last_stage_need), and the
    power the staged study reaches there, with and without futility."""
    from scipy import optimize

    print(f"\nstudy=decide: m = 4, stages (5, 10, 15, 20), {studies:,} studies per row")
    print("spending  planned SD  fut.  better at +δ  equiv at 0  seeds(+δ)  seeds(0)")
    for spending in sequential.SPENDING:
        d = sequential.make_design(q, (5, 10, 15, 20), 4, spending)
        sd = optimize.brentq(
            lambda s, d=d: sequential.last_stage_need(d, s, None) - 20.5, 1e-4, 0.05, xtol=1e-6
        )
        for fut in (sequential.FUTILITY, 0.0):
            x = replace(d, futility=fut)
            up, used_up = sequential.run_design(rng.normal(q.delta, sd, (studies, 4, 20)), x)
            eq, used_eq = sequential.run_design(rng.normal(0, sd, (studies, 4, 20)), x)
            print(
                f"{spending:>8} {sd:>11.5f} {fut:>5} {np.mean(up == UP):>13.3f} "
                f"{np.mean(eq == EQUIVALENT):>11.3f} {used_up.mean():>10.2f} {used_eq.mean():>9.2f}"
            )


def small_budget(q: Question, m: int, studies: int, rng: np.random.Generator) -> None:
    """A budget far below what δ needs (20 seeds, SD 3δ): what the futility rule saves."""
    print(
        f"\nbudget too small: stages (5, 10, 15, 20), Pocock-type, SD of the differences {3 * SD}"
    )
    print(f"{'true Δ':>8} {'design':>7} {'any claim':>9} {'better':>7} {'equiv':>7} {'seeds':>7}")
    staged = sequential.make_design(q, (5, 10, 15, 20), m, "pocock")
    for true in (0.0, q.delta, 2 * q.delta):
        d = rng.normal(true, 3 * SD, (studies, m, 20))
        for name, x in (("staged", staged), ("no fut.", replace(staged, futility=0.0))):
            print(f"{true:>8} {name:>7} {rates(*sequential.run_design(d, x))}")


def pilot_plans(q: Question, studies: int, rng: np.random.Generator) -> None:
    """Plan one comparison from a 4-seed pilot's SD (80% upper bound), then run that plan."""
    pilots = rng.normal(0, SD, (studies, 4)).std(-1, ddof=1)
    plans = np.array([decide.plan(s, 3, True, q, q.alpha / 2)[0] for s in pilots])
    found = np.zeros(studies, bool)
    for n in np.unique(plans):  # studies with the same plan, vectorised together
        sel = plans == n
        d = rng.normal(q.delta, SD, (int(sel.sum()), 1, int(n)))
        found[sel] = (decide.fixed_codes(d, q) == UP)[:, 0]
    known = decide.plan(SD, None, True, q, q.alpha / 2)[0]
    sd_plans = np.array([decide.plan(s, None, True, q, q.alpha / 2)[0] for s in pilots])
    print(f"\npilot of 4 seeds, plan to detect δ at α/2 (m = 1): median {np.median(plans):.0f}")
    print(f"seeds per arm (known SD: {known:.0f}); power reached {found.mean():.3f}; plans at")
    print(f"least the known-SD one: {np.mean(plans >= known):.3f} from the SD's upper bound")
    print(
        f"(confidence {decide.SD_CONFIDENCE}), {np.mean(sd_plans >= known):.3f} from the SD itself"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4000)
    parser.add_argument("--comparisons", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--error-studies", type=int, default=100_000)
    parser.add_argument("--only", choices=["errors", "study"], default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    q = Question(delta=0.005, alpha=0.05, power=0.8)
    if args.only != "study":
        error_table(q, args.error_studies, rng)
    if args.only != "errors":
        decide_study(q, args.error_studies, rng)
    if args.only is not None:
        print(f"\n{time.perf_counter() - start:.1f} s")
        return
    scenarios(q, args.comparisons, args.studies, rng)
    small_budget(q, args.comparisons, args.studies, rng)
    pilot_plans(q, args.studies, rng)
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
