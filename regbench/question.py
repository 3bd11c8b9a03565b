"""A study's `question:` block (and `regbench sweep --until-decided`'s options over it), checked
whole before any run: each key's type, integer-ness and range, and the metric's name. A misspelt
metric found only after a stage of training, or `stage: 2.7` read as 2, is a question answered
with other numbers than the ones asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from regbench import invalid
from regbench.config import ConfigError
from regbench.decisions import Decisions
from regbench.folder import DECISIONS
from regbench.record import METRICS
from regbench.stats.sequential import SPENDING

Number = Annotated[StrictInt | StrictFloat, Field(allow_inf_nan=False)]
Chance = Annotated[Number, Field(gt=0, lt=1)]
Seeds = Annotated[StrictInt, Field(ge=2)]


class QuestionBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baseline: Annotated[StrictStr, Field(pattern=r"^[^=]+=.+$")] | None = None
    delta: Annotated[Number, Field(gt=0)] | None = None
    alpha: Chance | None = None
    power: Chance | None = None
    stage: Seeds | None = None
    budget: Seeds | None = None
    metric: Literal[METRICS] | None = None  # type: ignore[valid-type]
    spending: Literal[SPENDING] | None = None  # type: ignore[valid-type]
    futility: Annotated[Number, Field(ge=0, lt=1)] | None = None


class _Study(BaseModel):
    question: QuestionBlock


def check_question(block: dict[str, Any], where: str, key: str = "question.") -> None:
    """ConfigError naming the first bad key of the block (where: the study file or the command
    line, whose keys are options: key="--")."""
    try:
        _Study.model_validate({"question": block})
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "literal_error" and err["loc"][-1] == "metric":
            raise ConfigError(
                f"{where}: unknown metric {err.get('input')!r}; choose from: {', '.join(METRICS)}"
            ) from None
        if err["loc"][-1] == "baseline":
            raise ConfigError(
                f"{where}: baseline {err.get('input')!r}: key=value naming the arm the others are "
                "compared with, e.g. reg=none"
            ) from None
        if err["type"] == "extra_forbidden":
            known = ", ".join(QuestionBlock.model_fields)
            raise ConfigError(
                f"{where}: unknown key '{key}{err['loc'][-1]}'; valid keys: {known}"
            ) from None
        line = str(invalid.explain(exc)).replace("'question.", f"'{key}")
        raise ConfigError(f"{where}: {line}") from None


# what a staged study asked: a rerun in its folder must ask the same
# (a contrast's terms and a unit's group only where a study has them: absent in older folders)
QUESTION = (
    "baseline",
    "metric",
    "question",
    "stages",
    "spending",
    "futility",
    "comparisons",
    "terms",
    "group",
)


def same_question(sweep_dir: Path, log: Decisions) -> None:
    """ConfigError naming what differs when sweep_dir already holds a staged study that asked
    another question: its decisions hold for that question only, and are never rewritten."""
    try:
        before = json.loads((sweep_dir / DECISIONS).read_text())
    except FileNotFoundError:
        return
    except ValueError:
        raise ConfigError(
            f"{sweep_dir / DECISIONS} is unreadable; move the folder aside to start the study afresh"
        ) from None
    now = json.loads(log.dumps())  # as the file holds it: lists, not tuples
    changed = [
        f"{k} {json.dumps(before.get(k))} there, {json.dumps(now.get(k))} here"
        for k in QUESTION
        if before.get(k) != now.get(k)
    ]
    if changed:
        raise ConfigError(
            f"{sweep_dir} holds a staged study that asked another question ({'; '.join(changed)}); "
            "rerun with its question, or give sweep_name=<a new name> for a new study"
        )
