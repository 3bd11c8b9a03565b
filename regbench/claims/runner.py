"""One claim as a staged sweep (stages.run_study: seeds in stages, fused, until decided) and its
verdict in the deck's terms; claim.json in its sweep folder keeps what the ledger reads."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from regbench import folder, stages
from regbench.claims.catalogue import Claim
from regbench.compare import staged
from regbench.config import ConfigError
from regbench.decisions import Decisions
from regbench.stats.decide import Question
from regbench.stats.sequential import make_design

CLAIM_JSON = "claim.json"  # in the claim's sweep folder: its result, and the wall time spent on it
# the ledger's verdicts, worst first: a claim takes the worst of its comparisons'
HOLDS, CONTRADICTED, NO_EFFECT, UNDECIDED = (
    "holds",
    "contradicted",
    "no effect within ±δ",
    "undecided within budget",
)
VERDICTS = (HOLDS, CONTRADICTED, NO_EFFECT, UNDECIDED)


@dataclass
class Comparison:
    arm: str
    baseline: str
    verdict: str  # stats' better / worse / equivalent / undecided
    observed: str  # the same in the deck's words: higher / lower / equivalent / undecided
    estimate: tuple[float, float, float] | None  # Δ, low, high (compare.staged.interval)
    seeds: int  # seeds per arm at its last look


@dataclass
class Result:
    name: str
    verdict: str  # one of VERDICTS
    comparisons: list[Comparison]
    runs: int  # runs spent
    fixed_runs: int  # a fixed design's: every arm at the budget
    seeds: int  # seeds per arm at the last stage any comparison needed
    wall_seconds: float  # this claim's command time, summed over invocations
    folder: str
    error: str | None = None
    curves: dict[str, list[float]] = field(default_factory=dict)


def sweep_name(name: str, scale: str) -> str:
    return f"claim-{name}" if scale == "default" else f"claim-{name}-{scale}"


def staged_of(claim: Claim) -> stages.Staged:
    q = claim.question
    base = claim.baseline or str(claim.versus)  # two metrics of one arm: the other metric
    return stages.Staged(
        Question(q.delta, q.alpha, q.power),
        base,
        q.stage,
        q.budget,
        claim.metric,
        q.spending,
        q.futility,
    )


def observed(verdict: str, lower_is_better: bool) -> str:
    """stats' verdict (better/worse in the metric's good direction) as the metric's direction."""
    if verdict not in ("better", "worse"):
        return verdict
    return "lower" if (verdict == "better") == lower_is_better else "higher"


def claim_verdict(direction: str, seen: list[str]) -> str:
    """The claim's verdict from its comparisons' observed directions: contradicted if any goes the
    other way (any difference, for an equivalence claim), else no effect if any is equivalent
    within ±δ (a directional claim), else holds if every one went the claimed way, else
    undecided (also a comparison that ended 'diverged' in a staged study, or is still open)."""
    if direction == "equivalent":
        if any(s in ("higher", "lower") for s in seen):
            return CONTRADICTED
    elif any(s in ("higher", "lower") and s != direction for s in seen):
        return CONTRADICTED
    elif "equivalent" in seen:
        return NO_EFFECT
    return HOLDS if seen and all(s == direction for s in seen) else UNDECIDED


def result_of(name: str, claim: Claim, log: Decisions, where: Path, wall: float) -> Result:
    comps = []
    for arm, base in log.comparisons.items():
        v = log.verdicts.get(arm, "undecided")
        seen = [s.seeds * claim.group for s in log.path if arm in s.estimates]
        comps.append(
            Comparison(
                arm,
                base,
                v,
                observed(v, claim.lower_is_better),
                staged.interval(log, arm),
                seen[-1] if seen else 0,
            )
        )
    return Result(
        name=name,
        verdict=claim_verdict(claim.direction, [c.observed for c in comps]),
        comparisons=comps,
        runs=log.runs,
        fixed_runs=len(claim.cells) * claim.question.budget * claim.group,
        seeds=max((c.seeds for c in comps), default=0),
        wall_seconds=round(wall, 1),
        folder=str(where),
        curves=mean_curves(where, claim) if claim.curves else {},
    )


def mean_curves(where: Path, claim: Claim) -> dict[str, list[float]]:
    """Each arm's validation accuracy by epoch, averaged over its finished runs (the figure of a
    speed claim)."""
    import numpy as np

    runs = json.loads((where / "sweep.json").read_text())["runs"]
    out = {}
    for cell in claim.cells:
        curves = [_val_accs(Path(r["dir"])) for r in runs if set(cell) <= set(r["overrides"])]
        curves = [c for c in curves if c]
        n = min((len(c) for c in curves), default=0)
        if n:
            out[" ".join(cell)] = np.mean([c[:n] for c in curves], axis=0).round(4).tolist()
    return out


