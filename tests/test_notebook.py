"""regbench from Python: load_runs and compare_runs give the numbers `regbench compare` gives;
`import regbench` stays light; compare --format latex writes booktabs tables pdflatex compiles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import regbench
from tests.conftest import FAST, cli, cli_env
from tests.runfolders import compare, known_sweep, make_run


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    return known_sweep(tmp_path) / "sweeps" / "a"


def test_load_runs_is_one_row_per_run_with_config_and_summary(sweep: Path) -> None:
    make_run(sweep, "cnn-none-s9", seed=9, status="running")  # compare would skip it
    df = regbench.load_runs(sweep)
    assert len(df) == 13
    row = df[df["name"] == "cnn-dropout-s1"].iloc[0]
    assert (row["test_acc"], row["seed"], row["status"]) == (0.95, 1, "completed")
    assert (row["model.name"], row["reg"], row["reg.dropout.p"]) == ("cnn", "dropout", 0.5)
    assert row["folder"] == str(sweep / "cnn-dropout-s1") and pd.isna(row["problem"])
    running = df[df["name"] == "cnn-none-s9"].iloc[0]
    assert running["status"] == "running" and "still running" in running["problem"]
    means = df[df["status"] == "completed"].groupby(["model.name", "reg"])["test_acc"].mean()
    assert means[("mlp", "none")] == pytest.approx(0.82)


def test_load_runs_filters_like_compare(sweep: Path) -> None:
    df = regbench.load_runs([sweep], filter=["model.name=mlp", "reg!=none"])
    assert sorted(df["name"]) == ["mlp-dropout-s0", "mlp-dropout-s1", "mlp-dropout-s2"]


def test_compare_runs_lists_only_the_runs_its_filter_keeps(sweep: Path) -> None:
    make_run(sweep, "mlp-none-s9", seed=9, status="running")  # skipped: listed with its reason
    runs = regbench.compare_runs(sweep, filter="model.name=mlp")["runs"]
    assert len(runs) == 7 and not runs["path"].str.contains("cnn-").any()
    assert runs[runs["path"].str.endswith("mlp-none-s9")]["skipped"].str.contains("running").all()


def test_compare_runs_returns_the_commands_numbers(sweep: Path) -> None:
    res = regbench.compare_runs(sweep, baseline="reg=none")
    shown = compare(sweep, "--baseline", "reg=none", "--format", "json")
    assert shown.exit_code == 0, shown.output
    by_cli = {(g["model"], g["reg"]): g for g in json.loads(shown.stdout)["groups"]}
    comp = res["comparisons"]
    assert sorted(zip(comp["model"], comp["reg"], strict=True)) == [
        ("cnn", "dropout"),
        ("mlp", "dropout"),
    ]
    for _, row in comp.iterrows():
        cli_row = by_cli[(row["model"], row["reg"])]
        for key in ("delta", "delta_low", "delta_high", "p_adj", "p_better", "verdict"):
            assert row[key] == cli_row[key], key
    cnn = comp[comp["model"] == "cnn"].iloc[0]
    assert cnn["delta"] == pytest.approx(0.03) and cnn["test"] == "paired t"
    assert len(res["groups"]) == 4 and len(res["runs"]) == 12
    assert len(res["summary"]) == 2 and res["summary"]["line"].str.contains("points").all()


def test_compare_runs_refuses_a_bad_option_in_words(sweep: Path) -> None:
    with pytest.raises(ValueError, match="--metric must be one of"):
        regbench.compare_runs(sweep, metric="accuracy")
    with pytest.raises(ValueError, match="does not exist"):
        regbench.compare_runs(sweep / "nothing-here")


def test_import_regbench_stays_light() -> None:
    code = (
        "import sys, regbench; regbench.load_runs, regbench.compare_runs; "
        "print([m for m in ('pandas', 'scipy', 'torch', 'matplotlib') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env()
    )
    assert done.stdout == "[]\n", done.stderr  # pandas comes with the first call
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        regbench.nothing  # noqa: B018


def test_load_runs_after_a_real_run(tmp_path: Path) -> None:
    """The README's one-liner: `regbench train`, then load_runs('outputs') in a fresh process."""
    trained = cli("train", *FAST, "trainer.epochs=1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    code = "import regbench; df = regbench.load_runs('outputs'); print(df.shape, df['status'][0])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("(1, ") and done.stdout.strip().endswith("completed")


# ---- compare --format latex ------------------------------------------------------------------
def _latex(sweep: Path) -> str:
    shown = compare(sweep, "--baseline", "reg=none", "--format", "latex")
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_latex_is_one_booktabs_table_per_section(sweep: Path) -> None:
    text = _latex(sweep)
    assert text.count("\\begin{table}") == text.count("\\end{table}") == 2
    assert text.count("\\toprule") == text.count("\\midrule") == text.count("\\bottomrule") == 2
    first = text.split("\\end{table}")[0]
    assert "\\begin{tabular}{llrrrrrrrr}" in first  # model, reg left; the numbers right
    rows = first.split("\\midrule\n")[1].split("\\bottomrule")[0].strip().split("\n")
    assert len(rows) == 4 and all(r.count(" & ") == 9 and r.endswith(" \\\\") for r in rows)
    assert "test\\_acc mean $\\pm$ std" in first and "0.9400 $\\pm$ 0.0100" in first
    second = text.split("\\end{table}")[1]
    assert "$\\Delta$ vs baseline [95\\% CI]" in second and "+0.0300" in second
    assert not [c for c in text if ord(c) > 127]  # pdflatex needs no unicode package


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(sweep: Path, tmp_path: Path) -> None:
    doc = tmp_path / "t.tex"
    body = _latex(sweep)
    doc.write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
        + body
        + "\\end{document}\n"
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
