"""A staged sweep's decisions (`regbench sweep --until-decided`, its decisions.json): the verdicts
and the path to them, as a table section and a figure (each comparison's interval at each stage
against the lines it had to clear)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from regbench.compare.load import CompareError
from regbench.compare.result import Section
from regbench.decisions import Decisions, Step
from regbench.folder import DECISIONS

SPENDING_NAMES = {"obf": "O'Brien-Fleming", "pocock": "Pocock"}  # stats.sequential.SPENDING


def read(paths: Sequence[Path]) -> list[Decisions]:
    """The decisions.json of every given folder that has one (a staged sweep's folder)."""
    out = []
    for p in paths:
        f = p / DECISIONS
        if f.is_file():
            try:
                raw = json.loads(f.read_text())
            except ValueError as exc:
                raise CompareError(
                    f"{f} is not valid JSON ({exc}); rerun the staged sweep"
                ) from None
            try:
                out.append(Decisions.from_json(raw, str(p)))
            except (KeyError, TypeError, ValueError) as exc:
                raise CompareError(
                    f"{f} is not a staged sweep's decisions ({type(exc).__name__}: {exc}); "
                    "rerun the staged sweep"
                ) from None
    return out


def interval(log: Decisions, arm: str) -> tuple[float, float, float] | None:
    """(Δ, low, high) of a comparison at its last look: Δ ± the difference boundary of that stage
    read as the t quantile of the same tail, times the SE (the interval that decided it: better or
    worse once it leaves 0); None before its first look. The ledger of `regbench claims` reads it
    from here too, so the two print the same numbers."""
    from scipy import stats

    path = [step for step in log.path if arm in step.estimates]
    if not path:  # no look yet
        return None
    step = path[-1]
    e, n = step.estimates[arm], step.seeds
    if e.diff is None or e.se is None:  # it diverged
        return None
    half = stats.t.isf(stats.norm.sf(log.bounds_diff[step.stage - 1]), n - 1) * e.se
    return e.diff, e.diff - half, e.diff + half


def format_interval(est: tuple[float, float, float] | None) -> str:
    if est is None:
        return "—"
    diff, lo, hi = est
    return f"{diff:+.4f} [{lo:+.4f}, {hi:+.4f}]" if math.isfinite(hi - lo) else f"{diff:+.4f}"


def _step(step: Step, arm: str) -> str:
    """One stage of a comparison's path: `seeds: Δ (verdict)`, or the seeds that diverged."""
    e = step.estimates[arm]
    if e.diverged is not None:
        seeds = "; ".join(f"{a} seeds {s}" for a, s in e.diverged.items())
        return f"{step.seeds}: diverged ({seeds})"
    return f"{step.seeds}: {e.diff:+.4f} ({step.verdicts[arm]})"


def section(log: Decisions) -> Section:
    """One row per comparison: its verdict, the seeds it took, its interval at its last look, its
    estimate at each stage."""
    q, rows = log.question, []
    for arm, base in log.comparisons.items():
        path = [step for step in log.path if arm in step.verdicts]
        steps = " → ".join(_step(s, arm) for s in path)
        decided_at = str(log.decided_at.get(arm, "—"))
        interval_ = format_interval(interval(log, arm))
        rows.append([arm, base, log.verdict(arm), decided_at, interval_, steps])
    caption = (
        f"seeds in stages {log.stages} per arm until each comparison is decided; "
        f"δ = {q['delta']:g}, family-wise α = {q['alpha']:g} over all stages and comparisons "
        f"({SPENDING_NAMES[log.spending]}-type Lan-DeMets boundaries), "
        f"power {q['power']:g}; "
        f"undecided before the budget: the seeds left would decide it with a chance below "
        f"{log.futility:g} at its estimate (stopped for futility); "
        f"{log.runs} runs spent (a fixed design: {len(log.stages) and log.stages[-1]} "
        "seeds for every arm) · Δ [interval]: at the last look, Δ ± that stage's boundary × SE "
        "(the interval the verdict read) · path: seeds: Δ (verdict) at each stage"
    )
    caption += _contrasts(log)
    headers = ["comparison", "baseline", "verdict", "decided at (seeds)", "Δ [interval]", "path"]
    return Section(f"{log.metric}: staged decisions", headers, rows, caption, 2)


def _contrasts(log: Decisions) -> str:
    """The caption's words for a study whose comparisons are contrasts (regbench.contrast) or whose
    paired unit is a group of seeds; nothing for the usual arm − baseline by seed."""
    out, g = "", log.group
    if g > 1:
        out += (
            f" · a unit is a group of {g} consecutive seeds (0..{g - 1}, {g}..{2 * g - 1}, ...), "
            "its metric their mean or the accuracy of their mean softmax (ensemble_test_acc); "
            "seeds and stages count units"
        )
    for name, terms in log.terms.items():
        said = " ".join(
            f"{'+' if sign > 0 else '−'} {metric}[{arm}]" for sign, arm, metric in terms
        )
        out += f" · {name} = {said.lstrip('+ ')}, paired by {'group' if g > 1 else 'seed'}"
    return out


def figure(out: Path, log: Decisions) -> str:
    """Per comparison, at each stage: Δ with the interval its boundary allows (the difference
    test's, solid: decided better/worse once it leaves 0; equivalence's, dashed: decided once it
    lies within the dotted ±δ), the stage that stopped it (decided, or futile) in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    arms, delta = list(log.comparisons), log.question["delta"]
    fig, axes = plt.subplots(1, len(arms), figsize=(3.2 * len(arms) + 0.8, 3.4), squeeze=False)
    for ax, arm in zip(axes[0], arms, strict=True):
        for step in log.path:
            e = step.estimates.get(arm)
            if e is None or e.diff is None or e.se is None:  # not looked at, or diverged
                continue
            k, x = step.stage - 1, step.seeds
            for bound, style, dx in (
                (log.bounds_diff[k], "-", -0.25),
                (log.bounds_equiv[k], "--", 0.25),
            ):
                # the z boundary as the t quantile of the same tail, as the test reads it
                half = stats.t.isf(stats.norm.sf(bound), x - 1) * e.se
                ax.plot([x + dx] * 2, [e.diff - half, e.diff + half], style, color="C0")
            decided = step.verdicts[arm] not in ("open",)
            ax.plot(x, e.diff, "o", color="C3" if decided else "C0")
        ax.axhline(0, color="black", lw=0.8)
        for y in (-delta, delta):
            ax.axhline(y, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{arm}: {log.verdict(arm)}", fontsize=9)
        ax.set_xlabel("seeds per arm")
        ax.set_xticks(log.stages)  # every look, also those a comparison stopped before
        ax.set_xlim(log.stages[0] - 1.5, log.stages[-1] + 1.5)
    axes[0][0].set_ylabel(f"Δ {log.metric} vs {log.baseline}")
    fig.tight_layout()
    fig.savefig(out / "decisions.png", dpi=110)
    plt.close(fig)
    return "decisions.png"  # a name in out, as report.md links every figure
