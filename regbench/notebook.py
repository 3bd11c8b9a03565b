"""regbench from Python (a notebook): run folders as a pandas DataFrame, and `regbench compare`'s
analysis as data. Both are thin layers over the command's own code (compare/load.py,
compare/pipeline.py), so a notebook and the command always agree on every number.

    import regbench
    df = regbench.load_runs("outputs")                      # one row per run folder
    res = regbench.compare_runs("outputs/sweeps/capacity", baseline="reg=none")
    res["comparisons"][["reg", "delta", "verdict"]]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.folder import flatten
from regbench.stats.defaults import ALPHA, DEFAULT_POWER

if TYPE_CHECKING:  # pandas is imported when a function runs: `import regbench` stays light
    import pandas as pd

    from regbench.compare.result import Result
    from regbench.decisions import Decisions

# load_runs' own columns: config keys of the same name (a run's `name`, `seed`) do not overwrite them
RUN_COLUMNS = ("folder", "name", "status", "problem", "seed")


def _paths(path: str | Path | Sequence[str | Path]) -> list[Path]:
    """One folder or several, each existing: ValueError otherwise (as every bad argument here)."""
    items = [path] if isinstance(path, (str, Path)) else path
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"path must be a folder or a list of folders, got {path!r}")
    for p in items:
        if not isinstance(p, (str, Path)) or not str(p):
            raise ValueError(f"path must be a folder or a list of folders, got {p!r}")
        if not Path(p).exists():
            raise ValueError(f"{p} does not exist; give a run folder or a folder of runs")
    return [Path(p) for p in items]


def _texts(value: str | Sequence[str], name: str, sep: str | None = None) -> list[str]:
    """filter="reg=none" is one condition (not its letters); by="model,reg" two keys."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(sep) if v.strip()] if sep else [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a string or a list of strings, got {value!r}")
    return list(value)


def _number(value: Any, name: str, whole: bool = False) -> None:
    """A number where one is expected (alpha="0.05", alpha=None, reps=2000.5: ValueError)."""
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _said_if_empty(df: pd.DataFrame, filters: list[str]) -> pd.DataFrame:
    if filters and df.empty:
        import warnings

        warnings.warn(f"no run matches filter {filters}", UserWarning, stacklevel=3)
    return df


def load_runs(
    path: str | Path | Sequence[str | Path], *, filter: Sequence[str] = ()
) -> pd.DataFrame:
    """Every run folder below `path` (one path or several) as one row: `folder`, `name`,
    `status`, `problem` (why compare would skip it, else None), `seed`, the checked summary
    values (`test_acc`, `gen_gap`, ...; NaN where left out or absent), `reg` (the regularizers as
    compare labels them, `dropout+l2`) and the flattened config (`model.hidden`, `reg.dropout.p`,
    ...). `filter` takes compare's `key=value` / `key!=value` conditions."""
    import pandas as pd

    from regbench.compare.groups import filter_runs, label
    from regbench.compare.load import CompareError
    from regbench.compare.load import load_runs as read
    from regbench.record import CHECKED

    filters = _texts(filter, "filter")
    try:
        runs = read(_paths(path))
        if filters:
            runs = filter_runs(runs, filters)
    except CompareError as e:  # the same ValueError as compare_runs for the same mistake
        raise ValueError(str(e)) from None
    rows = []
    for r in runs:
        config = r.config or {}
        rows.append(
            {
                "folder": str(r.path),
                "name": r.path.name,
                "status": r.status,
                "problem": r.problem,
                "seed": r.seed,
                **{k: r.values.get(k, float("nan")) for k in CHECKED},
                "reg": label("reg", config["reg"]) if "reg" in config else None,
                **{k: v for k, v in flatten(config).items() if k not in RUN_COLUMNS},
            }
        )
    return _said_if_empty(pd.DataFrame(rows), filters)


def compare_runs(
    path: str | Path | Sequence[str | Path],
    *,
    baseline: str | None = None,
    metric: str = "test_acc",
    by: Sequence[str] = (),
    filter: Sequence[str] = (),
    test: str = "t",
    correction: str = "holm",
    alpha: float = ALPHA,
    delta: float | None = None,
    power: float = DEFAULT_POWER,
    reps: int = 2000,
    factorial: bool = False,
    ensemble: bool = False,
) -> dict[str, pd.DataFrame]:
    """`regbench compare PATH --baseline ... --metric ...` as DataFrames: `groups` (one row per
    group: its labels, n, mean/std/min/max of the metric, and with a baseline Δ, interval, p,
    P(better), verdict and seeds planned), `comparisons` (the groups compared with a baseline,
    the same columns), `runs` (one row per run folder), `summary` (compare --summary's lines,
    column `line`), with `factorial` / `ensemble` also `effects` / `ensembles`, and where a
    folder is a staged sweep's (its decisions.json) `decisions`: one row per comparison, its
    staged verdict, the seeds per arm it was decided at and the Δ [interval] it was decided by,
    as `compare` shows them. The options mean what the command's do (`regbench compare
    --help`); a bad one raises ValueError."""
    from rich.console import Console

    from regbench.compare import pipeline
    from regbench.compare.load import CompareError
    from regbench.compare.result import Inference, Request
    from regbench.stats.defaults import default_delta

    err = Console(stderr=True)
    for name, value in (("alpha", alpha), ("power", power), ("reps", reps)):
        _number(value, name, whole=name == "reps")
    if delta is not None:
        _number(delta, "delta")
    by, filter = _texts(by, "by", ","), _texts(filter, "filter")
    try:
        delta = default_delta(metric) if delta is None else delta
        inf = Inference(metric, test, correction, alpha, reps=reps, delta=delta, power=power)
        req = Request(_paths(path), inf, by, filter, baseline, None, factorial, (), ensemble)
        result = pipeline.compare(req, err)
    except CompareError as e:
        raise ValueError(str(e)) from None
    for w in result.warnings:
        pipeline.say(err, f"warning: {w}")
    return _frames(result)


def _frames(result: Result) -> dict[str, pd.DataFrame]:
    """compare's result as the DataFrames compare_runs returns."""
    import pandas as pd

    out: dict[str, Any] = {
        "groups": pd.DataFrame(result.records),
        "runs": pd.DataFrame(result.runs),
        "summary": pd.DataFrame({"line": result.summary}, dtype=object),
    }
    groups_df = out["groups"]
    has_delta = groups_df["delta"].notna() if "delta" in groups_df else None
    compared = groups_df[has_delta] if has_delta is not None else groups_df.iloc[:0]
    out["comparisons"] = compared.reset_index(drop=True)
    if result.effects is not None:
        out["effects"] = pd.DataFrame(result.effects)
    if result.ensembles is not None:
        out["ensembles"] = pd.DataFrame(result.ensembles)
    if result.decisions:
        out["decisions"] = pd.DataFrame(staged_rows(result.decisions))
    return out


def staged_rows(decisions: Sequence[Decisions]) -> list[dict[str, Any]]:
    """One row per comparison of each staged sweep: its verdict, the seeds per arm it was decided
    at (None: open), and its Δ with the interval it was decided by at its last look."""
    from regbench.compare.staged import interval

    rows = []
    for log in decisions:
        for arm, base in log.comparisons.items():
            est = interval(log, arm)
            rows.append(
                {
                    "folder": log.folder,
                    "metric": log.metric,
                    "comparison": arm,
                    "baseline": base,
                    "verdict": log.verdict(arm),
                    "decided_at": log.decided_at.get(arm),
                    "delta": est[0] if est else None,
                    "delta_low": est[1] if est else None,
                    "delta_high": est[2] if est else None,
                }
            )
    return rows
