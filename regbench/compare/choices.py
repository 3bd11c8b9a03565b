"""The values `regbench compare`'s options accept, apart from the modules that use them: the
command line reads them without importing scipy or matplotlib."""

METRICS = (
    "test_acc",
    "test_loss",
    "best_val_acc",
    "best_val_loss",
    "final_val_acc",
    "final_train_acc",
    "gen_gap",
    "test_ece",
    "weight_norm",
    "overfit_epoch",
    "mc_test_acc",
    "mc_test_loss",
    "mc_test_ece",
)
LOWER_IS_BETTER = (
    "test_loss",
    "best_val_loss",
    "gen_gap",
    "test_ece",
    "weight_norm",
    "mc_test_loss",
    "mc_test_ece",
)
TESTS = ("t", "wilcoxon", "bootstrap")  # the paired tests; unpaired comparisons use Welch's t
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}  # --correction -> statsmodels name
CURVE_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")  # --curves default
FORMATS = ("table", "md", "csv", "json", "html", "latex")  # latex: booktabs tables for papers
# δ default for metrics read in points: half a point of accuracy, ≈2.5x the noise floor of a
# 10,000-image test set at 97% (2 SE = 0.0034) and about the smallest gain papers on these
# datasets report; other metrics have no natural unit, so they get no δ unless one is given
DEFAULT_DELTA = 0.005
DEFAULT_POWER = 0.8  # Cohen's convention, and what the former "seeds @80%" planned for


def default_delta(metric: str) -> float | None:
    """δ when none is given: DEFAULT_DELTA for metrics read in points (accuracies, gen_gap)."""
    return DEFAULT_DELTA if metric.endswith("_acc") or metric == "gen_gap" else None
