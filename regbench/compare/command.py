"""`regbench compare`: the Typer command, its options and their checks; the work is in pipeline.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from regbench.compare.choices import CURVE_COLUMNS, DEFAULT_POWER, FORMATS, default_delta
from regbench.compare.load import CompareError
from regbench.record import METRICS
from regbench.stats.defaults import ALPHA, DEFAULT_DELTA

if TYPE_CHECKING:
    from regbench.compare.result import Result

CURVES = ",".join(CURVE_COLUMNS)

Paths = Annotated[
    list[Path],
    typer.Argument(
        help="Run folders, sweep folders or any parent of them (e.g. outputs/).", show_default=False
    ),
]
By = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated dotted config keys to group by, e.g. model,reg,optim.lr. "
        "Default: runs that differ only in seed."
    ),
]
Sort = Annotated[
    str | None,
    typer.Option(
        help="Column to sort groups by, e.g. test_acc, gen_gap, model; prefix '-' for "
        "descending. Default: --metric, best first."
    ),
]
Filter = Annotated[
    list[str],
    typer.Option(
        "--filter",
        help="Keep runs with key=value (or key!=value), e.g. data.name=mnist. Repeatable; all must hold.",
    ),
]
Metric = Annotated[
    str, typer.Option(help=f"Summary value to average and compare: {', '.join(METRICS)}.")
]
Baseline = Annotated[
    str | None,
    typer.Option(
        help="key=value of the reference group, e.g. reg=none: every group is compared with the "
        "baseline that has the same other settings (paired by seed when the seeds match)."
    ),
]
Test = Annotated[
    str,
    typer.Option(help="Paired test: t (paired t), wilcoxon (signed-rank), bootstrap (percentile)."),
]
Correction = Annotated[
    str, typer.Option(help="Multiplicity correction over the table's comparisons: holm, bh, none.")
]
Alpha = Annotated[
    float,
    typer.Option(
        help="Significance level of the adjusted p-values, and the family-wise error of the "
        "verdicts (α/2 for better/worse, α/2 for equivalent)."
    ),
]
Delta = Annotated[
    float | None,
    typer.Option(
        help="Smallest effect of interest in metric units: a verdict says equivalent when the "
        "difference is shown to be within ±delta, and seeds are planned to decide delta. "
        f"Default: {DEFAULT_DELTA} (half a point) for accuracies and gen_gap, none for other metrics."
    ),
]
Power = Annotated[
    float,
    typer.Option(
        help=f"Power the seeds planned for --delta reach (default: Cohen's {DEFAULT_POWER})."
    ),
]
Reps = Annotated[
    int, typer.Option(help="Bootstrap resamples (P(better) intervals, --test bootstrap).")
]
Seed = Annotated[int, typer.Option("--bootstrap-seed", help="Seed of the bootstrap's generator.")]
Summary = Annotated[
    bool, typer.Option("--summary", help="Also print one plain-words line per comparison.")
]
Factorial = Annotated[
    bool,
    typer.Option(
        "--factorial",
        help="Main effects and two-way interactions of a full 2^k design of regularizers "
        "(e.g. regbench sweep study=factorial).",
    ),
]
Factors = Annotated[
    str | None,
    typer.Option(
        help="Regularizers of the --factorial design, e.g. dropout,bn. Default: all present."
    ),
]
Ensemble = Annotated[
    bool,
    typer.Option(
        "--ensemble",
        help="Test accuracy of ensembles of each group's seeds (softmax averaged, from the runs' "
        "stored test outputs) beside single runs; MC dropout where runs have it.",
    ),
]
Curves = Annotated[
    str,
    typer.Option(help="metrics.csv columns the learning-curves figure draws (with --out)."),
]
Format = Annotated[str, typer.Option(help=f"Output on stdout: {'|'.join(FORMATS)}.")]
Out = Annotated[
    str | None,  # not Path: Path("") is the current folder, and an empty --out must be refused
    typer.Option(
        metavar="PATH",
        help="Also write report.md (report.html with --format html), runs.csv, groups.csv and "
        "PNG figures into this folder.",
    ),
]


def _split(text: str | None) -> list[str]:
    return [k.strip() for k in (text or "").split(",") if k.strip()]


def check_out(out: str) -> Path:
    """compare --out is a folder the report goes to: CompareError unless it names one that can
    be written (an empty name would put the report's files among the current folder's)."""
    from regbench import disk
    from regbench.config import ConfigError

    if not out.strip():
        raise CompareError(f"--out {out!r} names no folder; give one such as --out report")
    try:
        disk.check_folder(Path(out), "--out")
    except ConfigError as exc:
        raise CompareError(str(exc)) from None
    return Path(out)


def compare_command(
    paths: Paths,
    by: By = None,
    sort: Sort = None,
    filter: Filter = [],  # noqa: B006 - Typer copies list defaults
    metric: Metric = "test_acc",
    baseline: Baseline = None,
    test: Test = "t",
    correction: Correction = "holm",
    alpha: Alpha = ALPHA,
    delta: Delta = None,
    power: Power = DEFAULT_POWER,
    reps: Reps = 2000,
    bootstrap_seed: Seed = 0,
    summary: Summary = False,
    factorial: Factorial = False,
    factors: Factors = None,
    ensemble: Ensemble = False,
    curves: Curves = CURVES,
    format: Format = "table",
    out: Out = None,
) -> None:
    """Compare runs: seeds grouped, mean ± std per group; paired and corrected inference against
    a baseline, P(better), seeds needed; factorial effects; spread per source of randomness;
    ensembles of seeds."""
    # imported here, not at the top: scipy and matplotlib behind it cost every `regbench train`
    # and `sweep` seconds of start-up (benchmarks/RESULTS.md)
    from regbench.compare import pipeline
    from regbench.compare.result import Inference, Request, one_of

    err = Console(stderr=True)
    try:
        one_of("--format", format, FORMATS)  # how it is shown: no part of the comparison
        delta = default_delta(metric) if delta is None else delta
        inf = Inference(metric, test, correction, alpha, reps=reps, seed=bootstrap_seed,
                        delta=delta, power=power)  # fmt: skip
        # before any run is read: an empty name, a file in its place, a read-only disk
        folder = check_out(out) if out is not None else None
        drawn = _split(curves) if folder is not None else None
        given = [o for o, on in (("--summary", summary), ("--curves", curves != CURVES)) if on]
        req = Request(paths, inf, _split(by), filter, baseline, sort, factorial, _split(factors),
                      ensemble, drawn, given)  # fmt: skip
        result = pipeline.compare(req, err)
    except CompareError as e:
        pipeline.say(err, f"error: {e}")
        raise typer.Exit(code=2) from None
    path = None  # the report first: one that cannot be written is one line, not one after tables
    if folder is not None:
        path = _write_report(folder, result, format == "html", _split(curves), err)
    pipeline.print_result(result, format, summary, err)
    if path is not None:
        pipeline.say(err, f"wrote {path}")


def _write_report(out: Path, result: Result, html: bool, curves: list[str], err: Console) -> Path:
    """--out: the tables, figures and report files (the report's path), or one error line (exit 2)."""
    from regbench import disk
    from regbench.compare import pipeline

    try:
        out.mkdir(parents=True, exist_ok=True)
        return pipeline.write_outputs(out, result, html, curves)
    except OSError as e:  # a full disk, a read-only one, a file in the way
        pipeline.say(err, f"error: {disk.write_error(e, out, 'choose another --out')}")
        raise typer.Exit(code=2) from None
