"""What a run folder records, as types: summary.json (`Summary`: each field with its type, unit,
direction and label). Written and read only through it; every list of summary keys elsewhere (compare's metrics, its checked values, its run
records and the means beside its metric) is derived from the fields here, so that adding an
outcome is adding one field. Imports no torch, numpy or scipy: the training writes these records,
`compare` and `sweep` read them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Better = Literal["higher", "lower"]
FINAL_OK = ("completed", "early_stopped")  # the statuses whose numbers are averaged into statistics
INF = math.inf


@dataclass(frozen=True)
class Outcome:
    """What one summary field is. `low`/`high`: the range `compare` accepts (None: compare does
    not read the field as a number). The ranks place the field among compare's --metric choices,
    the means beside its metric in the group tables, and the run records' columns."""

    unit: str
    label: str
    better: Better | None = None  # None: neither direction is better (a count, a time)
    low: float | None = None
    high: float | None = None
    integer: bool = False
    nullable: bool = False  # compare: null is a valid value (not measured), not a warning
    optional: bool = False  # summary.json leaves it out when it is None (not measured at all)
    note: bool = False  # written by a status-only summary (running, interrupted, failed)
    boolean: bool = False  # true/false in the file, read as 1/0
    censored: bool = False  # a time to an event: null when it never happened (censored at the end)
    diverged_too: bool = False  # an outcome a diverged run has too (its others are undefined)
    grid: bool = False  # a share of the test set's images, k / n_test (compared as counts)
    metric: int | None = None
    mean: int | None = None
    newer: bool = False  # a mean shown only where some run records it (written by newer runs)
    run: int | None = None
    shown: int | None = None  # its line in the table `regbench train` prints

    @property
    def checked(self) -> bool:
        return self.low is not None

    def check(self, key: str, v: Any) -> tuple[float | None, str | None]:
        """A value -> (number, None) if valid, (None, why) if not, (None, None) if null-able."""
        assert self.low is not None and self.high is not None
        if v is None:
            return None, None if self.nullable else f"{key} is null"
        if isinstance(v, bool) and self.boolean:
            return float(v), None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None, f"{key} = {v!r} is not a number"
        if not math.isfinite(v):
            return None, f"{key} = {v} is not finite"
        if self.integer and v != int(v):
            return None, f"{key} = {v} is not a whole number"
        if not self.low <= v <= self.high:
            return None, f"{key} = {v} is out of range [{self.low}, {self.high}]"
        return float(v), None


def _f(default: Any = None, **outcome: Any) -> Any:
    return field(default=default, metadata={"outcome": Outcome(**outcome)})


SHARE = {"unit": "share", "low": 0, "high": 1}  # a fraction of examples (accuracy, ECE)
ACC = {**SHARE, "better": "higher"}  # an accuracy
ECE = {**SHARE, "better": "lower"}  # an expected calibration error
NATS = {"unit": "nats", "low": 0, "high": INF, "better": "lower"}  # a cross-entropy
EPOCHS = {"unit": "epochs", "low": 1, "high": INF, "integer": True, "nullable": True}


