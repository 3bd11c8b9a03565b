"""A staged sweep's decisions.json (`regbench sweep --until-decided`, written by stages.py) as
types: the question, the design, each stage's step and the verdicts reached. `compare` and the
Python API read the file only through `Decisions.from_json`. Torch-, numpy- and scipy-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Estimate:
    """A comparison at one stage: its mean paired difference and standard error, and (before the
    last stage) the chance the rest of the budget decides it; or, where a run of either arm
    diverged, those arms' diverged seeds instead."""

    diff: float | None = None
    se: float | None = None
    chance: float | None = None
    diverged: dict[str, list[int]] | None = None  # arm -> its diverged seeds

    def to_json(self) -> dict[str, Any]:
        """The file's mapping: the keys the stage wrote, in its order."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Step:
    """One stage: the verdicts of the comparisons still open, and their estimates."""

    stage: int  # 1-based
    seeds: int  # per arm, so far
    verdicts: dict[str, str]
    estimates: dict[str, Estimate]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Step:
        known = {f.name for f in fields(Estimate)}
        estimates = {
            arm: Estimate(**{k: v for k, v in e.items() if k in known})
            for arm, e in raw["estimates"].items()
        }
        return cls(int(raw["stage"]), int(raw["seeds"]), dict(raw["verdicts"]), estimates)

    def to_json(self) -> dict[str, Any]:
        estimates = {arm: e.to_json() for arm, e in self.estimates.items()}
        return {
            "stage": self.stage,
            "seeds": self.seeds,
            "verdicts": self.verdicts,
            "estimates": estimates,
        }


@dataclass(kw_only=True)  # keyword-only: the fields in the file's order
class Decisions:
    """decisions.json: the question asked before any run, the stages and their boundaries, each
    stage's step, the verdicts reached (arm -> verdict, arm -> seeds it was decided at) and the
    runs spent. `folder`: where it was read from (not in the file, which lies in that folder).
    stages.py builds one before the first stage and adds each stage's step (`add`)."""

    baseline: str
    metric: str
    question: dict[str, float]  # delta, alpha, power (stats.decide.Question)
    stages: list[int]
    spending: str = "obf"  # files from before `spending` existed spent α O'Brien-Fleming-type
    futility: float = 0  # and stopped nothing for futility
    bounds_diff: list[float]
    bounds_equiv: list[float]
    comparisons: dict[str, str]  # arm -> its baseline arm, in the study's order
    path: list[Step] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    decided_at: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    # a study of contrasts (regbench.contrast): comparison -> its (sign, arm, metric) terms; and
    # the paired unit, a group of this many consecutive seeds: the file has them only where set
    terms: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    group: int = 1
    folder: str = ""

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], folder: str = "") -> Decisions:
        """The parsed file; KeyError, TypeError or ValueError: it is not a decisions.json."""
        if not isinstance(raw, Mapping):
            raise TypeError(f"a JSON object, not {type(raw).__name__}")
        given = {k: raw[k] for k in (*SET_ONLY, *FILE_KEYS) if k in raw}
        given["path"] = [Step.from_json(s) for s in raw.get("path", [])]
        if "terms" in raw:
            given["terms"] = {c: [tuple(t) for t in ts] for c, ts in raw["terms"].items()}
        return cls(**given, folder=folder)

    def to_json(self) -> dict[str, Any]:
        """The file's mapping, in the order stages.py writes it."""
        out: dict[str, Any] = {}
        if self.terms:
            out["terms"] = {c: [list(t) for t in ts] for c, ts in self.terms.items()}
        if self.group > 1:
            out["group"] = self.group
        out |= {k: getattr(self, k) for k in FILE_KEYS}
        out["path"] = [s.to_json() for s in self.path]
        return out

    def dumps(self) -> str:
        """The file's text."""
        return json.dumps(self.to_json(), indent=2) + "\n"

    def add(self, step: Step, runs: int) -> None:
        """A stage's step: its decided verdicts recorded at its seeds; `runs` spent so far."""
        self.path.append(step)
        for arm, verdict in step.verdicts.items():
            if verdict != "open":
                self.verdicts[arm], self.decided_at[arm] = verdict, step.seeds
        self.runs = runs

    def verdict(self, arm: str) -> str:
        """A comparison's verdict; 'open' before it is decided."""
        return self.verdicts.get(arm, "open")


# the file's keys in the order stages.py writes them (a file of another version: others left out)
SET_ONLY = ("terms", "group")  # written first, and only where a study has them
FILE_KEYS = tuple(f.name for f in fields(Decisions) if f.name not in ("folder", *SET_ONLY))
