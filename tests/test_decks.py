"""The lecture decks' knobs: activations, pooling, the failing initialisations, input preprocessing,
shear / scale / hue augmentation, `regbench inspect`, and the studies that use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from regbench import data, inspection, models, pitfalls
from tests.conftest import cli, make_cfg

NARROW = {
    "mlp": ["model.hidden=[16,16]"],
    "cnn": ["model.channels=[4,8]", "model.hidden=16"],
    "vgg": ["model.width=4"],
    "resnet": ["model.width=4", "model.depth=20"],
}
ACTS = {
    "relu": (nn.ReLU, F.relu),
    "leaky_relu": (nn.LeakyReLU, lambda h: F.leaky_relu(h, 0.01)),
    "elu": (nn.ELU, F.elu),
    "tanh": (nn.Tanh, torch.tanh),
    "sigmoid": (nn.Sigmoid, torch.sigmoid),
}


def build(*overrides: str, shape: tuple[int, int, int] = (1, 8, 8)) -> nn.Module:
    return models.build(make_cfg(*overrides), shape, 10)


# ---- activations and pooling ---------------------------------------------------------------------
@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("model", list(NARROW))
def test_each_activation_is_the_layer_built(model: str, act: str) -> None:
    net = build(f"model={model}", *NARROW[model], f"model.activation={act}", "reg=bn")
    kind = ACTS[act][0]
    found = {type(m) for m in net.modules() if isinstance(m, tuple(v[0] for v in ACTS.values()))}
    assert found == {kind}
    # one after every hidden layer (mlp/cnn/vgg), after the stem and twice per block (resnet)
    n_weight_layers = len(models.weight_layers(net))
    n_acts = sum(isinstance(m, kind) for m in net.modules())
    if model == "resnet":
        blocks = [m for m in net.modules() if isinstance(m, models.BasicBlock)]
        assert n_acts == 1 + 2 * len(blocks)
    else:
        assert n_acts == n_weight_layers - 1  # all but the output layer


@pytest.mark.parametrize("act", list(ACTS))
def test_mlp_hidden_layer_computes_the_activation(act: str) -> None:
    net = build("model.hidden=[16]", f"model.activation={act}").eval()
    x = torch.randn(5, 1, 8, 8)
    lin, out = net[1], net[-1]
    expected = out(ACTS[act][1](lin(x.flatten(1))))
    assert torch.allclose(net(x), expected, atol=1e-6)


@pytest.mark.parametrize("model", ["cnn", "vgg"])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_each_pooling_choice_is_the_layer_built(model: str, pool: str) -> None:
    net = build(f"model={model}", *NARROW[model], f"model.pool={pool}", shape=(1, 32, 32))
    kinds = {type(m) for m in net.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))}
    assert kinds == {nn.MaxPool2d if pool == "max" else nn.AvgPool2d}
    layer = next(m for m in net.modules() if isinstance(m, tuple(kinds)))
    x = torch.arange(16.0).view(1, 1, 4, 4)
    want = x.view(1, 1, 2, 2, 2, 2).permute(0, 1, 2, 4, 3, 5).flatten(-2)
    assert torch.equal(layer(x), want.amax(-1) if pool == "max" else want.mean(-1))


def test_pool_is_no_key_of_mlp_and_resnet() -> None:
    for model in ("mlp", "resnet"):
        r = cli("train", f"model={model}", "model.pool=avg", "--cfg")
        assert r.returncode == 2 and "unknown key 'model.pool'" in r.stderr


# ---- initialisation ----------------------------------------------------------------------------
@pytest.mark.parametrize("scheme,std", [("normal_0.01", 0.01), ("normal_1", 1.0)])
def test_fixed_normal_inits_draw_from_their_distribution(scheme: str, std: float) -> None:
    net = build(f"init={scheme}", "model.hidden=[512,256]", shape=(1, 32, 32))
    layers = models.weight_layers(net)
    for m in layers:  # whatever the layer's size: 1024->512, 512->256, 256->10
        w = m.weight.detach().double().flatten()
        assert abs(w.mean().item()) < 4 * std / len(w) ** 0.5  # 4 standard errors
        assert w.std().item() == pytest.approx(std, rel=4 / (2 * len(w)) ** 0.5 + 1e-3)
        assert stats.kstest(w.numpy() / std, "norm").pvalue > 1e-3
        assert torch.count_nonzero(m.bias) == 0
    # each layer from its own generator (the init stream, by ordinal): no two layers share draws
    a, b = layers[0].weight.flatten()[:100], layers[1].weight.flatten()[:100]
    assert not torch.equal(a, b)
    again = build(f"init={scheme}", "model.hidden=[512,256]", shape=(1, 32, 32))
    assert torch.equal(models.weight_layers(again)[1].weight, layers[1].weight)


# ---- preprocessing -----------------------------------------------------------------------------
@pytest.fixture
def graded_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Digits whose brightness grows with the index: the whole pool's min/max/mean differ from a
    50-example training split's, so a statistic taken from the wrong split shows."""
    original = data._digits

    def graded() -> tuple[np.ndarray, np.ndarray]:
        x, y = original()
        return x * np.linspace(0.5, 3.0, len(x), dtype=np.float32)[:, None, None, None], y

    monkeypatch.setattr(data, "_digits", graded)


