"""The ledger: one row per claim (the deck's sentence, the setup, the verdict, the effect with its
interval, the seeds and runs spent, the wall time, learning curves for speed claims), as markdown,
JSON and a standalone HTML page."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict
from pathlib import Path

from regbench import folder
from regbench.claims.catalogue import DECKS, Claim
from regbench.claims.runner import VERDICTS, Result
from regbench.compare.staged import format_interval
from regbench.stats.defaults import ALPHA

ERROR_CONTROL = (
    "Error control is per claim: each claim's staged design holds the chance of any false "
    "better, worse or equivalent verdict among its own comparisons, over all its stages, at its α "
    "(group-sequential boundaries, stats.sequential). The claims are separate questions, read one "
    "row at a time, so no correction is made across the ledger: over {n} claims at α = {alpha:g}, "
    "about {expected:.1f} verdicts could be wrong by chance if no claim's effect were real (a "
    "ledger-wide family-wise α would cost each claim α/{n} and several times the seeds)."
)
HOW = (
    "Each claim (conf/claims/NAME.yaml: the deck's sentence, the setup fixed from the deck and the "
    "literature before any run, the arms, the metric, the predicted direction, δ) runs as a staged "
    "sweep: seeds in stages, fused, until every comparison is better, worse, equivalent within "
    "±δ, or out of reach of the budget. `regbench claims` lists the claims; `regbench claims run "
    "[NAME...]` runs them (a rerun redoes no finished run); `--scale full` runs their GPU-sized "
    "versions. Δ [interval]: arm − baseline at the comparison's last look, with the interval its "
    "stage's boundary gives (the one `regbench compare <the claim's sweep folder>` prints); for "
    "epochs_to_target it is the mean paired sign (−1: the arm reached the target first; a run "
    "that never did is tied at the worst rank), for diverged the share of runs. A claim of two "
    "measurements of the same runs (versus: test_acc_best vs test_acc_last) pairs them by run; an "
    "interaction (across) is the arm's gain at one setting minus its gain at another, paired by "
    "seed; a claim on groups of seeds (group) pairs each group's ensemble (ensemble_test_acc: the "
    "accuracy of its runs' mean softmax) with its members' mean, as `regbench compare --ensemble` "
    "shows them."
)
VERDICT_NOTE = (
    "holds: every comparison went the way the deck says (or was equivalent within ±δ, for an "
    "equivalence claim); contradicted: one went the other way; no effect within ±δ: one was shown "
    "equivalent to its baseline; undecided within budget: the seeds left could not decide it."
)


def _setup(claim: Claim) -> str:
    arms = " vs ".join(" ".join(c) for c in claim.arm_cells)
    unit = f"; groups of {claim.group} seeds" if claim.group > 1 else ""
    if claim.versus is not None:
        return f"{' '.join(claim.setup)}; arm {arms}; {claim.metric} vs {claim.versus} of the same runs{unit}"
    at = (
        f", at {' and '.join(claim.across_values)} (the difference of the differences)"
        if claim.across
        else ""
    )
    return f"{' '.join(claim.setup)}; arms {arms} (baseline {claim.baseline}){at}; {claim.metric}{unit}"


def _effect(res: Result) -> str:
    if res.error:
        return res.error
    return "; ".join(
        f"{c.arm}: {format_interval(c.estimate)} ({c.verdict})" for c in res.comparisons
    )


def _figure(path: Path, name: str, res: Result, claim: Claim) -> Path | None:
    if not res.curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    for arm, ys in res.curves.items():
        ax.plot(range(1, len(ys) + 1), ys, label=arm)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val_acc (mean over seeds)")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = path.with_name(f"{path.stem}_{name}.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _totals(results: dict[str, Result]) -> str:
    runs = sum(r.runs for r in results.values())
    fixed = sum(r.fixed_runs for r in results.values())
    wall = sum(r.wall_seconds for r in results.values())
    counts = ", ".join(f"{sum(r.verdict == v for r in results.values())} {v}" for v in VERDICTS)
    saved = f" ({1 - runs / fixed:.0%} fewer)" if fixed else ""
    return (
        f"{len(results)} claims: {counts}. Runs spent: {runs} of a fixed design's "
        f"{fixed} (every arm at its budget){saved}; command time {wall / 60:.1f} min (the claims' wall times summed: with --jobs 2 they overlap)."
    )


def rows(claims: dict[str, Claim], results: dict[str, Result], notes: dict[str, str]) -> list[dict]:
    out = []
    for name, res in results.items():
        c = claims[name]
        out.append(
            {
                "claim": name,
                "deck": c.deck,
                "slide": c.slide,
                "sentence": c.sentence,
                "english": c.claim,
                "setup": _setup(c),
                "why": c.why,
                "direction": c.direction,
                "delta": c.question.delta,
                "verdict": res.verdict,
                "effect": _effect(res),
                "seeds": res.seeds,
                "runs": res.runs,
                "fixed_runs": res.fixed_runs,
                "wall_seconds": res.wall_seconds,
                "note": notes.get(name, ""),
            }
        )
    return out


def write(
    path: Path,
    claims: dict[str, Claim],
    results: dict[str, Result],
    notes: dict[str, str],
    command: str,
) -> list[Path]:
    """ledger.md, .json and .html (path's stem) and the figures beside them; the paths written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    alpha = max((claims[n].question.alpha for n in results), default=ALPHA)
    control = ERROR_CONTROL.format(n=len(results), alpha=alpha, expected=alpha * len(results))
    table = rows(claims, results, notes)
    figures = {n: _figure(path, n, r, claims[n]) for n, r in results.items()}
    md = [
        "# What the decks claim: the ledger",
        "",
        f"Generated by `{command}`; do not edit by hand. {_totals(results)}",
        "",
        HOW,
        "",
        control,
        "",
        VERDICT_NOTE,
        "",
        "| claim | deck's sentence | setup | verdict | Δ [interval] (stats' verdict) | seeds/arm | runs (fixed) | wall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in table:
        md.append(
            f"| **{row['claim']}**: {row['english']} | «{row['sentence']}» ({DECKS[row['deck']].split(',')[0]}, "
            f"*{row['slide']}*) | {row['setup']} | **{row['verdict']}** | {row['effect']} | "
            f"{row['seeds']} | {row['runs']} ({row['fixed_runs']}) | {row['wall_seconds']:.0f} s |"
        )
    md += ["", "## Notes", ""]
    for row in table:
        fig = figures[row["claim"]]
        md.append(
            f"- **{row['claim']}** ({row['verdict']}): {row['why']}"
            + (f" *At this scale:* {row['note']}" if row["note"] else "")
        )
        if fig:
            md.append(f"\n  ![{row['claim']}]({fig.name})\n")
    written = [path.with_suffix(".md"), path.with_suffix(".json"), path.with_suffix(".html")]
    folder.write_atomic(written[0], "\n".join(md).rstrip() + "\n")
    doc = {
        "command": command,
        "error_control": control,
        "totals": _totals(results),
        "claims": table,
        "results": {n: asdict(r) for n, r in results.items()},
    }
    folder.write_atomic(written[1], json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    folder.write_atomic(written[2], _html(table, figures, control, _totals(results), command))
    return written + [f for f in figures.values() if f]


def _html(
    table: list[dict], figures: dict[str, Path | None], control: str, totals: str, command: str
) -> str:
    e = html.escape
    cols = ["claim", "sentence", "setup", "verdict", "effect", "seeds", "runs", "wall_seconds"]
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    body = []
    for row in table:
        cells = [
            f"<b>{e(row['claim'])}</b><br>{e(row['english'])}",
            f"«{e(row['sentence'])}»<br><i>{e(row['deck'])}: {e(row['slide'])}</i>",
            e(row["setup"]),
            f'<b class="verdict">{e(row["verdict"])}</b>'
            + (f"<br>{e(row['note'])}" if row["note"] else ""),
            e(row["effect"]),
            str(row["seeds"]),
            f"{row['runs']} ({row['fixed_runs']})",
            f"{row['wall_seconds']:.0f} s",
        ]
        if (fig := figures[row["claim"]]) is not None:
            data = base64.b64encode(fig.read_bytes()).decode()
            cells[4] += f'<br><img alt="{e(row["claim"])}" src="data:image/png;base64,{data}">'
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>regbench claims: the ledger'
        "</title><style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;font-size:13px}"
        "img{max-width:380px}</style></head><body><h1>What the decks claim: the ledger</h1>"
        f"<p>Generated by <code>{e(command)}</code>. {e(totals)}</p><p>{e(HOW)}</p><p>{e(control)}</p>"
        f'<p>{e(VERDICT_NOTE)}</p><table id="ledger"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table></body></html>\n"
    )
