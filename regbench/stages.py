"""`regbench sweep --until-decided`: seeds in stages until every comparison is decided.

Each arm of the grid (a cell of its swept keys) is compared with its baseline arm, paired by seed.
Stage k runs seeds up to design.stages[k] for the arms still in an open comparison (and their
baselines), each arm launched as a sweep of its own into the one sweep folder, its runs named as the
whole grid's would be. After each stage stats.decide tests every open comparison against the
group-sequential boundaries (the family-wise error held over all stages and comparisons) and stops
the decided ones. decisions.json in the sweep folder records every stage; a rerun of the same
command skips finished runs and arrives at the same decisions.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regbench import contrast, folder, index, pretrain, sweep
from regbench.config import ConfigError
from regbench.decisions import Decisions, Estimate, Step
from regbench.folder import DECISIONS
from regbench.question import check_question, same_question
from regbench.record import LOWER_IS_BETTER
from regbench.stats import censored
from regbench.stats.decide import DOWN, UP, Question, question_from, verdict_name
from regbench.stats.defaults import BUDGET, DEFAULT_SPENDING, STAGE
from regbench.stats.sequential import (
    FUTILITY,
    SPENDING,
    Design,
    check_futility,
    decide_stage,
    make_design,
)

DIVERGED = "diverged"  # a comparison's verdict when a run of either arm diverged


@dataclass(frozen=True)
class Staged:
    """What a staged sweep decides and how: the question, the baseline, the stages, the metric."""

    question: Question
    baseline: str  # key=value naming the baseline arm, e.g. reg=none
    stage: int
    budget: int
    metric: str = "test_acc"
    spending: str = DEFAULT_SPENDING  # stats.sequential.SPENDING
    futility: float = FUTILITY  # stop a comparison the rest of the budget decides with less chance

    @property
    def stages(self) -> tuple[int, ...]:
        return tuple(range(self.stage, self.budget, self.stage)) + (self.budget,)


def staged_of(spec: dict[str, Any], given: dict[str, Any]) -> Staged:
    """The study's `question:` block (checked as sweep.study_spec read it) with the command
    line's options over it; ConfigError when a value is missing or out of range."""
    options = {k: v for k, v in given.items() if v is not None}
    check_question(options, "regbench sweep --until-decided", key="--")
    block = {**spec, **options}
    baseline, stage = block.pop("baseline", None), int(block.pop("stage", STAGE))
    budget, metric = int(block.pop("budget", BUDGET)), str(block.pop("metric", "test_acc"))
    spending = str(block.pop("spending", DEFAULT_SPENDING))
    if spending not in SPENDING:
        raise ConfigError(f"spending {spending!r}: choose from {', '.join(SPENDING)}")
    try:
        futility = check_futility(block.pop("futility", FUTILITY))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not baseline or "=" not in str(baseline):
        raise ConfigError("--until-decided needs a baseline: --baseline key=value (e.g. reg=none)")
    if not 2 <= stage <= budget:
        raise ConfigError(f"--stage {stage} --budget {budget}: need 2 <= stage <= budget")
    try:
        question = question_from(block, metric)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if question.delta is None:
        raise ConfigError(f"--until-decided on {metric} needs --delta (no default for it)")
    return Staged(question, str(baseline), stage, budget, metric, spending, futility)


def arms(overrides: list[str]) -> tuple[list[str], list[list[str]]]:
    """The swept keys (seed aside) and the grid's cells, each as its key=value overrides."""
    parsed = sweep.parse_overrides(overrides)
    swept = [p for p in parsed if p.is_sweep_override() and not p.is_hydra_override()]
    if any(p.get_key_element() == "seed" for p in parsed):
        raise ConfigError("--until-decided picks the seeds itself (stage by stage); drop seed=")
    sweep.check_repeats(swept)  # an arm listed twice would be compared with itself
    sweep.check_listed(swept, searchable=False)
    keys = [p.get_key_element() for p in swept]
    values = [list(p.sweep_string_iterator()) for p in swept]
    return keys, [
        [f"{k}={v}" for k, v in zip(keys, cell, strict=True)] for cell in itertools.product(*values)
    ]