def load(*overrides: str) -> data.Splits:
    return data.load(make_cfg("data.subset=50", *overrides).data, torch.device("cpu"))


def test_minmax_lies_in_0_1_from_training_statistics_only(graded_digits: None) -> None:
    raw, mm = load("data.preprocess=none"), load("data.preprocess=minmax")
    assert raw.x_train.max() > 16  # raw pixels, brightened
    assert mm.x_train.min() == 0 and 0.999 < mm.x_train.max() <= 1
    lo, hi = raw.x_train.min(), raw.x_train.max()
    for split in ("x_train", "x_val", "x_test"):
        want = (getattr(raw, split) - lo) / (hi - lo)
        assert torch.allclose(getattr(mm, split), want, atol=1e-5)
    # the test split holds brighter images than the 50 training ones: they leave [0, 1], and
    # statistics over every split would have given other inputs
    assert mm.x_test.max() > 1
    pooled = torch.cat([raw.x_train, raw.x_val, raw.x_test])
    leaky = (raw.x_test - pooled.min()) / (pooled.max() - pooled.min())
    assert not torch.allclose(mm.x_test, leaky, atol=1e-3)


def test_mean_image_subtracts_the_training_mean_image(graded_digits: None) -> None:
    raw, centred = load("data.preprocess=none"), load("data.preprocess=mean_image")
    mean_image = raw.x_train.mean(0, keepdim=True)
    assert mean_image.std() > 1  # an image, not one number
    for split in ("x_train", "x_val", "x_test"):
        assert torch.allclose(getattr(centred, split), getattr(raw, split) - mean_image, atol=1e-4)
    assert centred.x_train.mean(0).abs().max() < 1e-4
    pooled = torch.cat([raw.x_train, raw.x_val, raw.x_test]).mean(0, keepdim=True)
    assert not torch.allclose(centred.x_test, raw.x_test - pooled, atol=1e-2)


def test_standardize_is_per_channel_from_training_and_none_is_raw(graded_digits: None) -> None:
    raw, std = load("data.preprocess=none"), load()  # standardize: the default
    assert make_cfg().data.preprocess == "standardize"
    mean, sd = raw.x_train.mean(), raw.x_train.std(unbiased=False)
    assert torch.allclose(std.x_test, (raw.x_test - mean) / sd, atol=1e-4)


def test_none_keeps_the_raw_pixel_counts() -> None:
    raw = load("data.preprocess=none")
    assert torch.equal(raw.x_train, raw.x_train.round()) and raw.x_train.max() == 16


# ---- augmentation ------------------------------------------------------------------------------
OFF = [f"reg.aug.{k}=0" for k in ("translate", "rotate", "brightness", "contrast", "noise")]


def aug_cfg(*knobs: str):
    return make_cfg("reg=aug", *OFF, *[f"reg.aug.{k}" for k in knobs]).reg.aug


