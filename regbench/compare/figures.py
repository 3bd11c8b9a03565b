"""The report's figures (PNG, matplotlib's Agg backend): learning curves of any metrics.csv
columns, the metric per group, gap vs accuracy, the spread per source of randomness and the
factorial interaction plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from regbench.compare.analysis import record_sizes
from regbench.compare.groups import Group
from regbench.compare.load import Run
from regbench.stats import inference as stats

MAX_PLOTTED_GROUPS = 12  # more lines than this make a figure unreadable


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# tab10's colours repeat after 10 groups (bn and dropout+bn+wd+aug were both blue): from the 11th
# group on, the same colours with another line style, hatch and marker
LINESTYLES = ("-", "--", "-.")  # ":" is the best-epoch marker of the learning curves
HATCHES = ("", "//", "..")
MARKERS = ("o", "s", "^")


def style(i: int) -> dict[str, Any]:
    """Group i's colour, line style, hatch and marker: no two of MAX_PLOTTED_GROUPS share all."""
    cycle = i // 10 % len(LINESTYLES)
    return {
        "color": _pyplot().get_cmap("tab10")(i % 10),
        "linestyle": LINESTYLES[cycle],
        "hatch": HATCHES[cycle],
        "marker": MARKERS[cycle],
    }


def _legend_inches(labels: Sequence[str]) -> float:
    """Width of a small-font legend of these labels, in inches (~0.07 in a character)."""
    return 0.8 + 0.07 * max(map(len, labels), default=0)


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _save(fig: Any, path: Path) -> None:
    # Margins: constrained layout where text sizes vary (tick labels, legends beside the axes);
    # it measures every text box, affordable with MAX_PLOTTED_GROUPS groups at most in a figure.
    fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 3})


