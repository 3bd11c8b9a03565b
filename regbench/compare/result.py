"""What a comparison is asked (`Inference`, `Request`: each checks its own values, CompareError
naming the option) and what it answers (`Result`): the types `regbench compare` and
`regbench.compare_runs` share through pipeline.compare, so that the command and the Python API
check the same options and get the same answer."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.compare.choices import CORRECTIONS, DEFAULT_POWER, TESTS
from regbench.compare.load import CompareError
from regbench.record import METRICS
from regbench.stats import decide
from regbench.stats.defaults import ALPHA, default_delta

if TYPE_CHECKING:
    import numpy as np

    from regbench.compare.groups import Group
    from regbench.compare.load import Run
    from regbench.decisions import Decisions


def one_of(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise CompareError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


# The options that act only beside another (in the command's order), and the options any of
# which they act with: given without, they would change no output, so they are refused instead.
NEEDS: dict[str, tuple[str, ...]] = {
    "--test": ("--baseline",),
    "--correction": ("--baseline", "--factorial"),  # the effects' adjusted p-values too
    "--alpha": ("--baseline", "--factorial"),  # the effects' significance marks too
    "--delta": ("--baseline",),
    "--power": ("--baseline",),
    "--reps": ("--baseline",),  # P(better) and --test bootstrap; an MC dropout t needs none
    "--bootstrap-seed": ("--baseline",),
    "--summary": ("--baseline",),  # one line per comparison with the baseline
    "--curves": ("--out",),
}
ACTS_ON = {
    "--baseline": "comparisons with a baseline",
    "--factorial": "--factorial's effects",
    "--out": "the figures --out writes",
}
ADD = {"--baseline": "--baseline key=value", "--factorial": "--factorial", "--out": "--out FOLDER"}


def refuse_unused(given: Collection[str], present: Collection[str]) -> None:
    """CompareError naming, in one line, the given options that act with none of the present
    ones (NEEDS), what each acts on and the options to add."""
    unused = [o for o in NEEDS if o in given and not set(NEEDS[o]) & set(present)]
    if not unused:
        return
    needs = list(dict.fromkeys(NEEDS[o] for o in unused))
    said = []
    for n in needs:
        names = [o for o in unused if NEEDS[o] == n]
        verb = "acts" if len(names) == 1 else "act"
        said.append(f"{', '.join(names)} only {verb} on {' or '.join(ACTS_ON[x] for x in n)}")
    # --alpha's fix (--baseline or --factorial) is left out where --delta's (--baseline) serves it
    needed = [n for n in needs if not any(set(m) < set(n) for m in needs)]
    add = " and ".join(" or ".join(ADD[x] for x in n) for n in needed)
    drop = "drop it" if len(unused) == 1 else "drop them"
    comma = "," if " or " in add or " and " in add else ""
    raise CompareError(f"{', '.join(said)}; add {add}{comma} or {drop}")


@dataclass(frozen=True)
class Inference:
    """How groups are compared with their baseline (the command's options), each value checked
    in the order the command lists them."""

    metric: str
    test: str = "t"  # paired test: t, wilcoxon or bootstrap
    correction: str = "holm"
    alpha: float = ALPHA
    level: float = 0.95
    reps: int = 2000  # bootstrap resamples
    seed: int = 0  # bootstrap generator seed: the same numbers on every call
    delta: float | None = None  # smallest effect of interest (None: no equivalence, no plan)
    power: float = DEFAULT_POWER
    common_seeds: bool = False  # a staged sweep: pair on the seeds both arms ran (arms stop early)

    def __post_init__(self) -> None:
        one_of("--metric", self.metric, METRICS)
        one_of("--test", self.test, TESTS)
        one_of("--correction", self.correction, tuple(CORRECTIONS))
        if not 0 < self.alpha < 1:
            raise CompareError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.reps < 100:
            raise CompareError(f"--reps must be at least 100, got {self.reps}")
        if self.delta is not None and not 0 < self.delta < float("inf"):
            raise CompareError(
                f"--delta must be a positive number in metric units, got {self.delta}"
            )
        if not 0 < self.power < 1:
            raise CompareError(f"--power must be between 0 and 1, got {self.power}")

    @property
    def question(self) -> decide.Question:
        return decide.Question(self.delta, self.alpha, self.power)

    def given(self) -> list[str]:
        """The options set to other than their defaults (--delta: to neither none nor the
        metric's default, which the command and compare_runs fill in)."""
        default = Inference(self.metric)
        options = {"test": "--test", "correction": "--correction", "alpha": "--alpha",
                   "power": "--power", "reps": "--reps", "seed": "--bootstrap-seed"}  # fmt: skip
        said = [o for k, o in options.items() if getattr(self, k) != getattr(default, k)]
        return said + (["--delta"] if self.delta not in (None, default_delta(self.metric)) else [])


@dataclass(frozen=True)
class Request:
    """Which runs are compared, grouped how, and what the groups' table adds."""

    paths: Sequence[Path]
    inference: Inference
    by: Sequence[str] = ()  # config keys to group by (none: runs that differ only in seed)
    filters: Sequence[str] = ()  # key=value / key!=value conditions
    baseline: str | None = None  # key=value of the reference group
    sort: str | None = None  # a record's column, '-' for descending (None: the metric, best first)
    factorial: bool = False
    factors: Sequence[str] = ()  # the factorial's regularizers (none: all present)
    ensemble: bool = False
    curves: Sequence[str] | None = None  # metrics.csv columns a figure will draw (None: no --out)
    given: Sequence[str] = ()  # the command's own options of NEEDS given (--summary, --curves)

    def __post_init__(self) -> None:
        if self.factors and not self.factorial:
            raise CompareError(
                "--factors picks the regularizers of --factorial: add --factorial or drop --factors"
            )
        present = {"--baseline": bool(self.baseline), "--factorial": self.factorial,
                   "--out": self.curves is not None}  # fmt: skip
        given = [*self.inference.given(), *self.given]
        refuse_unused(given, [o for o, on in present.items() if on])


@dataclass
class Section:
    """One table of the report: a title, headers, text rows and the caption under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    caption: str
    n_labels: int  # leading label columns (left-aligned, may wrap)


Design = tuple["np.ndarray", "np.ndarray", list[str]]  # a factorial's x (±1 codes), y, factors


@dataclass(frozen=True)
class Result:
    """Everything a comparison found, in display order: the group records (one flat dict of raw
    numbers per group, the rows of every output format) and the groups they describe, the run
    records, the table sections, the plain-words lines and the warnings; the factorial effects,
    the ensembles and the staged sweeps' decisions where asked for or found."""

    inf: Inference
    records: list[dict[str, Any]]  # one per group, in table order
    groups: list[Group]  # likewise
    runs: list[dict[str, Any]]  # one per run folder, skipped ones included
    skipped: list[Run]
    sections: list[Section]
    summary: list[str]  # one line per comparison with the baseline
    warnings: list[str]
    spread: bool = False  # the spread per source of randomness is among the sections
    effects: list[dict[str, Any]] | None = None
    design: Design | None = None
    ensembles: list[dict[str, Any]] | None = None
    decisions: list[Decisions] = field(default_factory=list)