@pytest.mark.parametrize("knob", ["shear=20", "scale=0.3", "hue=0.25"])
def test_new_augmentations_change_a_batch_and_zero_strength_is_identity(knob: str) -> None:
    x = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    name = knob.split("=")[0]
    zero = data.augment(x, aug_cfg(f"{name}=0"), torch.Generator().manual_seed(0))
    assert torch.equal(zero, x)
    y = data.augment(x, aug_cfg(knob), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(y, x)
    # per-sample parameters: samples that were equal come out different
    same = x[:1].expand(8, -1, -1, -1)
    z = data.augment(same, aug_cfg(knob), torch.Generator().manual_seed(0))
    assert not torch.allclose(z[0], z[1])


def test_shear_and_scale_warp_as_stated() -> None:
    gen = torch.Generator().manual_seed(0)
    bar = torch.zeros(16, 1, 9, 9)
    bar[:, 0, :, 4] = 1  # a vertical bar through the centre
    sheared = data.augment(bar, aug_cfg("shear=45"), gen)[:, 0]
    rows = sheared.argmax(dim=2)  # the bar's column in each row
    assert (rows[:, 4] == 4).all()  # the centre row stays, shear keeps the centre
    assert (rows[:, 0] != rows[:, 8]).any()  # the bar leans: rows shift with their height
    assert (sheared.sum(dim=(1, 2)) - 9).abs().max() < 1.5  # a shear keeps the area
    square = torch.zeros(16, 1, 9, 9)
    square[:, 0, 3:6, 3:6] = 1
    area = data.augment(square, aug_cfg("scale=0.5"), gen).sum(dim=(1, 2, 3))
    assert area.min() < 9 * 0.7 and area.max() > 9 * 1.3  # zoomed out and in, per sample


def test_hue_rotates_colours_about_the_grey_axis() -> None:
    x = torch.rand(16, 3, 4, 4)
    y = data.augment(x, aug_cfg("hue=0.5"), torch.Generator().manual_seed(0))
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-5)  # grey level kept
    assert torch.allclose(y.norm(dim=1), x.norm(dim=1), atol=1e-5)  # a rotation
    # a third of a turn maps R->G->B->R exactly
    third = data._hue(x, torch.full((16,), 2 * torch.pi / 3))
    assert torch.allclose(third, x[:, [2, 0, 1]], atol=1e-5)


def test_hue_on_one_channel_is_identity_and_warns() -> None:
    x = torch.randn(8, 1, 8, 8)
    assert torch.equal(data.augment(x, aug_cfg("hue=0.3"), torch.Generator().manual_seed(0)), x)
    for dataset in ("digits", "mnist", "fashion_mnist"):
        cfg = make_cfg(f"data={dataset}", "reg=aug", "reg.aug.hue=0.3")
        (line,) = pitfalls.warnings(cfg, None)
        assert "reg.aug.hue=0.3" in line and "does nothing" in line
    assert pitfalls.warnings(make_cfg("data=cifar10", "reg=aug", "reg.aug.hue=0.3"), None) == []


# ---- regbench inspect --------------------------------------------------------------------------
DEEP = ["model.hidden=[256,256,256,256,256]"]


def test_activation_stds_show_the_decks_init_slide() -> None:
    def stds(*overrides: str) -> list[float]:
        return inspection.activation_stds(make_cfg(*DEEP, "model.activation=tanh", *overrides))

    small, big, glorot = (
        stds("init=normal_0.01"),
        stds("init=normal_1"),
        stds("init=glorot_uniform"),
    )
    assert len(small) == len(big) == len(glorot) == 5
    assert all(b < a / 3 for a, b in zip(small, small[1:], strict=False)) and small[-1] < 1e-3
    assert min(big) > 0.9  # tanh saturated: nearly every unit at +-1
    assert 0.1 < min(glorot) and max(glorot) < 0.9


def test_inspect_draws_one_curve_per_value_and_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "fig" / "std.png"
    r = cli("inspect", "init=normal_0.01,he_normal", "model.activation=relu,tanh", *DEEP,
            "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split("  ")[0].strip() for ln in lines[:4]] == [
        "init=normal_0.01 model.activation=relu",
        "init=normal_0.01 model.activation=tanh",
        "init=he_normal model.activation=relu",
        "init=he_normal model.activation=tanh",
    ]
    assert all(len(ln.split()) == 2 + 5 for ln in lines[:4])  # label (2 words) + 5 layers
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = cli("inspect", "model.activation=gelu", "--out", str(tmp_path / "x.png"))
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: ")
        and len(bad.stderr.splitlines()) == 1
    )
    assert not (tmp_path / "x.png").exists()


# ---- studies -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "study,runs,values",
    [
        ("activations", 18, ["tanh", "sigmoid", "relu", "bn"]),
        ("init", 24, ["normal_0.01", "normal_1", "glorot_uniform", "he_normal"]),
        ("preprocess", 9, ["standardize", "minmax", "none"]),
        ("ensembles", 16, ["mlp-none-adam-s7", "mlp-dropout-adam-s0"]),
    ],
)
def test_decks_studies_plan_their_grids(tmp_path: Path, study: str, runs: int, values) -> None:
    r = cli("sweep", f"study={study}", f"out_dir={tmp_path}", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"{runs} runs, 0 already done, {runs} to run" in r.stdout
    assert all(v in r.stdout for v in values)


def test_help_lists_the_new_knobs_and_their_choices() -> None:
    r = cli("--help")
    assert r.returncode == 0
    assert "model.activation  relu, leaky_relu, elu, tanh, sigmoid" in r.stdout
    assert (
        "data.preprocess   standardize, channel_mean, minmax, mean_image, pca, zca, none"
        in r.stdout
    )
    assert "normal_0.01, normal_1" in r.stdout and "shear, scale" in r.stdout
