"""`regbench compare`'s parts on hand-made run folders with known numbers: loading (garbage
never crashes it), discovery, grouping, filtering, statistics, learning curves."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from regbench.compare.figures import curves
from regbench.compare.groups import filter_runs, group_runs
from regbench.compare.load import discover_runs, load_run, load_runs
from regbench.stats.inference import describe
from tests.runfolders import make_run

# ---------------------------------------------------------------- statistics


def test_describe_uses_sample_std() -> None:
    n, mean, std = describe(np.array([1.0, 2.0, 4.0]))
    assert (n, mean) == (3, pytest.approx(7 / 3))
    assert std == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]))
    assert describe(np.array([5.0])) == (1, 5.0, None)


# ---------------------------------------------------------------- discovery, grouping, filter


def test_discovery_skips_hydra_subfolder_and_dedupes(known_sweep: Path) -> None:
    run = known_sweep / "sweeps/a/cnn-none-s0"
    (run / ".hydra").mkdir()
    (run / ".hydra/config.yaml").write_text("a: 1\n")
    found = discover_runs([known_sweep, known_sweep / "sweeps/a", run])
    assert len(found) == 12 and run.resolve() in found


def test_default_grouping_merges_only_seeds(known_sweep: Path) -> None:
    make_run(known_sweep, "other/cnn-none-lr", model="cnn", lr=0.01)
    groups = group_runs(load_runs([known_sweep]))
    sizes = sorted(len(g.runs) for g in groups)
    assert sizes == [1, 3, 3, 3, 3]
    labels = {tuple(g.labels.values()) for g in groups}
    assert ("cnn", "none", "adam lr=0.01") in labels
    assert ("cnn", "dropout", "adam lr=0.001") in labels
    assert all(list(g.labels) == ["model", "reg", "optim"] for g in groups)


def test_grouping_by_keys_pools_other_settings(known_sweep: Path) -> None:
    groups = group_runs(load_runs([known_sweep]), ["model"])
    assert {g.labels["model"]: len(g.runs) for g in groups} == {"cnn": 6, "mlp": 6}
    two = group_runs(load_runs([known_sweep]), ["reg", "reg.dropout.p"])
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


def test_bookkeeping_keys_do_not_split_groups(tmp_path: Path) -> None:
    for seed in range(2):
        bookkeeping = {
            "data.root": f"/data{seed}",
            "trainer.progress": "bar" if seed else "none",
            "trainer.eval_batch_size": 256 if seed else 1024,
        }
        make_run(tmp_path, f"s{seed}", seed=seed, config_extra=bookkeeping)
    make_run(tmp_path, "other-split", seed=5, config_extra={"data.split_seed": 1})
    groups = group_runs(load_runs([tmp_path]))
    assert sorted(len(g.runs) for g in groups) == [1, 2]
    assert {g.labels["data"] for g in groups} == {"mnist split_seed=0", "mnist split_seed=1"}


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