def curves(runs: Sequence[Run], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs (e,), mean (e,) and sample std (e,) of a metrics column across seeds.

    Ragged lengths and NaN cells allowed; std is 0 where one seed is left.
    """
    series = [r.metrics[column] for r in runs if r.metrics.get(column)]
    length = max(len(s) for s in series)
    grid = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        grid[i, : len(s)] = s
    count = np.sum(~np.isnan(grid), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # an epoch with no value stays NaN
        mean = np.nansum(grid, axis=0) / count
    squares = np.nansum((grid - mean) ** 2, axis=0)
    return np.arange(1, length + 1), mean, np.sqrt(squares / np.maximum(count - 1, 1))


def _curve(ax: Any, x: np.ndarray, mean: np.ndarray, std: np.ndarray, st: dict, label: str) -> Any:
    """One group's mean curve with its ± std band; points without a neighbouring value (a
    1-epoch run, or epochs between missing ones) get a marker, else a line of one point is
    drawn as nothing."""
    alone = ~np.isnan(mean) & np.isnan(np.r_[np.nan, mean[:-1]]) & np.isnan(np.r_[mean[1:], np.nan])
    line = ax.plot(x, mean, color=st["color"], linestyle=st["linestyle"], label=label,
                   marker=st["marker"], markevery=list(np.flatnonzero(alone)))[0]  # fmt: skip
    ax.fill_between(x, mean - std, mean + std, color=st["color"], alpha=0.2, linewidth=0)
    if alone.any():  # a band of one point is also invisible: its std as an error bar
        ax.errorbar(x[alone], mean[alone], yerr=std[alone], color=st["color"], linestyle="none",
                    capsize=3)  # fmt: skip
    return line


def _curves_figure(out: Path, shown: Sequence[Group], columns: Sequence[str], note: str) -> str:
    plt = _pyplot()
    rows = (len(columns) + 1) // 2
    labels = [f"{_clip(g.name)} (n={sum(r.usable for r in g.runs)})" for g in shown]
    # the legend beside the panels, never over the curves: the figure is widened to hold it
    fig, axes = plt.subplots(rows, 2, figsize=(12 + _legend_inches(labels), 4 * rows),
                             squeeze=False, layout="constrained")  # fmt: skip
    handles: dict[str, Any] = {}
    for ax, column in zip(axes.flat, columns, strict=False):
        for i, g in enumerate(shown):
            used = [r for r in g.runs if r.usable and r.metrics.get(column)]
            if not used:
                continue
            st = style(i)
            label = f"{_clip(g.name)} (n={len(used)})"
            handles.setdefault(label, _curve(ax, *curves(used, column), st, label))
            if (best := g.values("best_epoch")).size:
                ax.axvline(best.mean(), color=st["color"], linestyle=":", linewidth=1)
        ax.set_title(column.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(column.replace("_", " "))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(columns) :]:
        ax.set_visible(False)
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small",
               title="mean ± std over seeds\ndotted: best epoch")  # fmt: skip
    fig.suptitle("Learning curves" + note)
    _save(fig, out / "learning_curves.png")
    plt.close(fig)
    return "learning_curves.png"


def _bars_figure(out: Path, shown: Sequence[Group], metric: str, note: str) -> str:
    plt = _pyplot()
    described = [stats.describe(g.values(metric)) for g in shown]
    ticks = [f"{_clip(g.name)} (n={n})" for g, (n, _, _) in zip(shown, described, strict=True)]
    # constrained layout makes room for the longest tick label: none is clipped at the left edge
    fig, ax = plt.subplots(figsize=(6 + 0.075 * max(map(len, ticks), default=0),
                                    1.5 + 0.45 * len(shown)), layout="constrained")  # fmt: skip
    bars = ax.barh(
        range(len(shown)),
        [m for _, m, _ in described],
        xerr=[s or 0.0 for _, _, s in described],
        capsize=4,
    )
    for i, bar in enumerate(bars):
        bar.set(facecolor=style(i)["color"], hatch=style(i)["hatch"], edgecolor="white")
    ax.set_yticks(range(len(shown)), ticks)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (mean ± sample std over seeds)")
    ax.set_title(f"{metric} by group" + note)
    _save(fig, out / f"{metric}_bars.png")
    plt.close(fig)
    return f"{metric}_bars.png"


def _gap_figure(out: Path, shown: Sequence[Group], note: str) -> str:
    plt = _pyplot()
    width = 7 + _legend_inches([_clip(g.name) for g in shown])
    fig, ax = plt.subplots(figsize=(width, 6), layout="constrained")
    for i, g in enumerate(shown):
        color, marker = style(i)["color"], style(i)["marker"]
        pts = [(r.value("test_acc"), r.value("gen_gap")) for r in g.runs if r.usable]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if pts:
            xs, ys = np.array(pts).T
            ax.scatter(xs, ys, color=color, alpha=0.5, s=20, marker=marker)
            ax.scatter(xs.mean(), ys.mean(), color=color, edgecolor="black", marker=marker, s=80,
                       label=_clip(g.name))  # fmt: skip
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("generalization gap (train − val acc at best epoch)")
    ax.set_title("Generalization gap vs test accuracy" + note)
    ax.grid(alpha=0.3)
    if shown:  # beside the axes: inside it would hide points
        fig.legend(loc="outside right upper", fontsize="small",
                   title="small: seeds\nlarge, outlined: group means")  # fmt: skip
    _save(fig, out / "gap_vs_test_acc.png")
    plt.close(fig)
    return "gap_vs_test_acc.png"


def spread_figure(out: Path, groups: Sequence[Group], metric: str) -> str:
    """Bouthillier et al. (2021), Fig. 1 style: the metric's distribution per source of variance."""
    plt = _pyplot()
    shown = [g for g in groups if g.values(metric).size][:MAX_PLOTTED_GROUPS]
    ticks = [f"{_clip(g.name)} (n={g.values(metric).size})" for g in shown]
    fig, ax = plt.subplots(figsize=(6 + 0.075 * max(map(len, ticks), default=0),
                                    1.5 + 0.55 * len(shown)), layout="constrained")  # fmt: skip
    rng = np.random.default_rng(0)  # jitter only: fixed so the figure is the same every time
    for i, g in enumerate(shown):
        v = g.values(metric)
        ax.boxplot(v, positions=[i], orientation="horizontal", widths=0.5, whis=(0, 100))
        ax.scatter(v, i + rng.uniform(-0.15, 0.15, len(v)), s=14, alpha=0.6, color="tab:blue")
    ax.set_yticks(range(len(shown)), ticks)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (dots: seeds; box: quartiles, whiskers: range)")
    ax.set_title(f"Spread of {metric} per source of randomness")
    ax.grid(alpha=0.3, axis="x")
    _save(fig, out / "spread_by_source.png")
    plt.close(fig)
    return "spread_by_source.png"


