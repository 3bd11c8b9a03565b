"""The typed schema every composed config is checked against before any work: one `error:` line
(ConfigError), never a traceback. Known-bad but valid combinations are pitfalls.py's."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
)

from regbench import invalid
from regbench.config import ConfigError
from regbench.datasets import AUX_DATA, DATASETS
from regbench.schema_base import NAME_MAX, NAME_PATTERN, Fraction, NonNegFloat, PosInt, _Strict
from regbench.schema_reg import Augment, Reg

# trainer.loggers: the modules each needs (its extra in pyproject.toml)
LOGGER_MODULES = {"tensorboard": ["tensorboard"], "mlflow": ["mlflow", "sqlalchemy", "alembic"]}


# ---- the schema: every key of conf/ with its type and valid range --------------------------------
Activation = Literal["relu", "leaky_relu", "elu", "tanh", "sigmoid"]  # models.ACTIVATIONS: layers
Pool = Literal["max", "avg"]  # models.POOLS: their layers
# data.preprocess: regbench/preprocess.py
Preprocess = Literal["standardize", "channel_mean", "minmax", "mean_image", "pca", "zca", "none"]
WHITEN_EPS = 0.1  # conf/data's data.whiten_eps, for a user's dataset that leaves it out


if TYPE_CHECKING:
    DatasetName = str
else:  # the packaged datasets' names, from their registry
    DatasetName = Literal[tuple(DATASETS)]


class Data(_Strict):
    name: DatasetName
    root: str
    download: StrictBool
    test_fraction: Annotated[float, Field(gt=0, lt=1)] | None
    val_fraction: Annotated[float, Field(gt=0, lt=1)]
    split_seed: Annotated[StrictInt, Field(ge=0)] | None  # null: the split follows `seed`
    stratify: StrictBool = False  # splits keep each class's share (scikit-learn)
    subset: PosInt | None
    classes: Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1)] | None = None
    label_noise: Fraction
    preprocess: Preprocess
    whiten_eps: Annotated[float, Field(gt=0)]


Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=NAME_MAX)]


class UserData(Data):
    """data._target_: the user's dataset; its other keys are the callable's own arguments."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    target: str = Field(alias="_target_")
    name: Name
    root: str = "data"  # the packaged datasets' keys, unused by a user's dataset
    download: StrictBool = False
    test_fraction: None = None  # the callable returns its own test split
    whiten_eps: Annotated[float, Field(gt=0)] = WHITEN_EPS