def pairs(keys: list[str], cells: list[list[str]], baseline: str) -> dict[str, str]:
    """Each arm (its overrides joined by spaces) -> its baseline arm: the cell with the baseline's
    value and the other keys equal. The baseline must be one value of a swept key, every value of
    that key once: else no arm would differ from it, or one would be compared with itself."""
    key, value = baseline.split("=", 1)
    if key not in keys:
        swept = f"swept here: {', '.join(keys)}" if keys else "nothing is swept here"
        raise ConfigError(
            f"--baseline {baseline}: {key} is not swept ({swept}); the baseline must be one value "
            f"of a swept key, e.g. {key}={value},<another value>"
        )
    options = list(dict.fromkeys(c[keys.index(key)].split("=", 1)[1] for c in cells))
    if value not in options:
        raise ConfigError(
            f"--baseline {baseline}: {value!r} is not a value of {key} in this grid "
            f"(values: {', '.join(options)})"
        )
    out = {}
    for cell in cells:
        if baseline in cell:
            continue
        out[" ".join(cell)] = " ".join(baseline if o.split("=", 1)[0] == key else o for o in cell)
    if not out or len(options) < 2:
        raise ConfigError(f"--baseline {baseline}: no arm of this grid differs from it")
    return out


def decide(
    sweep_dir: Path, s: Study, k: int, open_: dict[str, str], decided: Iterable[str] = ()
) -> Step:
    """Stage k's verdicts of the open comparisons (name -> verdict) and their estimates, at the
    levels the earlier stages' verdicts (decided) passed on (sequential.settle): each
    comparison's paired scores are its contrast's (contrast.scores) over the units run so far. A
    comparison where a run of any of its arms diverged ends DIVERGED, its estimate naming the
    seeds: the run is final (a rerun skips it), its metric is no number to average, and a technique
    that diverges on a seed of this setup is not described by a mean difference."""
    st, design = s.st, s.design
    n = design.stages[k]
    runs = json.loads((sweep_dir / index.INDEX).read_text())["runs"]
    terms = {a: s.terms_of(a) for a in open_}
    both = dict.fromkeys(t.arm for a in open_ for t in terms[a])
    counted = st.metric in folder.DIVERGED_OUTCOMES  # there a diverged run is an outcome
    lost = {} if counted else {a: w for a in both if (w := contrast.diverged(runs, a, n * s.group))}
    gone = {a: {t.arm: lost[t.arm] for t in terms[a] if t.arm in lost} for a in open_}
    gone = {a: g for a, g in gone.items() if g}
    # every measurement read once: a baseline is shared by several comparisons
    need = dict.fromkeys((t.arm, t.metric) for a in open_ if a not in gone for t in terms[a])
    got = {(a, m): contrast.unit_values(runs, a, n, m, s.group) for a, m in need}
    diffs: dict[str, np.ndarray] = {}
    for arm in open_:
        if arm not in gone:
            diffs[arm] = contrast.scores(terms[arm], got)
    lower = st.metric in LOWER_IS_BETTER
    verdicts, chances = decide_stage(diffs, design, k, lower, decided)
    if st.metric in folder.SIGNED:  # scores in {-1, 0, 1}: all alike is the sign test's to decide
        for arm, d in diffs.items():
            if verdicts[arm] in ("open", "undecided") and (
                sg := censored.unanimous(d, design.bounds_diff[k])
            ):
                verdicts[arm] = verdict_name(UP if sg > 0 else DOWN, lower)
    estimates = {
        a: Estimate(float(d.mean()), float(d.std(ddof=1) / np.sqrt(n)), chances.get(a))
        for a, d in diffs.items()
    }
    for arm, seeds in gone.items():
        verdicts[arm], estimates[arm] = DIVERGED, Estimate(diverged=seeds)
    verdicts = {a: verdicts[a] for a in open_}  # in the comparisons' order
    return Step(k + 1, n, verdicts, estimates)


def _fixed(overrides: list[str], keys: list[str], cell: list[str]) -> list[str]:
    """The grid's overrides with its swept keys set to one cell's values."""
    parsed = sweep.parse_overrides(overrides)
    return [
        o for o, p in zip(overrides, parsed, strict=True) if p.get_key_element() not in keys
    ] + cell


def _run_stage(s: Study, active: set[str], seeds: range, command: str) -> int:
    """Launch seeds of every active arm, one sweep each into the one folder; the exit code."""
    code, where = 0, None
    if s.pretrain is not None:  # a pretrain: block: this stage's seeds' source runs first
        if (code := pretrain.run_sources(s.pretrain, seeds, command)) in sweep.STOPPED:
            return code
    for cell in s.cells:
        if " ".join(cell) not in active:
            continue
        p = s.plan(cell, seeds)
        if p.runs and all(r["status"] in folder.FINAL for r in p.runs):
            where = p.dir  # every run finished before: a rerun launches nothing for this arm
            continue
        index.write_index(p, command)
        where, code = p.dir, sweep.launch(p) or code
        if code in sweep.STOPPED:
            break
    if where is not None and code != sweep.REFUSED:
        index.refresh_index(where)
    return code


