"""Records in, text out: the tables (rich, Markdown, HTML, CSV), their captions, the plain-words
summary and the report folder. Nothing here computes a statistic."""

from __future__ import annotations

import csv
import html
import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from regbench.compare.analysis import LOWER_IS_BETTER, Inference
from regbench.compare.groups import Group
from regbench.compare.load import SUMMARY_VALUES, Run

CORRECTION_NAMES = {"holm": "Holm", "bh": "BH", "none": "unadjusted"}
TEST_WORDS = {
    "paired t": "paired t",
    "wilcoxon": "Wilcoxon signed-rank",
    "bootstrap": "paired bootstrap",
    "welch": "Welch's t",
}
RUN_FIELDS = (
    "run_name",
    "seed",
    "best_epoch",
    "epochs_run",
    "best_val_acc",
    "best_val_loss",
    "final_val_acc",
    "test_acc",
    "test_loss",
    "test_ece",
    "weight_norm",
    "overfit_epoch",
    "final_train_acc",
    "gen_gap",
    "wall_seconds",
    "params",
)


@dataclass
class Section:
    """One table of the report: a title, headers, text rows and the caption under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    caption: str
    n_labels: int  # leading label columns (left-aligned, may wrap)


def _num(v: float | None, spec: str = ".4f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _signed(v: float | None) -> str:
    return _num(v, "+.4f")


def _p(v: float | None) -> str:
    return "—" if v is None else "<0.001" if v < 0.001 else f"{v:.3f}"


def _duration(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


def _count(v: int | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else str(v)


def _seeds(v: float | None) -> str:
    return "—" if v is None else f">{10_000:,}" if math.isinf(v) else str(int(v))


def group_section(
    records: Sequence[dict[str, Any]], labels: Sequence[str], metric: str, caption: str
) -> Section:
    headers = [*labels, "n", f"{metric} mean ± std", "best val acc", "gen gap", "best ep/run"]
    headers += ["wall", "params", "statuses"]
    rows = []
    for r in records:
        std = f" ± {_num(r[f'{metric}_std'])}" if r[f"{metric}_std"] is not None else ""
        rows.append(
            [
                *(r[c] for c in labels),
                str(r["n"]),
                _num(r[f"{metric}_mean"]) + std,
                _num(r["best_val_acc"]),
                _num(r["gen_gap"]),
                f"{_num(r['best_epoch'], '.1f')}/{_num(r['epochs_run'], '.1f')}",
                _duration(r["wall_seconds"]),
                _count(r["params"]),
                r["statuses"],
            ]
        )
    return Section("regbench compare", headers, rows, caption, len(labels))


def baseline_section(
    records: Sequence[dict[str, Any]], labels: Sequence[str], inf: Inference, caption: str
) -> Section:
    name = CORRECTION_NAMES[inf.correction]
    headers = [*labels, "n", "Δ vs baseline [95% CI]", "test", "ρ", f"p ({name})", "P(better)"]
    headers.append("seeds @80%")
    rows = []
    for r in records:
        if r["delta"] is None:
            rows.append([*(r[c] for c in labels), str(r["n"]), r["delta_note"], *["—"] * 5])
            continue
        ci = (
            f" [{_signed(r['delta_low'])}, {_signed(r['delta_high'])}]"
            if r["delta_low"] is not None
            else f" ({r['delta_note']})"
        )
        pab = _num(r["p_better"], ".2f")
        if r["p_better_low"] is not None:
            pab += f" [{r['p_better_low']:.2f}, {r['p_better_high']:.2f}]"
        rows.append(
            [
                *(r[c] for c in labels),
                str(r["n"]),
                _signed(r["delta"]) + ci + (" *" if r["significant"] else ""),
                r["test"],
                _num(r["rho"], ".2f"),
                _p(r["p_adj"]),
                pab,
                _seeds(r["seeds_needed"]),
            ]
        )
    return Section(f"{inf.metric} vs baseline", headers, rows, caption, len(labels))


def baseline_caption(inf: Inference, m: int, floor: tuple[float, int, float] | None) -> str:
    # Not starting with "*": in report.md that would become a bullet.
    name = CORRECTION_NAMES[inf.correction]
    parts = [
        "Δ = group − baseline; paired by seed where the seeds match, else Welch (95% CI, per "
        f"comparison); marked *: {name}-adjusted p < {inf.alpha} over {m} comparisons",
        f"P(better): share of runs that beat their baseline run, 95% bootstrap CI ({inf.reps} resamples)",
        f"seeds @80%: seeds per arm that detect this Δ with 80% power at α = {inf.alpha}",
    ]
    if floor:
        se, n, p = floor
        parts.append(
            f"test-set noise floor: SE = √(p(1−p)/n) = {se:.4f} at p = {p:.3f}, n = {n}; "
            f"differences below ≈2 SE ({2 * se:.4f}) cannot be resolved by this test set"
        )
    return " · ".join(parts)


def group_caption(skipped: int) -> str:
    parts = [f"{skipped} run folder(s) skipped (see warnings)"] if skipped else []
    return " · ".join([*parts, "diverged/failed runs: counted, not averaged"])


def spread_section(
    records: Sequence[dict[str, Any]], labels: Sequence[str], metric: str
) -> Section:
    headers = [*labels, "n", "mean", "std", "min", "max", "range"]
    rows = []
    for r in records:
        lo, hi = r[f"{metric}_min"], r[f"{metric}_max"]
        rows.append(
            [
                *(r[c] for c in labels),
                str(r["n"]),
                _num(r[f"{metric}_mean"]),
                _num(r[f"{metric}_std"]),
                _num(lo),
                _num(hi),
                _num(hi - lo if lo is not None else None),
            ]
        )
    caption = (
        f"the spread of {metric} when only that source of randomness follows `seed` "
        "(std: sample standard deviation over seeds; range: max − min)"
    )
    return Section(f"{metric} by source of randomness", headers, rows, caption, len(labels))


def effects_section(
    effects: Sequence[dict[str, Any]], inf: Inference, names: Sequence[str], n_runs: int
) -> Section:
    name = CORRECTION_NAMES[inf.correction]
    headers = ["term", "effect [95% CI]", "p", f"p ({name})"]
    rows = [
        [
            e["term"],
            f"{_signed(e['effect'])} [{_signed(e['low'])}, {_signed(e['high'])}]"
            + (" *" if e["significant"] else ""),
            _p(e["p"]),
            _p(e["p_adj"]),
        ]
        for e in effects
    ]
    caption = (
        f"2^{len(names)} factorial over {', '.join(names)}, {n_runs} runs; linear model with ±1 "
        f"coding, seeds as replicates; effect: mean change of {inf.metric} from off to on "
        "(interaction A × B: half the change of A's effect when B is switched on); "
        f"marked *: {name}-adjusted p < {inf.alpha}"
    )
    return Section(f"factorial effects on {inf.metric}", headers, rows, caption, 1)


def summary_lines(
    records: Sequence[dict[str, Any]], groups: Sequence[Group], inf: Inference
) -> list[str]:
    """Plain words per compared group: significant ones first, then those with no clear effect.

    Accuracies and the gap read in percentage points.
    """
    points = inf.metric.endswith("_acc") or inf.metric == "gen_gap"
    scale, unit, spec = (100, " points", "+.2f") if points else (1, "", "+.4f")
    name = CORRECTION_NAMES[inf.correction]
    found, unclear = [], []
    for r, g in zip(records, groups, strict=True):
        if r["delta"] is None or r["delta_low"] is None:
            continue
        d, lo, hi = (format(r[k] * scale, spec) for k in ("delta", "delta_low", "delta_high"))
        if r["test"] == "welch":
            over = f"Welch's t, unpaired over {r['n']} and {r['n_baseline']} runs"
        else:
            over = f"{TEST_WORDS[r['test']]} over {r['pairs_or_runs']} seeds"
        p = _p(r["p_adj"])
        text = f"{g.name}: {d}{unit} [{lo}, {hi}], {over}, {name} p {'< 0.001' if p[0] == '<' else '= ' + p}"
        if r["significant"]:
            better = (r["delta"] > 0) != (inf.metric in LOWER_IS_BETTER)
            found.append(
                f"{text}: {'better' if better else 'worse'} than the baseline "
                f"(beats its baseline run in {r['p_better']:.0%} of cases)."
            )
        else:
            unclear.append(
                f"{text}: not distinguishable from the baseline; about "
                f"{_seeds(r['seeds_needed'])} seeds per arm would detect a difference this size."
            )
    return found + unclear


def render_rich(s: Section) -> Table:
    """Labels and statuses wrap (labels fold) when the terminal is narrow; numbers never break,
    and a header wider than its numbers wraps at spaces instead of widening its column."""
    table = Table(
        title=s.title,
        caption=s.caption,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for i, h in enumerate(s.headers):
        if i < s.n_labels:
            table.add_column(h, overflow="fold")
        elif h == "statuses":
            table.add_column(h)
        else:
            width = max([*(len(row[i]) for row in s.rows), *map(len, h.split())])
            table.add_column("\n".join(textwrap.wrap(h, width)), justify="right", no_wrap=True)
    for row in s.rows:  # Text, not markup: labels like hidden=[256, 128] must print as they are
        table.add_row(*(Text(c, style="bold" if c.endswith(" *") else "") for c in row))
    return table


def render_markdown(s: Section) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rows = [line(s.headers), line("---" for _ in s.headers), *map(line, s.rows)]
    return "\n".join(rows) + f"\n\n{s.caption}\n"


def markdown(sections: Sequence[Section]) -> str:
    """Every table in Markdown; the first (the groups) untitled, the others under `## title`."""
    return "\n".join(
        (f"## {s.title}\n\n" if i else "") + render_markdown(s) for i, s in enumerate(sections)
    )


def render_html(s: Section) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in s.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in s.rows
    )
    return (
        f"<table>\n<caption>{html.escape(s.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{body}</tbody>\n</table>\n<p>{html.escape(s.caption)}</p>\n"
    )


def render_csv(records: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in records for k in r))
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def finite(v: Any) -> Any:
    """NaN/inf -> None, so strict JSON stays valid (recursively through lists and dicts)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def run_records(runs: Sequence[Run], groups: Sequence[Group]) -> list[dict[str, Any]]:
    """One record per run folder, skipped ones included with the reason."""
    group_of = {id(r): g for g in groups for r in g.runs}
    records = []
    for r in runs:
        g = group_of.get(id(r))
        summary = r.summary or {}
        records.append(
            {
                "path": shown(r.path),
                "group": g.name if g else "",
                "status": r.status,
                "skipped": r.problem or "",
                "warnings": "; ".join(r.warnings),
                **{f: _field(r, summary, f) for f in RUN_FIELDS},
            }
        )
    return records