class UserModel(BaseModel):
    """model._target_: the user's model; its other keys are the callable's own arguments."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    target: str = Field(alias="_target_")
    name: Name


def _kind(v: object) -> str | None:
    # which schema checks a model/optim/sched node: the user's _target_ configs, else by name
    # (a callable discriminator: the bool check below is a before-validator on every field)
    if isinstance(v, dict):
        return "user" if "_target_" in v else v.get("name")
    return None


class MLP(_Strict):
    name: Literal["mlp"]
    hidden: list[PosInt]
    activation: Activation


class CNN(_Strict):
    name: Literal["cnn"]
    channels: Annotated[list[PosInt], Field(min_length=1)]
    kernel_size: PosInt
    hidden: PosInt
    activation: Activation
    pool: Pool


class VGG(_Strict):
    name: Literal["vgg"]
    depth: Literal[11, 16]
    width: PosInt
    activation: Activation
    pool: Pool


class ResNet(_Strict):
    name: Literal["resnet"]
    depth: Literal[18, 20]
    width: PosInt | None
    activation: Activation


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
    name: Literal[
        "default",
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "normal_0.01",
        "normal_1",
        "zeros",
    ]


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
    threads: Literal["auto"] | PosInt
    deterministic: StrictBool
    progress: Literal["auto", "bar", "plain", "none"]
    loggers: list[Literal["tensorboard", "mlflow"]]
    fuse: PosInt
    compile: StrictBool
    channels_last: StrictBool
    mc_dropout: Annotated[int, Field(ge=0)]
    target_val_acc: Annotated[float, Field(gt=0, le=1)]
    test_checkpoints: StrictBool


Seed = (
    Annotated[int, Field(ge=0)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
)


class _SeedOnly(_Strict):
    seed: Seed


def check_seed(seed: Any) -> None:
    """One value of `seed` alone (a sweep checks each distinct config once and its seeds so)."""
    try:
        _SeedOnly.model_validate({"seed": seed})
    except ValidationError as exc:
        raise invalid.explain(exc) from None
    if isinstance(seed, list) and len(set(seed)) < len(seed):
        raise ConfigError(f"seed={seed} names a seed twice; list each seed once")


class Transfer(_Strict):  # transfer=none is its name alone (validate refuses the other keys)
    name: Literal["none", "finetune", "frozen"]
    source: str | None = None
    freeze: Annotated[StrictInt, Field(ge=0)] = 0


class Aux(_Strict):  # aux=none is its name alone (validate refuses the other keys)
    name: Literal["none", "parity", "gt4", "coarse", "reconstruct"]
    weight: NonNegFloat = 0.0


class Config(_Strict):
    data: Annotated[
        Annotated[Data, Tag("builtin")] | Annotated[UserData, Tag("user")],
        Discriminator(lambda v: "user" if isinstance(v, dict) and "_target_" in v else "builtin"),
    ]
    model: Annotated[
        Annotated[MLP, Tag("mlp")]
        | Annotated[CNN, Tag("cnn")]
        | Annotated[VGG, Tag("vgg")]
        | Annotated[ResNet, Tag("resnet")]
        | Annotated[UserModel, Tag("user")],
        Discriminator(_kind),
    ]
    reg: Reg
    optim: Annotated[
        Annotated[SGD, Tag("sgd")]
        | Annotated[Momentum, Tag("momentum")]
        | Annotated[Momentum, Tag("nesterov")]
        | Annotated[RMSprop, Tag("rmsprop")]
        | Annotated[Adam, Tag("adam")]
        | Annotated[AdamW, Tag("adamw")],
        Discriminator(_kind),
    ]
    sched: Annotated[
        Annotated[NoSched, Tag("none")]
        | Annotated[StepSched, Tag("step")]
        | Annotated[CosineSched, Tag("cosine")]
        | Annotated[OneCycleSched, Tag("onecycle")],
        Discriminator(_kind),
    ]
    init: Init
    seeds: Seeds
    trainer: Trainer
    transfer: Transfer
    aux: Aux
    seed: Seed
    resume: StrictBool
    out_dir: str
    name: Name | None
    sweep_name: Name


# keys with a fixed set of choices that are not config groups: `regbench --help` lists them
KEY_CHOICES = {
    "model.activation": ", ".join(get_args(Activation)),
    "model.pool": ", ".join(get_args(Pool)) + " (cnn, vgg)",
    "data.preprocess": ", ".join(get_args(Preprocess)),
    "reg.aug.*": ", ".join(Augment.model_fields) + " (strengths, 0: off)",
}


def validate(cfg: DictConfig) -> None:
    """Check the composed config against the schema before any work; raise ConfigError (one line)."""
    # before the schema: reg=[] leaves no reg key, which the schema would report as "missing"
    if not cfg.get("reg"):
        raise ConfigError("no regularizer selected; use reg=none for the baseline")
    if "none" in cfg.reg and len(cfg.reg) > 1:
        raise ConfigError("reg=none cannot be combined with other regularizers; drop 'none'")
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:  # seed=${oops}: an interpolation of a missing key
        raise ConfigError(
            f"'{exc.full_key}' cannot be resolved: {str(exc).splitlines()[0]}; interpolate a key "
            "that exists (e.g. ${trainer.epochs}) or give a value"
        ) from None
    assert isinstance(data, dict)
    data.pop("hydra", None)
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        raise invalid.explain(exc) from None
    if (aux := cfg.aux.name) in AUX_DATA and cfg.data.get("name") not in AUX_DATA[aux]:
        only = ", ".join(AUX_DATA[aux])
        raise ConfigError(
            f"aux={aux} is not available for {cfg.data.get('name')} (only for {only}); "
            "aux=reconstruct works on every dataset"
        )
    if aux == "none" and len(cfg.aux) > 1:
        raise ConfigError("aux=none has no auxiliary head; for aux.weight choose an aux task")
    if cfg.transfer.name == "none" and len(cfg.transfer) > 1:  # a source it would not read
        raise ConfigError(
            "transfer=none trains from scratch; for transfer.source choose "
            "transfer=finetune or frozen"
        )
    check_seed(OmegaConf.to_object(cfg.seed) if OmegaConf.is_list(cfg.seed) else cfg.seed)
    if "bn" in cfg.reg and cfg.trainer.batch_size < 2:  # batch norm trains on batch statistics
        raise ConfigError("reg=bn needs trainer.batch_size of at least 2")
    for logger in cfg.trainer.loggers:  # optional extras: missing, one line before any run
        missing = [m for m in LOGGER_MODULES[logger] if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"trainer.loggers={logger} needs the {logger} extra ({missing[0]} is not "
                f"installed): pip install -e '.[{logger}]'"
            )