# The fields are a table, one field an outcome: the long ones keep their outcome on two or three
# lines (fmt: skip) rather than one keyword a line, so that each reads as a row.
@dataclass
class Summary:
    """summary.json: a run's status first, its numbers once it has finished. The field order is
    the file's key order."""

    status: str = _f(shown=1, unit="", label="status", note=True)
    run_name: str = _f(unit="", label="run folder name", note=True, run=1)
    best_epoch: int | None = _f(shown=2, label="best epoch", **EPOCHS, mean=3, run=3)
    best_val_acc: float | None = _f(
        shown=4, label="best validation accuracy", **ACC, metric=3, mean=1, run=5
    )
    best_val_loss: float | None = _f(label="best validation loss", **NATS, metric=4, run=6)
    final_val_acc: float | None = _f(
        label="last validation accuracy", **ACC, metric=5, mean=6, newer=True, run=7
    )
    test_acc: float | None = _f(shown=5, grid=True, label="test accuracy", **ACC, metric=1, run=8)
    test_loss: float | None = _f(label="test loss", **NATS, metric=2, run=9)
    test_ece: float | None = _f(label="test expected calibration error (15 bins)", **ECE, metric=8,
                                mean=7, newer=True, run=10)  # fmt: skip
    final_train_acc: float | None = _f(label="last training accuracy", **ACC, metric=6, run=13)
    train_acc_at_best: float | None = _f(unit="share", label="training accuracy at the best epoch")
    gen_gap: float | None = _f(shown=7, unit="share",
                               label="generalization gap (train - val accuracy at the best epoch)",
                               better="lower", low=-1, high=1, nullable=True, metric=7, mean=2,
                               run=14)  # fmt: skip
    weight_norm: float | None = _f(unit="", label="L2 norm of the conv/linear weights",
                                   better="lower", low=0, high=INF, metric=9, mean=8, newer=True,
                                   run=11)  # fmt: skip
    overfit_epoch: int | None = _f(
        label="epoch validation loss rose 5% above its minimum (null: never)", better="higher",
        **EPOCHS, metric=10, mean=9, newer=True, run=12)  # fmt: skip
    diverged: bool | None = _f(
        unit="",
        label="diverged (non-finite loss): an outcome, not a missing value",
        better="lower",
        low=0,
        high=1,
        boolean=True,
        diverged_too=True,
        metric=15,
    )
    epochs_to_target: int | None = _f(
        label="epochs to trainer.target_val_acc (null: never reached, censored)",
        better="lower",
        **EPOCHS,
        censored=True,
        diverged_too=True,
        metric=14,
    )
    epochs_run: int | None = _f(
        shown=3, unit="epochs", label="epochs run", low=0, high=INF, integer=True, mean=4, run=4
    )
    tested: str | None = _f(unit="", label="weights tested (best or last)")
    wall_seconds: float | None = _f(
        shown=8, unit="s", label="wall time", low=0, high=INF, nullable=True, mean=5, run=15
    )
    torch_version: str | None = _f(unit="", label="PyTorch version")
    regbench_version: str | None = _f(unit="", label="regbench version", optional=True)
    seed: int | None = _f(unit="", label="seed", run=2)
    error: str | None = _f(unit="", label="error line", note=True)
    fused_with: int | None = _f(unit="runs", label="runs trained fused", optional=True)
    params: int | None = _f(
        shown=9, unit="", label="parameters", low=0, high=INF, integer=True, nullable=True, run=16
    )
    device: str | None = _f(shown=10, unit="", label="device")
    threads: int | None = _f(unit="threads", label="CPU threads (torch.get_num_threads)")
    transfer_source: str | None = _f(
        unit="", label="transfer: the source run (or checkpoint)", optional=True
    )
    transfer_source_config_hash: str | None = _f(
        unit="", label="transfer: the source run's config hash", optional=True
    )
    transfer_layers_loaded: int | None = _f(
        unit="layers", label="transfer: the layers loaded from the source", optional=True
    )
    test_acc_last: float | None = _f(
        label="test accuracy of the last epoch's weights", **ACC, optional=True, metric=18
    )
    test_acc_best: float | None = _f(
        label="test accuracy of the best epoch's weights (null: no best.pt)",
        **ACC,
        nullable=True,
        optional=True,
        metric=17,
    )
    mc_test_loss: float | None = _f(label="MC dropout test loss", **NATS, optional=True, metric=12)
    mc_test_acc: float | None = _f(
        shown=6,
        grid=True,
        label="MC dropout test accuracy (mean of T passes)",
        **ACC,
        optional=True,
        metric=11,
        mean=10,
        newer=True,
    )
    mc_test_ece: float | None = _f(label="MC dropout test ECE", **ECE, optional=True, metric=13)
    near_zero_weights: float | None = _f(
        label="share of conv/linear weights near zero (sparsity)", **ACC, optional=True, metric=16
    )
    n_test: int | None = _f(unit="examples", label="test split size", optional=True)

    written: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def note_of(cls, status: str, run_name: str, error: str | None = None) -> Summary:
        """The summary of a run that has no numbers (yet): running, interrupted, failed."""
        return cls(status=status, run_name=run_name, error=error)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Summary:
        """The fields of a parsed summary.json as they are (unchecked: `checked_values` checks
        the numbers); keys of other versions are left out, missing ones are None."""
        return cls(**{k: raw[k] for k in FIELDS if k in raw}, written=frozenset(raw))

    def __getitem__(self, key: str) -> Any:
        """summary["status"]: a field by its name in the file (KeyError for any other name)."""
        if key not in FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def outcome(self, metric: str) -> float | None:
        """A finished run's metric as a number (inf: a censored time, never reached), or None: the
        run has not finished, or the metric is undefined for it (a diverged run's accuracy). Time
        to an event is compared by paired signs, the censored tied at the worst rank."""
        o, value = FIELDS.get(metric), getattr(self, metric, None)
        if o is None:
            return None
        if self.status not in FINAL_OK and not (self.status == "diverged" and o.diverged_too):
            return None
        if value is None and o.censored and metric in self.written:
            return float("inf")
        return float(value) if isinstance(value, (int, float)) else None

    def to_json(self) -> dict[str, Any]:
        """summary.json's mapping: every field in order, optional ones only when measured; a
        status-only summary (no epochs run) holds its note fields only."""
        if self.epochs_run is None:
            return {k: getattr(self, k) for k, o in FIELDS.items() if o.note}
        out = {}
        for key, o in FIELDS.items():
            v = getattr(self, key)
            if v is not None or not o.optional:
                out[key] = v
        return out


FIELDS: dict[str, Outcome] = {
    f.name: f.metadata["outcome"] for f in dataclasses.fields(Summary) if "outcome" in f.metadata
}


def _ranked(role: str) -> tuple[str, ...]:
    ranked = [(getattr(o, role), k) for k, o in FIELDS.items() if getattr(o, role) is not None]
    return tuple(k for _, k in sorted(ranked))


METRICS = _ranked("metric")  # compare --metric's choices, in the order its help lists them
LOWER_IS_BETTER = tuple(k for k, o in FIELDS.items() if o.better == "lower")
MEANS = _ranked("mean")  # the means beside the metric in compare's group tables
RUN_FIELDS = _ranked("run")
SHOWN = _ranked("shown")  # the lines of the table `regbench train` prints
GRID = tuple(
    k for k, o in FIELDS.items() if o.grid
)  # the summary columns of compare's run records (--runs)
CHECKED = tuple(k for k, o in FIELDS.items() if o.checked)  # the numbers compare reads
CENSORED = tuple(k for k, o in FIELDS.items() if o.censored)
DIVERGED_OUTCOMES = tuple(k for k, o in FIELDS.items() if o.diverged_too)
# outcomes whose paired scores are -1, 0 or +1 (a 0/1 outcome, paired signs): decided by the exact
# sign test where every pair moved the same way (stats.censored.unanimous)
SIGNED = tuple(k for k, o in FIELDS.items() if o.boolean or o.censored)


def checked_values(raw: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """The valid numbers of a parsed summary.json, and why each invalid one is left out. Keys
    absent (written before the key existed) are simply missing."""
    values, why = {}, []
    for key in (k for k in CHECKED if k in raw):
        v, bad = FIELDS[key].check(key, raw[key])
        if v is not None:
            values[key] = v
        elif bad:
            why.append(bad)
    return values, why
