"""regbench's staged study against AdaStop (Mathieu et al. 2023, the `adastop` package) on the
same simulated studies: 4 arms and one shared baseline, runs on the 359-image grid of digits'
test set, each arm's run correlated ρ with its seed's baseline run; both stop at most after 4
looks of 5 seeds per arm, at family-wise α = 0.05. Per setting: the runs spent, the family-wise
error (any better/worse claim when every Δ = 0) and the power (each arm found better at Δ = +δ).

    pip install adastop==0.1.3   # not a regbench dependency
    python benchmarks/adastop_compare.py [--studies 200] [--permutations 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from regbench.stats import sequential
from regbench.stats.decide import DOWN, UP, Question

N_TEST, SD, ARMS, STAGES = 359, 0.0035, 4, (5, 10, 15, 20)  # SD of one run's test accuracy


def studies(rng: np.random.Generator, n: int, rho: float, delta: float) -> np.ndarray:
    """(n, 1 + ARMS, 20) test accuracies, baseline first, on the k / N_TEST grid."""
    base = rng.normal(0, 1, (n, 1, STAGES[-1]))
    own = rng.normal(0, 1, (n, ARMS, STAGES[-1]))
    arms = delta + SD * (rho * base + np.sqrt(1 - rho**2) * own)
    x = 0.97 + np.concatenate([SD * base, arms], 1)
    return np.rint(x * N_TEST) / N_TEST


def regbench_row(x: np.ndarray, design: sequential.Design) -> tuple[float, float, float]:
    """(runs per study, share of studies with any claim of a difference, share found better)."""
    codes, used = sequential.run_design(x[:, 1:] - x[:, :1], design)
    runs = used.max(-1) + used.sum(-1)  # the baseline runs while any of its arms is open
    return runs.mean(), np.isin(codes, (UP, DOWN)).any(-1).mean(), (codes == UP).mean()


def adastop_row(x: np.ndarray, permutations: int) -> tuple[float, float, float]:
    from adastop import MultipleAgentsComparator

    runs, any_claim, better = [], [], []
    for s, study in enumerate(x):
        c = MultipleAgentsComparator(
            n=5, K=4, B=permutations, alpha=0.05, seed=s,
            comparisons=np.array([(0, i) for i in range(1, ARMS + 1)]),
        )  # fmt: skip
        names = [f"a{i}" for i in range(ARMS + 1)]
        for k in range(4):
            c.partial_compare({a: study[i, : 5 * (k + 1)] for i, a in enumerate(names)}, False)
            if c.is_finished:
                break
        decisions = list(c.decisions.values())
        runs.append(sum(c.n_iters.values()))
        any_claim.append(any(d in ("larger", "smaller") for d in decisions))
        better.append(np.mean([d == "smaller" for d in decisions]))  # baseline < arm
    return float(np.mean(runs)), float(np.mean(any_claim)), float(np.mean(better))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--permutations", type=int, default=2000)
    args = parser.parse_args()
    q = Question(0.005)
    design = sequential.make_design(q, STAGES, ARMS, "pocock")
    print(f"{args.studies} studies per row; run SD {SD}, δ = {q.delta}, α = {q.alpha}")
    print("   ρ  true Δ   method   runs  any claim  better")
    start = time.perf_counter()
    for rho in (0.0, 0.9):
        for delta in (0.0, q.delta):
            x = studies(np.random.default_rng(int(rho * 10) + int(delta * 1000)), args.studies, rho, delta)  # fmt: skip
            for name, row in (
                ("regbench", regbench_row(x, design)),
                ("adastop", adastop_row(x, args.permutations)),
            ):
                print(
                    f"{rho:>4} {delta:>7} {name:>8} {row[0]:>6.1f} {row[1]:>10.3f} {row[2]:>7.3f}"
                )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
