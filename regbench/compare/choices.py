"""The values `regbench compare`'s options accept, apart from the modules that use them: the
command line reads them without importing scipy or matplotlib."""

from regbench.stats.defaults import CORRECTIONS, DEFAULT_DELTA, DEFAULT_POWER, default_delta

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
    "epochs_to_target",  # null when never reached: censored (folder.CENSORED)
    "diverged",  # 0/1: an outcome that diverged runs have too
    "near_zero_weights",
    "test_acc_best",
    "test_acc_last",
)
LOWER_IS_BETTER = (
    "test_loss",
    "best_val_loss",
    "gen_gap",
    "test_ece",
    "weight_norm",
    "mc_test_loss",
    "mc_test_ece",
    "epochs_to_target",
    "diverged",
)
TESTS = ("t", "wilcoxon", "bootstrap")  # the paired tests; unpaired comparisons use Welch's t
CURVE_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")  # --curves default
FORMATS = ("table", "md", "csv", "json", "html", "latex")  # latex: booktabs tables for papers

__all__ = [
    "CORRECTIONS",
    "CURVE_COLUMNS",
    "DEFAULT_DELTA",
    "DEFAULT_POWER",
    "FORMATS",
    "LOWER_IS_BETTER",
    "METRICS",
    "TESTS",
    "default_delta",
]
