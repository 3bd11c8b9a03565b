"""Records in, tables out: what each table of `regbench compare` says (headers, text cells,
caption) and the plain-words summary, as Sections that report.py renders. Nothing here computes
a statistic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from regbench.compare.analysis import record_sizes
from regbench.compare.groups import Group
from regbench.compare.result import Inference, Section

CORRECTION_NAMES = {"holm": "Holm", "bh": "BH", "none": "unadjusted"}
TEST_WORDS = {
    "paired t": "paired t",
    "wilcoxon": "Wilcoxon signed-rank",
    "bootstrap": "paired bootstrap",
    "welch": "Welch's t",
}


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


def _plan(r: dict[str, Any]) -> str:
    if r["seeds_detect"] is None:
        return "—"
    return f"{_seeds(r['seeds_detect'])}/{_seeds(r['seeds_equivalence'])}"


def _delta_text(inf: Inference) -> str:
    """δ as the summary reads it: in points for accuracies and the gap."""
    points = inf.metric.endswith("_acc") or inf.metric == "gen_gap"
    return f"{inf.delta * 100:g} points" if points else f"{inf.delta:g}"  # type: ignore[operator]


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
    headers += ["verdict", "seeds δ/±δ"]
    rows = []
    for r in records:
        if r["delta"] is None:
            rows.append([*(r[c] for c in labels), str(r["n"]), r["delta_note"], *["—"] * 6])
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
                r["verdict"] + (f" at {r['staged_at']}" if r.get("staged_at") else ""),
                _plan(r),
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
    ]
    half = inf.alpha / 2
    if inf.delta is None:
        parts.append(
            f"verdict: better/worse where Holm over the {m} difference p-values at α/2 = {half:g} "
            "rejects Δ = 0, else undecided (give --delta for equivalence and plans)"
        )
    else:
        level = inf.alpha / (2 * max(m, 1))
        parts += [
            f"verdict: better/worse where Holm over the {m} difference p-values at α/2 = {half:g} "
            f"rejects Δ = 0; equivalent where Holm over the {m} TOST p-values at α/2 shows "
            f"|Δ| < δ = {inf.delta:g}; else undecided; any false claim of either kind: ≤ α",
            f"seeds δ/±δ: seeds per arm to detect δ / to show equivalence within ±δ with "
            f"{inf.power:.0%} power at α/(2m) = {level:.4g}, from the SD's 80% upper confidence bound",
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
    """Plain words per compared group, its verdict first: better/worse, then equivalent, then
    undecided ones with the seeds that would decide them. Accuracies and the gap read in points."""
    points = inf.metric.endswith("_acc") or inf.metric == "gen_gap"
    scale, unit, spec = (100, " points", "+.2f") if points else (1, "", "+.4f")
    name = CORRECTION_NAMES[inf.correction]
    lines: dict[str, list[str]] = {"better": [], "equivalent": [], "undecided": []}
    for r, g in zip(records, groups, strict=True):
        if r["delta"] is None or r["delta_low"] is None:
            continue
        d, lo, hi = (format(r[k] * scale, spec) for k in ("delta", "delta_low", "delta_high"))
        if r["test"] == "welch":
            over = f"Welch's t, unpaired over {r['n']} and {r['n_baseline']} runs"
        else:
            over = f"{TEST_WORDS[r['test']]} over {r['pairs_or_runs']} seeds"
        p = _p(r["p_adj"])
        numbers = (
            f"{d}{unit} [{lo}, {hi}], {over}, {name} p {'< 0.001' if p[0] == '<' else '= ' + p}"
        )
        verdict, base = r["verdict"], r["baseline"]
        if verdict in ("better", "worse"):
            text = f"{verdict} than {base}: {numbers} (beats its baseline run in {r['p_better']:.0%} of cases)."
        elif verdict == "equivalent":
            text = f"equivalent to {base} within ±{_delta_text(inf)}: {numbers}, TOST Holm p {_p_words(r['p_tost_adj'])}."
        else:
            text = f"{verdict} against {base}: {numbers}" + _undecided_tail(r, inf)
        if r.get("staged_at"):
            text += f" (the staged study's verdict, decided at {r['staged_at']} seeds per arm)"
        # a staged sweep's diverged or still open comparison reads with the undecided ones
        kind = "better" if verdict == "worse" else verdict
        lines.get(kind, lines["undecided"]).append(f"{g.name}: {text}")
    return [line for kind in lines.values() for line in kind]


def _p_words(v: float | None) -> str:
    p = _p(v)
    return "< 0.001" if p[0] == "<" else f"= {p}"


def _undecided_tail(r: dict[str, Any], inf: Inference) -> str:
    if r["seeds_detect"] is None:
        return "; neither a difference nor (without --delta) an equivalence is claimed."
    return (
        f"; about {_seeds(r['seeds_detect'])} seeds per arm would detect a difference of {_delta_text(inf)}, "
        f"{_seeds(r['seeds_equivalence'])} would show equivalence within it."
    )


def _interval(d: float | None, lo: float | None, hi: float | None) -> str:
    if d is None:
        return "—"
    return _signed(d) + (f" [{_signed(lo)}, {_signed(hi)}]" if lo is not None else " (no spread)")


def ensemble_section(records: Sequence[dict[str, Any]], labels: Sequence[str]) -> Section:
    sizes = record_sizes(records[0])
    headers = [*labels, "runs", "single", *(f"ens of {m}" for m in sizes[1:]), "ens of all"]
    headers += ["Δ all − single [95% CI]", "NLL single → all"]
    rows = []
    for r in records:
        nll = f"{_num(r.get('single_nll'))} → {_num(r.get('all_nll'))}" if r["members"] else "—"
        rows.append(
            [
                *(r[c] for c in labels),
                str(r["members"]),
                *(_num(r[f"ens{m}_acc"]) for m in sizes),
                _num(r["all_acc"]),
                _interval(r["gain"], r.get("gain_low"), r.get("gain_high")),
                nll,
            ]
        )
    caption = (
        "test accuracy; single: mean over the runs (seeds); ens of m: the class with the highest "
        "mean softmax over m runs, averaged over the disjoint ensembles of m consecutive seeds; "
        "Δ all − single: 95% t interval over test examples (this test set's noise for these "
        "seeds, not the seeds' spread); NLL: mean negative log-likelihood of the test labels"
    )
    return Section("test accuracy of ensembles of seeds", headers, rows, caption, len(labels))


def mc_section(records: Sequence[dict[str, Any]], labels: Sequence[str]) -> Section:
    headers = [*labels, "runs", "weight scaling", "MC dropout", "Δ MC − usual [95% CI]"]
    rows = [
        [
            *(r[c] for c in labels),
            str(r["mc_runs"]),
            _num(r["mc_usual_acc"]),
            _num(r["mc_acc"]),
            _interval(r["mc_delta"], r["mc_low"], r["mc_high"]),
        ]
        for r in records
        if r.get("mc_acc") is not None
    ]
    caption = (
        "test accuracy, mean over runs; weight scaling: the usual evaluation (dropout off, "
        "activations scaled); MC dropout: the mean softmax of T passes with dropout on "
        "(trainer.mc_dropout=T); Δ: paired t over the runs (each run evaluated both ways)"
    )
    return Section(
        "dropout at test time: weight scaling vs Monte-Carlo", headers, rows, caption, len(labels)
    )
