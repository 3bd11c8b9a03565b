"""A regularizer is its conf/reg/ file and one builder entry: its knobs' types come from their
defaults there (schema_reg.knobs_model) unless schema_reg.NARROWER gives the regularizer a class of its own."""

from __future__ import annotations

import math

import pytest
import yaml
from pydantic import ValidationError

from regbench import schema_reg as schema
from regbench.config import CONF_DIR

DEFAULTS = {"strength": 0.5, "every": 2, "on": True, "mode": "all"}


def test_every_packaged_file_is_an_option_of_reg_and_its_defaults_validate() -> None:
    files = sorted(p.stem for p in (CONF_DIR / "reg").glob("*.yaml"))
    assert sorted(schema.Reg.model_fields) == files
    for name in files:
        own = yaml.safe_load((CONF_DIR / "reg" / f"{name}.yaml").read_text())[name]
        schema.Reg.model_validate({name: own})


def test_a_new_regularizers_knobs_take_their_defaults_types() -> None:
    model = schema.knobs_model("shrink", DEFAULTS)
    assert model.model_validate(DEFAULTS | {"strength": 3, "every": 0}).strength == 3.0
    for bad in (
        {"strength": -0.1},  # a number is a strength: never negative
        {"strength": math.inf},
        {"strength": True},  # true is no number
        {"every": 1.5},  # an integer default stays an integer
        {"on": 1},  # a switch is true or false
        {"mode": 3},
        {"other": 1.0},  # no knob the file does not list
    ):
        with pytest.raises(ValidationError):
            model.model_validate(DEFAULTS | bad)
    with pytest.raises(ValidationError):  # every knob is given (the YAML file gives them all)
        model.model_validate({"strength": 0.5})


def test_a_default_that_is_no_knob_is_refused_when_the_schema_is_built() -> None:
    with pytest.raises(TypeError, match="knob steps"):
        schema.knobs_model("shrink", {"steps": [1, 2]})


def test_a_narrower_class_keeps_its_range() -> None:
    schema.Reg.model_validate({"dropout": {"p": 0.5, "input": 0.0, "where": "all"}})
    with pytest.raises(ValidationError):  # p is a probability below 1, not any strength
        schema.Reg.model_validate({"dropout": {"p": 1.5, "input": 0.0, "where": "all"}})
