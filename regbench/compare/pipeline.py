"""What `regbench compare` does once its options are checked: run folders -> groups -> records
and table sections (analysis, tables) -> stdout (report) and, with --out, files and figures."""

from __future__ import annotations

import html
import json
import os
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from regbench.compare import analysis, figures, report, staged, tables
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
from regbench.compare.result import Inference, Request, Result
from regbench.config import LINE
from regbench.decisions import Decisions
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
    shown = {id(r) for r in kept}  # the runs table: the runs compared and those skipped, not
    return [r for r in runs if r.problem or id(r) in shown], groups  # those filtered out


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
    pairs = [
        r["pairs_or_runs"] for r in records if r.get("p") is not None and r["test"] == "wilcoxon"
    ]
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
    groups: list[Group], bases: list[int | None], compared: list[dict[str, Any]], metric: str
) -> list[str]:
    """Why each comparison that fell back to Welch's test is not paired by seed."""
    out = []
    for g, j, c in zip(groups, bases, compared, strict=True):
        if j is None or c.get("test") != "welch":
            continue
        if why := g.unpaired(groups[j], metric):
            out.append(
                f"{g.name} against {groups[j].name}: not paired by seed ({why}); Welch's test instead"
            )
    return out


def compare(req: Request, err: Console) -> Result:
    """The one entry point of `regbench compare` and `regbench.compare_runs`: run folders in,
    every record and table section out, with the staged sweeps' decisions among the paths
    (warnings about single runs are said on err as found, the result's own warnings are not)."""
    runs, groups = groups_of(list(req.paths), list(req.by), list(req.filters), err)
    if req.curves is not None:
        check_curves(runs, list(req.curves))
    decisions = staged.read(req.paths)
    result = analyse(runs, groups, req, decisions)
    sections = list(result.sections)
    ensembles = None
    if req.ensemble:
        ensembles = ensemble_records(result.groups, result.inf, err)
        sections.append(tables.ensemble_section(ensembles, list(groups[0].labels)))
        if any(r.get("mc_acc") is not None for r in ensembles):
            sections.append(tables.mc_section(ensembles, list(groups[0].labels)))
    sections += [staged.section(log) for log in decisions]
    return replace(result, sections=sections, ensembles=ensembles, decisions=decisions)


def analyse(
    runs: list[Run], groups: list[Group], req: Request, decisions: list[Decisions]
) -> Result:
    """The group records and their table sections, in display order. Where a staged sweep's
    decisions answer this baseline and metric, its comparisons pair on the seeds both arms ran
    and show its verdicts."""
    inf, baseline = req.inference, req.baseline
    logs = [x for x in decisions if (x.baseline, x.metric) == (baseline, inf.metric)]
    if logs:
        inf = replace(inf, common_seeds=True)
    records = analysis.group_records(groups, inf.metric)
    labels = list(groups[0].labels)
    warnings = [w] if (w := mixed_arithmetic(groups)) else []
    if baseline:
        warnings += with_baseline(records, groups, baseline, list(req.by), inf, logs)
    factorial = (
        analysis.factorial_records(groups, list(req.factors) or None, inf)
        if req.factorial
        else None
    )
    order = analysis.sort_order(records, req.sort, inf.metric)
    shown_records, shown = [records[i] for i in order], [groups[i] for i in order]
    skipped = [r for r in runs if r.problem]
    caption = tables.group_caption(len(skipped))
    sections = [tables.group_section(shown_records, labels, inf.metric, caption)]
    summary: list[str] = []
    if baseline:
        m = sum(r.get("p_adj") is not None for r in records)
        floor = analysis.noise_floor(groups, inf.metric)
        warnings += baseline_warnings(records, inf, m, floor)
        caption = tables.baseline_caption(inf, m, floor)
        if logs:
            caption += (
                " · a staged sweep: Δ, interval and p over the seeds both arms ran; verdict: the "
                "staged study's (decisions.json), 'at n': the seeds per arm it was decided at"
            )
        sections.append(tables.baseline_section(shown_records, labels, inf, caption))
        summary = tables.summary_lines(shown_records, shown, inf)
    spread = "seeds" in labels  # the spread per source of randomness: table and figure
    if spread:
        sections.append(tables.spread_section(shown_records, labels, inf.metric))
    effects, design = None, None
    if factorial:
        effects, x, y, names = factorial
        sections.append(tables.effects_section(effects, inf, names, len(y)))
        design = (x, y, names)
    return Result(
        inf=inf,
        records=shown_records,
        groups=shown,
        runs=report.run_records(runs, groups),
        skipped=skipped,
        sections=sections,
        summary=summary,
        warnings=warnings,
        spread=spread,
        effects=effects,
        design=design,
    )


