"""`regbench compare` from the command line: formats, sorting, baselines, filters, the report
folder, broken runs, bad options; and on runs written by the real `regbench train`."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from tests.runfolders import compare, make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- command line


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_mean_std_and_default_sort_best_first(known_sweep: Path) -> None:
    result = compare(known_sweep, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    assert [(r["model"], r["reg"]) for r in rows] == [
        ("cnn", "dropout"),
        ("cnn", "none"),
        ("mlp", "dropout"),
        ("mlp", "none"),
    ]
    top = rows[0]
    assert int(top["n"]) == 3
    assert float(top["test_acc_mean"]) == pytest.approx(0.94)
    assert float(top["test_acc_std"]) == pytest.approx(0.01)
    assert float(top["gen_gap"]) == pytest.approx(0.02)
    assert float(rows[3]["test_acc_std"]) == pytest.approx(0.02)
    assert top["statuses"] == "3 completed"


def test_sort_ascending_descending_and_by_label(known_sweep: Path) -> None:
    asc = read_csv(compare(known_sweep, "--format", "csv", "--sort", "test_acc").stdout)
    assert [float(r["test_acc_mean"]) for r in asc] == pytest.approx([0.82, 0.83, 0.91, 0.94])
    desc = read_csv(compare(known_sweep, "--format", "csv", "--sort=-model").stdout)
    assert [r["model"] for r in desc] == ["mlp", "mlp", "cnn", "cnn"]
    bad = compare(known_sweep, "--sort", "nope")
    assert bad.exit_code == 2 and "cannot sort by 'nope'" in bad.stderr


def test_metric_option_uses_other_summary_field(tmp_path: Path) -> None:
    for seed, loss in enumerate([0.2, 0.4]):
        make_run(tmp_path, f"s{seed}", seed=seed, test_loss=loss)
    rows = read_csv(compare(tmp_path, "--format", "csv", "--metric", "test_loss").stdout)
    assert float(rows[0]["test_loss_mean"]) == pytest.approx(0.3)
    assert float(rows[0]["test_loss_std"]) == pytest.approx(math.sqrt(0.02))
    assert compare(tmp_path, "--metric", "bogus").exit_code == 2


def test_baseline_deltas_match_same_other_settings(known_sweep: Path) -> None:
    result = compare(known_sweep, "--format", "json", "--baseline", "reg=none")
    assert result.exit_code == 0, result.output
    groups = {(g["model"], g["reg"]): g for g in json.loads(result.stdout)["groups"]}
    cnn, mlp = groups[("cnn", "dropout")], groups[("mlp", "dropout")]
    # Same seeds 0, 1, 2 on both sides: paired by seed, the paired t interval of scipy.
    ref = stats.ttest_rel([0.93, 0.95, 0.94], [0.90, 0.91, 0.92])
    low, high = ref.confidence_interval(0.95)
    assert cnn["test"] == "paired t" and cnn["pairs_or_runs"] == 3
    assert cnn["delta"] == pytest.approx(0.03)
    assert (cnn["delta_low"], cnn["delta_high"]) == (pytest.approx(low), pytest.approx(high))
    assert cnn["p"] == pytest.approx(ref.pvalue)
    # mlp: compared with mlp/none (not cnn/none), difference 0.01.
    assert mlp["delta"] == pytest.approx(0.01) and mlp["significant"] is False
    assert groups[("cnn", "none")]["delta_note"] == "baseline"
    md = compare(known_sweep, "--format", "md", "--baseline", "reg=none").stdout
    assert "+0.0300 [" in md and "paired t" in md and "Holm" in md


def test_baseline_with_one_seed_says_n_lt_2(tmp_path: Path) -> None:
    make_run(tmp_path, "base0", seed=0, test_acc=0.8)
    make_run(tmp_path, "base1", seed=1, test_acc=0.9)
    make_run(tmp_path, "drop", reg={"dropout": {"p": 0.1}}, test_acc=0.95)
    result = compare(tmp_path, "--format", "md", "--baseline", "reg=none", "--by", "reg")
    assert result.exit_code == 0, result.output
    assert "+0.1000 (n<2)" in result.stdout


def test_baseline_errors(known_sweep: Path) -> None:
    missing = compare(known_sweep, "--baseline", "reg=l1")
    assert missing.exit_code == 2 and "no group has reg=l1" in missing.stderr
    not_grouped = compare(known_sweep, "--by", "model", "--baseline", "reg=none")
    assert not_grouped.exit_code == 2 and "--by keys" in not_grouped.stderr


def test_every_format_renders_the_numbers(known_sweep: Path) -> None:
    table = compare(known_sweep, "--by", "model,reg")
    assert table.exit_code == 0 and "0.9400 ± 0.0100" in table.stdout and "cnn" in table.stdout
    md = compare(known_sweep, "--format", "md").stdout
    assert md.splitlines()[0].startswith("| model | reg | n |")
    assert "| cnn | dropout | 3 | 0.9400 ± 0.0100 | 0.8800 | 0.0200 | 2.0/3.0 |" in md
    html = compare(known_sweep, "--format", "html").stdout
    assert html.startswith("<table>") and "<td>0.9400 ± 0.0100</td>" in html
    data = json.loads(compare(known_sweep, "--format", "json").stdout)
    assert len(data["groups"]) == 4 and len(data["runs"]) == 12
    assert compare(known_sweep, "--format", "xml").exit_code == 2


def test_filter_on_command_line(known_sweep: Path) -> None:
    rows = read_csv(
        compare(
            known_sweep, "--format", "csv", "--filter", "model=mlp", "--filter", "reg.dropout.p=0.5"
        ).stdout
    )
    assert [(r["model"], r["reg"]) for r in rows] == [("mlp", "dropout")]
    none = compare(known_sweep, "--filter", "data.name=cifar100")
    assert none.exit_code == 2 and "data.name=cifar100" in none.stderr


def test_out_writes_report_csvs_and_pngs(known_sweep: Path, tmp_path: Path) -> None:
    import matplotlib.image

    out = tmp_path / "report"
    result = compare(known_sweep, "--out", out, "--baseline", "reg=none")
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["gap_vs_test_acc.png", "learning_curves.png", "test_acc_bars.png"]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(out / name).shape
        assert height > 100 and width > 100
    report = (out / "report.md").read_text()
    assert all(f"]({name})" in report for name in pngs)
    assert "| cnn | dropout | 3 | 0.9400 ± 0.0100 |" in report
    assert len(read_csv((out / "runs.csv").read_text())) == 12
    assert len(read_csv((out / "groups.csv").read_text())) == 4
    html = compare(known_sweep, "--format", "html", "--out", out / "h")
    assert (
        html.exit_code == 0
        and '<img src="learning_curves.png"' in (out / "h/report.html").read_text()
    )


def test_broken_runs_are_listed_and_skipped(known_sweep: Path) -> None:
    runs = known_sweep / "sweeps/a"
    make_run(runs, "running", status="running", test_acc=None)
    make_run(runs, "half-summary")
    (runs / "half-summary/summary.json").write_text('{"status": "compl')
    make_run(runs, "no-summary")
    (runs / "no-summary/summary.json").unlink()
    make_run(runs, "bad-yaml")
    (runs / "bad-yaml/config.yaml").write_text("model: [unclosed\n  - x: {")
    make_run(runs, "torn-csv")
    with (runs / "torn-csv/metrics.csv").open("a") as f:
        f.write("4,0.1,0.9")
    make_run(runs, "diverged", status="diverged", test_acc=float("nan"))
    result = compare(known_sweep, "--format", "json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 5
    assert any("running" in w and "still running" in w for w in warnings)
    assert any("bad-yaml" in w and "config.yaml unreadable" in w for w in warnings)
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)  # strict JSON: the diverged run's NaN became null
    rows = {g["reg"]: g for g in data["groups"] if g["model"] == "cnn"}
    # Numbers unchanged by the broken runs; those that have a config are counted by status.
    assert rows["none"]["test_acc_mean"] == pytest.approx(0.91)
    assert rows["none"]["n"] == 3
    assert rows["none"]["statuses"] == (
        "3 completed, 1 diverged, 1 running, 1 incomplete, 2 corrupt"
    )
    skipped = {Path(r["path"]).name: r["status"] for r in data["runs"] if r["skipped"]}
    assert skipped == {
        "running": "running",
        "half-summary": "corrupt",
        "bad-yaml": "corrupt",
        "no-summary": "incomplete",
        "torn-csv": "corrupt",
    }
    (diverged,) = [r for r in data["runs"] if r["status"] == "diverged"]
    assert diverged["test_acc"] is None and not diverged["skipped"]


def test_empty_and_missing_folders_exit_2_with_one_line(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "nope"):
        result = compare(path)
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and str(path) in lines[0]
        assert "Traceback" not in result.output and result.stdout == ""


def test_several_explicit_run_folders_and_single_group_labels(known_sweep: Path) -> None:
    a, b = known_sweep / "sweeps/a/cnn-none-s0", known_sweep / "sweeps/a/cnn-none-s1"
    result = compare(a, b, "--format", "csv")
    assert result.exit_code == 0, result.output
    (row,) = read_csv(result.stdout)
    # One group: nothing varies, so the main settings are named instead.
    assert (row["data"], row["model"], row["reg"], row["optim"]) == ("mnist", "cnn", "none", "adam")
    assert int(row["n"]) == 2 and float(row["test_acc_mean"]) == pytest.approx(0.905)


def test_failed_run_without_metrics_is_counted_and_brackets_print(tmp_path: Path) -> None:
    for seed, hidden in enumerate([[256, 128], [256, 128], [64]]):
        make_run(tmp_path, f"s{seed}", seed=seed, config_extra={"model.hidden": hidden})
    failed = make_run(tmp_path, "failed", status="failed", test_acc=None)
    (failed / "metrics.csv").unlink()
    result = compare(tmp_path)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # a failed run is a result, not a broken folder
    assert "cnn hidden=[256, 128]" in result.stdout and "cnn hidden=[64]" in result.stdout
    assert "1 failed" in result.stdout


def test_baseline_by_numeric_key(tmp_path: Path) -> None:
    for seed in range(2):
        make_run(tmp_path, f"a{seed}", seed=seed, lr=0.001, test_acc=0.8 + 0.01 * seed)
        make_run(tmp_path, f"b{seed}", seed=seed, lr=0.01, test_acc=0.9 + 0.01 * seed)
    result = compare(
        tmp_path, "--by", "optim.lr", "--baseline", "optim.lr=1e-3", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    (fast,) = [g for g in json.loads(result.stdout)["groups"] if g["optim.lr"] == "0.01"]
    # both seeds differ by exactly 0.1: no spread, so no interval and never a `*`
    assert fast["delta"] == pytest.approx(0.1) and fast["delta_note"] == "no spread"
    assert fast["significant"] is False and fast["delta_low"] is None


def test_unknown_by_key_and_unwritable_out(known_sweep: Path, tmp_path: Path) -> None:
    unknown = compare(known_sweep, "--by", "model,optim.nope")
    assert unknown.exit_code == 2 and "optim.nope" in unknown.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    blocked = compare(known_sweep, "--format", "csv", "--out", blocker / "report")
    # checked before any run is read: the --out named, what is in its way, and the fix
    assert blocked.exit_code == 2 and "is a file, not a folder" in blocked.stderr
    assert "--out" in blocked.stderr and "choose another --out" in blocked.stderr
    assert "Traceback" not in blocked.output


# ---------------------------------------------------------------- runs written by the real CLI


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[typer.Typer, Path]:
    """2 seeds x {none, dropout} plus one diverging run, trained by `regbench train` (digits)."""
    from regbench.cli import app

    out = tmp_path_factory.mktemp("real")
    fast = ["trainer.epochs=2", "trainer.progress=none", "data.subset=256", f"out_dir={out}"]
    runner = CliRunner()
    for seed in (0, 1):
        for reg in ("none", "dropout"):
            res = runner.invoke(app, ["train", f"seed={seed}", f"reg={reg}", *fast])
            assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "optim=sgd", "optim.lr=1e6", *fast])
    assert res.exit_code == 1  # diverged
    return app, out


def test_compare_on_runs_written_by_the_real_train_cli(
    real_runs: tuple[typer.Typer, Path], tmp_path: Path
) -> None:
    app, out = real_runs
    res = CliRunner().invoke(
        app,
        ["compare", str(out), "--baseline", "reg=none", "--format", "json", "--out", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    groups = json.loads(res.stdout)["groups"]
    by_reg = {g["reg"]: g for g in groups if g["optim"].startswith("adam")}

    def accs(reg: str) -> list[float]:
        return [
            json.loads((out / f"mlp-{reg}-adam-s{s}/summary.json").read_text())["test_acc"]
            for s in (0, 1)
        ]

    none, dropout = accs("none"), accs("dropout")
    assert by_reg["none"]["n"] == 2 and by_reg["none"]["delta_note"] == "baseline"
    assert by_reg["none"]["test_acc_mean"] == pytest.approx(statistics.fmean(none))
    assert by_reg["none"]["test_acc_std"] == pytest.approx(statistics.stdev(none))
    assert by_reg["dropout"]["delta"] == pytest.approx(
        statistics.fmean(dropout) - statistics.fmean(none)
    )
    (sgd,) = [g for g in groups if g["optim"].startswith("sgd")]
    assert sgd["statuses"] == "1 diverged" and sgd["n"] == 0
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "learning_curves.png",
        "test_acc_bars.png",
        "gap_vs_test_acc.png",
    }


def test_unknown_curves_column_names_the_columns(known_sweep: Path, tmp_path: Path) -> None:
    res = compare(known_sweep, "--curves", "val_acc,val_ecee", "--out", tmp_path / "r")
    assert res.exit_code == 2 and not (tmp_path / "r").exists()
    assert "--curves column 'val_ecee'" in res.stderr and "val_loss" in res.stderr
