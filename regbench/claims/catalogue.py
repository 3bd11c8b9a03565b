"""The claim files: conf/claims/NAME.yaml (and the user's config folder's claims/, which add to
them or replace one of the same name), each checked against Claim before anything trains."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from regbench.config import ConfigError, conf_dirs
from regbench.contrast import ENSEMBLE, UNIT_METRICS, Term, two_arms
from regbench.record import FIELDS, LOWER_IS_BETTER, METRICS, SIGNED
from regbench.stats.defaults import ALPHA, BUDGET, DEFAULT_POWER, FUTILITY, STAGE

GROUP = "claims"
# the decks in ../shared/decks (its README names them): a claim quotes one by file stem
DECKS = {
    "morales-regularizacion": "Morales, Regularización de redes neuronales profundas",
    "fuentes-regularizacion-y-entrenamiento": "Fuentes-Pineda, Regularización y entrenamiento de redes profundas",
    "lobel-maquinaria-de-deep-learning": "Löbel, Maquinaria de Deep Learning",
    "hermosilla-cnn": "Hermosilla, Convolutional Neural Network",
    "bekios-extras-bn-dropout": "Bekios, Extras: Batch Normalization, Dropout y Cross Entropy",
}
SCALES = ("default", "full")  # default: digits and MNIST subsets on a CPU; full: a GPU's
Direction = Literal["higher", "lower", "equivalent"]
Probability = Annotated[float, Field(gt=0, lt=1)]
CLAIM_METRICS = (*METRICS, *UNIT_METRICS)  # a claim's metric: a run's, or a group's (contrast)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Question(_Strict):
    """The staged question (stages.Staged): δ in the metric's units, the error, the stages."""

    delta: Annotated[float, Field(gt=0)]
    alpha: Probability = ALPHA
    power: Probability = DEFAULT_POWER
    stage: Annotated[int, Field(ge=2)] = STAGE
    budget: Annotated[int, Field(ge=2)] = BUDGET
    spending: Literal["obf", "pocock"] = "pocock"
    futility: Annotated[float, Field(ge=0, lt=1)] = FUTILITY

    @model_validator(mode="after")
    def _stage_within_budget(self) -> Question:
        if self.stage > self.budget:
            raise ValueError(f"stage {self.stage} is above budget {self.budget}")
        return self


class Claim(_Strict):
    """One claim of a deck and the experiment that decides it."""

    deck: Literal[tuple(DECKS)]  # type: ignore[valid-type]
    slide: str  # the slide's title, as the deck writes it
    sentence: str  # the deck's words, in Spanish
    claim: str  # the claim in one English line
    setup: list[str]  # the overrides every arm shares (the default scale)
    full: list[str]  # overrides added at the full scale (GPU)
    # one swept key and its values (reg=none,bn), or each arm's own overrides ([[reg=l2], [reg=wd,
    # reg.wd.weight_decay=0.001]]) where arms differ in more than one key
    arms: str | list[Annotated[list[str], Field(min_length=1)]]
    # key=value of exactly one arm: the arm the others are compared with, by seed (none with versus)
    baseline: str | None = None
    metric: Literal[CLAIM_METRICS]  # type: ignore[valid-type]
    direction: Direction  # the arms' metric vs the baseline's (or versus), as the deck predicts it
    # two measurements of the same runs instead of two arms: each arm's metric minus its versus,
    # paired by run (test_acc_best vs test_acc_last of one run; mc_test_acc vs test_acc)
    versus: Literal[METRICS] | None = None  # type: ignore[valid-type]
    # an interaction, key=a,b: the effect is (arm − baseline at key=a) − (arm − baseline at key=b),
    # paired by seed (each arm runs at both values)
    across: str | None = None
    # seeds per unit: the paired unit is a group of consecutive seeds, its metric their mean (or
    # ensemble_test_acc: the accuracy of their mean softmax, an ensemble of the group)
    group: Annotated[int, Field(ge=1)] = 1
    question: Question
    why: str  # why the setup is what it is (deck, literature): fixed before any run
    # transfer claims: the source runs' overrides (over the setup's), one run per seed trained into
    # <sweep>-source before the arms, where transfer=finetune / frozen read their seed's run
    pretrain: list[str] | None = None
    curves: bool = False  # draw learning curves in the ledger (speed claims)

    @model_validator(mode="after")
    def _arms_and_baseline(self) -> Claim:
        arms = self.arm_cells
        if self.versus is not None:
            _check_versus(self)
        elif len(arms) < 2:
            raise ValueError("arms: two or more (key=a,b, or a list of override lists)")
        elif self.baseline is None:
            raise ValueError("baseline: key=value of the arm the others are compared with")
        elif len([c for c in arms if self.baseline in c]) != 1:
            raise ValueError(f"baseline {self.baseline!r} must be an override of exactly one arm")
        if self.across is not None:
            _check_across(self)
        _check_metric(self)
        return self

    @property
    def arm_cells(self) -> list[list[str]]:
        """Each arm as its overrides (as the file lists them)."""
        if isinstance(self.arms, list):
            return [list(a) for a in self.arms]
        key, _, values = self.arms.partition("=")
        return [[f"{key}={v}"] for v in _split(values)] if values else []

    @property
    def across_values(self) -> list[str]:
        """across: key=a,b -> ['key=a', 'key=b'] (none without across)."""
        if self.across is None:
            return []
        key, _, values = self.across.partition("=")
        return [f"{key}={v}" for v in _split(values)] if values else []

    @property
    def cells(self) -> list[list[str]]:
        """Each run's arm as its overrides: with across, every arm at each of its values."""
        if self.across is None:
            return self.arm_cells
        return [[*c, v] for v in self.across_values for c in self.arm_cells]

    @property
    def comparisons(self) -> dict[str, str]:
        """Each comparison's name -> its baseline's (the names decisions.json and the ledger show)."""
        if self.versus is not None:
            return {
                f"{self.metric} ({' '.join(c)})": f"{self.versus} ({' '.join(c)})"
                for c in self.cells
            }
        base = " ".join(next(c for c in self.arm_cells if self.baseline in c))
        if self.across is None:
            return {" ".join(c): base for c in self.arm_cells if " ".join(c) != base}
        a, b = self.across_values
        return {
            f"{' '.join(c)}: at {a} − at {b}": base for c in self.arm_cells if " ".join(c) != base
        }

    @property
    def terms(self) -> dict[str, tuple[Term, ...]]:
        """Each comparison's contrast (contrast.Term), where it is not arm − baseline on metric."""
        names = list(self.comparisons)
        if self.versus is not None:
            return {
                n: (Term(1, " ".join(c), self.metric), Term(-1, " ".join(c), self.versus))
                for n, c in zip(names, self.cells, strict=True)
            }
        if self.across is None:
            return {}
        base = next(c for c in self.arm_cells if self.baseline in c)
        arms = [c for c in self.arm_cells if c != base]
        out = {}
        for n, arm in zip(names, arms, strict=True):
            at = [
                two_arms(" ".join([*arm, v]), " ".join([*base, v]), self.metric)
                for v in self.across_values
            ]
            out[n] = (*at[0], *(Term(-t.sign, t.arm, t.metric) for t in at[1]))
        return out

    @cached_property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER


