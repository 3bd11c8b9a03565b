"""The typed compare pipeline: one entry point (pipeline.compare) behind `regbench compare` and
`regbench.compare_runs`, so the Python API returns a staged sweep's verdicts too; the options
checked by the types themselves; decisions.json read through its type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from regbench import compare_runs
from regbench.compare.load import CompareError
from regbench.compare.result import Inference, Request
from regbench.decisions import Decisions
from tests.runfolders import compare
from tests.test_staged_compare import staged_folder


def test_compare_runs_returns_the_staged_verdicts_the_command_shows(tmp_path: Path) -> None:
    root = staged_folder(tmp_path)
    rows = compare_runs(root, baseline="reg=none")["decisions"].set_index("comparison")
    assert list(rows.index) == ["reg=aug", "reg=l2"]
    assert rows.loc["reg=aug", "verdict"] == "worse" and rows.loc["reg=aug", "decided_at"] == 5
    assert rows.loc["reg=l2", "verdict"] == "equivalent" and rows.loc["reg=l2", "decided_at"] == 10
    assert set(rows["baseline"]) == {"reg=none"} and set(rows["folder"]) == {str(root)}
    # Δ and the interval its last look read: the staged table's column, from the same numbers
    aug = rows.loc["reg=aug"]
    assert aug["delta_low"] < aug["delta"] == 0.0 < aug["delta_high"]
    table = compare(root, "--baseline", "reg=none", "--format", "md")
    assert table.exit_code == 0, table.output
    shown = f"{aug['delta']:+.4f} [{aug['delta_low']:+.4f}, {aug['delta_high']:+.4f}]"
    assert shown in table.stdout
    res = compare(root, "--baseline", "reg=none", "--format", "json")
    (log,) = json.loads(res.stdout)["decisions"]
    assert log["verdicts"] == dict(rows["verdict"]) and log["folder"] == str(root)


def test_a_plain_sweep_has_no_decisions_frame(tmp_path: Path) -> None:
    root = staged_folder(tmp_path)
    (root / "decisions.json").unlink()
    assert "decisions" not in compare_runs(root, baseline="reg=none")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("metric", "accuracy", "--metric must be one of test_acc, test_loss"),
        ("test", "z", "--test must be one of t, wilcoxon, bootstrap, got 'z'"),
        ("correction", "sidak", "--correction must be one of holm, bh, none, got 'sidak'"),
        ("alpha", 1.5, "--alpha must be between 0 and 1, got 1.5"),
        ("reps", 10, "--reps must be at least 100, got 10"),
        ("delta", 0.0, "--delta must be a positive number in metric units, got 0.0"),
        ("power", 1.0, "--power must be between 0 and 1, got 1.0"),
    ],
)
def test_inference_checks_its_own_values(option: str, value: object, message: str) -> None:
    with pytest.raises(CompareError, match=message):
        Inference(**{"metric": "test_acc", option: value})  # type: ignore[arg-type]


def test_a_request_refuses_factors_without_a_factorial(tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="--factors picks the regularizers of --factorial"):
        Request([tmp_path], Inference("test_acc"), factors=["dropout"])


def test_decisions_read_and_written_as_the_file(tmp_path: Path) -> None:
    raw = json.loads((staged_folder(tmp_path) / "decisions.json").read_text())
    diverged = {
        "stage": 2,
        "seeds": 10,
        "verdicts": {"reg=l2": "diverged"},
        "estimates": {"reg=l2": {"diverged": {"reg=l2": [3, 7]}}},
    }
    raw["path"][1] = diverged
    log = Decisions.from_json(raw, folder="x")
    assert log.to_json() == raw
    assert log.path[1].estimates["reg=l2"].diverged == {"reg=l2": [3, 7]}
    assert log.verdict("reg=aug") == "worse" and log.folder == "x"
    # a file from before `spending` and `futility`: O'Brien-Fleming-type, no futility stops
    old = Decisions.from_json({k: v for k, v in raw.items() if k not in ("spending", "futility")})
    assert (old.spending, old.futility) == ("obf", 0)


@pytest.mark.parametrize("text", ["[]", '{"baseline": "reg=none"}'])
def test_a_broken_decisions_json_is_one_line(tmp_path: Path, text: str) -> None:
    root = staged_folder(tmp_path)
    (root / "decisions.json").write_text(text)
    res = compare(root, "--baseline", "reg=none")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith(f"error: {root / 'decisions.json'} is not a staged sweep's")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    with pytest.raises(ValueError, match="is not a staged sweep's decisions"):
        compare_runs(root, baseline="reg=none")


def test_the_report_links_the_decisions_figure_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report.md sits beside its figures: a link by name shows with any --out, relative too."""
    root = staged_folder(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    res = compare(root, "--baseline", "reg=none", "--out", "report")
    assert res.exit_code == 0, res.output
    links = re.findall(r"!\[[^]]*\]\(([^)]*)\)", (tmp_path / "report" / "report.md").read_text())
    assert "decisions.png" in links
    assert all((tmp_path / "report" / link).is_file() for link in links)
