"""Tests of `regbench compare` on hand-made run folders with known numbers."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from regbench.compare import compare_command
from regbench.compare.figures import curves
from regbench.compare.groups import filter_runs, group_runs
from regbench.compare.load import discover_runs, load_run, load_runs
from regbench.compare.stats import describe

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(
    root: Path,
    rel: str,
    *,
    seed: int = 0,
    model: str = "cnn",
    reg: dict | None = None,
    optim: str = "adam",
    lr: float = 1e-3,
    data: str = "mnist",
    test_acc: float | None = 0.9,
    status: str = "completed",
    gen_gap: float = 0.05,
    best_epoch: int = 2,
    epochs: int = 3,
    test_loss: float = 0.3,
    epochs_run: int | None = None,
    summary_extra: dict | None = None,
    config_extra: dict | None = None,
    metrics_extra: dict[str, list[float]] | None = None,
) -> Path:
    """A run folder as `regbench train` writes it (extra keys: as newer versions write it)."""
    run = root / rel
    run.mkdir(parents=True)
    config = {
        "seed": seed,
        "resume": False,
        "out_dir": str(run),
        "name": rel,
        "sweep_name": "s",
        "data": {
            "name": data,
            "root": "/tmp/data",
            "download": True,
            "val_fraction": 0.1,
            "test_fraction": 0.1,
            "split_seed": 0,
            "subset": None,
        },
        "model": {"name": model, "width": 32},
        "reg": reg if reg is not None else {"none": {}},
        "optim": {"name": optim, "lr": lr},
        "sched": {"name": "none"},
        "init": {"name": "default"},
        "trainer": {
            "epochs": epochs,
            "batch_size": 64,
            "device": f"cuda:{seed}",
            "precision": "fp32",
            "deterministic": True,
        },
    }
    for key, value in (config_extra or {}).items():  # dotted keys, e.g. data.split_seed
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    summary = {
        "status": status,
        "run_name": rel,
        "best_epoch": best_epoch,
        "best_val_acc": 0.88,
        "best_val_loss": 0.35,
        "test_acc": test_acc,
        "test_loss": test_loss,
        "final_train_acc": 0.95,
        "gen_gap": gen_gap,
        "epochs_run": epochs_run or epochs,
        "wall_seconds": 12.5,
        "params": 1234,
        "device": "cpu",
        "torch_version": "2.5",
        "seed": seed,
        "error": None,
        **(summary_extra or {}),
    }
    (run / "summary.json").write_text(json.dumps(summary))
    extra = metrics_extra or {}
    lines = [
        ",".join(["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,samples_per_s", *extra])
    ]
    lines += [
        ",".join(
            [
                f"{e},{1 / e:.3f},{0.5 + 0.1 * e:.2f},{1.1 / e:.3f},{0.45 + 0.1 * e:.2f},0.001,4.1,1000",
                *(str(v[e - 1]) for v in extra.values()),
            ]
        )
        for e in range(1, (epochs_run or epochs) + 1)
    ]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run


def cli(*args: str):
    app = typer.Typer()
    app.command()(compare_command)
    # Wide terminal so the rich table is not wrapped.
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """cnn/mlp x none/dropout, 3 seeds each, with known test accuracies."""
    accs = {
        ("cnn", "none"): [0.90, 0.91, 0.92],
        ("cnn", "dropout"): [0.93, 0.95, 0.94],
        ("mlp", "none"): [0.80, 0.82, 0.84],
        ("mlp", "dropout"): [0.81, 0.82, 0.86],
    }
    for (model, reg), values in accs.items():
        for seed, acc in enumerate(values):
            regs = {"none": {}} if reg == "none" else {"dropout": {"p": 0.5}}
            make_run(
                tmp_path,
                f"sweeps/a/{model}-{reg}-s{seed}",
                seed=seed,
                model=model,
                reg=regs,
                test_acc=acc,
                gen_gap=0.01 * (seed + 1),
            )
    return tmp_path


# ---------------------------------------------------------------- statistics


def test_describe_uses_sample_std() -> None:
    n, mean, std = describe(np.array([1.0, 2.0, 4.0]))
    assert (n, mean) == (3, pytest.approx(7 / 3))
    assert std == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]))
    assert describe(np.array([5.0])) == (1, 5.0, None)


# ---------------------------------------------------------------- discovery, grouping, filter


def test_discovery_skips_hydra_subfolder_and_dedupes(sweep: Path) -> None:
    run = sweep / "sweeps/a/cnn-none-s0"
    (run / ".hydra").mkdir()
    (run / ".hydra/config.yaml").write_text("a: 1\n")
    found = discover_runs([sweep, sweep / "sweeps/a", run])
    assert len(found) == 12 and run.resolve() in found


def test_default_grouping_merges_only_seeds(sweep: Path) -> None:
    make_run(sweep, "other/cnn-none-lr", model="cnn", lr=0.01)
    groups = group_runs(load_runs([sweep]))
    sizes = sorted(len(g.runs) for g in groups)
    assert sizes == [1, 3, 3, 3, 3]
    labels = {tuple(g.labels.values()) for g in groups}
    assert ("cnn", "none", "adam lr=0.01") in labels
    assert ("cnn", "dropout", "adam lr=0.001") in labels
    assert all(list(g.labels) == ["model", "reg", "optim"] for g in groups)


def test_grouping_by_keys_pools_other_settings(sweep: Path) -> None:
    groups = group_runs(load_runs([sweep]), ["model"])
    assert {g.labels["model"]: len(g.runs) for g in groups} == {"cnn": 6, "mlp": 6}
    two = group_runs(load_runs([sweep]), ["reg", "reg.dropout.p"])
    assert {tuple(g.labels.values()) for g in two} == {("none", "-"), ("dropout", "0.5")}


def test_reg_label_joins_regularizers_in_order(tmp_path: Path) -> None:
    make_run(tmp_path, "r", reg={"dropout": {"p": 0.5}, "l2": {"lam": 0.0005}})
    make_run(tmp_path, "s", reg={"dropout": {"p": 0.2}})
    make_run(tmp_path, "q")
    labels = {g.labels["reg"] for g in group_runs(load_runs([tmp_path]))}
    # Only swept parameters (dropout.p) are spelled out; l2.lam has a single value.
    assert labels == {"dropout(p=0.5)+l2", "dropout(p=0.2)", "none"}
    assert {g.labels["reg"] for g in group_runs(load_runs([tmp_path]), ["reg"])} == {
        "dropout+l2",
        "dropout",
        "none",
    }


def test_filter_by_string_number_and_negation(tmp_path: Path) -> None:
    make_run(tmp_path, "a", data="mnist", lr=0.001)
    make_run(tmp_path, "b", data="cifar10", lr=0.001)
    make_run(tmp_path, "c", data="mnist", lr=0.1)
    runs = load_runs([tmp_path])

    def names(filters: list[str]) -> list[str]:
        return sorted(r.path.name for r in filter_runs(runs, filters))

    assert names(["data.name=mnist"]) == ["a", "c"]
    assert names(["data.name=mnist", "optim.lr=1e-3"]) == ["a"]
    assert names(["data.name!=mnist"]) == ["b"]
    assert names(["model=cnn", "trainer.deterministic=true"]) == ["a", "b", "c"]
    assert names(["missing.key=1"]) == []
    assert names(["data.subset=null", "trainer.deterministic=True"]) == ["a", "b", "c"]
    by_lr = filter_runs(runs, ["optim.lr=1e-3"])
    assert sorted(r.path.name for r in by_lr) == ["a", "b"]


# ---------------------------------------------------------------- command line


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_mean_std_and_default_sort_best_first(sweep: Path) -> None:
    result = cli(sweep, "--format", "csv")
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


def test_sort_ascending_descending_and_by_label(sweep: Path) -> None:
    asc = read_csv(cli(sweep, "--format", "csv", "--sort", "test_acc").stdout)
    assert [float(r["test_acc_mean"]) for r in asc] == pytest.approx([0.82, 0.83, 0.91, 0.94])
    desc = read_csv(cli(sweep, "--format", "csv", "--sort=-model").stdout)
    assert [r["model"] for r in desc] == ["mlp", "mlp", "cnn", "cnn"]
    bad = cli(sweep, "--sort", "nope")
    assert bad.exit_code == 2 and "cannot sort by 'nope'" in bad.stderr


def test_metric_option_uses_other_summary_field(tmp_path: Path) -> None:
    for seed, loss in enumerate([0.2, 0.4]):
        make_run(tmp_path, f"s{seed}", seed=seed, test_loss=loss)
    rows = read_csv(cli(tmp_path, "--format", "csv", "--metric", "test_loss").stdout)
    assert float(rows[0]["test_loss_mean"]) == pytest.approx(0.3)
    assert float(rows[0]["test_loss_std"]) == pytest.approx(math.sqrt(0.02))
    assert cli(tmp_path, "--metric", "bogus").exit_code == 2


def test_baseline_deltas_match_same_other_settings(sweep: Path) -> None:
    result = cli(sweep, "--format", "json", "--baseline", "reg=none")
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
    md = cli(sweep, "--format", "md", "--baseline", "reg=none").stdout
    assert "+0.0300 [" in md and "paired t" in md and "Holm" in md


def test_baseline_with_one_seed_says_n_lt_2(tmp_path: Path) -> None:
    make_run(tmp_path, "base0", seed=0, test_acc=0.8)
    make_run(tmp_path, "base1", seed=1, test_acc=0.9)
    make_run(tmp_path, "drop", reg={"dropout": {"p": 0.1}}, test_acc=0.95)
    result = cli(tmp_path, "--format", "md", "--baseline", "reg=none", "--by", "reg")
    assert result.exit_code == 0, result.output
    assert "+0.1000 (n<2)" in result.stdout


def test_baseline_errors(sweep: Path) -> None:
    missing = cli(sweep, "--baseline", "reg=l1")
    assert missing.exit_code == 2 and "no group has reg=l1" in missing.stderr
    not_grouped = cli(sweep, "--by", "model", "--baseline", "reg=none")
    assert not_grouped.exit_code == 2 and "--by keys" in not_grouped.stderr


def test_every_format_renders_the_numbers(sweep: Path) -> None:
    table = cli(sweep, "--by", "model,reg")
    assert table.exit_code == 0 and "0.9400 ± 0.0100" in table.stdout and "cnn" in table.stdout
    md = cli(sweep, "--format", "md").stdout
    assert md.splitlines()[0].startswith("| model | reg | n |")
    assert "| cnn | dropout | 3 | 0.9400 ± 0.0100 | 0.8800 | 0.0200 | 2.0/3.0 |" in md
    html = cli(sweep, "--format", "html").stdout
    assert html.startswith("<table>") and "<td>0.9400 ± 0.0100</td>" in html
    data = json.loads(cli(sweep, "--format", "json").stdout)
    assert len(data["groups"]) == 4 and len(data["runs"]) == 12
    assert cli(sweep, "--format", "xml").exit_code == 2


def test_filter_on_command_line(sweep: Path) -> None:
    rows = read_csv(
        cli(
            sweep, "--format", "csv", "--filter", "model=mlp", "--filter", "reg.dropout.p=0.5"
        ).stdout
    )
    assert [(r["model"], r["reg"]) for r in rows] == [("mlp", "dropout")]
    none = cli(sweep, "--filter", "data.name=cifar100")
    assert none.exit_code == 2 and "data.name=cifar100" in none.stderr


def test_out_writes_report_csvs_and_pngs(sweep: Path, tmp_path: Path) -> None:
    import matplotlib.image

    out = tmp_path / "report"
    result = cli(sweep, "--out", out, "--baseline", "reg=none")
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
    html = cli(sweep, "--format", "html", "--out", out / "h")
    assert (
        html.exit_code == 0
        and '<img src="learning_curves.png"' in (out / "h/report.html").read_text()
    )


def test_broken_runs_are_listed_and_skipped(sweep: Path) -> None:
    runs = sweep / "sweeps/a"
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
    result = cli(sweep, "--format", "json")
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
        result = cli(path)
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and str(path) in lines[0]
        assert "Traceback" not in result.output and result.stdout == ""


def test_several_explicit_run_folders_and_single_group_labels(sweep: Path) -> None:
    a, b = sweep / "sweeps/a/cnn-none-s0", sweep / "sweeps/a/cnn-none-s1"
    result = cli(a, b, "--format", "csv")
    assert result.exit_code == 0, result.output
    (row,) = read_csv(result.stdout)
    # One group: nothing varies, so the main settings are named instead.
    assert (row["data"], row["model"], row["reg"], row["optim"]) == ("mnist", "cnn", "none", "adam")
    assert int(row["n"]) == 2 and float(row["test_acc_mean"]) == pytest.approx(0.905)


def test_bookkeeping_keys_do_not_split_groups(tmp_path: Path) -> None:
    for seed in range(2):
        run = make_run(tmp_path, f"s{seed}", seed=seed)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["data"]["root"] = f"/data{seed}"
        config["trainer"]["progress"] = "bar" if seed else "none"
        config["trainer"]["eval_batch_size"] = 256 if seed else 1024
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    make_run(tmp_path, "other-split", seed=5)
    config = yaml.safe_load((tmp_path / "other-split/config.yaml").read_text())
    config["data"]["split_seed"] = 1
    (tmp_path / "other-split/config.yaml").write_text(yaml.safe_dump(config))
    groups = group_runs(load_runs([tmp_path]))
    assert sorted(len(g.runs) for g in groups) == [1, 2]
    assert {g.labels["data"] for g in groups} == {"mnist split_seed=0", "mnist split_seed=1"}


def test_failed_run_without_metrics_is_counted_and_brackets_print(tmp_path: Path) -> None:
    for seed, hidden in enumerate([[256, 128], [256, 128], [64]]):
        run = make_run(tmp_path, f"s{seed}", seed=seed)
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["model"]["hidden"] = hidden
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    failed = make_run(tmp_path, "failed", status="failed", test_acc=None)
    (failed / "metrics.csv").unlink()
    result = cli(tmp_path)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # a failed run is a result, not a broken folder
    assert "cnn hidden=[256, 128]" in result.stdout and "cnn hidden=[64]" in result.stdout
    assert "1 failed" in result.stdout


def test_baseline_by_numeric_key(tmp_path: Path) -> None:
    for seed in range(2):
        make_run(tmp_path, f"a{seed}", seed=seed, lr=0.001, test_acc=0.8 + 0.01 * seed)
        make_run(tmp_path, f"b{seed}", seed=seed, lr=0.01, test_acc=0.9 + 0.01 * seed)
    result = cli(tmp_path, "--by", "optim.lr", "--baseline", "optim.lr=1e-3", "--format", "json")
    assert result.exit_code == 0, result.output
    (fast,) = [g for g in json.loads(result.stdout)["groups"] if g["optim.lr"] == "0.01"]
    # both seeds differ by exactly 0.1: no spread, so no interval and never a `*`
    assert fast["delta"] == pytest.approx(0.1) and fast["delta_note"] == "no spread"
    assert fast["significant"] is False and fast["delta_low"] is None


def test_unknown_by_key_and_unwritable_out(sweep: Path, tmp_path: Path) -> None:
    unknown = cli(sweep, "--by", "model,optim.nope")
    assert unknown.exit_code == 2 and "optim.nope" in unknown.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    blocked = cli(sweep, "--format", "csv", "--out", blocker / "report")
    assert blocked.exit_code == 2 and "cannot write the report" in blocked.stderr
    assert "Traceback" not in blocked.output


def test_curves_mean_and_sample_std_over_ragged_seeds(tmp_path: Path) -> None:
    short = make_run(tmp_path, "short", epochs=3, epochs_run=2)
    full = make_run(tmp_path, "full", epochs=3)
    (short / "metrics.csv").write_text("epoch,val_acc\n1,0.2\n2,0.4\n")
    (full / "metrics.csv").write_text("epoch,val_acc\n1,0.4\n2,0.8\n3,0.9\n")
    x, mean, std = curves([load_run(short), load_run(full)], "val_acc")
    assert list(x) == [1, 2, 3]
    assert list(mean) == pytest.approx([0.3, 0.6, 0.9])
    assert list(std) == pytest.approx(
        [statistics.stdev([0.2, 0.4]), statistics.stdev([0.4, 0.8]), 0.0]
    )


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["config.yaml", "summary.json", "metrics.csv"]),
    junk=st.binary(max_size=200),
)
def test_any_garbage_in_a_file_never_crashes_loading(tmp_path_factory, name, junk) -> None:
    run = make_run(tmp_path_factory.mktemp("fuzz"), "r")
    (run / name).write_bytes(junk)
    loaded = load_run(run)
    if loaded.problem is None:  # only junk that still parses as that kind of file is accepted
        assert name == "config.yaml" and isinstance(yaml.safe_load(junk), dict)
    else:
        assert loaded.status in ("corrupt", "incomplete") and not loaded.usable
    group_runs([loaded])  # grouping what did load must not fail either


# ---------------------------------------------------------------- runs written by the real CLI


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[typer.Typer, Path]:
    """2 seeds x {none, dropout} plus one diverging run, trained by `regbench train` (digits)."""
    cli_module = pytest.importorskip("regbench.cli", reason="needs the training core (main)")
    app = cli_module.app
    if "compare" not in typer.main.get_command(app).commands:
        pytest.skip("compare is not registered in regbench.cli yet")
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


def test_unknown_curves_column_names_the_columns(sweep: Path, tmp_path: Path) -> None:
    res = cli(sweep, "--curves", "val_acc,val_ecee", "--out", tmp_path / "r")
    assert res.exit_code == 2 and not (tmp_path / "r").exists()
    assert "--curves column 'val_ecee'" in res.stderr and "val_loss" in res.stderr
