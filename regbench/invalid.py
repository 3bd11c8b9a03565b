"""pydantic's validation errors of a config as the one line a user reads: the key as written on
the command line (seed, seed[1], trainer.threads), the value given, and what it should be.

pydantic reports a value checked against a union (seed: an int or a list of ints) once per member,
its location naming the member ('constrained-int', "literal['auto']"); the line names the key
alone, with the member's complaint that fits the value (seed=-1: "greater than or equal to 0", not
"a valid list"), or all members' wants when none fits (trainer.threads=many: "'auto' or a valid
integer").
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from regbench.config import ConfigError
from regbench.schema_base import NAME_RULE

TAGGED = ("data", "model", "optim", "sched")  # discriminated unions: loc[1] is the member's tag
MEMBER = re.compile(r"[\[\-']|^(int|str|float|bool|dict|list)$")  # an untagged union member
# the value is not of this member's kind at all: another member's complaint says more
KIND = {
    "list_type",
    "int_type",
    "literal_error",
    "string_type",
    "dict_type",
    "none_required",
    "float_type",
    "bool_type",
    "model_type",
    "model_attributes_type",
    "int_parsing",
    "float_parsing",
    "bool_parsing",
}
NAMES = ("name", "sweep_name")


def _key(loc: tuple[Any, ...]) -> tuple[str, bool]:
    """The key as a user writes it (list items as [i]); whether a union member was in the way."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in TAGGED and len(parts) > 2:
        del parts[1]  # model.cnn.hidden -> model.hidden
    key, union = "", False
    for p in parts:
        if p.isdigit():
            key += f"[{p}]"
        elif MEMBER.search(p):
            union = True
        else:
            key += f".{p}" if key else p
    return key, union


def _want(msg: str) -> str:
    """'Input should be a valid integer, unable to ...' -> 'a valid integer'."""
    return msg.removeprefix("Input should be ").split(",")[0]


def explain(exc: ValidationError) -> ConfigError:
    """The first problem of the config as one ConfigError."""
    errors = exc.errors()
    err = errors[0]
    key, union = _key(err["loc"])
    if union:  # the member's error that fits the value, else every member's want
        top = _key(err["loc"][:1])[0]
        same = [e for e in errors if _key(e["loc"][:1])[0] == top and _key(e["loc"])[1]]
        fits = [e for e in same if e["type"] not in KIND]
        if fits:
            err, key = fits[0], _key(fits[0]["loc"])[0]
        else:
            wants = dict.fromkeys(_want(e["msg"]) for e in same)
            return ConfigError(
                f"invalid value for '{key}' ({err.get('input')!r}): should be {' or '.join(wants)}"
                + _hint(key)
            )
    if err["type"] == "extra_forbidden":
        return ConfigError(f"unknown key '{key}'; remove it or check its spelling")
    if err["type"] == "union_tag_invalid":  # optim.name=foo: the input is the whole node
        ctx = err.get("ctx", {})
        return ConfigError(
            f"invalid value for '{key}.name' ({ctx.get('tag')!r}); choose from: {ctx.get('expected_tags')}"
        )
    if (
        err["type"] in ("string_pattern_mismatch", "string_too_long")
        and key.split(".")[-1] in NAMES
    ):
        return ConfigError(f"invalid value for '{key}' ({err.get('input')!r}): {NAME_RULE}")
    if err["type"] == "missing":  # the input is the whole parent node: too long for one line
        return ConfigError(f"missing value for '{key}'")
    msg = err["msg"][:1].lower() + err["msg"][1:]  # lower() would mangle a quoted pattern
    return ConfigError(f"invalid value for '{key}' ({err.get('input')!r}): {msg}{_hint(key)}")


def _hint(key: str) -> str:
    return "; e.g. seed=3, or seed=[0,1,2] for one job of several" if key.startswith("seed") else ""
