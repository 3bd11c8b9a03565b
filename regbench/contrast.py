"""What a staged comparison measures, paired by seed: a signed sum of measurements (an arm's runs'
metric), each seed's score the same sum over that seed's runs. Two arms on one metric is the usual
comparison (arm − baseline); two metrics of one arm's runs (test_acc_best − test_acc_last: the
best checkpoint against the last of the same run) and an interaction (the gain at one setting minus
the gain at another: four arms) are other contrasts of the same kind, decided by the same staged
test on the same kind of paired scores.

A unit is one seed, or a group of `group` consecutive seeds (0..g-1, g..2g-1, ...): a unit's
summary metric is its runs' mean, and ENSEMBLE is the test accuracy of its runs' mean softmax (the
ensemble of the group, from their stored test outputs): what `regbench compare --ensemble` reports
for disjoint ensembles of g consecutive seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from regbench import folder
from regbench.config import ConfigError
from regbench.record import CENSORED, Summary

ENSEMBLE = "ensemble_test_acc"  # a unit's metric: the accuracy of its group's mean softmax
UNIT_METRICS = (ENSEMBLE,)


@dataclass(frozen=True)
class Term:
    sign: int  # +1 or -1
    arm: str  # the arm's overrides joined by spaces
    metric: str


def two_arms(arm: str, base: str, metric: str) -> tuple[Term, ...]:
    """The usual comparison: the arm's metric minus its baseline arm's, seed by seed."""
    return Term(1, arm, metric), Term(-1, base, metric)


def by_seed(runs: list[dict[str, Any]], arm: str) -> dict[int, tuple[Summary, Path]]:
    """The arm's runs by seed: each one's summary.json (a pending note where it has none yet) and
    its folder (runs: sweep.json's entries)."""
    out, want = {}, set(arm.split())
    for r in runs:
        seed = [o for o in r["overrides"] if o.startswith("seed=")]
        if seed and want <= set(r["overrides"]):
            s = folder.read_summary(Path(r["dir"])) or Summary.note_of("pending", "")
            out[int(seed[0].split("=", 1)[1])] = (s, Path(r["dir"]))
    return out


def diverged(runs: list[dict[str, Any]], arm: str, seeds: int) -> list[int]:
    """The seeds 0..seeds-1 whose run of this arm diverged (final: a rerun skips it)."""
    found = by_seed(runs, arm)
    return [s for s in range(seeds) if s in found and found[s][0].status == "diverged"]


def values(runs: list[dict[str, Any]], arm: str, seeds: int, metric: str) -> list[float]:
    """The metric of the arm's runs of seeds 0..seeds-1, in seed order; ConfigError naming the
    seeds that have no finished run with it."""
    found = {
        s: v
        for s, (summ, _) in by_seed(runs, arm).items()
        if (v := summ.outcome(metric)) is not None
    }
    missing = [s for s in range(seeds) if s not in found]
    if missing:
        raise ConfigError(
            f"{arm}: seeds {missing} have no finished run with {metric}; rerun the same command"
        )
    return [found[s] for s in range(seeds)]


def ensemble_accuracy(dirs: list[Path]) -> float:
    """Test accuracy of the mean softmax of these runs' stored test outputs (one ensemble)."""
    from regbench.stats.inference import correct, ensemble_log_probs

    outs = []
    for d in dirs:
        try:
            with np.load(d / folder.TEST_OUTPUTS) as z:
                outs.append((z["labels"], z["log_probs"]))
        except (OSError, KeyError, ValueError):
            raise ConfigError(f"{d}: no readable {folder.TEST_OUTPUTS}; rerun that run") from None
    labels = outs[0][0]
    if any(lab.shape != labels.shape or (lab != labels).any() for lab, _ in outs):
        raise ConfigError(f"{dirs[0].parent}: the group's runs were tested on different labels")
    return float(correct(ensemble_log_probs(np.stack([lp for _, lp in outs])), labels).mean())


def unit_values(
    runs: list[dict[str, Any]], arm: str, units: int, metric: str, group: int
) -> np.ndarray:
    """(units,) the metric of each unit of the arm: a seed's run, or the mean over a group's runs;
    ENSEMBLE: the group's ensemble accuracy."""
    n = units * group
    if metric != ENSEMBLE:
        return np.asarray(values(runs, arm, n, metric)).reshape(units, group).mean(1)
    values(runs, arm, n, "test_acc")  # every run finished and tested, or the one-line error
    dirs = {s: d for s, (_, d) in by_seed(runs, arm).items()}
    return np.array(
        [
            ensemble_accuracy([dirs[s] for s in range(u * group, (u + 1) * group)])
            for u in range(units)
        ]
    )


def scores(terms: tuple[Term, ...], got: dict[tuple[str, str], np.ndarray]) -> np.ndarray:
    """Each unit's score: the signed sum of its measurements (got: (arm, metric) -> (units,)). A
    censored time (epochs to a target, inf where never reached) has no difference: a contrast of
    two censored times scores by sign (stats.censored.paired_signs)."""
    from regbench.stats import censored

    if any(t.metric in CENSORED for t in terms):
        plus, minus = (next(got[t.arm, t.metric] for t in terms if t.sign == s) for s in (1, -1))
        return censored.paired_signs(plus, minus)
    return np.sum([t.sign * got[t.arm, t.metric] for t in terms], axis=0)
