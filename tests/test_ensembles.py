"""Ensembles of seeds from stored test outputs, and Monte-Carlo dropout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as sps

from regbench import data, diagnostics, models
from regbench.compare.analysis import ensemble_sizes
from regbench.stats import inference as stats
from tests.conftest import cli, make_cfg, summary

EPOCHS = ["trainer.epochs=2", "trainer.progress=none", "data.subset=400"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 seeds of none and of dropout (with MC dropout), fused, through the real CLI."""
    out = tmp_path_factory.mktemp("ens")
    args = ["reg=none,dropout", "seed=0,1,2,3", "trainer.fuse=4", "trainer.mc_dropout=5"]
    res = cli("sweep", *args, *EPOCHS, f"out_dir={out}", "sweep_name=ens")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("trainer.mc_dropout=5: the model has no dropout to sample") == 4
    return out / "sweeps" / "ens"


def _stored(run: Path, key: str = "log_probs") -> tuple[np.ndarray, np.ndarray]:
    with np.load(run / "test_outputs.npz") as z:
        return z["labels"], z[key]


def test_stored_outputs_are_the_tested_model(sweep: Path) -> None:
    for run in sorted(sweep.glob("mlp-*-s*")):
        labels, lp = _stored(run)
        s = summary(run)
        assert lp.shape == (len(labels), 10) and lp.dtype == np.float32
        assert np.allclose(np.exp(lp).sum(1), 1, atol=1e-5)
        assert (lp.argmax(1) == labels).mean() == s["test_acc"]
        if "dropout" in run.name:
            _, mc = _stored(run, "mc_log_probs")
            assert (mc.argmax(1) == labels).mean() == s["mc_test_acc"]
        else:
            assert "mc_test_acc" not in s


def test_ensemble_accuracy_equals_an_independent_computation(sweep: Path) -> None:
    res = cli("compare", str(sweep), "--ensemble", "--format", "json")
    assert res.returncode == 0, res.stderr
    records = {r["reg"]: r for r in json.loads(res.stdout)["ensembles"]}
    for reg in ("none", "dropout"):
        runs = [sweep / f"mlp-{reg}-adam-s{s}" for s in range(4)]
        labels = torch.from_numpy(_stored(runs[0])[0]).long()
        probs = [torch.from_numpy(_stored(r)[1]).exp() for r in runs]  # softmax outputs

        def acc(members: list[torch.Tensor], y: torch.Tensor = labels) -> float:
            return (torch.stack(members).mean(0).argmax(1) == y).double().mean().item()

        r = records[reg]
        assert r["members"] == 4
        assert r["ens1_acc"] == pytest.approx(np.mean([summary(x)["test_acc"] for x in runs]))
        assert r["ens2_acc"] == pytest.approx((acc(probs[:2]) + acc(probs[2:])) / 2)
        assert r["all_acc"] == pytest.approx(acc(probs))
        per_example = (torch.stack(probs).mean(0).argmax(1) == labels).double() - torch.stack(
            [(p.argmax(1) == labels).double() for p in probs]
        ).mean(0)
        ci = sps.ttest_1samp(per_example.numpy(), 0).confidence_interval(0.95)
        assert (r["gain_low"], r["gain_high"]) == pytest.approx((ci.low, ci.high))
        nll = -torch.stack(probs).mean(0).log()[torch.arange(len(labels)), labels].mean().item()
        assert r["all_nll"] == pytest.approx(nll, rel=1e-5)
    dropout = records["dropout"]
    mc = [summary(sweep / f"mlp-dropout-adam-s{s}")["mc_test_acc"] for s in range(4)]
    usual = [summary(sweep / f"mlp-dropout-adam-s{s}")["test_acc"] for s in range(4)]
    assert dropout["mc_acc"] == pytest.approx(np.mean(mc))
    ci = sps.ttest_rel(mc, usual).confidence_interval(0.95)
    assert (dropout["mc_low"], dropout["mc_high"]) == pytest.approx((ci.low, ci.high))
    assert records["none"].get("mc_acc") is None


