"""The command line: Typer in front, Hydra behind; overrides pass through in Hydra's own syntax."""

from __future__ import annotations

import re
import sys

import typer
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from regbench import compare
from regbench.config import CONF_DIR, GROUPS, ConfigError, group_options, validate


def _groups_help() -> str:
    lines = [f"  {g:<8} {', '.join(group_options(g))}" for g in GROUPS]
    # \b: click keeps the paragraph as written (one line per group) instead of rewrapping it
    return "Config groups (from conf/) and their options:\n\n\b\n" + "\n".join(lines)


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


# Hydra plugins that are optional extras of regbench (pyproject's optional-dependencies)
PLUGIN_EXTRAS = {
    "hydra/launcher/submitit_local": "slurm",
    "hydra/launcher/submitit_slurm": "slurm",
    "hydra/launcher/ray": "ray",
    "hydra/launcher/ray_aws": "ray",
    "hydra/sweeper/optuna": "optuna",
}


def _explain(exc: Exception, overrides: list[str]) -> str:
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
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            base = compose(
                "config",
                overrides=[o for o in overrides if not o.startswith(key)],
                return_hydra_config=key.startswith("hydra."),
            )
        node = OmegaConf.select(base, parent) if parent else base
        if not isinstance(node, DictConfig):  # reg.dropout.p=0.3 without reg=[dropout,...]
            return f"unknown key '{key}': this config has no '{parent}'; is its option selected?"
        valid = ", ".join(str(k) for k in node)
        where = f"in '{parent}'" if parent else "at the top level"
        return f"unknown key '{key}'; valid keys {where}: {valid}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"bad override: {first}"


def compose_overrides(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """Compose conf/ with the overrides (ConfigError on problems); no schema check.

    with_hydra keeps the `hydra` node (a sweep reads its job folder names from it).
    """
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=overrides, return_hydra_config=with_hydra)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(_explain(exc, overrides)) from None


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose conf/ with the overrides and check it against the schema (ConfigError on problems)."""
    cfg = compose_overrides(overrides)
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

    Several seeds: seed=[0,1,2,3] trainer.fuse=4 trains the four runs as one fused model (each
    still its own run folder, as its solo run would write it); trainer.fuse=1 (the default) runs
    them one after another in this process. Fusion pays for mlp on a CPU and on a GPU; conv
    models (cnn, vgg, resnet) on a CPU run slower fused (benchmarks/README.md).
    """
    overrides = list(ctx.args)
    try:
        composed = compose_config(overrides)
    except ConfigError as exc:
        _fail(str(exc))
    if cfg:
        typer.echo(OmegaConf.to_yaml(composed), nl=False)
        return
    from regbench.job import hydra_app  # torch loads here, not for --help or a bad override

    sys.argv = ["regbench", *overrides]
    hydra_app()


@app.command(context_settings=PASS_THROUGH, no_args_is_help=True)
def sweep(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the runs it would launch and how many are done; run none."
    ),
) -> None:
    """Many runs through Hydra's multirun: regbench sweep model=mlp,cnn reg=none,dropout seed=0,1,2

    Comma lists sweep (the cartesian grid); study=NAME loads conf/study/NAME.yaml (your overrides
    win). Launchers: hydra/launcher=joblib (local processes), submitit_local, submitit_slurm, ray;
    search: hydra/sweeper=optuna. Runs go to out_dir/sweeps/<sweep_name>/<run>/, the index to
    sweep.json there. A rerun skips finished runs, resumes interrupted ones, reruns failed ones.
    trainer.fuse=K trains runs that differ only in seed K at a time as one fused model (same run
    folders); it pays for mlp on a CPU and on a GPU, not for conv models on a CPU.
    """
    from rich.console import Console

    from regbench import sweep as sw

    console = Console(highlight=False)
    try:
        plan = sw.plan(list(ctx.args))
    except ConfigError as exc:
        _fail(str(exc))
    index_path = plan.dir / sw.INDEX
    if dry_run:
        if not plan.runs:
            typer.echo(
                f"hydra/sweeper={plan.sweeper} picks the runs as it goes; sweep folder {plan.dir}"
            )
            return
        sw.print_runs({"runs": plan.runs}, console, f"{plan.name}: {len(plan.runs)} runs")
        for name, lines in plan.warnings.items():
            for line in lines:
                typer.echo(f"warning: {name}: {line}")
        done = sum(r["status"] in sw.runs.FINAL for r in plan.runs)
        typer.echo(
            f"{len(plan.runs)} runs, {done} already done, {len(plan.runs) - done} to run "
            f"(sweep folder {plan.dir})"
        )
        return
    sw.write_index(plan, " ".join(["regbench", "sweep", *ctx.args]))
    from regbench.job import hydra_app

    sys.argv = ["regbench", "--multirun", *plan.argv]
    code = 0
    try:
        hydra_app()
    except SystemExit as exc:  # Hydra reports its own errors and exits; the index is still updated
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 130
    index = sw.refresh_index(plan.dir)
    sw.print_runs(index, console, f"sweep {plan.name} ({index_path})")
    sw.print_groups(index, plan.swept, console)
    best = max(
        (r for r in index["runs"] if r["status"] not in sw.BAD and r.get("best_val_acc")),
        key=lambda r: r["best_val_acc"],
        default=None,
    )
    if best:
        typer.echo(f"best run: {best['name']} (val acc {best['best_val_acc']:.4f}) {best['dir']}")
    elsewhere = [r["name"] for r in index["runs"] if r["status"] == "running"]
    if elsewhere:  # locked by another sweep over the same folder: never run twice at once
        typer.echo(f"still running in another process: {', '.join(elsewhere)}")
    bad = sw.failures(index)
    for line in bad:
        typer.echo(f"error: {line}", err=True)
    if code == 130:
        typer.echo("interrupted: rerun the same command to finish the sweep", err=True)
    if bad:
        code = code or 1
    raise typer.Exit(code)


app.command("compare")(compare.compare_command)


def main() -> None:
    app()