def interaction_figure(
    out: Path, x: np.ndarray, y: np.ndarray, names: Sequence[str], metric: str
) -> str:
    """One panel per pair of factors: cell means (± SE over runs) of A off/on, a line per B level.

    x: (n_runs, k) coded -1/+1, y: (n_runs,). Parallel lines: no interaction.
    """
    plt = _pyplot()
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False, sharey=True
    )
    for ax, (i, j) in zip(axes.flat, pairs, strict=False):
        means = stats.cell_means(x, y, i, j)
        for b, style in ((0, "--"), (1, "-")):
            se = [_se(y[(x[:, i] == 2 * a - 1) & (x[:, j] == 2 * b - 1)]) for a in (0, 1)]
            ax.errorbar([0, 1], means[:, b], yerr=se, linestyle=style, marker="o", capsize=4,
                        label=f"{names[j]} {'on' if b else 'off'}")  # fmt: skip
        ax.set_xticks([0, 1], [f"{names[i]} off", f"{names[i]} on"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(f"{names[i]} × {names[j]}")
        ax.set_xlabel(names[i])
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{metric} (cell mean ± SE)")
    for ax in axes.flat[len(pairs) :]:
        ax.set_visible(False)
    fig.suptitle(f"Two-way interactions on {metric}: parallel lines mean no interaction")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12 / rows + 0.02, top=1 - 0.3 / rows,
                        hspace=0.45, wspace=0.25)  # fmt: skip
    _save(fig, out / "interactions.png")
    plt.close(fig)
    return "interactions.png"


def ensemble_figure(out: Path, records: Sequence[dict[str, Any]], groups: Sequence[Group]) -> str:
    """Test accuracy against ensemble size (1, 2, 4, ..., all), a line per group with outputs;
    MC dropout's mean as a hollow marker at size 1."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ticks: set[int] = set()
    shown = [(r, g) for r, g in zip(records, groups, strict=True) if r["members"]]
    for i, (r, g) in enumerate(shown[:MAX_PLOTTED_GROUPS]):
        sizes = [m for m in record_sizes(r) if r[f"ens{m}_acc"] is not None]
        xs, ys = [*sizes, r["members"]], [*(r[f"ens{m}_acc"] for m in sizes), r["all_acc"]]
        ticks |= set(xs)
        st = style(i)
        line = ax.plot(xs, ys, color=st["color"], linestyle=st["linestyle"], marker=st["marker"],
                       label=f"{_clip(g.name)} ({r['members']} seeds)")[0]  # fmt: skip
        if r.get("mc_acc") is not None:
            ax.plot([1], [r["mc_acc"]], marker="D", fillstyle="none", color=line.get_color(),
                    linestyle="none", label=f"{_clip(g.name)}: MC dropout, single run")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel("ensemble size (runs whose softmax outputs are averaged)")
    ax.set_ylabel("test accuracy (mean over disjoint ensembles)")
    ax.set_title("Ensembles of seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, out / "ensembles.png")
    plt.close(fig)
    return "ensembles.png"


def _se(v: np.ndarray) -> float:
    return float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) >= 2 else 0.0


def write_figures(
    out: Path, groups: Sequence[Group], metric: str, columns: Sequence[str]
) -> list[str]:
    """Learning curves, metric bars and gap-vs-accuracy scatter as PNGs; returns file names.

    groups are in table order; the first MAX_PLOTTED_GROUPS with the metric are drawn.
    """
    with_data = [g for g in groups if g.values(metric).size]
    shown = with_data[:MAX_PLOTTED_GROUPS]
    clipped = len(with_data) > len(shown)
    note = f" (first {len(shown)} of {len(with_data)} groups)" if clipped else ""
    return [
        _curves_figure(out, shown, columns, note),
        _bars_figure(out, shown, metric, note),
        _gap_figure(out, shown, note),
    ]
