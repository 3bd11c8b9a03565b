"""regbench's staged study against AdaStop (Mathieu et al. 2023, the `adastop` package) on the
same simulated studies: 4 arms and one shared baseline, runs on the 359-image grid of digits'
test set, each arm's run correlated ρ with its seed's baseline run; both stop at most after 4
looks of 5 seeds per arm, at family-wise α = 0.05. Per setting: the runs spent, the family-wise
error (any better/worse claim when every Δ = 0) and the power (each arm found better at Δ = +δ),
each with its Monte-Carlo SE; regbench with α recycled (the default), without, and with its
difference claims given AdaStop's whole α (its question's α doubled: α/2 = 0.05 per kind), with
and without futility.

AdaStop's permutations are slow (seconds a study), so its per-study results are appended to
--log as they come and a rerun goes on from there (--adastop-only fills the log, several such
processes with different --rho can share the work); its rows are read from the log. regbench's
rows are computed on the first --studies studies of each setting, the same draws AdaStop sees
first.

    pip install adastop==0.1.3   # not a regbench dependency
    python benchmarks/adastop_compare.py [--studies 100000] [--adastop-studies 1000]
        [--permutations 1000] [--log outputs/adastop_log.jsonl ...] [--adastop-only]
        [--first 0] [--minutes inf] [--rho 0 0.9]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from regbench.stats import sequential
from regbench.stats.decide import DOWN, UP, Question

N_TEST, SD, ARMS, STAGES = 359, 0.0035, 4, (5, 10, 15, 20)  # SD of one run's test accuracy
DRAWN = 100_000  # studies drawn per setting: a study's draws do not depend on how many are used


def studies(rho: float, delta: float, n: int = DRAWN) -> np.ndarray:
    """(n, 1 + ARMS, 20) test accuracies, baseline first, on the k / N_TEST grid; the first n
    of the setting's fixed DRAWN studies."""
    rng = np.random.default_rng(int(rho * 10) + int(delta * 1000))
    base = rng.normal(0, 1, (DRAWN, 1, STAGES[-1]))[:n]
    own = rng.normal(0, 1, (DRAWN, ARMS, STAGES[-1]))[:n]
    arms = delta + SD * (rho * base + np.sqrt(1 - rho**2) * own)
    x = 0.97 + np.concatenate([SD * base, arms], 1)
    return np.rint(x * N_TEST) / N_TEST


def regbench_study(x: np.ndarray, design: sequential.Design) -> np.ndarray:
    """(studies, 3): runs, any difference claimed, share of arms found better."""
    codes, used = sequential.run_design(x[:, 1:] - x[:, :1], design)
    runs = used.max(-1) + used.sum(-1)  # the baseline runs while any of its arms is open
    return np.stack([runs, np.isin(codes, (UP, DOWN)).any(-1), (codes == UP).mean(-1)], 1)


def adastop_study(study: np.ndarray, permutations: int, seed: int) -> list[float]:
    """One study's [runs, any difference claimed, share of arms found better] by AdaStop."""
    from adastop import MultipleAgentsComparator

    c = MultipleAgentsComparator(
        n=5, K=4, B=permutations, alpha=0.05, seed=seed,
        comparisons=np.array([(0, i) for i in range(1, ARMS + 1)]),
    )  # fmt: skip
    names = [f"a{i}" for i in range(ARMS + 1)]
    for k in range(4):
        c.partial_compare({a: study[i, : 5 * (k + 1)] for i, a in enumerate(names)}, False)
        if c.is_finished:
            break
    decisions = list(c.decisions.values())
    return [
        float(sum(c.n_iters.values())),
        float(any(d in ("larger", "smaller") for d in decisions)),
        float(np.mean([d == "smaller" for d in decisions])),  # baseline < arm
    ]


