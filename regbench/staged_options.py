"""The options of `regbench sweep --until-decided` (regbench/stages.py), their help rendering the
defaults from stats.defaults (no scipy: the command line starts without it). None: the study's
question: block gives the value, else the default."""

from __future__ import annotations

from typing import Annotated

import typer

from regbench.stats.defaults import (
    ALPHA,
    BUDGET,
    DEFAULT_DELTA,
    DEFAULT_POWER,
    DEFAULT_SPENDING,
    FUTILITY,
    STAGE,
)

UntilDecided = Annotated[
    bool,
    typer.Option(
        "--until-decided",
        help="Seeds in stages until each arm is decided against --baseline: better, worse, equivalent "
        "within ±delta, or undecided at --budget (a study's question: block gives them too).",
    ),
]
StagedBaseline = Annotated[
    str | None,
    typer.Option(
        "--baseline", metavar="KEY=VALUE", help="The arm the others are compared with, by seed."
    ),
]
Delta = Annotated[
    float | None,
    typer.Option(
        "--delta",
        help="Smallest effect that matters, in the metric's units "
        f"({DEFAULT_DELTA} for accuracies).",
    ),
]
Alpha = Annotated[
    float | None,
    typer.Option("--alpha", help=f"Family-wise error over all stages and comparisons ({ALPHA})."),
]
Power = Annotated[
    float | None,
    typer.Option(
        "--power", help=f"Power to detect delta or to show equivalence ({DEFAULT_POWER})."
    ),
]
Stage = Annotated[
    int | None, typer.Option("--stage", help=f"Seeds per arm added at each stage ({STAGE}).")
]
Budget = Annotated[
    int | None, typer.Option("--budget", help=f"At most this many seeds per arm ({BUDGET}).")
]
SPENDINGS = {
    "obf": "O'Brien-Fleming-type: little early",
    "pocock": "evenly: clear differences stop early",
}
Spending = Annotated[
    str | None,
    typer.Option(
        "--spending",
        help="Where the error goes over the stages: "
        + " or ".join(
            f"{k} ({v}{', the default' if k == DEFAULT_SPENDING else ''})"
            for k, v in SPENDINGS.items()
        )
        + ".",
    ),
]
Futility = Annotated[
    float | None,
    typer.Option(
        "--futility",
        help="Stop an arm undecided once the rest of the budget would decide it with a chance "
        f"below this ({FUTILITY}; 0: never).",
    ),
]