def _field(run: Run, summary: dict[str, Any], key: str) -> Any:
    """A checked summary value (whole numbers as int), or the raw one for names and seeds."""
    if key not in SUMMARY_VALUES:
        return finite(summary.get(key))
    v = run.values.get(key)
    return int(v) if v is not None and SUMMARY_VALUES[key][2] else v


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_report(
    out: Path,
    sections: Sequence[Section],
    figures: Sequence[str],
    as_html: bool,
    summary: Sequence[str],
    skipped: Sequence[Run],
) -> Path:
    """report.md (or report.html) with every table, the plain-words lines, the skipped runs
    and the figures."""
    if as_html:
        items = "".join(
            f"<li>{html.escape(shown(r.path))}: {html.escape(r.problem or '')}</li>"
            for r in skipped
        )
        imgs = "".join(f'<p><img src="{f}" alt="{f}"></p>\n' for f in figures)
        text = (
            "<!doctype html>\n<html><head><meta charset='utf-8'><title>regbench compare</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
            "</style></head><body>\n<h1>regbench compare</h1>\n"
            + "".join(render_html(s) for s in sections)
            + "".join(f"<p>{html.escape(line)}</p>\n" for line in summary)
            + (f"<h2>Skipped runs</h2><ul>{items}</ul>\n" if skipped else "")
            + f"<h2>Figures</h2>\n{imgs}</body></html>\n"
        )
        path = out / "report.html"
    else:
        text = "# regbench compare\n\n" + markdown(sections)
        text += "".join(f"\n- {line}" for line in summary) + ("\n" if summary else "")
        if skipped:
            text += "\n## Skipped runs\n\n" + "".join(
                f"- `{shown(r.path)}`: {r.problem}\n" for r in skipped
            )
        text += "\n## Figures\n\n" + "".join(f"![{f}]({f})\n\n" for f in figures)
        path = out / "report.md"
    path.write_text(text)
    return path
