"""What `regbench compare` does once its options are checked: run folders -> groups -> records
and table sections (analysis, tables) -> stdout (report) and, with --out, files and figures."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from rich.console import Console

from regbench.compare import analysis, figures, report, staged, tables
from regbench.compare.analysis import Inference
from regbench.compare.groups import (
    Group,
    baseline_of,
    count_once,
    filter_runs,
    get_key,
    group_runs,
    mixed_arithmetic,
)
from regbench.compare.load import CompareError, Run, load_runs
from regbench.config import LINE
from regbench.stats import inference

WIDE = 250  # piped output has no terminal width: let tables take what they need


def say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def groups_of(
    paths: list[Path], by: list[str], filters: list[str], err: Console
) -> tuple[list[Run], list[Group]]:
    runs = load_runs(paths)
    for r in runs:
        for why in [r.problem] if r.problem else r.warnings:
            say(err, f"warning: {'skipped ' if r.problem else ''}{report.shown(r.path)}: {why}")
    kept = filter_runs(runs, filters)
    if not kept:
        raise CompareError(
            f"no runs with a readable config match {' and '.join(filters)}"
            if filters
            else "no run folder has a readable config.yaml"
        )
    for k in by:
        if all(get_key(r.config, k) is None for r in kept):
            raise CompareError(f"--by key {k!r} is not in any run's config.yaml")
    groups = group_runs(kept, by or None)
    if not by and (line := count_once(groups)):  # runs that differ only in seed: one per seed
        say(err, f"warning: {line}")
    return runs, groups


def check_curves(runs: list[Run], columns: list[str]) -> None:
    present = list(dict.fromkeys(c for r in runs for c in r.metrics if c != "epoch"))
    for c in columns:
        if c not in present:
            raise CompareError(
                f"--curves column {c!r} is in no run's metrics.csv; choose from: {', '.join(present)}"
            )


def wilcoxon_floor(records: list[dict[str, Any]], inf: Inference, m: int) -> str | None:
    """A warning when the signed-rank test cannot find any comparison better or worse: with n
    pairs its smallest p is 2/2^n, and Holm's first step needs α/(2m) (decide.py)."""
    pairs = [r["pairs_or_runs"] for r in records if r.get("p") is not None and r["test"] == "wilcoxon"]  # fmt: skip
    level = inf.alpha / (2 * max(m, 1))
    if not pairs or inference.signed_rank_floor(max(pairs)) <= level:
        return None
    need = next(n for n in range(2, 64) if inference.signed_rank_floor(n) <= level)
    return (
        f"--test wilcoxon cannot find a difference here: with {max(pairs)} pairs its smallest p "
        f"is {inference.signed_rank_floor(max(pairs)):.4f}, above α/(2m) = {level:.5f} for m = {m} "
        f"comparisons; it needs {need} seeds per arm (or use --test t)"
    )


def bootstrap_pairs(records: list[dict[str, Any]], inf: Inference) -> str | None:
    """A warning when a bootstrap interval rests on fewer pairs than it needs to cover."""
    pairs = [r["pairs_or_runs"] for r in records if r.get("test") == "bootstrap"]
    if not pairs or min(pairs) >= inference.BOOTSTRAP_PAIRS:
        return None
    return (
        f"--test bootstrap: {min(pairs)} pairs; below {inference.BOOTSTRAP_PAIRS} a bootstrap "
        f"interval covers less than it says (a 95 % one about 84 % of the time at 5 pairs, 90 % "
        "at 10); --test t's interval holds at any number of seeds"
    )