@dataclass
class Study:
    """A staged sweep as planned before any training: its question, grid, comparisons, design."""

    st: Staged
    overrides: list[str]
    keys: list[str]
    cells: list[list[str]]
    comparisons: dict[str, str]  # a comparison's name (an arm) -> its baseline's
    design: Design
    name: str  # the sweep folder's name
    # a comparison's contrast where it is not its arm minus its baseline arm on the metric
    terms: dict[str, tuple[contrast.Term, ...]] = field(default_factory=dict)
    group: int = 1  # seeds per unit: a stage of n units runs seeds 0..n*group-1
    pretrain: list[str] | None = None  # the source sweep's arguments (pretrain.source_args)

    def terms_of(self, name: str) -> tuple[contrast.Term, ...]:
        return self.terms.get(name) or contrast.two_arms(
            name, self.comparisons[name], self.st.metric
        )

    def arms_of(self, names: Iterable[str]) -> set[str]:
        """The arms these comparisons measure (those a stage runs)."""
        return {t.arm for a in names for t in self.terms_of(a)}

    def record(self) -> Decisions:
        """decisions.json before its first stage: the question, then each stage's path (the
        contrasts and the group only where a study has them)."""
        st, design = self.st, self.design
        return Decisions(
            terms={a: [astuple(t) for t in ts] for a, ts in self.terms.items()},
            group=self.group,
            baseline=st.baseline,
            metric=st.metric,
            question=vars(st.question),
            stages=list(design.stages),
            spending=st.spending,
            futility=st.futility,
            bounds_diff=list(design.bounds_diff),
            bounds_equiv=list(design.bounds_equiv),
            comparisons=dict(self.comparisons),
        )

    def plan(self, cell: list[str], seeds: range) -> sweep.Plan:
        """One arm's runs of these seeds, named as the whole grid's would be."""
        args = [
            *_fixed(self.overrides, self.keys, cell),
            f"seed={','.join(map(str, seeds))}",
            f"sweep_name={self.name}",
        ]
        return sweep.plan(args, named_by=[*self.keys, "seed"])


def study_of(args: list[str], given: dict[str, Any]) -> Study:
    """The staged sweep of the command's arguments, checked before anything runs."""
    base_name, study, overrides = sweep.merged(args)
    if not any(a.startswith("seed=") for a in args):  # a study's seed list is for a plain sweep
        overrides = [o for o in overrides if o.split("=", 1)[0] != "seed"]
    st = staged_of(sweep.study_spec(study).get("question") or {} if study else {}, given)
    job = [
        o
        for o, p in zip(overrides, sweep.parse_overrides(overrides), strict=True)
        if not p.is_hydra_override()
    ]
    keys, cells = arms(job)
    open_ = pairs(keys, cells, st.baseline)
    design = make_design(st.question, st.stages, len(open_), st.spending, st.futility)
    given_name = [o.split("=", 1)[1] for o in overrides if o.startswith("sweep_name=")]
    name = (
        given_name[0]
        if given_name
        else f"{base_name}-staged-{sweep.short_hash(sweep.identity(job))}"
    )
    s = Study(st, overrides, keys, cells, open_, design, name)
    check_all_stages(s)  # every arm, before planning one below (which stops at its first error)
    if not given_name:
        legacy = [  # its names before identities, and before defaults named nothing
            f"{base_name}-staged-{sweep.short_hash(h)}"
            for h in (overrides, sweep.identity(job, True))
        ]
        if old := sweep.found_elsewhere(s.plan(cells[0], range(1)).dir, legacy):
            s.name = old.name
    s.pretrain = pretrain.source_args(args, s.name)
    return s


def check_all_stages(s: Study) -> None:
    """Every run any stage could start (each arm at every seed up to the budget), composed and
    checked before the first trains: ConfigError with one line per invalid combination."""
    grid = [o for o in s.overrides if not o.startswith("sweep_name=")]
    seeds = f"seed={','.join(map(str, range(s.st.budget)))}"
    whole = sweep.plan([*grid, seeds, f"sweep_name={s.name}"], named_by=[*s.keys, "seed"])
    if whole.sweeper != "basic":  # a search picks its own runs and seeds: no stages to add
        raise ConfigError(
            f"--until-decided adds seeds stage by stage; hydra/sweeper={whole.sweeper} picks runs "
            "itself: drop one of them"
        )