def _val_accs(run_dir: Path) -> list[float]:
    try:
        with (run_dir / folder.METRICS_CSV).open() as f:
            return [float(row["val_acc"]) for row in csv.DictReader(f)]
    except (OSError, ValueError, KeyError):
        return []


def previous_wall(where: Path) -> float:
    try:
        return float(json.loads((where / CLAIM_JSON).read_text())["wall_seconds"])
    except (OSError, ValueError, KeyError):
        return 0.0


def check(claim: Claim, scale: str, extra: list[str]) -> None:
    """Compose and validate every arm's config (ConfigError naming the arm): before any training."""
    from regbench.compose import compose_config

    setup = [*claim.setup, *(claim.full if scale == "full" else [])]
    for cell in claim.cells:
        try:
            compose_config([*_without(setup, cell), *extra, *cell])
        except ConfigError as exc:
            raise ConfigError(f"arm {' '.join(cell)}: {exc}") from None


def _without(setup: list[str], cell: list[str]) -> list[str]:
    """The setup's overrides but those of keys the arm sets (the arm's win, as in the sweep)."""
    keys = {o.split("=", 1)[0] for o in cell}
    return [o for o in setup if o.split("=", 1)[0] not in keys]


def _pretrain(claim: Claim, setup: list[str], rest: list[str], sname: str, command: str) -> int:
    """The source runs of a transfer claim, every seed of its budget, into <sweep>-source (those
    finished before are skipped); the exit code."""
    from regbench import pretrain

    args = [
        *_without(setup, claim.pretrain or []),
        *(claim.pretrain or []),
        *[o for o in rest if not o.startswith("sweep_name=")],
        f"sweep_name={sname}-source",
    ]
    return pretrain.run_sources(args, range(claim.question.budget), command)


def _failed(name: str, where: Path, code: int, wall: float, runs: int = 0) -> Result:
    return Result(
        name,
        UNDECIDED,
        [],
        runs,
        0,
        0,
        round(wall, 1),
        str(where),
        error=f"exit code {code}: a run failed or was interrupted; rerun to resume",
    )


def run(name: str, claim: Claim, out_dir: Path, scale: str, extra: list[str]) -> Result:
    """The claim's staged sweep (finished runs are skipped: a rerun redoes nothing), its result
    written to claim.json in the sweep folder. `extra`: bookkeeping overrides (data.root)."""
    cells = claim.cells
    keys = list(dict.fromkeys(o.split("=", 1)[0] for c in cells for o in c))
    open_ = claim.comparisons
    sname = sweep_name(name, scale)
    setup = [*claim.setup, *(claim.full if scale == "full" else [])]
    overrides = [
        *setup,
        *extra,
        f"trainer.fuse={claim.question.stage * claim.group}",
        "trainer.progress=none",
        f"out_dir={out_dir}",
        f"sweep_name={sname}",
    ]
    before, start = previous_wall(out_dir / "sweeps" / sname), time.perf_counter()
    command = f"regbench claims run {name}" + (f" --scale {scale}" if scale != "default" else "")
    if claim.pretrain and (
        code := _pretrain(claim, setup, overrides[len(setup) :], sname, command)
    ):
        return _failed(name, where=out_dir / "sweeps" / sname, code=code, wall=before)
    st = staged_of(claim)
    design = make_design(st.question, st.stages, len(open_), st.spending, st.futility)
    study = stages.Study(st, overrides, keys, cells, open_, design, sname, claim.terms, claim.group)
    code, log, where = stages.run_study(study, command)
    wall = before + time.perf_counter() - start
    if code:
        res = _failed(name, where, code, wall, log.runs)
    else:
        res = result_of(name, claim, log, where, wall)
    folder.write_atomic(where / CLAIM_JSON, json.dumps(asdict(res), indent=2) + "\n")
    return res


def read(where: Path, claim: Claim) -> Result | None:
    """A claim's result as its last run wrote it (None: never run), its verdict read again from
    its comparisons by claim_verdict."""
    try:
        d = json.loads((where / CLAIM_JSON).read_text())
    except (OSError, ValueError):
        return None
    d["comparisons"] = [
        Comparison(**{**c, "estimate": tuple(c["estimate"]) if c["estimate"] else None})
        for c in d["comparisons"]
    ]
    res = Result(**d)
    if not res.error:
        res.verdict = claim_verdict(claim.direction, [c.observed for c in res.comparisons])
    return res
