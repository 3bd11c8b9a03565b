"""Sections in, text out: the tables rendered for a terminal (rich), Markdown, HTML and CSV, the
run records, and the report folder. What the tables say is tables.py's."""

from __future__ import annotations

import csv
import html
import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regbench.compare.groups import Group
from regbench.compare.load import Run
from regbench.compare.result import Section
from regbench.record import FIELDS, RUN_FIELDS, Summary

LABEL_MIN = 16  # a narrow terminal folds labels, never below this or their longest word


def render_rich(s: Section, console: Console) -> Table:
    """The section as a rich table for this console. Too wide for it, intervals go on two lines
    (the estimate over "[low, high]"); still too wide, statuses wrap and labels fold, never
    narrower than their longest word (at most LABEL_MIN). Numbers never break, and a header wider
    than its numbers wraps at spaces instead of widening its column."""
    table = _rich_table(s, split=False)
    unbounded = console.options.update_width(10_000)  # a measure is clipped to the options' width
    if console.measure(table, options=unbounded).maximum > console.width:
        table = _rich_table(s, split=True)
    return table


def _rich_table(s: Section, split: bool) -> Table:
    table = Table(
        title=s.title,
        caption=s.caption,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    rows = [list(r) for r in s.rows]
    for i, h in enumerate(s.headers):
        cells = [row[i] for row in rows]
        if i < s.n_labels:
            words = [len(w) for c in [h, *cells] for w in c.split()]
            table.add_column(h, overflow="fold", min_width=min(max(words, default=1), LABEL_MIN))
            continue
        if h == "statuses":
            table.add_column(h)
            continue
        if split and any(" [" in c for c in cells):
            cells = [c.replace(" [", "\n[", 1) for c in cells]
            for row, c in zip(rows, cells, strict=True):
                row[i] = c
        width = max([*(len(line) for c in cells for line in c.split("\n")), *map(len, h.split())])
        table.add_column("\n".join(textwrap.wrap(h, width)), justify="right", no_wrap=True)
    for row in rows:  # Text, not markup: labels like hidden=[256, 128] must print as they are
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


# LaTeX's special characters, and the symbols the tables use, as pdflatex reads them without
# any package beyond booktabs (no inputenc/unicode-math needed)
LATEX = {
    **{c: "\\" + c for c in "&%$#_{}"},
    "\\": r"\textbackslash{}",
    "~": r"\textasciitilde{}",
    "|": r"$|$",  # text-mode | is an em dash in the default font
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "—": "---",
    "−": "$-$",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "δ": r"$\delta$",
    "α": r"$\alpha$",
    "ρ": r"$\rho$",
    "σ": r"$\sigma$",
    "χ": r"$\chi$",
    "Φ": r"$\Phi$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "≈": r"$\approx$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "→": r"$\to$",
    "√": r"$\surd$",
    "²": r"$^2$",
}


def latex_text(text: str) -> str:
    return "".join(LATEX.get(c, c) for c in text)


def render_latex(s: Section) -> str:
    """A booktabs table (\\usepackage{booktabs}): labels left, numbers right, the caption as a
    note under it."""
    spec = "l" * s.n_labels + "r" * (len(s.headers) - s.n_labels)
    line = " \\\\\n".join(" & ".join(latex_text(c) for c in row) for row in s.rows)
    return (
        f"\\begin{{table}}[ht]\n\\centering\n\\caption{{{latex_text(s.title)}}}\n"
        f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n"
        + " & ".join(latex_text(h) for h in s.headers)
        + " \\\\\n\\midrule\n"
        + (line + " \\\\\n" if s.rows else "")
        + f"\\bottomrule\n\\end{{tabular}}\n\n{{\\footnotesize {latex_text(s.caption)}\\par}}\n"
        + "\\end{table}\n"
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
        summary = r.summary or Summary()
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


def _field(run: Run, summary: Summary, key: str) -> Any:
    """A checked summary value (whole numbers as int), or the raw one for names and seeds."""
    if not FIELDS[key].checked:
        return finite(getattr(summary, key))
    v = run.values.get(key)
    return int(v) if v is not None and FIELDS[key].integer else v


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
