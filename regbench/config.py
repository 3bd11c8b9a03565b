"""The config: where `conf/` lives, its groups, the run name, and the typed schema checked up front."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("data", "model", "reg", "optim", "sched", "init", "seeds", "trainer")
STREAMS = ("init", "order", "aug", "dropout")  # streams.SOURCES; each can be pinned in seeds.*


class ConfigError(ValueError):
    """A bad config or bad input: reported as one line, exit code 2."""


def group_options(group: str) -> list[str]:
    """The options of a config group, read from conf/ (not a hard-coded list)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def run_name(cfg: DictConfig, extra: str = "") -> str:
    """Readable run folder name: <model>-<regs>-<optim>-s<seed>[-<other swept overrides>]."""
    seed = "+".join(map(str, cfg.seed)) if OmegaConf.is_list(cfg.seed) else cfg.seed
    name = f"{cfg.model.name}-{'+'.join(cfg.reg.keys())}-{cfg.optim.name}-s{seed}"
    seeds = cfg.get("seeds")
    if seeds is not None and seeds.name != "all":  # which source follows seed, the rest pinned
        name += f"-seeds={seeds.name}"
    elif seeds is not None:  # pins given by hand: seeds.order=3 -> -order3
        name += "".join(f"-{s}{seeds[s]}" for s in STREAMS if seeds[s] is not None)
    if extra:
        name += "-" + re.sub(r"[^A-Za-z0-9_.+=,-]", "_", extra.replace("/", "."))
    return name


FUSED_DIR = ".fused"  # in a sweep folder: Hydra's own (empty) folders of fused jobs, while they run


def _sweep_run_name(*, _root_: DictConfig) -> str:
    # hydra.sweep.subdir: the job's folder inside a sweep, named from the job's own config so that
    # rerunning the same sweep maps every job to the same folder (resume, skip finished runs).
    name = run_name(_root_, _root_.hydra.job.override_dirname)
    # a fused job (seed=[0,1,2]): its members write the solo runs' folders; Hydra's is hidden
    return f"{FUSED_DIR}/{name}" if OmegaConf.is_list(_root_.seed) else name


if not OmegaConf.has_resolver("regbench.run_name"):
    OmegaConf.register_new_resolver("regbench.run_name", _sweep_run_name)


# ---- the schema: every key of conf/ with its type and valid range --------------------------------
class _Strict(BaseModel):
    # allow_inf_nan=False: optim.lr=inf passes "greater than 0" but can only diverge
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


PosInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class Data(_Strict):
    name: Literal["digits", "mnist", "fashion_mnist", "cifar10", "cifar100"]
    root: str
    download: StrictBool
    test_fraction: Annotated[float, Field(gt=0, lt=1)] | None
    val_fraction: Annotated[float, Field(gt=0, lt=1)]
    split_seed: StrictInt | None  # null: the split follows `seed`
    subset: PosInt | None
    label_noise: Fraction


class MLP(_Strict):
    name: Literal["mlp"]
    hidden: list[PosInt]


class CNN(_Strict):
    name: Literal["cnn"]
    channels: Annotated[list[PosInt], Field(min_length=1)]
    kernel_size: PosInt
    hidden: PosInt


class VGG(_Strict):
    name: Literal["vgg"]
    depth: Literal[11, 16]
    width: PosInt


class ResNet(_Strict):
    name: Literal["resnet"]
    depth: Literal[18, 20]
    width: PosInt | None


class Dropout(_Strict):
    p: Fraction
    input: Fraction
    where: Literal["classifier", "all"]


class MaxNorm(_Strict):
    c: Annotated[float, Field(gt=0)]


class BatchNorm(_Strict):
    momentum: Annotated[float, Field(gt=0, le=1)]


class Penalty(_Strict):
    lam: NonNegFloat


class WeightDecay(_Strict):
    weight_decay: NonNegFloat


class Augment(_Strict):
    flip: Annotated[float, Field(ge=0, le=1)]
    translate: Annotated[int, Field(ge=0)]
    rotate: Annotated[float, Field(ge=0, le=180)]
    brightness: NonNegFloat
    contrast: Annotated[float, Field(ge=0, lt=1)]
    noise: NonNegFloat
    erase: Annotated[float, Field(ge=0, le=1)]


class EarlyStop(_Strict):
    monitor: Literal["val_loss", "val_acc"]
    patience: PosInt
    min_delta: NonNegFloat


class LabelSmooth(_Strict):
    eps: Fraction


class Reg(_Strict):
    none: dict | None = None
    dropout: Dropout | None = None
    bn: BatchNorm | None = None
    l2: Penalty | None = None
    l1: Penalty | None = None
    wd: WeightDecay | None = None
    aug: Augment | None = None
    earlystop: EarlyStop | None = None
    labelsmooth: LabelSmooth | None = None
    maxnorm: MaxNorm | None = None


