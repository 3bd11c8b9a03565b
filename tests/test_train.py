"""regbench train: the CLI, every model x regularizer x optimizer, and the loop's guarantees."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from regbench import data, diagnostics, folder, models
from regbench.config import group_options
from regbench.run import checkpoint, device, step

from .conftest import cli, make_cfg, summary, train_inprocess

FILES = ("config.yaml", "metrics.csv", "summary.json", "best.pt", "last.pt", "test_outputs.npz")
TIMING = ("seconds", "samples_per_s")


def metrics(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def untimed(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


# ---- the CLI, as a new user meets it ------------------------------------------------------------
def test_default_train_reaches_95_percent_and_writes_the_run_folder(tmp_path):
    res = cli("train", f"out_dir={tmp_path}")
    assert res.returncode == 0, res.stderr
    run_dir = tmp_path / "mlp-none-adam-s0"
    assert all((run_dir / f).is_file() for f in FILES)
    s = summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 20
    assert s["test_acc"] >= 0.95
    assert s["gen_gap"] == pytest.approx(s["train_acc_at_best"] - s["best_val_acc"])
    rows = metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 21))
    assert list(rows[0]) == folder.METRICS
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"] == {"name": "mlp", "hidden": [256, 128], "activation": "relu"}
    assert saved["reg"] == {"none": {}}
    assert "test_acc" in res.stdout  # the final summary table


def test_help_lists_every_group_and_option_from_conf():
    res = cli("--help")
    assert res.returncode == 0
    for group in ("data", "model", "reg", "optim", "sched", "init"):
        line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith(group + " "))
        assert all(opt in line for opt in group_options(group))


def test_cfg_prints_the_composed_config():
    res = cli("train", "--cfg", "model=cnn", "reg=[dropout,l2]", "optim.lr=0.01")
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["model"]["name"] == "cnn" and list(cfg["reg"]) == ["dropout", "l2"]
    assert cfg["optim"]["lr"] == 0.01


def test_several_regularizers_at_once(tmp_path):
    res = cli("train", "model=cnn", "reg=[bn,l2,aug]", "trainer.epochs=2", f"out_dir={tmp_path}")
    assert res.returncode == 0, res.stderr
    run_dir = tmp_path / "cnn-bn+l2+aug-adam-s0"
    assert summary(run_dir)["status"] == "completed"
    state = torch.load(run_dir / "best.pt", weights_only=True)["model"]
    assert any(k.endswith("running_mean") for k in state)  # bn layers are in the model


def test_divergence_ends_the_run_with_status_and_nonzero_exit(tmp_path):
    res = cli("train", "optim=sgd", "optim.lr=1e6", "trainer.epochs=3", f"out_dir={tmp_path}")
    assert res.returncode == 1
    assert "diverged" in res.stderr and "Traceback" not in res.stderr
    s = summary(tmp_path / "mlp-none-sgd-s0")
    assert s["status"] == "diverged" and s["test_acc"] is None


def test_run_names_are_unique(tmp_path):
    first = train_inprocess(tmp_path, "trainer.epochs=1")
    second = train_inprocess(tmp_path, "trainer.epochs=1")
    assert (first.name, second.name) == ("mlp-none-adam-s0", "mlp-none-adam-s0-1")


# ---- every model x every single regularizer x sgd and adam, one epoch ----------------------------
NARROW = {"vgg": ["model.width=8"], "resnet": ["model.width=8"]}  # every layer, fewer channels


@pytest.mark.parametrize("optim", ["sgd", "adam"])
@pytest.mark.parametrize("reg", group_options("reg"))
@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_reg_optim_completes(tmp_path, model, reg, optim):
    run_dir = train_inprocess(
        tmp_path,
        f"model={model}",
        *NARROW.get(model, []),
        f"reg={reg}",
        f"optim={optim}",
        "trainer.epochs=1",
    )
    assert all((run_dir / f).is_file() for f in FILES)
    s = summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 1
    assert 0.0 <= s["test_acc"] <= 1.0 and len(metrics(run_dir)) == 1


# every non-relu activation twice across the families, with the pooling, initialisations,
# preprocessing and augmentations of the decks' knobs riding along (8 one-epoch runs)
DECKS = {
    "mlp": [("sigmoid", "normal_1", "minmax"), ("elu", "normal_0.01", "mean_image")],
    "cnn": [("tanh", "glorot_uniform", "none"), ("leaky_relu", "he_normal", "minmax")],
    "vgg": [("sigmoid", "glorot_normal", "mean_image"), ("elu", "default", "none")],
    "resnet": [("tanh", "he_normal", "standardize"), ("leaky_relu", "normal_0.01", "minmax")],
}


@pytest.mark.parametrize(
    "model,act,init,prep", [(m, *row) for m, rows in DECKS.items() for row in rows]
)
def test_every_model_trains_with_the_decks_knobs(tmp_path, model, act, init, prep):
    pool = ["model.pool=avg"] if model in ("cnn", "vgg") else []
    run_dir = train_inprocess(
        tmp_path, f"model={model}", *NARROW.get(model, []), f"model.activation={act}", *pool,
        f"init={init}", f"data.preprocess={prep}", "reg=[bn,aug]", "reg.aug.shear=15",
        "reg.aug.scale=0.2", "optim=sgd", "trainer.epochs=1",
    )  # fmt: skip
    s = summary(run_dir)
    assert s["status"] == "completed" and s["epochs_run"] == 1
    assert 0.0 <= s["test_acc"] <= 1.0


# ---- models: shapes, switches, initialisation ---------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize(
    "model", ["mlp", "cnn", "vgg", "vgg model.depth=16", "resnet", "resnet model.depth=20"]
)
def test_every_model_builds_for_any_input_shape(model, shape):
    name, *extra = model.split()
    cfg = make_cfg(f"model={name}", *extra, "reg=[bn,dropout]")
    net = models.build(cfg, shape, 100).eval()
    assert net(torch.randn(2, *shape)).shape == (2, 100)


@pytest.mark.parametrize("model", group_options("model"))
def test_models_have_no_dropout_or_bn_unless_selected(model):
    def kinds(reg: str) -> set[type]:
        net = models.build(make_cfg(f"model={model}", f"reg={reg}"), (1, 8, 8), 10)
        return {type(m) for m in net.modules()}

    norm_or_drop = {nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d}
    assert not kinds("none") & norm_or_drop
    assert kinds("bn") & {nn.BatchNorm1d, nn.BatchNorm2d}
    assert kinds("dropout") & {nn.Dropout, nn.Dropout2d}


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    net = models.build(make_cfg("reg=dropout", "reg.dropout.p=0.5"), (1, 8, 8), 10)
    x = torch.randn(16, 1, 8, 8)
    net.eval()
    out = net(x)
    assert torch.equal(out, net(x))
    net.train()
    assert not torch.allclose(net(x), net(x))
    for m in net.modules():  # the same net with dropout switched off is what eval computed
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    assert torch.allclose(net(x), out)


def test_batch_norm_uses_batch_stats_in_training_and_running_stats_in_eval():
    torch.manual_seed(0)
    net = models.build(make_cfg("reg=bn", "model.hidden=[32]"), (1, 8, 8), 10)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm1d))
    x = torch.randn(64, 1, 8, 8) * 3 + 1
    net.train()
    net(x)  # updates the running statistics
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    net.eval()
    # in eval one sample's output does not depend on the rest of the batch ...
    assert torch.allclose(net(x)[:1], net(x[:1]), atol=1e-5)
    # ... and equals the layer computed by hand with the running statistics
    h = net[1](net[0](x))  # flatten, linear
    by_hand = (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    assert torch.allclose(bn(h), by_hand, atol=1e-5)
    net.train()  # batch statistics: the same samples come out differently in another batch
    assert not torch.allclose(net(x)[:2], net(x[:2]), atol=1e-3)


@pytest.mark.parametrize("scheme", ["glorot_uniform", "glorot_normal", "he_normal"])
def test_initialisation_follows_the_formulas(scheme):
    torch.manual_seed(0)
    net = models.build(make_cfg(f"init={scheme}", "model.hidden=[512]"), (1, 32, 32), 10)
    w = net[1].weight  # 1024 -> 512
    fan_in, fan_out = w.shape[1], w.shape[0]
    if scheme == "glorot_uniform":
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    else:
        var = 2 / (fan_in + fan_out) if scheme == "glorot_normal" else 2 / fan_in
        assert w.var().item() == pytest.approx(var, rel=0.02)
    assert torch.count_nonzero(net[1].bias) == 0


# ---- regularizers in the loop -------------------------------------------------------------------
def test_l2_penalty_equals_lambda_over_2n_sum_of_squared_weights():
    cfg = make_cfg("reg=[l2,bn]", "reg.l2.lam=0.7", "model.hidden=[5]")
    net = models.build(cfg, (1, 2, 2), 3)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(2.0)
    # weights: 4x5 + 5x3 = 35 entries of 2.0; bn weight/bias and the last bias are excluded
    n = 100
    expected = 0.7 / (2 * n) * 35 * 4.0
    with torch.no_grad():
        got = step.penalty(step.Knobs.of(cfg.reg), models.decayed(net), n)
    assert float(got) == pytest.approx(expected)
    l1 = make_cfg("reg=l1", "reg.l1.lam=0.3").reg
    with torch.no_grad():
        got = step.penalty(step.Knobs.of(l1), models.decayed(net), n)
    assert float(got) == pytest.approx(0.3 / n * 35 * 2.0)


def test_early_stopping_stops_after_patience_and_best_checkpoint_reproduces(tmp_path):
    run_dir = train_inprocess(
        tmp_path,
        "reg=earlystop",
        "reg.earlystop.monitor=val_acc",
        "reg.earlystop.patience=3",
        "optim.lr=0.02",
        "trainer.epochs=40",
    )
    s, rows = summary(run_dir), metrics(run_dir)
    assert s["status"] == "early_stopped" and s["epochs_run"] < 40
    assert s["epochs_run"] == s["best_epoch"] + 3  # exactly `patience` epochs without improvement
    val = [float(r["val_acc"]) for r in rows]
    assert max(val) == val[s["best_epoch"] - 1] == s["best_val_acc"]
    assert all(v <= s["best_val_acc"] for v in val[s["best_epoch"] :])
    # the saved best checkpoint reproduces the best validation accuracy and the reported test score
    cfg = make_cfg(f"out_dir={tmp_path}", "data.subset=256", "reg=earlystop")
    d = data.load(cfg.data, torch.device("cpu"))
    net = models.build(cfg, d.shape, d.num_classes)
    ck = checkpoint.load(run_dir / "best.pt")
    assert ck["epoch"] == s["best_epoch"]
    net.load_state_dict(ck["model"])
    amp = device.autocast(torch.device("cpu"), "fp32")
    assert diagnostics.evaluate(net, d.x_val, d.y_val, 512, amp)[1] == s["best_val_acc"]
    assert diagnostics.evaluate(net, d.x_test, d.y_test, 512, amp)[1] == s["test_acc"]


def test_early_stopping_counts_min_delta(tmp_path):
    # no later epoch can beat the first by 1e9: the run stops right after `patience` epochs
    run_dir = train_inprocess(
        tmp_path,
        "reg=earlystop",
        "reg.earlystop.min_delta=1e9",
        "reg.earlystop.patience=2",
        "trainer.epochs=10",
    )
    s = summary(run_dir)
    assert (s["status"], s["best_epoch"], s["epochs_run"]) == ("early_stopped", 1, 3)


def test_augmentation_changes_training_batches_and_never_evaluation_batches(tmp_path, monkeypatch):
    seen: dict[str, list[torch.Tensor]] = {"train": [], "eval": []}
    augmented: list[torch.Tensor] = []
    build, augment = models.build, data.augment

    def spy_build(*a, **k):
        net = build(*a, **k)
        net.register_forward_pre_hook(
            lambda m, inp: seen["train" if m.training else "eval"].append(inp[0].clone())
        )
        return net

    def spy_augment(x, cfg, gen):
        out = augment(x, cfg, gen)
        augmented.append(out)
        return out

    monkeypatch.setattr(models, "build", spy_build)
    monkeypatch.setattr(data, "augment", spy_augment)
    train_inprocess(tmp_path, "reg=aug", "trainer.epochs=2", "trainer.batch_size=64")
    d = data.load(make_cfg("data.subset=256").data, torch.device("cpu"))
    assert len(augmented) == len(seen["train"]) == 2 * 4  # every training batch, both epochs
    rows = {tuple(r.flatten().tolist()) for r in d.x_train}
    assert all(torch.equal(a, b) for a, b in zip(augmented, seen["train"], strict=True))
    assert not any(tuple(x.flatten().tolist()) in rows for x in torch.cat(seen["train"]))
    # evaluation sees the clean splits, untouched: per epoch train subset + val, then test once
    clean = torch.cat([d.x_train, d.x_val])
    evals = torch.cat(seen["eval"])
    assert torch.equal(evals, torch.cat([clean, clean, d.x_test]))


@pytest.mark.parametrize(
    "knob",
    [
        "flip=1.0",
        "translate=2",
        "rotate=30",
        "brightness=0.5",
        "contrast=0.5",
        "noise=0.3",
        "erase=1.0",
    ],
)
def test_each_augmentation_changes_a_batch_and_zero_strength_is_identity(knob):
    off = ["flip=0", "translate=0", "rotate=0", "brightness=0", "contrast=0", "noise=0", "erase=0"]
    base = make_cfg("reg=aug", *[f"reg.aug.{o}" for o in off]).reg.aug
    cfg = make_cfg("reg=aug", *[f"reg.aug.{o}" for o in off], f"reg.aug.{knob}").reg.aug
    torch.manual_seed(0)
    x = torch.randn(32, 1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(data.augment(x, base, gen), x)
    y = data.augment(x, cfg, gen)
    assert y.shape == x.shape and not torch.equal(y, x)
    gen.manual_seed(0)
    data.augment(x, base, gen)
    assert torch.equal(data.augment(x, data.knobs(cfg), gen), y)  # fit's plain-number knobs


def test_same_seed_gives_the_same_metrics_twice_on_cpu(tmp_path):
    args = ("reg=[dropout,aug]", "sched=cosine", "trainer.epochs=3")
    a = train_inprocess(tmp_path, *args)
    b = train_inprocess(tmp_path, *args)
    c = train_inprocess(tmp_path, *args, "seed=1")
    assert untimed(metrics(a)) == untimed(metrics(b))
    assert untimed(metrics(a)) != untimed(metrics(c))
    drop = ("wall_seconds", "run_name")
    sa, sb = ({k: v for k, v in summary(r).items() if k not in drop} for r in (a, b))
    assert sa == sb


# ---- real datasets through the real loaders ------------------------------------------------------
def test_mnist_from_the_original_files_trains_a_cnn(tmp_path, mnist_root):
    cfg = make_cfg("data=mnist", f"data.root={mnist_root}", "data.subset=2000")
    d = data.load(cfg.data, torch.device("cpu"))
    assert d.shape == (1, 28, 28) and d.num_classes == 10
    assert len(d.x_val) == 6000 and len(d.x_test) == 10000 and len(d.x_train) == 2000
    run_dir = train_inprocess(
        tmp_path,
        "data=mnist",
        f"data.root={mnist_root}",
        "data.subset=2000",
        "data.val_fraction=0.02",
        "model=cnn",
        "trainer.epochs=1",
    )
    s = summary(run_dir)
    assert s["status"] == "completed" and s["test_acc"] > 0.8


def test_cifar10_layout_loads_through_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    # CIFAR is too large to ship for tests: write a small file set in its exact pickle format;
    # only torchvision's md5 check of the official files is bypassed
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, 20).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [str(i) for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    cfg = make_cfg("data=cifar10", f"data.root={tmp_path}")
    d = data.load(cfg.data, torch.device("cpu"))
    assert d.shape == (3, 32, 32) and len(d.x_train) + len(d.x_val) == 100 and len(d.x_test) == 20
    assert torch.allclose(d.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
