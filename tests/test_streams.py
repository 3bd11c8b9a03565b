"""Random streams (common random numbers), the per-run diagnostics, label noise, max-norm, warnings."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from regbench import data, diagnostics, models, pitfalls
from regbench.datasets import val_size
from regbench.run import checkpoint, streams
from regbench.run.job import run
from regbench.seeds import STREAMS
from tests.conftest import cli, make_cfg, summary

NARROW = {
    "mlp": ["model.hidden=[32,16]"],
    "cnn": ["model.channels=[4,8]", "model.hidden=16"],
    "vgg": ["model.width=4"],
    "resnet": ["model.width=4", "model.depth=20"],
}
PAIRED_REGS = ["none", "l2", "dropout", "aug", "bn", "[dropout,aug]"]


def initial_weights(cfg) -> list[torch.Tensor]:
    net = models.build(cfg, (1, 8, 8), 10)
    return [m.weight.detach().clone() for m in models.weight_layers(net)]


@pytest.mark.parametrize("model", list(NARROW))
def test_same_seed_same_initial_weights_whatever_the_regularizer(model: str) -> None:
    """A conv/linear layer gets the same weights for the same seed even where bn/dropout layers
    are inserted around it (its ordinal among weight layers is what seeds it)."""
    base = initial_weights(make_cfg(f"model={model}", *NARROW[model], "seed=3", "reg=none"))
    for reg in PAIRED_REGS[1:] + ["[bn,dropout]", "dropout reg.dropout.where=all"]:
        reg, *extra = reg.split()
        cfg = make_cfg(f"model={model}", *NARROW[model], "seed=3", f"reg={reg}", *extra)
        got = initial_weights(cfg)
        assert len(got) == len(base) and all(
            torch.equal(a, b) for a, b in zip(got, base, strict=True)
        )
    other = initial_weights(make_cfg(f"model={model}", *NARROW[model], "seed=4", "reg=none"))
    assert not torch.equal(other[0], base[0])


def record_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> list:
    """Train 2 epochs in-process; return every batch's training indices, in order."""
    seen: list[torch.Tensor] = []
    original = streams.Streams.permutation

    def spy(self, n: int, device: torch.device) -> torch.Tensor:
        perm = original(self, n, device)
        seen.append(perm.clone())
        return perm

    monkeypatch.setattr(streams.Streams, "permutation", spy)
    cfg = make_cfg(
        f"out_dir={tmp_path}", "trainer.progress=none", "data.subset=200", "trainer.epochs=2",
        "model.hidden=[32]", *overrides,
    )  # fmt: skip
    run(cfg)
    return [p.tolist() for p in seen]


def test_same_seed_same_batch_order_whatever_the_regularizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = record_batches(tmp_path / "none", monkeypatch, "reg=none", "seed=1")
    assert len(base) == 2 and base[0] != base[1]  # a fresh order each epoch
    for i, reg in enumerate(PAIRED_REGS[1:]):
        got = record_batches(tmp_path / str(i), monkeypatch, f"reg={reg}", "seed=1")
        assert got == base, reg
    assert record_batches(tmp_path / "s2", monkeypatch, "reg=none", "seed=2") != base


def stream_fingerprint(cfg) -> dict[str, object]:
    """What each source would draw first: init weights, a permutation, aug and dropout draws."""
    rng = streams.Streams(cfg, torch.device("cpu"))
    rng.start_dropout()
    return {
        "init": initial_weights(cfg)[0].sum().item(),
        "order": rng.permutation(50, torch.device("cpu")).tolist(),
        "aug": torch.rand(4, generator=rng.aug).tolist(),
        "dropout": torch.rand(4).tolist(),
    }


@pytest.mark.parametrize("source", STREAMS)
def test_pinning_one_stream_changes_it_and_nothing_else(source: str) -> None:
    base = stream_fingerprint(make_cfg("seed=0"))
    pinned = stream_fingerprint(make_cfg("seed=0", f"seeds.{source}=7"))
    assert pinned[source] != base[source]
    assert {k: v for k, v in pinned.items() if k != source} == {
        k: v for k, v in base.items() if k != source
    }
    # a pin is the stream that seed would give: seeds.<source>=7 draws what seed=7 draws
    assert pinned[source] == stream_fingerprint(make_cfg("seed=7"))[source]