def dry_run(args: list[str], given: dict[str, Any]) -> None:
    """`--until-decided --dry-run`: the first stage's runs and the budget's maximum; trains nothing."""
    s = study_of(args, given)
    first, runs = s.design.stages[0], []
    for cell in s.cells:
        p = s.plan(cell, range(first))
        runs += p.runs
    same_question(p.dir, s.record())
    if s.pretrain is not None:  # trained before the arms, one per seed
        src = pretrain.sources_plan(s.pretrain, range(first))
        print(f"first the {len(src.runs)} source runs of these seeds, into {src.dir}")
    done = sum(r["status"] in folder.FINAL for r in runs)
    for r in runs:
        print(f"  {r['name']}: {r['status']}")
    print(
        f"stage 1 of {len(s.design.stages)}: {len(runs)} runs ({first} seeds for each of "
        f"{len(s.cells)} arms), {done} already done; at most {len(s.cells) * s.st.budget} runs "
        f"({s.st.budget} seeds per arm, stages {list(s.design.stages)}); sweep folder {p.dir}"
    )


def sweep_until_decided(args: list[str], given: dict[str, Any], command: str) -> int:
    """Run the staged study; print each stage's verdicts; the exit code (0: all runs finished)."""
    s = study_of(args, given)
    code, log, where = run_study(s, command)
    if code:
        return code
    fixed = len(s.cells) * s.st.budget
    print(
        f"runs: {log.runs} of a fixed {s.st.budget}-seed design's {fixed} "
        f"({1 - log.runs / fixed:.0%} fewer); decisions in {where / DECISIONS}"
    )
    # a diverged run is final and decided on; the command still says a run went wrong (folder.BAD)
    return 1 if DIVERGED in log.verdicts.values() else 0


def run_study(s: Study, command: str) -> tuple[int, Decisions, Path]:
    """Stage by stage, the seeds of the arms still open (and their baselines), then the verdicts,
    until none is open: (exit code, decisions.json's record, the sweep folder). A grid's study
    (sweep_until_decided) or one of arms of their own overrides (regbench claims)."""
    design, open_, log = s.design, dict(s.comparisons), s.record()
    where = s.plan(s.cells[0], range(1)).dir
    same_question(where, log)  # before any run: a changed question never rewrites decisions.json
    if not (where / DECISIONS).exists():  # the question, recorded before the first run
        where.mkdir(parents=True, exist_ok=True)
        folder.write_atomic(where / DECISIONS, log.dumps())
    ran: dict[str, int] = {}
    for k, n in enumerate(design.stages):
        active = s.arms_of(open_)
        start = design.stages[k - 1] if k else 0
        code = _run_stage(s, active, range(start * s.group, n * s.group), command)
        if code in (130, 143):  # Ctrl-C, SIGTERM: the same command continues
            print(f"interrupted: continue with {command}", file=sys.stderr)
        # a run to rerun (failed, interrupted) stops here: the same command goes on; a diverged
        # run is final (its sweep's exit code 1): decided on, as an outcome or as DIVERGED
        if code and (code in sweep.STOPPED or not _final(where, active, n * s.group)):
            return code, log, where
        ran |= dict.fromkeys(active, n * s.group)
        step = decide(where, s, k, open_, log.verdicts.values())
        log.add(step, runs=sum(ran.values()))
        print_stage(step, len(design.stages))
        open_ = {a: b for a, b in open_.items() if step.verdicts[a] == "open"}
        folder.write_atomic(where / DECISIONS, log.dumps())
        if not open_:
            break
    return 0, log, where


def _final(where: Path, arms: set[str], n: int) -> bool:
    """Every run of these arms' seeds 0..n-1 is final (completed, early-stopped or diverged)."""
    runs = json.loads((where / index.INDEX).read_text())["runs"]
    for arm in arms:
        found = contrast.by_seed(runs, arm)
        if any(s not in found or found[s][0].status not in folder.FINAL for s in range(n)):
            return False
    return True


def print_stage(step: Step, stages: int) -> None:
    print(f"stage {step.stage} of {stages} ({step.seeds} seeds per arm):")
    for arm, verdict in step.verdicts.items():
        e = step.estimates[arm]
        if verdict == DIVERGED:
            assert e.diverged is not None
            said = "; ".join(f"{a} seeds {seeds}" for a, seeds in e.diverged.items())
            print(f"  {arm}: diverged ({said}: stopped, no claim)")
            continue
        text = f"  {arm}: {verdict} (Δ {e.diff:+.4f}, SE {e.se:.4f}"
        if e.chance is not None:  # before the last stage: how likely the budget decides it
            futile = verdict == "undecided"
            text += f"; {e.chance:.0%} chance the budget decides it" + (
                ": stopped" if futile else ""
            )
        print(text + ")")
