"""Where the configs live: `conf/` and the user's own folder, their groups and options."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def _conf_dir() -> Path:
    # an installed wheel carries conf/ inside the package (pyproject maps it there at build time);
    # a checkout (editable install, PYTHONPATH) keeps it at the top of the repo
    here = Path(__file__).resolve().parent
    return next((d for d in (here / "conf", here.parent / "conf") if d.is_dir()), here / "conf")


CONF_DIR = _conf_dir()


def _defaults() -> dict[str, Any]:
    # conf/config.yaml's defaults list: each group it selects and the option chosen (reg: a list),
    # in its order; Hydra's own (override hydra/...) and _self_ aside
    listed = yaml.safe_load((CONF_DIR / "config.yaml").read_text())["defaults"]
    return {k: v for d in listed if isinstance(d, dict) for k, v in d.items() if " " not in k}


DEFAULTS = _defaults()
GROUPS = tuple(DEFAULTS)  # the config groups of a run's config
LINE = 100  # plain-words lines (help, compare --summary) wrap here, or at a narrower terminal

# the user's own config folder: `--config-dir DIR` sets it (for this process and every job it
# starts), else ./regbench_conf where it exists; its groups add to conf/'s, its modules import
USER_CONF_ENV = "REGBENCH_CONFIG_DIR"
USER_CONF_DEFAULT = "regbench_conf"


class ConfigError(ValueError):
    """A bad config or bad input: reported as one line, exit code 2."""


def user_conf_dir() -> Path | None:
    """The user's config folder, absolute, or None."""
    given = os.environ.get(USER_CONF_ENV)
    if given:
        return Path(given).expanduser().resolve()
    default = Path(USER_CONF_DEFAULT)
    return default.resolve() if default.is_dir() else None


def conf_dirs() -> list[Path]:
    """Where config groups are read from: the user's folder first, then the packaged conf/."""
    user = user_conf_dir()
    return [user, CONF_DIR] if user else [CONF_DIR]


def searchpath_override() -> list[str]:
    """The Hydra override that adds the user's folder to the search path (none without one)."""
    user = user_conf_dir()
    return [f"hydra.searchpath=[file://{user}]"] if user else []


def group_options(group: str) -> list[str]:
    """The options of a config group, read from conf/ and the user's folder (not a hard-coded list)."""
    return sorted({p.stem for d in conf_dirs() for p in (d / group).glob("*.yaml")})