def baseline_warnings(
    records: list[dict[str, Any]], inf: Inference, m: int, floor: tuple[float, int, float] | None
) -> list[str]:
    """What the comparisons against a baseline cannot show: a δ below the test set's noise floor,
    a Wilcoxon test that cannot reach significance at these seeds, a bootstrap at few pairs."""
    out = []
    if floor and inf.delta is not None and inf.delta < 2 * floor[0]:
        out.append(
            f"--delta {inf.delta:g} is below this test set's noise floor (2 SE = "
            f"{2 * floor[0]:.4f} at n = {floor[1]}): a difference that small cannot be "
            "resolved by this test set, whatever the seeds"
        )
    if inf.test == "wilcoxon" and (w := wilcoxon_floor(records, inf, m)):
        out.append(w)
    if inf.test == "bootstrap" and (w := bootstrap_pairs(records, inf)):
        out.append(w)
    return out


def unpaired_warnings(
    groups: list[Group], bases: list[int], compared: list[dict[str, Any]], metric: str
) -> list[str]:
    """Why each comparison that fell back to Welch's test is not paired by seed."""
    out = []
    for g, j, c in zip(groups, bases, compared, strict=True):
        if c.get("test") == "welch" and (why := g.unpaired(groups[j], metric)):
            out.append(
                f"{g.name} against {groups[j].name}: not paired by seed ({why}); Welch's test instead"
            )
    return out