def _check_versus(c: Claim) -> None:
    """Two metrics of the same runs: no baseline arm; the same unit and good direction."""
    if c.baseline is not None or c.across is not None:
        raise ValueError("versus compares two metrics of the same runs: drop baseline and across")
    if c.versus == c.metric:
        raise ValueError(f"versus {c.versus!r} is the metric itself; name another")
    mine = FIELDS.get(c.metric) or FIELDS["test_acc"]  # ensemble_test_acc: an accuracy
    other = FIELDS[str(c.versus)]
    if (mine.unit, mine.better, mine.censored) != (other.unit, other.better, other.censored):
        raise ValueError(
            f"versus {c.versus!r} is not measured as {c.metric!r} is (unit, direction)"
        )


def _check_across(c: Claim) -> None:
    """An interaction: one key at two values, not an arm's key; a difference of differences."""
    values, key = c.across_values, str(c.across).partition("=")[0]
    if len(values) != 2:
        raise ValueError(f"across {c.across!r}: key=a,b, two values")
    if any(o.partition("=")[0] == key for cell in c.arm_cells for o in cell):
        raise ValueError(f"across {c.across!r}: {key} is set by an arm")
    if c.metric in SIGNED:
        raise ValueError(
            f"across: {c.metric} has no difference of differences (a censored or 0/1 outcome)"
        )


def _check_metric(c: Claim) -> None:
    if c.metric == ENSEMBLE and c.group < 2:
        raise ValueError(f"metric {ENSEMBLE}: an ensemble of a group of seeds needs group >= 2")
    if c.group > 1 and {c.metric, c.versus} & set(SIGNED):
        raise ValueError(
            f"group {c.group}: a group's mean of {c.metric} is no outcome (censored or 0/1)"
        )


def _split(values: str) -> list[str]:
    """a,b,[1,2],c -> ['a', 'b', '[1,2]', 'c']: commas inside brackets belong to a value."""
    out: list[str] = []
    depth, cur = 0, ""
    for ch in values:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            out, cur = [*out, cur], ""
        else:
            cur += ch
    return [*out, cur]


def _error(path: Path, exc: ValidationError) -> str:
    """One line naming the file, the key and what is wrong with it."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(file)"
    if err["type"] == "extra_forbidden":
        return f"claim {path}: unknown key '{key}'; remove it or check its spelling"
    if err["type"] == "missing":
        return f"claim {path}: missing field '{key}'; every claim states it"
    if err["type"] == "literal_error" and key in ("metric", "versus"):
        known = ", ".join(CLAIM_METRICS if key == "metric" else METRICS)
        return f"claim {path}: unknown {key} {err['input']!r}; choose from: {known}"
    if err["type"] == "literal_error" and key == "direction":
        return f"claim {path}: direction {err['input']!r}; choose higher, lower or equivalent"
    if err["type"] == "literal_error" and key == "deck":
        return f"claim {path}: unknown deck {err['input']!r}; choose from: {', '.join(DECKS)}"
    return f"claim {path}: {key}: {err['msg'][:1].lower() + err['msg'][1:]}"


def read(path: Path) -> Claim:
    """One claim file, checked; ConfigError (one line) when it is not a valid claim."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"claim {path} is not valid YAML{f' (line {mark.line + 1})' if mark else ''}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"claim {path}: a mapping of deck, slide, sentence, claim, setup, ...")
    try:
        return Claim.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_error(path, exc)) from None


def paths() -> dict[str, Path]:
    """Every claim file by name: the user's folder's over conf/'s."""
    out: dict[str, Path] = {}
    for d in reversed(conf_dirs()):  # conf/ first, the user's folder over it
        out |= {p.stem: p for p in sorted((d / GROUP).glob("*.yaml"))}
    return dict(sorted(out.items()))


def load(names: list[str] | None = None) -> dict[str, Claim]:
    """The named claims (all when none is named), checked; ConfigError naming an unknown one or
    the first invalid file."""
    found = paths()
    unknown = [n for n in names or [] if n not in found]
    if unknown:
        raise ConfigError(
            f"unknown claim '{unknown[0]}'; `regbench claims` lists them ({len(found)} claims)"
        )
    return {n: read(found[n]) for n in (names or list(found))}