def test_variance_options_let_exactly_one_source_follow_seed() -> None:
    for option in ("init", "order", "aug", "dropout"):
        a = stream_fingerprint(make_cfg(f"seeds={option}", "seed=1"))
        b = stream_fingerprint(make_cfg(f"seeds={option}", "seed=2"))
        assert [k for k in a if a[k] != b[k]] == [option]
    split = make_cfg("seeds=split", "seed=5")
    assert split.data.split_seed is None and data.split_seed(split.data, 5) == 5
    assert stream_fingerprint(split) == stream_fingerprint(make_cfg("seeds=split", "seed=6"))
    everything = make_cfg("seeds=everything", "seed=5")
    assert everything.data.split_seed is None and everything.seeds.order is None


def test_init_options_keep_their_distribution() -> None:
    """default: PyTorch's kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), biases likewise."""
    net = models.build(make_cfg("model.hidden=[512]"), (1, 32, 32), 10)
    lin = net[1]
    bound = 1 / math.sqrt(1024)
    assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.99 * bound
    assert lin.weight.var().item() == pytest.approx(bound**2 / 3, rel=0.02)
    assert lin.bias.abs().max() <= bound and lin.bias.std() > 0.5 * bound / math.sqrt(3)


def test_split_seed_null_follows_seed_and_label_noise_touches_training_labels_only() -> None:
    clean = data.load(make_cfg().data, torch.device("cpu"), seed=0)
    noisy = data.load(make_cfg("data.label_noise=0.4").data, torch.device("cpu"), seed=0)
    n = len(clean.y_train)
    flipped = (clean.y_train != noisy.y_train).sum().item()
    assert flipped == round(0.4 * n)
    assert torch.equal(clean.x_train, noisy.x_train)  # same split, same images
    assert torch.equal(clean.y_val, noisy.y_val) and torch.equal(clean.y_test, noisy.y_test)
    a = data.load(make_cfg("data.split_seed=null").data, torch.device("cpu"), seed=1)
    b = data.load(make_cfg("data.split_seed=1").data, torch.device("cpu"), seed=0)
    assert torch.equal(a.y_val, b.y_val) and not torch.equal(a.y_val, clean.y_val)


def ece_by_hand(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            acc = (pred[inside] == labels[inside]).mean()
            total += inside.sum() / len(labels) * abs(acc - conf[inside].mean())
    return total


def test_ece_and_weight_norm_equal_independent_computations() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=gen) * 3
    labels = torch.randint(0, 10, (500,), generator=gen)
    probs = logits.softmax(1)
    got = diagnostics.calibration_error(probs, labels)
    assert got == pytest.approx(ece_by_hand(probs.double().numpy(), labels.numpy()), abs=1e-6)
    net = models.build(make_cfg("reg=bn"), (1, 8, 8), 10)
    expected = math.sqrt(
        sum(
            float((p.detach().double() ** 2).sum()) for n, p in net.named_parameters() if p.ndim > 1
        )
    )
    assert diagnostics.weight_norm(models.decayed(net)) == pytest.approx(expected, rel=1e-6)


def test_overfit_epoch_is_prechelts_gl5() -> None:
    assert diagnostics.overfit_epoch([1.0, 0.8, 0.83, 0.85]) == 4  # 0.85 / 0.8 = +6.25 %
    assert diagnostics.overfit_epoch([1.0, 0.9, 0.93, 0.8]) is None  # +3.3 % at most
    assert diagnostics.overfit_epoch([]) is None


