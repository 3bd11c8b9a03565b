"""Compose conf/ (and the user's config folder) with overrides; Hydra's errors as one line."""

from __future__ import annotations

import re

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from regbench import extend, naming
from regbench.config import CONF_DIR, ConfigError, group_options, searchpath_override
from regbench.schema import validate
from regbench.schema_base import NAME_RULE

assert naming  # imported for its resolver: conf/config.yaml's hydra.sweep.subdir calls it

# Hydra plugins that are optional extras of regbench (pyproject's optional-dependencies)
PLUGIN_EXTRAS = {
    "hydra/launcher/submitit_local": "slurm",
    "hydra/launcher/submitit_slurm": "slurm",
    "hydra/launcher/ray": "ray",
    "hydra/launcher/ray_aws": "ray",
    "hydra/sweeper/optuna": "optuna",
}


def _compose(overrides: list[str], with_hydra: bool) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "config", overrides=searchpath_override() + overrides, return_hydra_config=with_hydra
        )


def explain(exc: Exception, overrides: list[str]) -> str:
    """Hydra's multi-line composition errors, as one line that names the problem and the fix."""
    text = str(exc)
    m = re.search(r"Could not (?:find|load) '([\w/]+)/([^']+)'", text)
    if m:
        group, option = m.groups()
        extra = PLUGIN_EXTRAS.get(f"{group}/{option}")
        if extra:
            return f"{group}={option} needs the {extra} extra: pip install -e '.[{extra}]'"
        if group.startswith("hydra/"):  # Hydra's own groups and its installed plugins
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                options = GlobalHydra.instance().config_loader().get_group_options(group)
        else:
            options = group_options(group)
        return f"unknown {group} option '{option}'; choose from: {', '.join(options)}"
    m = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in", text
    )
    if m:
        key = m.group(1)
        parent, _, leaf = key.rpartition(".")
        base = _compose([o for o in overrides if not o.startswith(key)], key.startswith("hydra."))
        node = OmegaConf.select(base, parent) if parent else base
        if not isinstance(node, DictConfig):  # reg.dropout.p=0.3 without reg=[dropout,...]
            return f"unknown key '{key}': this config has no '{parent}'; is its option selected?"
        valid = ", ".join(str(k) for k in node)
        given = next((o for o in overrides if o.split("=", 1)[0] == key), None)
        if given and (leaf in node or not valid):  # open mappings (ray.remote): Hydra adds with +
            return f"'{key}' is added, not overridden: write +{given}"
        where = f"in '{parent}'" if parent else "at the top level"
        return f"unknown key '{key}'; valid keys {where}: {valid}"
    m = re.search(r"Ambiguous value for argument '([^=']+)=([^']+)'", text)
    if m:  # a comma list is a sweep: several runs
        key, value = m.groups()
        return (
            f"{key}={value} is a sweep of several runs: run them with `regbench sweep {key}={value}`"
            f", or give one run a list with '{key}=[{value}]'"
        )
    m = re.search(r"Sweep parameters '([^']+)' requires --multirun", text)
    if m:  # range(), interval(), choice() in a single run
        return f"{m.group(1)} sweeps several values: run them with `regbench sweep {m.group(1)}`"
    return parse_error(text, overrides)


def parse_error(text: str, overrides: list[str]) -> str:
    """Hydra's override parser's complaint (an ANTLR exception name) as what to write instead."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "unreadable")
    m = re.match(r"no viable alternative at input '([^']*)'", first)
    if m:  # reg=[dropout: a list, quote or call left open
        given = next((o for o in overrides if m.group(1) in o), m.group(1))
        return (
            f"bad override {given!r}: a bracket, parenthesis or quote is left open; close it "
            "(e.g. reg=[dropout,l2])"
        )
    m = re.match(r"(LexerNoViableAltException|Error parsing override)[:]? '?([^']*)'?", first)
    if not m:
        return f"bad override: {first}"
    given = m.group(2).strip() or next(iter(overrides), "")
    if given.startswith("-"):
        return (
            f"{given} is not an option of this command and not an override (key=value); "
            "see --help for its options"
        )
    key, eq, value = given.partition("=")
    if not eq:
        return f"bad override {given!r}: write key=value, e.g. trainer.epochs=5"
    if key.lstrip("+") in ("name", "sweep_name"):  # quoting would not help: a name is plain
        return f"invalid value for '{key.lstrip('+')}' ({value!r}): {NAME_RULE}"
    return (
        f"bad override {given!r}: Hydra's syntax does not allow this value unquoted; quote it "
        f"inside the shell's quotes, e.g. '{key}=\"{value}\"'"
    )


def compose_overrides(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """Compose conf/ with the overrides (ConfigError on problems); no schema check.

    with_hydra keeps the `hydra` node (a sweep reads its job folder names from it).
    """
    for o in overrides:  # Hydra merges {} into the node: it would change nothing, silently
        key, _, value = o.partition("=")
        if not key.strip():
            raise ConfigError(f"bad override {o!r}: write key=value, e.g. trainer.epochs=5")
        if value.strip() == "{}" and not key.startswith(("hydra", "+", "~")):
            raise ConfigError(
                f"{o} sets nothing; pick an option ({key}=...) or set a key ({key}.<key>=...)"
            )
    try:
        return _compose(overrides, with_hydra)
    except yaml.YAMLError as exc:  # a broken YAML file in conf/ or the user's folder
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name} (line {mark.line + 1})" if mark else "a config file"
        raise ConfigError(
            f"{where} is not valid YAML: {getattr(exc, 'problem', exc)}; fix the file"
        ) from None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(explain(exc, overrides)) from None


def check(cfg: DictConfig) -> None:
    """The schema, then the user's code (`_target_` models and datasets): ConfigError on problems."""
    validate(cfg)
    extend.check(cfg)


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose conf/ with the overrides and check it (ConfigError on problems)."""
    cfg = compose_overrides(overrides)
    check(cfg)
    return cfg
