"""The statistics' defaults, imported by the command lines as well (no scipy here)."""

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}  # --correction -> statsmodels name
# δ default for metrics read in points: half a point of accuracy, ≈2.5x the noise floor of a
# 10,000-image test set at 97% (2 SE = 0.0034) and about the smallest gain papers on these
# datasets report; other metrics have no natural unit, so they get no δ unless one is given
DEFAULT_DELTA = 0.005
DEFAULT_POWER = 0.8  # Cohen's convention
ALPHA = 0.05  # the error rate every test, interval and verdict is at unless one is given
# a staged sweep (regbench sweep --until-decided): seeds per arm per stage and at most in all
# (docs/comparing.md, "Power and the budget"), where the error goes over the stages, and the futility stop: a
# comparison the rest of the budget would decide with a chance below this stops undecided
STAGE, BUDGET = 5, 20
DEFAULT_SPENDING = "obf"  # O'Brien-Fleming-type: little early (stats.boundaries.SPENDING)
FUTILITY = 0.1


def default_delta(metric: str) -> float | None:
    """δ when none is given: DEFAULT_DELTA for metrics read in points (accuracies, gen_gap)."""
    return DEFAULT_DELTA if metric.endswith("_acc") or metric == "gen_gap" else None