def analyse(
    runs: list[Run],
    groups: list[Group],
    keys: list[str],
    inf: Inference,
    baseline: str | None,
    sort: str | None,
    factorial: bool,
    factors: list[str],
    decisions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every record and table section the outputs need, in display order. decisions: the staged
    sweeps' decisions.json among the paths (staged.read); where one answers this baseline and
    metric, its comparisons pair on the seeds both arms ran and show its verdicts."""
    logs = [x for x in decisions or [] if (x.get("baseline"), x.get("metric")) == (baseline, inf.metric)]  # fmt: skip
    if logs:
        inf = dataclasses.replace(inf, common_seeds=True)
    records = analysis.group_records(groups, inf.metric)
    labels = list(groups[0].labels)
    result: dict[str, Any] = {"inf": inf, "summary": [], "effects": None, "design": None}
    result["warnings"] = [w] if (w := mixed_arithmetic(groups)) else []
    result["ensembles"] = None
    if baseline:
        bases = baseline_of(groups, baseline, keys)
        compared = analysis.baseline_records(groups, bases, inf)
        result["warnings"] += unpaired_warnings(groups, bases, compared, inf.metric)
        for r, c in zip(records, compared, strict=True):
            r.update(c)
        for log in logs:
            analysis.staged_verdicts(records, groups, log, baseline)
    factorial_data = analysis.factorial_records(groups, factors or None, inf) if factorial else None
    order = analysis.sort_order(records, sort, inf.metric)
    result["records"] = [records[i] for i in order]
    result["groups"] = shown = [groups[i] for i in order]
    result["runs"] = report.run_records(runs, groups)
    result["skipped"] = [r for r in runs if r.problem]
    caption = tables.group_caption(len(result["skipped"]))
    sections = [tables.group_section(result["records"], labels, inf.metric, caption)]
    if baseline:
        m = sum(r.get("p_adj") is not None for r in records)
        floor = analysis.noise_floor(groups, inf.metric)
        result["warnings"] += baseline_warnings(records, inf, m, floor)
        caption = tables.baseline_caption(inf, m, floor)
        if logs:
            caption += (
                " · a staged sweep: Δ, interval and p over the seeds both arms ran; verdict: the "
                "staged study's (decisions.json), 'at n': the seeds per arm it was decided at"
            )
        sections.append(tables.baseline_section(result["records"], labels, inf, caption))
        result["summary"] = tables.summary_lines(result["records"], shown, inf)
    result["spread"] = "seeds" in labels  # the spread per source of randomness: table and figure
    if result["spread"]:
        sections.append(tables.spread_section(result["records"], labels, inf.metric))
    if factorial_data:
        effects, x, y, names = factorial_data
        sections.append(tables.effects_section(effects, inf, names, len(y)))
        result["effects"] = effects
        result["design"] = (x, y, names)
    result["sections"] = sections
    return result


def add_ensembles(result: dict[str, Any], labels: list[str], err: Console) -> None:
    """Add the ensembles table (groups in table order) to the result; say which runs it left out."""
    records, notes = analysis.ensemble_records(result["groups"], result["inf"])
    if not any(r["members"] for r in records):
        raise CompareError(
            "--ensemble: no finished run has readable test outputs (test_outputs.npz, written "
            "at the test by regbench since ensembles exist); train the runs again"
        )
    for note in notes:
        say(err, f"warning: {note}")
    result["ensembles"] = records
    result["sections"].append(tables.ensemble_section(records, labels))
    if any(r.get("mc_acc") is not None for r in records):
        result["sections"].append(tables.mc_section(records, labels))


def add_decisions(result: dict[str, Any], paths: list[Path]) -> None:
    """A staged sweep's verdicts and the path to them (its decisions.json), where a folder has one."""
    result["decisions"] = staged.read(paths)
    result["sections"] += [staged.section(log) for log in result["decisions"]]


def print_result(result: dict[str, Any], format: str, summary: bool, err: Console) -> None:
    sections, lines = result["sections"], result["summary"] if summary else []
    for w in result["warnings"]:
        say(err, f"warning: {w}")
    if format == "table":
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else WIDE
        console = Console(width=width)
        for s in sections:
            console.print(report.render_rich(s, console))
        for line in lines:  # a comparison's line, its continuation indented
            say(console, textwrap.fill(line, min(console.width, LINE), subsequent_indent="  "))
    elif format == "md":
        sys.stdout.write(report.markdown(sections))
        sys.stdout.write("".join(f"\n- {line}" for line in lines) + ("\n" if lines else ""))
    elif format == "latex":  # the tables only: a paper words its own conclusions
        sys.stdout.write("\n".join(report.render_latex(s) for s in sections))
    elif format == "html":
        sys.stdout.write("".join(report.render_html(s) for s in sections))
        sys.stdout.write("".join(f"<p>{html.escape(line)}</p>\n" for line in lines))
    else:  # csv and json carry the raw numbers; stdout stays parseable, so words go to stderr
        if format == "csv":
            sys.stdout.write(report.render_csv(result["records"]))
        else:
            data = {
                "metric": result["inf"].metric,
                "question": {k: getattr(result["inf"], k) for k in ("delta", "alpha", "power")},
                "groups": result["records"],
                "effects": result["effects"],
                "ensembles": result["ensembles"],
                "decisions": result.get("decisions", []),
                "summary": result["summary"],
                "runs": result["runs"],
            }
            sys.stdout.write(
                json.dumps(report.finite(data), indent=2, default=str, allow_nan=False) + "\n"
            )
        for line in lines:
            say(err, line)


def write_outputs(out: Path, result: dict[str, Any], as_html: bool, columns: list[str]) -> Path:
    """groups.csv, runs.csv, effects.csv, the figures and report.md/html into out."""
    metric, groups = result["inf"].metric, result["groups"]
    (out / "groups.csv").write_text(report.render_csv(result["records"]))
    (out / "runs.csv").write_text(report.render_csv(result["runs"]))
    pngs = figures.write_figures(out, groups, metric, columns)
    if result.get("spread"):
        pngs.append(figures.spread_figure(out, groups, metric))
    if result["ensembles"] is not None:
        (out / "ensembles.csv").write_text(report.render_csv(result["ensembles"]))
        pngs.append(figures.ensemble_figure(out, result["ensembles"], groups))
    if result["design"] is not None:
        (out / "effects.csv").write_text(report.render_csv(result["effects"]))
        pngs.append(figures.interaction_figure(out, *result["design"], metric))
    pngs += [staged.figure(out, log) for log in result.get("decisions", [])]
    return report.write_report(
        out, result["sections"], pngs, as_html, result["summary"], result["skipped"]
    )