def with_baseline(
    records: list[dict[str, Any]],
    groups: list[Group],
    baseline: str,
    keys: list[str],
    inf: Inference,
    logs: list[Decisions],
) -> list[str]:
    """Add each group's comparison with its baseline to its record (a staged sweep's verdicts
    where its decisions answer this baseline); the warnings of those not paired by seed."""
    bases = baseline_of(groups, baseline, keys)
    compared = analysis.baseline_records(groups, bases, inf)
    for r, c in zip(records, compared, strict=True):
        r.update(c)
    for log in logs:
        analysis.staged_verdicts(records, groups, log, baseline)
    return unpaired_warnings(groups, bases, compared, inf.metric)


def ensemble_records(groups: list[Group], inf: Inference, err: Console) -> list[dict[str, Any]]:
    """The ensembles' records (groups in table order); say which runs they left out."""
    records, notes = analysis.ensemble_records(groups, inf)
    if not any(r["members"] for r in records):
        raise CompareError(
            "--ensemble: no finished run has readable test outputs (test_outputs.npz, written "
            "at the test by regbench since ensembles exist); train the runs again"
        )
    for note in notes:
        say(err, f"warning: {note}")
    return records


def print_result(result: Result, format: str, summary: bool, err: Console) -> None:
    sections, lines = result.sections, result.summary if summary else []
    for w in result.warnings:
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
            sys.stdout.write(report.render_csv(result.records))
        else:
            data = report.finite(as_json(result))
            sys.stdout.write(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")
        for line in lines:
            say(err, line)


def as_json(result: Result) -> dict[str, Any]:
    """--format json's document."""
    inf = result.inf
    return {
        "metric": inf.metric,
        "question": {"delta": inf.delta, "alpha": inf.alpha, "power": inf.power},
        "groups": result.records,
        "effects": result.effects,
        "ensembles": result.ensembles,
        "decisions": [d.to_json() | {"folder": d.folder} for d in result.decisions],
        "summary": result.summary,
        "runs": result.runs,
    }


def write_outputs(out: Path, result: Result, as_html: bool, columns: list[str]) -> Path:
    """groups.csv, runs.csv, effects.csv, the figures and report.md/html into out."""
    metric, groups = result.inf.metric, result.groups
    (out / "groups.csv").write_text(report.render_csv(result.records))
    (out / "runs.csv").write_text(report.render_csv(result.runs))
    pngs = figures.write_figures(out, groups, metric, columns)
    if result.spread:
        pngs.append(figures.spread_figure(out, groups, metric))
    if result.ensembles is not None:
        (out / "ensembles.csv").write_text(report.render_csv(result.ensembles))
        pngs.append(figures.ensemble_figure(out, result.ensembles, groups))
    if result.design is not None and result.effects is not None:
        (out / "effects.csv").write_text(report.render_csv(result.effects))
        pngs.append(figures.interaction_figure(out, *result.design, metric))
    pngs += [staged.figure(out, log) for log in result.decisions]
    return report.write_report(out, result.sections, pngs, as_html, result.summary, result.skipped)
