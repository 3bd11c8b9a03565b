"""data.stratify (issue 38): the training, validation and test splits (and data.subset) keep each
class's share of the data; the default split stays the random one every published number used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from regbench import data
from tests.conftest import assert_one_line_error, cli_inprocess, make_cfg

CPU = torch.device("cpu")


def worst_share_error(d: data.Splits) -> float:
    """The largest gap, over splits and classes, between a split's count of a class and that
    class's share of all three splits times the split's size."""
    ys = [y.numpy() for y in (d.y_train, d.y_val, d.y_test)]
    total = np.bincount(np.concatenate(ys), minlength=d.num_classes)
    gaps = [
        np.abs(np.bincount(y, minlength=d.num_classes) - total * len(y) / total.sum()).max()
        for y in ys
    ]
    return float(max(gaps))


@pytest.mark.parametrize("classes", [[], ["data.classes=[5,6,7,8,9]"]])
def test_stratified_splits_keep_each_class_share(classes: list[str]) -> None:
    strat = data.load(make_cfg("data.stratify=true", *classes).data, CPU)
    rand = data.load(make_cfg(*classes).data, CPU)
    assert worst_share_error(strat) <= 2  # rounding, once per carve
    assert worst_share_error(rand) > 4  # the random split does not
    sizes = [[len(y) for y in (d.y_train, d.y_val, d.y_test)] for d in (strat, rand)]
    assert classes or sizes[0] == sizes[1]  # the whole dataset: the same split sizes


def test_the_default_split_is_the_random_one() -> None:
    """data.stratify=false: the permutations of data.split_seed's stream, as before the switch."""
    d = data.load(make_cfg().data, CPU)
    _, y = data._digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    n_test = round(len(y) * 0.2)
    pool = y[order[n_test:]]
    val = rng.permutation(len(pool))[: round(len(pool) * 0.1)]
    assert d.y_test.tolist() == y[order[:n_test]].tolist()
    assert d.y_val.tolist() == pool[val].tolist()


def test_a_stratified_subset_keeps_each_class_share(mnist_root: Path) -> None:
    common = ["data=mnist", f"data.root={mnist_root}", "data.subset=500"]
    strat = data.load(make_cfg(*common, "data.stratify=true").data, CPU)
    counts = np.bincount(strat.y_train.numpy(), minlength=10)
    pool = np.bincount(np.concatenate([strat.y_train, strat.y_val]), minlength=10)
    assert counts.sum() == 500
    assert np.abs(counts - 500 * pool / pool.sum()).max() <= 2
    rand = data.load(make_cfg(*common).data, CPU)
    assert np.abs(np.bincount(rand.y_train.numpy(), minlength=10) - 50).max() > 5


def test_a_split_too_small_to_stratify_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["data.stratify=true", "data.val_fraction=0.001", f"out_dir={tmp_path / 'o'}"]
    r = cli_inprocess("train", *args, monkeypatch=monkeypatch)
    assert "data.stratify=true cannot split digits" in assert_one_line_error(*r)
    assert not (tmp_path / "o").exists()