PosFloat = Annotated[float, Field(gt=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]


class SGD(_Strict):
    name: Literal["sgd"]
    lr: PosFloat


class Momentum(_Strict):
    name: Literal["momentum", "nesterov"]
    lr: PosFloat
    momentum: Beta


class RMSprop(_Strict):
    name: Literal["rmsprop"]
    lr: PosFloat
    alpha: Beta
    eps: PosFloat


class Adam(_Strict):
    name: Literal["adam"]
    lr: PosFloat
    betas: tuple[Beta, Beta]
    eps: PosFloat


class AdamW(Adam):
    name: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: NonNegFloat


class NoSched(_Strict):
    name: Literal["none"]


class StepSched(_Strict):
    name: Literal["step"]
    step_epochs: PosInt
    gamma: Annotated[float, Field(gt=0, le=1)]


class CosineSched(_Strict):
    name: Literal["cosine"]
    min_lr: NonNegFloat


class OneCycleSched(_Strict):
    name: Literal["onecycle"]
    max_lr: PosFloat
    pct_start: Annotated[float, Field(gt=0, lt=1)]


class Init(_Strict):
    name: Literal["default", "glorot_uniform", "glorot_normal", "he_normal"]


SeedValue = Annotated[StrictInt, Field(ge=0)] | None


class Seeds(_Strict):
    name: Literal["all", "init", "order", "aug", "dropout", "split", "everything"]
    init: SeedValue
    order: SeedValue
    aug: SeedValue
    dropout: SeedValue


class Trainer(_Strict):
    epochs: PosInt
    batch_size: PosInt
    eval_batch_size: PosInt
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")]
    precision: Literal["auto", "fp32", "bf16"]
    deterministic: StrictBool
    progress: Literal["auto", "bar", "plain", "none"]
    fuse: PosInt


class Config(_Strict):
    data: Data
    model: Annotated[MLP | CNN | VGG | ResNet, Field(discriminator="name")]
    reg: Reg
    optim: Annotated[SGD | Momentum | RMSprop | Adam | AdamW, Field(discriminator="name")]
    sched: Annotated[NoSched | StepSched | CosineSched | OneCycleSched, Field(discriminator="name")]
    init: Init
    seeds: Seeds
    trainer: Trainer
    seed: (
        Annotated[int, Field(ge=0)]
        | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    )
    resume: StrictBool
    out_dir: str
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+=,-]+$")] | None
    sweep_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+=,-]+$")]


def validate(cfg: DictConfig) -> None:
    """Check the composed config against the schema before any work; raise ConfigError (one line)."""
    # before the schema: reg=[] leaves no reg key, which the schema would report as "missing"
    if not cfg.get("reg"):
        raise ConfigError("no regularizer selected; use reg=none for the baseline")
    if "none" in cfg.reg and len(cfg.reg) > 1:
        raise ConfigError("reg=none cannot be combined with other regularizers; drop 'none'")
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        if loc[0] in ("model", "optim", "sched") and len(loc) > 2:
            del loc[1]  # pydantic puts the union member's tag in the location: model.cnn.hidden
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"unknown key '{key}'; remove it or check its spelling") from None
        if err["type"] == "missing":  # the input is the whole parent node: too long for one line
            raise ConfigError(f"missing value for '{key}'") from None
        msg = err["msg"][:1].lower() + err["msg"][1:]  # lower() would mangle a quoted pattern
        raise ConfigError(f"invalid value for '{key}' ({err.get('input')!r}): {msg}") from None
    if OmegaConf.is_list(cfg.seed) and len(set(cfg.seed)) < len(cfg.seed):
        raise ConfigError(f"seed={list(cfg.seed)} names a seed twice; list each seed once")
    if "bn" in cfg.reg and cfg.trainer.batch_size < 2:  # batch norm trains on batch statistics
        raise ConfigError("reg=bn needs trainer.batch_size of at least 2")


ADAPTIVE = ("adam", "rmsprop")  # per-parameter step sizes: an L2 gradient is rescaled with the rest
DIGIT_DATASETS = ("digits", "mnist")


def warnings(cfg: DictConfig, n_val: int | None) -> list[str]:
    """Known-bad combinations: the run goes on, the user is told why it may mislead."""
    reg, out = cfg.reg, []
    if "l2" in reg and cfg.optim.name in ADAPTIVE:
        out.append(
            f"reg=l2 with optim={cfg.optim.name}: an L2 penalty is not weight decay under an "
            "adaptive optimizer (Loshchilov & Hutter 2019); consider reg=wd or optim=adamw"
        )
    if "dropout" in reg and reg.dropout.where == "all" and "bn" in reg:
        out.append(
            "channel dropout (reg.dropout.where=all) with reg=bn: dropout shifts the variance that "
            "batch norm's running statistics see at evaluation (Li et al. 2019)"
        )
    if "bn" in reg and cfg.trainer.batch_size < 16:
        out.append(
            f"reg=bn with trainer.batch_size={cfg.trainer.batch_size}: batch statistics of fewer "
            "than 16 examples are noisy; use a larger batch"
        )
    if "aug" in reg and reg.aug.flip > 0 and cfg.data.get("name") in DIGIT_DATASETS:
        out.append(
            f"reg.aug.flip={reg.aug.flip} on {cfg.data.name}: digits are not mirror-symmetric; "
            "set reg.aug.flip=0"
        )
    if "earlystop" in reg and n_val is not None and n_val < 100:
        out.append(
            f"reg=earlystop with a validation split of {n_val} examples: the stopping epoch will "
            "follow noise; raise data.val_fraction"
        )
    return out
