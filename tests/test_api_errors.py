"""The Python API's bad arguments are ValueErrors that say what to pass (issue 41, item 7), and
compare's filters compare values, not their spelling (item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

import regbench
from tests.runfolders import known_sweep


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    return known_sweep(tmp_path) / "sweeps" / "a"


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda s: regbench.load_runs(None), "path must be a folder or a list of folders, got None"),
        (lambda s: regbench.load_runs(s / "nothing"), "does not exist"),
        (lambda s: regbench.compare_runs(s / "nothing"), "does not exist"),
        (lambda s: regbench.compare_runs(s, alpha="0.05"), "alpha must be a number, got '0.05'"),
        (lambda s: regbench.compare_runs(s, alpha=None), "alpha must be a number, got None"),
        (lambda s: regbench.compare_runs(s, reps=2000.5), "reps must be a whole number, got 2000.5"),
        (lambda s: regbench.compare_runs(s, delta="big"), "delta must be a number"),
        (lambda s: regbench.load_runs(s, filter=[3]), "filter must be a string or a list of strings"),
    ],
)  # fmt: skip
def test_bad_arguments_are_value_errors(sweep: Path, call, says: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(".", r"\.")):
        call(sweep)


def test_a_string_filter_and_by_are_read_whole(sweep: Path) -> None:
    df = regbench.load_runs(sweep, filter="reg=none")
    assert len(df) > 0 and set(df["reg"]) == {"none"}
    res = regbench.compare_runs(sweep, by="model,reg")
    assert {"model", "reg"} <= set(res["groups"].columns)


def test_a_filter_matching_nothing_says_so(sweep: Path) -> None:
    with pytest.warns(UserWarning, match="no run matches filter"):
        df = regbench.load_runs(sweep, filter=["model.name=nonesuch"])
    assert df.empty


@pytest.mark.parametrize(
    ("text", "same"),
    [("[1024,1024]", True), ("[1024, 1024]", True), ("[1024]", False), ("[1024,512]", False)],
)
def test_a_list_filter_compares_values_not_spelling(text: str, same: bool) -> None:
    from regbench.compare.groups import matches  # what compare --filter and load_runs use

    assert matches("model.hidden", [1024, 1024], text) is same
