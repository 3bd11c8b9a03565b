"""`regbench compare`'s options that act only beside another (--delta and the rest only on
comparisons with a baseline, --curves only on --out's figures) are refused where they would
change nothing, in one line naming them; an empty --out is refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import regbench
from tests.conftest import assert_one_line_error, cli
from tests.runfolders import compare
from tests.test_compare_inference import factorial_runs

BASELINE = "add --baseline key=value or drop it"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--delta", "0.01"], f"--delta only acts on comparisons with a baseline; {BASELINE}"),
        (["--power", "0.9"], f"--power only acts on comparisons with a baseline; {BASELINE}"),
        (["--reps", "500"], f"--reps only acts on comparisons with a baseline; {BASELINE}"),
        (["--test", "wilcoxon"], f"--test only acts on comparisons with a baseline; {BASELINE}"),
        (["--summary"], f"--summary only acts on comparisons with a baseline; {BASELINE}"),
        (["--bootstrap-seed", "3"], f"--bootstrap-seed only acts on comparisons with a baseline; {BASELINE}"),
        (["--alpha", "0.1"], "--alpha only acts on comparisons with a baseline or --factorial's "
                             "effects; add --baseline key=value or --factorial, or drop it"),
        (["--correction", "bh"], "--correction only acts on comparisons with a baseline or "
                                 "--factorial's effects; add --baseline key=value or --factorial, or drop it"),
        (["--curves", "val_acc"], "--curves only acts on the figures --out writes; add --out FOLDER or drop it"),
        (["--curves", "nosuchcol"], "--curves only acts on the figures --out writes; add --out FOLDER or drop it"),
        (["--delta", "0.01", "--power", "0.9"],
         "--delta, --power only act on comparisons with a baseline; add --baseline key=value or drop them"),
        (["--summary", "--curves", "val_acc"],
         "--summary only acts on comparisons with a baseline, --curves only acts on the figures --out "
         "writes; add --baseline key=value and --out FOLDER, or drop them"),
    ],
)  # fmt: skip
def test_an_option_that_would_change_nothing_is_refused(
    known_sweep: Path, args: list[str], says: str
) -> None:
    r = compare(known_sweep, *args)
    assert assert_one_line_error(r.exit_code, r.stdout, r.stderr) == f"error: {says}"
    assert r.stdout == ""


def test_the_options_act_beside_what_they_need(known_sweep: Path, tmp_path: Path) -> None:
    plain = compare(known_sweep, "--format", "csv")
    # at their defaults they change nothing and are not refused
    same = compare(known_sweep, "--format", "csv", "--delta", "0.005", "--test", "t")
    assert plain.exit_code == same.exit_code == 0 and same.stdout == plain.stdout
    base = ["--baseline", "reg=none", "--format", "json"]
    t = compare(known_sweep, *base, "--power", "0.9", "--summary", "--delta", "0.01")
    w = compare(known_sweep, *base, "--power", "0.9", "--summary", "--test", "wilcoxon")
    assert t.exit_code == w.exit_code == 0, t.output + w.output
    assert "dropout" in t.stderr  # --summary's lines, on stderr beside json
    assert json.loads(t.stdout)["groups"] != json.loads(w.stdout)["groups"]
    out = tmp_path / "report"
    drawn = compare(known_sweep, "--curves", "val_acc", "--out", out)
    assert drawn.exit_code == 0, drawn.output
    assert (out / "learning_curves.png").is_file()


def test_alpha_and_correction_act_on_the_factorial_effects(tmp_path: Path) -> None:
    factorial_runs(tmp_path)

    def p_adj(*args: str) -> list[float]:
        r = compare(tmp_path, "--factorial", "--format", "json", *args)
        assert r.exit_code == 0, r.output
        return [e["p_adj"] for e in json.loads(r.stdout)["effects"]]

    assert p_adj("--correction", "none") != p_adj()
    r = compare(tmp_path, "--factorial", "--alpha", "0.1", "--delta", "0.01")
    assert "error: --delta only acts on comparisons with a baseline" in r.stderr


def test_empty_out_is_refused_and_nothing_written(
    known_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for empty in ("", " "):
        r = compare(known_sweep, "--out", empty)
        line = assert_one_line_error(r.exit_code, r.stdout, r.stderr)
        assert line == f"error: --out {empty!r} names no folder; give one such as --out report"
    assert list(here.iterdir()) == []


def test_the_real_cli_refuses_them_in_one_line(known_sweep: Path, tmp_path: Path) -> None:
    r = cli("compare", str(known_sweep), "--delta", "0.01", "--alpha", "0.1", cwd=tmp_path)
    line = assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert line.startswith("error: --alpha only acts on comparisons with a baseline or")
    assert line.endswith(
        "--delta only acts on comparisons with a baseline; add --baseline key=value or drop them"
    )
    r = cli("compare", str(known_sweep), "--out", "", cwd=tmp_path)
    assert "--out '' names no folder" in assert_one_line_error(r.returncode, r.stdout, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps"]


def test_the_python_api_refuses_them_in_the_same_words(known_sweep: Path) -> None:
    with pytest.raises(ValueError, match=r"^--delta only acts on comparisons with a baseline; "):
        regbench.compare_runs(known_sweep, delta=0.01)
    with pytest.raises(
        ValueError, match=r"^--test, --reps only act on comparisons with a baseline"
    ):
        regbench.compare_runs(known_sweep, test="wilcoxon", reps=500)
    res = regbench.compare_runs(known_sweep, baseline="reg=none", delta=0.01)
    assert list(res["comparisons"]["reg"]) == ["dropout", "dropout"]
