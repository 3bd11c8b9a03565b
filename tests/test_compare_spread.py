"""compare's spread figure follows what the analysis found (runs grouped by source of
randomness), not how a table's title happens to end."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from regbench.compare import pipeline
from regbench.compare.result import Inference, Request, Result
from tests.runfolders import known_sweep, make_run


def _analysed(root: Path) -> Result:
    return pipeline.compare(Request([root], Inference("test_acc")), Console(stderr=True))


def test_the_spread_figure_follows_the_analysis_not_a_title(tmp_path):
    for source in ("init", "order", "split"):
        pinned = {f"seeds.{s}": None if s == source else 0 for s in ("init", "order")}
        for seed in range(3):
            extra = {"seeds.name": source, **pinned, "data.split_seed": 0}
            make_run(
                tmp_path / "runs",
                f"{source}-s{seed}",
                seed=seed,
                test_acc=0.9 + 0.01 * seed,
                config_extra=extra,
            )
    result = _analysed(tmp_path / "runs")
    for s in result.sections:  # a retitled table no longer decides whether it is drawn
        s.title += " (retitled)"
    (tmp_path / "out").mkdir()
    pipeline.write_outputs(tmp_path / "out", result, False, ["val_acc"])
    assert (tmp_path / "out" / "spread_by_source.png").is_file()
    plain = _analysed(known_sweep(tmp_path / "plain"))
    (tmp_path / "out2").mkdir()
    pipeline.write_outputs(tmp_path / "out2", plain, False, ["val_acc"])
    assert not (tmp_path / "out2" / "spread_by_source.png").exists()
