"""One builder per model family with switches for dropout, batch norm and initialisation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import get_args

import torch
from omegaconf import DictConfig
from torch import nn

from regbench.schema import Activation, Pool
from regbench.seeds import source_seed, stream_value

VGG_STAGES = {11: [1, 1, 2, 2, 2], 16: [2, 2, 3, 3, 3]}  # convs per stage, widths x1 x2 x4 x8 x8
RESNET_BLOCKS = {18: ([2, 2, 2, 2], 64), 20: ([3, 3, 3], 16)}  # blocks per stage, default width
# model.activation and model.pool: the names are the schema's (schema.Activation, schema.Pool), the
# layers here in the same order; standard parameter-free modules (PyTorch's defaults: leaky slope
# 0.01, ELU alpha 1)
ACTIVATIONS = dict(
    zip(
        get_args(Activation),
        (
            lambda: nn.ReLU(inplace=True),
            lambda: nn.LeakyReLU(inplace=True),
            lambda: nn.ELU(inplace=True),
            nn.Tanh,
            nn.Sigmoid,
        ),
        strict=True,
    )
)
POOLS = dict(zip(get_args(Pool), (nn.MaxPool2d, nn.AvgPool2d), strict=True))  # cnn, vgg


@dataclass
class Switches:
    """What the regularizers ask of the architecture; 0 / False means the layer is not there."""

    dropout: float = 0.0
    dropout_features: bool = False  # also channel dropout after conv blocks
    dropout_input: float = 0.0  # elementwise dropout on the network's input (Srivastava et al.)
    bn: bool = False
    bn_momentum: float = 0.1
    activation: str = "relu"  # a key of ACTIVATIONS

    @classmethod
    def from_reg(cls, reg: DictConfig, activation: str) -> Switches:
        sw = cls(activation=activation)
        if "dropout" in reg:
            sw.dropout, sw.dropout_features = reg.dropout.p, reg.dropout.where == "all"
            sw.dropout_input = reg.dropout.input
        if "bn" in reg:
            sw.bn, sw.bn_momentum = True, reg.bn.momentum
        return sw

    def act(self) -> nn.Module:
        return ACTIVATIONS[self.activation]()


def _linear_block(n_in: int, n_out: int, sw: Switches) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not sw.bn)]
    if sw.bn:
        layers.append(nn.BatchNorm1d(n_out, momentum=sw.bn_momentum))
    layers.append(sw.act())
    if sw.dropout > 0:
        layers.append(nn.Dropout(sw.dropout))
    return layers


def _conv_block(c_in: int, c_out: int, k: int, sw: Switches) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=not sw.bn)]
    if sw.bn:
        layers.append(nn.BatchNorm2d(c_out, momentum=sw.bn_momentum))
    layers.append(sw.act())
    return layers


def _feature_dropout(sw: Switches) -> list[nn.Module]:
    return [nn.Dropout2d(sw.dropout)] if sw.dropout > 0 and sw.dropout_features else []


def _input_dropout(sw: Switches) -> list[nn.Module]:
    return [nn.Dropout(sw.dropout_input)] if sw.dropout_input > 0 else []


def _pool_if_possible(size: int, kind: str) -> tuple[list[nn.Module], int]:
    # small inputs (8x8 digits) run out of pixels before VGG/CNN run out of pools: stop pooling at 1x1
    return ([POOLS[kind](2)], size // 2) if size >= 2 else ([], size)


def mlp(cfg: DictConfig, shape: tuple[int, int, int], classes: int, sw: Switches) -> nn.Module:
    layers: list[nn.Module] = [*_input_dropout(sw), nn.Flatten()]
    width = shape[0] * shape[1] * shape[2]
    for h in cfg.hidden:
        layers += _linear_block(width, h, sw)
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def cnn(cfg: DictConfig, shape: tuple[int, int, int], classes: int, sw: Switches) -> nn.Module:
    layers: list[nn.Module] = _input_dropout(sw)
    c, size = shape[0], min(shape[1:])
    for ch in cfg.channels:
        pool, size = _pool_if_possible(size, cfg.pool)
        layers += _conv_block(c, ch, cfg.kernel_size, sw) + pool + _feature_dropout(sw)
        c = ch
    flat = c * max(size, 1) ** 2
    layers += [nn.AdaptiveAvgPool2d(max(size, 1)), nn.Flatten()]
    layers += _linear_block(flat, cfg.hidden, sw)
    return nn.Sequential(*layers, nn.Linear(cfg.hidden, classes))


def vgg(cfg: DictConfig, shape: tuple[int, int, int], classes: int, sw: Switches) -> nn.Module:
    layers: list[nn.Module] = _input_dropout(sw)
    c, size = shape[0], min(shape[1:])
    for stage, n_convs in enumerate(VGG_STAGES[cfg.depth]):
        width = cfg.width * min(2**stage, 8)
        for _ in range(n_convs):
            layers += _conv_block(c, width, 3, sw)
            c = width
        pool, size = _pool_if_possible(size, cfg.pool)
        layers += pool + _feature_dropout(sw)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if sw.dropout > 0:
        layers.append(nn.Dropout(sw.dropout))
    return nn.Sequential(*layers, nn.Linear(c, classes))


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, sw: Switches) -> None:
        super().__init__()

        def norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c, momentum=sw.bn_momentum) if sw.bn else nn.Identity()

        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not sw.bn)
        self.bn1 = norm(c_out)
        self.act1, self.act2 = sw.act(), sw.act()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=not sw.bn)
        self.bn2 = norm(c_out)
        self.drop = nn.Sequential(*_feature_dropout(sw))
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=not sw.bn), norm(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.drop(out)))
        return self.act2(out + self.shortcut(x))


def resnet(cfg: DictConfig, shape: tuple[int, int, int], classes: int, sw: Switches) -> nn.Module:
    blocks, default_width = RESNET_BLOCKS[cfg.depth]
    width = cfg.width or default_width
    layers: list[nn.Module] = [
        *_input_dropout(sw),
        nn.Conv2d(shape[0], width, 3, 1, 1, bias=not sw.bn),
    ]
    if sw.bn:
        layers.append(nn.BatchNorm2d(width, momentum=sw.bn_momentum))
    layers.append(sw.act())
    c = width
    for stage, n in enumerate(blocks):
        out = width * 2**stage
        for i in range(n):
            layers.append(BasicBlock(c, out, 2 if stage > 0 and i == 0 else 1, sw))
            c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if sw.dropout > 0:
        layers.append(nn.Dropout(sw.dropout))
    return nn.Sequential(*layers, nn.Linear(c, classes))


BUILDERS = {"mlp": mlp, "cnn": cnn, "vgg": vgg, "resnet": resnet}


def weight_layers(model: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    """Conv and linear layers in construction order: their ordinal is what aligns initialisation."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def init_weights(model: nn.Module, scheme: str, seed: int) -> None:
    """(Re)draw every conv/linear layer from its own generator, seeded by (seed, layer ordinal).

    A layer that two configs share gets the same initial weights for the same seed even when one
    inserts batch norm or dropout layers (its ordinal among weight layers does not change).
    default: PyTorch's own scheme (kaiming_uniform with a=sqrt(5), biases U(+-1/sqrt(fan_in)));
    Glorot (fan_in + fan_out) or He (fan_in, for ReLU) with biases 0; normal_<std>: N(0, std^2)
    whatever the layer's size (the decks' failing examples), biases 0; zeros: every weight and
    bias 0 (the decks' question whether that works: no unit can differ from its neighbours).
    """
    for j, m in enumerate(weight_layers(model)):
        g = torch.Generator().manual_seed(source_seed(seed, "init", j))
        w, b = m.weight, m.bias
        with torch.no_grad():
            if scheme == "default":
                nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
                if b is not None:
                    bound = 1 / math.sqrt(nn.init._calculate_fan_in_and_fan_out(w)[0])
                    nn.init.uniform_(b, -bound, bound, generator=g)
                continue
            if scheme == "zeros":  # the decks' "¿Sirve inicializar todo con 0s?"
                nn.init.zeros_(w)
            elif scheme.startswith("normal_"):
                nn.init.normal_(w, 0.0, float(scheme.removeprefix("normal_")), generator=g)
            elif scheme == "glorot_uniform":
                nn.init.xavier_uniform_(w, generator=g)
            elif scheme == "glorot_normal":
                nn.init.xavier_normal_(w, generator=g)
            else:  # he_normal
                nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
            if b is not None:
                nn.init.zeros_(b)


def build(cfg: DictConfig, shape: tuple[int, int, int], classes: int) -> nn.Module:
    """The model cfg.model names, shaped for the data, with the layers cfg.reg asks for, its
    weights drawn from the run's init stream."""
    seed = stream_value(cfg, "init")
    if "_target_" in cfg.model:  # the user's own model (regbench.extend) keeps its own init code,
        from regbench import extend  # drawing from the init stream; init=... applies on request

        torch.manual_seed(source_seed(seed, "init"))
        model = extend.build_model(cfg, shape, classes)
        if cfg.init.name != "default":
            init_weights(model, cfg.init.name, seed)
        return model
    model = BUILDERS[cfg.model.name](
        cfg.model, shape, classes, Switches.from_reg(cfg.reg, cfg.model.activation)
    )
    if cfg.get("aux") is not None:  # multi-task: the auxiliary head, before the initialisation
        from regbench import multitask

        model = multitask.attach(model, cfg, shape)
    init_weights(model, cfg.init.name, seed)
    return model


def decayed(model: nn.Module) -> list[nn.Parameter]:
    """The parameters penalties and weight decay apply to: conv/linear weights, not biases or norms."""
    return [p for p in model.parameters() if p.ndim >= 2]
