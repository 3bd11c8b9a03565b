"""The values `regbench compare`'s options accept, apart from the modules that use them: the
command line reads them without importing scipy or matplotlib."""

from regbench.stats.defaults import CORRECTIONS, DEFAULT_DELTA, DEFAULT_POWER, default_delta

TESTS = ("t", "wilcoxon", "bootstrap")  # the paired tests; unpaired comparisons use Welch's t
CURVE_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")  # --curves default
# --metric's choices are the summary's metrics: regbench.record.METRICS
FORMATS = ("table", "md", "csv", "json", "html", "latex")  # latex: booktabs tables for papers

__all__ = [
    "CORRECTIONS",
    "CURVE_COLUMNS",
    "DEFAULT_DELTA",
    "DEFAULT_POWER",
    "FORMATS",
    "TESTS",
    "default_delta",
]