def fill_log(args: argparse.Namespace, deadline: float) -> None:
    """AdaStop on studies --first.. --adastop-studies of each setting, round-robin over the
    settings so that every row grows alike, each result appended to the first --log (what the
    logs hold already is skipped)."""
    log, n, permutations = args.log[0], args.adastop_studies, args.permutations
    done = {(r["rho"], r["delta"], r["i"]) for r in read_log(args.log, permutations)}
    settings = [(rho, delta) for rho in args.rho for delta in (0.0, Question().delta or 0.0)]
    data = {s: studies(*s, n) for s in settings}
    for i in range(args.first, n):
        for rho, delta in settings:
            if (rho, delta, i) in done or time.time() > deadline:
                continue
            row = adastop_study(data[rho, delta][i], permutations, i)
            entry = {"rho": rho, "delta": delta, "i": i, "B": permutations, "row": row}
            with log.open("a") as f:
                f.write(json.dumps(entry) + "\n")


def read_log(logs: list[Path], permutations: int) -> list[dict]:
    """The logged AdaStop studies of this many permutations, each study once, in study order."""
    rows = {}
    for log in logs:
        for line in log.read_text().splitlines() if log.exists() else []:
            try:
                r = json.loads(line)
            except ValueError:  # a line cut short by a stopped process
                continue
            if r["B"] == permutations:
                rows[r["rho"], r["delta"], r["i"]] = r
    return [rows[k] for k in sorted(rows, key=lambda k: k[2])]


def summary(rows: np.ndarray) -> str:
    """rows (studies, 3) -> 'runs ± SE, any claim ± SE, better ± SE, studies'."""
    mean, se = rows.mean(0), rows.std(0, ddof=1) / math.sqrt(len(rows))
    cells = [f"{m:>6.1f} ± {s:<4.1f}" if j == 0 else f"{m:.3f} ± {s:.3f}" for j, (m, s) in enumerate(zip(mean, se, strict=True))]  # fmt: skip
    return "  ".join(cells) + f"  {len(rows):>7,}"


def report(args: argparse.Namespace) -> None:
    q = Question(0.005)
    design = sequential.make_design(q, STAGES, ARMS, "pocock")
    # the difference claims at AdaStop's α (α/2 = 0.05 per kind: the family of both kinds at
    # 0.1): what splitting α between the two kinds of claim costs
    wide = sequential.make_design(Question(0.005, alpha=0.1), STAGES, ARMS, "pocock")
    methods = {
        "regbench": design,
        "no recycl.": replace(design, recycle=False),
        "diff. at α": wide,
        "α, no fut.": replace(wide, futility=0.0),
    }
    logged = read_log(args.log, args.permutations)
    print(f"run SD {SD}, δ = {q.delta}, α = {q.alpha}; AdaStop {args.permutations} permutations")
    print("   ρ  true Δ     method            runs      any claim         better  studies")
    for rho in args.rho:
        for delta in (0.0, q.delta):
            x = studies(rho, delta, args.studies)
            for name, d in methods.items() if args.studies else ():
                print(f"{rho:>4} {delta:>7} {name:>10} {summary(regbench_study(x, d))}")
            ada = {r["i"]: r["row"] for r in logged if (r["rho"], r["delta"]) == (rho, delta)}
            if len(ada) > 1:
                print(
                    f"{rho:>4} {delta:>7} {'adastop':>10} {summary(np.array(list(ada.values())))}"
                )
                same = regbench_study(studies(rho, delta)[list(ada)], design)  # AdaStop's studies
                print(f"{rho:>4} {delta:>7} {'(same)':>10} {summary(same)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000, help="0: AdaStop's rows only")
    parser.add_argument("--adastop-studies", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--log", type=Path, nargs="+", default=[Path("outputs/adastop_log.jsonl")])
    parser.add_argument("--first", type=int, default=0, help="AdaStop from this study on")
    parser.add_argument("--adastop-only", action="store_true")
    parser.add_argument("--minutes", type=float, default=math.inf, help="AdaStop's time limit")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.0, 0.9])
    args = parser.parse_args()
    start = time.perf_counter()
    if args.adastop_only:
        deadline = time.time() + 60 * args.minutes
        fill_log(args, deadline)
    else:
        report(args)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
