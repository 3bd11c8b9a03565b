"""The command line: Typer in front, Hydra behind; overrides pass through in Hydra's own syntax."""

from __future__ import annotations

import re
import sys

import typer
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from regbench.config import CONF_DIR, GROUPS, ConfigError, group_options, validate


def _groups_help() -> str:
    lines = [f"  {g:<8} {', '.join(group_options(g))}" for g in GROUPS]
    return "Config groups (from conf/) and their options:\n\n" + "\n\n".join(lines)


app = typer.Typer(
    help="Controlled experiments on how regularization changes what deep networks learn.\n\n"
    + _groups_help(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.callback()
def _group() -> None:
    """Keeps `regbench COMMAND` a group of commands."""


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _explain(exc: Exception, overrides: list[str]) -> str:
    """Hydra's multi-line composition errors, as one line that names the problem and the fix."""
    text = str(exc)
    m = re.search(r"Could not (?:find|load) '([\w/]+)/([^']+)'", text)
    if m:
        group, option = m.groups()
        return f"unknown {group} option '{option}'; choose from: {', '.join(group_options(group))}"
    m = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in", text
    )
    if m:
        key = m.group(1)
        parent, _, leaf = key.rpartition(".")
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            base = compose("config", overrides=[o for o in overrides if not o.startswith(key)])
        node = OmegaConf.select(base, parent) if parent else base
        if not isinstance(node, DictConfig):  # reg.dropout.p=0.3 without reg=[dropout,...]
            return f"unknown key '{key}': this config has no '{parent}'; is its option selected?"
        valid = ", ".join(str(k) for k in node)
        where = f"in '{parent}'" if parent else "at the top level"
        return f"unknown key '{key}'; valid keys {where}: {valid}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"bad override: {first}"


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose conf/ with the overrides and check it against the schema (ConfigError on problems)."""
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(_explain(exc, overrides)) from None
    validate(cfg)
    return cfg


@app.command(context_settings=PASS_THROUGH)
def train(
    ctx: typer.Context,
    cfg: bool = typer.Option(False, "--cfg", help="Print the composed config and exit."),
) -> None:
    """One run: regbench train model=cnn reg=[dropout,l2] optim=sgd trainer.epochs=20 seed=3

    Overrides are Hydra's: group=option, reg=[a,b,...] for several regularizers, key.sub=value.
    The run folder (config.yaml, metrics.csv, summary.json, best.pt, last.pt) goes to out_dir.
    """
    overrides = list(ctx.args)
    try:
        composed = compose_config(overrides)
    except ConfigError as exc:
        _fail(str(exc))
    if cfg:
        typer.echo(OmegaConf.to_yaml(composed), nl=False)
        return
    from regbench.train import hydra_app  # torch loads here, not for --help or a bad override

    sys.argv = ["regbench", *overrides]
    hydra_app()


def main() -> None:
    app()
