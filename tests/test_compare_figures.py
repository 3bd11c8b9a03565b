"""The report's figures, checked through matplotlib's own objects as `regbench compare --out`
draws them: what a reader can see (markers, colours, legends, labels), not pixels."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from regbench.compare import figures
from tests.runfolders import compare, make_run

REGS = ("dropout", "bn", "wd", "aug", "label_smoothing", "mixup", "maxnorm", "spectral_norm")


def _sweep(root: Path, groups: int, epochs: int) -> Path:
    """`groups` groups of 2 seeds, each a combination of regularizers (long names first)."""
    combos = [c for n in (5, 4, 3, 2, 1) for c in itertools.combinations(REGS, n)][:groups]
    for g, combo in enumerate(combos):
        for seed in range(2):
            make_run(root, f"s/g{g}-s{seed}", seed=seed, reg={r: {} for r in combo}, epochs=epochs,
                     best_epoch=1, test_acc=0.8 + 0.01 * g + 0.001 * seed)  # fmt: skip
    return root / "s"


def _drawn(monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> dict[str, Any]:
    """Run compare in this process; keep each figure as it was saved (file name -> Figure)."""
    kept: dict[str, Any] = {}
    save = figures._save

    def keep(fig: Any, path: Path) -> None:
        save(fig, path)  # the layout is final once drawn
        kept[path.name] = fig

    monkeypatch.setattr(figures, "_save", keep)
    monkeypatch.setattr(figures._pyplot(), "close", lambda fig: None)  # measured after compare
    res = compare(*args)
    assert res.exit_code == 0, res.output
    return kept


def _lines(ax: Any) -> list[Line2D]:
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def _extent(artist: Any) -> Bbox:
    return artist.get_window_extent(artist.figure.canvas.get_renderer())


def test_one_epoch_curves_show_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A curve of one point is drawn as a marker; a line through it alone would draw nothing."""
    sweep = _sweep(tmp_path, groups=3, epochs=1)
    fig = _drawn(monkeypatch, sweep, "--out", tmp_path / "r")["learning_curves.png"]
    panels = [ax for ax in fig.axes if ax.get_visible() and _lines(ax)]
    assert len(panels) == 4  # train/val loss/acc
    for ax in panels:
        for line in _lines(ax):
            assert len(line.get_xdata()) == 1
            assert line.get_marker() not in ("None", "", None) and line.get_markevery() == [0]
    with_more = _sweep(tmp_path / "long", groups=1, epochs=3)  # several epochs: a plain line
    fig = _drawn(monkeypatch, with_more, "--out", tmp_path / "r2")["learning_curves.png"]
    (line,) = _lines(fig.axes[0])
    assert len(line.get_xdata()) == 3 and line.get_markevery() == []


def test_twelve_groups_are_told_apart_and_nothing_is_covered_or_clipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = _sweep(tmp_path, groups=13, epochs=3)
    drawn = _drawn(monkeypatch, sweep, "--out", tmp_path / "r")
    curves, bars = drawn["learning_curves.png"], drawn["test_acc_bars.png"]
    panels = [ax for ax in curves.axes if ax.get_visible()]
    for ax in panels:  # 12 drawn (MAX_PLOTTED_GROUPS), each its own colour and line style
        styles = [(ln.get_color(), ln.get_linestyle()) for ln in _lines(ax)]
        assert len(styles) == figures.MAX_PLOTTED_GROUPS == len(set(styles))
    (legend,) = curves.legends
    assert len(legend.get_texts()) == figures.MAX_PLOTTED_GROUPS
    box = _extent(legend)
    assert all(not box.overlaps(_extent(ax)) for ax in panels)  # beside the curves
    assert curves.bbox.contains(box.x0, box.y0) and curves.bbox.contains(box.x1, box.y1)
    assert all(not ax.get_legend() for ax in panels)

    (ax,) = bars.axes
    looks = [(tuple(p.get_facecolor()), p.get_hatch()) for p in ax.patches]
    assert len(looks) == figures.MAX_PLOTTED_GROUPS == len(set(looks))
    labels = ax.get_yticklabels()
    assert len(labels) == figures.MAX_PLOTTED_GROUPS
    assert max(len(t.get_text()) for t in labels) > 40  # the old fixed margin clipped these
    for text in labels:  # every tick label wholly inside the saved figure
        b = _extent(text)
        assert b.x0 >= 0 and b.x1 <= bars.bbox.x1 and b.y0 >= 0 and b.y1 <= bars.bbox.y1, b
    gap = drawn["gap_vs_test_acc.png"]
    (legend,) = gap.legends
    assert not _extent(legend).overlaps(_extent(gap.axes[0]))
