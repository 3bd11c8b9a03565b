"""Run folders in, checked runs out: discover run folders, read and check their files.

Reading never raises: a folder that cannot be used becomes a Run with a `problem` (skipped, one
warning); a single bad value in a usable folder becomes a `warnings` entry and is left out.
"""

from __future__ import annotations

import csv
import json
import math
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from regbench import datasets
from regbench.folder import CONFIG, FINAL_OK, METRICS_CSV, STATUSES, SUMMARY, TEST_OUTPUTS
from regbench.record import Summary, checked_values

STATUS_ORDER = (*FINAL_OK, "diverged", "failed", "interrupted", "running", "incomplete", "corrupt")


class CompareError(Exception):
    """A user-facing problem: printed as one `error:` line, exit code 2."""


@dataclass
class Run:
    path: Path
    config: dict[str, Any] | None
    summary: Summary | None
    metrics: dict[str, list[float]]
    status: str  # summary status, or "corrupt" / "incomplete"
    problem: str | None = None  # why the whole run is left out (with a warning)
    values: dict[str, float] = field(default_factory=dict)  # checked summary values
    warnings: list[str] = field(default_factory=list)  # single values left out

    @property
    def usable(self) -> bool:
        return self.problem is None and self.status in FINAL_OK

    def value(self, key: str) -> float | None:
        return self.values.get(key)

    @property
    def seed(self) -> int | None:
        s = (self.config or {}).get("seed")
        return s if isinstance(s, int) and not isinstance(s, bool) else None


# ---------------------------------------------------------------- discovery and reading


def discover_runs(paths: Sequence[Path]) -> list[Path]:
    """Every folder holding config.yaml at or below `paths` (not inside a run or hidden dir)."""
    found: dict[Path, None] = {}  # dict keeps order and drops overlaps between arguments
    for root in paths:
        if not root.is_dir():
            problem = "is not a folder" if root.exists() else "does not exist"
            raise CompareError(
                f"{root} {problem}; pass the folder `regbench train` wrote to (e.g. outputs/)"
            )
        for dirpath, dirnames, filenames in os.walk(root):
            if CONFIG in filenames:
                found[Path(dirpath).resolve()] = None
                dirnames[:] = []  # a run's own subfolders (e.g. .hydra/) are not runs
            else:
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return list(found)


def _read_metrics(path: Path, notes: list[str]) -> dict[str, list[float]]:
    """Columns of metrics.csv as floats; a cell that is not a finite number becomes NaN + a note."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        raise ValueError("no header")
    header = rows[0]
    cols: dict[str, list[float]] = {name: [] for name in header}
    bad: Counter[str] = Counter()
    for row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(f"row with {len(row)} fields, header has {len(header)}")
        for name, cell in zip(header, row, strict=True):
            try:
                v = float(cell) if cell else math.nan  # empty: not measured that epoch
            except ValueError:
                v = math.inf
            if cell and not math.isfinite(v):
                bad[name] += 1
                v = math.nan
            cols[name].append(v)
    if bad:
        cells = ", ".join(f"{n} ({c})" for n, c in bad.items())
        notes.append(f"metrics.csv cells that are not finite numbers left out: {cells}")
    return cols


def load_run(path: Path) -> Run:
    """Read one run folder; never raises: unreadable files become a `problem`."""
    try:
        with (path / CONFIG).open("rb") as f:
            config = yaml.load(f, Loader=yaml.CSafeLoader)  # ~20x faster than OmegaConf.load
        if not isinstance(config, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError, yaml.YAMLError) as e:
        return Run(path, None, None, {}, "corrupt", f"config.yaml unreadable ({_short(e)})")
    try:
        raw = json.loads((path / SUMMARY).read_bytes())
    except FileNotFoundError:
        return Run(path, config, None, {}, "incomplete", "no summary.json (never finished)")
    except (OSError, ValueError) as e:
        return Run(path, config, None, {}, "corrupt", f"summary.json unreadable ({_short(e)})")
    status = raw.get("status") if isinstance(raw, dict) else None
    if status not in STATUSES:
        return Run(path, config, None, {}, "corrupt", f"summary.json has status {status!r}")
    if status in ("running", "interrupted"):  # killed runs stay "running": either way, not final
        why = "still running (or killed)" if status == "running" else "interrupted, not finished"
        return Run(path, config, Summary.from_json(raw), {}, status, why)
    summary = Summary.from_json(raw)
    run = Run(path, config, summary, {}, status)
    try:
        run.metrics = _read_metrics(path / METRICS_CSV, run.warnings)
    except FileNotFoundError:  # a run that failed before its first epoch: no curve, still counted
        pass
    except (OSError, ValueError) as e:
        return Run(path, config, summary, {}, "corrupt", f"metrics.csv unreadable ({_short(e)})")
    final = status in FINAL_OK  # diverged/failed runs hold NaN or nulls by design: no warnings
    run.values, bad = checked_values(raw)
    run.warnings += [f"summary.json {why}; left out" for why in bad if final]
    if final and "seed" in config and run.seed is None:
        run.warnings.append(f"config.yaml seed = {config['seed']!r} is not an integer; not paired")
    if not final:
        run.warnings.clear()
    return run


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:80] if str(e) else type(e).__name__


def load_runs(paths: Sequence[Path]) -> list[Run]:
    runs = [load_run(p) for p in discover_runs(paths)]
    if not runs:
        where = ", ".join(str(p) for p in paths)
        raise CompareError(
            f"no run folders (with config.yaml) under {where}; "
            "train with `regbench train` first or pass the folder it wrote to"
        )
    return runs


def test_size(run: Run) -> int | None:
    """Examples in the run's test split (summary `n_test` when written), else from the dataset."""
    n = run.summary.n_test if run.summary else None
    if isinstance(n, int) and not isinstance(n, bool) and n > 0:
        return n
    data = (run.config or {}).get("data")
    if not isinstance(data, dict) or data.get("classes"):  # a class subset: a part of the split
        return None
    return datasets.test_size(data)


def read_test_outputs(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | str:
    """(labels (n,), log-probabilities (n, classes), MC dropout's or None) the run stored at its
    test, or why they cannot be used (a damaged MC array only leaves MC dropout out)."""
    path = run.path / TEST_OUTPUTS
    try:
        with np.load(path, allow_pickle=False) as z:
            if "log_probs" not in z or "labels" not in z:
                return f"{TEST_OUTPUTS} holds no log_probs"
            labels, lp = z["labels"], z["log_probs"]
            mc = z["mc_log_probs"] if "mc_log_probs" in z else None
    except FileNotFoundError:
        return f"no {TEST_OUTPUTS} (written by runs since `compare --ensemble` exists)"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        return f"{TEST_OUTPUTS} unreadable ({_short(e)})"
    if why := _not_log_probs(lp, labels):
        return f"{TEST_OUTPUTS}: log_probs {why}"
    mc = None if mc is None or _not_log_probs(mc, labels) else mc.astype(np.float64)
    return labels.astype(np.int64), lp.astype(np.float64), mc


def _not_log_probs(lp: np.ndarray, labels: np.ndarray) -> str | None:
    """Why lp (n, classes) is not a row of log-probabilities per label in labels (n,); None if it is."""
    if lp.ndim != 2 or labels.shape != (len(lp),) or not np.issubdtype(labels.dtype, np.integer):
        return "is not one row of class scores per test label"
    if np.isnan(lp).any() or (lp > 1e-3).any() or labels.min() < 0 or labels.max() >= lp.shape[1]:
        return "holds values that are not log-probabilities of its labels"
    return None
