"""The regularizers' part of the schema: `Reg`, one optional field per file of conf/reg/, each
checked by its class here where its knobs need a narrower range than their defaults' types give,
else by a class made from its YAML file (knobs_model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import Field, StrictBool, StrictInt, create_model

from regbench.config import CONF_DIR
from regbench.schema_base import Fraction, NonNegFloat, PosInt, _Strict


class Dropout(_Strict):
    p: Fraction
    input: Fraction
    where: Literal["classifier", "all"]


class MaxNorm(_Strict):
    c: Annotated[float, Field(gt=0)]


class BatchNorm(_Strict):
    momentum: Annotated[float, Field(gt=0, le=1)]


class Augment(_Strict):
    flip: Annotated[float, Field(ge=0, le=1)]
    translate: Annotated[int, Field(ge=0)]
    rotate: Annotated[float, Field(ge=0, le=180)]
    shear: Annotated[float, Field(ge=0, lt=90)]
    scale: Annotated[float, Field(ge=0, lt=1)]
    brightness: NonNegFloat
    contrast: Annotated[float, Field(ge=0, lt=1)]
    hue: Annotated[float, Field(ge=0, le=0.5)]
    noise: NonNegFloat
    erase: Annotated[float, Field(ge=0, le=1)]


class EarlyStop(_Strict):
    monitor: Literal["val_loss", "val_acc"]
    patience: PosInt
    min_delta: NonNegFloat


class LabelSmooth(_Strict):
    eps: Fraction


# ---- the regularizers: one per file of conf/reg/, which holds its knobs and their defaults -------
# A regularizer whose knobs need a narrower range than their defaults' types give (a probability,
# a positive number, a choice among words) has its class here; every other one's class is made
# from its YAML file (knobs_model), so that a new regularizer is that file and one builder entry.
NARROWER: dict[str, type[_Strict]] = {
    "dropout": Dropout,
    "bn": BatchNorm,
    "aug": Augment,
    "earlystop": EarlyStop,
    "labelsmooth": LabelSmooth,
    "maxnorm": MaxNorm,
}


def _knob(key: str, default: Any) -> Any:
    """A knob's type from its default: a number is a strength (finite, >= 0; an integer stays
    one), true/false a switch, a word any word."""
    if isinstance(default, bool):
        return StrictBool
    if isinstance(default, int):
        return Annotated[StrictInt, Field(ge=0)]
    if isinstance(default, float):
        return NonNegFloat
    if isinstance(default, str):
        return str
    raise TypeError(
        f"knob {key}: a default must be a number, true/false or a word, not {default!r}"
    )


def knobs_model(name: str, defaults: dict[str, Any]) -> type[_Strict]:
    """reg.<name>'s class from its knobs' defaults (conf/reg/<name>.yaml's `<name>:` mapping)."""
    fields: dict[str, Any] = {k: (_knob(k, v), ...) for k, v in defaults.items()}
    return create_model(name.capitalize(), __base__=_Strict, **fields)


def _reg_fields() -> dict[str, Any]:
    """Reg's fields: each packaged conf/reg/ file, optional (reg=[a,b] selects a and b)."""
    out: dict[str, Any] = {}
    for path in sorted((CONF_DIR / "reg").glob("*.yaml")):
        name = path.stem
        model = NARROWER.get(name) or knobs_model(name, yaml.safe_load(path.read_text())[name])
        out[name] = (model | None, None)
    return out


if TYPE_CHECKING:
    Reg = _Strict
else:
    Reg = create_model("Reg", __base__=_Strict, **_reg_fields())