def test_diagnostics_in_every_run_folder(tmp_path: Path) -> None:
    r = cli(
        "train", f"out_dir={tmp_path}", "trainer.epochs=3", "data.subset=300", "reg=[dropout,maxnorm]",
        "reg.dropout.input=0.2", "reg.maxnorm.c=1.5", "trainer.progress=none",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (run_dir,) = tmp_path.iterdir()
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    for row in rows:
        assert float(row["gen_gap"]) == pytest.approx(
            float(row["train_acc"]) - float(row["val_acc"])
        )
        assert 0 <= float(row["val_ece"]) <= 1 and float(row["weight_norm"]) > 0
    s = summary(run_dir)
    assert s["final_val_acc"] == pytest.approx(float(rows[-1]["val_acc"]))
    assert 0 <= s["test_ece"] <= 1 and "overfit_epoch" in s
    # the tested (last) weights: norm as summary.json says, every unit's incoming norm <= c
    weights = runs_weights(run_dir / "last.pt")
    assert s["weight_norm"] == pytest.approx(math.sqrt(sum((w**2).sum().item() for w in weights)))
    assert all(w.flatten(1).norm(dim=1).max() <= 1.5 + 1e-5 for w in weights)


def runs_weights(path: Path) -> list[torch.Tensor]:
    state = checkpoint.load(path)["model"]
    return [v for v in state.values() if v.ndim > 1]


def test_input_dropout_is_the_first_layer_and_off_in_eval() -> None:
    net = models.build(make_cfg("reg=dropout", "reg.dropout.input=0.2"), (1, 8, 8), 10)
    first = next(iter(net.children()))
    assert isinstance(first, nn.Dropout) and first.p == 0.2
    x = torch.randn(4, 1, 8, 8)
    net.eval()
    assert torch.equal(net(x), net(x))
    plain = models.build(make_cfg("reg=dropout"), (1, 8, 8), 10)
    assert not any(isinstance(m, nn.Dropout) and m.p == 0.2 for m in plain.modules())


WARNED = {
    "l2 with adam": (["reg=l2"], "not weight decay"),
    "l2 with rmsprop": (["reg=l2", "optim=rmsprop"], "not weight decay"),
    "channel dropout with bn": (
        ["model=cnn", "reg=[dropout,bn]", "reg.dropout.where=all"],
        "variance",
    ),
    "bn with small batches": (["reg=bn", "trainer.batch_size=8"], "fewer than 16"),
    "flip on digits": (["reg=aug", "reg.aug.flip=0.5"], "mirror-symmetric"),
    "earlystop with a tiny validation split": (
        ["reg=earlystop", "data.val_fraction=0.05"],
        "validation split of 72",
    ),
    "pca for a conv net": (["model=cnn", "data.preprocess=pca"], "use data.preprocess=zca"),
}


@pytest.mark.parametrize("case", list(WARNED))
def test_each_warning_fires_for_its_combination_only(case: str) -> None:
    overrides, text = WARNED[case]
    cfg = make_cfg(*overrides)
    (line,) = pitfalls.warnings(cfg, val_size(cfg.data))
    assert text in line
    clean = make_cfg(*[o for o in overrides if not o.startswith(("reg.", "trainer.", "data."))])
    fixed = [w for w in pitfalls.warnings(clean, val_size(clean.data)) if text in w]
    assert fixed == [] or case.startswith("l2")  # l2 + adam warns on its own


def test_clean_configs_warn_nothing() -> None:
    for overrides in ([], ["reg=[dropout,bn]", "model=cnn"], ["reg=l2", "optim=sgd"], ["reg=aug"]):
        cfg = make_cfg(*overrides)
        assert pitfalls.warnings(cfg, val_size(cfg.data)) == []


def test_warning_is_one_stderr_line_and_the_run_goes_on(tmp_path: Path) -> None:
    r = cli("train", f"out_dir={tmp_path}", "reg=l2", "trainer.epochs=1", "data.subset=100")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "reg=wd or optim=adamw" in lines[0]
    d = cli("sweep", f"out_dir={tmp_path}", "reg=l2,none", "seed=0,1", "--dry-run")
    assert d.returncode == 0, d.stderr
    warned = [ln for ln in d.stdout.splitlines() if "not weight decay" in ln]
    assert len(warned) == 1 and "and 1 more run:" in warned[0]  # the two l2 runs, once


def test_variance_study_plans_six_sources_times_ten_values(tmp_path: Path) -> None:
    r = cli("sweep", "study=variance", f"out_dir={tmp_path}", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "60 runs, 0 already done, 60 to run" in r.stdout
    for option in ("init", "order", "aug", "dropout", "split", "everything"):
        assert f"seeds={option}" in r.stdout


def test_regime_study_plans_size_by_noise_by_reg(tmp_path: Path) -> None:
    r = cli("sweep", "study=regime", f"out_dir={tmp_path}", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "72 runs, 0 already done, 72 to run" in r.stdout