def test_ensemble_report_and_table(sweep: Path, tmp_path: Path) -> None:
    res = cli("compare", str(sweep), "--ensemble", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "test accuracy of ensembles of seeds" in res.stdout
    assert "weight scaling vs Monte-Carlo" in res.stdout
    assert (tmp_path / "r" / "ensembles.png").read_bytes()[:4] == b"\x89PNG"
    rows = (tmp_path / "r" / "ensembles.csv").read_text().splitlines()
    assert len(rows) == 3 and "all_acc" in rows[0]
    assert "ensembles.png" in (tmp_path / "r" / "report.md").read_text()


def test_runs_without_outputs(sweep: Path, tmp_path: Path) -> None:
    """A corrupt file is a warning and that run is left out; no outputs at all is one error."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    (copy / "mlp-none-adam-s3" / "test_outputs.npz").write_bytes(b"not a zip")
    res = cli("compare", str(copy), "--ensemble", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert "mlp-none-adam-s3: test_outputs.npz unreadable" in res.stderr
    members = {r["reg"]: r["members"] for r in json.loads(res.stdout)["ensembles"]}
    assert members == {"none": 3, "dropout": 4}
    for f in copy.glob("*/test_outputs.npz"):
        f.unlink()
    res = cli("compare", str(copy), "--ensemble")
    assert res.returncode == 2
    assert res.stderr.startswith("error: --ensemble: no finished run has readable test outputs")
    assert "Traceback" not in res.stderr


def test_mc_dropout_with_p0_is_the_plain_evaluation() -> None:
    cfg = make_cfg("reg=dropout", "reg.dropout.input=0.2")
    d = data.load(cfg.data, torch.device("cpu"), 0)
    model = models.build(cfg, d.shape, d.num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    plain = diagnostics.predict(model, d.x_test, 128, _noop())
    mc = diagnostics.mc_dropout(model, d.x_test, 128, _noop(), passes=4, seed=1)
    assert torch.allclose(mc, plain.log_softmax(1), atol=1e-6)
    assert diagnostics.scores(mc, d.y_test)[1] == diagnostics.scores(plain, d.y_test)[1]


def test_mc_dropout_samples_and_leaves_the_global_generator() -> None:
    cfg = make_cfg("reg=dropout")
    d = data.load(cfg.data, torch.device("cpu"), 0)
    model = models.build(cfg, d.shape, d.num_classes)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = diagnostics.mc_dropout(model, d.x_test, 128, _noop(), passes=3, seed=7)
    assert torch.equal(torch.get_rng_state(), before)  # a fused job's other members' masks
    b = diagnostics.mc_dropout(model, d.x_test, 128, _noop(), passes=3, seed=7)
    c = diagnostics.mc_dropout(model, d.x_test, 128, _noop(), passes=3, seed=8)
    plain = diagnostics.predict(model, d.x_test, 128, _noop()).log_softmax(1)
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, plain)
    assert not model.training and not any(m.training for m in model.modules())


def _noop():
    from contextlib import nullcontext

    return nullcontext()


def test_ensemble_statistics_on_known_arrays() -> None:
    labels = np.array([0, 1, 1])
    p = np.array(
        [
            [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]],  # right, wrong, right
            [[0.4, 0.6], [0.1, 0.9], [0.3, 0.7]],  # wrong, right, right
            [[0.7, 0.3], [0.3, 0.7], [0.6, 0.4]],  # right, right, wrong
            [[0.2, 0.8], [0.2, 0.8], [0.1, 0.9]],  # wrong, right, right
        ]
    )
    lp = np.log(p)
    mean2 = [
        p[:2].mean(0),
        p[2:].mean(0),
    ]  # [[.65,.35],[.35,.65],[.25,.75]], [[.45,.55],[.25,.75],[.35,.65]]
    assert stats.ensemble_curve(lp, labels, [1, 2]) == [
        pytest.approx((8 / 12, float(-np.log(p[:, [0, 1, 2], labels]).mean()), 4)),
        pytest.approx(
            (5 / 6, float(-np.mean([np.log(m[[0, 1, 2], labels]).mean() for m in mean2])), 2)
        ),
    ]
    gain = stats.ensemble_gain(lp, labels, 0.95)
    d = (p.mean(0).argmax(1) == labels) - (p.argmax(2) == labels).mean(0)
    assert gain.diff == pytest.approx(d.mean())
    assert (gain.low, gain.high) == pytest.approx(
        tuple(sps.ttest_1samp(d, 0).confidence_interval())
    )
    assert ensemble_sizes(8) == [1, 2, 4] and ensemble_sizes(10) == [1, 2, 4, 8]
    assert ensemble_sizes(1) == [1] and ensemble_sizes(3) == [1, 2]


def _write_outputs(run: Path, labels: np.ndarray, classes: int, right: np.ndarray) -> None:
    """Log-softmax outputs whose argmax is the true label where `right`, the next class elsewhere."""
    logits = np.zeros((len(labels), classes))
    guess = np.where(right, labels, (labels + 1) % classes)
    logits[np.arange(len(labels)), guess] = 5.0
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.savez(run / "test_outputs.npz", labels=labels, log_probs=lp.astype(np.float32))


def test_unusable_outputs_leave_out_that_run_not_the_valid_ones(tmp_path: Path) -> None:
    """Issue 27: seed 0's outputs on 5 examples (all right) used to become the group's test set,
    pushing out the valid seed 1 (accuracy 1.0000 shown); outputs with other classes crashed."""
    from tests.runfolders import make_run

    labels = np.arange(180) % 10  # digits, test_fraction 0.1: 180 test examples
    right = np.arange(180) % 4 != 0  # 75% right
    bad = make_run(tmp_path, "s/digits-a-s0", seed=0, data="digits", optim="adam")
    _write_outputs(bad, labels[:5], 10, np.ones(5, bool))
    good = make_run(tmp_path, "s/digits-a-s1", seed=1, data="digits", optim="adam")
    _write_outputs(good, labels, 10, right)
    for seed, classes in enumerate((10, 4, 10)):  # a group of 3: seed 1 scores only 4 classes
        run = make_run(tmp_path, f"s/digits-b-s{seed}", seed=seed, data="digits", optim="sgd")
        _write_outputs(run, labels % 4, classes, right)
    res = cli("compare", str(tmp_path / "s"), "--ensemble", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert "RuntimeWarning" not in res.stderr and "Traceback" not in res.stderr
    assert f"{bad}: test_outputs.npz holds 5 test outputs, its test split has 180" in res.stderr
    assert "digits-a-s1" not in res.stderr
    assert "digits-b-s1: its test log_probs are (180, 4), not those of 2 of" in res.stderr
    records = {r["optim"]: r for r in json.loads(res.stdout)["ensembles"]}
    assert records["adam"]["members"] == 1 and records["adam"]["all_acc"] == pytest.approx(0.75)
    assert records["sgd"]["members"] == 2 and records["sgd"]["all_acc"] == pytest.approx(0.75)
